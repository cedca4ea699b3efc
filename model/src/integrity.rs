//! Cross-object rules: references must exist, objects in use cannot be deleted, immutable fields
//! do not change, plus each object's own rules against the others ([`Object::check_against`]).
//!
//! Pure functions over a [`Catalog`], so they are tested without a store; the master implements
//! `Catalog` with its [`crate::index::ObjectIndex`].

use crate::collection::Collection;
use crate::error::ValidationError;
use crate::object::Object;
use crate::objects::Network;

/// What the rules need to know about the other objects.
pub trait Catalog {
    fn exists(&self, collection: Collection, key: &str) -> bool;
    fn network(&self, key: &str) -> Option<Network>;
    fn networks_of_tenant(&self, tenant: &str) -> Vec<Network>;
    /// Every object that refers to `(collection, key)`.
    fn referrers(&self, collection: Collection, key: &str) -> Vec<(Collection, String)>;
}

/// Checks a create (`old` is None) or an update of `new` against the catalog.
pub fn check_write<O: Object>(
    new: &O,
    old: Option<&O>,
    catalog: &dyn Catalog,
) -> Result<(), ValidationError> {
    new.validate()?;
    for r in new.references() {
        if !catalog.exists(r.collection, &r.key) {
            return Err(ValidationError::new(
                new.display_id(),
                r.field,
                format!("{} '{}' does not exist", r.collection.object_name(), r.key),
            ));
        }
    }
    new.check_against(catalog)
        .map_err(|e| e.on(new.display_id()))?;
    if let Some(old) = old {
        check_immutable(new, old)?;
    }
    Ok(())
}

fn check_immutable<O: Object>(new: &O, old: &O) -> Result<(), ValidationError> {
    let (Ok(new_json), Ok(old_json)) = (serde_json::to_value(new), serde_json::to_value(old))
    else {
        return Ok(());
    };
    for field in O::immutable_fields() {
        if new_json.get(field) != old_json.get(field) {
            return Err(ValidationError::new(
                new.display_id(),
                *field,
                format!(
                    "cannot change from {} to {} (delete and re-create the object)",
                    old_json.get(field).unwrap_or(&serde_json::Value::Null),
                    new_json.get(field).unwrap_or(&serde_json::Value::Null)
                ),
            ));
        }
    }
    Ok(())
}

/// Deletion is refused while anything refers to the object; a policy's own rules do not count
/// (they are deleted with it, as in Contiv).
pub fn check_delete(
    collection: Collection,
    key: &str,
    catalog: &dyn Catalog,
) -> Result<(), ValidationError> {
    let users: Vec<String> = catalog
        .referrers(collection, key)
        .into_iter()
        .filter(|(c, _)| !(collection == Collection::Policies && *c == Collection::Rules))
        .map(|(c, k)| format!("{}/{}", c.rest_name(), k))
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = users.iter().take(5).map(String::as_str).collect();
    let more = if users.len() > 5 {
        format!(" and {} more", users.len() - 5)
    } else {
        String::new()
    };
    Err(ValidationError::new(
        format!("{}/{}", collection.rest_name(), key),
        "key",
        format!(
            "is in use by {}{more}: delete those first",
            shown.join(", ")
        ),
    ))
}

//! Reads on behalf of a caller: an object or an inspect is shown only to whom may see it (403
//! naming it otherwise), lists and the state snapshot are filtered to what the caller may
//! see, and [`Visibility`] decides, event by event, what a watch stream shows.

use crate::auth::{rules, Caller, Grant, Need, Role};
use crate::cache::Cache;
use crate::error::ApiError;
use crate::inspect;
use crate::intent::group_id;
use crate::master::Master;
use fabric_model::Collection;
use serde_json::{json, Map, Value};

fn refuse(c: Collection, key: &str, who: &str) -> ApiError {
    crate::auth::caller::forbidden(
        &format!("{}/{key}", c.rest_name()),
        format!("{who} may not read it"),
    )
}

/// Whether a caller may see a whole collection's objects (ops never see the fabric-wide ones).
fn collection_visible(grant: Option<&Grant>, c: Collection) -> bool {
    grant.is_none_or(|g| !matches!(g.role, Role::Ops(_)) || rules::tenant_scoped(c))
}

/// The object, when the caller may read it: checked by the key's tenant before looking
/// (so a missing object of another tenant is a 403, not a 404), by the endpoint's network
/// after.
fn readable<'c>(
    cache: &'c Cache,
    caller: &Caller,
    c: Collection,
    key: &str,
) -> Result<&'c Value, ApiError> {
    let grant = caller.grant(cache)?;
    let grant = grant.as_ref();
    if !collection_visible(grant, c)
        || (c != Collection::Endpoints && !rules::may_read(grant, c, key, None))
    {
        return Err(refuse(c, key, &caller.name));
    }
    let object = cache
        .objects
        .get(c, key)
        .ok_or_else(|| ApiError::not_found(format!("{}/{key}", c.rest_name())))?;
    if !rules::may_read(grant, c, key, Some(object)) {
        return Err(refuse(c, key, &caller.name));
    }
    Ok(object)
}

impl Master {
    pub fn list_objects(&self, caller: &Caller, c: Collection) -> Result<Vec<Value>, ApiError> {
        let cache = self.cache();
        let grant = caller.grant(&cache)?;
        if !collection_visible(grant.as_ref(), c) {
            return Err(crate::auth::caller::forbidden(
                c.rest_name(),
                format!("{} may not read this collection", caller.name),
            ));
        }
        Ok(cache
            .objects
            .list(c)
            .filter(|(k, v)| rules::may_read(grant.as_ref(), c, k, Some(v)))
            .map(|(_, v)| v.clone())
            .collect())
    }

    pub fn read_object(
        &self,
        caller: &Caller,
        c: Collection,
        key: &str,
    ) -> Result<Value, ApiError> {
        let cache = self.cache();
        readable(&cache, caller, c, key).cloned()
    }

    pub fn inspect_object(
        &self,
        caller: &Caller,
        c: Collection,
        key: &str,
    ) -> Result<Value, ApiError> {
        let cache = self.cache();
        if rules::inspect_open(c, key) {
            caller.require(&cache, Need::Any, key)?;
        } else {
            readable(&cache, caller, c, key)?;
        }
        inspect::inspect(&cache, c, key)
    }

    /// Every object and group id the caller may see, with the revision they reflect.
    pub fn state(&self, caller: &Caller) -> Result<Value, ApiError> {
        let cache = self.cache();
        let grant = caller.grant(&cache)?;
        let grant = grant.as_ref();
        let mut objects = Map::new();
        for c in Collection::ALL {
            if !collection_visible(grant, c) {
                continue;
            }
            let list: Vec<Value> = cache
                .objects
                .list(c)
                .filter(|(k, v)| rules::may_read(grant, c, k, Some(v)))
                .map(|(_, v)| v.clone())
                .collect();
            objects.insert(c.rest_name().to_string(), Value::Array(list));
        }
        let groups: Map<String, Value> = cache
            .objects
            .list(Collection::EndpointGroups)
            .filter(|(k, v)| rules::may_read(grant, Collection::EndpointGroups, k, Some(v)))
            .filter_map(|(k, _)| Some((k.clone(), json!(group_id(&cache, k)?))))
            .collect();
        Ok(json!({ "revision": cache.watched, "objects": objects, "groupIds": groups }))
    }
}

/// What one watch stream may show, asked event by event against the current grant (so an
/// authorization removed mid-stream hides what it granted from then on, and a session that
/// ends ends the stream).
pub struct Visibility {
    caller: Caller,
}

/// A watch event as the filter needs it.
pub enum Seen<'a> {
    Object {
        collection: Collection,
        key: &'a str,
        object: Option<&'a Value>,
    },
    /// A tag and its owner (a network's or a group's key, `tenant:name`; none when deleted).
    Tag {
        kind: crate::keys::TagKind,
        value: u32,
        owner: Option<&'a str>,
    },
}

impl Visibility {
    pub fn new(caller: Caller) -> Visibility {
        Visibility { caller }
    }

    /// Whether every event is shown without asking (authentication is off).
    pub fn shows_all(&self) -> bool {
        self.caller.session_id().is_none()
    }

    /// `Ok(true)` to show the event, `Ok(false)` to skip it, `Err` when the session ended.
    pub fn shows(&self, cache: &Cache, event: Seen<'_>) -> Result<bool, ApiError> {
        let grant = self.caller.grant(cache)?;
        let Some(grant) = grant.as_ref() else {
            return Ok(true);
        };
        Ok(match event {
            Seen::Object {
                collection,
                key,
                object,
            } => {
                let deleted_tenant;
                let object = match (collection, object) {
                    // A deleted endpoint has no object: its tenant was kept when it went.
                    (Collection::Endpoints, None) => {
                        deleted_tenant = cache
                            .deleted_endpoint_tenants
                            .get(key)
                            .map(|t| json!({ "network": format!("{t}:") }));
                        deleted_tenant.as_ref()
                    }
                    (_, o) => o,
                };
                collection_visible(Some(grant), collection)
                    && rules::may_read(Some(grant), collection, key, object)
            }
            Seen::Tag { kind, value, owner } => match &grant.role {
                Role::Ops(tenants) => owner
                    .or_else(|| {
                        cache
                            .deleted_tag_owners
                            .get(&(kind, value))
                            .map(String::as_str)
                    })
                    .is_some_and(|o| tenants.contains(rules::tenant_of_key(o))),
                _ => true,
            },
        })
    }
}

//! What every configuration object can do: say its key, fill Contiv's defaults, validate its own
//! fields, name the objects it refers to, and name the fields that may not change on update.

use crate::collection::Collection;
use crate::error::{FieldError, ValidationError};
use crate::integrity::Catalog;
use serde::{de::DeserializeOwned, Serialize};

/// A reference from one object to another, e.g. a group's `networkName` to its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub field: &'static str,
    pub collection: Collection,
    pub key: String,
}

pub trait Object:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static
{
    const COLLECTION: Collection;

    /// The key fields joined with ':' (Contiv's key format, e.g. `blue:contiv-net`).
    fn key(&self) -> String;

    /// Stores [`Object::key`] into the object's `key` field, as Contiv returns it.
    fn set_key(&mut self);

    /// Fills the defaults Contiv's schema and netctl give to fields left empty.
    fn apply_defaults(&mut self) {}

    /// Formats, lengths and ranges of this object's own fields.
    fn check_fields(&self) -> Result<(), FieldError>;

    /// The objects this one refers to; each must exist, and keeps the referred one in use.
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    /// Rules that need other objects (overlaps, pools inside subnets), beyond existence.
    fn check_against(&self, _catalog: &dyn Catalog) -> Result<(), FieldError> {
        Ok(())
    }

    /// JSON names of fields that may not change once the object exists.
    fn immutable_fields() -> &'static [&'static str] {
        &[]
    }

    /// `collection/key`, how errors name the object.
    fn display_id(&self) -> String {
        format!("{}/{}", Self::COLLECTION.rest_name(), self.key())
    }

    /// Own-field validation with the object's identity attached.
    fn validate(&self) -> Result<(), ValidationError> {
        self.check_fields().map_err(|e| e.on(self.display_id()))
    }
}

/// Joins key parts the way Contiv does.
pub fn join_key(parts: &[&str]) -> String {
    parts.join(":")
}

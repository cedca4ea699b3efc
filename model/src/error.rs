//! The one error type validation produces: which object, which field, and why.

use serde::Serialize;

/// A rejected object. It names the object (collection and key), the field and the reason, so
/// a user can fix the input without reading our code; the REST API sends it as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{object}: field '{field}': {reason}")]
pub struct ValidationError {
    /// `collection/key`, e.g. `networks/blue:contiv-net`.
    pub object: String,
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(
        object: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ValidationError {
            object: object.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Field-level failure before the object's identity is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        FieldError {
            field,
            reason: reason.into(),
        }
    }

    pub fn on(self, object: impl Into<String>) -> ValidationError {
        ValidationError::new(object, self.field, self.reason)
    }
}

pub type FieldResult = Result<(), FieldError>;

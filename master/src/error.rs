//! The master's one error type: an HTTP status plus what the user needs to fix the request.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fabric_model::ValidationError;
use fabric_store::StoreError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

impl ApiError {
    pub fn new(
        status: u16,
        object: Option<String>,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        let reason = reason.into();
        let message = match (&object, field) {
            (Some(o), Some(f)) => format!("{o}: field '{f}': {reason}"),
            (Some(o), None) => format!("{o}: {reason}"),
            (None, Some(f)) => format!("field '{f}': {reason}"),
            (None, None) => reason.clone(),
        };
        ApiError {
            status,
            message,
            object,
            field: field.map(str::to_string),
            reason,
        }
    }

    pub fn bad_request(
        object: Option<String>,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        Self::new(400, object, field, reason)
    }

    pub fn not_found(object: String) -> Self {
        Self::new(404, Some(object), None, "not found")
    }

    pub fn conflict(object: String, field: Option<&str>, reason: impl Into<String>) -> Self {
        Self::new(409, Some(object), field, reason)
    }

    pub fn read_only(object: String) -> Self {
        Self::new(
            405,
            Some(object),
            None,
            "is read-only: endpoints are written by agents",
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        // "in use" is a conflict with the state, not a malformed request.
        let status = if e.reason.starts_with("is in use by") {
            409
        } else {
            422
        };
        ApiError::new(status, Some(e.object), Some(&e.field), e.reason)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store operation failed");
        ApiError::new(500, None, None, format!("store: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self)).into_response()
    }
}

impl ApiError {
    /// A body that is JSON but not the expected shape: name the offending field, including a
    /// missing one (which serde reports at the parent's path).
    pub fn from_decode(object: &str, e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        let missing = reason
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
            .map(str::to_string);
        let field = match (path.as_str(), missing) {
            (".", Some(m)) => m,
            (p, Some(m)) => format!("{p}.{m}"),
            (p, None) => p.to_string(),
        };
        ApiError::bad_request(Some(object.to_string()), Some(&field), reason)
    }
}

//! Writes take JSON only: a POST, PUT or PATCH with a body must say `Content-Type:
//! application/json` (parameters such as `; charset=utf-8` allowed), else 415 naming the
//! header. A browser sends cross-site `text/plain`, form or multipart POSTs without asking the
//! server first (no CORS preflight), so accepting any content type would let any web page an
//! operator has open write to the fabric; a JSON content type cannot be sent cross-site
//! without a preflight, which this server never grants.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Body as _;

/// Whether a Content-Type value is `application/json`, with or without parameters.
pub fn is_json(value: &[u8]) -> bool {
    let value = String::from_utf8_lossy(value);
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The layer: refuses a write whose body is not declared JSON; the body is left unread.
pub async fn require_json(request: Request, next: Next) -> Response {
    let write = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH
    );
    if !write || request.body().is_end_stream() {
        return next.run(request).await;
    }
    match request.headers().get(CONTENT_TYPE) {
        Some(value) if is_json(value.as_bytes()) => next.run(request).await,
        Some(value) => unsupported(&format!(
            "is '{}'; a write's body must be application/json",
            String::from_utf8_lossy(value.as_bytes())
        )),
        None => unsupported("is missing; a write's body must be application/json"),
    }
}

fn unsupported(reason: &str) -> Response {
    ApiError {
        status: 415,
        message: format!("header 'Content-Type' {reason}"),
        object: None,
        field: Some("Content-Type".into()),
        reason: reason.to_string(),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_with_or_without_parameters() {
        assert!(is_json(b"application/json"));
        assert!(is_json(b"Application/JSON; charset=utf-8"));
        assert!(is_json(b" application/json ;charset=UTF-8"));
        assert!(!is_json(b"text/plain"));
        assert!(!is_json(b"application/x-www-form-urlencoded"));
        assert!(!is_json(b"application/jsonp"));
        assert!(!is_json(b"multipart/form-data; boundary=x"));
        assert!(!is_json(b""));
    }
}

//! The request body's deadline: a body must arrive whole within `--body-timeout` of the
//! request's start, else 408. A client that trickles a body (one byte now and then, each
//! within any per-read timeout) would otherwise hold a connection and a handler forever.
//!
//! The layer reads the body itself, at most [`MAX_BODY`] (axum's own default limit; 413 past
//! it), and hands the handler the buffered bytes, so the deadline covers exactly the wait for
//! the client; every handler buffers its body anyway. Requests without a body (every GET, so a
//! watch stream) pass untouched.

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::Body as _;
use std::time::Duration;

/// The largest request body taken.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// The layer: buffers the body within `deadline`.
pub async fn buffer_in_time(
    State(deadline): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let version = request.version();
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(deadline, Limited::new(body, MAX_BODY).collect()).await;
    let error = match read {
        Ok(Ok(collected)) => {
            let body = Body::from(collected.to_bytes());
            return next.run(Request::from_parts(parts, body)).await;
        }
        Err(_) => ApiError::new(
            408,
            None,
            None,
            format!("the request body did not arrive within {deadline:?} (--body-timeout)"),
        ),
        Ok(Err(e)) if e.is::<LengthLimitError>() => ApiError::new(
            413,
            None,
            None,
            format!("the request body is larger than {MAX_BODY} bytes"),
        ),
        Ok(Err(e)) => ApiError::bad_request(None, None, format!("reading the request body: {e}")),
    };
    let mut response = error.into_response();
    // The rest of the body is unread: the connection cannot carry another request.
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

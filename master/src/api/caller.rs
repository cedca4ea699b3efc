//! The HTTP side of authentication: every matched route except the open ones needs a valid
//! token (`X-Auth-Token: <token>`, Contiv's header, or `Authorization: Bearer <token>`); the
//! [`Caller`] it stands for goes into the request for the handlers to pass down to the core.
//! With `--auth off` every request is an unrestricted caller, as before authentication existed.

use super::AppState;
use crate::auth::caller::unauthorized;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Routes served without a token: liveness, version, the API document, and the ways to get a
/// token.
pub const OPEN_ROUTES: &[&str] = &[
    "/healthz",
    "/version",
    "/api/v1/openapi.json",
    "/api/v1/auth_proxy/login/",
    "/api/v1/auth_proxy/login",
    "/api/v1/agent/register",
];

/// The token a request carries, if any.
fn token_of(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(v) = headers.get("x-auth-token") {
        return v
            .to_str()
            .map(|t| Some(t.trim()))
            .map_err(|_| unauthorized("the X-Auth-Token header is not text"));
    }
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not text"))?;
        return match v.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(token.trim()))
            }
            _ => Err(unauthorized(
                "the Authorization header must be 'Bearer <token>'",
            )),
        };
    }
    Ok(None)
}

/// Middleware: authenticates the request and records its [`Caller`].
pub async fn authenticate(
    State(master): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let open = match request.extensions().get::<MatchedPath>() {
        Some(p) => OPEN_ROUTES.contains(&p.as_str()),
        None => true, // no route: the 404 fallback answers
    };
    if open {
        return next.run(request).await;
    }
    if !master.auth.settings.enabled {
        request.extensions_mut().insert(Caller::unrestricted());
        return next.run(request).await;
    }
    let caller = match token_of(request.headers()) {
        Ok(Some(token)) if !token.is_empty() => master.authenticate(token).await,
        Ok(_) => Err(unauthorized(
            "authentication required: send X-Auth-Token: <token> (from POST /api/v1/auth_proxy/login/)",
        )),
        Err(e) => Err(e),
    };
    match caller {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| unauthorized("authentication required"))
    }
}

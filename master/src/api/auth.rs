//! Contiv's auth_proxy routes, served by the master itself: login and logout, local users,
//! authorizations, the LDAP configuration; and the agents' registration and credential
//! revocation. Contiv's paths, bodies and success codes (201 on create, 204 on delete), so
//! its clients keep working.

use super::objects::parse_body;
use super::AppState;
use crate::auth::authorizations::{AuthorizationReply, AuthorizationRequest};
use crate::auth::ldap_config::{LdapConfigurationRequest, LdapConfigurationView};
use crate::auth::login::{retry_after_secs, LoginError};
use crate::auth::users::{UserRequest, UserView};
use crate::auth::Caller;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};

fn decode<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ApiError> {
    let value = parse_body(what, body)?;
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::from_decode(what, e))
}

/// The client's address, when the server recorded it (failed logins are counted per address).
fn source(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn login_error(e: LoginError) -> Response {
    match e {
        LoginError::Throttled(wait) => {
            let secs = retry_after_secs(wait);
            let body = ApiError::new(
                429,
                None,
                None,
                format!("too many failed attempts; retry in {secs} s"),
            );
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                Json(body),
            )
                .into_response()
        }
        LoginError::Refused(e) => e.into_response(),
    }
}

async fn body_of(request: Request) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|e| ApiError::bad_request(None, None, format!("reading the body: {e}")))
}

#[derive(Deserialize)]
struct LoginRequest {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /api/v1/auth_proxy/login/` `{"username", "password"}` → `{"token"}`.
pub async fn login(State(master): State<AppState>, request: Request) -> Response {
    let from = source(&request);
    let result = async {
        let body = body_of(request).await?;
        decode::<LoginRequest>("login", &body)
    }
    .await;
    let req = match result {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match master.login(&req.username, &req.password, from).await {
        Ok(token) => Json(json!({ "token": token })).into_response(),
        Err(e) => login_error(e),
    }
}

/// `POST /api/v1/auth_proxy/logout/`: ends the presented token's session.
pub async fn logout(
    State(master): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    master.logout(&caller).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct RegisterRequest {
    host: String,
    secret: String,
}

/// `POST /api/v1/agent/register` `{"host", "secret"}` → `{"token"}`.
pub async fn register(State(master): State<AppState>, request: Request) -> Response {
    let from = source(&request);
    let result = async {
        let body = body_of(request).await?;
        decode::<RegisterRequest>("agent/register", &body)
    }
    .await;
    let req = match result {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match master.register_agent(&req.host, &req.secret, from).await {
        Ok(token) => Json(json!({ "token": token })).into_response(),
        Err(e) => login_error(e),
    }
}

/// `DELETE /api/v1/agent/hosts/<host>/credential`: ends the host's agent sessions.
pub async fn revoke_host(
    State(master): State<AppState>,
    caller: Caller,
    Path(host): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let revoked = master.revoke_host(&caller, &host).await?;
    Ok(Json(json!({ "revoked": revoked })))
}

pub async fn list_users(
    State(master): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    master.list_users(&caller).map(Json)
}

pub async fn get_user(
    State(master): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    master.get_user(&caller, &name).map(Json)
}

pub async fn create_user(
    State(master): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let req: UserRequest = decode("local_users", &body)?;
    let user = master.create_user(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn update_user(
    State(master): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<UserView>, ApiError> {
    let req: UserRequest = decode(&format!("local_users/{name}"), &body)?;
    master.update_user(&caller, &name, req).await.map(Json)
}

pub async fn delete_user(
    State(master): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    master.delete_user(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_authorizations(
    State(master): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<AuthorizationReply>>, ApiError> {
    master.list_authorizations(&caller).map(Json)
}

pub async fn get_authorization(
    State(master): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AuthorizationReply>, ApiError> {
    master.get_authorization(&caller, &id).map(Json)
}

pub async fn create_authorization(
    State(master): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<AuthorizationReply>), ApiError> {
    let req: AuthorizationRequest = decode("authorizations", &body)?;
    let reply = master.create_authorization(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(reply)))
}

pub async fn delete_authorization(
    State(master): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    master.delete_authorization(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_ldap_configuration(
    State(master): State<AppState>,
    caller: Caller,
) -> Result<Json<LdapConfigurationView>, ApiError> {
    master.get_ldap_configuration(&caller).map(Json)
}

pub async fn put_ldap_configuration(
    State(master): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<LdapConfigurationView>, ApiError> {
    let req: LdapConfigurationRequest = decode("ldap_configuration", &body)?;
    master.put_ldap_configuration(&caller, req).await.map(Json)
}

pub async fn patch_ldap_configuration(
    State(master): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<LdapConfigurationView>, ApiError> {
    let req: LdapConfigurationRequest = decode("ldap_configuration", &body)?;
    master
        .patch_ldap_configuration(&caller, req)
        .await
        .map(Json)
}

pub async fn delete_ldap_configuration(
    State(master): State<AppState>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    master.delete_ldap_configuration(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of this file.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{delete, get, post};
    const P: &str = "/api/v1/auth_proxy";
    let mut r = axum::Router::new();
    // Contiv's paths end with a slash; both forms are served, as everywhere else.
    for slash in ["/", ""] {
        r = r
            .route(&format!("{P}/login{slash}"), post(login))
            .route(&format!("{P}/logout{slash}"), post(logout))
            .route(
                &format!("{P}/local_users{slash}"),
                get(list_users).post(create_user),
            )
            .route(
                &format!("{P}/local_users/{{username}}{slash}"),
                get(get_user).patch(update_user).delete(delete_user),
            )
            .route(
                &format!("{P}/authorizations{slash}"),
                get(list_authorizations).post(create_authorization),
            )
            .route(
                &format!("{P}/authorizations/{{id}}{slash}"),
                get(get_authorization).delete(delete_authorization),
            )
            .route(
                &format!("{P}/ldap_configuration{slash}"),
                get(get_ldap_configuration)
                    .put(put_ldap_configuration)
                    .patch(patch_ldap_configuration)
                    .delete(delete_ldap_configuration),
            );
    }
    r.route("/api/v1/agent/register", post(register))
        .route("/api/v1/agent/hosts/{host}/credential", delete(revoke_host))
}

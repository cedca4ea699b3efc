//! Calls agents make: allocate, reserve and release addresses, record and remove endpoints.

use super::objects::parse_body;
use super::AppState;
use crate::auth::{Caller, Need};
use crate::error::ApiError;
use crate::ipam::{AllocateRequest, Allocation, ReleaseRequest};
use crate::reserve::{Reservation, ReserveRequest};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

fn decode<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ApiError> {
    let value = parse_body(what, body)?;
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::from_decode(what, e))
}

pub async fn allocate(
    State(master): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Allocation>, ApiError> {
    let req: AllocateRequest = decode("allocate", &body)?;
    master.allocate(&caller, req).await.map(Json)
}

pub async fn release(
    State(master): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: ReleaseRequest = decode("release", &body)?;
    master.release(&caller, req).await?;
    Ok(Json(json!({})))
}

pub async fn reserve(
    State(master): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Reservation>, ApiError> {
    let req: ReserveRequest = decode("reserve", &body)?;
    master.reserve(&caller, req).await.map(Json)
}

pub async fn reservations(
    State(master): State<AppState>,
    caller: Caller,
    Path(host): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(
        &master.cache(),
        Need::Host(&host),
        &format!("agent/hosts/{host}/reservations"),
    )?;
    let list: Vec<Value> = master
        .reservations_of(&host)
        .into_iter()
        .map(|(network, ip)| json!({"network": network, "ipAddress": ip}))
        .collect();
    Ok(Json(json!({ "host": host, "reservations": list })))
}

pub async fn unreserve(
    State(master): State<AppState>,
    caller: Caller,
    Path(host): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let released = master.unreserve_all(&caller, &host).await?;
    Ok(Json(json!({ "released": released })))
}

/// `?reserved=true`: the address was taken from those reserved for the endpoint's host.
fn reserved_flag(query: Option<&str>) -> Result<bool, ApiError> {
    let mut reserved = false;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        reserved = match pair.split_once('=') {
            Some(("reserved", "true")) => true,
            Some(("reserved", "false")) => false,
            Some(("reserved", other)) => {
                return Err(ApiError::bad_request(
                    None,
                    Some("reserved"),
                    format!("must be true or false, not '{other}'"),
                ))
            }
            _ => {
                return Err(ApiError::bad_request(
                    None,
                    Some(pair.split('=').next().unwrap_or(pair)),
                    "is not a parameter of this call (only reserved)",
                ))
            }
        };
    }
    Ok(reserved)
}

pub async fn record(
    State(master): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let reserved = reserved_flag(query.as_deref())?;
    let value = parse_body(&format!("endpoints/{id}"), &body)?;
    master
        .record_endpoint(&caller, &id, value, reserved)
        .await
        .map(Json)
}

pub async fn remove(
    State(master): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    master.remove_endpoint(&caller, &id).await?;
    Ok(Json(json!({})))
}

//! Calls agents make: allocate and release addresses, record and remove endpoints.

use super::objects::parse_body;
use super::AppState;
use crate::error::ApiError;
use crate::ipam::{AllocateRequest, Allocation, ReleaseRequest};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

fn decode<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ApiError> {
    let value = parse_body(what, body)?;
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::from_decode(what, e))
}

pub async fn allocate(
    State(master): State<AppState>,
    body: Bytes,
) -> Result<Json<Allocation>, ApiError> {
    let req: AllocateRequest = decode("allocate", &body)?;
    master.allocate(req).await.map(Json)
}

pub async fn release(State(master): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: ReleaseRequest = decode("release", &body)?;
    master.release(req).await?;
    Ok(Json(json!({})))
}

pub async fn record(
    State(master): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&format!("endpoints/{id}"), &body)?;
    master.record_endpoint(&id, value).await.map(Json)
}

pub async fn remove(
    State(master): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    master.remove_endpoint(&id).await?;
    Ok(Json(json!({})))
}

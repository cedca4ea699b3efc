//! `/api/v1/<collection>/[<key>/]` and `/api/v1/inspect/...`.

use super::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use fabric_model::Collection;
use serde_json::{json, Value};

fn collection(name: &str) -> Result<Collection, ApiError> {
    Collection::from_rest_name(name).ok_or_else(|| {
        let known: Vec<&str> = Collection::ALL.iter().map(|c| c.rest_name()).collect();
        ApiError::new(
            404,
            None,
            None,
            format!(
                "no collection '{name}'; collections are {}",
                known.join(", ")
            ),
        )
    })
}

pub async fn list(
    State(master): State<AppState>,
    caller: Caller,
    Path(coll): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = collection(&coll)?;
    Ok(Json(Value::Array(master.list_objects(&caller, c)?)))
}

pub async fn get_one(
    State(master): State<AppState>,
    caller: Caller,
    Path((coll, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let c = collection(&coll)?;
    master.read_object(&caller, c, &key).map(Json)
}

pub async fn put_one(
    State(master): State<AppState>,
    caller: Caller,
    Path((coll, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let c = collection(&coll)?;
    let value = parse_body(&format!("{}/{key}", c.rest_name()), &body)?;
    master.put_object(&caller, c, &key, value).await.map(Json)
}

pub async fn delete_one(
    State(master): State<AppState>,
    caller: Caller,
    Path((coll, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let c = collection(&coll)?;
    master.delete_object(&caller, c, &key).await?;
    Ok(Json(json!({})))
}

pub async fn inspect(
    State(master): State<AppState>,
    caller: Caller,
    Path((coll, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let c = collection(&coll)?;
    master.inspect_object(&caller, c, &key).map(Json)
}

/// Parses a JSON body, naming the line and column of a syntax error.
pub fn parse_body(object: &str, body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            Some(object.to_string()),
            None,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

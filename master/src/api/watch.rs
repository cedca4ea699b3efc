//! The revisioned change stream agents follow, and the snapshot they start from.
//!
//! `GET /api/v1/state` gives every object and group id with the revision they reflect;
//! `GET /api/v1/watch?since=<rev>` then streams, as JSON lines, every change after that
//! revision in order. A client that reconnects with the last revision it saw misses nothing;
//! a change may be seen twice across a reconnect, so clients apply it per key by revision. If
//! the store no longer has history back to `since`, the stream says `compacted` and ends: the
//! client reloads the snapshot.

use super::AppState;
use crate::error::ApiError;
use crate::intent::group_id;
use crate::keys::{self, Parsed, TagKind};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fabric_model::Collection;
use fabric_store::{Event, EventKind, StoreError};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Deserialize)]
pub struct WatchQuery {
    #[serde(default)]
    since: u64,
}

pub async fn state(State(master): State<AppState>) -> Json<Value> {
    let cache = master.cache();
    let mut objects = Map::new();
    for c in Collection::ALL {
        let list: Vec<Value> = cache.objects.list(c).map(|(_, v)| v.clone()).collect();
        objects.insert(c.rest_name().to_string(), Value::Array(list));
    }
    let groups: Map<String, Value> = cache
        .objects
        .list(Collection::EndpointGroups)
        .filter_map(|(k, _)| Some((k.clone(), json!(group_id(&cache, k)?))))
        .collect();
    Json(json!({ "revision": cache.watched, "objects": objects, "groupIds": groups }))
}

/// One store event as the API shows it; None for keys clients do not need (refvers, addresses).
fn render(event: &Event) -> Option<Value> {
    let kind = match event.kind {
        EventKind::Put => "put",
        EventKind::Delete => "delete",
    };
    let value = event.value.as_deref();
    match keys::parse(&event.key) {
        Parsed::Object(collection, key) => {
            let object = value.and_then(|v| serde_json::from_slice::<Value>(v).ok());
            Some(
                json!({"revision": event.revision, "type": kind, "collection": collection.rest_name(), "key": key, "object": object}),
            )
        }
        Parsed::Tag(tag_kind, n) => {
            let owner = value.map(|v| String::from_utf8_lossy(v).into_owned());
            let name = match tag_kind {
                TagKind::Group => "groupId",
                TagKind::Vlan => "vlan",
                TagKind::Vxlan => "vxlan",
            };
            Some(
                json!({"revision": event.revision, "type": kind, "tag": name, "value": n, "owner": owner}),
            )
        }
        _ => None,
    }
}

fn line(value: &Value) -> Bytes {
    let mut s = value.to_string();
    s.push('\n');
    Bytes::from(s)
}

pub async fn watch(
    State(master): State<AppState>,
    Query(q): Query<WatchQuery>,
) -> Result<Response, ApiError> {
    let events = master.store.watch(keys::ROOT, q.since).await?;
    let stream = events
        .scan(false, |ended, item| {
            if *ended {
                return futures::future::ready(None);
            }
            let out = match item {
                Ok(event) => render(&event).map(|v| line(&v)),
                Err(StoreError::Compacted { requested, oldest }) => {
                    *ended = true;
                    Some(line(
                        &json!({"type": "compacted", "requested": requested, "oldest": oldest}),
                    ))
                }
                Err(error) => {
                    *ended = true;
                    Some(line(
                        &json!({"type": "error", "message": error.to_string()}),
                    ))
                }
            };
            futures::future::ready(Some(out))
        })
        .filter_map(|x| futures::future::ready(x.map(Ok::<_, std::io::Error>)));
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

//! The revisioned change stream agents follow, and the snapshot they start from.
//!
//! `GET /api/v1/state` gives every object and group id with the revision they reflect;
//! `GET /api/v1/watch?since=<rev>` then streams, as JSON lines, every change after that
//! revision in order. A client that reconnects with the last revision it saw misses nothing;
//! a change may be seen twice across a reconnect, so clients apply it per key by revision. If
//! the store no longer has history back to `since`, the stream says `compacted` and ends: the
//! client reloads the snapshot.

use super::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::keys::{self, Parsed, TagKind};
use crate::reads::{Seen, Visibility};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fabric_store::{Event, EventKind, StoreError};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub struct WatchQuery {
    #[serde(default)]
    since: u64,
}

pub async fn state(
    State(master): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    master.state(&caller).map(Json)
}

/// Whether the stream's caller may see `event` (objects and tags; the rest is never shown).
fn visible(
    master: &crate::master::Master,
    who: &Visibility,
    event: &Event,
) -> Result<bool, ApiError> {
    // Authentication off: no lock, no parse per event.
    if who.shows_all() {
        return Ok(true);
    }
    let cache = master.cache();
    match keys::parse(&event.key) {
        Parsed::Object(collection, key) => {
            let object = event
                .value
                .as_deref()
                .and_then(|v| serde_json::from_slice::<Value>(v).ok());
            who.shows(
                &cache,
                Seen::Object {
                    collection,
                    key: &key,
                    object: object.as_ref(),
                },
            )
        }
        Parsed::Tag(kind, value) => {
            let owner = event.value.as_deref().map(String::from_utf8_lossy);
            who.shows(
                &cache,
                Seen::Tag {
                    kind,
                    value,
                    owner: owner.as_deref(),
                },
            )
        }
        _ => Ok(false),
    }
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
    caller: Caller,
    Query(q): Query<WatchQuery>,
) -> Result<Response, ApiError> {
    // Refuse at once when the session is no longer valid.
    caller.grant(&master.cache())?;
    let who = Visibility::new(caller);
    let events = master.store.watch(keys::ROOT, q.since).await?;
    let stream = events
        .scan(false, move |ended, item| {
            if *ended {
                return futures::future::ready(None);
            }
            let out = match item {
                Ok(event) => match visible(&master, &who, &event) {
                    Ok(true) => render(&event).map(|v| line(&v)),
                    Ok(false) => None,
                    // The session ended (logout, revocation, expiry): so does the stream.
                    Err(e) => {
                        *ended = true;
                        Some(line(
                            &json!({"type": "error", "status": e.status, "message": e.message}),
                        ))
                    }
                },
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

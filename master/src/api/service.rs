//! `/version`, `/info`, `/healthz`, `/metrics`.

use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use fabric_model::objects::{Global, GLOBAL_NAME};
use serde_json::{json, Value};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn version() -> Json<Value> {
    Json(
        json!({ "Version": VERSION, "GitCommit": option_env!("GIT_COMMIT").unwrap_or("unknown"), "BuildTime": "" }),
    )
}

pub async fn info(State(master): State<AppState>) -> Json<Value> {
    let cache = master.cache();
    let global: Global = cache.objects.get_typed(GLOBAL_NAME).unwrap_or_default();
    let s = &master.settings;
    Json(json!({
        "Version": VERSION,
        "fwdMode": global.fwd_mode,
        "arpMode": global.arp_mode,
        "netMode": s.net_mode,
        "clusterMode": s.cluster_mode,
        "networkInfraType": global.network_infra_type,
        "storeBackend": s.backend,
        "revision": cache.watched,
    }))
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn metrics(State(master): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        master.metrics.render(),
    )
}

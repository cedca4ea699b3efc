//! `/version`, `/info`, `/healthz`, `/metrics`.

use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use fabric_model::objects::{Global, GLOBAL_NAME};
use serde_json::{json, Value};
use std::time::Duration;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn version() -> Json<Value> {
    Json(
        json!({ "Version": VERSION, "GitCommit": option_env!("GIT_COMMIT").unwrap_or("unknown"), "BuildTime": "" }),
    )
}

/// Bound on reading who leads, so `/info` answers while the store is slow or unreachable.
const LEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn info(State(master): State<AppState>) -> Json<Value> {
    let status = master.leader.status();
    let me = master.leader.id().map(str::to_string);
    // Who leads: this master when it does (no read), else the election's leader key.
    let leader_id = if status.fence.is_some() {
        me.clone()
    } else {
        let read = crate::leader::current_leader(master.store.as_ref());
        match tokio::time::timeout(LEADER_READ_TIMEOUT, read).await {
            Ok(Ok(id)) => id,
            Ok(Err(error)) => {
                tracing::debug!(%error, "reading the leader for /info failed");
                None
            }
            Err(_) => None,
        }
    };
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
        "masterId": me,
        "leader": status.fence.is_some(),
        "leaderId": leader_id,
        // Unix ms: when this master's term began, when its first leader-only jobs were done.
        "leaderSince": status.since_ms,
        "leaderJobsAt": status.first_jobs_ms,
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

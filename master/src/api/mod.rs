//! The REST API: Contiv's object routes plus inspect, watch, the agent calls, and the service
//! endpoints (version, info, health, metrics, OpenAPI).

mod agent;
mod auth;
mod caller;
pub mod hosts;
mod objects;
pub mod openapi;
mod service;
mod watch;

use crate::master::Master;
use crate::metrics::RequestLabels;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::serve::ListenerExt as _;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub type AppState = Arc<Master>;

/// Serves the API on `listener` until `shutdown` resolves. HTTP/1.1 and HTTP/2 over cleartext
/// with prior knowledge (h2c) share the port: hyper-util's auto builder tells them apart by the
/// HTTP/2 connection preface, so existing HTTP/1.1 clients work unchanged and an HTTP/2 client
/// keeps many requests in flight on one connection. Each accepted connection is counted
/// (`netmaster_http_connections_total`) and gets TCP_NODELAY: HTTP/2 answers many streams with
/// small frames, which Nagle's algorithm would hold back until the client's delayed ACK.
pub async fn serve(
    listener: tokio::net::TcpListener,
    master: Arc<Master>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = master.metrics.connections.clone();
    let listener = listener.tap_io(move |tcp| {
        connections.inc();
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "setting TCP_NODELAY on an accepted connection");
        }
    });
    axum::serve(listener, router(master))
        .with_graceful_shutdown(shutdown)
        .await
}

pub fn router(master: Arc<Master>) -> Router {
    let object = get(objects::get_one)
        .post(objects::put_one)
        .put(objects::put_one)
        .delete(objects::delete_one);
    Router::new()
        .route("/api/v1/{coll}/", get(objects::list))
        .route("/api/v1/{coll}", get(objects::list))
        .route("/api/v1/{coll}/{key}/", object.clone())
        .route("/api/v1/{coll}/{key}", object)
        .route("/api/v1/inspect/{coll}/{key}/", get(objects::inspect))
        .route("/api/v1/inspect/{coll}/{key}", get(objects::inspect))
        .route("/api/v1/watch", get(watch::watch))
        .route("/api/v1/state", get(watch::state))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/agent/allocate", post(agent::allocate))
        .route("/api/v1/agent/release", post(agent::release))
        .route("/api/v1/agent/reserve", post(agent::reserve))
        .route(
            "/api/v1/agent/hosts/{host}/reservations",
            get(agent::reservations).delete(agent::unreserve),
        )
        .route("/api/v1/agent/hosts", get(hosts::list))
        .route("/api/v1/agent/hosts/{host}", put(hosts::heartbeat))
        .route(
            "/api/v1/agent/endpoints/{id}",
            put(agent::record).delete(agent::remove),
        )
        .route("/version", get(service::version))
        .route("/info", get(service::info))
        .route("/healthz", get(service::healthz))
        .route("/metrics", get(service::metrics))
        .merge(auth::routes())
        .layer(middleware::from_fn_with_state(
            master.clone(),
            caller::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            master.clone(),
            record_metrics,
        ))
        .with_state(master)
}

async fn record_metrics(State(master): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || "unmatched".to_string(),
        |p| p.as_str().trim_end_matches('/').to_string(),
    );
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        code: response.status().as_u16(),
    };
    master
        .metrics
        .observe(labels, started.elapsed().as_secs_f64());
    response
}

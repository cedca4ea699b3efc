//! The REST API: Contiv's object routes plus inspect, watch, the agent calls, and the service
//! endpoints (version, info, health, metrics, OpenAPI).

mod agent;
mod auth;
mod body_deadline;
mod caller;
mod content_type;
pub mod host_check;
pub mod hosts;
mod objects;
pub mod openapi;
mod server;
mod service;
mod watch;

use crate::master::Master;
use crate::metrics::RequestLabels;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub use server::Limits;

pub type AppState = Arc<Master>;

/// Serves the API over plain HTTP on `listener` until `shutdown` resolves, with the default
/// [`Limits`] (what the in-process tests use). HTTP/1.1 and HTTP/2 over cleartext with prior
/// knowledge (h2c) share the port: hyper-util's auto builder tells them apart by the HTTP/2
/// connection preface. See `server.rs` for what every connection gets.
pub async fn serve(
    listener: tokio::net::TcpListener,
    master: Arc<Master>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, master, Limits::default(), shutdown).await
}

/// [`serve`] with the given limits (`--insecure-http`).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    master: Arc<Master>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::run(listener, master, None, limits, shutdown).await
}

/// Serves the API over TLS (HTTP/1.1 and HTTP/2, ALPN) on `listener` until `shutdown` resolves.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    master: Arc<Master>,
    tls: Arc<rustls::ServerConfig>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    server::run(listener, master, Some(acceptor), limits, shutdown).await
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

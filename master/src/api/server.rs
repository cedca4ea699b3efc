//! The REST port's connections, plain or TLS, through one code path: the accept loop (counting,
//! TCP_NODELAY, the connection cap), the TLS handshake, and a per-connection driver that
//! enforces the header and idle timeouts.
//!
//! Timeouts are kept here rather than in hyper because hyper's own HTTP/1 header timeout also
//! runs while a keep-alive connection waits for its next request (it would close idle
//! connections after the header timeout) and does not cover HTTP/2, the TLS handshake or the
//! HTTP/2 preface. The driver keeps one clock per connection instead:
//! - before the first request, from the accept (TLS handshake and preface included), the
//!   header timeout;
//! - while a request is in flight (until its response body is sent or dropped, so a watch
//!   stream counts for as long as it is open), none;
//! - otherwise the idle timeout, switched to the header timeout when an HTTP/1 client sends
//!   the first byte of its next request (HTTP/2 control frames do not start one).
//!
//! A header timeout drops the connection; an idle timeout closes it gracefully. The request
//! body's deadline is a request layer (`body_deadline.rs`).

use super::{body_deadline, content_type, host_check};
use crate::error::ApiError;
use crate::master::Master;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Version};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// What the REST server accepts from clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// For a request's headers (see the module doc).
    pub header_timeout: Duration,
    /// For a request's body, from the request's start.
    pub body_timeout: Duration,
    /// For a connection with nothing in flight.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Host names accepted in the Host header besides IP literals and localhost.
    pub api_hostnames: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_connections: 4096,
            api_hostnames: Vec::new(),
        }
    }
}

/// Connections past the cap answered 503 at once; beyond these (a flood) they are closed
/// unanswered, so refusing costs bounded work.
const REJECTING_AT_ONCE: usize = 64;
/// Longest a refused connection (past the cap, or plain HTTP on the TLS port) is kept.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// After shutdown, how long open connections get to finish (a watch never ends by itself).
const DRAIN: Duration = Duration::from_secs(5);
/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// The API with the request guards around it: Host check first, then the content type, then
/// the body's deadline (which buffers the body, so nothing is read for a refused request).
fn app(master: Arc<Master>, limits: &Limits) -> Router {
    super::router(master)
        .layer(axum::middleware::from_fn_with_state(
            limits.body_timeout,
            body_deadline::buffer_in_time,
        ))
        .layer(axum::middleware::from_fn(content_type::require_json))
        .layer(axum::middleware::from_fn_with_state(
            host_check::AllowedHosts::new(&limits.api_hostnames),
            host_check::check,
        ))
}

/// Serves `master`'s API on `listener` (TLS when `tls` is given) until `shutdown` resolves,
/// then lets open connections finish for at most [`DRAIN`].
pub(super) async fn run(
    listener: TcpListener,
    master: Arc<Master>,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let connections = master.metrics.connections.clone();
    let app = app(master, &limits);
    let refuse = over_capacity(limits.max_connections);
    let max = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max));
    let rejecting = Arc::new(Semaphore::new(REJECTING_AT_ONCE));
    let served = Timeouts {
        header: limits.header_timeout,
        idle: limits.idle_timeout,
    };
    // A refused connection gets one answer: no idle time, and little time for its request.
    let refused = Timeouts {
        header: limits.header_timeout.min(REFUSAL_TIME),
        idle: Duration::ZERO,
    };
    let (stop, stopped) = watch::channel(false);
    let mut warned_full = false;
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::error!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        connections.inc();
        // HTTP/2 answers many streams with small frames, which Nagle's algorithm would hold
        // back until the client's delayed ACK.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "setting TCP_NODELAY on an accepted connection");
        }
        let tls = tls.clone();
        let stopped = stopped.clone();
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            warned_full = false;
            tokio::spawn(connection(tcp, tls, app.clone(), served, stopped, permit));
        } else if let Ok(permit) = rejecting.clone().try_acquire_owned() {
            if !warned_full {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached: new connections are answered 503"
                );
                warned_full = true;
            }
            tokio::spawn(connection(
                tcp,
                tls,
                refuse.clone(),
                refused,
                stopped,
                permit,
            ));
        } else {
            drop(tcp);
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back means every connection ended.
    let _ = timeout(DRAIN, slots.acquire_many(max as u32)).await;
    Ok(())
}

/// Errors of one connection that leave the listener fine (as axum's own loop treats them).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The app for connections past the cap: every request is answered 503, naming the reason.
fn over_capacity(max: usize) -> Router {
    Router::new().fallback(move |request: Request| async move {
        let mut response = ApiError::new(
            503,
            None,
            None,
            format!(
                "the master is serving its maximum of {max} connections (--max-connections); \
                 try again later"
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        if request.version() < Version::HTTP_2 {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    })
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// One accepted connection: the TLS handshake when serving TLS, then HTTP. `_slot` is held for
/// the connection's life (the connection cap).
async fn connection(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    app: Router,
    timeouts: Timeouts,
    stopped: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new(Instant::now()));
    // Failed logins are also counted per client address (`auth::throttle`).
    let peer = tcp.peer_addr().ok();
    let Some(acceptor) = tls else {
        return drive(tcp, peer, app, activity, timeouts, stopped).await;
    };
    let first_request_by = Instant::now() + timeouts.header;
    let mut first = [0u8; 1];
    match timeout_at(first_request_by, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return, // closed, failed, or silent for the whole header timeout
    }
    if first[0] != TLS_HANDSHAKE {
        if first[0].is_ascii_uppercase() {
            refuse_plain_http(tcp).await;
        }
        return;
    }
    match timeout_at(first_request_by, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => drive(stream, peer, app, activity, timeouts, stopped).await,
        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake not done within the header timeout"),
    }
}

/// Plain HTTP sent to the TLS port: a readable 400 saying so, instead of a bare reset.
async fn refuse_plain_http(mut tcp: TcpStream) {
    let body = r#"{"message":"this port serves HTTPS (TLS): use https://","reason":"plain HTTP was sent to the TLS port"}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut buf = [0u8; 4096];
    let _ = timeout(REFUSAL_TIME, async {
        // Read the request first and what follows after: closing with unread data would reset
        // the connection, and the client might lose the answer.
        let _ = tcp.read(&mut buf).await;
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await?;
        while tcp.read(&mut buf).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Serves HTTP/1.1 or HTTP/2 (told apart by hyper-util's auto builder) on `io` until the
/// client closes, a timeout fires or the server stops.
async fn drive<IO>(
    io: IO,
    peer: Option<std::net::SocketAddr>,
    app: Router,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    mut stopped: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let guard = InFlight::start(&activity, request.version());
            if let Some(peer) = peer {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
            }
            let app = app.clone();
            async move {
                let response = match app.oneshot(request.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|inner| Tracked {
                    inner,
                    _guard: guard,
                }))
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Hyper's header timer is off: the clock below replaces it (see the module doc).
    builder.http1().header_read_timeout(None);
    let io = TokioIo::new(Watched {
        io,
        activity: activity.clone(),
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // Set once the connection is being closed: by when it must be gone.
    let mut closing: Option<Instant> = None;
    loop {
        let changed = activity.changed.notified();
        let wake = closing.or_else(|| activity.deadline(timeouts).map(|(at, _)| at));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(wake) => {
                if closing.is_some() {
                    return;
                }
                match activity.deadline(timeouts) {
                    Some((at, Clock::Head)) if at <= Instant::now() => {
                        tracing::debug!("request headers not received in time: connection dropped");
                        return;
                    }
                    Some((at, Clock::Idle)) if at <= Instant::now() => {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + timeouts.header);
                    }
                    _ => {}
                }
            }
            () = changed => {}
            _ = stopped.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + DRAIN);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Which timeout runs while no request is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// A request's headers are arriving (or the first request is awaited).
    Head,
    /// Waiting for the next request.
    Idle,
}

/// What a connection is doing, as its driver's timeouts need it.
struct Activity {
    state: Mutex<ActivityState>,
    /// Told when the deadline may have moved to earlier or appeared.
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    clock: Clock,
    since: Instant,
    http2: bool,
}

impl Activity {
    fn new(accepted: Instant) -> Activity {
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                clock: Clock::Head,
                since: accepted,
                http2: false,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes came in: on an idle HTTP/1 connection they start the next request's header clock.
    fn bytes_arrived(&self) {
        let mut state = self.state();
        if state.in_flight == 0 && state.clock == Clock::Idle && !state.http2 {
            state.clock = Clock::Head;
            state.since = Instant::now();
            drop(state);
            self.changed.notify_one();
        }
    }

    /// When the running clock runs out, and which it is; none while a request is in flight.
    fn deadline(&self, timeouts: Timeouts) -> Option<(Instant, Clock)> {
        let state = self.state();
        if state.in_flight > 0 {
            return None;
        }
        let limit = match state.clock {
            Clock::Head => timeouts.header,
            Clock::Idle => timeouts.idle,
        };
        Some((state.since + limit, state.clock))
    }
}

/// A request in flight, from its headers' arrival until its response body is sent or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>, version: Version) -> InFlight {
        let mut state = activity.state();
        state.in_flight += 1;
        state.http2 = version == Version::HTTP_2;
        drop(state);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.clock = Clock::Idle;
            state.since = Instant::now();
            drop(state);
            self.0.changed.notify_one();
        }
    }
}

/// A response body that keeps its request in flight until it is done.
struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's bytes, reporting arrivals to its [`Activity`].
struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

//! The agent's HTTP client of the master: IPAM (allocate/reserve/release), endpoint records, the
//! registration heartbeat, the state snapshot and the watch stream.
//!
//! Several masters of one control plane (`--netmaster https://a:9999,https://b:9999`, plus those
//! heartbeat answers name) serve the same store, so any of them answers: a request goes to the
//! current master and, when that one fails (no connection, a timeout, a 5xx), to the next, each
//! master at most once per request; the error then names every master tried and why (see
//! [`masters`]). Whether a request may be repeated on the next master after it may have reached
//! the one that failed is decided per call (each method's doc says which, and why):
//!
//! | call | repeated after a failure that may have applied it | why |
//! |---|---|---|
//! | reads (state, endpoints, group id, reservations), watch | yes | no effect |
//! | register | yes | one more session; the first expires unused |
//! | heartbeat (`PUT agent/hosts/<h>`) | yes | sets a lease: the same state twice |
//! | record (`PUT agent/endpoints/<id>?reserved=true`) | yes | the same record; a second finds the address already its own (`may_take`) |
//! | unrecord (`DELETE agent/endpoints/<id>`) | yes | an absent endpoint is a success |
//! | release | yes | a free address is a success, one held by another (409) is done already |
//! | unreserve all | yes | gives back what is left |
//! | allocate | no | each call allocates another address for the owner: a repeat would hold two |
//! | reserve | no | each call reserves more; its failure costs nothing (the next attach asks again) |
//!
//! "Cannot have been applied" is: no connection was made (TLS handshake included), or the
//! master answered 503, which it does before any work (its connection cap, a store or signing
//! key not ready). Those failures move every request on. Masters are reached directly, never
//! through a proxy whose 503 could follow a delivered request.
//!
//! With a bootstrap secret (`--master-secret-file`) the agent registers as its host
//! (`POST /api/v1/agent/register`) and sends the token it gets as `X-Auth-Token` on every
//! request, the watch stream and heartbeats included. A 401 (the token expired or an admin
//! revoked it) makes it register again and repeat the request, at most [`MAX_REFUSALS`] times,
//! so an attach in flight does not fail over a token that a registration replaces; a 401 is
//! answered before the master does anything, so repeating is safe. One registration runs at a
//! time: requests refused together wait for it and share its token.

mod masters;

pub use masters::Repeat;

use crate::credential::{Credential, Secret, Token};
use crate::tls::{self, Trust};
use async_trait::async_trait;
use fabric_actors::endpoint::{ErrorKind, StepError};
use fabric_actors::master_link::{Fleet, MasterApi};
use futures::stream::BoxStream;
use futures::StreamExt;
use masters::{Failure, Masters};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long one request may take before the master counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(5);
/// TCP keepalive of the watch stream: idle time before the first probe, between probes, and
/// how many unanswered probes end the connection.
const STREAM_KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const STREAM_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const STREAM_KEEPALIVE_RETRIES: u32 = 3;
/// Contiv's header for the token.
pub const AUTH_HEADER: &str = "X-Auth-Token";
/// Registrations one request may trigger after 401s before it fails: one for an expired or
/// revoked token, one more should another request's registration race it.
pub const MAX_REFUSALS: usize = 2;

/// How the agent reaches the master beyond its URL.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// This host's name and the bootstrap secret: register and send a token (None: send
    /// none, for a master with authentication off).
    pub credential: Option<(String, Secret)>,
    /// Whom to trust for an `https://` master's certificate.
    pub trust: Trust,
    /// Send the secret and tokens over plain HTTP to a master on another host
    /// (`--master-insecure`); otherwise refused, as netctl does.
    pub insecure: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            credential: None,
            trust: Trust::System,
            insecure: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--netmaster lists no URL")]
    NoMaster,
    #[error("--netmaster {0}: not an http:// or https:// URL")]
    Url(String),
    #[error(
        "refusing to send the master secret and tokens over plain HTTP to {0}: use an https:// \
         URL (with --master-cacert), or accept the risk with --master-insecure"
    )]
    PlainCredentials(String),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("building the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Why a registration failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// No answer; try again later.
    Unreachable(String),
    /// Too many failed registrations for this host or address: wait this long.
    Throttled(Duration),
    /// The master said no (wrong secret, bad host name, no secret configured): trying again
    /// will not help until someone changes the configuration.
    Refused(String),
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::Unreachable(m) => write!(f, "{m}"),
            RegisterError::Throttled(wait) => write!(
                f,
                "the netmaster throttles this host's registrations; retry in {} s",
                wait.as_secs()
            ),
            RegisterError::Refused(m) => write!(f, "{m}"),
        }
    }
}

impl From<RegisterError> for StepError {
    fn from(e: RegisterError) -> StepError {
        let kind = match e {
            RegisterError::Refused(_) => ErrorKind::MasterRefused,
            _ => ErrorKind::MasterUnreachable,
        };
        StepError::new(kind, e.to_string())
    }
}

/// The registration state shared by every clone of the client.
struct Auth {
    host: String,
    secret: Secret,
    credential: std::sync::Mutex<Credential>,
    /// Held while registering, so concurrent refusals cause one registration.
    registering: tokio::sync::Mutex<()>,
}

impl Auth {
    fn credential(&self) -> std::sync::MutexGuard<'_, Credential> {
        // A panic while holding this lock leaves the bookkeeping consistent (plain values).
        self.credential
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Clone)]
pub struct MasterClient {
    masters: Arc<Masters>,
    http: reqwest::Client,
    /// Without a timeout, for the watch stream.
    stream_http: reqwest::Client,
    auth: Option<Arc<Auth>>,
    /// Credentials may go over plain HTTP to another host (`--master-insecure`).
    insecure: bool,
}

/// A non-2xx answer as MasterRefused with the master's message.
fn refused_unless_success(
    method: &reqwest::Method,
    path: &str,
    status: reqwest::StatusCode,
    text: &str,
) -> Result<(), StepError> {
    if status.is_success() {
        return Ok(());
    }
    Err(StepError::new(
        ErrorKind::MasterRefused,
        format!("netmaster refused {method} {path}: {}", message_of(text)),
    ))
}

/// An error with its causes: reqwest's own message hides why (a refused connection, an
/// untrusted certificate), which is what an operator needs.
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether requests to `url` may carry the secret and tokens: over TLS, to this host, with
/// `--master-insecure`, or when there are none.
fn plain_credentials_allowed(credentials: bool, insecure: bool, url: &str) -> bool {
    !credentials || insecure || url.starts_with("https://") || tls::is_loopback(url)
}

/// A transport error at one master: whether the request may have reached it.
fn transport_failure(base: &str, e: &reqwest::Error) -> Failure {
    Failure {
        // Connecting (TLS included) comes before anything is sent.
        maybe_applied: !e.is_connect(),
        reason: format!("netmaster {base} unreachable: {}", chain(e)),
    }
}

/// Every master failed `what`; each one's reason in the order tried.
fn all_failed(what: &str, tried: &[String]) -> StepError {
    StepError::new(
        ErrorKind::MasterUnreachable,
        format!("no netmaster could serve {what}: {}", tried.join("; ")),
    )
}

/// A write failed at `base` after it may have been applied there: not repeated elsewhere.
fn maybe_applied(what: &str, failure: &Failure) -> StepError {
    StepError::new(
        ErrorKind::MasterUnreachable,
        format!(
            "{what} may have been applied before it failed, so it is not repeated on another \
             netmaster: {}",
            failure.reason
        ),
    )
}

/// How one attempt at one master ended.
enum Attempt<T> {
    /// An answer to keep (any status but a 5xx, or a 5xx from the only master).
    Answer(T),
    /// The master failed; the request may move on if [`Failure::allows`] it.
    Failed(Failure),
}

/// The master's `message` from a JSON error body, else the body.
fn message_of(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_else(|| text.to_string())
}

impl MasterClient {
    /// A client sending no credential, trusting the system's roots for `https://`.
    pub fn new(list: &str) -> Result<MasterClient, ClientError> {
        MasterClient::with_options(list, ClientOptions::default())
    }

    /// `list`: one master's URL or several, comma-separated.
    pub fn with_options(list: &str, options: ClientOptions) -> Result<MasterClient, ClientError> {
        let urls = masters::parse_list(list);
        if urls.is_empty() {
            return Err(ClientError::NoMaster);
        }
        if let Some(bad) = urls.iter().find(|u| !masters::is_http_url(u)) {
            return Err(ClientError::Url(bad.clone()));
        }
        let credentials = options.credential.is_some();
        if let Some(plain) = urls
            .iter()
            .find(|u| !plain_credentials_allowed(credentials, options.insecure, u))
        {
            return Err(ClientError::PlainCredentials(plain.clone()));
        }
        let config = if urls.iter().any(|u| u.starts_with("https://")) {
            tls::client_config(&options.trust)?
        } else {
            // Only plain masters configured: their roots may be missing or unreadable without
            // that mattering. A master learned later with https:// is still checked against
            // them, or against nothing (so refused), never taken unchecked.
            match tls::client_config(&options.trust) {
                Ok(config) => config,
                Err(error) => {
                    tracing::debug!(%error, "no roots for https:// masters learned later");
                    tls::refuse_all_config()?
                }
            }
        };
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .tls_backend_preconfigured(config.clone())
                // A redirect would carry the token to another address.
                .redirect(reqwest::redirect::Policy::none())
        };
        Ok(MasterClient {
            masters: Arc::new(Masters::new(urls)),
            http: builder().timeout(TIMEOUT).build()?,
            // A master that vanishes without closing the connection (its host powered off, a
            // partition) would leave the stream waiting forever; TCP keepalive ends it after
            // about 25 s, and the link reopens it at the next master.
            stream_http: builder()
                .tcp_keepalive(STREAM_KEEPALIVE_IDLE)
                .tcp_keepalive_interval(STREAM_KEEPALIVE_INTERVAL)
                .tcp_keepalive_retries(STREAM_KEEPALIVE_RETRIES)
                .build()?,
            insecure: options.insecure,
            auth: options.credential.map(|(host, secret)| {
                Arc::new(Auth {
                    host,
                    secret,
                    credential: Default::default(),
                    registering: Default::default(),
                })
            }),
        })
    }

    /// Every master known: those configured, then those learned from heartbeats.
    pub fn masters(&self) -> Vec<String> {
        self.masters.all()
    }

    /// Adds masters a heartbeat named (never removing configured ones); a plain-HTTP one on
    /// another host is skipped when requests carry credentials and `--master-insecure` is off.
    pub fn learn_masters(&self, urls: &[String]) {
        let credentials = self.auth.is_some();
        let added = self.masters.learn(urls, |url| {
            if !masters::is_http_url(url) {
                tracing::warn!(master = %url, "ignoring a master URL that is not http(s)://");
                return false;
            }
            if masters::is_wildcard_host(url) {
                tracing::warn!(
                    master = %url,
                    "ignoring a master that advertises a wildcard address (give it --control-url)"
                );
                return false;
            }
            if !plain_credentials_allowed(credentials, self.insecure, url) {
                tracing::warn!(
                    master = %url,
                    "ignoring a plain-HTTP master on another host: the secret and tokens would \
                     travel in clear (use https://, or --master-insecure)"
                );
                return false;
            }
            true
        });
        for master in added {
            tracing::info!(%master, "learned a netmaster from a heartbeat");
        }
    }

    /// Whether requests carry a token.
    pub fn authenticates(&self) -> bool {
        self.auth.is_some()
    }

    /// `POST /api/v1/agent/register`; the token. A master that does not answer, or answers
    /// 5xx, is skipped for the next one (repeating only issues one more session); a refusal or a
    /// throttle is the answer (every master shares the secret and would say the same, and
    /// going round the throttle would defeat it).
    async fn register_once(&self, auth: &Auth) -> Result<String, RegisterError> {
        let body = json!({"host": auth.host, "secret": auth.secret.expose()});
        let order = self.masters.order();
        let mut tried = Vec::new();
        let mut refused = false;
        for (index, base) in &order {
            let url = format!("{base}/api/v1/agent/register");
            let answer = async {
                let resp = self.http.post(&url).json(&body).send().await?;
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                Ok::<_, reqwest::Error>((status, retry_after, resp.text().await?))
            }
            .await;
            let (status, retry_after, text) = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    self.masters.failed(*index);
                    tried.push(transport_failure(base, &e).reason);
                    continue;
                }
            };
            // One master: the words it had before there were lists.
            let who = if order.len() == 1 {
                "the netmaster".to_string()
            } else {
                format!("the netmaster {base}")
            };
            match status {
                200 => {
                    self.masters.answered(*index);
                    return serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["token"].as_str().map(String::from))
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| {
                            RegisterError::Unreachable(
                                "the netmaster's registration answer has no token".into(),
                            )
                        });
                }
                429 => {
                    return Err(RegisterError::Throttled(Duration::from_secs(
                        retry_after.unwrap_or(1).max(1),
                    )))
                }
                // This master cannot register anyone (no agent secret configured): another
                // one may; if none does, that is the answer (a configuration error).
                503 => {
                    self.masters.failed(*index);
                    let refusal = format!(
                        "{who} refused to register host {} ({status}): {} (check \
                         --master-secret-file)",
                        auth.host,
                        message_of(&text)
                    );
                    tried.push(refusal);
                    refused = true;
                }
                // A master starting or failing: another one, or this one later, may work.
                500..=599 => {
                    self.masters.failed(*index);
                    tried.push(format!(
                        "{who} failed registering host {}: {status} {}",
                        auth.host,
                        message_of(&text)
                    ));
                }
                _ => {
                    return Err(RegisterError::Refused(format!(
                        "the netmaster refused to register host {} ({status}): {} (check \
                         --master-secret-file)",
                        auth.host,
                        message_of(&text)
                    )))
                }
            }
        }
        if refused {
            // Every master that answered refused: as with one master, a configuration error.
            return Err(RegisterError::Refused(tried.join("; ")));
        }
        Err(RegisterError::Unreachable(tried.join("; ")))
    }

    /// Registers now (at start: a refusal is a configuration error the caller reports).
    pub async fn register(&self) -> Result<(), RegisterError> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let _one = auth.registering.lock().await;
        let token = self.register_once(auth).await?;
        auth.credential().issued(token, now_secs());
        tracing::info!(host = %auth.host, "registered with the netmaster");
        Ok(())
    }

    /// The token for the next request: the current one, or one from a new registration when
    /// there is none, it was refused or is near its end. None without a credential.
    async fn token(&self) -> Result<Option<Token>, StepError> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        if let Some(token) = auth.credential().usable(now_secs()) {
            return Ok(Some(token));
        }
        let _one = auth.registering.lock().await;
        // Another request may have registered while this one waited.
        if let Some(token) = auth.credential().usable(now_secs()) {
            return Ok(Some(token));
        }
        match self.register_once(auth).await {
            Ok(value) => {
                tracing::info!(host = %auth.host, "registered with the netmaster again");
                Ok(Some(auth.credential().issued(value, now_secs())))
            }
            Err(e) => match auth.credential().fallback(now_secs()) {
                // Renewing ahead of the end failed; the token in force still works.
                Some(token) => {
                    tracing::warn!(error = %e, "renewing the netmaster token failed; will retry");
                    Ok(Some(token))
                }
                None => Err(e.into()),
            },
        }
    }

    /// After a 401 to `token`: forget it so that the next request registers again. Returns
    /// whether the request may be repeated (`refusals` so far within the limit).
    fn refused(&self, token: &Option<Token>, refusals: usize) -> bool {
        match (&self.auth, token) {
            (Some(auth), Some(token)) => {
                auth.credential().refused(token.generation);
                tracing::info!(
                    host = %auth.host,
                    "the netmaster refused this agent's token (expired or revoked); registering again"
                );
                refusals <= MAX_REFUSALS
            }
            _ => false,
        }
    }

    /// One request; a non-2xx answer becomes MasterRefused with the master's message, or None
    /// for a 404 when `missing_ok`.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        missing_ok: bool,
        repeat: Repeat,
    ) -> Result<Option<Value>, StepError> {
        let (status, text) = self.send(&method, path, body, repeat).await?;
        if status.as_u16() == 404 && missing_ok {
            return Ok(None);
        }
        refused_unless_success(&method, path, status, &text)?;
        Ok(Some(serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// One request with the agent's token (registering again on a 401), failing over from
    /// master to master as `repeat` allows: the status and body of the master that answered.
    async fn send(
        &self,
        method: &reqwest::Method,
        path: &str,
        body: Option<Value>,
        repeat: Repeat,
    ) -> Result<(reqwest::StatusCode, String), StepError> {
        let what = format!("{method} {path}");
        let order = self.masters.order();
        let only = order.len() == 1;
        let mut tried = Vec::new();
        for (index, base) in &order {
            match self
                .send_to(base, method, path, body.as_ref(), only)
                .await?
            {
                Attempt::Answer(answer) => {
                    self.masters.answered(*index);
                    return Ok(answer);
                }
                Attempt::Failed(failure) => {
                    self.masters.failed(*index);
                    if only {
                        return Err(StepError::new(ErrorKind::MasterUnreachable, failure.reason));
                    }
                    if !failure.allows(repeat) {
                        return Err(maybe_applied(&what, &failure));
                    }
                    tracing::warn!(
                        master = %base,
                        request = %what,
                        reason = %failure.reason,
                        "netmaster failed; trying the next one"
                    );
                    tried.push(failure.reason);
                }
            }
        }
        Err(all_failed(&what, &tried))
    }

    /// One request to one master, registering again and repeating it there after a 401. A
    /// 5xx is the master failing, except from the only master, whose answer it stays (its
    /// message reaches the caller as before there were lists).
    async fn send_to(
        &self,
        base: &str,
        method: &reqwest::Method,
        path: &str,
        body: Option<&Value>,
        only: bool,
    ) -> Result<Attempt<(reqwest::StatusCode, String)>, StepError> {
        let url = format!("{base}{path}");
        let mut refusals = 0;
        loop {
            let token = self.token().await?;
            let mut req = self.http.request(method.clone(), &url);
            if let Some(token) = &token {
                req = req.header(AUTH_HEADER, token.expose());
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) => return Ok(Attempt::Failed(transport_failure(base, &e))),
            };
            let status = resp.status();
            let text = match resp.text().await {
                Ok(text) => text,
                Err(e) => return Ok(Attempt::Failed(transport_failure(base, &e))),
            };
            if status == reqwest::StatusCode::UNAUTHORIZED {
                refusals += 1;
                if self.refused(&token, refusals) {
                    continue;
                }
            }
            if !only {
                if let Some(failure) = masters::status_failure(status.as_u16(), &message_of(&text))
                {
                    return Ok(Attempt::Failed(Failure {
                        reason: format!("netmaster {base}: {}", failure.reason),
                        ..failure
                    }));
                }
            }
            return Ok(Attempt::Answer((status, text)));
        }
    }

    /// Allocates an address for `owner` (an endpoint id). Not repeated on another master once
    /// it may have reached one: every call allocates another address, so a repeat after a lost
    /// answer would hold two for the same endpoint. The attach fails instead (the runtime
    /// retries it), as with a single master.
    pub async fn allocate(
        &self,
        network: &str,
        group: &str,
        owner: &str,
    ) -> Result<Value, StepError> {
        let body = json!({"network": network, "group": group, "owner": owner});
        self.call(
            reqwest::Method::POST,
            "/api/v1/agent/allocate",
            Some(body),
            false,
            Repeat::IfNotApplied,
        )
        .await
        .map(Option::unwrap_or_default)
    }

    /// Releases `ip` while `owner` (an endpoint id) or this host's reserve holds it. Repeated
    /// on the next master after any failure: releasing a free address succeeds, and one that
    /// somebody else holds by then (409) counts as released (see below).
    pub async fn release(
        &self,
        network: &str,
        ip: IpAddr,
        owner: &str,
        host: &str,
    ) -> Result<(), StepError> {
        let body = json!({"network": network, "ipAddress": ip, "owner": owner, "host": host});
        let method = reqwest::Method::POST;
        let path = "/api/v1/agent/release";
        let (status, text) = self.send(&method, path, Some(body), Repeat::Always).await?;
        // 409: someone else holds it now, so nothing of ours is left to give back, which is
        // what an undo or a sweep wants.
        if status == reqwest::StatusCode::CONFLICT {
            tracing::debug!(%ip, network, "released address is held by another endpoint now");
            return Ok(());
        }
        refused_unless_success(&method, path, status, &text)
    }

    /// Asks the master to keep up to `count` addresses of the network (or of the group's
    /// ipPool) for this host. Not repeated on another master once it may have reached one:
    /// each call reserves more, and a failed refill costs nothing (the next attach asks again;
    /// what a lost answer reserved is given back when the agent starts, `unreserve_all`).
    pub async fn reserve(
        &self,
        network: &str,
        group: &str,
        host: &str,
        count: u32,
    ) -> Result<Value, StepError> {
        let body = json!({"network": network, "group": group, "host": host, "count": count});
        self.call(
            reqwest::Method::POST,
            "/api/v1/agent/reserve",
            Some(body),
            false,
            Repeat::IfNotApplied,
        )
        .await
        .map(Option::unwrap_or_default)
    }

    /// The addresses the master keeps for this host, as (network, address).
    pub async fn reservations(&self, host: &str) -> Result<Vec<(String, IpAddr)>, StepError> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/agent/hosts/{host}/reservations"),
                None,
                false,
                Repeat::Always,
            )
            .await?
            .unwrap_or_default();
        Ok(v["reservations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let ip = r["ipAddress"].as_str()?.parse().ok()?;
                Some((r["network"].as_str()?.to_string(), ip))
            })
            .collect())
    }

    /// Gives back every address the master keeps for this host; returns how many. Repeated
    /// after any failure: a second call gives back what is left (maybe nothing).
    pub async fn unreserve_all(&self, host: &str) -> Result<u64, StepError> {
        let v = self
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/agent/hosts/{host}/reservations"),
                None,
                false,
                Repeat::Always,
            )
            .await?;
        Ok(v.and_then(|v| v["released"].as_u64()).unwrap_or(0))
    }

    /// Records an endpoint whose address the master allocated to it or reserved for its host
    /// (the master refuses any other). Repeated after any failure: a PUT of the whole record,
    /// and once the first one went through the address is the endpoint's own, which the master
    /// accepts again (`may_take`: the holder is the endpoint itself).
    pub async fn record(&self, id: &str, endpoint: Value) -> Result<(), StepError> {
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v1/agent/endpoints/{id}?reserved=true"),
            Some(endpoint),
            false,
            Repeat::Always,
        )
        .await
        .map(drop)
    }

    /// Removes an endpoint's record. Repeated after any failure: removing an absent endpoint
    /// succeeds.
    pub async fn unrecord(&self, id: &str) -> Result<(), StepError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/agent/endpoints/{id}"),
            None,
            true,
            Repeat::Always,
        )
        .await
        .map(drop)
    }

    pub async fn endpoint(&self, id: &str) -> Result<Option<Value>, StepError> {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/endpoints/{id}/"),
            None,
            true,
            Repeat::Always,
        )
        .await
    }

    pub async fn endpoints(&self) -> Result<Vec<Value>, StepError> {
        let v = self
            .call(
                reqwest::Method::GET,
                "/api/v1/endpoints/",
                None,
                false,
                Repeat::Always,
            )
            .await?
            .unwrap_or_default();
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// A group's 32-bit id (the master's `pktTag` of the group).
    pub async fn group_id(&self, group: &str) -> Result<u32, StepError> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/inspect/endpointGroups/{group}/"),
                None,
                false,
                Repeat::Always,
            )
            .await?
            .unwrap_or_default();
        v["Oper"]["pktTag"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                StepError::new(
                    ErrorKind::MasterRefused,
                    format!("group {group} has no id yet"),
                )
            })
    }

    /// The watch request to one master (registering again after a 401): the response and the
    /// token it went with, or why this master failed (Err of the outer result: no token at all).
    #[allow(clippy::type_complexity)]
    async fn open_watch(
        &self,
        base: &str,
        path: &str,
    ) -> Result<Result<(reqwest::Response, Option<Token>), String>, String> {
        let url = format!("{base}{path}");
        let mut refusals = 0;
        loop {
            let token = self.token().await.map_err(|e| format!("watch: {e}"))?;
            let mut req = self.stream_http.get(&url);
            if let Some(token) = &token {
                req = req.header(AUTH_HEADER, token.expose());
            }
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) => return Ok(Err(format!("netmaster {base}: {}", chain(&e)))),
            };
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                refusals += 1;
                if self.refused(&token, refusals) {
                    continue;
                }
            }
            if !resp.status().is_success() {
                return Ok(Err(format!("netmaster {base}: HTTP {}", resp.status())));
            }
            return Ok(Ok((resp, token)));
        }
    }

    pub async fn get_state(&self) -> Result<Value, StepError> {
        self.call(
            reqwest::Method::GET,
            "/api/v1/state",
            None,
            false,
            Repeat::Always,
        )
        .await
        .map(Option::unwrap_or_default)
    }
}

#[async_trait]
impl MasterApi for MasterClient {
    /// Renews the lease (repeated after any failure: it sets the same lease again) and takes
    /// what the answer says of the control plane: masters not known yet join the failover
    /// list; the fabric AS and reflectors go to the caller. An older master answers `{}`.
    async fn heartbeat(&self, host: &str, lease: Duration) -> Result<Fleet, String> {
        let body = json!({"leaseSecs": lease.as_secs()});
        let answer = self
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/agent/hosts/{host}"),
                Some(body),
                false,
                Repeat::Always,
            )
            .await
            .map_err(|e| e.message)?
            .unwrap_or_default();
        let fleet = Fleet::from_answer(&answer);
        self.learn_masters(&fleet.masters);
        Ok(fleet)
    }

    async fn state(&self) -> Result<Value, String> {
        self.get_state().await.map_err(|e| e.message)
    }

    /// Opens the stream at the current master, failing over to the next one when it cannot
    /// (no connection, a 5xx): the masters serve one store, so `since` means the same on each.
    async fn watch(&self, since: u64) -> Result<BoxStream<'static, Result<Value, String>>, String> {
        let path = format!("/api/v1/watch?since={since}");
        let mut tried = Vec::new();
        let mut opened = None;
        for (index, base) in self.masters.order() {
            match self.open_watch(&base, &path).await? {
                Ok(stream) => {
                    self.masters.answered(index);
                    opened = Some(stream);
                    break;
                }
                Err(reason) => {
                    self.masters.failed(index);
                    tracing::warn!(master = %base, %reason, "watch failed at this netmaster");
                    tried.push(reason);
                }
            }
        }
        let Some((resp, token)) = opened else {
            return Err(format!("watch: {}", tried.join("; ")));
        };
        // The master ends a stream whose session ended with an error line of status 401: the
        // token is dropped and the line turned into a broken stream, so the link reconnects
        // from its revision (registering again) instead of reloading the whole snapshot.
        let auth = self.auth.clone();
        let generation = token.map(|t| t.generation);
        let bytes = resp.bytes_stream();
        let lines = futures::stream::unfold(
            (bytes, Vec::<u8>::new()),
            |(mut bytes, mut buf)| async move {
                loop {
                    if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let parsed = serde_json::from_slice::<Value>(&line)
                            .map_err(|e| format!("watch line: {e}"));
                        return Some((parsed, (bytes, buf)));
                    }
                    match bytes.next().await {
                        Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                        Some(Err(e)) => return Some((Err(format!("watch: {e}")), (bytes, buf))),
                        None => return None,
                    }
                }
            },
        )
        .map(move |line| match line {
            Ok(v) if v["type"] == "error" && v["status"] == 401 => {
                if let (Some(auth), Some(generation)) = (&auth, generation) {
                    auth.credential().refused(generation);
                }
                Err("watch: the netmaster ended the session (401)".to_string())
            }
            other => other,
        });
        Ok(lines.boxed())
    }
}

#[cfg(test)]
mod tests;

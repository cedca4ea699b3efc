//! The agent's HTTP client of the master: IPAM (allocate/reserve/release), endpoint records, the
//! registration heartbeat, the state snapshot and the watch stream.
//!
//! With a bootstrap secret (`--master-secret-file`) the agent registers as its host
//! (`POST /api/v1/agent/register`) and sends the token it gets as `X-Auth-Token` on every
//! request, the watch stream and heartbeats included. A 401 (the token expired or an admin
//! revoked it) makes it register again and repeat the request, at most [`MAX_REFUSALS`] times,
//! so an attach in flight does not fail over a token that a registration replaces; a 401 is
//! answered before the master does anything, so repeating is safe. One registration runs at a
//! time: requests refused together wait for it and share its token.

use crate::credential::{Credential, Secret, Token};
use crate::tls::{self, Trust};
use async_trait::async_trait;
use fabric_actors::endpoint::{ErrorKind, StepError};
use fabric_actors::master_link::MasterApi;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long one request may take before the master counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(5);
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
    base: String,
    http: reqwest::Client,
    /// Without a timeout, for the watch stream.
    stream_http: reqwest::Client,
    auth: Option<Arc<Auth>>,
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

fn unreachable(base: &str, e: reqwest::Error) -> StepError {
    StepError::new(
        ErrorKind::MasterUnreachable,
        format!("netmaster {base} unreachable: {}", chain(&e)),
    )
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
    pub fn new(base: &str) -> Result<MasterClient, ClientError> {
        MasterClient::with_options(base, ClientOptions::default())
    }

    pub fn with_options(base: &str, options: ClientOptions) -> Result<MasterClient, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        let https = base.starts_with("https://");
        if options.credential.is_some() && !https && !tls::is_loopback(&base) && !options.insecure {
            return Err(ClientError::PlainCredentials(base));
        }
        // Roots are loaded only for an https:// master; a plain one never uses them.
        let config = if https {
            tls::client_config(&options.trust)?
        } else {
            tls::client_config(&Trust::Anyone)?
        };
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .tls_backend_preconfigured(config.clone())
                // A redirect would carry the token to another address.
                .redirect(reqwest::redirect::Policy::none())
        };
        Ok(MasterClient {
            base,
            http: builder().timeout(TIMEOUT).build()?,
            stream_http: builder().build()?,
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

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether requests carry a token.
    pub fn authenticates(&self) -> bool {
        self.auth.is_some()
    }

    /// `POST /api/v1/agent/register` once; the token.
    async fn register_once(&self, auth: &Auth) -> Result<String, RegisterError> {
        let url = format!("{}/api/v1/agent/register", self.base);
        let body = json!({"host": auth.host, "secret": auth.secret.expose()});
        let resp = self.http.post(&url).json(&body).send().await.map_err(|e| {
            RegisterError::Unreachable(format!(
                "netmaster {} unreachable: {}",
                self.base,
                chain(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = resp.text().await.map_err(|e| {
            RegisterError::Unreachable(format!(
                "netmaster {} unreachable: {}",
                self.base,
                chain(&e)
            ))
        })?;
        match status {
            200 => serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["token"].as_str().map(String::from))
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    RegisterError::Unreachable("the netmaster's registration answer has no token".into())
                }),
            429 => Err(RegisterError::Throttled(Duration::from_secs(
                retry_after.unwrap_or(1).max(1),
            ))),
            // A master starting or failing: the request may work later.
            500..=599 if status != 503 => Err(RegisterError::Unreachable(format!(
                "the netmaster failed registering host {}: {status} {}",
                auth.host,
                message_of(&text)
            ))),
            _ => Err(RegisterError::Refused(format!(
                "the netmaster refused to register host {} ({status}): {} (check --master-secret-file)",
                auth.host,
                message_of(&text)
            ))),
        }
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
    ) -> Result<Option<Value>, StepError> {
        let (status, text) = self.send(&method, path, body).await?;
        if status.as_u16() == 404 && missing_ok {
            return Ok(None);
        }
        refused_unless_success(&method, path, status, &text)?;
        Ok(Some(serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// One request with the agent's token (registering again on a 401): the status and body.
    async fn send(
        &self,
        method: &reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(reqwest::StatusCode, String), StepError> {
        let url = format!("{}{path}", self.base);
        let mut refusals = 0;
        loop {
            let token = self.token().await?;
            let mut req = self.http.request(method.clone(), &url);
            if let Some(token) = &token {
                req = req.header(AUTH_HEADER, token.expose());
            }
            if let Some(body) = &body {
                req = req.json(body);
            }
            let resp = req.send().await.map_err(|e| unreachable(&self.base, e))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| unreachable(&self.base, e))?;
            if status == reqwest::StatusCode::UNAUTHORIZED {
                refusals += 1;
                if self.refused(&token, refusals) {
                    continue;
                }
            }
            return Ok((status, text));
        }
    }

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
        )
        .await
        .map(Option::unwrap_or_default)
    }

    /// Releases `ip` while `owner` (an endpoint id) or this host's reserve holds it.
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
        let (status, text) = self.send(&method, path, Some(body)).await?;
        // 409: someone else holds it now, so nothing of ours is left to give back, which is
        // what an undo or a sweep wants.
        if status == reqwest::StatusCode::CONFLICT {
            tracing::debug!(%ip, network, "released address is held by another endpoint now");
            return Ok(());
        }
        refused_unless_success(&method, path, status, &text)
    }

    /// Asks the master to keep up to `count` addresses of the network (or of the group's
    /// ipPool) for this host.
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

    /// Gives back every address the master keeps for this host; returns how many.
    pub async fn unreserve_all(&self, host: &str) -> Result<u64, StepError> {
        let v = self
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/agent/hosts/{host}/reservations"),
                None,
                false,
            )
            .await?;
        Ok(v.and_then(|v| v["released"].as_u64()).unwrap_or(0))
    }

    /// Records an endpoint whose address the master allocated to it or reserved for its host
    /// (the master refuses any other).
    pub async fn record(&self, id: &str, endpoint: Value) -> Result<(), StepError> {
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v1/agent/endpoints/{id}?reserved=true"),
            Some(endpoint),
            false,
        )
        .await
        .map(drop)
    }

    pub async fn unrecord(&self, id: &str) -> Result<(), StepError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/agent/endpoints/{id}"),
            None,
            true,
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
        )
        .await
    }

    pub async fn endpoints(&self) -> Result<Vec<Value>, StepError> {
        let v = self
            .call(reqwest::Method::GET, "/api/v1/endpoints/", None, false)
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

    pub async fn get_state(&self) -> Result<Value, StepError> {
        self.call(reqwest::Method::GET, "/api/v1/state", None, false)
            .await
            .map(Option::unwrap_or_default)
    }
}

#[async_trait]
impl MasterApi for MasterClient {
    async fn heartbeat(&self, host: &str, lease: Duration) -> Result<(), String> {
        let body = json!({"leaseSecs": lease.as_secs()});
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v1/agent/hosts/{host}"),
            Some(body),
            false,
        )
        .await
        .map(drop)
        .map_err(|e| e.message)
    }

    async fn state(&self) -> Result<Value, String> {
        self.get_state().await.map_err(|e| e.message)
    }

    async fn watch(&self, since: u64) -> Result<BoxStream<'static, Result<Value, String>>, String> {
        let url = format!("{}/api/v1/watch?since={since}", self.base);
        let mut refusals = 0;
        let (resp, token) = loop {
            let token = self.token().await.map_err(|e| format!("watch: {e}"))?;
            let mut req = self.stream_http.get(&url);
            if let Some(token) = &token {
                req = req.header(AUTH_HEADER, token.expose());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| format!("watch: {}", chain(&e)))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                refusals += 1;
                if self.refused(&token, refusals) {
                    continue;
                }
            }
            break (resp, token);
        };
        if !resp.status().is_success() {
            return Err(format!("watch: HTTP {}", resp.status()));
        }
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

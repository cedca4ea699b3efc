//! Blocking HTTP client of the netmaster's REST API (`/api/v1/<collection>/<key>/`), one
//! keep-alive connection pool for the whole command. Errors carry the server's own message.
//!
//! `--netmaster` may list several masters of one control plane (`https://a:9999,https://b:9999`):
//! they serve the same store, so any of them answers. A request goes to the current master; when
//! that one fails it goes to the next, each master at most once per request, and the master that
//! answered stays the current one for the rest of the command. A read is repeated after any
//! failure (no connection, a timeout, a 5xx); a write (POST, PATCH, DELETE) only when it cannot
//! have been applied: no connection was made, the TLS handshake failed, or the master answered
//! 503 (it refuses before doing anything: its connection cap, a store not ready). A write that
//! timed out or got a 500 may have been applied, so repeating it elsewhere could run it twice
//! (a second user create fails with "exists", an object delete with "not found"): the error says
//! so and the user decides.
//!
//! `https://` URLs are verified against the system's roots plus `--cacert` (rustls, TLS 1.2 and
//! 1.3 only); `--insecure` skips that check. A known token goes in the `X-Auth-Token` header of
//! every request (Contiv's auth_proxy header); credentials never go over plain HTTP to another
//! host unless `--insecure` says so.

use fabric_model::{Collection, Object};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// A CLI should never hang: one request may take this long at most.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A master that does not accept the connection by then is skipped for the next one; without
/// it, a powered-off master (no RST) would eat the whole [`REQUEST_TIMEOUT`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Contiv's auth_proxy header of the login token.
pub const AUTH_HEADER: &str = "X-Auth-Token";

/// What a 401 tells the user.
pub const NOT_LOGGED_IN: &str = "not logged in or the token expired: run netctl login";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("netmaster URL '{0}' is not supported: use http://host:port or https://host:port")]
    Url(String),
    #[error("cannot reach the netmaster at {url}")]
    Transport {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// The TLS handshake failed on the netmaster's certificate.
    #[error(
        "the netmaster's certificate at {url} is not trusted: pass its CA with --cacert \
         (a self-signed netmaster's is <data-dir>/tls/cert.pem), or --insecure to skip the check"
    )]
    Certificate {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// 401: no token, or one the netmaster no longer accepts.
    #[error("{NOT_LOGGED_IN}{}", detail(.message))]
    Unauthorized { message: String },
    /// 403: the caller's roles do not allow this.
    #[error("permission denied: {message}")]
    Forbidden { message: String },
    /// The netmaster answered with an error; `message` is its own text.
    #[error("{message}")]
    Server { status: u16, message: String },
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
    #[error("--cacert {path}: {reason}")]
    CaCert { path: PathBuf, reason: String },
    #[error(
        "refusing to send credentials over plain HTTP to {url}: use https:// \
         (or --insecure if the netmaster runs with --insecure-http on purpose)"
    )]
    PlainCredentials { url: String },
    /// `--netmaster` lists no URL at all.
    #[error("--netmaster lists no URL")]
    NoNetmaster,
    /// Every master of the list failed the request; each one's reason, in the order tried.
    #[error("no netmaster could serve {what}: {}", tried.join("; "))]
    AllFailed { what: String, tried: Vec<String> },
    /// A write failed after it may have reached a master: not repeated on the next one.
    #[error(
        "{what} failed at {url} after it was sent, so it may have been applied; not repeated on \
         another netmaster: {reason}"
    )]
    MaybeApplied {
        what: String,
        url: String,
        reason: String,
    },
}

/// The server's own words after a fixed sentence, when it said something.
fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" (netmaster: {message})")
    }
}

/// The JSON error body of the REST contract (and Contiv auth_proxy's `{"error": ...}`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    message: String,
    error: String,
    object: String,
    field: String,
    reason: String,
}

/// A create-or-update: where it goes and what is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub collection: Collection,
    pub key: String,
    pub body: Value,
}

impl Write {
    /// The write of a model object, with its `key` field set as Contiv's client does.
    pub fn of<T: Object>(object: &T) -> Write {
        let mut object = object.clone();
        object.set_key();
        Write {
            collection: T::COLLECTION,
            key: object.key(),
            // Serialising a model type into a Value cannot fail: all its maps have string keys.
            body: serde_json::to_value(&object).unwrap_or(Value::Null),
        }
    }
}

/// Contiv's inspect answer: the configuration and the operational state.
#[derive(Debug, Serialize, Deserialize)]
pub struct Inspect<T> {
    #[serde(rename = "Config")]
    pub config: T,
    #[serde(rename = "Oper", default)]
    pub oper: Value,
}

/// How to reach the netmaster: the global flags and the token, if one is known.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// One URL, or several separated by commas (masters of one control plane).
    pub netmaster: String,
    /// Skip certificate verification (and allow credentials over plain HTTP).
    pub insecure: bool,
    /// PEM file of extra trusted roots.
    pub cacert: Option<PathBuf>,
    pub token: Option<String>,
}

pub struct Client {
    /// The masters, in the order given; never empty.
    bases: Vec<String>,
    /// Index in `bases` of the master requests go to first.
    current: AtomicUsize,
    agent: ureq::Agent,
    token: Option<String>,
}

/// Whether a request may be repeated on the next master after it failed on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// A read: after any failure of the master.
    Always,
    /// A write: only when it cannot have been applied.
    IfNotApplied,
}

/// The URLs of `--netmaster`: comma-separated, each without its trailing `/`, duplicates
/// dropped, each checked to be an `http://` or `https://` URL with a host.
pub fn netmasters(list: &str) -> Result<Vec<String>, ClientError> {
    let mut urls: Vec<String> = Vec::new();
    for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let url = url.trim_end_matches('/');
        if parse_base(url).is_none() {
            return Err(ClientError::Url(url.to_string()));
        }
        if !urls.iter().any(|u| u == url) {
            urls.push(url.to_string());
        }
    }
    if urls.is_empty() {
        return Err(ClientError::NoNetmaster);
    }
    Ok(urls)
}

impl Client {
    pub fn new(options: &Options) -> Result<Client, ClientError> {
        let bases = netmasters(&options.netmaster)?;
        let https = bases.iter().any(|b| b.starts_with("https://"));
        if options.token.is_some() {
            for base in &bases {
                check_credentials_allowed(base, options.insecure)?;
            }
        }
        let tls = if !https {
            TlsConfig::default()
        } else if options.insecure {
            warn("--insecure: the netmaster's TLS certificate is not verified");
            TlsConfig::builder().disable_verification(true).build()
        } else {
            TlsConfig::builder()
                .root_certs(root_certs(options.cacert.as_deref())?)
                .build()
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // The REST API never redirects; a redirect must not carry the token elsewhere.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(Client {
            bases,
            current: AtomicUsize::new(0),
            agent,
            token: options.token.clone(),
        })
    }

    /// The netmaster URLs, without trailing slashes, in the order given.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// The master that answered last (the first one before any request).
    #[cfg(test)]
    fn current(&self) -> &str {
        let i = self.current.load(Ordering::Relaxed);
        self.bases
            .get(i)
            .or_else(|| self.bases.first())
            .map_or("", String::as_str)
    }

    pub fn list<T: Object>(&self) -> Result<Vec<T>, ClientError> {
        self.get_json(&collection_path(T::COLLECTION))
    }

    pub fn get<T: Object>(&self, key: &str) -> Result<T, ClientError> {
        self.get_json(&object_path(T::COLLECTION, key))
    }

    /// Like [`Client::get`], but an absent object is `None` rather than an error.
    pub fn get_optional<T: Object>(&self, key: &str) -> Result<Option<T>, ClientError> {
        match self.get(key) {
            Ok(object) => Ok(Some(object)),
            Err(ClientError::Server { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn inspect<T: Object>(&self, key: &str) -> Result<Inspect<T>, ClientError> {
        let path = format!(
            "/api/v1/inspect/{}/{}/",
            T::COLLECTION.rest_name(),
            encode(key)
        );
        self.get_json(&path)
    }

    pub fn post(&self, write: &Write) -> Result<Value, ClientError> {
        self.post_json(&object_path(write.collection, &write.key), &write.body)
    }

    pub fn delete(&self, collection: Collection, key: &str) -> Result<(), ClientError> {
        self.delete_path(&object_path(collection, key))
    }

    /// GET of any path of the netmaster, e.g. `/version`.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.exchange("GET", path, Repeat::Always, |url| {
            self.authed(self.agent.get(url)).call()
        })
    }

    /// POST of a JSON body to any path; the answer's JSON (null when empty).
    pub fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ClientError> {
        self.exchange("POST", path, Repeat::IfNotApplied, |url| {
            self.authed(self.agent.post(url))
                .header("Content-Type", "application/json")
                .send(body.to_string())
        })
    }

    /// PATCH of a JSON body (Contiv auth_proxy's user update).
    pub fn patch_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ClientError> {
        self.exchange("PATCH", path, Repeat::IfNotApplied, |url| {
            self.authed(self.agent.patch(url))
                .header("Content-Type", "application/json")
                .send(body.to_string())
        })
    }

    pub fn delete_path(&self, path: &str) -> Result<(), ClientError> {
        self.exchange::<Value>("DELETE", path, Repeat::IfNotApplied, |url| {
            self.authed(self.agent.delete(url)).call()
        })
        .map(|_| ())
    }

    /// One request: to the current master, then to each other one in turn while the failure
    /// allows repeating it (see the module doc). The master that answers becomes current.
    fn exchange<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        repeat: Repeat,
        send: impl Fn(&str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        let what = format!("{method} {path}");
        let start = self.current.load(Ordering::Relaxed);
        let count = self.bases.len();
        let mut tried = Vec::new();
        for step in 0..count {
            let index = (start + step) % count;
            let base = &self.bases[index];
            let url = format!("{base}{path}");
            let error = match self.read::<T>(&url, send(&url)) {
                Err(e) => e,
                Ok(answer) => {
                    self.current.store(index, Ordering::Relaxed);
                    return Ok(answer);
                }
            };
            let Some(applied) = master_failure(&error) else {
                // The master answered (a 4xx, a bad body): the others would say the same.
                self.current.store(index, Ordering::Relaxed);
                return Err(error);
            };
            let reason = error_chain(&error);
            if applied && repeat == Repeat::IfNotApplied {
                if count == 1 {
                    return Err(error);
                }
                return Err(ClientError::MaybeApplied {
                    what,
                    url: base.clone(),
                    reason,
                });
            }
            // Later requests of this command start at the next master.
            self.current.store((index + 1) % count, Ordering::Relaxed);
            if count == 1 {
                return Err(error);
            }
            if let Some(next) = (step + 1 < count).then(|| &self.bases[(index + 1) % count]) {
                warn(&format!(
                    "netmaster {base} failed {what} ({reason}); trying {next}"
                ));
            }
            tried.push(format!("{base}: {reason}"));
        }
        Err(ClientError::AllFailed { what, tried })
    }

    /// The answer's JSON; a 401 to a request without a token keeps only the fixed sentence
    /// (the server's explanation of the header is for API clients, not netctl's users).
    fn read<T: DeserializeOwned>(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        match read_json(url, response) {
            Err(ClientError::Unauthorized { .. }) if self.token.is_none() => {
                Err(ClientError::Unauthorized {
                    message: String::new(),
                })
            }
            other => other,
        }
    }

    /// Adds the token header when a token is known.
    fn authed<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header(AUTH_HEADER, token),
            None => request,
        }
    }
}

/// Whether an error is the master failing rather than answering: `None` for an answer (a
/// 4xx, a body that is not JSON), else `Some(may_have_been_applied)`.
fn master_failure(error: &ClientError) -> Option<bool> {
    match error {
        // The handshake comes before the request: nothing was sent.
        ClientError::Certificate { .. } => Some(false),
        ClientError::Transport { source, .. } => Some(!never_sent(source)),
        // Answered before any work (connection cap, the store or signing key not ready).
        ClientError::Server { status: 503, .. } => Some(false),
        ClientError::Server { status, .. } if *status >= 500 => Some(true),
        _ => None,
    }
}

/// Whether the transport error happened before the request could leave (no connection).
fn never_sent(error: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    use ureq::Timeout;
    match error {
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::AddrNotAvailable
        ),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Timeout(Timeout::Connect | Timeout::Resolve) => true,
        _ => false,
    }
}

/// An error with its causes, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `(scheme, host)` of an `http://` or `https://` URL with a host, else `None`.
fn parse_base(url: &str) -> Option<(&'static str, String)> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else {
        return None;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme, host.to_ascii_lowercase()))
}

/// Credentials (a login, a token) go over TLS, or over plain HTTP to this very host, or when
/// `--insecure` accepts the risk (with a warning). Contiv refused plain HTTP outright.
pub fn check_credentials_allowed(base: &str, insecure: bool) -> Result<(), ClientError> {
    let Some((scheme, host)) = parse_base(base) else {
        return Err(ClientError::Url(base.to_string()));
    };
    if scheme == "https" || is_loopback(&host) {
        return Ok(());
    }
    if insecure {
        warn(&format!(
            "--insecure: credentials go over plain HTTP to {base}"
        ));
        return Ok(());
    }
    Err(ClientError::PlainCredentials {
        url: base.to_string(),
    })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The system's roots plus those of `--cacert`; Mozilla's roots when the system has none.
fn root_certs(cacert: Option<&Path>) -> Result<RootCerts, ClientError> {
    let mut certs: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if let Some(path) = cacert {
        certs.extend(read_cacert(path)?);
    }
    if certs.is_empty() {
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// The certificates of a PEM file; an error if it has none.
pub fn read_cacert(path: &Path) -> Result<Vec<Certificate<'static>>, ClientError> {
    let failure = |reason: String| ClientError::CaCert {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| failure(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(failure(e.to_string())),
        }
    }
    if certs.is_empty() {
        return Err(failure("no PEM certificate in the file".to_string()));
    }
    Ok(certs)
}

/// A warning on stderr in Contiv's (logrus) style.
pub fn warn(message: &str) {
    eprintln!("WARN[0000] {message}");
}

pub fn collection_path(collection: Collection) -> String {
    format!("/api/v1/{}/", collection.rest_name())
}

pub fn object_path(collection: Collection, key: &str) -> String {
    format!("/api/v1/{}/{}/", collection.rest_name(), encode(key))
}

/// Percent-encodes what may not appear raw in a path segment (keys keep their ':').
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@!$&'()*+,;=".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn read_json<T: DeserializeOwned>(
    url: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<T, ClientError> {
    let mut response = response.map_err(|source| transport_error(url, source))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    if !(200..300).contains(&status) {
        return Err(status_error(status, &body));
    }
    // An empty answer (204) reads as JSON null.
    let body = if body.trim().is_empty() {
        "null"
    } else {
        &body
    };
    serde_json::from_str(body).map_err(|e| ClientError::Decode {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// A request that got no answer; certificate failures get their own hint.
fn transport_error(url: &str, source: ureq::Error) -> ClientError {
    let text = source.to_string().to_ascii_lowercase();
    if text.contains("certificate") || text.contains("unknownissuer") {
        ClientError::Certificate {
            url: origin(url).to_string(),
            source,
        }
    } else {
        ClientError::Transport {
            url: url.to_string(),
            source,
        }
    }
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].find('/') {
        Some(i) => &url[..start + i],
        None => url,
    }
}

/// The error of a non-2xx answer.
fn status_error(status: u16, body: &str) -> ClientError {
    match status {
        401 => ClientError::Unauthorized {
            message: short_message(body),
        },
        403 => ClientError::Forbidden {
            message: server_message(status, body),
        },
        _ => ClientError::Server {
            status,
            message: server_message(status, body),
        },
    }
}

/// The server's words of a 401, or nothing.
fn short_message(body: &str) -> String {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
    for text in [parsed.message, parsed.error, parsed.reason] {
        if !text.is_empty() {
            return text;
        }
    }
    body.trim().chars().take(200).collect()
}

/// The human line of an error answer: its `message`, else object/field/reason, else the body.
fn server_message(status: u16, body: &str) -> String {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
    if !parsed.message.is_empty() {
        return parsed.message;
    }
    if !parsed.error.is_empty() {
        return parsed.error;
    }
    if !parsed.field.is_empty() {
        return format!(
            "{}: field '{}': {}",
            parsed.object, parsed.field, parsed.reason
        );
    }
    let text = body.trim();
    if text.is_empty() {
        format!("netmaster answered HTTP {status}")
    } else {
        format!("netmaster answered HTTP {status}: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_model::Network;
    use std::sync::Arc;

    #[test]
    fn write_of_sets_key_and_collection() {
        let net = Network {
            tenant_name: "blue".into(),
            network_name: "contiv-net".into(),
            ..Network::default()
        };
        let w = Write::of(&net);
        assert_eq!(w.collection, Collection::Networks);
        assert_eq!(w.key, "blue:contiv-net");
        assert_eq!(w.body["key"], "blue:contiv-net");
        assert_eq!(w.body["networkName"], "contiv-net");
    }

    #[test]
    fn paths() {
        assert_eq!(
            object_path(Collection::Rules, "default:db-policy:1"),
            "/api/v1/rules/default:db-policy:1/"
        );
        assert_eq!(collection_path(Collection::Bgps), "/api/v1/Bgps/");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(origin("https://h:1/api/v1/x/"), "https://h:1");
        assert_eq!(origin("https://h:1"), "https://h:1");
    }

    #[test]
    fn server_messages() {
        let body = r#"{"message":"networks/blue:x: field 'subnet': bad","object":"networks/blue:x","field":"subnet","reason":"bad"}"#;
        assert_eq!(
            server_message(422, body),
            "networks/blue:x: field 'subnet': bad"
        );
        let body = r#"{"object":"networks/blue:x","field":"subnet","reason":"bad"}"#;
        assert_eq!(
            server_message(422, body),
            "networks/blue:x: field 'subnet': bad"
        );
        assert_eq!(
            server_message(500, "boom"),
            "netmaster answered HTTP 500: boom"
        );
        assert_eq!(server_message(404, ""), "netmaster answered HTTP 404");
    }

    fn options(url: &str) -> Options {
        Options {
            netmaster: url.into(),
            ..Options::default()
        }
    }

    #[test]
    fn http_and_https_urls() {
        assert!(Client::new(&options("http://localhost:9999/")).is_ok());
        assert!(Client::new(&options("https://h:1")).is_ok());
        assert!(Client::new(&options("https://[::1]:9999")).is_ok());
        for bad in ["localhost", "ftp://h:1", "https://", "http://:9999"] {
            assert!(
                matches!(Client::new(&options(bad)), Err(ClientError::Url(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_base("https://[::1]:9999/x"),
            Some(("https", "::1".to_string()))
        );
        assert_eq!(
            parse_base("http://Master:9999"),
            Some(("http", "master".to_string()))
        );
    }

    #[test]
    fn credentials_only_over_tls_or_to_this_host() {
        for ok in [
            "https://10.0.0.1:9999",
            "http://127.0.0.1:9999",
            "http://localhost:9999",
            "http://[::1]:9999",
        ] {
            assert!(check_credentials_allowed(ok, false).is_ok(), "{ok}");
        }
        let err = check_credentials_allowed("http://10.0.0.1:9999", false).unwrap_err();
        assert!(err.to_string().contains("https://"), "{err}");
        assert!(check_credentials_allowed("http://10.0.0.1:9999", true).is_ok());
        let with_token = Options {
            token: Some("t".into()),
            ..options("http://netmaster:9999")
        };
        assert!(matches!(
            Client::new(&with_token),
            Err(ClientError::PlainCredentials { .. })
        ));
    }

    /// A self-signed certificate (CN netctl-test), to read as `--cacert`.
    const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBgjCCASegAwIBAgIUbMcvI0N20NHYvMAuLwpeB0+HnA0wCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLbmV0Y3RsLXRlc3QwHhcNMjYxMjA2MDg0NDI1WhcNMzYxMjAz
MDg0NDI1WjAWMRQwEgYDVQQDDAtuZXRjdGwtdGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABFE8dlWzM0cJZ4h+Rj8Iy3dRI2rSny0s8ht9KHmSBVoLVEKhhC/V
qi+Kv0gnEZp52V40x7sdtYEUrbYum4RfGpajUzBRMB0GA1UdDgQWBBTYl87+Kp42
7SKapfdIbiZq0rbFazAfBgNVHSMEGDAWgBTYl87+Kp427SKapfdIbiZq0rbFazAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQD5ZgtcMIoaI196N4qp
k5Ryva+lZwNn2/sHOVXO8Gp8qgIhALmiVDKO61EgiZ5cADYkBIrDgrCIIBLmEYD8
rZEmgVRk
-----END CERTIFICATE-----
";

    #[test]
    fn cacert_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, format!("junk before\n{TEST_CERT}")).unwrap();
        assert_eq!(read_cacert(&good).unwrap().len(), 1);
        let with_ca = Options {
            cacert: Some(good),
            ..options("https://h:1")
        };
        assert!(Client::new(&with_ca).is_ok());

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err = read_cacert(&empty).unwrap_err().to_string();
        assert!(
            err.contains("empty.pem") && err.contains("no PEM certificate"),
            "{err}"
        );
        let err = read_cacert(&dir.path().join("absent.pem")).unwrap_err();
        assert!(err.to_string().contains("absent.pem"), "{err}");
        // A bad --cacert is an error even before any request.
        let bad = Options {
            cacert: Some(empty),
            ..options("https://h:1")
        };
        assert!(matches!(Client::new(&bad), Err(ClientError::CaCert { .. })));
    }

    /// A one-shot HTTP server on loopback: answers `status` and `body` to one request and
    /// hands back the request's head.
    fn one_shot(status: &str, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let status = status.to_string();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            let mut request_body = vec![0; length];
            std::io::Read::read_exact(&mut reader, &mut request_body).unwrap();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            head
        });
        (url, server)
    }

    /// A loopback HTTP server answering every request with `status` and `body` (one request
    /// per connection); counts the requests it got.
    fn counting(status: &str, body: &'static str) -> (String, Arc<AtomicUsize>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        let status = status.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut request_body = vec![0; length];
                let _ = std::io::Read::read_exact(&mut reader, &mut request_body);
                count.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, seen)
    }

    /// A loopback URL nobody listens on (connections are refused).
    fn dead_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        url
    }

    #[test]
    fn netmaster_lists() {
        assert_eq!(
            netmasters(" https://a:1/, https://b:2 ,,https://a:1").unwrap(),
            ["https://a:1", "https://b:2"]
        );
        assert!(matches!(netmasters(" , "), Err(ClientError::NoNetmaster)));
        assert!(matches!(netmasters("https://a:1,b:2"), Err(ClientError::Url(u)) if u == "b:2"));
        // A token must be allowed to every master of the list.
        let with_token = Options {
            token: Some("t".into()),
            ..options("https://a:1,http://10.0.0.2:9999")
        };
        assert!(matches!(
            Client::new(&with_token),
            Err(ClientError::PlainCredentials { url }) if url == "http://10.0.0.2:9999"
        ));
    }

    #[test]
    fn a_read_goes_to_the_next_master_after_no_connection_a_503_or_a_500() {
        let (good, good_seen) = counting("200 OK", r#"{"ok": true}"#);
        let (busy, busy_seen) = counting("503 Service Unavailable", r#"{"message":"busy"}"#);
        let (broken, broken_seen) = counting("500 Internal Server Error", r#"{"message":"store"}"#);
        let list = format!("{},{busy},{broken},{good}", dead_url());
        let client = Client::new(&options(&list)).unwrap();
        let answer: Value = client.get_json("/api/v1/tenants/").unwrap();
        assert_eq!(answer["ok"], true);
        assert_eq!(busy_seen.load(Ordering::SeqCst), 1);
        assert_eq!(broken_seen.load(Ordering::SeqCst), 1);
        assert_eq!(good_seen.load(Ordering::SeqCst), 1);
        // The master that answered stays current: the next request goes straight to it.
        assert_eq!(client.current(), good);
        let _: Value = client.get_json("/api/v1/tenants/").unwrap();
        assert_eq!(busy_seen.load(Ordering::SeqCst), 1);
        assert_eq!(good_seen.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_write_is_repeated_only_when_it_cannot_have_been_applied() {
        let (good, good_seen) = counting("200 OK", "{}");
        let (busy, busy_seen) = counting("503 Service Unavailable", "{}");
        // No connection, then a 503: neither applied it.
        let client = Client::new(&options(&format!("{},{busy},{good}", dead_url()))).unwrap();
        client
            .post_json::<Value>("/api/v1/tenants/blue/", &serde_json::json!({}))
            .unwrap();
        assert_eq!(busy_seen.load(Ordering::SeqCst), 1);
        assert_eq!(good_seen.load(Ordering::SeqCst), 1);
        // A 500 may come after the write was done: not repeated on the next master.
        let (broken, broken_seen) = counting("500 Internal Server Error", r#"{"message":"store"}"#);
        let client = Client::new(&options(&format!("{broken},{good}"))).unwrap();
        let err = client.delete_path("/api/v1/tenants/blue/").unwrap_err();
        assert!(
            matches!(&err, ClientError::MaybeApplied { url, .. } if *url == broken),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("may have been applied") && text.contains("store"),
            "{text}"
        );
        assert_eq!(broken_seen.load(Ordering::SeqCst), 1);
        assert_eq!(
            good_seen.load(Ordering::SeqCst),
            1,
            "not sent to the second master"
        );
        // A 4xx is an answer: the others would say the same.
        let (missing, _) = counting("404 Not Found", r#"{"message":"no such tenant"}"#);
        let client = Client::new(&options(&format!("{missing},{good}"))).unwrap();
        let err = client.get_json::<Value>("/api/v1/tenants/x/").unwrap_err();
        assert_eq!(err.to_string(), "no such tenant");
        assert_eq!(good_seen.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn when_every_master_fails_the_error_names_each_and_why() {
        let dead = dead_url();
        let (busy, busy_seen) = counting("503 Service Unavailable", r#"{"message":"too busy"}"#);
        let client = Client::new(&options(&format!("{dead},{busy}"))).unwrap();
        let err = client.get_json::<Value>("/api/v1/tenants/").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("no netmaster could serve GET /api/v1/tenants/"),
            "{text}"
        );
        assert!(text.contains(&format!("{dead}: cannot reach")), "{text}");
        assert!(text.contains(&format!("{busy}: too busy")), "{text}");
        // Each master once per request.
        assert_eq!(busy_seen.load(Ordering::SeqCst), 1);
        // One master: its own error, as before lists existed.
        let client = Client::new(&options(&dead)).unwrap();
        let err = client.get_json::<Value>("/api/v1/tenants/").unwrap_err();
        assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    }

    #[test]
    fn the_token_goes_in_every_request() {
        for method in ["GET", "POST", "PATCH", "DELETE"] {
            let (url, server) = one_shot("200 OK", "{}");
            let client = Client::new(&Options {
                token: Some("tok-123".into()),
                ..options(&url)
            })
            .unwrap();
            let path = "/api/v1/tenants/blue/";
            let body = serde_json::json!({});
            match method {
                "GET" => client.get_json::<Value>(path).map(|_| ()),
                "POST" => client.post_json::<Value>(path, &body).map(|_| ()),
                "PATCH" => client.patch_json::<Value>(path, &body).map(|_| ()),
                _ => client.delete_path(path),
            }
            .unwrap();
            let head = server.join().unwrap().to_ascii_lowercase();
            assert!(head.starts_with(&method.to_ascii_lowercase()), "{head}");
            assert!(head.contains("\r\nx-auth-token: tok-123\r\n"), "{head}");
        }
    }

    #[test]
    fn no_token_no_header() {
        let (url, server) = one_shot("200 OK", "[]");
        let client = Client::new(&options(&url)).unwrap();
        client.get_json::<Value>("/api/v1/tenants/").unwrap();
        let head = server.join().unwrap().to_ascii_lowercase();
        assert!(!head.contains("x-auth-token"), "{head}");
    }

    #[test]
    fn answers_401_and_403_are_clear() {
        // With a token, the server's reason follows.
        let (url, server) = one_shot("401 Unauthorized", r#"{"error":"token expired"}"#);
        let with_token = Options {
            token: Some("old".into()),
            ..options(&url)
        };
        let err = Client::new(&with_token)
            .unwrap()
            .get_json::<Value>("/api/v1/tenants/")
            .unwrap_err();
        server.join().unwrap();
        assert_eq!(
            err.to_string(),
            "not logged in or the token expired: run netctl login (netmaster: token expired)"
        );
        // Without one, the sentence alone.
        let (url, server) = one_shot("401 Unauthorized", r#"{"message":"send X-Auth-Token"}"#);
        let client = Client::new(&options(&url)).unwrap();
        let err = client.get_json::<Value>("/api/v1/tenants/").unwrap_err();
        server.join().unwrap();
        assert_eq!(err.to_string(), NOT_LOGGED_IN);
        let (url, server) = one_shot(
            "403 Forbidden",
            r#"{"message":"ops of blue may not write tenant default"}"#,
        );
        let client = Client::new(&options(&url)).unwrap();
        let err = client.get_json::<Value>("/api/v1/tenants/").unwrap_err();
        server.join().unwrap();
        assert_eq!(
            err.to_string(),
            "permission denied: ops of blue may not write tenant default"
        );
        // An empty 204 answer reads as null.
        let (url, server) = one_shot("204 No Content", "");
        let client = Client::new(&options(&url)).unwrap();
        assert!(client.delete_path("/api/v1/tenants/x/").is_ok());
        server.join().unwrap();
    }
}

//! The client against stand-in masters on loopback (plain and TLS): registration, the token
//! on every request, registering again after a 401 without failing the request, bounded
//! retries, one registration for many refusals, and neither secret nor token in any error.
//! Several masters: a request lands on the next master when one is gone or answers 5xx, a
//! write that may have been applied is not repeated, the error names every master, the watch
//! resumes at the next master from its revision, heartbeats add masters, and a CA bundle
//! trusts each master's own certificate.

use super::*;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

const SECRET: &str = "0123456789abcdef-the-secret";

#[derive(Default)]
struct State {
    registrations: usize,
    /// Tokens the stand-in honours.
    valid: HashSet<String>,
    issued: usize,
    /// Every request but registrations: (method, path, token sent).
    seen: Vec<(String, String, Option<String>)>,
    /// Refuse every token, even fresh ones.
    refuse_all: bool,
    /// Answer registrations 429.
    throttle: bool,
    /// Watch body.
    watch_lines: Vec<String>,
    /// Answer every request (registrations included) with this status.
    fail_with: Option<u16>,
    /// Read each request, then close the connection without answering.
    hang_up: bool,
    /// Body of heartbeat answers (else the default body).
    heartbeat: Option<Value>,
}

#[derive(Clone)]
struct Fake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// Tokens the stand-in saw on requests, in order.
    fn tokens_seen(&self) -> Vec<Option<String>> {
        self.state().seen.iter().map(|s| s.2.clone()).collect()
    }
}

async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Fake {
        addr: listener.local_addr().unwrap(),
        state: Default::default(),
    };
    let state = fake.state.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let state = state.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            serve(stream, state).await;
                        }
                    }
                    None => serve(tcp, state).await,
                }
            });
        }
    });
    fake
}

/// HTTP/1.1 keep-alive, Content-Length bodies only (what reqwest sends here).
async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    state: Arc<Mutex<State>>,
) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match stream.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let Some(first) = head.first() else { return };
        let mut parts = first.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let header = |name: &str| {
            head.iter().skip(1).find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let token = header("x-auth-token");
        let (status, extra, reply) = answer(&state, &method, &path, token, &body);
        if status == 0 {
            return; // hang up: the request arrived, no answer leaves
        }
        let text = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{reply}",
            reply.len()
        );
        if stream.get_mut().write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn answer(
    state: &Mutex<State>,
    method: &str,
    path: &str,
    token: Option<String>,
    body: &[u8],
) -> (u16, String, String) {
    let mut s = state.lock().unwrap();
    if s.hang_up || s.fail_with.is_some() {
        s.seen.push((method.into(), path.into(), token.clone()));
        return match s.fail_with {
            Some(status) => (
                status,
                String::new(),
                json!({"message": format!("failing with {status}")}).to_string(),
            ),
            None => (0, String::new(), String::new()),
        };
    }
    if path == "/api/v1/agent/register" {
        s.registrations += 1;
        if s.throttle {
            return (
                429,
                "retry-after: 7\r\n".into(),
                r#"{"message":"slow down"}"#.into(),
            );
        }
        let req: Value = serde_json::from_slice(body).unwrap_or_default();
        if req["secret"] != SECRET || req["host"] != "host1" {
            return (
                401,
                String::new(),
                r#"{"message":"wrong bootstrap secret"}"#.into(),
            );
        }
        s.issued += 1;
        let token = format!("tok-{}", s.issued);
        s.valid.insert(token.clone());
        return (200, String::new(), json!({ "token": token }).to_string());
    }
    s.seen.push((method.into(), path.into(), token.clone()));
    let honoured = token.as_ref().is_some_and(|t| s.valid.contains(t)) && !s.refuse_all;
    let needs_token = !s.valid.is_empty() || s.issued > 0 || s.refuse_all;
    if needs_token && !honoured {
        return (
            401,
            String::new(),
            r#"{"message":"the token expired"}"#.into(),
        );
    }
    if let (Some(answer), true) = (&s.heartbeat, path.starts_with("/api/v1/agent/hosts/")) {
        return (200, String::new(), answer.to_string());
    }
    if path.starts_with("/api/v1/watch") {
        let lines: String = s.watch_lines.iter().map(|l| format!("{l}\n")).collect();
        return (200, "connection: close\r\n".into(), lines);
    }
    (
        200,
        String::new(),
        r#"{"revision": 3, "objects": {}}"#.into(),
    )
}

fn with_secret(base: &str) -> MasterClient {
    let options = ClientOptions {
        credential: Some(("host1".into(), secret(SECRET))),
        ..ClientOptions::default()
    };
    MasterClient::with_options(base, options).unwrap()
}

fn secret(text: &str) -> Secret {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{text}\n")).unwrap();
    crate::credential::read_secret(&path).unwrap()
}

#[tokio::test]
async fn without_a_secret_no_token_is_sent_and_nothing_registers() {
    let fake = start(None).await;
    let client = MasterClient::new(&fake.url("http")).unwrap();
    assert!(!client.authenticates());
    client.register().await.unwrap();
    client.get_state().await.unwrap();
    client
        .heartbeat("host1", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(fake.state().registrations, 0);
    assert_eq!(fake.tokens_seen(), vec![None, None]);
}

#[tokio::test]
async fn registers_once_and_sends_the_token_on_every_request_the_watch_included() {
    let fake = start(None).await;
    fake.state().watch_lines = vec![r#"{"revision": 4, "type": "put"}"#.into()];
    let client = with_secret(&fake.url("http"));
    client.register().await.unwrap();
    client.allocate("n", "", "ep1").await.unwrap();
    client
        .heartbeat("host1", Duration::from_secs(15))
        .await
        .unwrap();
    client.state().await.unwrap();
    let lines: Vec<_> = client.watch(3).await.unwrap().collect().await;
    assert_eq!(lines.len(), 1);
    assert!(lines[0].is_ok());
    assert_eq!(fake.state().registrations, 1);
    let seen = fake.tokens_seen();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter().all(|t| t.as_deref() == Some("tok-1")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_revoked_token_is_replaced_and_the_request_in_flight_succeeds() {
    let fake = start(None).await;
    let client = with_secret(&fake.url("http"));
    client.register().await.unwrap();
    fake.state().valid.clear(); // an admin revoked the host's credential
    client
        .record("ep1", json!({"id": "ep1"}))
        .await
        .expect("the record goes through after registering again");
    assert_eq!(fake.state().registrations, 2);
    assert_eq!(
        fake.tokens_seen(),
        vec![Some("tok-1".into()), Some("tok-2".into())]
    );
    // The new token stays in use.
    client.endpoints().await.unwrap();
    assert_eq!(fake.state().registrations, 2);
}

#[tokio::test]
async fn many_requests_refused_together_cause_one_registration() {
    let fake = start(None).await;
    let client = with_secret(&fake.url("http"));
    client.register().await.unwrap();
    fake.state().valid.clear();
    let calls = (0..20).map(|i| {
        let client = client.clone();
        async move {
            client
                .release("n", IpAddr::from([10, 0, 0, i]), "", "host1")
                .await
        }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    assert_eq!(
        fake.state().registrations,
        2,
        "one registration for the 20 refusals"
    );
}

#[tokio::test]
async fn a_wrong_secret_is_refused_at_once_and_never_shown() {
    let fake = start(None).await;
    let options = ClientOptions {
        credential: Some(("host1".into(), secret("not-the-secret-at-all"))),
        ..ClientOptions::default()
    };
    let client = MasterClient::with_options(&fake.url("http"), options).unwrap();
    let e = client.register().await.unwrap_err();
    let RegisterError::Refused(message) = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("wrong bootstrap secret"), "{message}");
    assert!(message.contains("--master-secret-file"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
    // A request fails as refused (CNI code 100), after one registration attempt.
    let e = client.get_state().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MasterRefused, "{e:?}");
    assert!(!e.message.contains("not-the-secret"), "{e:?}");
    assert_eq!(fake.state().registrations, 2);
    assert!(
        fake.state().seen.is_empty(),
        "no request went out without a token"
    );
}

#[tokio::test]
async fn tokens_refused_over_and_over_fail_the_request_after_bounded_registrations() {
    let fake = start(None).await;
    let client = with_secret(&fake.url("http"));
    client.register().await.unwrap();
    fake.state().refuse_all = true;
    let e = client.get_state().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MasterRefused);
    assert!(e.message.contains("the token expired"), "{e:?}");
    assert!(!e.message.contains("tok-"), "no token in errors: {e:?}");
    let s = fake.state();
    assert_eq!(s.registrations, 1 + MAX_REFUSALS);
    assert_eq!(s.seen.len(), 1 + MAX_REFUSALS);
}

#[tokio::test]
async fn a_throttled_registration_says_how_long_to_wait() {
    let fake = start(None).await;
    fake.state().throttle = true;
    let client = with_secret(&fake.url("http"));
    assert_eq!(
        client.register().await,
        Err(RegisterError::Throttled(Duration::from_secs(7)))
    );
    let e = client.get_state().await.unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::MasterUnreachable,
        "try again later: {e:?}"
    );
}

#[tokio::test]
async fn a_session_ended_in_the_watch_stream_breaks_it_and_the_next_request_registers() {
    let fake = start(None).await;
    fake.state().watch_lines = vec![
        r#"{"revision": 4, "type": "put"}"#.into(),
        r#"{"type": "error", "status": 401, "message": "session ended"}"#.into(),
    ];
    let client = with_secret(&fake.url("http"));
    client.register().await.unwrap();
    let lines: Vec<_> = client.watch(3).await.unwrap().collect().await;
    assert!(lines[0].is_ok());
    assert!(
        matches!(&lines[1], Err(e) if e.contains("401")),
        "{lines:?}"
    );
    client.get_state().await.unwrap();
    assert_eq!(fake.state().registrations, 2);
}

#[test]
fn credentials_over_plain_http_go_only_to_this_host_unless_insecure() {
    let options = |insecure| ClientOptions {
        credential: Some(("host1".into(), secret(SECRET))),
        insecure,
        ..ClientOptions::default()
    };
    let e = MasterClient::with_options("http://172.20.20.10:9999", options(false))
        .err()
        .expect("refused");
    assert!(matches!(e, ClientError::PlainCredentials(_)), "{e}");
    assert!(e.to_string().contains("--master-insecure"), "{e}");
    MasterClient::with_options("http://172.20.20.10:9999", options(true)).unwrap();
    MasterClient::with_options("http://127.0.0.1:9999", options(false)).unwrap();
    MasterClient::with_options("https://172.20.20.10:9999", options(false)).unwrap();
    // Without a credential nothing is at stake.
    MasterClient::new("http://172.20.20.10:9999").unwrap();
}

/// A self-signed certificate for 127.0.0.1 and the server config serving it.
fn tls_server(dir: &std::path::Path) -> (std::path::PathBuf, Arc<rustls::ServerConfig>) {
    std::fs::create_dir_all(dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let pem = dir.join("cert.pem");
    std::fs::write(&pem, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    #[allow(deprecated)] // ring, as the master uses
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (pem, Arc::new(config))
}

#[tokio::test]
async fn https_with_the_masters_certificate_untrusted_without_it_and_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, config) = tls_server(dir.path());
    let fake = start(Some(config)).await;
    let base = fake.url("https");
    let client = |trust| {
        let options = ClientOptions {
            credential: Some(("host1".into(), secret(SECRET))),
            trust,
            insecure: false,
        };
        MasterClient::with_options(&base, options).unwrap()
    };
    let trusted = client(Trust::CaFile(pem));
    trusted.register().await.unwrap();
    trusted.get_state().await.unwrap();
    assert_eq!(fake.tokens_seen(), vec![Some("tok-1".into())]);

    // The system's roots do not hold the self-signed certificate: nothing is sent.
    let e = client(Trust::System).register().await.unwrap_err();
    assert!(
        matches!(&e, RegisterError::Unreachable(m) if m.contains("certificate")),
        "the error says why: {e:?}"
    );
    assert_eq!(fake.state().registrations, 1);

    let anyone = client(Trust::Anyone);
    anyone.register().await.unwrap();
    assert_eq!(fake.state().registrations, 2);
}

/// A loopback URL nobody listens on (connections are refused).
fn dead_url(scheme: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn paths_seen(fake: &Fake) -> Vec<String> {
    fake.state().seen.iter().map(|s| s.1.clone()).collect()
}

#[tokio::test]
async fn requests_land_on_the_second_master_when_the_first_is_gone() {
    let fake = start(None).await;
    let list = format!("{},{}", dead_url("http"), fake.url("http"));
    let client = with_secret(&list);
    // Registration, a read and a write that never reached the dead master all move on.
    client.register().await.unwrap();
    client.get_state().await.unwrap();
    client.allocate("n", "", "ep1").await.unwrap();
    assert_eq!(fake.state().registrations, 1);
    assert_eq!(
        paths_seen(&fake),
        ["/api/v1/state", "/api/v1/agent/allocate"]
    );
    assert_eq!(client.masters(), [dead_list_head(&list), fake.url("http")]);
}

fn dead_list_head(list: &str) -> String {
    list.split(',').next().unwrap().to_string()
}

#[tokio::test]
async fn a_503_moves_every_request_on_a_500_only_those_safe_to_repeat() {
    let first = start(None).await;
    let second = start(None).await;
    let client =
        MasterClient::new(&format!("{},{}", first.url("http"), second.url("http"))).unwrap();
    // 503: answered before any work, so even an allocation moves on.
    first.state().fail_with = Some(503);
    client.allocate("n", "", "ep1").await.unwrap();
    assert_eq!(paths_seen(&second), ["/api/v1/agent/allocate"]);
    // The second master is current now; make it the one failing with 500.
    second.state().fail_with = Some(500);
    first.state().fail_with = None;
    // Reads and idempotent writes move on.
    client.get_state().await.unwrap();
    client.record("ep1", json!({"id": "ep1"})).await.unwrap();
    client
        .release("n", IpAddr::from([10, 0, 0, 1]), "ep1", "host1")
        .await
        .unwrap();
    client.unrecord("ep1").await.unwrap();
    assert_eq!(
        paths_seen(&first),
        [
            "/api/v1/agent/allocate", // the 503
            "/api/v1/state",
            "/api/v1/agent/endpoints/ep1?reserved=true",
            "/api/v1/agent/release",
            "/api/v1/agent/endpoints/ep1",
        ]
    );
    // An allocation that got a 500 may have been made: not repeated on the other master.
    first.state().fail_with = Some(500);
    second.state().fail_with = None;
    let before = paths_seen(&second).len();
    let e = client.allocate("n", "", "ep2").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MasterUnreachable, "{e:?}");
    assert!(e.message.contains("may have been applied"), "{e:?}");
    assert!(
        e.message.contains(&first.url("http")),
        "names the master: {e:?}"
    );
    assert_eq!(
        paths_seen(&second).len(),
        before,
        "not sent to the second master"
    );
    // The next request starts at the second master.
    client.get_state().await.unwrap();
    assert_eq!(paths_seen(&second).len(), before + 1);
}

#[tokio::test]
async fn a_write_whose_connection_dropped_after_sending_is_not_repeated() {
    let first = start(None).await;
    let second = start(None).await;
    first.state().hang_up = true;
    let client =
        MasterClient::new(&format!("{},{}", first.url("http"), second.url("http"))).unwrap();
    let e = client.reserve("n", "", "host1", 4).await.unwrap_err();
    assert!(e.message.contains("may have been applied"), "{e:?}");
    assert_eq!(paths_seen(&first), ["/api/v1/agent/reserve"]);
    assert!(
        paths_seen(&second).is_empty(),
        "the reservation went out once"
    );
    // A read in the same situation is repeated.
    let first = start(None).await;
    first.state().hang_up = true;
    let client =
        MasterClient::new(&format!("{},{}", first.url("http"), second.url("http"))).unwrap();
    client.reservations("host1").await.unwrap();
    assert_eq!(
        paths_seen(&second),
        ["/api/v1/agent/hosts/host1/reservations"]
    );
}

#[tokio::test]
async fn when_every_master_fails_the_error_names_each_and_why() {
    let dead = dead_url("http");
    let busy = start(None).await;
    busy.state().fail_with = Some(503);
    let client = MasterClient::new(&format!("{dead},{}", busy.url("http"))).unwrap();
    let e = client.get_state().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MasterUnreachable);
    assert!(
        e.message
            .starts_with("no netmaster could serve GET /api/v1/state"),
        "{e:?}"
    );
    assert!(
        e.message.contains(&format!("netmaster {dead} unreachable")),
        "{e:?}"
    );
    assert!(
        e.message.contains(&format!(
            "netmaster {}: HTTP 503: failing with 503",
            busy.url("http")
        )),
        "{e:?}"
    );
    assert_eq!(paths_seen(&busy).len(), 1, "each master once per request");
    // One master: its own answer, as before there were lists.
    let client = MasterClient::new(&busy.url("http")).unwrap();
    let e = client.get_state().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MasterRefused);
    assert!(e.message.contains("failing with 503"), "{e:?}");
}

#[tokio::test]
async fn the_watch_resumes_at_the_next_master_from_its_revision() {
    let first = start(None).await;
    let second = start(None).await;
    first.state().watch_lines = vec![r#"{"revision": 4, "type": "put"}"#.into()];
    second.state().watch_lines = vec![r#"{"revision": 5, "type": "put"}"#.into()];
    let client =
        MasterClient::new(&format!("{},{}", first.url("http"), second.url("http"))).unwrap();
    let lines: Vec<_> = client.watch(3).await.unwrap().collect().await;
    assert_eq!(lines.len(), 1);
    // The first master's stream ended and it is failing now: the link asks again from the
    // revision it reached, and the second master serves it.
    first.state().fail_with = Some(503);
    let lines: Vec<_> = client.watch(4).await.unwrap().collect().await;
    assert_eq!(lines[0].as_ref().unwrap()["revision"], 5);
    assert_eq!(paths_seen(&second), ["/api/v1/watch?since=4"]);
    // With no master left, the error names both.
    second.state().fail_with = Some(503);
    let e = match client.watch(4).await {
        Ok(_) => panic!("no master serves the watch"),
        Err(e) => e,
    };
    assert!(
        e.contains(&first.url("http")) && e.contains(&second.url("http")),
        "{e}"
    );
}

#[tokio::test]
async fn heartbeats_add_masters_and_pass_on_the_reflectors() {
    let fake = start(None).await;
    let other = start(None).await;
    fake.state().heartbeat = Some(json!({
        "fabricAs": 65000,
        "reflectors": [{"address": "172.20.20.10", "port": 179}],
        "masters": [fake.url("http"), other.url("http"), "http://172.20.20.11:9999", "ftp://x",
                    "https://0.0.0.0:9999"]
    }));
    let client = with_secret(&fake.url("http"));
    client.register().await.unwrap();
    let fleet = client
        .heartbeat("host1", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(fleet.fabric_as, Some(65000));
    assert_eq!(fleet.reflectors, ["172.20.20.10:179".parse().unwrap()]);
    // The loopback master joins; a plain-HTTP one on another host would carry the secret in
    // clear, an ftp:// one is no master, a wildcard address names none: all left out.
    assert_eq!(client.masters(), [fake.url("http"), other.url("http")]);
    // A later answer without them removes nothing.
    fake.state().heartbeat = Some(json!({}));
    let fleet = client
        .heartbeat("host1", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(fleet, Fleet::default(), "an older master's answer");
    assert_eq!(client.masters().len(), 2);
    // The learned master serves requests once the first is gone.
    fake.state().fail_with = Some(503);
    client.get_state().await.unwrap();
    assert_eq!(paths_seen(&other), ["/api/v1/state"]);
}

#[tokio::test]
async fn a_ca_bundle_trusts_each_masters_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (pem1, config1) = tls_server(&dir.path().join("one"));
    let (pem2, config2) = tls_server(&dir.path().join("two"));
    let bundle = dir.path().join("masters.pem");
    let text = std::fs::read_to_string(&pem1).unwrap() + &std::fs::read_to_string(&pem2).unwrap();
    std::fs::write(&bundle, text).unwrap();
    let first = start(Some(config1)).await;
    let second = start(Some(config2)).await;
    let list = format!("{},{}", first.url("https"), second.url("https"));
    let client = |pem: &std::path::Path| {
        let options = ClientOptions {
            credential: Some(("host1".into(), secret(SECRET))),
            trust: Trust::CaFile(pem.to_path_buf()),
            insecure: false,
        };
        MasterClient::with_options(&list, options).unwrap()
    };
    let trusting_both = client(&bundle);
    trusting_both.register().await.unwrap();
    trusting_both.get_state().await.unwrap();
    // The first master fails: the second, trusted through the bundle's second certificate.
    first.state().fail_with = Some(503);
    trusting_both.get_state().await.unwrap();
    assert_eq!(paths_seen(&second), ["/api/v1/state"]);
    // Only the first certificate: the second master is refused, and the error says why.
    let only_first = client(&pem1);
    let e = only_first.get_state().await.unwrap_err();
    assert!(e.message.contains(&second.url("https")), "{e:?}");
    assert!(
        e.message.contains("certificate") || e.message.contains("Signature"),
        "{e:?}"
    );
}

#[tokio::test]
async fn registration_moves_past_a_master_without_a_secret_and_fails_refused_if_none_has_one() {
    let without = start(None).await;
    without.state().fail_with = Some(503);
    let with = start(None).await;
    let client = with_secret(&format!("{},{}", without.url("http"), with.url("http")));
    client.register().await.unwrap();
    assert_eq!(with.state().registrations, 1);
    // Every master refusing: a configuration error naming each, as with one master.
    with.state().fail_with = Some(503);
    let client = with_secret(&format!("{},{}", without.url("http"), with.url("http")));
    let e = client.register().await.unwrap_err();
    let RegisterError::Refused(message) = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains(&without.url("http")), "{message}");
    assert!(message.contains(&with.url("http")), "{message}");
    // One master: its words as before.
    let client = with_secret(&without.url("http"));
    let e = client.register().await.unwrap_err();
    assert!(
        matches!(&e, RegisterError::Refused(m) if m.starts_with("the netmaster refused to register host host1 (503)")),
        "{e:?}"
    );
}

//! The client against a stand-in master on loopback (plain and TLS): registration, the token
//! on every request, registering again after a 401 without failing the request, bounded
//! retries, one registration for many refusals, and neither secret nor token in any error.

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

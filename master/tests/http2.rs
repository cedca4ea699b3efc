//! HTTP/2 over cleartext with prior knowledge (h2c) on the REST port, beside HTTP/1.1: an HTTP/2
//! client gets the same answers, many streams run at once on its one connection (long-lived
//! watches all open together, and concurrent writes), and HTTP/1.1 clients still work.

mod common;

use common::{Backend, Fixture, TestMaster};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http2::SendRequest;
use hyper::{Method, Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::time::Duration;

/// Streams kept open at once on the one HTTP/2 connection.
const STREAMS: usize = 24;

/// One HTTP/2 connection with prior knowledge: hyper's connection-level client cannot open a
/// second one, and a server that does not speak HTTP/2 fails the first request.
#[derive(Clone)]
struct H2 {
    base: String,
    token: String,
    sender: SendRequest<Full<Bytes>>,
}

impl H2 {
    async fn connect(m: &TestMaster) -> H2 {
        let tcp = tokio::net::TcpStream::connect(m.base.trim_start_matches("http://"))
            .await
            .expect("connect to the master");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        H2 {
            base: m.base.clone(),
            token: m.token.clone(),
            sender,
        }
    }

    /// Sends one request on a new stream; answers with the body unread.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response<Incoming> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("x-auth-token", &self.token)
            .body(Full::new(body))
            .expect("a request");
        let mut sender = self.sender.clone();
        sender.ready().await.expect("the connection takes a stream");
        let resp = sender
            .send_request(request)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(resp.version(), Version::HTTP_2, "{path}");
        resp
    }

    /// Sends one request and reads its answer: status and JSON (or text) body.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let resp = self.send(method, path, body).await;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, value) = self.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    /// `netmaster_http_connections_total`, scraped over this connection.
    async fn connections(&self) -> u64 {
        let text = self.get("/metrics").await;
        let text = text.as_str().expect("metrics are text");
        text.lines()
            .find_map(|l| l.strip_prefix("netmaster_http_connections_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no connection count in\n{text}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_serves_many_concurrent_streams_on_one_connection() {
    let fixture = Fixture::new(Backend::Embedded);
    let m = fixture.master().await;
    // Nothing but this connection talks to the master until the HTTP/1.1 part at the end
    // (the test master's own login came before, on a connection of its own).
    let before = m.master.metrics.connections.get();
    let h2 = H2::connect(&m).await;
    let version = h2.get("/version").await;
    let tenants = h2.get("/api/v1/tenants/").await;
    assert_eq!(tenants[0]["tenantName"], "default", "{tenants}");
    let (status, missing) = h2.call(Method::GET, "/api/v1/tenants/nope/", None).await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(h2.connections().await, before + 1);

    // STREAMS watches open at once: each must see the policy written after all are open.
    let since = h2.get("/info").await["revision"]
        .as_u64()
        .expect("info has a revision");
    let mut watches = Vec::new();
    for _ in 0..STREAMS {
        let resp = h2
            .send(Method::GET, &format!("/api/v1/watch?since={since}"), None)
            .await;
        assert_eq!(resp.status().as_u16(), 200);
        watches.push(resp.into_body());
    }
    let (status, v) = h2
        .call(
            Method::POST,
            "/api/v1/policys/default:seen-by-all/",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    for (i, mut watch) in watches.into_iter().enumerate() {
        let mut seen = String::new();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(frame) = watch.frame().await {
                if let Ok(data) = frame.expect("a watch frame").into_data() {
                    seen.push_str(&String::from_utf8_lossy(&data));
                }
                if seen.contains("default:seen-by-all") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "watch {i} got: {seen}");
    }

    // STREAMS writers at once, each its policy then its rule, then a read of the rule.
    let writers = (0..STREAMS).map(|i| {
        let h2 = h2.clone();
        tokio::spawn(async move {
            let rule = format!("/api/v1/rules/default:h2-{i}:1/");
            for (path, body) in [
                (format!("/api/v1/policys/default:h2-{i}/"), json!({})),
                (
                    rule.clone(),
                    json!({"direction": "in", "protocol": "tcp", "port": 1000 + i, "action": "allow"}),
                ),
            ] {
                let (status, v) = h2.call(Method::POST, &path, Some(body)).await;
                assert_eq!(status, 200, "{path}: {v}");
            }
            let got = h2.get(&rule).await;
            assert_eq!(got["port"], json!(1000 + i), "{got}");
        })
    });
    for w in futures::future::join_all(writers).await {
        w.expect("a writer task");
    }
    let rules = h2.get("/api/v1/rules/").await;
    assert_eq!(rules.as_array().map(Vec::len), Some(STREAMS), "{rules}");
    let policies = h2.get("/api/v1/policys/").await;
    assert_eq!(policies.as_array().map(Vec::len), Some(STREAMS + 1));
    assert_eq!(
        h2.connections().await,
        before + 1,
        "all of it on one connection"
    );

    // HTTP/1.1 on the same port still works, on a connection of its own, with the same answer.
    // (One request only: an HTTP/1.1 pool may open a second connection for the next request
    // before the first is back in the pool.)
    let (status, v1) = m.get("/version").await;
    assert_eq!((status, v1), (200, version));
    assert_eq!(h2.connections().await, before + 2);
}

//! The REST server's hardening, against the real `netmaster` binary with short limits set by
//! its flags: a slowloris client (headers a byte at a time) and a silent one are cut after the
//! header timeout while other clients are served; an idle keep-alive connection lives past the
//! header timeout and is closed after the idle timeout; a trickled body gets 408; an open watch
//! outlives every timeout and still delivers; past `--max-connections` a new connection gets a
//! 503 naming the limit and the server serves again once one closes; writes without a JSON
//! content type get 415 and change nothing; a Host that is not an IP literal, localhost or an
//! `--api-hostname` gets 421 and changes nothing.

mod common;

use common::process::{NetmasterProcess, Options};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Bound on any one exchange.
const DEADLINE: Duration = Duration::from_secs(10);

async fn start(dir: &Path, args: &[&str]) -> NetmasterProcess {
    let options = Options {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Options::default()
    };
    NetmasterProcess::start_with(
        &dir.join("data"),
        None,
        &dir.join("netmaster.log"),
        &options,
    )
    .await
}

/// Reads one HTTP/1.1 response (headers, then a Content-Length body) from `stream`.
async fn read_response(stream: &mut TcpStream) -> Result<(u16, Value), String> {
    tokio::time::timeout(DEADLINE, async {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!(
                    "closed before a response ({:?})",
                    String::from_utf8_lossy(&data)
                ));
            }
            data.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status in {head:?}"))?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while data.len() < head_end + length {
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed inside the body".into());
            }
            data.extend_from_slice(&buf[..n]);
        }
        let body = &data[head_end..head_end + length];
        let value = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        Ok((status, value))
    })
    .await
    .map_err(|_| "no response in time".to_string())?
}

/// One request on a new connection; `request` is sent as is.
async fn exchange(addr: SocketAddr, request: &str) -> Result<(u16, Value), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    read_response(&mut stream).await
}

/// The token header line, none for an empty token (open routes).
fn token_line(token: &str) -> String {
    if token.is_empty() {
        String::new()
    } else {
        format!("X-Auth-Token: {token}\r\n")
    }
}

fn get(path: &str, host: &str, token: &str) -> String {
    let token = token_line(token);
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{token}\r\n")
}

fn post(path: &str, host: &str, token: &str, content_type: Option<&str>, body: &str) -> String {
    let token = token_line(token);
    let content_type = content_type
        .map(|c| format!("Content-Type: {c}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{token}{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Waits (bounded) until the server closes `stream`: how long that took, or None.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    let until = started + bound;
    let mut buf = [0u8; 1024];
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// Sends `bytes` one at a time, `gap` apart, until they are all sent or the server closes;
/// answers how long the server took to close it (None: it never did).
async fn trickle(stream: TcpStream, bytes: &[u8], gap: Duration) -> (Option<Duration>, usize) {
    let started = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let closed = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => continue,
            }
        }
    });
    let mut sent = 0;
    for byte in bytes {
        if closed.is_finished() || write.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(gap).await;
    }
    match tokio::time::timeout(DEADLINE, closed).await {
        Ok(Ok(at)) => (Some(at - started), sent),
        _ => (None, sent),
    }
}

#[tokio::test]
async fn slowloris_and_silent_clients_are_cut_while_others_are_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let master = start(
        dir.path(),
        &[
            "--header-timeout",
            "1s",
            "--idle-timeout",
            "3s",
            "--body-timeout",
            "1s",
        ],
    )
    .await;
    let addr = master.addr();
    let host = addr.to_string();

    // Others, served all along: a fresh connection every 200 ms.
    let others = tokio::spawn(async move {
        let mut served = 0;
        for _ in 0..20 {
            let got = exchange(addr, &get("/version", &addr.to_string(), "")).await;
            assert_eq!(got.as_ref().map(|r| r.0), Ok(200), "{got:?}");
            served += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        served
    });

    // Headers a byte every 100 ms: the whole head would take about 8 s.
    let head = format!(
        "GET /version HTTP/1.1\r\nHost: {host}\r\nUser-Agent: slowloris\r\nX-Padding: {}\r\n\r\n",
        "x".repeat(20)
    );
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (cut, sent) = trickle(stream, head.as_bytes(), Duration::from_millis(100)).await;
    let cut = cut.expect("the slowloris connection is closed");
    assert!(sent < head.len(), "cut before its headers were complete");
    assert!(
        cut >= Duration::from_millis(900) && cut < Duration::from_secs(4),
        "cut after {cut:?}, the header timeout is 1 s"
    );

    // A client that sends nothing at all.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let took = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("a silent connection is closed");
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");

    // Keep-alive: idle past the header timeout is fine, a slow next request is not, and an idle
    // connection closes after the idle timeout.
    let mut kept = TcpStream::connect(addr).await.expect("connect");
    kept.write_all(get("/version", &host, "").as_bytes())
        .await
        .expect("write");
    assert_eq!(read_response(&mut kept).await.map(|r| r.0), Ok(200));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kept.write_all(get("/version", &host, "").as_bytes())
        .await
        .expect("write");
    assert_eq!(
        read_response(&mut kept).await.map(|r| r.0),
        Ok(200),
        "idle for longer than the header timeout but less than the idle timeout"
    );
    let (cut, sent) = trickle(kept, head.as_bytes(), Duration::from_millis(100)).await;
    let cut = cut.expect("a slow second request is cut too");
    assert!(sent < head.len(), "cut before its headers were complete");
    assert!(
        cut >= Duration::from_millis(900) && cut < Duration::from_millis(2500),
        "cut {cut:?} after its first byte: the header timeout (1 s), not the idle one (3 s)"
    );
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(get("/version", &host, "").as_bytes())
        .await
        .expect("write");
    assert_eq!(read_response(&mut idle).await.map(|r| r.0), Ok(200));
    let took = closed_within(&mut idle, Duration::from_secs(8))
        .await
        .expect("an idle connection is closed");
    assert!(
        took >= Duration::from_millis(2700) && took < Duration::from_secs(6),
        "closed after {took:?} idle, the idle timeout is 3 s"
    );

    let served = others.await.expect("the other clients");
    assert_eq!(served, 20);
}

#[tokio::test]
async fn a_trickled_body_gets_408_and_an_open_watch_outlives_every_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let master = start(
        dir.path(),
        &[
            "--header-timeout",
            "1s",
            "--idle-timeout",
            "2s",
            "--body-timeout",
            "1s",
        ],
    )
    .await;
    let addr = master.addr();
    let token = master.admin_token().await;
    let host = addr.to_string();

    // The watch, from the current revision.
    let (status, state) = exchange(addr, &get("/api/v1/state", &host, &token))
        .await
        .expect("state");
    assert_eq!(status, 200);
    let since = state["revision"].as_u64().expect("a revision");
    let mut watch = TcpStream::connect(addr).await.expect("connect");
    watch
        .write_all(get(&format!("/api/v1/watch?since={since}"), &host, &token).as_bytes())
        .await
        .expect("write");

    // A body sent a byte every 200 ms: 408 after about a second, nothing created.
    let body = r#"{"tenantName": "slow"}"#;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    let head = post(
        "/api/v1/tenants/slow/",
        &host,
        &token,
        Some("application/json"),
        body,
    );
    let head = &head[..head.len() - body.len()];
    slow.write_all(head.as_bytes()).await.expect("write head");
    let started = Instant::now();
    let (mut read, mut write) = slow.into_split();
    let answer = tokio::spawn(async move {
        let mut data = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(Ok(n)) = tokio::time::timeout(DEADLINE, read.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&data).into_owned()
    });
    for byte in body.bytes() {
        if answer.is_finished() || write.write_all(&[byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answer = answer.await.expect("the answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--body-timeout"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = exchange(addr, &get("/api/v1/tenants/slow/", &host, &token))
        .await
        .expect("get");
    assert_eq!(status, 404, "the trickled write changed nothing");

    // The watch has been open past the header, body and idle timeouts; it still delivers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, v) = exchange(
        addr,
        &post(
            "/api/v1/tenants/late/",
            &host,
            &token,
            Some("application/json"),
            r#"{"tenantName": "late"}"#,
        ),
    )
    .await
    .expect("create");
    assert_eq!(status, 200, "{v}");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + DEADLINE;
    while !String::from_utf8_lossy(&seen).contains("\"late\"") {
        let left = until
            .checked_duration_since(Instant::now())
            .expect("the watch delivers the event in time");
        match tokio::time::timeout(left, watch.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            other => panic!(
                "the watch ended ({other:?}) after {:?}: {}",
                started.elapsed(),
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

#[tokio::test]
async fn past_the_connection_cap_a_503_then_served_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let master = start(dir.path(), &["--max-connections", "3"]).await;
    let addr = master.addr();
    let host = addr.to_string();
    let request = get("/version", &host, "");

    // Three held connections (the start's readiness probe may take a moment to let go of its
    // own, so each is retried for a bounded time).
    let mut held = Vec::new();
    for _ in 0..3 {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(request.as_bytes()).await.expect("write");
            match read_response(&mut stream).await {
                Ok((200, _)) => {
                    held.push(stream);
                    break;
                }
                other => assert!(Instant::now() < until, "not served: {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The fourth: 503 naming the limit, then closed.
    let mut fourth = TcpStream::connect(addr).await.expect("connect");
    fourth.write_all(request.as_bytes()).await.expect("write");
    let (status, body) = read_response(&mut fourth).await.expect("an answer");
    assert_eq!(status, 503, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("--max-connections"), "{body}");
    assert!(
        closed_within(&mut fourth, Duration::from_secs(5))
            .await
            .is_some(),
        "the refused connection is closed"
    );

    // The held ones are still served.
    for stream in &mut held {
        stream.write_all(request.as_bytes()).await.expect("write");
        assert_eq!(read_response(stream).await.map(|r| r.0), Ok(200));
    }

    // One closes: a new connection is served again (once the server has seen the close).
    held.pop();
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match exchange(addr, &request).await {
            Ok((200, _)) => break,
            other => assert!(Instant::now() < until, "not served again: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The machine's host name, which the master accepts besides the configured names.
fn machine_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    netmaster::listen::valid_dns_name(name).then(|| name.to_string())
}

#[tokio::test]
async fn writes_take_json_only_and_the_host_must_name_the_master() {
    let dir = tempfile::tempdir().expect("temp dir");
    let master = start(
        dir.path(),
        &[
            "--api-hostname",
            "master.example",
            "--api-hostname",
            "other.example",
        ],
    )
    .await;
    let addr = master.addr();
    let token = master.admin_token().await;
    let host = addr.to_string();
    let port = addr.port();
    let tenant = r#"{"tenantName": "ct"}"#;

    // 415 for every content type but JSON, naming the header; nothing written.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        None,
    ] {
        let (status, body) = exchange(
            addr,
            &post("/api/v1/tenants/ct/", &host, &token, content_type, tenant),
        )
        .await
        .expect("an answer");
        assert_eq!(status, 415, "{content_type:?}: {body}");
        assert_eq!(body["field"], "Content-Type", "{body}");
        let put = post("/api/v1/tenants/ct/", &host, &token, content_type, tenant)
            .replacen("POST", "PUT", 1);
        let (status, _) = exchange(addr, &put).await.expect("an answer");
        assert_eq!(status, 415, "PUT {content_type:?}");
    }
    let (status, _) = exchange(addr, &get("/api/v1/tenants/ct/", &host, &token))
        .await
        .expect("get");
    assert_eq!(status, 404, "nothing was written");
    // A write without a body is not a content-type matter (the handler says it is not JSON).
    let (status, body) = exchange(addr, &post("/api/v1/tenants/ct/", &host, &token, None, ""))
        .await
        .expect("an answer");
    assert_eq!(status, 400, "{body}");
    let (status, body) = exchange(
        addr,
        &post(
            "/api/v1/tenants/ct/",
            &host,
            &token,
            Some("Application/JSON; charset=utf-8"),
            tenant,
        ),
    )
    .await
    .expect("an answer");
    assert_eq!(status, 200, "JSON with a charset: {body}");

    // Host: IP literals, localhost and the --api-hostname names, with or without a port.
    for allowed in [
        host.clone(),
        "127.0.0.1".to_string(),
        format!("[::1]:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
        format!("master.example:{port}"),
        "MASTER.Example.".to_string(),
        "other.example".to_string(),
    ]
    .into_iter()
    .chain(machine_name())
    {
        let (status, body) = exchange(addr, &get("/version", &allowed, ""))
            .await
            .expect("an answer");
        assert_eq!(status, 200, "Host {allowed}: {body}");
    }
    // DNS rebinding: a name of the attacker's pointing at the master's address.
    for refused in [
        format!("rebind.attacker.example:{port}"),
        "127.0.0.1.attacker.example".to_string(),
        format!("localhost.attacker.example:{port}"),
        "master.example.attacker.example".to_string(),
    ] {
        let (status, body) = exchange(addr, &get("/version", &refused, ""))
            .await
            .expect("an answer");
        assert_eq!(status, 421, "Host {refused}: {body}");
        assert_eq!(body["field"], "Host", "{body}");
    }
    let write = post(
        "/api/v1/tenants/rebound/",
        &format!("rebind.attacker.example:{port}"),
        &token,
        Some("application/json"),
        r#"{"tenantName": "rebound"}"#,
    );
    let (status, _) = exchange(addr, &write).await.expect("an answer");
    assert_eq!(status, 421);
    let (status, _) = exchange(addr, &get("/api/v1/tenants/rebound/", &host, &token))
        .await
        .expect("get");
    assert_eq!(status, 404, "the rebound write changed nothing");
    // HTTP/1.0 without a Host is served.
    let (status, body) = exchange(addr, "GET /version HTTP/1.0\r\n\r\n")
        .await
        .expect("an answer");
    assert_eq!(status, 200, "{body}");
}

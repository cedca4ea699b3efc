//! The real `netmaster` binary with `--auth on`: the flags parse, the first admin's password
//! comes from `--admin-password-file` or is generated and printed once on stderr, the agents'
//! secret is generated into the data directory (mode 0600) and registers an agent, and
//! nothing but the open routes answers without a token.

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts the binary; plain HTTP (`--insecure-http` when this build has TLS).
fn start(dir: &std::path::Path, extra: &[&str], port: u16) -> Running {
    let help = Command::new(env!("CARGO_BIN_EXE_netmaster"))
        .arg("--help")
        .output()
        .expect("netmaster --help");
    assert!(
        help.status.success(),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netmaster"));
    cmd.args([
        "--listen-url",
        &format!("127.0.0.1:{port}"),
        "--log-level",
        "warn",
    ])
    .arg("--data-dir")
    .arg(dir)
    .args(["--auth", "on"])
    .args(extra)
    .env_remove("NETMASTER_ETCD")
    .env_remove("NETMASTER_ADMIN_PASSWORD_FILE")
    .env_remove("NETMASTER_AGENT_SECRET_FILE")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(dir.join("stderr")).expect("stderr file"));
    if String::from_utf8_lossy(&help.stdout).contains("--insecure-http") {
        cmd.arg("--insecure-http");
    }
    Running(cmd.spawn().expect("spawn netmaster"))
}

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let s = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn ready(base: &str) {
    // reqwest is built with TLS but no crypto provider of its own (the auth tests need TLS);
    // every test here waits for its master first, so this comes before any client.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("netmaster did not answer /healthz");
}

async fn login(base: &str, user: &str, pw: &str) -> (u16, Value) {
    call(
        base,
        reqwest::Method::POST,
        "/api/v1/auth_proxy/login/",
        None,
        Some(json!({"username": user, "password": pw})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_bootstraps_authentication() {
    // A password from a file.
    let dir = tempfile::tempdir().expect("dir");
    let pw_file = dir.path().join("admin-pw");
    std::fs::write(&pw_file, "from-the-file-123\n").expect("write");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let data = dir.path().join("data");
    let _m = start(
        &data_dir(&data),
        &[
            "--admin-password-file",
            pw_file.to_str().expect("path"),
            "--token-ttl",
            "90m",
        ],
        port,
    );
    ready(&base).await;
    let (s, v) = call(&base, reqwest::Method::GET, "/api/v1/tenants/", None, None).await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = login(&base, "admin", "from-the-file-123").await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().expect("token");
    let (s, _) = call(
        &base,
        reqwest::Method::GET,
        "/api/v1/tenants/",
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // The generated agent secret: 0600, and it registers an agent.
    let secret_file = data.join("agent-secret");
    let mode = std::fs::metadata(&secret_file)
        .expect("agent-secret")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let secret = std::fs::read_to_string(&secret_file)
        .expect("read")
        .trim()
        .to_string();
    let (s, v) = call(
        &base,
        reqwest::Method::POST,
        "/api/v1/agent/register",
        None,
        Some(json!({"host": "h1", "secret": secret})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let stderr = std::fs::read_to_string(data.join("stderr")).unwrap_or_default();
    assert!(
        !stderr.contains("from-the-file-123"),
        "a given password is never printed"
    );
    drop(_m);

    // A generated password, printed once on stderr.
    let dir2 = tempfile::tempdir().expect("dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let data = dir2.path().join("data");
    let m2 = start(&data_dir(&data), &[], port);
    ready(&base).await;
    let stderr = std::fs::read_to_string(data.join("stderr")).expect("stderr");
    let pw = stderr
        .lines()
        .find_map(|l| l.split("password: ").nth(1))
        .map(|p| p.trim_end_matches('*').trim().to_string())
        .expect("the generated password on stderr");
    let (s, v) = login(&base, "admin", &pw).await;
    assert_eq!(s, 200, "{v}");
    drop(m2);
    // Restarted on the same data: no new admin, nothing printed again, the password holds.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _m3 = start(&data, &[], port);
    ready(&base).await;
    let stderr = std::fs::read_to_string(data.join("stderr")).expect("stderr");
    assert!(!stderr.contains("password:"), "printed only once: {stderr}");
    let (s, v) = login(&base, "admin", &pw).await;
    assert_eq!(s, 200, "{v}");
}

fn data_dir(p: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(p).expect("data dir");
    p.to_path_buf()
}

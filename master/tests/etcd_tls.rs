//! The real `netmaster` binary on an etcd that serves only over mutual TLS (fixture
//! certificates, `--client-cert-auth`): with `--etcd-cacert/--etcd-cert/--etcd-key` (and with
//! the same through environment variables) it serves a write that lands in etcd; without the
//! client certificate, or verifying etcd with another CA, it exits at start naming the cause.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fabric_store::testing::EtcdProcess;
use fabric_store::{EtcdStore, Store};
use serde_json::json;

/// A started netmaster, killed on drop (also when an assertion fails).
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

/// The binary with plain HTTP on `port` (the REST side is not what is tested here), the
/// inherited etcd settings removed, stderr into `dir/stderr`.
fn command(dir: &Path, port: u16) -> Command {
    let password = dir.join("admin-password");
    std::fs::write(&password, format!("{ADMIN_PASSWORD}\n")).expect("admin password file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netmaster"));
    cmd.args(["--listen-url", &format!("127.0.0.1:{port}")])
        .arg("--admin-password-file")
        .arg(password)
        .args(["--log-level", "warn", "--insecure-http"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("NETMASTER_ETCD")
        .env_remove("NETMASTER_ETCD_CACERT")
        .env_remove("NETMASTER_ETCD_CERT")
        .env_remove("NETMASTER_ETCD_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).expect("stderr file"));
    cmd
}

async fn ready(base: &str, master: &mut Running, dir: &Path) {
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
        if let Ok(Some(status)) = master.0.try_wait() {
            panic!(
                "netmaster exited with {status}: {}",
                std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("netmaster did not answer /healthz within 30 s");
}

/// The first admin's password (authentication is on, as by default).
const ADMIN_PASSWORD: &str = "etcd-tls-admin-password";

/// Creates tenant `name` through the REST API, as the first admin, and reads it back from etcd
/// directly.
async fn write_lands_in_etcd(base: &str, etcd: &EtcdProcess, name: &str) {
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("{base}/api/v1/auth_proxy/login/"))
        .header("content-type", "application/json")
        .body(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login answers JSON");
    let token = login["token"].as_str().expect("a token");
    let resp = client
        .post(format!("{base}/api/v1/tenants/{name}/"))
        .header("x-auth-token", token)
        .header("content-type", "application/json")
        .body(json!({"key": name, "tenantName": name}).to_string())
        .send()
        .await
        .expect("POST tenant");
    let status = resp.status();
    assert!(status.is_success(), "{status}: {:?}", resp.text().await);
    let files = etcd.tls_files().expect("TLS fixture");
    let store = EtcdStore::connect_with(&etcd.endpoints(), &files.client())
        .await
        .expect("a client of our own over TLS");
    let kv = store
        .get(&format!("/contiv/config/tenants/{name}"))
        .await
        .expect("get")
        .expect("the tenant is in etcd");
    let stored: serde_json::Value = serde_json::from_slice(&kv.value).expect("JSON");
    assert_eq!(stored["tenantName"], name);
}

/// Runs the binary expecting it to exit (bounded); returns its stderr.
fn exits_with_error(mut cmd: Command, dir: &Path) -> String {
    let mut child = Running(cmd.spawn().expect("spawn netmaster"));
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < until,
            "netmaster kept running with a refused etcd connection"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netmaster_over_mutual_tls_flags_and_env() {
    let etcd = EtcdProcess::start_tls_async()
        .await
        .unwrap_or_else(|e| panic!("etcd tests need a runnable etcd: {e}"));
    let files = etcd.tls_files().expect("TLS fixture").clone();
    let endpoint = etcd.endpoints().join(",");

    // Flags.
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut cmd = command(dir.path(), port);
    cmd.args(["--etcd", &endpoint])
        .arg("--etcd-cacert")
        .arg(&files.ca_cert)
        .arg("--etcd-cert")
        .arg(&files.client_cert)
        .arg("--etcd-key")
        .arg(&files.client_key);
    let mut master = Running(cmd.spawn().expect("spawn netmaster"));
    let base = format!("http://127.0.0.1:{port}");
    ready(&base, &mut master, dir.path()).await;
    write_lands_in_etcd(&base, &etcd, "blue").await;
    drop(master);

    // The same through the environment.
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut cmd = command(dir.path(), port);
    cmd.env("NETMASTER_ETCD", &endpoint)
        .env("NETMASTER_ETCD_CACERT", &files.ca_cert)
        .env("NETMASTER_ETCD_CERT", &files.client_cert)
        .env("NETMASTER_ETCD_KEY", &files.client_key);
    let mut master = Running(cmd.spawn().expect("spawn netmaster"));
    let base = format!("http://127.0.0.1:{port}");
    ready(&base, &mut master, dir.path()).await;
    write_lands_in_etcd(&base, &etcd, "red").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netmaster_refused_by_etcd_exits_with_the_reason() {
    let etcd = EtcdProcess::start_tls_async()
        .await
        .unwrap_or_else(|e| panic!("etcd tests need a runnable etcd: {e}"));
    let files = etcd.tls_files().expect("TLS fixture").clone();
    let endpoint = etcd.endpoints().join(",");

    // No client certificate: etcd refuses the connection.
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = command(dir.path(), free_port());
    cmd.args(["--etcd", &endpoint])
        .arg("--etcd-cacert")
        .arg(&files.ca_cert);
    let stderr = exits_with_error(cmd, dir.path());
    assert!(stderr.contains("opening the store"), "{stderr}");
    assert!(
        stderr.contains("refused the client certificate"),
        "{stderr}"
    );

    // Another CA: netmaster refuses etcd's certificate.
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = command(dir.path(), free_port());
    cmd.args(["--etcd", &endpoint])
        .arg("--etcd-cacert")
        .arg(&files.other_ca_cert)
        .arg("--etcd-cert")
        .arg(&files.client_cert)
        .arg("--etcd-key")
        .arg(&files.client_key);
    let stderr = exits_with_error(cmd, dir.path());
    assert!(
        stderr.contains("server certificate is not trusted"),
        "{stderr}"
    );
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    // A missing CA file is named; --etcd-cert without --etcd-key is refused by the flags.
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("no-such-ca.pem");
    let mut cmd = command(dir.path(), free_port());
    cmd.args(["--etcd", &endpoint])
        .arg("--etcd-cacert")
        .arg(&missing);
    let stderr = exits_with_error(cmd, dir.path());
    assert!(
        stderr.contains(&format!("CA certificate {}: missing", missing.display())),
        "{stderr}"
    );
    let out = command(dir.path(), free_port())
        .args(["--etcd", &endpoint])
        .arg("--etcd-cert")
        .arg(&files.client_cert)
        .stderr(Stdio::piped())
        .output()
        .expect("run netmaster");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a cert without key is a usage error"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--etcd-key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

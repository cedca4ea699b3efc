//! TLS on the REST port, against the real `netmaster` binary with real clients (curl, and a
//! rustls client): the generated certificate verifies, is the one printed and the one on disk,
//! and is reused on restart; HTTP/2 is negotiated by ALPN; TLS 1.1 is refused (and the same
//! curl command is shown to speak TLS 1.1 to a server that allows it, so the refusal is the
//! server's); plain HTTP, junk and a stalled handshake on the TLS port are refused cleanly while
//! others are served; `--tls-cert`/`--tls-key` are served; `--insecure-http` is plain and
//! warned about.

mod common;

use common::process::{NetmasterProcess, Options};
use common::tls as client;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What one curl run gave.
struct Curl {
    exit: i32,
    /// The `-w` output.
    out: String,
    /// The body.
    body: String,
    err: String,
}

/// Runs curl (bounded by `--max-time`), writing the body to a temp file.
fn curl(args: &[&str]) -> Curl {
    let body = tempfile::NamedTempFile::new().expect("temp file");
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o"])
        .arg(body.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl must be installed (Debian package curl, scripts/install-deps.sh)");
    Curl {
        exit: output.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        body: std::fs::read_to_string(body.path()).unwrap_or_default(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `https://127.0.0.1:<port><path>` and similar.
fn url(scheme: &str, addr: SocketAddr, path: &str) -> String {
    format!("{scheme}://{addr}{path}")
}

/// The fingerprint the master printed on stderr (in its log), the last one printed.
fn printed_fingerprint(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|l| l.split("SHA-256 fingerprint ").nth(1))
        .map(|f| f.trim().to_string())
        .unwrap_or_else(|| panic!("no fingerprint printed; log:\n{text}"))
}

fn file_fingerprint(cert: &Path) -> String {
    let certs = client::read_certs(cert).expect("the certificate file parses");
    client::fingerprint(certs.first().expect("a certificate in the file").as_ref())
}

/// The leaf certificate's fingerprint as served, with what ALPN agreed.
async fn served(addr: SocketAddr, ca: &Path, alpn: &[&[u8]]) -> (String, Option<Vec<u8>>) {
    let config = client::client_config(ca, alpn).expect("client config");
    let stream = client::connect(addr, "127.0.0.1", config)
        .await
        .expect("TLS handshake verifying the server");
    let conn = stream.get_ref().1;
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a server certificate");
    (
        client::fingerprint(leaf.as_ref()),
        conn.alpn_protocol().map(<[u8]>::to_vec),
    )
}

/// Waits (bounded) until the server closes `stream`; how long that took.
async fn closed_within(stream: &mut tokio::net::TcpStream, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let until = started + bound;
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// `openssl s_server` allowing only TLS 1.1, killed on drop.
struct OldServer(Child);

impl Drop for OldServer {
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

/// The same TLS 1.1 curl command that the master refuses reaches a server that allows TLS 1.1,
/// so the refusal comes from the master, not from the client's own settings.
async fn tls11_client_control(cert: &Path, key: &Path, tls11: &[&str]) {
    let has_openssl = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_openssl {
        eprintln!("openssl not installed: skipping the TLS 1.1 client control");
        return;
    }
    let port = free_port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-www",
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .args(["-accept", &port.to_string()])
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let _server = OldServer(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let until = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < until, "openssl s_server did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut args = tls11.to_vec();
    let target = url("https", addr, "/");
    args.push(&target);
    let c = curl(&args);
    assert_eq!(
        (c.exit, c.out.as_str()),
        (0, "200"),
        "curl speaks TLS 1.1 to a server that allows it: {}",
        c.err
    );
}

#[tokio::test]
async fn generated_certificate_verifies_serves_h2_refuses_old_tls_and_plain_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let log = dir.path().join("netmaster.log");
    let options = Options {
        tls: true,
        args: vec!["--header-timeout".into(), "1s".into()],
        ..Options::default()
    };
    let mut master = NetmasterProcess::start_with(&data, None, &log, &options).await;
    let addr = master.addr();
    let cert: PathBuf = data.join("tls").join("cert.pem");
    let key = data.join("tls").join("key.pem");
    let cacert = cert.to_str().expect("utf-8 path");

    // The certificate: printed = on disk = served; the key is private.
    let printed = printed_fingerprint(&log);
    assert_eq!(printed, file_fingerprint(&cert), "printed vs cert.pem");
    let (served_fp, alpn) = served(addr, &cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(served_fp, printed, "served vs printed");
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "ALPN picks h2");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key).expect("key.pem").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "key.pem's mode");

    // curl verifies it, by IP and by name, over HTTP/1.1 and HTTP/2.
    let version = url("https", addr, "/version");
    let w = "%{http_code} %{http_version} %{ssl_verify_result}";
    let c = curl(&["--cacert", cacert, "--http1.1", "-w", w, &version]);
    assert_eq!((c.exit, c.out.as_str()), (0, "200 1.1 0"), "{}", c.err);
    assert!(c.body.contains("\"Version\""), "{}", c.body);
    let c = curl(&["--cacert", cacert, "--http2", "-w", w, &version]);
    assert_eq!((c.exit, c.out.as_str()), (0, "200 2 0"), "{}", c.err);
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    let by_name = format!("https://localhost:{}/version", addr.port());
    let c = curl(&["--cacert", cacert, "--resolve", &resolve, "-w", w, &by_name]);
    assert_eq!((c.exit, c.out.as_str()), (0, "200 2 0"), "{}", c.err);
    // Without the certificate curl does not trust it: verification is real.
    let c = curl(&["-w", w, &version]);
    assert_eq!(
        c.exit, 60,
        "an unknown self-signed certificate: {} {}",
        c.out, c.err
    );

    // A rustls client with ALPN h2 gets HTTP/2; with http/1.1 only, HTTP/1.1.
    for (alpn, want) in [
        (&[&b"h2"[..]][..], hyper::Version::HTTP_2),
        (&[&b"http/1.1"[..]][..], hyper::Version::HTTP_11),
    ] {
        let config = client::client_config(&cert, alpn).expect("config");
        let stream = client::connect(addr, "127.0.0.1", config)
            .await
            .expect("handshake");
        let (version, status, body) = client::get(stream, &addr.to_string(), "/version")
            .await
            .expect("GET /version");
        assert_eq!((version, status), (want, 200), "{body}");
    }

    // TLS 1.2 and 1.3 are served; TLS 1.1 is refused by the server (its alert).
    for tls in [
        ["--tlsv1.2", "--tls-max", "1.2"],
        ["--tlsv1.3", "--tls-max", "1.3"],
    ] {
        let c = curl(
            &[
                &tls[..],
                &["--cacert", cacert, "-w", "%{http_code}", &version],
            ]
            .concat(),
        );
        assert_eq!((c.exit, c.out.as_str()), (0, "200"), "{tls:?}: {}", c.err);
    }
    let tls11 = [
        "--tlsv1.1",
        "--tls-max",
        "1.1",
        "--ciphers",
        "DEFAULT@SECLEVEL=0",
        "--cacert",
        cacert,
        "-w",
        "%{http_code}",
    ];
    let c = curl(&[&tls11[..], &[version.as_str()]].concat());
    assert_eq!(
        c.exit, 35,
        "TLS 1.1 must fail the handshake: {} {}",
        c.out, c.err
    );
    assert!(
        c.err.contains("alert"),
        "the server's alert refuses it: {}",
        c.err
    );
    tls11_client_control(&cert, &key, &tls11).await;

    // Plain HTTP to the TLS port: a readable 400, then closed.
    let c = curl(&["-w", "%{http_code}", &url("http", addr, "/version")]);
    assert_eq!((c.exit, c.out.as_str()), (0, "400"), "{}", c.err);
    assert!(c.body.contains("https://"), "{}", c.body);
    // Junk, and a client that never finishes its handshake: closed, the latter after the
    // header timeout (1 s).
    let mut junk = tokio::net::TcpStream::connect(addr).await.expect("connect");
    junk.write_all(b"\x00\x01\x02junk\r\n\r\n")
        .await
        .expect("write");
    assert!(
        closed_within(&mut junk, Duration::from_secs(5))
            .await
            .is_some(),
        "junk is not kept"
    );
    let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    silent
        .write_all(b"\x16\x03\x01")
        .await
        .expect("a partial record");
    let took = closed_within(&mut silent, Duration::from_secs(6))
        .await
        .expect("a stalled handshake is cut");
    assert!(
        took >= Duration::from_millis(700),
        "cut after {took:?}, before the timeout"
    );

    // Still serving, with the request guards on TLS too.
    let c = curl(&["--cacert", cacert, "-w", "%{http_code}", &version]);
    assert_eq!((c.exit, c.out.as_str()), (0, "200"), "{}", c.err);
    let c = curl(&[
        "--cacert",
        cacert,
        "-H",
        "Host: evil.example",
        "-w",
        "%{http_code}",
        &version,
    ]);
    assert_eq!((c.exit, c.out.as_str()), (0, "421"), "{} {}", c.err, c.body);

    // A restart reuses the certificate.
    master.kill();
    drop(master);
    let master = NetmasterProcess::start_with(&data, None, &log, &options).await;
    assert_eq!(
        printed_fingerprint(&log),
        printed,
        "the restart prints the same"
    );
    let (again, _) = served(master.addr(), &cert, &[b"http/1.1"]).await;
    assert_eq!(again, printed, "the restart serves the same certificate");
}

#[tokio::test]
async fn given_certificate_and_key_are_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let log = dir.path().join("netmaster.log");
    let names = vec!["given.example".to_string(), "127.0.0.1".to_string()];
    let params = rcgen::CertificateParams::new(names).expect("params");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("certificate");
    let cert_path = dir.path().join("given.pem");
    let key_path = dir.path().join("given.key");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    let given = client::fingerprint(cert.der().as_ref());

    let options = Options {
        tls: true,
        ca: Some(cert_path.clone()),
        args: vec![
            "--tls-cert".into(),
            cert_path.display().to_string(),
            "--tls-key".into(),
            key_path.display().to_string(),
            "--api-hostname".into(),
            "given.example".into(),
        ],
    };
    let master = NetmasterProcess::start_with(&data, None, &log, &options).await;
    let addr = master.addr();
    assert_eq!(printed_fingerprint(&log), given);
    let (served_fp, _) = served(addr, &cert_path, &[b"http/1.1"]).await;
    assert_eq!(served_fp, given, "the given certificate is served");
    assert!(!data.join("tls").exists(), "nothing is generated");
    let resolve = format!("given.example:{}:127.0.0.1", addr.port());
    let by_name = format!("https://given.example:{}/version", addr.port());
    let cacert = cert_path.to_str().expect("utf-8");
    let c = curl(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve,
        "-w",
        "%{http_code} %{ssl_verify_result}",
        &by_name,
    ]);
    assert_eq!((c.exit, c.out.as_str()), (0, "200 0"), "{}", c.err);

    // Half a pair, or TLS files with --insecure-http, do not start.
    let binary = env!("CARGO_BIN_EXE_netmaster");
    for args in [
        vec!["--tls-cert", cacert],
        vec!["--insecure-http", "--tls-cert", cacert, "--tls-key", cacert],
    ] {
        let out = Command::new(binary)
            .args(&args)
            .env_remove("NETMASTER_ETCD")
            .output()
            .expect("run netmaster");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} must be refused by the flags"
        );
    }
}

#[tokio::test]
async fn insecure_http_is_plain_and_warned() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let log = dir.path().join("netmaster.log");
    let master = NetmasterProcess::start(&data, None, &log).await;
    let addr = master.addr();
    let c = curl(&["-w", "%{http_code}", &url("http", addr, "/version")]);
    assert_eq!((c.exit, c.out.as_str()), (0, "200"), "{}", c.err);
    let c = curl(&["-k", "-w", "%{http_code}", &url("https", addr, "/version")]);
    assert_ne!(c.exit, 0, "no TLS on an --insecure-http port");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("WARN") && text.contains("WITHOUT TLS"),
        "plain HTTP is warned about:\n{text}"
    );
    assert!(!data.join("tls").exists(), "no certificate is made");
}

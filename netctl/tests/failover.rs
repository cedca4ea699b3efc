//! Several masters of one control plane (issue 16): two real netmasters over one etcd, each
//! with its own self-signed certificate, given to netctl as one `--netmaster` list and one PEM
//! bundle. `netctl login` against the list saves the token for every URL of it; with the first
//! master dead (and a URL nobody listens on before it), reads and writes fail over to the other
//! master, which takes the token the first one issued (the masters share sessions through the
//! store) and sees what was written through the first.
//!
//! Needs `etcd` on PATH and the netmaster binary (`cargo build -p netmaster`); a missing one fails
//! the test.

mod common;

use common::{free_loopback_port, Netmaster, ADMIN_PASSWORD};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An etcd on loopback ports with its own data dir; killed on drop.
struct Etcd {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    fn start() -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, peer) = (free_loopback_port(), free_loopback_port());
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log");
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .arg("--initial-cluster")
            .arg(format!("default={peer_url}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd must be installed (package etcd-server) for this test");
        let mut etcd = Etcd {
            child,
            url,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", client)).is_ok() {
                return etcd;
            }
            if let Ok(Some(status)) = etcd.child.try_wait() {
                panic!("etcd exited with {status}");
            }
            assert!(Instant::now() < deadline, "etcd did not listen in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback URL nobody listens on.
fn dead_url() -> String {
    format!("https://127.0.0.1:{}", free_loopback_port())
}

#[test]
fn one_login_and_one_bundle_serve_both_masters_and_requests_fail_over() {
    let etcd = Etcd::start();
    let first = Netmaster::start_with(&["--etcd", &etcd.url]);
    let second = Netmaster::start_with(&["--etcd", &etcd.url]);
    let (Some(cert1), Some(cert2)) = (&first.cacert, &second.cacert) else {
        panic!("the netmasters serve TLS by default");
    };
    // A HOME and a bundle that outlive the first master.
    let own = tempfile::tempdir().expect("temp dir");
    let home = own.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let bundle = own.path().join("masters.pem");
    let pem = [cert1, cert2]
        .iter()
        .map(|c| std::fs::read_to_string(c).expect("certificate"))
        .collect::<String>();
    std::fs::write(&bundle, pem).expect("bundle");
    let dead = dead_url();
    let list = format!("{dead},{},{}", first.url, second.url);
    let home_text = home.to_string_lossy().into_owned();
    let bundle_text = bundle.to_string_lossy().into_owned();
    let env = [
        ("HOME", home_text.as_str()),
        ("NETMASTER", list.as_str()),
        ("NETCTL_CACERT", bundle_text.as_str()),
    ];

    first.ok_env(
        &format!("printf '%s\\n' '{ADMIN_PASSWORD}' | netctl login -u admin --password-stdin"),
        &env,
    );
    let text = std::fs::read_to_string(home.join(".config/netctl/tokens.json")).expect("tokens");
    let tokens: serde_json::Value = serde_json::from_str(&text).expect("token JSON");
    let token = &tokens["netmasters"][first.url.as_str()]["token"];
    assert!(token.is_string(), "{text}");
    for url in [&dead, &second.url] {
        assert_eq!(
            &tokens["netmasters"][url.as_str()]["token"],
            token,
            "{text}"
        );
    }
    first.ok_env("netctl tenant create blue", &env);

    // The first master goes away: the second serves the same store with the same session.
    drop(first);
    let out = second.sh_env("netctl tenant ls -q && netctl tenant create red", &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.lines().any(|l| l.trim() == "blue"), "{stdout}");
    assert!(
        stderr.contains(&format!("netmaster {dead} failed")),
        "each failover is reported: {stderr}"
    );
    let listed = second.ok_env("netctl tenant ls -q", &env);
    assert!(listed.lines().any(|l| l.trim() == "red"), "{listed}");

    // The second master alone, trusted only through the second certificate of the bundle.
    let only_second = [
        ("HOME", home_text.as_str()),
        ("NETMASTER", second.url.as_str()),
        ("NETCTL_CACERT", bundle_text.as_str()),
    ];
    second.ok_env("netctl tenant inspect red", &only_second);
}

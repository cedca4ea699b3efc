//! The end-to-end tests' netmaster: the real binary on a loopback port with its own data dir,
//! served the way the binary serves by default (TLS with its self-signed certificate when it
//! has TLS, which `netctl` then trusts through `NETCTL_CACERT`; plain HTTP otherwise), and
//! command lines run through `sh -c` with the real `netctl` first in PATH and a HOME of its own.
//!
//! The netmaster binary must be built first (`cargo build -p netmaster`); the tests say so
//! when it is missing rather than passing.

#![allow(dead_code)] // each test file uses its own part of this

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;

/// Contiv's tutorial, as netctl command lines.
pub const TUTORIAL: &[&str] = &[
    "netctl global set --fwd-mode routing",
    "netctl tenant create blue",
    // Contiv's overlay tutorial gives blue the default tenant's subnet; native L3 (set above)
    // refuses that (see `overlapping_subnets_of_two_tenants_are_refused_in_native_l3`).
    "netctl net create -t blue -s 10.1.2.0/24 -g 10.1.2.254 contiv-net",
    "netctl net create -s 10.1.1.0/24 -g 10.1.1.254 contiv-net",
    "netctl policy create db-policy",
    "netctl policy rule-add db-policy 1 -direction=in -protocol=tcp -action=deny",
    "netctl policy rule-add db-policy 2 -direction=in -protocol=tcp -port=8888 -action=allow -priority=10",
    "netctl group create contiv-net db-group -policy=db-policy",
    "netctl net create -p 112 -e vlan -s 10.1.3.0/24 contiv-vlan",
    "netctl service create app-svc --network contiv-net --selector=tier=web --port 8080:80:TCP",
    r#"netctl bgp create host1 -router-ip="50.1.1.1/24" --as="65002" --neighbor-as="500" --neighbor="50.1.1.2""#,
];

/// The directory cargo put this test's binaries in (`target/debug`), wherever the target dir is.
pub fn target_dir() -> PathBuf {
    let netctl = PathBuf::from(env!("CARGO_BIN_EXE_netctl"));
    netctl
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"))
}

pub fn netmaster_binary() -> PathBuf {
    let path = target_dir().join("netmaster");
    assert!(
        path.is_file(),
        "the netmaster binary is missing at {}: build it first with `cargo build -p netmaster` \
         (this end-to-end test runs netctl against the real netmaster)",
        path.display()
    );
    path
}

/// What the netmaster binary can do, from its `--help`.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// Serves TLS by default (it has `--insecure-http` to turn it off).
    pub tls: bool,
    /// Has `--auth` and `--admin-password-file`.
    pub auth: bool,
    /// Runs a BGP route reflector (on port 179 by default) that `--reflector-listen off` stops.
    pub reflector: bool,
}

pub fn features() -> Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    *FEATURES.get_or_init(|| {
        let out = Command::new(netmaster_binary())
            .arg("--help")
            .output()
            .expect("running netmaster --help");
        let help = String::from_utf8_lossy(&out.stdout);
        Features {
            tls: help.contains("--insecure-http"),
            auth: help.contains("--auth ") && help.contains("--admin-password-file"),
            reflector: help.contains("--reflector-listen"),
        }
    })
}

/// The first admin's password of every master [`Netmaster::start`] starts.
pub const ADMIN_PASSWORD: &str = "netctl-e2e-admin-password";

pub fn free_loopback_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener.local_addr().expect("local address").port()
}

/// A netmaster process on a loopback port with its own data dir; killed and removed on drop.
pub struct Netmaster {
    child: Child,
    pub url: String,
    /// The self-signed certificate netctl is given through `NETCTL_CACERT`, when TLS.
    pub cacert: Option<PathBuf>,
    /// The token netctl saved at [`Netmaster::start`]'s login, which the harness's own GETs
    /// send too.
    pub admin_token: Option<String>,
    dir: tempfile::TempDir,
}

impl Netmaster {
    /// The master as its binary runs by default (TLS, authentication on), with netctl logged
    /// in as its first admin in this test's HOME, as a user of Contiv's auth_proxy starts.
    pub fn start() -> Netmaster {
        let mut master = Netmaster::start_with(&[]);
        master.ok_env(
            &format!("printf '%s\\n' '{ADMIN_PASSWORD}' | netctl login -u admin --password-stdin"),
            &[],
        );
        let file = master.home().join(".config/netctl/tokens.json");
        let text = std::fs::read_to_string(&file).expect("netctl login saved a token");
        let tokens: Value = serde_json::from_str(&text).expect("token file JSON");
        master.admin_token = tokens["netmasters"][master.url.as_str()]["token"]
            .as_str()
            .map(str::to_string);
        assert!(
            master.admin_token.is_some(),
            "no token for {} in {text}",
            master.url
        );
        master
    }

    /// The master with these extra flags.
    pub fn start_with(extra: &[&str]) -> Netmaster {
        let binary = netmaster_binary();
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Netmaster::try_start(&binary, extra) {
                Ok(master) => return master,
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "netmaster did not start in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        );
    }

    fn try_start(binary: &Path, extra: &[&str]) -> Result<Netmaster, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("netctl-e2e-{}-", std::process::id()))
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        std::fs::create_dir(dir.path().join("home")).map_err(|e| format!("home: {e}"))?;
        let port = free_loopback_port();
        let log = std::fs::File::create(dir.path().join("netmaster.log"))
            .map_err(|e| format!("log file: {e}"))?;
        let data = dir.path().join("data");
        // The first admin's password, unless the test brings its own.
        let password_file = dir.path().join("admin-password");
        std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n"))
            .map_err(|e| format!("admin password file: {e}"))?;
        let own_password = extra.contains(&"--admin-password-file");
        let password_args: Vec<&std::ffi::OsStr> = if own_password {
            Vec::new()
        } else {
            vec!["--admin-password-file".as_ref(), password_file.as_os_str()]
        };
        // netctl's tests need no BGP, and masters of parallel tests would all want port 179.
        let reflector_args: &[&str] = if features().reflector {
            &["--reflector-listen", "off"]
        } else {
            &[]
        };
        let child = Command::new(binary)
            .args(reflector_args)
            .arg("--listen-url")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data)
            .arg("--log-level")
            .arg("warn")
            .args(password_args)
            .args(extra)
            .env_remove("NETMASTER_ETCD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        let tls = features().tls && !extra.contains(&"--insecure-http");
        let (scheme, cacert) = if tls {
            ("https", Some(data.join("tls").join("cert.pem")))
        } else {
            ("http", None)
        };
        let mut master = Netmaster {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            cacert,
            admin_token: None,
            dir,
        };
        master.wait_ready()?;
        Ok(master)
    }

    /// Polls `/healthz` until it answers, the process dies, or the deadline passes.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("netmaster exited with {status}: {}", self.log()));
            }
            let cert_ready = self.cacert.as_ref().is_none_or(|c| c.is_file());
            if cert_ready && matches!(self.http_get("/healthz", None), Ok((200, _))) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "netmaster not ready after {STARTUP_DEADLINE:?}: {}",
            self.log()
        ))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("netmaster.log")).unwrap_or_default()
    }

    /// A directory of this test (for files, or other HOMEs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The HOME the command lines run with (its own, so no real token is read or written).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Runs a command line through the shell, with this master and our netctl first in PATH,
    /// and these environment variables set over the defaults (an empty value removes one).
    pub fn sh_env(&self, line: &str, env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            target_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(line)
            .env("PATH", path)
            .env("NETMASTER", &self.url)
            .env("HOME", self.home())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("NETCTL_TOKEN")
            .env_remove("NETCTL_CACERT")
            .env_remove("INSECURE")
            .stdin(Stdio::null());
        if let Some(cacert) = &self.cacert {
            command.env("NETCTL_CACERT", cacert);
        }
        for (key, value) in env {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        command.output().expect("running sh")
    }

    pub fn sh(&self, line: &str) -> Output {
        self.sh_env(line, &[])
    }

    /// Runs a line that must succeed; returns its stdout.
    pub fn ok_env(&self, line: &str, env: &[(&str, &str)]) -> String {
        let out = self.sh_env(line, env);
        assert!(
            out.status.success(),
            "`{line}` failed with {}:\nstdout: {}\nstderr: {}\nnetmaster log: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    pub fn ok(&self, line: &str) -> String {
        self.ok_env(line, &[])
    }

    /// Runs a line that must fail; returns its stderr.
    pub fn fails_env(&self, line: &str, env: &[(&str, &str)]) -> String {
        let out = self.sh_env(line, env);
        assert_eq!(
            out.status.code(),
            Some(1),
            "`{line}` should exit 1; stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }

    pub fn fails(&self, line: &str) -> String {
        self.fails_env(line, &[])
    }

    /// GET of a REST path that must exist.
    pub fn get(&self, path: &str) -> Value {
        self.get_as(path, self.admin_token.as_deref())
    }

    /// GET of a REST path that must exist, with this token.
    pub fn get_as(&self, path: &str, token: Option<&str>) -> Value {
        match self.http_get(path, token) {
            Ok((200, body)) => serde_json::from_str(&body).expect("JSON body"),
            other => panic!("GET {}{path}: {other:?}", self.url),
        }
    }

    pub fn status(&self, path: &str) -> u16 {
        self.status_as(path, self.admin_token.as_deref())
    }

    pub fn status_as(&self, path: &str, token: Option<&str>) -> u16 {
        self.http_get(path, token).map(|(s, _)| s).unwrap_or(0)
    }

    pub fn run_tutorial(&self) {
        for line in TUTORIAL {
            self.ok(line);
        }
    }

    /// A GET through a client of our own (trusting only the master's certificate when TLS).
    pub fn http_get(&self, path: &str, token: Option<&str>) -> Result<(u16, String), String> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)));
        if let Some(cacert) = &self.cacert {
            let pem = std::fs::read(cacert).map_err(|e| e.to_string())?;
            let cert = ureq::tls::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                    .build(),
            );
        }
        let agent = config.build().new_agent();
        let mut request = agent.get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }
}

impl Drop for Netmaster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

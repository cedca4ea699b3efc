//! The real `netmaster` binary as a child process on a loopback port: started on a data
//! directory (embedded store) or etcd endpoints, SIGKILLed on demand and always on drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started master may take to answer `/healthz` (the CI machine is small and busy).
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Attempts with a fresh port when the port picked as free got taken meanwhile.
const START_ATTEMPTS: usize = 3;

/// The first admin's password of every master started here.
pub const ADMIN_PASSWORD: &str = "process-test-admin-password";

pub struct NetmasterProcess {
    child: Option<Child>,
    pub base: String,
    log: PathBuf,
    /// The CA file that verifies it, when it serves TLS.
    ca: Option<PathBuf>,
}

/// How to start it beyond the data directory and store.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve TLS instead of plain HTTP (`--insecure-http`, what most tests use).
    pub tls: bool,
    /// The CA file to check readiness with over TLS; `<data-dir>/tls/cert.pem` (the generated
    /// certificate) when absent.
    pub ca: Option<PathBuf>,
    /// More flags.
    pub args: Vec<String>,
}

impl NetmasterProcess {
    /// Starts `netmaster` on a free loopback port over `data_dir`, or over etcd when
    /// `etcd` is given, and waits (bounded) until `/healthz` answers.
    pub async fn start(data_dir: &Path, etcd: Option<&[String]>, log: &Path) -> Self {
        Self::start_with(data_dir, etcd, log, &Options::default()).await
    }

    /// [`NetmasterProcess::start`] with `options`.
    pub async fn start_with(
        data_dir: &Path,
        etcd: Option<&[String]>,
        log: &Path,
        options: &Options,
    ) -> Self {
        super::install_crypto();
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut master = Self::spawn(data_dir, etcd, log, port, options);
            match master.wait_ready().await {
                Ok(()) => return master,
                Err(reason) => last = reason,
            }
        }
        panic!("netmaster did not start: {last}; log tail:\n{}", tail(log));
    }

    fn spawn(
        data_dir: &Path,
        etcd: Option<&[String]>,
        log: &Path,
        port: u16,
        options: &Options,
    ) -> Self {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the netmaster log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netmaster"));
        cmd.arg("--listen-url")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--log-level", "warn"])
            .env_remove("NETMASTER_ETCD")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out);
        if let Some(endpoints) = etcd {
            cmd.arg("--etcd").arg(endpoints.join(","));
        }
        if !options.tls {
            cmd.arg("--insecure-http");
        }
        // Authentication is on (the default): the first admin gets a known password, unless
        // the test brings its own.
        if !options.args.iter().any(|a| a == "--admin-password-file") {
            let file = log.with_extension("admin-password");
            std::fs::write(&file, format!("{ADMIN_PASSWORD}\n")).expect("admin password file");
            cmd.arg("--admin-password-file").arg(file);
        }
        cmd.args(&options.args);
        let child = cmd.spawn().expect("spawn the netmaster binary");
        let ca = options.tls.then(|| {
            options
                .ca
                .clone()
                .unwrap_or_else(|| data_dir.join("tls").join("cert.pem"))
        });
        let scheme = if options.tls { "https" } else { "http" };
        NetmasterProcess {
            child: Some(child),
            base: format!("{scheme}://127.0.0.1:{port}"),
            log: log.to_path_buf(),
            ca,
        }
    }

    /// A token of the first admin (plain HTTP masters only), by Contiv's login request.
    pub async fn admin_token(&self) -> String {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/auth_proxy/login/", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
            .send()
            .await
            .expect("login reaches the master");
        let v: serde_json::Value = resp.json().await.expect("login answers JSON");
        v["token"]
            .as_str()
            .expect("login gives a token")
            .to_string()
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> std::net::SocketAddr {
        let authority = self.base.rsplit('/').next().unwrap_or_default();
        authority.parse().expect("the base names a socket address")
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let until = Instant::now() + READY_DEADLINE;
        let mut last = String::from("no answer yet");
        while Instant::now() < until {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("netmaster exited with {status}"));
                }
            }
            if let Some(ca) = &self.ca {
                // The CA file may not be written yet: the master makes it before listening.
                match super::tls::get_status(self.addr(), ca, "/healthz").await {
                    Ok(200) => return Ok(()),
                    Ok(status) => last = format!("/healthz answered {status}"),
                    Err(e) => last = e,
                }
            } else {
                match client.get(format!("{}/healthz", self.base)).send().await {
                    Ok(r) if r.status().is_success() => return Ok(()),
                    Ok(r) => last = format!("/healthz answered {}", r.status()),
                    Err(e) => last = e.to_string(),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
        Err(format!("not ready after {READY_DEADLINE:?} ({last})"))
    }

    /// SIGKILL, as a crash or power loss would stop it; reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The end of the master's log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

impl Drop for NetmasterProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(30).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

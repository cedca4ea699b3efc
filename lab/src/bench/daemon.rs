//! The daemons a benchmark starts on loopback (netmaster, etcd): each in a temporary directory
//! that holds its data and log, SIGKILLed and reaped on drop, the directory removed after.
//! netmaster runs as [`Security`] says: TLS with its self-signed certificate and `--auth on`
//! (the product), or plain HTTP with or without authentication; the bench logs in as admin.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lab::auth::Access;

/// How long a daemon may take to answer its health check.
const READY_DEADLINE: Duration = Duration::from_secs(30);

pub struct Daemon {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output in `dir/<name>.log` and polls `health` (bounded) until it
    /// answers 200 with a body containing `healthy`.
    pub fn start(
        name: &'static str,
        mut cmd: Command,
        dir: &Path,
        health: &dyn Fn() -> std::result::Result<(u16, String), String>,
        healthy: &str,
    ) -> Result<Daemon> {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let mut daemon = Daemon {
            name,
            child: Some(child),
            log,
        };
        daemon.wait_ready(health, healthy)?;
        Ok(daemon)
    }

    fn wait_ready(
        &mut self,
        health: &dyn Fn() -> std::result::Result<(u16, String), String>,
        healthy: &str,
    ) -> Result<()> {
        let until = Instant::now() + READY_DEADLINE;
        let mut last = String::from("no answer yet");
        while Instant::now() < until {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "{} exited while starting ({status}){}",
                    self.name,
                    lab::sys::log_tail(&self.log, 20)
                );
            }
            match health() {
                Ok((status, body)) => {
                    if status == 200 && body.contains(healthy) {
                        return Ok(());
                    }
                    last = format!("{status} {body}");
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        bail!(
            "{} not ready after {READY_DEADLINE:?} (last probe: {last}){}",
            self.name,
            lab::sys::log_tail(&self.log, 20)
        )
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A single-member etcd on loopback with its data in `dir`.
pub fn etcd(binary: &Path, dir: &Path) -> Result<(Daemon, String)> {
    let (client, peer) = (free_port()?, free_port()?);
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut cmd = Command::new(binary);
    cmd.arg("--name")
        .arg("bench")
        .arg("--data-dir")
        .arg(dir.join("etcd"))
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("bench={peer_url}")])
        .args(["--initial-cluster-state", "new"])
        .args(["--logger", "zap", "--log-outputs", "stderr"]);
    let health = format!("{client_url}/health");
    let agent = super::rest::agent(Duration::from_secs(2));
    let probe = || get(&agent, &health);
    let daemon = Daemon::start("etcd", cmd, dir, &probe, "\"health\":\"true\"")?;
    Ok((daemon, client_url))
}

fn get(agent: &ureq::Agent, url: &str) -> std::result::Result<(u16, String), String> {
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Ok((resp.status().as_u16(), body))
}

/// How a bench's clients reach netmaster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Security {
    /// TLS (its self-signed certificate, ALPN h2/http/1.1) and `--auth on`, every request with
    /// a token: what the product runs.
    TlsToken,
    /// Plain HTTP (`--insecure-http`) and `--auth on`.
    Token,
    /// Plain HTTP and `--auth off`: the master before issue 18.
    Plain,
}

impl Security {
    pub fn name(self) -> &'static str {
        match self {
            Security::TlsToken => "tls+token",
            Security::Token => "token",
            Security::Plain => "plain",
        }
    }

    fn tls(self) -> bool {
        self == Security::TlsToken
    }

    fn auth(self) -> bool {
        self != Security::Plain
    }
}

/// netmaster on loopback over the embedded store in `dir`, or over `etcd` when given, served
/// as `security` says; returns how to reach it (logged in as admin when authentication is on).
pub fn netmaster(
    binary: &Path,
    dir: &Path,
    etcd: Option<&str>,
    security: Security,
) -> Result<(Daemon, Access)> {
    netmaster_with(binary, dir, etcd, security, &[])
}

/// [`netmaster`] with more flags.
pub fn netmaster_with(
    binary: &Path,
    dir: &Path,
    etcd: Option<&str>,
    security: Security,
    flags: &[String],
) -> Result<(Daemon, Access)> {
    let scheme = if security.tls() { "https" } else { "http" };
    let port = free_port()?;
    let base = format!("{scheme}://127.0.0.1:{port}");
    let data_dir = dir.join("netmaster");
    let password_file = dir.join("admin-password");
    let mut cmd = Command::new(binary);
    cmd.arg("--listen-url")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--log-level", "warn"])
        .env_remove("NETMASTER_ETCD")
        .env_remove("NETMASTER_ADMIN_PASSWORD_FILE")
        .env_remove("NETMASTER_AGENT_SECRET_FILE");
    if !security.tls() {
        cmd.arg("--insecure-http");
    }
    if security.auth() {
        lab::auth::write_secret(&password_file)?;
        cmd.args(["--auth", "on", "--admin-password-file"])
            .arg(&password_file);
    } else {
        cmd.args(["--auth", "off"]);
    }
    if let Some(endpoint) = etcd {
        cmd.arg("--etcd").arg(endpoint);
    }
    cmd.args(flags);
    // The certificate is made at the master's start: it is read once it exists.
    let cacert = security
        .tls()
        .then(|| data_dir.join("tls").join("cert.pem"));
    let health = format!("{base}/healthz");
    let probe = || {
        let agent = match &cacert {
            Some(pem) if !pem.exists() => return Err("no certificate yet".to_string()),
            pem => lab::auth::http_agent(pem.as_deref(), Duration::from_secs(2))
                .map_err(|e| e.to_string())?,
        };
        get(&agent, &health)
    };
    let daemon = Daemon::start("netmaster", cmd, dir, &probe, "ok")?;
    let token = if security.auth() {
        let agent = lab::auth::http_agent(cacert.as_deref(), Duration::from_secs(30))?;
        let password = lab::auth::read_secret(&password_file)?;
        Some(lab::auth::login(
            &agent,
            &base,
            lab::auth::ADMIN,
            &password,
        )?)
    } else {
        None
    };
    Ok((
        daemon,
        Access {
            url: base,
            cacert,
            token,
        },
    ))
}

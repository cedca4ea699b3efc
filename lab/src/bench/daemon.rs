//! The daemons a benchmark starts on loopback (netmaster, etcd): each in a temporary directory
//! that holds its data and log, SIGKILLed and reaped on drop, the directory removed after.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a daemon may take to answer its health check.
const READY_DEADLINE: Duration = Duration::from_secs(30);

pub struct Daemon {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output in `dir/<name>.log` and polls `health_url` (bounded) until
    /// it answers 200 with a body containing `healthy`.
    pub fn start(
        name: &'static str,
        mut cmd: Command,
        dir: &Path,
        health_url: &str,
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
        daemon.wait_ready(health_url, healthy)?;
        Ok(daemon)
    }

    fn wait_ready(&mut self, url: &str, healthy: &str) -> Result<()> {
        let agent = super::rest::agent(Duration::from_secs(2));
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
            match agent.get(url).call() {
                Ok(mut resp) => {
                    let body = resp.body_mut().read_to_string().unwrap_or_default();
                    if resp.status().as_u16() == 200 && body.contains(healthy) {
                        return Ok(());
                    }
                    last = format!("{} {body}", resp.status());
                }
                Err(e) => last = e.to_string(),
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
    let daemon = Daemon::start("etcd", cmd, dir, &health, "\"health\":\"true\"")?;
    Ok((daemon, client_url))
}

/// netmaster on loopback over the embedded store in `dir`, or over `etcd` when given.
pub fn netmaster(binary: &Path, dir: &Path, etcd: Option<&str>) -> Result<(Daemon, String)> {
    let base = format!("http://127.0.0.1:{}", free_port()?);
    let mut cmd = Command::new(binary);
    cmd.arg("--listen-url")
        .arg(base.trim_start_matches("http://"))
        .arg("--data-dir")
        .arg(dir.join("netmaster"))
        .args(["--log-level", "warn"])
        // The benches' clients speak plain HTTP (HTTP/1.1 and h2c).
        .arg("--insecure-http")
        .env_remove("NETMASTER_ETCD");
    if let Some(endpoint) = etcd {
        cmd.arg("--etcd").arg(endpoint);
    }
    let daemon = Daemon::start("netmaster", cmd, dir, &format!("{base}/healthz"), "ok")?;
    Ok((daemon, base))
}

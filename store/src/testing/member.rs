//! One etcd member process: its ports, command line, health check and kill.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{FixtureError, ServerTls, ETCD_BINARY};

pub struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP `/health` (etcd's `--listen-metrics-urls`), so health checks need no TLS.
    metrics_port: u16,
    /// Serve clients over TLS with client-certificate authentication.
    tls: Option<ServerTls>,
    data_dir: PathBuf,
    log_path: PathBuf,
    initial_cluster: String,
    token: String,
    child: Option<Child>,
}

impl Member {
    /// Picks free loopback ports for `size` members (all held open at once, so distinct).
    pub fn plan(
        size: usize,
        dir: &Path,
        token: &str,
        tls: Option<&ServerTls>,
    ) -> Result<Vec<Member>, FixtureError> {
        let listeners = (0..size * 3)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()?;
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<Vec<_>, _>>()?;
        drop(listeners);
        let initial_cluster = (0..size)
            .map(|i| format!("m{i}=http://127.0.0.1:{}", ports[3 * i + 1]))
            .collect::<Vec<_>>()
            .join(",");
        Ok((0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[3 * i],
                peer_port: ports[3 * i + 1],
                metrics_port: ports[3 * i + 2],
                tls: tls.cloned(),
                data_dir: dir.join(format!("m{i}.etcd")),
                log_path: dir.join(format!("m{i}.log")),
                initial_cluster: initial_cluster.clone(),
                token: token.to_string(),
                child: None,
            })
            .collect())
    }

    pub fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn spawn(&mut self, new_cluster: bool) -> Result<(), FixtureError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let metrics_url = format!("http://127.0.0.1:{}", self.metrics_port);
        let mut command = Command::new(ETCD_BINARY);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.client_ca)
                .arg("--client-cert-auth");
        }
        let child = command
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &self.client_url()])
            .args(["--advertise-client-urls", &self.client_url()])
            .args(["--listen-metrics-urls", &metrics_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args([
                "--initial-cluster-state",
                if new_cluster { "new" } else { "existing" },
            ])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls `/health` until it reports true, the process exits, or the deadline passes.
    pub fn wait_healthy(&mut self, deadline: Duration) -> Result<(), FixtureError> {
        let until = Instant::now() + deadline;
        let mut last_reason = String::from("no answer yet");
        while Instant::now() < until {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(self.not_healthy(format!("etcd exited with {status}")));
                }
            }
            match self.health() {
                Ok(true) => return Ok(()),
                Ok(false) => last_reason = "health check says not healthy".into(),
                Err(e) => last_reason = format!("health check: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        Err(self.not_healthy(format!("not healthy after {deadline:?} ({last_reason})")))
    }

    fn health(&self) -> std::io::Result<bool> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.metrics_port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut response = String::new();
        stream.take(64 * 1024).read_to_string(&mut response)?;
        Ok(response.contains("\"health\":\"true\""))
    }

    fn not_healthy(&self, reason: String) -> FixtureError {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        FixtureError::NotHealthy {
            name: self.name.clone(),
            reason,
            log: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        }
    }

    /// SIGKILL and reap; nothing if not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

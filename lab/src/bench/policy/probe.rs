//! The probe of the one-rule change: `busybox nc -ll -p PORT -e /bin/cat` in the server's
//! namespace, and short TCP connects from a thread in the client's namespace, sending a byte
//! and waiting for its echo; "answered" means the echo came back.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long one probe may take to connect and to get its echo.
const PROBE_TIMEOUT: Duration = Duration::from_millis(30);

/// The echo server, killed on drop.
pub struct Server(Child);

impl Server {
    pub fn start(netns: &str, port: u16) -> Result<Server> {
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "busybox", "nc", "-ll", "-p"])
            .arg(port.to_string())
            .args(["-e", "/bin/cat"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting busybox nc (Debian package busybox-static)")?;
        Ok(Server(child))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One probe: connect, send a byte, read it back.
pub fn answered(ip: Ipv4Addr, port: u16) -> bool {
    let addr = SocketAddr::from((ip, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(PROBE_TIMEOUT));
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; 1];
    s.write_all(b"x").is_ok() && s.read_exact(&mut buf).is_ok() && buf == *b"x"
}

/// Probes until the answer is `want` (at most until `deadline`); the instant the deciding
/// probe started (a failing probe ends a timeout later).
pub fn until(ip: Ipv4Addr, port: u16, want: bool, deadline: Instant) -> Option<Instant> {
    while Instant::now() < deadline && !crate::bench::attach::stopping() {
        let started = Instant::now();
        if answered(ip, port) == want {
            return Some(started);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

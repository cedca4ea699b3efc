//! Throw-away namespaces, bridges and daemons for the benchmark, removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub fn sh(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A namespace (with lo up), deleted on drop.
pub struct Ns(pub String);

impl Ns {
    pub fn create(name: String) -> Result<Ns> {
        sh(&["ip", "netns", "add", &name])?;
        let ns = Ns(name);
        ns.run(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn run(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["ip", "netns", "exec", self.0.as_str()];
        full.extend_from_slice(args);
        sh(&full)
    }

    pub fn spawn(&self, args: &[&str], log: &Path) -> Result<Child> {
        let log = std::fs::File::create(log)?;
        Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {args:?}"))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.0]);
    }
}

/// A bridge in `hub` with `addr`, and a port for each attached namespace.
pub struct Segment<'a> {
    hub: &'a Ns,
    bridge: String,
    ports: u32,
}

impl<'a> Segment<'a> {
    pub fn new(hub: &'a Ns, addr: &str) -> Result<Segment<'a>> {
        let bridge = format!("{}br", hub.0);
        hub.run(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        hub.run(&["ip", "link", "set", &bridge, "up"])?;
        hub.run(&["ip", "addr", "add", addr, "dev", &bridge])?;
        Ok(Segment {
            hub,
            bridge,
            ports: 0,
        })
    }

    /// Attach `ns` with `addr`; returns the interface name inside `ns`.
    pub fn attach(&mut self, ns: &Ns, addr: &str) -> Result<String> {
        self.ports += 1;
        let outer = format!("{}p{}", self.hub.0, self.ports);
        let inner = format!("{}q{}", self.hub.0, self.ports);
        sh(&[
            "ip",
            "link",
            "add",
            &outer,
            "netns",
            &self.hub.0,
            "type",
            "veth",
            "peer",
            "name",
            &inner,
            "netns",
            &ns.0,
        ])?;
        self.hub
            .run(&["ip", "link", "set", &outer, "master", &self.bridge])?;
        self.hub.run(&["ip", "link", "set", &outer, "up"])?;
        ns.run(&["ip", "addr", "add", addr, "dev", &inner])?;
        ns.run(&["ip", "link", "set", &inner, "up"])?;
        Ok(inner)
    }
}

/// A process killed on drop.
pub struct Daemon {
    pub child: Option<Child>,
    pub pid_file: Option<PathBuf>,
}

impl Daemon {
    pub fn pid(&self) -> Option<u32> {
        if let Some(c) = &self.child {
            return Some(c.id());
        }
        let text = std::fs::read_to_string(self.pid_file.as_ref()?).ok()?;
        text.trim().parse().ok()
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_kib(&self) -> Option<u64> {
        status_kib(self.pid()?, "VmHWM:")
    }

    pub fn rss_kib(&self) -> Option<u64> {
        status_kib(self.pid()?, "VmRSS:")
    }

    /// CPU seconds (user + system) the process has used.
    pub fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the command name (which may hold spaces) start at ") ".
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Some(ticks as f64 / hz)
    }
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = sh(&["kill", "-9", &pid.to_string()]);
        }
        if let Some(c) = self.child.as_mut() {
            let _ = c.wait();
        }
    }
}

/// Poll until `f` yields, every 20 ms, for at most `limit`.
pub fn poll<T>(what: &str, limit: Duration, f: impl FnMut() -> Option<T>) -> Result<T> {
    poll_every(what, limit, Duration::from_millis(20), f)
}

/// Poll until `f` yields, sleeping `every` between tries, for at most `limit` (and at most
/// `limit / every` tries).
pub fn poll_every<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    let tries = limit.as_micros() / every.as_micros().max(1) + 1;
    for _ in 0..tries {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(every);
    }
    bail!("timed out after {limit:?} waiting for {what}")
}

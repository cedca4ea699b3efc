//! Shared test harness: namespaces, veths, daemons (ours, BIRD, FRR, GoBGP) and polling, all
//! cleaned up by Drop guards, also when a test fails.
#![allow(dead_code)]

pub mod peers;
pub mod raw_peer;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Fail (never skip) when the machine cannot run interop tests, saying why.
pub fn require(tools: &[&str]) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "interop tests need root to create network namespaces (run as root)"
    );
    for tool in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
            || Path::new(tool).is_file();
        assert!(
            found,
            "interop test needs `{tool}` installed (Debian packages: iproute2 bird2 frr gobgpd)"
        );
    }
}

pub fn run(cmd: &[&str]) -> String {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like `run` but returns None on failure (for polling).
pub fn try_run(cmd: &[&str]) -> Option<String> {
    let out = Command::new(cmd[0]).args(&cmd[1..]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Poll `f` until it yields, at most `secs` seconds; panics naming `what` on timeout.
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short name: `bgpt<pid><n>`.
pub fn unique(tag: &str) -> String {
    format!(
        "bgpt{}{}{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        tag
    )
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = unique("");
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(cmd);
        run(&full)
    }

    pub fn try_exec(&self, cmd: &[&str]) -> Option<String> {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(cmd);
        try_run(&full)
    }

    pub fn command(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(cmd);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Join two namespaces with a veth pair and give each end an address (with prefix length).
pub fn veth(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str) -> (String, String) {
    let an = unique("x");
    let bn = unique("y");
    run(&[
        "ip", "link", "add", &an, "netns", &a.name, "type", "veth", "peer", "name", &bn, "netns",
        &b.name,
    ]);
    a.exec(&["ip", "addr", "add", a_addr, "dev", &an]);
    b.exec(&["ip", "addr", "add", b_addr, "dev", &bn]);
    a.exec(&["ip", "link", "set", &an, "up"]);
    b.exec(&["ip", "link", "set", &bn, "up"]);
    (an, bn)
}

/// A Linux bridge in `ns` with `addr` on it; `bridge_port` attaches other namespaces.
pub fn bridge(ns: &Netns, addr: &str) -> String {
    let br = unique("b");
    ns.exec(&["ip", "link", "add", &br, "type", "bridge"]);
    ns.exec(&["ip", "link", "set", &br, "up"]);
    ns.exec(&["ip", "addr", "add", addr, "dev", &br]);
    br
}

/// Attach `other` to the bridge `br` in `ns` with a veth; `other` gets `addr`.
pub fn bridge_port(ns: &Netns, br: &str, other: &Netns, addr: &str) {
    let an = unique("p");
    let bn = unique("q");
    run(&[
        "ip",
        "link",
        "add",
        &an,
        "netns",
        &ns.name,
        "type",
        "veth",
        "peer",
        "name",
        &bn,
        "netns",
        &other.name,
    ]);
    ns.exec(&["ip", "link", "set", &an, "master", br]);
    ns.exec(&["ip", "link", "set", &an, "up"]);
    other.exec(&["ip", "addr", "add", addr, "dev", &bn]);
    other.exec(&["ip", "link", "set", &bn, "up"]);
}

/// A scratch directory removed on drop.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new() -> Dir {
        let p = std::env::temp_dir().join(unique("d"));
        std::fs::create_dir_all(&p).expect("create test dir");
        Dir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write test file");
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A daemon that forked into the background: killed through its pid file on drop.
pub struct PidFile(pub PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.0) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).output();
            }
        }
    }
}

/// Our daemon, fabric-bgpd, in a namespace.
pub struct Bgpd {
    pub proc: Proc,
    pub ctl: PathBuf,
    pub config: PathBuf,
}

impl Bgpd {
    /// Start with `speaker` (SpeakerConfig JSON) and optional start-up announcements.
    pub fn start(ns: &Netns, dir: &Dir, name: &str, speaker: Value, announce: Value) -> Bgpd {
        let ctl = dir.path(&format!("{name}.sock"));
        let _ = std::fs::remove_file(&ctl);
        let config = dir.write(
            &format!("{name}.json"),
            &json!({"speaker": speaker, "control_socket": ctl, "announce": announce}).to_string(),
        );
        let log = std::fs::File::create(dir.path(&format!("{name}.log"))).expect("log file");
        let child = ns
            .command(&[
                env!("CARGO_BIN_EXE_fabric-bgpd"),
                "-c",
                config.to_str().expect("utf-8 path"),
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start fabric-bgpd");
        let bgpd = Bgpd {
            proc: Proc(child),
            ctl,
            config,
        };
        wait_for("fabric-bgpd control socket", 10, || {
            bgpd.ctl.exists().then_some(())
        });
        bgpd
    }

    /// One control request; panics on a transport error, returns the response JSON.
    pub fn ctl(&self, request: Value) -> Value {
        let mut s = UnixStream::connect(&self.ctl).expect("connect control socket");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        writeln!(s, "{request}").expect("send request");
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .expect("read response");
        let v: Value = serde_json::from_str(&line).expect("response is JSON");
        assert_eq!(v["ok"], true, "control request {request} failed: {v}");
        v["data"].clone()
    }

    pub fn peer(&self, address: &str) -> Value {
        let peers = self.ctl(json!({"cmd": "peers"}));
        peers
            .as_array()
            .and_then(|a| a.iter().find(|p| p["address"] == address).cloned())
            .unwrap_or(Value::Null)
    }

    pub fn wait_established(&self, address: &str) {
        wait_for(
            &format!("our session to {address} to establish"),
            30,
            || (self.peer(address)["state"] == "Established").then_some(()),
        );
    }

    /// Whether our best path for `prefix` is stale (None: no route).
    pub fn stale(&self, prefix: &str) -> Option<bool> {
        let rib = self.ctl(json!({"cmd": "rib"}));
        rib.as_array()?.iter().find(|r| r["prefix"] == prefix)?["stale"].as_bool()
    }

    /// Our Loc-RIB: prefix -> (next hops, AS path).
    pub fn rib(&self) -> BTreeMap<String, (Vec<String>, Vec<u32>)> {
        let rib = self.ctl(json!({"cmd": "rib"}));
        rib.as_array()
            .map(|routes| {
                routes
                    .iter()
                    .map(|r| {
                        let hops = r["next_hops"]
                            .as_array()
                            .map(|h| {
                                h.iter()
                                    .filter_map(|x| x.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let path = r["as_path"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_u64().map(|n| n as u32))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (
                            r["prefix"].as_str().unwrap_or_default().to_string(),
                            (hops, path),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The prefixes of a range as strings ("10.100.0.0/32"...).
pub fn range(start: [u8; 4], count: u32) -> Vec<String> {
    let base = u32::from_be_bytes(start);
    (0..count)
        .map(|i| format!("{}/32", std::net::Ipv4Addr::from(base + i)))
        .collect()
}

/// What a peer holds for one of our prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub next_hop: Option<IpAddr>,
    pub as_path: Vec<u32>,
    pub stale: bool,
}

//! A private Open vSwitch for one test: its own network namespace, run directory, ovsdb-server
//! and ovs-vswitchd, and a userspace (`netdev`) bridge `br-int` speaking OpenFlow 1.3.
//!
//! Dropping the [`Ovs`] guard stops both daemons (TERM, then KILL after a bounded wait),
//! deletes the namespace and removes the directory, also when the test panicked. Tests call
//! [`Ovs::start`], which panics with a clear message when the machine cannot run them (not
//! root, OVS not installed): CI runs as root with OVS, so a missing prerequisite is a failure,
//! not a silent skip.

#![allow(dead_code)]

pub mod flows;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// How long any one OVS command may take before the test gives up.
const CMD_TIMEOUT_SECS: u32 = 10;

pub struct Ovs {
    pub ns: String,
    pub dir: PathBuf,
    ns_created: bool,
}

fn require_prerequisites() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        })
        .unwrap_or_default();
    assert!(
        uid == "0",
        "this test needs root (it creates a network namespace and runs ovs-vswitchd); \
         effective uid is {uid:?}. Run it as root, e.g. `sudo ./scripts/test.sh`."
    );
    for name in [
        "ovsdb-tool",
        "ovsdb-server",
        "ovs-vswitchd",
        "ovs-vsctl",
        "ovs-ofctl",
        "ip",
    ] {
        assert!(
            find_bin(name).is_some(),
            "this test needs `{name}` (Debian packages openvswitch-switch, iproute2), which is \
             not installed (looked in PATH, /usr/sbin, /usr/bin, /sbin). Install it with \
             `apt-get install openvswitch-switch iproute2`."
        );
    }
    assert!(
        Path::new("/usr/share/openvswitch/vswitch.ovsschema").is_file(),
        "this test needs /usr/share/openvswitch/vswitch.ovsschema (package openvswitch-common)"
    );
}

/// Where a program is: PATH first, then the sbin directories a non-login root shell may lack.
fn find_bin(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A command for an OVS or iproute2 program, by absolute path.
fn program(name: &str) -> Command {
    Command::new(find_bin(name).unwrap_or_else(|| PathBuf::from(name)))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Ovs {
    /// Starts a fresh OVS with bridge `br-int` (netdev datapath, OpenFlow 1.3 only).
    pub fn start() -> Ovs {
        require_prerequisites();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let ns = format!("oft{pid}-{n}");
        let dir = PathBuf::from(format!("/tmp/oft{pid}-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create OVS run dir");
        let mut ovs = Ovs {
            ns,
            dir,
            ns_created: false,
        };
        run(program("ip").args(["netns", "add", &ovs.ns]));
        ovs.ns_created = true;
        run(program("ip").args(["-n", &ovs.ns, "link", "set", "lo", "up"]));
        let d = ovs.dir.display().to_string();
        run(program("ovsdb-tool").args([
            "create",
            &format!("{d}/conf.db"),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]));
        run(ovs.in_ns("ovsdb-server").args([
            &format!("{d}/conf.db"),
            &format!("--remote=punix:{d}/db.sock"),
            &format!("--pidfile={d}/ovsdb.pid"),
            "--detach",
            &format!("--log-file={d}/ovsdb.log"),
        ]));
        run(ovs.vsctl().args(["--no-wait", "init"]));
        run(ovs.in_ns("ovs-vswitchd").args([
            &format!("unix:{d}/db.sock"),
            &format!("--pidfile={d}/vswitchd.pid"),
            "--detach",
            &format!("--log-file={d}/vswitchd.log"),
        ]));
        run(ovs.vsctl().args([
            "add-br",
            "br-int",
            "--",
            "set",
            "bridge",
            "br-int",
            "datapath_type=netdev",
            "protocols=OpenFlow13",
        ]));
        // The management socket appears once the bridge is configured; wait for it, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ovs.mgmt().exists() {
            assert!(
                Instant::now() < deadline,
                "{} did not appear within 10 s",
                ovs.mgmt().display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        ovs
    }

    /// A command run inside the namespace with this instance's run and log directory.
    fn in_ns(&self, prog: &str) -> Command {
        let mut c = program("ip");
        let prog = find_bin(prog).unwrap_or_else(|| PathBuf::from(prog));
        c.args(["netns", "exec", &self.ns])
            .arg(prog)
            .env("OVS_RUNDIR", &self.dir)
            .env("OVS_LOGDIR", &self.dir);
        c
    }

    pub fn vsctl(&self) -> Command {
        let mut c = self.in_ns("ovs-vsctl");
        c.arg(format!("--db=unix:{}/db.sock", self.dir.display()))
            .arg(format!("--timeout={CMD_TIMEOUT_SECS}"));
        c
    }

    /// The bridge's OpenFlow management socket.
    pub fn mgmt(&self) -> PathBuf {
        self.dir.join("br-int.mgmt")
    }

    /// `ovs-ofctl -O OpenFlow13 <args...> unix:<mgmt> <rest...>`, checked, stdout returned.
    pub fn ofctl(&self, cmd: &str, rest: &[&str]) -> String {
        self.ofctl_with(&[], cmd, rest)
    }

    pub fn ofctl_with(&self, opts: &[&str], cmd: &str, rest: &[&str]) -> String {
        let out = run(program("ovs-ofctl")
            .args(["-O", "OpenFlow13", &format!("--timeout={CMD_TIMEOUT_SECS}")])
            .args(opts)
            .arg(cmd)
            .arg(format!("unix:{}", self.mgmt().display()))
            .args(rest));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Installs flow lines (ovs-ofctl syntax) in one bundle.
    pub fn add_flows(&self, lines: &[String]) {
        let file = self
            .dir
            .join(format!("flows-{}.txt", NEXT.fetch_add(1, Ordering::SeqCst)));
        std::fs::write(&file, lines.join("\n") + "\n").expect("write flows file");
        self.ofctl_with(&["--bundle"], "add-flows", &[&file.display().to_string()]);
    }

    /// `dump-flows --no-stats`, optionally restricted (e.g. `cookie=0x10/-1`).
    pub fn dump_flows(&self, filter: Option<&str>) -> String {
        let mut rest = vec![];
        if let Some(f) = filter {
            rest.push(f);
        }
        self.ofctl_with(&["--no-stats"], "dump-flows", &rest)
    }

    fn stop_daemon(&self, pidfile: &str) {
        let Ok(pid) = std::fs::read_to_string(self.dir.join(pidfile)) else {
            return;
        };
        let pid = pid.trim().to_owned();
        if pid.is_empty() || !pid.chars().all(|c| c.is_ascii_digit()) {
            return;
        }
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let _ = program("kill").args(["-TERM", &pid]).output();
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(&proc_dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive(&proc_dir) {
            let _ = program("kill").args(["-KILL", &pid]).output();
        }
    }
}

/// Whether a process exists and is not a zombie (a detached daemon is reaped by whoever is
/// pid 1, which in a container may never do it).
fn alive(proc_dir: &Path) -> bool {
    match std::fs::read_to_string(proc_dir.join("stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        self.stop_daemon("vswitchd.pid");
        self.stop_daemon("ovsdb.pid");
        if self.ns_created {
            let _ = program("ip").args(["netns", "del", &self.ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

//! A one-host lab for the end-to-end tests: network namespaces, one OVS (userspace datapath,
//! its own run directory) with `br-int` and `gw0`, containers on veths (offloads off), hosts
//! "behind" the host kernel reached through gw0, TCP/UDP echo servers and probes run inside
//! namespaces with setns(2). Everything is removed on drop, also when a test fails.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use openflow::Flow;

/// Fails (never skips) when the test cannot run here.
pub fn require_root_and_ovs() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .unwrap_or_default();
    assert!(
        uid.split_whitespace().nth(1) == Some("0"),
        "this end-to-end test needs root (network namespaces, OVS); run it as root"
    );
    for bin in [
        "ovsdb-tool",
        "ovsdb-server",
        "ovs-vswitchd",
        "ovs-vsctl",
        "ovs-ofctl",
        "ip",
        "ethtool",
        "ping",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            found,
            "{bin} is missing: install openvswitch-switch, iproute2, ethtool and iputils-ping"
        );
    }
}

/// Runs a command; panics with its output if it fails.
pub fn run(args: &[&str]) -> String {
    run_env(args, &[])
}

fn run_env(args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lab: the host namespace with OVS, plus container and outside namespaces.
pub struct Lab {
    pub tag: String,
    pub host: String,
    dir: tempfile::TempDir,
    namespaces: Vec<String>,
    next_outside: u8,
    stop: Arc<AtomicBool>,
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Lab {
    /// A host namespace with OVS running, `br-int` (netdev) and `gw0` (internal, `ofport`,
    /// `mac`) up; IP forwarding on.
    pub fn new(gw_ofport: u32, gw_mac: [u8; 6]) -> Lab {
        require_root_and_ovs();
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("pl{}x{n}", std::process::id() % 100_000);
        let host = format!("{tag}h");
        let dir = tempfile::Builder::new()
            .prefix("pipeline-e2e")
            .tempdir()
            .expect("tempdir");
        let mut lab = Lab {
            tag,
            host: host.clone(),
            dir,
            namespaces: Vec::new(),
            next_outside: 1,
            stop: Arc::new(AtomicBool::new(false)),
        };
        lab.add_ns(&host);
        let d = lab.dir.path().to_path_buf();
        let db = d.join("conf.db");
        let ds = |p: &str| d.join(p).to_string_lossy().into_owned();
        run(&[
            "ovsdb-tool",
            "create",
            &ds("conf.db"),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]);
        let env = [("OVS_RUNDIR", d.as_path()), ("OVS_LOGDIR", d.as_path())];
        run_env(
            &[
                "ip",
                "netns",
                "exec",
                &host,
                "ovsdb-server",
                &db.to_string_lossy(),
                &format!("--remote=punix:{}", ds("db.sock")),
                &format!("--pidfile={}", ds("ovsdb.pid")),
                "--detach",
                &format!("--log-file={}", ds("ovsdb.log")),
            ],
            &env,
        );
        let dbarg = format!("--db=unix:{}", ds("db.sock"));
        run_env(&["ovs-vsctl", &dbarg, "--no-wait", "init"], &env);
        run_env(
            &[
                "ip",
                "netns",
                "exec",
                &host,
                "ovs-vswitchd",
                &format!("unix:{}", ds("db.sock")),
                &format!("--pidfile={}", ds("vswitchd.pid")),
                "--detach",
                &format!("--log-file={}", ds("vswitchd.log")),
            ],
            &env,
        );
        lab.vsctl(&[
            "add-br",
            "br-int",
            "--",
            "set",
            "bridge",
            "br-int",
            "datapath_type=netdev",
            "protocols=OpenFlow13",
            "fail-mode=secure",
        ]);
        lab.vsctl(&[
            "add-port",
            "br-int",
            "gw0",
            "--",
            "set",
            "Interface",
            "gw0",
            "type=internal",
            &format!("ofport_request={gw_ofport}"),
            &format!("mac=\"{}\"", mac_str(gw_mac)),
        ]);
        lab.wait_for_link("gw0");
        lab.ns(&host, &["ip", "link", "set", "gw0", "up"]);
        lab.ns(
            &host,
            &[
                "ethtool", "-K", "gw0", "tx", "off", "tso", "off", "gso", "off",
            ],
        );
        lab.ns(&host, &["ip", "link", "set", "lo", "up"]);
        lab.ns(&host, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab.ns(&host, &["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
        lab.ns(
            &host,
            &["sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0"],
        );
        lab
    }

    fn add_ns(&mut self, name: &str) {
        // Left over from an earlier run that did not clean up; usually absent.
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        run(&["ip", "netns", "add", name]);
        self.namespaces.push(name.to_string());
    }

    /// Runs a command inside namespace `ns`.
    pub fn ns(&self, ns: &str, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        run(&v)
    }

    pub fn vsctl(&self, args: &[&str]) -> String {
        let d = self.dir.path();
        let dbarg = format!("--db=unix:{}", d.join("db.sock").to_string_lossy());
        let mut v = vec!["ovs-vsctl", "--timeout=10", dbarg.as_str()];
        v.extend_from_slice(args);
        run_env(&v, &[("OVS_RUNDIR", d)])
    }

    fn wait_for_link(&self, dev: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ok = Command::new("ip")
                .args(["-n", &self.host, "link", "show", dev])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("{dev} did not appear in the host namespace within 10 s");
    }

    /// A container namespace `name` on `ofport` with `ip/len`, `mac`, default route via `gw`.
    pub fn container(
        &mut self,
        name: &str,
        ofport: u32,
        mac: [u8; 6],
        ip: Ipv4Addr,
        len: u8,
        gw: Ipv4Addr,
    ) -> String {
        let ns = format!("{}{name}", self.tag);
        self.add_ns(&ns);
        let hdev = format!("v{ofport}");
        run(&[
            "ip", "link", "add", &hdev, "netns", &self.host, "type", "veth", "peer", "name",
            "eth0", "netns", &ns,
        ]);
        for (n, dev) in [(&self.host, hdev.as_str()), (&ns, "eth0")] {
            self.ns(
                n,
                &[
                    "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off",
                ],
            );
            self.ns(n, &["ip", "link", "set", dev, "up"]);
        }
        self.ns(&ns, &["ip", "link", "set", "lo", "up"]);
        self.ns(
            &ns,
            &["ip", "link", "set", "eth0", "address", &mac_str(mac)],
        );
        self.ns(
            &ns,
            &["ip", "addr", "add", &format!("{ip}/{len}"), "dev", "eth0"],
        );
        self.ns(
            &ns,
            &["ip", "route", "add", "default", "via", &gw.to_string()],
        );
        self.vsctl(&[
            "add-port",
            "br-int",
            &hdev,
            "--",
            "set",
            "Interface",
            &hdev,
            &format!("ofport_request={ofport}"),
        ]);
        ns
    }

    /// A namespace `name` with address `ip`, reached from the host kernel over its own veth
    /// (so traffic between it and containers goes through gw0).
    pub fn outside(&mut self, name: &str, ip: Ipv4Addr) -> String {
        let ns = format!("{}{name}", self.tag);
        self.add_ns(&ns);
        let n = self.next_outside;
        self.next_outside += 1;
        let hdev = format!("x{n}");
        let haddr = format!("10.98.{n}.1");
        run(&[
            "ip", "link", "add", &hdev, "netns", &self.host, "type", "veth", "peer", "name",
            "eth0", "netns", &ns,
        ]);
        for (nsn, dev) in [(&self.host, hdev.as_str()), (&ns, "eth0")] {
            self.ns(
                nsn,
                &[
                    "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off",
                ],
            );
            self.ns(nsn, &["ip", "link", "set", dev, "up"]);
        }
        self.ns(&ns, &["ip", "link", "set", "lo", "up"]);
        self.ns(
            &self.host,
            &["ip", "addr", "add", &format!("{haddr}/24"), "dev", &hdev],
        );
        self.ns(
            &self.host,
            &["ip", "route", "add", &format!("{ip}/32"), "dev", &hdev],
        );
        self.ns(
            &ns,
            &["ip", "addr", "add", &format!("{ip}/32"), "dev", "eth0"],
        );
        self.ns(&ns, &["ip", "route", "add", &haddr, "dev", "eth0"]);
        self.ns(&ns, &["ip", "route", "add", "default", "via", &haddr]);
        ns
    }

    /// Routes `net` from the host kernel to gw0 (the fabric's routes would come from BGP).
    pub fn route_to_gw(&self, net: &str) {
        self.ns(&self.host, &["ip", "route", "add", net, "dev", "gw0"]);
    }

    /// Installs exactly `flows` on br-int (one atomic bundle).
    pub fn install(&self, flows: &std::collections::BTreeSet<Flow>) {
        let path = self.dir.path().join("flows.txt");
        let mut f = File::create(&path).expect("flows file");
        for flow in flows {
            writeln!(f, "{flow}").expect("write flows");
        }
        drop(f);
        let d = self.dir.path();
        run_env(
            &[
                "ovs-ofctl",
                "-O",
                "OpenFlow13",
                "--bundle",
                "replace-flows",
                "br-int",
                &path.to_string_lossy(),
            ],
            &[("OVS_RUNDIR", d)],
        );
        // The datapath keeps using cached megaflows until a revalidator round catches up with
        // the new tables; probing before that sees the old policy. Purging makes the next packet
        // of every flow take the new tables.
        let ctl = std::fs::read_dir(d)
            .expect("ovs run dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ovs-vswitchd.") && n.ends_with(".ctl"))
            })
            .expect("ovs-vswitchd control socket in the run dir");
        run_env(
            &[
                "ovs-appctl",
                "-t",
                &ctl.to_string_lossy(),
                "revalidator/purge",
            ],
            &[("OVS_RUNDIR", d)],
        );
    }

    /// IPv4 packets the kernel of namespace `ns` has received (`Ip: InReceives`): whether
    /// anything arrived, one way, whatever happened to the replies.
    pub fn ip_received(&self, ns: &str) -> u64 {
        let snmp = self.ns(ns, &["cat", "/proc/net/snmp"]);
        let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
        let (Some(names), Some(values)) = (ip.next(), ip.next()) else {
            panic!("no Ip: lines in {ns}'s /proc/net/snmp:\n{snmp}");
        };
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == "InReceives")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no Ip InReceives in {ns}'s /proc/net/snmp"))
    }

    /// `ovs-ofctl dump-flows`, for failure messages.
    pub fn dump(&self) -> String {
        run_env(
            &["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "br-int"],
            &[("OVS_RUNDIR", self.dir.path())],
        )
    }

    /// TCP echo servers on `tcp` ports and UDP echo servers on `udp` ports in namespace `ns`,
    /// until the lab is dropped.
    pub fn serve(&self, ns: &str, tcp: &[u16], udp: &[u16]) {
        let (tcp, udp) = (tcp.to_vec(), udp.to_vec());
        let (listeners, sockets) = in_ns(ns, move || {
            let l: Vec<TcpListener> = tcp
                .iter()
                .map(|p| TcpListener::bind(("0.0.0.0", *p)).expect("tcp bind"))
                .collect();
            let u: Vec<UdpSocket> = udp
                .iter()
                .map(|p| UdpSocket::bind(("0.0.0.0", *p)).expect("udp bind"))
                .collect();
            (l, u)
        });
        for l in listeners {
            let stop = self.stop.clone();
            l.set_nonblocking(true).expect("nonblocking");
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((s, _)) => {
                            thread::spawn(move || echo(s));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        for u in sockets {
            let stop = self.stop.clone();
            u.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(&buf[..n], from);
                    }
                }
            });
        }
    }
}

fn echo(mut s: TcpStream) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for pid in ["vswitchd.pid", "ovsdb.pid"] {
            if let Ok(p) = std::fs::read_to_string(self.dir.path().join(pid)) {
                let _ = Command::new("kill").arg(p.trim()).status();
            }
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread inside network namespace `ns` (sockets it creates stay there).
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = PathBuf::from("/var/run/netns").join(ns);
    thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// A new TCP connection that echoes one message, within 1.5 s.
pub fn tcp_ok(ns: &str, ip: Ipv4Addr, port: u16) -> bool {
    in_ns(ns, move || {
        let addr = SocketAddr::from((ip, port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(1500)) else {
            return false;
        };
        roundtrip(&mut s)
    })
}

/// Sends a line and expects it back within 1.5 s.
pub fn roundtrip(s: &mut TcpStream) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(1500)));
    let mut buf = [0u8; 5];
    s.write_all(b"ping\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"ping\n"
}

/// A connected TCP stream from inside `ns` (for established-connection tests).
pub fn tcp_connect(ns: &str, ip: Ipv4Addr, port: u16) -> Option<TcpStream> {
    in_ns(ns, move || {
        TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_millis(1500)).ok()
    })
}

/// A UDP datagram echoed within 1.5 s (two tries).
pub fn udp_ok(ns: &str, ip: Ipv4Addr, port: u16) -> bool {
    in_ns(ns, move || {
        let Ok(u) = UdpSocket::bind("0.0.0.0:0") else {
            return false;
        };
        let _ = u.set_read_timeout(Some(Duration::from_millis(750)));
        let mut buf = [0u8; 16];
        for _ in 0..2 {
            if u.send_to(b"hello", (ip, port)).is_ok() {
                if let Ok((n, from)) = u.recv_from(&mut buf) {
                    if &buf[..n] == b"hello" && from.ip() == ip {
                        return true;
                    }
                }
            }
        }
        false
    })
}

/// One ICMP echo answered within 1 s (two tries).
pub fn ping_ok(ns: &str, ip: Ipv4Addr) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "ping",
            "-n",
            "-q",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "1",
            &ip.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

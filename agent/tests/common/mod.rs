//! Harness of the agent's end-to-end tests: lab's two-rack fabric (or another shipped
//! topology, see [`Layout`]) with the real netmaster, netplugin agents, OVS, BIRD and FRR ToRs,
//! plus containers; the CNI plugin invoked exactly as a runtime does; readers for the ToRs'
//! RIBs and the hosts' state. Every lab, namespace and process is removed by Drop guards, also
//! when a test fails.

#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Hosts: (name, router ip, AS, ToR address, ToR AS).
pub const HOSTS: [(&str, &str, u32, &str, u32); 4] = [
    ("host1", "10.254.1.1", 65211, "10.254.1.0", 65101),
    ("host2", "10.254.1.3", 65212, "10.254.1.2", 65101),
    ("host3", "10.254.2.1", 65213, "10.254.2.0", 65102),
    ("host4", "10.254.2.3", 65214, "10.254.2.2", 65102),
];
/// The lab's master: TLS with its self-signed certificate, authentication on (lab logs in as
/// admin at deploy; see [`Fabric::token`]).
pub const MASTER_URL: &str = "https://172.20.20.10:9999";
/// The second master of layouts that have one (flat), asked when the first does not answer.
pub const SECOND_MASTER_URL: &str = "https://172.20.20.11:9999";

/// A shipped topology the harness deploys: its file under lab/topologies, the `name:` in it,
/// every agent's `netctl bgp create` arguments after the host name, and its routers (every
/// BGP session of theirs must be up before a test starts).
pub struct Layout {
    pub file: &'static str,
    pub name: &'static str,
    pub bgp: &'static [(&'static str, &'static str)],
    pub bird: &'static [&'static str],
    pub frr: &'static [&'static str],
}

/// two-rack: tor1 (BIRD) over host1/host2, tor2 (FRR) over host3/host4 (as [`HOSTS`]).
pub const TWO_RACK: Layout = Layout {
    file: "two-rack.clab.yml",
    name: "two-rack",
    bgp: &[
        (
            "host1",
            "--router-ip 10.254.1.1/31 --as 65211 --neighbor-as 65101 --neighbor 10.254.1.0",
        ),
        (
            "host2",
            "--router-ip 10.254.1.3/31 --as 65212 --neighbor-as 65101 --neighbor 10.254.1.2",
        ),
        (
            "host3",
            "--router-ip 10.254.2.1/31 --as 65213 --neighbor-as 65102 --neighbor 10.254.2.0",
        ),
        (
            "host4",
            "--router-ip 10.254.2.3/31 --as 65214 --neighbor-as 65102 --neighbor 10.254.2.2",
        ),
    ],
    bird: &["tor1"],
    frr: &["tor2"],
};

/// dual-homed: host1 under both tor1 (BIRD) and tor2 (FRR), rack 1's ToR pair (one AS);
/// host2 under tor3 (BIRD) in rack 2.
pub const DUAL_HOMED: Layout = Layout {
    file: "dual-homed.clab.yml",
    name: "dual-homed",
    bgp: &[
        (
            "host1",
            "--router-ip 10.254.1.1/31 --as 65211 --neighbor-as 65101 --neighbor 10.254.1.0,10.254.3.0",
        ),
        ("host2", "--router-ip 10.254.2.1/31 --as 65212 --neighbor-as 65103 --neighbor 10.254.2.0"),
    ],
    bird: &["tor1", "tor3"],
    frr: &["tor2"],
};
/// flat: four hosts on one L2 segment (the lab's management bridge), no ToR, two masters on
/// etcd as the route reflectors; each host's segment address is its router address.
pub const FLAT: Layout = Layout {
    file: "flat.clab.yml",
    name: "flat",
    bgp: &[
        ("host1", "--router-ip 172.20.20.21/24 --as 65000"),
        ("host2", "--router-ip 172.20.20.22/24 --as 65000"),
        ("host3", "--router-ip 172.20.20.23/24 --as 65000"),
        ("host4", "--router-ip 172.20.20.24/24 --as 65000"),
        // No agent: a BIRD server admitted as a reflector client by its Bgp object.
        ("bird1", "--router-ip 172.20.20.40/24 --as 65000"),
    ],
    bird: &["bird1"],
    frr: &[],
};
pub const SUBNET: &str = "10.1.2.0/24";
pub const IFNAME: &str = "eth1";

/// Where cargo put the binaries (next to the plugin the test was built with).
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_contivk8s"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (test.sh does)",
        path.display()
    );
    path
}

/// Fails (never skips) when the test cannot run here, saying why.
pub fn require_root_and_tools() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: it creates network namespaces, OVS instances and BGP routers"
    );
    for (tool, package) in [
        ("ip", "iproute2"),
        ("ping", "iputils-ping"),
        ("bird", "bird2"),
        ("birdc", "bird2"),
        ("vtysh", "frr"),
        ("ovs-vswitchd", "openvswitch-switch"),
        ("ovs-ofctl", "openvswitch-switch"),
        ("curl", "curl"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
            .unwrap_or(false);
        assert!(found, "this test needs `{tool}` (Debian package {package})");
    }
    for b in ["lab", "netmaster", "netplugin", "netctl", "contivk8s"] {
        bin(b);
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command; (success, stdout).
pub fn sh(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// Polls `check` every 200 ms until it returns Some or `limit` passes.
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The CNI plugin's answer.
#[derive(Debug)]
pub struct CniOutput {
    pub ok: bool,
    pub json: Value,
    pub raw: String,
}

/// A fabric (two-rack unless deployed with [`Fabric::up_on`]) under a unique lab name,
/// destroyed on drop.
pub struct Fabric {
    pub name: String,
    pub file: PathBuf,
    _dir: tempfile::TempDir,
    /// Namespaces the test created itself (removed on drop).
    extra_netns: std::sync::Mutex<Vec<String>>,
    bird: &'static [&'static str],
    frr: &'static [&'static str],
}

impl Fabric {
    /// Deploys two-rack plus `extra_nodes` (YAML node entries, indented for `nodes:`), creates
    /// the network `default-net` and every host's Bgp object, and waits for the eBGP sessions.
    pub fn up(tag: &str, extra_nodes: &str) -> Fabric {
        Fabric::up_on(&TWO_RACK, tag, extra_nodes)
    }

    /// [`Fabric::up`] on another shipped topology.
    pub fn up_on(layout: &Layout, tag: &str, extra_nodes: &str) -> Fabric {
        require_root_and_tools();
        let dir = tempfile::tempdir().expect("tempdir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab/topologies");
        let ok = Command::new("cp")
            .arg("-r")
            .arg(format!("{}/.", src.display()))
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "cannot copy the topologies");
        let name = format!("a{}{tag}", std::process::id());
        let file = dir.path().join(layout.file);
        let topo = std::fs::read_to_string(&file).expect("topology file");
        // The master's exec lines create the network and every host's Bgp object before the
        // agents and containers start, so lab can attach labelled containers at deploy time.
        let netctl = format!("{} --netmaster {MASTER_URL}", bin("netctl").display());
        let mut exec = format!(
            "      exec:\n        - {netctl} net create --subnet {SUBNET} --gateway 10.1.2.1 default-net\n"
        );
        for (host, args) in layout.bgp {
            exec.push_str(&format!("        - {netctl} bgp create {host} {args}\n"));
        }
        let topo = topo
            .replacen(
                &format!("name: {}\n", layout.name),
                &format!("name: {name}\n"),
                1,
            )
            .replacen(
                "        lab.kind: netmaster\n",
                &format!("        lab.kind: netmaster\n{exec}"),
                1,
            )
            .replacen("\n  links:", &format!("\n{extra_nodes}  links:"), 1);
        std::fs::write(&file, topo).expect("write topology");
        let fabric = Fabric {
            name,
            file,
            _dir: dir,
            extra_netns: Default::default(),
            bird: layout.bird,
            frr: layout.frr,
        };
        let out = fabric.lab(&["deploy", "-t", &fabric.file_str(), "--reconfigure"]);
        assert!(out.status.success(), "deploy failed: {}", text(&out));
        fabric.wait_sessions();
        fabric
    }

    fn file_str(&self) -> String {
        self.file.display().to_string()
    }

    pub fn lab(&self, args: &[&str]) -> Output {
        Command::new(bin("lab"))
            .args(args)
            .env("LAB_BIN_DIR", bin_dir())
            .output()
            .expect("run lab")
    }

    pub fn netns(&self, node: &str) -> String {
        format!("clab-{}-{node}", self.name)
    }

    pub fn run_dir(&self, node: &str) -> PathBuf {
        PathBuf::from(format!("/run/lab/{}/{node}", self.name))
    }

    /// A command in a node's namespace; (success, stdout).
    pub fn exec(&self, node: &str, argv: &[&str]) -> (bool, String) {
        self.exec_ns(&self.netns(node), argv)
    }

    pub fn exec_ns(&self, netns: &str, argv: &[&str]) -> (bool, String) {
        sh(Command::new("ip").args(["netns", "exec", netns]).args(argv))
    }

    /// The master's self-signed certificate (made in its data dir at its first start).
    pub fn cacert(&self) -> String {
        self.run_dir("master1")
            .join("netmaster/tls/cert.pem")
            .display()
            .to_string()
    }

    /// The admin token lab got at deploy (it logs in with the password it wrote for the
    /// master; a token lives an hour, longer than any test).
    pub fn token(&self) -> String {
        let file = self.run_dir("master1").join("admin-token");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_string()
    }

    /// The agents' bootstrap secret lab wrote for the master.
    pub fn agent_secret(&self) -> String {
        let file = self.run_dir("master1").join("agent-secret");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_string()
    }

    pub fn netctl(&self, args: &[&str]) -> String {
        let (ok, out) = sh(Command::new("ip")
            .args(["netns", "exec", &self.netns("master1")])
            .arg(bin("netctl"))
            .args(["--netmaster", MASTER_URL])
            .args(args)
            .env("NETCTL_TOKEN", self.token())
            .env("NETCTL_CACERT", self.cacert()));
        assert!(ok, "netctl {args:?} failed: {out}");
        out
    }

    /// A request to the master's REST API from master1 with `token` (none: no header):
    /// (HTTP status, body).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> (u16, String) {
        let url = format!("{MASTER_URL}{path}");
        let cacert = self.cacert();
        let mut argv = vec![
            "curl",
            "-s",
            "--cacert",
            &cacert,
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ];
        let header = token.map(|t| format!("X-Auth-Token: {t}"));
        if let Some(h) = &header {
            argv.extend(["-H", h]);
        }
        let data = body.map(Value::to_string);
        if let Some(d) = &data {
            argv.extend(["-H", "Content-Type: application/json", "--data-binary", d]);
        }
        argv.push(&url);
        let (_, out) = self.exec("master1", &argv);
        let (text, status) = out.rsplit_once('\n').unwrap_or(("", &out));
        let status = status.trim().parse().unwrap_or(0);
        if status == 0 && !self.masters_tried_second(&argv) {
            // No answer: a layout with a second master (flat) asks that one.
            let second = format!("{SECOND_MASTER_URL}{path}");
            if let Some(last) = argv.last_mut() {
                *last = &second;
            }
            let (_, out) = self.exec("master1", &argv);
            let (text, status) = out.rsplit_once('\n').unwrap_or(("", &out));
            return (status.trim().parse().unwrap_or(0), text.to_string());
        }
        (status, text.to_string())
    }

    fn masters_tried_second(&self, argv: &[&str]) -> bool {
        argv.last()
            .is_some_and(|u| u.starts_with(SECOND_MASTER_URL))
    }

    /// GET on the master's REST API, as admin.
    pub fn get(&self, path: &str) -> Value {
        let (status, out) = self.call("GET", path, None, Some(&self.token()));
        assert_eq!(status, 200, "GET {path}: {out}");
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    /// Addresses allocated in a network (by the master's inspect).
    pub fn allocated(&self, network: &str) -> u64 {
        self.get(&format!("/api/v1/inspect/networks/{network}/"))["Oper"]["allocatedAddressesCount"]
            .as_u64()
            .unwrap_or(u64::MAX)
    }

    /// Addresses the hosts keep for their next containers.
    pub fn reserved(&self, network: &str) -> u64 {
        self.get(&format!("/api/v1/inspect/networks/{network}/"))["Oper"]["reservedAddressesCount"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Endpoint records in the master.
    pub fn endpoints(&self) -> Vec<Value> {
        self.get("/api/v1/endpoints/")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until every BGP session of every router is established.
    fn wait_sessions(&self) {
        let mut down = Vec::new();
        let ok = poll(Duration::from_secs(40), || {
            down.clear();
            for node in self.bird {
                let out = self.birdc(node, &["show", "protocols"]);
                let bgp: Vec<&str> = out
                    .lines()
                    .filter(|l| l.split_whitespace().nth(1) == Some("BGP"))
                    .collect();
                if bgp.is_empty() {
                    down.push(format!("{node}: no BGP protocol listed"));
                }
                for line in bgp.iter().filter(|l| !l.contains("Established")) {
                    down.push(format!("{node}: {}", line.trim()));
                }
            }
            for node in self.frr {
                let summary = self.vtysh_on(node, "show bgp ipv4 unicast summary json");
                let peers = summary["peers"].as_object().cloned().unwrap_or_default();
                if peers.is_empty() {
                    down.push(format!("{node}: no BGP peer listed"));
                }
                for (peer, state) in peers {
                    if state["state"] != "Established" {
                        down.push(format!("{node}: {peer} {}", state["state"]));
                    }
                }
            }
            down.is_empty().then_some(())
        });
        assert!(
            ok.is_some(),
            "the BGP sessions (agents to ToRs, ToR to ToR) did not all come up in 40 s: {down:#?}"
        );
    }

    fn bird_ctl_of(&self, node: &str) -> String {
        self.run_dir(node).join("bird.ctl").display().to_string()
    }

    /// A birdc command on a BIRD node (needs only its control socket, not the namespace).
    pub fn birdc(&self, node: &str, args: &[&str]) -> String {
        sh(Command::new("birdc")
            .args(["-s", &self.bird_ctl_of(node)])
            .args(args))
        .1
    }

    pub fn vtysh(&self, cmd: &str) -> Value {
        self.vtysh_on("tor2", cmd)
    }

    /// A vtysh command on an FRR node, its JSON answer (Null when it is not JSON).
    pub fn vtysh_on(&self, node: &str, cmd: &str) -> Value {
        let instance = self.netns(node);
        let (_, out) = self.exec(node, &["vtysh", "-N", &instance, "-c", cmd]);
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    /// tor1's (BIRD) routes for /32s in the container subnet: prefix → next hops.
    pub fn tor1_routes(&self) -> BTreeMap<String, Vec<String>> {
        self.bird_routes("tor1")
    }

    /// A BIRD node's routes for /32s in the container subnet: prefix → next hops (of every
    /// path, best first).
    pub fn bird_routes(&self, node: &str) -> BTreeMap<String, Vec<String>> {
        let out = self.birdc(node, &["show", "route"]);
        let mut routes = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in out.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if first.starts_with("10.1.") && first.ends_with("/32") {
                current = Some(first.to_string());
                routes.entry(first.to_string()).or_insert_with(Vec::new);
            } else if !line.starts_with(char::is_whitespace) && !first.is_empty() {
                current = None;
            }
            if let (Some(prefix), Some(via)) = (&current, line.split("via ").nth(1)) {
                let hop = via.split_whitespace().next().unwrap_or("").to_string();
                routes.entry(prefix.clone()).or_default().push(hop);
            }
        }
        routes
    }

    /// tor2's (FRR) best routes for container /32s: prefix → next hops.
    pub fn tor2_routes(&self) -> BTreeMap<String, Vec<String>> {
        self.frr_routes("tor2")
    }

    /// An FRR node's best (and multipath) routes for container /32s: prefix → next hops.
    pub fn frr_routes(&self, node: &str) -> BTreeMap<String, Vec<String>> {
        let rib = self.vtysh_on(node, "show bgp ipv4 unicast json");
        let mut routes = BTreeMap::new();
        if let Some(map) = rib["routes"].as_object() {
            for (prefix, paths) in map {
                if !(prefix.starts_with("10.1.") && prefix.ends_with("/32")) {
                    continue;
                }
                let hops = paths
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["bestpath"] == true || p["multipath"] == true)
                    .flat_map(|p| p["nexthops"].as_array().cloned().unwrap_or_default())
                    .filter_map(|n| n["ip"].as_str().map(String::from))
                    .collect();
                routes.insert(prefix.clone(), hops);
            }
        }
        routes
    }

    /// Creates a namespace for a container (removed on drop).
    pub fn container_netns(&self, name: &str) -> String {
        let ns = format!("{}-{name}", self.name);
        let (ok, out) = sh(Command::new("ip").args(["netns", "add", &ns]));
        assert!(ok, "ip netns add {ns}: {out}");
        if let Ok(mut list) = self.extra_netns.lock() {
            list.push(ns.clone());
        }
        ns
    }

    /// Invokes contivk8s as a runtime does: CNI_* variables, the config on stdin.
    pub fn cni(
        &self,
        command: &str,
        host: &str,
        container_id: &str,
        netns: &str,
        config: &Value,
    ) -> CniOutput {
        let stdin = config.to_string();
        self.cni_raw(command, host, container_id, netns, stdin.as_bytes(), &[])
    }

    pub fn cni_raw(
        &self,
        command: &str,
        host: &str,
        container_id: &str,
        netns: &str,
        stdin: &[u8],
        extra_env: &[(&str, &str)],
    ) -> CniOutput {
        let mut child = Command::new(bin("contivk8s"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", format!("/run/netns/{netns}"))
            .env("CNI_IFNAME", IFNAME)
            .env("CNI_PATH", bin_dir())
            .env(
                "CONTIV_NETPLUGIN_SOCKET",
                self.run_dir(host).join("netplugin.sock"),
            )
            .envs(extra_env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run contivk8s");
        if let Some(mut s) = child.stdin.take() {
            let _ = s.write_all(stdin);
        }
        let out = child.wait_with_output().expect("contivk8s");
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        CniOutput {
            ok: out.status.success(),
            json: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw: format!("{raw}{}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// A container's address from an ADD result.
    pub fn address(result: &CniOutput) -> String {
        let a = result.json["ips"][0]["address"].as_str().unwrap_or("");
        a.split('/').next().unwrap_or("").to_string()
    }

    /// One ping from a namespace.
    pub fn ping(&self, netns: &str, ip: &str) -> bool {
        self.exec_ns(netns, &["ping", "-c", "1", "-W", "1", ip]).0
    }

    /// The host's OVS flows without counters, sorted.
    pub fn flows(&self, host: &str) -> Vec<String> {
        let mgmt = format!(
            "unix:{}",
            self.run_dir(host).join("ovs/br-int.mgmt").display()
        );
        let (_, out) = sh(Command::new("ovs-ofctl").args([
            "-O",
            "OpenFlow13",
            "dump-flows",
            "--no-stats",
            &mgmt,
        ]));
        let mut flows: Vec<String> = out
            .lines()
            .filter(|l| l.contains("cookie"))
            .map(|l| l.trim().to_string())
            .collect();
        flows.sort();
        flows
    }

    /// The host's OVS ports.
    pub fn ports(&self, host: &str) -> Vec<String> {
        let db = format!("unix:{}", self.run_dir(host).join("ovs/db.sock").display());
        let (_, out) = sh(Command::new("ovs-vsctl").args(["--db", &db, "list-ports", "br-int"]));
        out.lines().map(String::from).collect()
    }

    /// The host's kernel routes of our protocol.
    /// Our kernel routes on `host` (proto 205), without the ones prepared for the addresses
    /// the host keeps in reserve (those come and go with the reserve, not with containers).
    pub fn routes(&self, host: &str) -> Vec<String> {
        let all = self.all_routes(host);
        // Read after the routes: a prepared route's address is reserved before it is routed.
        let reserve = self.reserve_of(host);
        let mut routes: Vec<String> = all
            .into_iter()
            .filter(|r| {
                let dst = r.split_whitespace().next().unwrap_or_default();
                !(r.contains("dev gw0") && reserve.iter().any(|ip| ip == dst))
            })
            .collect();
        routes.sort();
        routes
    }

    /// Every route with our protocol number on `host`, prepared ones included.
    pub fn all_routes(&self, host: &str) -> Vec<String> {
        let (_, out) = self.exec(host, &["ip", "route", "show", "proto", "205"]);
        let mut routes: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
        routes.sort();
        routes
    }

    /// The addresses the master keeps in reserve for `host`.
    pub fn reserve_of(&self, host: &str) -> Vec<String> {
        self.get(&format!("/api/v1/agent/hosts/{host}/reservations"))["reservations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["ipAddress"].as_str().map(String::from))
            .collect()
    }

    /// The netplugin process of a host: its pid and command line.
    pub fn agent(&self, host: &str) -> Option<(i32, Vec<String>)> {
        self.process(host, "netplugin")
    }

    /// The pid and command line of the process named `comm` in a node's namespace.
    pub fn process(&self, node: &str, comm: &str) -> Option<(i32, Vec<String>)> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.netns(node)])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find_map(|p| {
                let pid: i32 = p.parse().ok()?;
                let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
                if name.trim() != comm {
                    return None;
                }
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let argv = cmdline
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                Some((pid, argv))
            })
    }

    /// `kill -9` of a host's agent, then the same command line started again in the host's
    /// namespace, logging to `<run dir>/<log_name>`. The restarted agent dies with the test.
    pub fn kill_and_restart_agent(&self, host: &str, log_name: &str) -> (KillOnDrop, PathBuf) {
        let argv = self.kill_agent(host);
        std::thread::sleep(Duration::from_millis(300));
        self.start_agent(host, &argv, log_name)
    }

    /// `kill -9` of the host's agent; returns its command line for [`Self::start_agent`].
    pub fn kill_agent(&self, host: &str) -> Vec<String> {
        let (pid, argv) = self
            .agent(host)
            .unwrap_or_else(|| panic!("no netplugin runs on {host}"));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
            .expect("kill -9 the agent");
        argv
    }

    /// `kill -9` of the master on `node`; returns its command line for [`Self::start_agent`]
    /// (which starts any command line in a node).
    pub fn kill_master(&self, node: &str) -> Vec<String> {
        let (pid, argv) = self
            .process(node, "netmaster")
            .unwrap_or_else(|| panic!("no netmaster runs on {node}"));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
            .expect("kill -9 the master");
        argv
    }

    /// Starts `argv` (an agent's or a master's command line) in `host`'s namespace, logging to
    /// `log_name` in its run dir.
    pub fn start_agent(
        &self,
        host: &str,
        argv: &[String],
        log_name: &str,
    ) -> (KillOnDrop, PathBuf) {
        let log = self.run_dir(host).join(log_name);
        let log_file = std::fs::File::create(&log).expect("agent log");
        let err_file = log_file.try_clone().expect("agent log");
        let restarted = Command::new("ip")
            .args(["netns", "exec", &self.netns(host)])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .process_group(0)
            .spawn()
            .expect("restart netplugin");
        (KillOnDrop(restarted), log)
    }

    /// The host's veths towards containers (our naming: cv...).
    pub fn veths(&self, host: &str) -> Vec<String> {
        let (_, out) = self.exec(host, &["ip", "-o", "link", "show"]);
        out.lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n.starts_with("cv"))
            .collect()
    }
}

/// A process the test started: killed and reaped when the test ends, whatever happens.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        let _ = self.lab(&["destroy", "-t", &self.file_str()]);
        if let Ok(list) = self.extra_netns.lock() {
            for ns in list.iter() {
                let _ = Command::new("ip").args(["netns", "delete", ns]).status();
            }
        }
    }
}

/// The CNI network config a runtime would pass.
pub fn config() -> Value {
    serde_json::json!({"cniVersion": "1.0.0", "name": "contiv", "type": "contivk8s"})
}

/// Sends `bytes` over one TCP connection from namespace `src` to `dst_ip:port`, served by a
/// listener in namespace `dst`; returns how many bytes the listener read before the sender
/// closed (or the `limit` ran out). Large segments are what broken offloads lose.
pub fn bulk_tcp(
    src: &str,
    dst: &str,
    dst_ip: &str,
    port: u16,
    bytes: usize,
    limit: Duration,
) -> usize {
    use std::io::Read;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    let enter = |ns: &str| {
        let path = format!("/run/netns/{ns}");
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
    };
    let (dst, src) = (dst.to_string(), src.to_string());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        enter(&dst);
        let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let _ = ready_tx.send(());
        let deadline = Instant::now() + limit;
        let mut conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => return 0,
            }
        };
        conn.set_nonblocking(false).expect("blocking");
        let _ = conn.set_read_timeout(Some(limit));
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        while Instant::now() < deadline {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        got
    });
    let _ = ready_rx.recv_timeout(limit);
    let addr: SocketAddr = format!("{dst_ip}:{port}").parse().expect("address");
    let client = std::thread::spawn(move || {
        enter(&src);
        let Ok(mut s) = TcpStream::connect_timeout(&addr, limit) else {
            return;
        };
        let _ = s.set_write_timeout(Some(limit));
        let chunk = vec![0x5au8; 1 << 16];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            if std::io::Write::write_all(&mut s, &chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
    });
    let _ = client.join();
    server.join().unwrap_or(0)
}

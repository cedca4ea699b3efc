//! Harness of the agent's end-to-end tests: lab's two-rack fabric with the real netmaster,
//! netplugin (four agents), OVS, BIRD (tor1) and FRR (tor2), plus containers; the CNI plugin
//! invoked exactly as a runtime does; readers for the ToRs' RIBs and the hosts' state. Every
//! lab, namespace and process is removed by Drop guards, also when a test fails.

#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
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
pub const MASTER_URL: &str = "http://172.20.20.10:9999";
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

/// The two-rack fabric under a unique lab name, destroyed on drop.
pub struct Fabric {
    pub name: String,
    pub file: PathBuf,
    _dir: tempfile::TempDir,
    /// Namespaces the test created itself (removed on drop).
    extra_netns: std::sync::Mutex<Vec<String>>,
}

impl Fabric {
    /// Deploys two-rack plus `extra_nodes` (YAML node entries, indented for `nodes:`), creates
    /// the network `default-net` and every host's Bgp object, and waits for the eBGP sessions.
    pub fn up(tag: &str, extra_nodes: &str) -> Fabric {
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
        let file = dir.path().join("two-rack.clab.yml");
        let topo = std::fs::read_to_string(&file).expect("two-rack topology");
        // The master's exec lines create the network and every host's Bgp object before the
        // agents and containers start, so lab can attach labelled containers at deploy time.
        let netctl = format!("{} --netmaster {MASTER_URL}", bin("netctl").display());
        let mut exec = format!(
            "      exec:\n        - {netctl} net create --subnet {SUBNET} --gateway 10.1.2.1 default-net\n"
        );
        for (host, ip, asn, tor, tor_as) in HOSTS {
            exec.push_str(&format!(
                "        - {netctl} bgp create {host} --router-ip {ip}/31 --as {asn} --neighbor-as {tor_as} --neighbor {tor}\n"
            ));
        }
        let topo = topo
            .replacen("name: two-rack\n", &format!("name: {name}\n"), 1)
            .replacen(
                "        lab.kind: netmaster\n",
                &format!("        lab.kind: netmaster\n{exec}"),
                1,
            )
            .replacen("  links:\n", &format!("{extra_nodes}  links:\n"), 1);
        std::fs::write(&file, topo).expect("write topology");
        let fabric = Fabric {
            name,
            file,
            _dir: dir,
            extra_netns: Default::default(),
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

    pub fn netctl(&self, args: &[&str]) -> String {
        let netctl = bin("netctl").display().to_string();
        let mut argv = vec![netctl.as_str(), "--netmaster", MASTER_URL];
        argv.extend(args);
        let (ok, out) = self.exec("master1", &argv);
        assert!(ok, "netctl {args:?} failed: {out}");
        out
    }

    /// GET on the master's REST API.
    pub fn get(&self, path: &str) -> Value {
        let url = format!("{MASTER_URL}{path}");
        let (ok, out) = self.exec("master1", &["curl", "-sf", &url]);
        assert!(ok, "GET {path} failed");
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    /// Addresses allocated in a network (by the master's inspect).
    pub fn allocated(&self, network: &str) -> u64 {
        self.get(&format!("/api/v1/inspect/networks/{network}/"))["Oper"]["allocatedAddressesCount"]
            .as_u64()
            .unwrap_or(u64::MAX)
    }

    /// Endpoint records in the master.
    pub fn endpoints(&self) -> Vec<Value> {
        self.get("/api/v1/endpoints/")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn wait_sessions(&self) {
        let ok = poll(Duration::from_secs(40), || {
            let (_, bird) = self.exec(
                "tor1",
                &["birdc", "-s", &self.bird_ctl(), "show", "protocols"],
            );
            let up1 = ["host1", "host2"].iter().all(|h| {
                bird.lines()
                    .any(|l| l.starts_with(h) && l.contains("Established"))
            });
            let frr = self.vtysh("show bgp ipv4 unicast summary json");
            let peers = &frr["peers"];
            let up2 = ["10.254.2.1", "10.254.2.3"]
                .iter()
                .all(|p| peers[p]["state"] == "Established");
            (up1 && up2).then_some(())
        });
        assert!(
            ok.is_some(),
            "the agents' BGP sessions to the ToRs did not come up in 40 s"
        );
    }

    fn bird_ctl(&self) -> String {
        self.run_dir("tor1").join("bird.ctl").display().to_string()
    }

    pub fn vtysh(&self, cmd: &str) -> Value {
        let instance = self.netns("tor2");
        let (_, out) = self.exec("tor2", &["vtysh", "-N", &instance, "-c", cmd]);
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    /// tor1's (BIRD) routes for /32s in the container subnet: prefix → next hops.
    pub fn tor1_routes(&self) -> BTreeMap<String, Vec<String>> {
        // birdc needs only BIRD's control socket, not the namespace.
        let (_, out) = sh(Command::new("birdc").args(["-s", &self.bird_ctl(), "show", "route"]));
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
        let rib = self.vtysh("show bgp ipv4 unicast json");
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
    pub fn routes(&self, host: &str) -> Vec<String> {
        let (_, out) = self.exec(host, &["ip", "route", "show", "proto", "205"]);
        let mut routes: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
        routes.sort();
        routes
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

//! The lab `lab bench attach` runs on: the bench-attach topology (two-rack plus the baseline
//! host host5) written to a temporary directory, deployed in-process, configured through the
//! master's REST API (the network and every agent host's Bgp object) and destroyed on drop,
//! with the container namespaces the bench created.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use serde_json::{json, Value};

use lab::auth::{Access, MasterLogin};
use lab::{deploy, destroy, plan, programs, Topology};

use super::probe::Birdc;
use super::stopping;

pub const LAB: &str = "bench-attach";
/// The lab's master: TLS and authentication on, as deployed (see lab's `auth.rs`).
const MASTER: &str = "https://172.20.20.10:9999";
/// Our network (the master allocates from it) and the baseline's pool (the bench picks).
pub const OURS_SUBNET: &str = "10.1.2.0/24";
pub const BASELINE_SUBNET: &str = "10.1.3.0/24";
const OURS_GATEWAY: &str = "10.1.2.1";
/// Agent hosts: (name, router ip, AS, ToR address, ToR AS), as in two-rack.
const HOSTS: [(&str, &str, u32, &str, u32); 4] = [
    ("host1", "10.254.1.1", 65211, "10.254.1.0", 65101),
    ("host2", "10.254.1.3", 65212, "10.254.1.2", 65101),
    ("host3", "10.254.2.1", 65213, "10.254.2.0", 65102),
    ("host4", "10.254.2.3", 65214, "10.254.2.2", 65102),
];

/// The topology and its configs, relative paths as the topology's binds name them.
const FILES: [(&str, &str); 5] = [
    (
        "bench-attach.clab.yml",
        include_str!("../../../topologies/bench-attach.clab.yml"),
    ),
    (
        "bench-attach/tor1/bird.conf",
        include_str!("../../../topologies/bench-attach/tor1/bird.conf"),
    ),
    (
        "bench-attach/host5/bird.conf",
        include_str!("../../../topologies/bench-attach/host5/bird.conf"),
    ),
    (
        "two-rack/tor2/frr.conf",
        include_str!("../../../topologies/two-rack/tor2/frr.conf"),
    ),
    (
        "two-rack/tor2/daemons",
        include_str!("../../../topologies/two-rack/tor2/daemons"),
    ),
];

/// A deployed bench-attach lab; destroyed on drop.
pub struct Fabric {
    topo: Topology,
    _dir: tempfile::TempDir,
}

fn progress(m: &str) {
    eprintln!("lab: {m}");
}

impl Fabric {
    /// Deploys the lab (after destroying a leftover of an earlier run).
    pub fn deploy() -> Result<Fabric> {
        Fabric::deploy_files(&FILES)
    }

    /// Deploys the topology of `files` (the first one; the others are the configs it binds,
    /// by the relative paths it names) from a temporary directory.
    pub fn deploy_files(files: &[(&str, &str)]) -> Result<Fabric> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        for &(rel, text) in files {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        let Some(&(top, _)) = files.first() else {
            bail!("no topology file given");
        };
        let file = dir.path().join(top);
        let topo = Topology::load(&file)?;
        let run_root = programs::run_root();
        destroy::destroy(&run_root, &topo.name, Some(&topo), &mut progress)?;
        let fabric = Fabric { topo, _dir: dir };
        deploy::deploy(
            &fabric.topo,
            &file,
            &programs::discover(false),
            &mut progress,
        )
        .with_context(|| format!("deploying the {} lab", fabric.topo.name))?;
        Ok(fabric)
    }

    pub fn netns(&self, node: &str) -> String {
        format!("clab-{}-{node}", self.topo.name)
    }

    pub fn run_dir(&self, node: &str) -> PathBuf {
        plan::lab_dir(&programs::run_root(), &self.topo.name).join(node)
    }

    /// The master as admin: its certificate and the token lab got at deploy (or a new one).
    pub fn admin_access(&self) -> Result<Access> {
        let login = MasterLogin::of(MASTER.to_string(), &self.run_dir("master1"));
        Ok(Access::admin(&self.netns("master1"), &login)?)
    }

    pub fn bird_ctl(&self, node: &str) -> PathBuf {
        self.run_dir(node).join("bird.ctl")
    }

    /// Creates our network and every agent host's BGP settings through the master's REST API.
    pub fn configure(&self) -> Result<()> {
        let mut writes = vec![(
            "networks/default:default-net".to_string(),
            json!({
                "key": "default:default-net",
                "tenantName": "default",
                "networkName": "default-net",
                "nwType": "data",
                "encap": "vxlan",
                "subnet": OURS_SUBNET,
                "gateway": OURS_GATEWAY,
            }),
        )];
        for (host, ip, asn, tor, tor_as) in HOSTS {
            writes.push((
                format!("Bgps/{host}"),
                json!({
                    "key": host,
                    "hostname": host,
                    "routerip": format!("{ip}/31"),
                    "as": asn.to_string(),
                    "neighbor-as": tor_as.to_string(),
                    "neighbor": tor,
                }),
            ));
        }
        let access = self.admin_access()?;
        in_netns(&self.netns("master1"), move || -> Result<()> {
            let agent = access.agent(Duration::from_secs(10))?;
            for (path, body) in writes {
                let path = format!("/api/v1/{path}/");
                let (status, text) = access
                    .request(&agent, "POST", &path, Some(&body.to_string()))
                    .with_context(|| format!("POST {path}"))?;
                if !(200..300).contains(&status) {
                    bail!("POST {path}: {status} {text}");
                }
            }
            Ok(())
        })?
    }

    /// Waits (bounded) until tor1 has host1, host5 and tor2 Established and tor2 has host3.
    pub fn wait_sessions(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut birdc = Birdc::connect(&self.bird_ctl("tor1"))?;
        let tor2 = self.netns("tor2");
        let mut last = String::new();
        while Instant::now() < deadline && !stopping() {
            let protocols = birdc.command("show protocols")?;
            let up = |name: &str| {
                protocols
                    .iter()
                    .any(|l| l.starts_with(name) && l.contains("Established"))
            };
            let frr = Command::new("ip")
                .args(["netns", "exec", &tor2, "vtysh", "-N", &tor2, "-c"])
                .arg("show bgp ipv4 unicast summary json")
                .output()
                .context("running vtysh")?;
            let summary: Value = serde_json::from_slice(&frr.stdout).unwrap_or(Value::Null);
            let host3 = summary["peers"]["10.254.2.1"]["state"] == "Established";
            let missing: Vec<&str> = ["host1", "host5", "tor2"]
                .into_iter()
                .filter(|n| !up(n))
                .chain((!host3).then_some("tor2-host3"))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            last = missing.join(", ");
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("BGP sessions not Established after {limit:?}: {last}")
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        let run_root = programs::run_root();
        if let Err(e) = destroy::destroy(&run_root, &self.topo.name, Some(&self.topo), &mut |_| {})
        {
            eprintln!("lab: destroying {} failed: {e}", self.topo.name);
        }
    }
}

/// Runs `f` on a thread that entered namespace `netns` (sockets it opens live there).
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let ns = File::open(Path::new("/run/netns").join(netns))
        .with_context(|| format!("opening namespace {netns}"))?;
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T> {
            setns(&ns, CloneFlags::CLONE_NEWNET).context("setns")?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| bail!("thread in {netns} panicked"))
    })
}

/// Container namespaces the bench created; deleted on drop.
#[derive(Default)]
pub struct Namespaces(Mutex<Vec<String>>);

impl Namespaces {
    pub fn add(&self, name: &str) -> Result<String> {
        if let Ok(mut list) = self.0.lock() {
            list.push(name.to_string()); // recorded first: a half-created one is removed too
        }
        lab::netns::ip(&["netns", "add", name])?;
        Ok(name.to_string())
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        if let Ok(list) = self.0.lock() {
            for name in list.iter().filter(|n| lab::netns::netns_exists(n)) {
                let _ = lab::netns::ip(&["netns", "delete", name]);
            }
        }
    }
}

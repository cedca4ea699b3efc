//! Finds the programs node kinds need, so planning itself stays pure. Our own binaries
//! (`netmaster`, `netplugin`, the CNI plugin `contivk8s`) are looked for next to `lab`, then on PATH; or only in
//! `LAB_BIN_DIR` when that is set.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::plan::PlanEnv;
use crate::sys;

/// System programs looked up on PATH.
pub const SYSTEM: &[&str] = &[
    "bird",
    "birdc",
    "gobgpd",
    "gobgp",
    "vtysh",
    "etcd",
    "etcdctl",
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
];
/// FRR daemons, which live outside PATH.
pub const FRR_DAEMONS: &[&str] = &["zebra", "bgpd"];
const OURS: &[&str] = &["netmaster", "netplugin", "contivk8s"];

/// The default run root; `LAB_RUN_DIR` overrides it.
pub fn run_root() -> PathBuf {
    std::env::var_os("LAB_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/lab"))
}

/// Where our own binaries are looked for first.
pub fn own_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LAB_BIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
}

pub fn discover(skip_missing: bool) -> PlanEnv {
    let mut programs = BTreeMap::new();
    for name in SYSTEM {
        if let Some(path) = sys::which(name) {
            programs.insert(name.to_string(), path);
        }
    }
    for name in FRR_DAEMONS {
        let path = PathBuf::from("/usr/lib/frr").join(name);
        if sys::is_executable(&path) {
            programs.insert(name.to_string(), path);
        }
    }
    // LAB_BIN_DIR is the only place looked at when set, so a test can make the agent and the
    // master count as not built whatever PATH holds.
    let exclusive = std::env::var_os("LAB_BIN_DIR").is_some();
    for name in OURS {
        let beside = own_bin_dir()
            .map(|d| d.join(name))
            .filter(|p| sys::is_executable(p));
        let found = match beside {
            Some(path) => Some(path),
            None if exclusive => None,
            None => sys::which(name),
        };
        if let Some(path) = found {
            programs.insert(name.to_string(), path);
        }
    }
    PlanEnv {
        run_root: run_root(),
        programs,
        skip_missing,
    }
}

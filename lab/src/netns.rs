//! Named network namespaces and running commands in them, through `ip` (iproute2): creating a
//! named namespace is a bind mount under /run/netns, and `ip netns exec` also gives the command
//! a /sys that shows the namespace's interfaces (OVS and FRR read it). Links and addresses go
//! through netlink in `links.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::LabError;
use crate::sys::run;

/// `ip <args>`.
pub fn ip(args: &[&str]) -> Result<String, LabError> {
    run(Command::new("ip").args(args))
}

/// A command run inside a namespace through `ip netns exec` (which also remounts /sys, so
/// daemons that read /sys/class/net see the namespace's interfaces).
pub fn in_netns(netns: &str, argv: &[String]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns]).args(argv);
    cmd
}

/// Where `ip netns` keeps a named namespace.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

pub fn netns_exists(name: &str) -> bool {
    netns_path(name).exists()
}

/// Processes living in a namespace.
pub fn netns_pids(name: &str) -> Vec<i32> {
    ip(&["netns", "pids", name])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

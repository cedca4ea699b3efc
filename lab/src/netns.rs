//! Namespaces, links and addresses through `ip` (iproute2): the executor's hands. `ip` rather
//! than rtnetlink because every operation here crosses namespaces (`ip -n`, `ip netns exec`),
//! one flag for `ip` and a socket opened inside each namespace for netlink; a deploy makes a few
//! hundred such calls, about a second in total.

use std::path::Path;
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

pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
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

//! `lab save`: dumps each router's state (running config, sessions, routes) through the
//! daemon's own CLI into `<out>/<node>/`, as containerlab's `save` keeps node configs.

use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::kind::Kind;
use crate::plan::NodeInfo;
use crate::state::State;
use crate::sys;

/// The commands whose output is saved for a node kind: (file name, command line).
fn commands(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::Bird => &[
            ("protocols.txt", "birdc show protocols all"),
            ("routes.txt", "birdc show route all"),
        ],
        Kind::Frr => &[
            ("running-config.conf", "vtysh -c 'show running-config'"),
            ("bgp-summary.json", "vtysh -c 'show bgp summary json'"),
            ("bgp-routes.json", "vtysh -c 'show bgp ipv4 unicast json'"),
        ],
        Kind::Gobgp => &[
            ("neighbors.json", "gobgp -j neighbor"),
            ("rib.json", "gobgp -j global rib"),
        ],
        Kind::Netplugin => &[
            ("ovs.txt", "ovs-vsctl show"),
            ("flows.txt", "ovs-ofctl -O OpenFlow13 dump-flows br-int"),
        ],
        _ => &[],
    }
}

/// Runs a shell command line in a node with the node's environment (its helper wrappers).
pub fn node_shell(node: &NodeInfo, line: &str) -> Result<String, LabError> {
    sys::run(
        crate::netns::in_netns(&node.netns, &["sh".into(), "-c".into(), line.into()])
            .envs(&node.env),
    )
}

/// Saves every node's state; returns the files written.
pub fn save(state: &State, out: &Path) -> Result<Vec<PathBuf>, LabError> {
    let mut written = Vec::new();
    for node in &state.nodes {
        let cmds = commands(node.kind);
        if cmds.is_empty() {
            continue;
        }
        let dir = out.join(&node.name);
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io("cannot create", &dir, e))?;
        for (file, line) in cmds {
            let text = node_shell(node, line)?;
            let path = dir.join(file);
            std::fs::write(&path, text).map_err(|e| LabError::io("cannot write", &path, e))?;
            written.push(path);
        }
    }
    Ok(written)
}

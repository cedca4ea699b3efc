//! containerlab's topology file format: parsing (`raw.rs`, the file as written), validation
//! (`resolve.rs`: kinds merged, names checked, management addresses assigned) and the resolved
//! [`Topology`] the planner works from. Pure: no file system access except in
//! [`Topology::load`].
//!
//! Every error names the key path it is about (`topology.nodes.tor1.kind`), because a user fixing
//! a 200-line YAML file needs to know where to look.

mod raw;
mod resolve;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use crate::kind::Kind;
use resolve::invalid;

/// The label that gives a containerlab `linux` node one of our richer kinds, so the same file
/// stays valid for containerlab (which only knows `linux`) and still runs BIRD here.
pub const KIND_LABEL: &str = "lab.kind";
/// The label that attaches a `container` node to the `netplugin` host it runs on.
pub const HOST_LABEL: &str = "lab.host";
/// The label that runs a node's daemons at another CPU priority (a `nice` value, -20 to 19).
/// The lab packs many machines onto a few cores; a real ToR has CPUs of its own, which a
/// negative value lets its routing daemon approach when hosts keep every core busy.
pub const NICE_LABEL: &str = "lab.nice";
/// containerlab's default management subnet.
pub const DEFAULT_MGMT_SUBNET: &str = "172.20.20.0/24";

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read topology file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("malformed topology file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// A validated topology, ready to be planned.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub name: String,
    /// The directory of the topology file: `startup-config` and `binds` are relative to it.
    pub dir: PathBuf,
    pub mgmt: MgmtNet,
    /// Sorted by name.
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MgmtNet {
    pub network: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub kind: Kind,
    /// The kind as written (`linux` for a portable node that carries `lab.kind`).
    pub clab_kind: String,
    pub image: Option<String>,
    pub exec: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub binds: Vec<Bind>,
    /// Absolute path.
    pub startup_config: Option<PathBuf>,
    pub labels: BTreeMap<String, String>,
    pub mgmt_ipv4: Ipv4Addr,
    /// For `container` nodes: the `netplugin` node it runs on.
    pub host: Option<String>,
    /// The `nice` value its daemons start with (label `lab.nice`); None: inherited.
    pub nice: Option<i8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    /// Absolute path on this machine.
    pub source: PathBuf,
    /// The path inside the container on a Docker host.
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub node: String,
    pub iface: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
}

impl Topology {
    /// Reads, parses and validates a topology file, and checks that the files it refers to exist.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        let topo = Topology::parse(&text, path, &dir)?;
        topo.check_files()?;
        Ok(topo)
    }

    /// Parses and validates; `file` is only used in messages, `dir` resolves relative paths.
    pub fn parse(text: &str, file: &Path, dir: &Path) -> Result<Topology, TopologyError> {
        let raw: raw::RawFile =
            serde_norway::from_str(text).map_err(|e| TopologyError::Syntax {
                path: file.to_path_buf(),
                message: e.to_string(),
            })?;
        resolve::resolve(raw, dir)
    }

    /// Checks that every `startup-config` and bind source exists.
    pub fn check_files(&self) -> Result<(), TopologyError> {
        for node in &self.nodes {
            if let Some(cfg) = &node.startup_config {
                if !cfg.is_file() {
                    return Err(invalid(
                        format!("topology.nodes.{}.startup-config", node.name),
                        format!("file {} does not exist", cfg.display()),
                    ));
                }
            }
            for (i, bind) in node.binds.iter().enumerate() {
                if !bind.source.exists() {
                    return Err(invalid(
                        format!("topology.nodes.{}.binds[{i}]", node.name),
                        format!("source {} does not exist", bind.source.display()),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The network namespace of a node, named as containerlab names its containers.
    pub fn netns(&self, node: &str) -> String {
        format!("clab-{}-{}", self.name, node)
    }

    /// The namespace that holds the management bridge.
    pub fn mgmt_netns(&self) -> String {
        format!("clab-{}-mgmt", self.name)
    }
}

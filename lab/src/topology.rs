//! containerlab's topology file format: the serde types for the file as written, and the
//! validation that turns it into a resolved [`Topology`] (kinds merged, names checked, management
//! addresses assigned). Pure: no file system access except in [`Topology::load`].
//!
//! Every error names the key path it is about (`topology.nodes.tor1.kind`), because a user fixing
//! a 200-line YAML file needs to know where to look.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::kind::Kind;

/// The label that gives a containerlab `linux` node one of our richer kinds, so the same file
/// stays valid for containerlab (which only knows `linux`) and still runs BIRD here.
pub const KIND_LABEL: &str = "lab.kind";
/// The label that attaches a `container` node to the `netplugin` host it runs on.
pub const HOST_LABEL: &str = "lab.host";
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

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> TopologyError {
    TopologyError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// A YAML scalar used as a string (containerlab allows `PORT: 80` in `env` and `labels`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    #[serde(default)]
    mgmt: RawMgmt,
    topology: RawTopology,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMgmt {
    network: Option<String>,
    bridge: Option<String>,
    ipv4_subnet: Option<String>,
    ipv4_gw: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    #[serde(default)]
    defaults: RawNode,
    #[serde(default)]
    kinds: BTreeMap<String, RawNode>,
    nodes: BTreeMap<String, RawNode>,
    #[serde(default)]
    links: Vec<RawLink>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNode {
    kind: Option<String>,
    image: Option<String>,
    exec: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, Scalar>,
    #[serde(default)]
    binds: Vec<String>,
    startup_config: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, Scalar>,
    mgmt_ipv4: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    endpoints: Vec<String>,
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
        let raw: RawFile = serde_norway::from_str(text).map_err(|e| TopologyError::Syntax {
            path: file.to_path_buf(),
            message: e.to_string(),
        })?;
        resolve(raw, dir)
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

fn check_name(key: &str, name: &str) -> Result<(), TopologyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("`{name}` is not a valid name (1-64 letters, digits, `-`, `_`, starting with a letter or digit)"),
        ))
    }
}

fn check_iface(key: &str, iface: &str) -> Result<(), TopologyError> {
    if iface.is_empty() || iface.len() > 15 {
        return Err(invalid(
            key,
            format!("interface name `{iface}` must be 1 to 15 characters (a Linux limit)"),
        ));
    }
    if iface
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(invalid(
            key,
            format!("interface name `{iface}` contains `/`, `:` or a space"),
        ));
    }
    if iface == "lo" || iface == "eth0" {
        return Err(invalid(
            key,
            format!("interface `{iface}` is reserved (eth0 is the management interface)"),
        ));
    }
    Ok(())
}

fn resolve(raw: RawFile, dir: &Path) -> Result<Topology, TopologyError> {
    check_name("name", &raw.name)?;
    let mgmt = resolve_mgmt(&raw.mgmt)?;
    for kind in raw.topology.kinds.keys() {
        if kind != "linux" && Kind::from_name(kind).is_none() {
            return Err(invalid(
                format!("topology.kinds.{kind}"),
                format!(
                    "kind `{kind}` is not supported (supported: {})",
                    Kind::names()
                ),
            ));
        }
    }
    if raw.topology.nodes.is_empty() {
        return Err(invalid("topology.nodes", "the topology has no nodes"));
    }
    let mut nodes = Vec::new();
    for (name, spec) in &raw.topology.nodes {
        check_name(&format!("topology.nodes.{name}"), name)?;
        nodes.push(resolve_node(name, spec, &raw.topology, dir)?);
    }
    check_hosts(&nodes)?;
    assign_mgmt_addresses(&mut nodes, &raw.topology.nodes, &mgmt)?;
    let links = resolve_links(&raw.topology.links, &nodes)?;
    Ok(Topology {
        name: raw.name,
        dir: dir.to_path_buf(),
        mgmt,
        nodes,
        links,
    })
}

fn resolve_mgmt(raw: &RawMgmt) -> Result<MgmtNet, TopologyError> {
    let subnet_text = raw.ipv4_subnet.as_deref().unwrap_or(DEFAULT_MGMT_SUBNET);
    let subnet: Ipv4Net = subnet_text.parse().map_err(|_| {
        invalid(
            "mgmt.ipv4-subnet",
            format!("`{subnet_text}` is not an IPv4 prefix like 172.20.20.0/24"),
        )
    })?;
    if subnet.prefix_len() > 29 {
        return Err(invalid(
            "mgmt.ipv4-subnet",
            "the subnet must be /29 or larger",
        ));
    }
    let subnet = subnet.trunc();
    let gateway = match &raw.ipv4_gw {
        None => subnet.hosts().next().unwrap_or(subnet.network()),
        Some(text) => {
            let gw: Ipv4Addr = text
                .parse()
                .map_err(|_| invalid("mgmt.ipv4-gw", format!("`{text}` is not an IPv4 address")))?;
            if !subnet.contains(&gw) {
                return Err(invalid(
                    "mgmt.ipv4-gw",
                    format!("{gw} is not in mgmt.ipv4-subnet {subnet}"),
                ));
            }
            gw
        }
    };
    let bridge = raw.bridge.clone().unwrap_or_else(|| "br-mgmt".into());
    if bridge.is_empty() || bridge.len() > 15 {
        return Err(invalid(
            "mgmt.bridge",
            "bridge name must be 1 to 15 characters",
        ));
    }
    Ok(MgmtNet {
        network: raw.network.clone().unwrap_or_else(|| "clab".into()),
        bridge,
        subnet,
        gateway,
    })
}

/// Merges `defaults` < `kinds.<kind>` < the node; maps merge key by key, `binds` accumulate,
/// everything else comes from the most specific level that sets it.
fn merge(base: &RawNode, over: &RawNode) -> RawNode {
    let mut env = base.env.clone();
    env.extend(over.env.clone());
    let mut labels = base.labels.clone();
    labels.extend(over.labels.clone());
    let mut binds = base.binds.clone();
    binds.extend(over.binds.clone());
    RawNode {
        kind: over.kind.clone().or_else(|| base.kind.clone()),
        image: over.image.clone().or_else(|| base.image.clone()),
        exec: over.exec.clone().or_else(|| base.exec.clone()),
        env,
        binds,
        startup_config: over
            .startup_config
            .clone()
            .or_else(|| base.startup_config.clone()),
        labels,
        mgmt_ipv4: over.mgmt_ipv4.clone().or_else(|| base.mgmt_ipv4.clone()),
    }
}

fn resolve_node(
    name: &str,
    spec: &RawNode,
    topo: &RawTopology,
    dir: &Path,
) -> Result<Node, TopologyError> {
    let key = format!("topology.nodes.{name}");
    let clab_kind = spec
        .kind
        .clone()
        .or_else(|| topo.defaults.kind.clone())
        .ok_or_else(|| {
            invalid(
                format!("{key}.kind"),
                "no kind given (neither on the node nor in topology.defaults)",
            )
        })?;
    let kind_defaults = topo.kinds.get(&clab_kind).cloned().unwrap_or_default();
    let merged = merge(&merge(&topo.defaults, &kind_defaults), spec);
    let labels: BTreeMap<String, String> = merged
        .labels
        .into_iter()
        .map(|(k, v)| (k, v.into_string()))
        .collect();
    let kind = match (clab_kind.as_str(), labels.get(KIND_LABEL)) {
        ("linux", Some(label)) => Kind::from_name(label).ok_or_else(|| {
            invalid(
                format!("{key}.labels.{KIND_LABEL}"),
                format!(
                    "kind `{label}` is not supported (supported: {})",
                    Kind::names()
                ),
            )
        })?,
        (other, Some(_)) if other != "linux" => {
            return Err(invalid(
                format!("{key}.labels.{KIND_LABEL}"),
                format!(
                    "only a `linux` node can take its kind from a label (this one is `{other}`)"
                ),
            ))
        }
        (written, _) => Kind::from_name(written).ok_or_else(|| {
            invalid(
                format!("{key}.kind"),
                format!(
                    "kind `{written}` is not supported here (supported: {})",
                    Kind::names()
                ),
            )
        })?,
    };
    let binds = merged
        .binds
        .iter()
        .enumerate()
        .map(|(i, text)| parse_bind(&format!("{key}.binds[{i}]"), text, dir))
        .collect::<Result<Vec<_>, _>>()?;
    let startup_config = merged.startup_config.as_ref().map(|p| dir.join(p));
    if startup_config.is_some() && !kind.takes_startup_config() {
        return Err(invalid(
            format!("{key}.startup-config"),
            format!("kind {} does not use a startup-config", kind.name()),
        ));
    }
    if kind.takes_startup_config()
        && startup_config.is_none()
        && !binds
            .iter()
            .any(|b| kind.config_paths_in_image().contains(&b.target.as_str()))
    {
        return Err(invalid(
            format!("{key}.startup-config"),
            format!(
                "kind {} needs a startup-config (or a bind to {})",
                kind.name(),
                kind.config_paths_in_image().join(" or ")
            ),
        ));
    }
    let host = labels.get(HOST_LABEL).cloned();
    if host.is_some() && kind != Kind::Container {
        return Err(invalid(
            format!("{key}.labels.{HOST_LABEL}"),
            "only a `container` node is attached to a host",
        ));
    }
    Ok(Node {
        name: name.to_string(),
        kind,
        clab_kind,
        image: merged.image,
        exec: merged.exec.unwrap_or_default(),
        env: merged
            .env
            .into_iter()
            .map(|(k, v)| (k, v.into_string()))
            .collect(),
        binds,
        startup_config,
        labels,
        mgmt_ipv4: Ipv4Addr::UNSPECIFIED,
        host,
    })
}

fn parse_bind(key: &str, text: &str, dir: &Path) -> Result<Bind, TopologyError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, None),
        [s, t, m] => (*s, *t, Some(*m)),
        _ => {
            return Err(invalid(
                key,
                format!("`{text}` is not `source:target` or `source:target:ro|rw`"),
            ))
        }
    };
    if source.is_empty() || !target.starts_with('/') {
        return Err(invalid(
            key,
            format!("`{text}` needs a source and an absolute target path"),
        ));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => return Err(invalid(key, format!("bind mode `{other}` is not ro or rw"))),
    };
    Ok(Bind {
        source: dir.join(source),
        target: target.to_string(),
        read_only,
    })
}

fn check_hosts(nodes: &[Node]) -> Result<(), TopologyError> {
    for node in nodes {
        if let Some(host) = &node.host {
            match nodes.iter().find(|n| &n.name == host) {
                Some(h) if h.kind == Kind::Netplugin => {}
                Some(h) => {
                    return Err(invalid(
                        format!("topology.nodes.{}.labels.{HOST_LABEL}", node.name),
                        format!("`{host}` is a {} node, not a netplugin host", h.kind.name()),
                    ))
                }
                None => {
                    return Err(invalid(
                        format!("topology.nodes.{}.labels.{HOST_LABEL}", node.name),
                        format!("no node named `{host}`"),
                    ))
                }
            }
        }
    }
    Ok(())
}

fn assign_mgmt_addresses(
    nodes: &mut [Node],
    raw: &BTreeMap<String, RawNode>,
    mgmt: &MgmtNet,
) -> Result<(), TopologyError> {
    let mut taken: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    taken.insert(mgmt.gateway, "mgmt.ipv4-gw".into());
    for node in nodes.iter_mut() {
        let Some(text) = raw.get(&node.name).and_then(|r| r.mgmt_ipv4.clone()) else {
            continue;
        };
        let key = format!("topology.nodes.{}.mgmt-ipv4", node.name);
        let addr: Ipv4Addr = text
            .parse()
            .map_err(|_| invalid(&key, format!("`{text}` is not an IPv4 address")))?;
        if !mgmt.subnet.hosts().any(|h| h == addr) {
            return Err(invalid(
                &key,
                format!(
                    "{addr} is not a host address of mgmt.ipv4-subnet {}",
                    mgmt.subnet
                ),
            ));
        }
        if let Some(owner) = taken.insert(addr, key.clone()) {
            return Err(invalid(&key, format!("{addr} is already used by {owner}")));
        }
        node.mgmt_ipv4 = addr;
    }
    let mut free = mgmt.subnet.hosts().filter(|h| !taken.contains_key(h));
    for node in nodes.iter_mut() {
        if node.mgmt_ipv4 == Ipv4Addr::UNSPECIFIED {
            node.mgmt_ipv4 = free.next().ok_or_else(|| {
                invalid(
                    "mgmt.ipv4-subnet",
                    format!(
                        "{} has no free address left for node {}",
                        mgmt.subnet, node.name
                    ),
                )
            })?;
        }
    }
    Ok(())
}

fn resolve_links(raw: &[RawLink], nodes: &[Node]) -> Result<Vec<Link>, TopologyError> {
    let names: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut used: BTreeMap<Endpoint, String> = BTreeMap::new();
    let mut links = Vec::new();
    for (i, link) in raw.iter().enumerate() {
        let key = format!("topology.links[{i}].endpoints");
        if link.endpoints.len() != 2 {
            return Err(invalid(
                &key,
                format!(
                    "a link needs exactly two endpoints, this one has {}",
                    link.endpoints.len()
                ),
            ));
        }
        let mut parse_end = |j: usize| -> Result<Endpoint, TopologyError> {
            let text = &link.endpoints[j];
            let key = format!("{key}[{j}]");
            let (node, iface) = text.split_once(':').ok_or_else(|| {
                invalid(
                    &key,
                    format!("`{text}` is not in the form `node:interface`"),
                )
            })?;
            if !names.contains(node) {
                return Err(invalid(&key, format!("no node named `{node}`")));
            }
            check_iface(&key, iface)?;
            let end = Endpoint {
                node: node.to_string(),
                iface: iface.to_string(),
            };
            if let Some(first) = used.insert(end.clone(), key.clone()) {
                return Err(invalid(
                    &key,
                    format!("interface {node}:{iface} is already used by {first}"),
                ));
            }
            Ok(end)
        };
        let a = parse_end(0)?;
        let b = parse_end(1)?;
        links.push(Link { a, b });
    }
    Ok(links)
}

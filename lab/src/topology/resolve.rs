//! Validation: merges defaults and kinds into each node, checks names, kinds, binds, links and
//! management addresses, and builds the resolved [`Topology`]. Every error names its key path.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;

use super::raw::{RawFile, RawLink, RawMgmt, RawNode, RawTopology};
use super::{
    Bind, Endpoint, Link, MgmtNet, Node, Topology, TopologyError, DEFAULT_MGMT_SUBNET, HOST_LABEL,
    KIND_LABEL, NICE_LABEL,
};
use crate::kind::Kind;

pub(super) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> TopologyError {
    TopologyError::Invalid {
        key: key.into(),
        reason: reason.into(),
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

pub(super) fn resolve(raw: RawFile, dir: &Path) -> Result<Topology, TopologyError> {
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
    let nice = labels
        .get(NICE_LABEL)
        .map(|v| match v.trim().parse::<i8>() {
            Ok(n) if (-20..=19).contains(&n) => Ok(n),
            _ => Err(invalid(
                format!("{key}.labels.{NICE_LABEL}"),
                format!("`{v}` is not a nice value (an integer from -20 to 19)"),
            )),
        })
        .transpose()?;
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
        nice,
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

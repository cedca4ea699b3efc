//! Test support shared by the simulator tests and the OVS end-to-end tests: fabric fixtures
//! (tenants with their networks and groups; local, remote and other addresses) and an
//! independent model of the semantics (policy and tenant isolation), written from the crate
//! docs, not from the compiler.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use fabric_model::Rule;
use ipnet::Ipv4Net;
use pipeline::{
    GatewayPort, GroupInput, HostInput, LocalEndpoint, NetworkInput, RemoteEndpoint, TenantInput,
};

pub const TENANT: &str = "t1";
pub const TENANT2: &str = "t2";
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
pub const GW_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
pub const GW_PORT: u32 = 100;

/// Where an address lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A container on this host, on this ofport.
    Local(u32),
    /// A container on another host (reached through the gateway), known to the fabric.
    Remote,
    /// Anything else reached through the gateway: outside the fabric, or an address in a
    /// tenant's network that is not known as an endpoint (yet).
    Outside,
}

/// An address of a fixture.
#[derive(Clone, Debug)]
pub struct Ep {
    pub name: String,
    pub ip: Ipv4Addr,
    /// The tenant of the endpoint (`None` for [`Place::Outside`]).
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub place: Place,
}

impl Ep {
    pub fn mac(&self) -> [u8; 6] {
        let o = self.ip.octets();
        [0x02, 0xaa, o[0], o[1], o[2], o[3]]
    }
    pub fn port(&self) -> Option<u32> {
        match self.place {
            Place::Local(p) => Some(p),
            _ => None,
        }
    }
    pub fn is_local(&self) -> bool {
        matches!(self.place, Place::Local(_))
    }
}

/// A tenant of a fixture. `known: false` is a tenant the host has not heard of (no VRF): its
/// networks and remote endpoints are in the input, the tenant itself is not.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub name: String,
    pub vrf: u32,
    pub known: bool,
    pub networks: Vec<(String, Ipv4Net)>,
    /// (name, id)
    pub groups: Vec<(String, u32)>,
}

/// Tenants and addresses; [`Fixture::input`] makes the compiler's input of them.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub tenants: Vec<Tenant>,
    pub eps: Vec<Ep>,
}

/// An endpoint (or, with `tenant` `None`, an address outside every endpoint).
pub fn ep(name: &str, ip: [u8; 4], tenant: Option<&str>, group: Option<&str>, place: Place) -> Ep {
    Ep {
        name: name.into(),
        ip: Ipv4Addr::from(ip),
        tenant: tenant.map(Into::into),
        group: group.map(Into::into),
        place,
    }
}

pub fn tenant(name: &str, vrf: u32, networks: &[(&str, &str)], groups: &[(&str, u32)]) -> Tenant {
    Tenant {
        name: name.into(),
        vrf,
        known: true,
        networks: networks
            .iter()
            .map(|(n, s)| (n.to_string(), s.parse().expect("subnet")))
            .collect(),
        groups: groups.iter().map(|(n, id)| (n.to_string(), *id)).collect(),
    }
}

impl Fixture {
    /// Tenant t1 (networks n1, n2; groups A, B, C; five local containers, two remote ones) and
    /// tenant t2 (network m1; groups A, D: a group name t1 has too; a local container, a remote
    /// one, and an address of m1 no endpoint has), and a host outside the fabric.
    pub fn standard() -> Fixture {
        let (t1, t2) = (Some(TENANT), Some(TENANT2));
        Fixture {
            tenants: vec![
                tenant(
                    TENANT,
                    7,
                    &[("n1", "10.1.1.0/24"), ("n2", "10.1.2.0/24")],
                    &[("A", 0x0001_0001), ("B", 0x7fff_0002), ("C", 0xfffe_0003)],
                ),
                tenant(
                    TENANT2,
                    9,
                    &[("m1", "10.2.1.0/24")],
                    &[("A", 0x0002_0001), ("D", 0x0002_0004)],
                ),
            ],
            eps: vec![
                ep("a1", [10, 1, 1, 2], t1, Some("A"), Place::Local(1)),
                ep("b1", [10, 1, 1, 3], t1, Some("B"), Place::Local(2)),
                ep("c1", [10, 1, 2, 2], t1, Some("C"), Place::Local(3)),
                ep("a2", [10, 1, 2, 3], t1, Some("A"), Place::Local(4)),
                ep("x1", [10, 1, 1, 9], t1, None, Place::Local(5)),
                ep("ra", [10, 1, 1, 20], t1, Some("A"), Place::Remote),
                ep("rb", [10, 1, 2, 20], t1, Some("B"), Place::Remote),
                ep("e1", [10, 2, 1, 2], t2, Some("A"), Place::Local(6)),
                ep("re", [10, 2, 1, 20], t2, Some("D"), Place::Remote),
                ep("u2", [10, 2, 1, 77], None, None, Place::Outside),
                ep("out", [10, 99, 0, 2], None, None, Place::Outside),
            ],
        }
    }

    pub fn ep(&self, name: &str) -> &Ep {
        self.eps
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no endpoint {name}"))
    }

    fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }

    fn group_id(&self, tenant: &str, group: &str) -> u32 {
        self.tenant(tenant)
            .and_then(|t| t.groups.iter().find(|g| g.0 == group))
            .map(|g| g.1)
            .unwrap_or_else(|| panic!("no group {tenant}:{group}"))
    }

    /// The compiler's input. Group `g` of every tenant has policy `p<g>` (groups A and C also
    /// `shared`), of its own tenant.
    pub fn input(&self, rules: &[Rule]) -> HostInput {
        let mut input = HostInput::new(
            ROUTER_MAC,
            GatewayPort {
                ofport: GW_PORT,
                mac: GW_MAC,
            },
        );
        for t in &self.tenants {
            if t.known {
                input.tenants.push(TenantInput {
                    name: t.name.clone(),
                    vrf: t.vrf,
                    zone: t.vrf as u16,
                });
            }
            for (name, subnet) in &t.networks {
                input.networks.push(NetworkInput {
                    tenant: t.name.clone(),
                    name: name.clone(),
                    subnet: *subnet,
                    gateway: None,
                });
            }
            for (name, id) in &t.groups {
                input.groups.push(GroupInput {
                    tenant: t.name.clone(),
                    name: name.clone(),
                    id: *id,
                    policies: policies_of(name),
                });
            }
        }
        input.rules = rules.to_vec();
        for e in &self.eps {
            let Some(tenant) = e.tenant.clone() else {
                continue;
            };
            let group = e
                .group
                .as_ref()
                .map(|g| self.group_id(&tenant, g))
                .unwrap_or(0);
            match e.place {
                Place::Local(ofport) => input.local_endpoints.push(LocalEndpoint {
                    ofport,
                    mac: e.mac(),
                    ipv4: e.ip,
                    tenant,
                    group,
                }),
                Place::Remote => input.remote_endpoints.push(RemoteEndpoint {
                    ipv4: e.ip,
                    tenant,
                    group,
                }),
                Place::Outside => {}
            }
        }
        input
    }

    /// The tenant of a non-local address, as the crate docs define it: the endpoint's at that
    /// address, else the network's that holds it, else none (outside the fabric); ambiguous
    /// when two tenants claim it at the step that decides.
    pub fn owner(&self, ip: Ipv4Addr) -> Owner {
        let endpoints: BTreeSet<&str> = self
            .eps
            .iter()
            .filter(|e| e.ip == ip)
            .filter_map(|e| e.tenant.as_deref())
            .collect();
        let claims = if endpoints.is_empty() {
            self.tenants
                .iter()
                .filter(|t| t.networks.iter().any(|(_, n)| n.contains(&ip)))
                .map(|t| t.name.as_str())
                .collect()
        } else {
            endpoints
        };
        let mut it = claims.into_iter();
        match (it.next(), it.next()) {
            (None, _) => Owner::Outside,
            (Some(t), None) => Owner::Tenant(t.to_string()),
            _ => Owner::Ambiguous,
        }
    }

    /// Does tenant isolation let a new connection `src` → `dst` through this host?
    pub fn same_tenant(&self, src: &Ep, dst: &Ep) -> bool {
        let admits = |local: &Ep, other: &Ep| match self.owner(other.ip) {
            Owner::Outside => true,
            Owner::Tenant(t) => local.tenant.as_deref() == Some(t.as_str()),
            Owner::Ambiguous => false,
        };
        match (src.is_local(), dst.is_local()) {
            (true, true) => src.tenant == dst.tenant,
            (true, false) => admits(src, dst),
            (false, true) => admits(dst, src),
            (false, false) => true,
        }
    }

    /// Is a new connection `src` → `dst` allowed on this host (isolation, then both ends'
    /// rules)?
    pub fn allowed(&self, rules: &[Rule], src: &Ep, dst: &Ep, probe: Probe) -> bool {
        let egress = !src.is_local() || self.verdict(rules, src, "out", dst, probe);
        let ingress = !dst.is_local() || self.verdict(rules, dst, "in", src, probe);
        self.same_tenant(src, dst) && egress && ingress
    }

    /// The verdict of the rules of `own`'s group in direction `dir`: highest priority wins,
    /// deny wins ties, default allow.
    fn verdict(&self, rules: &[Rule], own: &Ep, dir: &str, peer: &Ep, probe: Probe) -> bool {
        let (Some(t), Some(g)) = (&own.tenant, &own.group) else {
            return true;
        };
        let pols = policies_of(g);
        let best = rules
            .iter()
            .filter(|r| r.direction == dir && &r.tenant_name == t && pols.contains(&r.policy_name))
            .filter(|r| self.rule_matches(r, peer, probe))
            .map(|r| (r.priority, r.action == "deny"))
            .max();
        match best {
            None => true,
            Some((_, deny)) => !deny,
        }
    }

    fn peer_matches(&self, r: &Rule, peer: &Ep) -> bool {
        let (group, net, ip) = if r.direction == "in" {
            (&r.from_endpoint_group, &r.from_network, &r.from_ip_address)
        } else {
            (&r.to_endpoint_group, &r.to_network, &r.to_ip_address)
        };
        if !group.is_empty() {
            return peer.group.as_ref() == Some(group)
                && peer.tenant == Some(r.tenant_name.clone());
        }
        if !net.is_empty() {
            // A network of the rule's tenant; unknown: the rule matches nothing.
            return self
                .tenant(&r.tenant_name)
                .and_then(|t| t.networks.iter().find(|n| &n.0 == net))
                .is_some_and(|n| n.1.contains(&peer.ip));
        }
        if !ip.is_empty() {
            return addr_matches(ip, peer.ip);
        }
        true
    }

    fn rule_matches(&self, r: &Rule, peer: &Ep, probe: Probe) -> bool {
        let proto_ok = match r.protocol.as_str() {
            "" => true,
            "tcp" => probe.proto() == 6,
            "udp" => probe.proto() == 17,
            "icmp" => probe.proto() == 1,
            n => n.parse::<u8>().unwrap() == probe.proto(),
        };
        let port_ok = r.port == 0 || probe.port().map(i64::from) == Some(r.port);
        proto_ok && port_ok && self.peer_matches(r, peer)
    }
}

/// The tenant of an address seen from a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    Outside,
    Tenant(String),
    Ambiguous,
}

/// A rule of policy `policy` of tenant t1.
#[allow(clippy::too_many_arguments)]
pub fn rule(
    policy: &str,
    id: &str,
    dir: &str,
    prio: i64,
    proto: &str,
    port: i64,
    peer: &str,
    action: &str,
) -> Rule {
    let mut r = Rule {
        tenant_name: TENANT.into(),
        policy_name: policy.into(),
        rule_id: id.into(),
        direction: dir.into(),
        priority: prio,
        protocol: proto.into(),
        port,
        action: action.into(),
        ..Rule::default()
    };
    // peer: "" any, "group:X", "net:n1", "ip:10.1.1.0/24"
    let (kind, v) = peer.split_once(':').unwrap_or(("", ""));
    let v = v.to_string();
    match (dir, kind) {
        ("in", "group") => r.from_endpoint_group = v,
        ("in", "net") => r.from_network = v,
        ("in", "ip") => r.from_ip_address = v,
        ("out", "group") => r.to_endpoint_group = v,
        ("out", "net") => r.to_network = v,
        ("out", "ip") => r.to_ip_address = v,
        _ => {}
    }
    r
}

/// `r` as a rule of tenant `tenant`.
pub fn of_tenant(tenant: &str, mut r: Rule) -> Rule {
    r.tenant_name = tenant.into();
    r
}

/// What a probe sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Tcp(u16),
    Udp(u16),
    Ping,
}

impl Probe {
    fn proto(&self) -> u8 {
        match self {
            Probe::Tcp(_) => 6,
            Probe::Udp(_) => 17,
            Probe::Ping => 1,
        }
    }
    fn port(&self) -> Option<u16> {
        match self {
            Probe::Tcp(p) | Probe::Udp(p) => Some(*p),
            Probe::Ping => None,
        }
    }
}

/// The probes every source × destination pair gets.
pub const PROBES: [Probe; 5] = [
    Probe::Tcp(80),
    Probe::Tcp(8888),
    Probe::Udp(53),
    Probe::Udp(8888),
    Probe::Ping,
];

/// The policies of group `g` (the same attachment as [`Fixture::input`]).
fn policies_of(g: &str) -> Vec<String> {
    let mut v = vec![format!("p{g}")];
    if g == "A" || g == "C" {
        v.push("shared".into());
    }
    v
}

/// Does `addr` match Contiv's rule address syntax `value`? (Range: last octet inclusive.)
fn addr_matches(value: &str, addr: Ipv4Addr) -> bool {
    let (a, len) = match value.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().unwrap()),
        None => (value, 32),
    };
    if let Some((first, last)) = a.split_once('-') {
        let first: Ipv4Addr = first.parse().unwrap();
        let last: u8 = last.parse().unwrap();
        let (f, x) = (first.octets(), addr.octets());
        return f[..3] == x[..3] && f[3] <= x[3] && x[3] <= last;
    }
    let base: Ipv4Addr = a.parse().unwrap();
    let bits = 32 - len;
    (u32::from(base) >> bits) == (u32::from(addr) >> bits)
}

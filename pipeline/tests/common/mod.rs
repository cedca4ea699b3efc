//! Test support shared by the simulator tests and the OVS end-to-end tests: a fabric fixture
//! (one tenant, two networks, groups A, B, C, local, remote and outside addresses) and an
//! independent model of the policy semantics, written from the crate docs, not from the
//! compiler.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use fabric_model::Rule;
use pipeline::{
    GatewayPort, GroupInput, HostInput, LocalEndpoint, NetworkInput, RemoteEndpoint, TenantInput,
};

pub const TENANT: &str = "t1";
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
pub const GW_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
pub const GW_PORT: u32 = 100;

/// Where an address lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A container on this host, on this ofport.
    Local(u32),
    /// A container on another host (reached through the gateway).
    Remote,
    /// Outside the fabric (reached through the gateway).
    Outside,
}

/// An address of the fixture.
#[derive(Clone, Copy, Debug)]
pub struct Ep {
    pub name: &'static str,
    pub ip: Ipv4Addr,
    pub group: Option<&'static str>,
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
}

pub const GROUPS: [(&str, u32); 3] = [("A", 0x0001_0001), ("B", 0x7fff_0002), ("C", 0xfffe_0003)];

pub fn group_id(name: &str) -> u32 {
    GROUPS.iter().find(|g| g.0 == name).map(|g| g.1).unwrap()
}

pub const NETWORKS: [(&str, &str); 2] = [("n1", "10.1.1.0/24"), ("n2", "10.1.2.0/24")];

pub fn eps() -> Vec<Ep> {
    let ep = |name, ip: [u8; 4], group, place| Ep {
        name,
        ip: Ipv4Addr::from(ip),
        group,
        place,
    };
    vec![
        ep("a1", [10, 1, 1, 2], Some("A"), Place::Local(1)),
        ep("b1", [10, 1, 1, 3], Some("B"), Place::Local(2)),
        ep("c1", [10, 1, 2, 2], Some("C"), Place::Local(3)),
        ep("a2", [10, 1, 2, 3], Some("A"), Place::Local(4)),
        ep("x1", [10, 1, 1, 9], None, Place::Local(5)),
        ep("ra", [10, 1, 1, 20], Some("A"), Place::Remote),
        ep("rb", [10, 1, 2, 20], Some("B"), Place::Remote),
        ep("out", [10, 99, 0, 2], None, Place::Outside),
    ]
}

/// Group `g` has policy `p<g>` (groups A and C also `shared`).
pub fn input(rules: &[Rule]) -> HostInput {
    let mut input = HostInput::new(
        ROUTER_MAC,
        GatewayPort {
            ofport: GW_PORT,
            mac: GW_MAC,
        },
    );
    input.tenants.push(TenantInput {
        name: TENANT.into(),
        vrf: 7,
        zone: 7,
    });
    for (name, subnet) in NETWORKS {
        input.networks.push(NetworkInput {
            tenant: TENANT.into(),
            name: name.into(),
            subnet: subnet.parse().unwrap(),
            gateway: None,
        });
    }
    for (name, id) in GROUPS {
        let mut policies = vec![format!("p{name}")];
        if name == "A" || name == "C" {
            policies.push("shared".into());
        }
        input.groups.push(GroupInput {
            tenant: TENANT.into(),
            name: name.into(),
            id,
            policies,
        });
    }
    input.rules = rules.to_vec();
    for e in eps() {
        let group = e.group.map(group_id).unwrap_or(0);
        match e.place {
            Place::Local(ofport) => input.local_endpoints.push(LocalEndpoint {
                ofport,
                mac: e.mac(),
                ipv4: e.ip,
                tenant: TENANT.into(),
                group,
            }),
            Place::Remote => input.remote_endpoints.push(RemoteEndpoint {
                ipv4: e.ip,
                tenant: TENANT.into(),
                group,
            }),
            Place::Outside => {}
        }
    }
    input
}

/// A rule of policy `policy`.
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

/// The policies of group `g` (the same attachment as [`input`]).
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

fn peer_matches(r: &Rule, peer: &Ep) -> bool {
    let (group, net, ip) = if r.direction == "in" {
        (&r.from_endpoint_group, &r.from_network, &r.from_ip_address)
    } else {
        (&r.to_endpoint_group, &r.to_network, &r.to_ip_address)
    };
    if !group.is_empty() {
        return peer.group == Some(group.as_str());
    }
    if !net.is_empty() {
        let subnet = NETWORKS.iter().find(|n| n.0 == net).unwrap().1;
        return addr_matches(subnet, peer.ip);
    }
    if !ip.is_empty() {
        return addr_matches(ip, peer.ip);
    }
    true
}

fn rule_matches(r: &Rule, peer: &Ep, probe: Probe) -> bool {
    let proto_ok = match r.protocol.as_str() {
        "" => true,
        "tcp" => probe.proto() == 6,
        "udp" => probe.proto() == 17,
        "icmp" => probe.proto() == 1,
        n => n.parse::<u8>().unwrap() == probe.proto(),
    };
    let port_ok = r.port == 0 || probe.port().map(i64::from) == Some(r.port);
    proto_ok && port_ok && peer_matches(r, peer)
}

/// The verdict of one direction for group `g`: highest priority wins, deny wins ties, default
/// allow.
fn verdict(rules: &[Rule], g: Option<&str>, dir: &str, peer: &Ep, probe: Probe) -> bool {
    let Some(g) = g else { return true };
    let pols = policies_of(g);
    let best = rules
        .iter()
        .filter(|r| r.direction == dir && pols.contains(&r.policy_name))
        .filter(|r| rule_matches(r, peer, probe))
        .map(|r| (r.priority, r.action == "deny"))
        .max();
    match best {
        None => true,
        Some((_, deny)) => !deny,
    }
}

/// Is a new connection `src` → `dst` allowed on this host?
pub fn allowed(rules: &[Rule], src: &Ep, dst: &Ep, probe: Probe) -> bool {
    let egress =
        !matches!(src.place, Place::Local(_)) || verdict(rules, src.group, "out", dst, probe);
    let ingress =
        !matches!(dst.place, Place::Local(_)) || verdict(rules, dst.group, "in", src, probe);
    egress && ingress
}

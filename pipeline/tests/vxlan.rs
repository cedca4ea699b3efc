//! The VXLAN variant through the simulator, on two hosts: two tenants reuse one subnet and the
//! same addresses; packets leaving host 0's VXLAN port are decapsulated into host 1's pipeline
//! (and back), so the tests assert where packets end up (port, VTEP, VNI), not flow text.

use std::net::Ipv4Addr;

use fabric_model::Rule;
use pipeline::sim::{Conntrack, Outcome, Packet, Tables, L3, L4};
use pipeline::{
    CompileError, FloodList, GatewayPort, GroupInput, HostInput, LocalEndpoint, NetworkInput,
    NetworkVni, TenantInput, VxlanInput, VxlanRemote,
};
use proptest::prelude::*;

const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const VX_PORT: u32 = 50;
const GW_PORT: u32 = 100;
const BCAST: [u8; 6] = [0xff; 6];

fn vtep(host: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, 1 + host as u8)
}

/// (tenant, network, subnet, VNI)
const NETS: [(&str, &str, &str, u32); 3] = [
    ("t1", "net", "10.1.1.0/24", 5001),
    ("t1", "net2", "10.1.2.0/24", 5003),
    ("t2", "net", "10.1.1.0/24", 5002),
];

#[derive(Clone, Copy, Debug)]
struct Ep {
    name: &'static str,
    tenant: &'static str,
    host: usize,
    port: u32,
    ip: [u8; 4],
    group: u32,
}

impl Ep {
    fn ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.ip)
    }
    fn mac(&self) -> [u8; 6] {
        [
            0x02,
            0xaa,
            self.host as u8,
            self.port as u8,
            self.ip[2],
            self.ip[3],
        ]
    }
    fn vni(&self) -> u32 {
        NETS.iter()
            .find(|(t, _, s, _)| {
                *t == self.tenant && s.parse::<ipnet::Ipv4Net>().unwrap().contains(&self.ip())
            })
            .unwrap()
            .3
    }
}

/// t1: groups A (11), B (12); t2: X (21). Addresses 10.1.1.2 and 10.1.1.4 are in both tenants.
const EPS: [Ep; 8] = [
    ep("a1", "t1", 0, 1, [10, 1, 1, 2], 11),
    ep("b1", "t1", 0, 2, [10, 1, 1, 3], 12),
    ep("a2", "t1", 1, 1, [10, 1, 1, 4], 11),
    ep("b2", "t1", 1, 2, [10, 1, 1, 5], 12),
    ep("c2", "t1", 1, 5, [10, 1, 2, 2], 12),
    ep("x1", "t2", 0, 3, [10, 1, 1, 2], 21),
    ep("x2", "t2", 1, 3, [10, 1, 1, 4], 21),
    ep("z2", "t2", 1, 4, [10, 1, 1, 9], 0),
];

const fn ep(
    name: &'static str,
    tenant: &'static str,
    host: usize,
    port: u32,
    ip: [u8; 4],
    group: u32,
) -> Ep {
    Ep {
        name,
        tenant,
        host,
        port,
        ip,
        group,
    }
}

fn by_name(n: &str) -> Ep {
    *EPS.iter().find(|e| e.name == n).unwrap()
}

/// Host `h`'s input: its own endpoints local, the other host's as EVPN type-2 routes, flood
/// lists as type-3 routes (host 2 only hosts VNI 5001: it shows flooding follows the list).
fn input(h: usize, rules: &[Rule]) -> HostInput {
    let mut i = HostInput::new(
        ROUTER_MAC,
        GatewayPort {
            ofport: GW_PORT,
            mac: [0x02, 0, 0, 0, 0, 0xfe],
        },
    );
    i.tenants = vec![
        TenantInput {
            name: "t1".into(),
            vrf: 1,
            zone: 1,
        },
        TenantInput {
            name: "t2".into(),
            vrf: 2,
            zone: 2,
        },
    ];
    let mut vnis = Vec::new();
    for (t, n, s, vni) in NETS {
        let subnet: ipnet::Ipv4Net = s.parse().unwrap();
        i.networks.push(NetworkInput {
            tenant: t.into(),
            name: n.into(),
            subnet,
            gateway: Some(subnet.hosts().next().unwrap()),
        });
        vnis.push(NetworkVni {
            tenant: t.into(),
            network: n.into(),
            vni: Some(vni),
        });
    }
    for (t, g, id, pol) in [
        ("t1", "A", 11, "pA"),
        ("t1", "B", 12, "pB"),
        ("t2", "X", 21, "pX"),
    ] {
        i.groups.push(GroupInput {
            tenant: t.into(),
            name: g.into(),
            id,
            policies: if pol.is_empty() {
                vec![]
            } else {
                vec![pol.into()]
            },
        });
    }
    i.rules = rules.to_vec();
    let mut remotes = Vec::new();
    for e in EPS {
        if e.host == h {
            i.local_endpoints.push(LocalEndpoint {
                ofport: e.port,
                mac: e.mac(),
                ipv4: e.ip(),
                tenant: e.tenant.into(),
                group: e.group,
            });
        } else {
            remotes.push(VxlanRemote {
                vni: e.vni(),
                mac: e.mac(),
                ipv4: e.ip(),
                vtep: Some(vtep(e.host)),
                group: e.group,
            });
        }
    }
    i.vxlan = Some(VxlanInput {
        ofport: VX_PORT,
        local_vtep: Some(vtep(h)),
        vnis,
        remote_endpoints: remotes,
        flood_lists: vec![
            FloodList {
                vni: 5001,
                vteps: vec![vtep(0), vtep(1), vtep(2)],
            },
            FloodList {
                vni: 5002,
                vteps: vec![vtep(0), vtep(1)],
            },
            FloodList {
                vni: 5003,
                vteps: vec![vtep(1)],
            },
        ],
    });
    i
}

struct Fabric {
    hosts: Vec<Vec<openflow::Flow>>,
}

impl Fabric {
    fn new(rules: &[Rule]) -> Self {
        let hosts = (0..2)
            .map(|h| {
                let c = pipeline::compile(&input(h, rules)).unwrap();
                assert!(c.warnings.is_empty(), "{:?}", c.warnings);
                c.flows.into_iter().collect()
            })
            .collect();
        Fabric { hosts }
    }

    fn tables(&self, h: usize) -> Tables<'_> {
        Tables::new(&self.hosts[h])
    }
}

/// Where a packet ended up after at most one tunnel crossing.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Delivered to (host, port), with the packet as delivered.
    Port(usize, u32, Packet),
    Dropped,
}

fn host_of(v: Ipv4Addr) -> Option<usize> {
    (0..3).find(|h| vtep(*h) == v)
}

/// Sends `pkt` in at host `h` (from a local port, or from the tunnel with `vni`); follows
/// every tunnelled copy into the destination host's pipeline.
fn deliver(
    fab: &Fabric,
    h: usize,
    pkt: Packet,
    vni: Option<u32>,
    cts: &mut [Conntrack],
) -> Vec<End> {
    let tables = fab.tables(h);
    let out: Outcome = match vni {
        None => tables.run(pkt, &mut cts[h]).unwrap(),
        Some(v) => tables.run_tunnelled(pkt, v, &mut cts[h]).unwrap(),
    };
    let mut ends = Vec::new();
    for s in &out.sent {
        if s.port == VX_PORT {
            assert!(vni.is_none(), "tunnelled packet sent back into the tunnel");
            let dst = s
                .tun_dst
                .and_then(host_of)
                .expect("tun_dst is a known VTEP");
            if dst >= fab.hosts.len() {
                continue; // host 2 has no pipeline here
            }
            let decap = Packet {
                in_port: VX_PORT,
                ..s.packet
            };
            ends.extend(deliver(fab, dst, decap, Some(s.tun_id as u32), cts));
        } else {
            ends.push(End::Port(h, s.port, s.packet));
        }
    }
    if ends.is_empty() {
        ends.push(End::Dropped);
    }
    ends
}

fn ip_packet(src: &Ep, dst: &Ep, l4: L4) -> Packet {
    // Same network: bridged to the destination's MAC; otherwise to the router.
    let eth_dst = if src.vni() == dst.vni() {
        dst.mac()
    } else {
        ROUTER_MAC
    };
    Packet::ipv4(src.port, src.mac(), eth_dst, src.ip(), dst.ip(), l4)
}

const TCP80: L4 = L4::Tcp {
    src: 40000,
    dst: 80,
};
const PING: L4 = L4::Icmp { kind: 8, code: 0 };

fn send(fab: &Fabric, src: &Ep, dst: &Ep, l4: L4) -> Vec<End> {
    let mut cts = vec![Conntrack::default(), Conntrack::default()];
    deliver(fab, src.host, ip_packet(src, dst, l4), None, &mut cts)
}

#[test]
fn within_a_tenant_every_pair_is_delivered_local_and_across_the_tunnel() {
    let fab = Fabric::new(&[]);
    for src in EPS.iter().filter(|e| e.host < 2) {
        for dst in EPS
            .iter()
            .filter(|d| d.tenant == src.tenant && d.name != src.name)
        {
            for l4 in [TCP80, PING] {
                let mut cts = vec![Conntrack::default(), Conntrack::default()];
                let pkt = ip_packet(src, dst, l4);
                let ends = deliver(&fab, src.host, pkt, None, &mut cts);
                let [End::Port(h, p, got)] = &ends[..] else {
                    panic!("{} -> {}: {ends:?}", src.name, dst.name);
                };
                assert_eq!(
                    (*h, *p),
                    (dst.host, dst.port),
                    "{} -> {}",
                    src.name,
                    dst.name
                );
                assert_eq!(got.eth_dst, dst.mac(), "{} -> {}", src.name, dst.name);
                let L3::Ipv4 { ttl, .. } = got.l3 else {
                    panic!()
                };
                if src.vni() == dst.vni() {
                    // Bridged: MACs and TTL as sent.
                    assert_eq!((got.eth_src, ttl), (src.mac(), 64));
                } else {
                    // Routed once, on the sending host (asymmetric IRB).
                    assert_eq!((got.eth_src, ttl), (ROUTER_MAC, 63));
                }
                // The reply comes back through the same hosts.
                let reply = pkt.reply(dst.port, dst.mac(), ip_packet(dst, src, l4).eth_dst);
                let back = deliver(&fab, dst.host, reply, None, &mut cts);
                assert!(
                    matches!(&back[..], [End::Port(h, p, _)] if (*h, *p) == (src.host, src.port)),
                    "reply {} -> {}: {back:?}",
                    dst.name,
                    src.name
                );
            }
        }
    }
}

#[test]
fn remote_destination_leaves_with_its_vtep_and_vni() {
    let fab = Fabric::new(&[]);
    let (a1, a2, c2, x1, x2) = (
        by_name("a1"),
        by_name("a2"),
        by_name("c2"),
        by_name("x1"),
        by_name("x2"),
    );
    let run = |s: &Ep, d: &Ep| {
        fab.tables(0)
            .run(ip_packet(s, d, TCP80), &mut Conntrack::default())
            .unwrap()
            .sent
    };
    // Same address 10.1.1.4 in both tenants: each source reaches its own tenant's endpoint.
    let s = run(&a1, &a2);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].port, s[0].tun_id, s[0].tun_dst),
        (VX_PORT, 5001, Some(vtep(1)))
    );
    let s = run(&x1, &x2);
    assert_eq!(
        (s[0].port, s[0].tun_id, s[0].tun_dst),
        (VX_PORT, 5002, Some(vtep(1)))
    );
    assert_eq!(s[0].packet.eth_dst, x2.mac());
    // Routed to another network of the tenant: the destination network's VNI.
    let s = run(&a1, &c2);
    assert_eq!(
        (s[0].port, s[0].tun_id, s[0].tun_dst),
        (VX_PORT, 5003, Some(vtep(1)))
    );
}

#[test]
fn across_tenants_nothing_passes() {
    let fab = Fabric::new(&[]);
    // Every source towards every address of the other tenant, and forged MACs: whatever is
    // delivered is in the source's own tenant (shared addresses) or nothing at all.
    for src in EPS.iter().filter(|e| e.host < 2) {
        for dst in EPS.iter().filter(|d| d.tenant != src.tenant) {
            for l4 in [TCP80, PING] {
                for eth_dst in [dst.mac(), ROUTER_MAC] {
                    let mut pkt = ip_packet(src, dst, l4);
                    pkt.eth_dst = eth_dst;
                    let mut cts = vec![Conntrack::default(), Conntrack::default()];
                    for end in deliver(&fab, src.host, pkt, None, &mut cts) {
                        if let End::Port(h, p, _) = end {
                            let got = EPS.iter().find(|e| (e.host, e.port) == (h, p)).unwrap();
                            assert_eq!(got.tenant, src.tenant, "{} -> {}", src.name, dst.name);
                        }
                    }
                }
            }
        }
    }
    // An address only t2 has: nothing for t1.
    let (a1, z2) = (by_name("a1"), by_name("z2"));
    assert_eq!(send(&fab, &a1, &z2, PING), vec![End::Dropped]);
    // A tunnelled packet with t1's VNI cannot reach t2's endpoint at the same address.
    let x1 = by_name("x1");
    let mut pkt = ip_packet(&by_name("a2"), &x1, PING);
    pkt.in_port = VX_PORT;
    let mut cts = vec![Conntrack::default(), Conntrack::default()];
    let ends = deliver(&fab, 0, pkt, Some(5001), &mut cts);
    assert!(
        matches!(&ends[..], [End::Port(0, 1, _)]),
        "10.1.1.2 in VNI 5001 is t1's a1: {ends:?}"
    );
    // An unknown VNI is dropped.
    assert_eq!(
        deliver(&fab, 0, pkt, Some(7777), &mut cts),
        vec![End::Dropped]
    );
}

fn deny_a_into_b() -> Vec<Rule> {
    vec![Rule {
        tenant_name: "t1".into(),
        policy_name: "pB".into(),
        rule_id: "1".into(),
        direction: "in".into(),
        priority: 5,
        protocol: "tcp".into(),
        from_endpoint_group: "A".into(),
        action: "deny".into(),
        ..Rule::default()
    }]
}

#[test]
fn in_deny_at_the_destination_drops_a_remote_source_of_the_denied_group() {
    let fab = Fabric::new(&deny_a_into_b());
    let (a1, a2, b1, b2, x2, x1) = (
        by_name("a1"),
        by_name("a2"),
        by_name("b1"),
        by_name("b2"),
        by_name("x2"),
        by_name("x1"),
    );
    // a2 (group A, host 1) → b1 (group B, host 0): leaves host 1 (no `out` rule there)...
    let s = fab
        .tables(1)
        .run(ip_packet(&a2, &b1, TCP80), &mut Conntrack::default())
        .unwrap();
    assert_eq!(s.outputs, vec![VX_PORT]);
    // ...and is dropped at host 0, which knows a2's group from its EVPN route.
    assert_eq!(send(&fab, &a2, &b1, TCP80), vec![End::Dropped]);
    assert_eq!(send(&fab, &a1, &b1, TCP80), vec![End::Dropped]);
    assert_eq!(send(&fab, &a1, &b2, TCP80), vec![End::Dropped]);
    // Other protocols, other groups, the other tenant at the same addresses: delivered.
    assert!(matches!(
        &send(&fab, &a2, &b1, PING)[..],
        [End::Port(0, 2, _)]
    ));
    assert!(matches!(
        &send(&fab, &b2, &b1, TCP80)[..],
        [End::Port(0, 2, _)]
    ));
    assert!(matches!(
        &send(&fab, &x2, &x1, TCP80)[..],
        [End::Port(0, 3, _)]
    ));
    // b1 → a2 is allowed, and a2's replies pass although A → B TCP is denied.
    let mut cts = vec![Conntrack::default(), Conntrack::default()];
    let pkt = ip_packet(&b1, &a2, TCP80);
    assert!(matches!(
        &deliver(&fab, 0, pkt, None, &mut cts)[..],
        [End::Port(1, 1, _)]
    ));
    let reply = pkt.reply(a2.port, a2.mac(), b1.mac());
    assert!(matches!(
        &deliver(&fab, 1, reply, None, &mut cts)[..],
        [End::Port(0, 2, _)]
    ));
}

fn arp_request(src: &Ep, tpa: Ipv4Addr) -> Packet {
    Packet {
        in_port: src.port,
        eth_src: src.mac(),
        eth_dst: BCAST,
        l3: L3::Arp {
            op: 1,
            sha: src.mac(),
            spa: src.ip(),
            tha: [0; 6],
            tpa,
        },
    }
}

#[test]
fn known_endpoints_and_the_gateway_are_answered_locally() {
    let fab = Fabric::new(&[]);
    let t = fab.tables(0);
    let (a1, b1, a2, x1, x2) = (
        by_name("a1"),
        by_name("b1"),
        by_name("a2"),
        by_name("x1"),
        by_name("x2"),
    );
    let gw: Ipv4Addr = "10.1.1.1".parse().unwrap();
    // (asker, address, the MAC it must get): local, remote, gateway; the same address in the
    // two tenants answered with each tenant's own endpoint.
    for (asker, tpa, mac) in [
        (&a1, b1.ip(), b1.mac()),
        (&a1, a2.ip(), a2.mac()),
        (&x1, x2.ip(), x2.mac()),
        (&a1, gw, ROUTER_MAC),
        (&x1, gw, ROUTER_MAC),
    ] {
        let out = t
            .run(arp_request(asker, tpa), &mut Conntrack::default())
            .unwrap();
        assert_eq!(out.outputs, vec![asker.port], "{} asks {tpa}", asker.name);
        assert_eq!(
            out.packet.l3,
            L3::Arp {
                op: 2,
                sha: mac,
                spa: tpa,
                tha: asker.mac(),
                tpa: asker.ip()
            }
        );
        assert_eq!((out.packet.eth_src, out.packet.eth_dst), (mac, asker.mac()));
    }
}

#[test]
fn bum_goes_only_to_the_flood_list_of_its_vni() {
    let fab = Fabric::new(&[]);
    let t = fab.tables(0);
    let (a1, x1) = (by_name("a1"), by_name("x1"));
    let unknown: Ipv4Addr = "10.1.1.77".parse().unwrap();
    let vteps = |out: &Outcome| {
        let mut v: Vec<(u32, u64, Option<Ipv4Addr>)> = out
            .sent
            .iter()
            .map(|s| (s.port, s.tun_id, s.tun_dst))
            .collect();
        v.sort();
        v
    };
    // t1's VNI 5001: hosts 1 and 2 (not ourselves), and b1, the other local port of the VNI.
    let out = t
        .run(arp_request(&a1, unknown), &mut Conntrack::default())
        .unwrap();
    assert_eq!(
        vteps(&out),
        vec![
            (2, 5001, None),
            (VX_PORT, 5001, Some(vtep(1))),
            (VX_PORT, 5001, Some(vtep(2)))
        ]
    );
    // t2's VNI 5002: host 1 only; no local port of t1.
    let out = t
        .run(arp_request(&x1, unknown), &mut Conntrack::default())
        .unwrap();
    assert_eq!(vteps(&out), vec![(VX_PORT, 5002, Some(vtep(1)))]);
    // A broadcast from the tunnel reaches the VNI's local ports, never the tunnel again.
    let mut req = arp_request(&by_name("a2"), unknown);
    req.in_port = VX_PORT;
    let out = t
        .run_tunnelled(req, 5001, &mut Conntrack::default())
        .unwrap();
    let mut ports = out.outputs.clone();
    ports.sort();
    assert_eq!(ports, vec![1, 2]);
    let out = t
        .run_tunnelled(req, 5002, &mut Conntrack::default())
        .unwrap();
    assert_eq!(out.outputs, vec![3]);
    // The answer from a local container goes back by the requester's MAC to its VTEP.
    let a2 = by_name("a2");
    let reply = Packet {
        in_port: 1,
        eth_src: a1.mac(),
        eth_dst: a2.mac(),
        l3: L3::Arp {
            op: 2,
            sha: a1.mac(),
            spa: a1.ip(),
            tha: a2.mac(),
            tpa: a2.ip(),
        },
    };
    let out = t.run(reply, &mut Conntrack::default()).unwrap();
    assert_eq!(vteps(&out), vec![(VX_PORT, 5001, Some(vtep(1)))]);
}

#[test]
fn bad_vxlan_input_is_an_error_naming_it() {
    let mut i = input(0, &[]);
    i.vxlan.as_mut().unwrap().vnis[0].vni = None;
    let e = pipeline::compile(&i).unwrap_err();
    assert_eq!(
        e,
        CompileError::NetworkWithoutVni {
            network: "t1:net".into()
        }
    );
    assert!(e.to_string().contains("t1:net"), "{e}");

    let mut i = input(0, &[]);
    i.vxlan.as_mut().unwrap().remote_endpoints[0].vtep = None;
    let e = pipeline::compile(&i).unwrap_err();
    assert!(
        matches!(e, CompileError::RemoteWithoutVtep { vni: 5001, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("10.1.1.4"), "{e}");

    let mut i = input(0, &[]);
    i.vxlan.as_mut().unwrap().vnis[2].vni = Some(5001);
    assert!(matches!(
        pipeline::compile(&i).unwrap_err(),
        CompileError::BadVni { vni: 5001, .. }
    ));

    let mut i = input(0, &[]);
    i.vxlan.as_mut().unwrap().ofport = 1;
    assert!(matches!(
        pipeline::compile(&i).unwrap_err(),
        CompileError::VxlanPort { ofport: 1, .. }
    ));
}

#[test]
fn compiling_twice_gives_the_same_flows() {
    let i = input(0, &deny_a_into_b());
    assert_eq!(
        pipeline::compile(&i).unwrap(),
        pipeline::compile(&i).unwrap()
    );
}

/// The policy semantics of the crate docs, written from them for this fixture: the
/// highest-priority matching rule of the group's policy decides, deny wins a tie, no rule
/// allows; `out` rules of the source's group, then `in` rules of the destination's.
fn model_allows(rules: &[Rule], src: &Ep, dst: &Ep, l4: L4) -> bool {
    let policy = |g: u32| match g {
        11 => "pA",
        12 => "pB",
        21 => "pX",
        _ => "",
    };
    let group = |name: &str| match name {
        "A" => 11,
        "B" => 12,
        _ => 0,
    };
    let decide = |dir: &str, own: &Ep, peer: &Ep| {
        let mut best: Option<(i64, bool)> = None;
        for r in rules.iter().filter(|r| {
            r.tenant_name == own.tenant && r.policy_name == policy(own.group) && r.direction == dir
        }) {
            let (pg, pn, pi) = if dir == "in" {
                (&r.from_endpoint_group, &r.from_network, &r.from_ip_address)
            } else {
                (&r.to_endpoint_group, &r.to_network, &r.to_ip_address)
            };
            let peer_ok = if !pg.is_empty() {
                group(pg) == peer.group && peer.tenant == "t1"
            } else if !pn.is_empty() {
                NETS.iter().any(|(t, n, s, _)| {
                    *t == own.tenant
                        && n == pn
                        && s.parse::<ipnet::Ipv4Net>().unwrap().contains(&peer.ip())
                })
            } else if !pi.is_empty() {
                let p = if pi.contains('/') {
                    pi.clone()
                } else {
                    format!("{pi}/32")
                };
                p.parse::<ipnet::Ipv4Net>().unwrap().contains(&peer.ip())
            } else {
                true
            };
            let proto_ok = match (r.protocol.as_str(), l4) {
                ("", _) => true,
                ("tcp", L4::Tcp { dst, .. }) | ("udp", L4::Udp { dst, .. }) => {
                    r.port == 0 || r.port == i64::from(dst)
                }
                ("icmp", L4::Icmp { .. }) => true,
                _ => false,
            };
            if peer_ok && proto_ok {
                let deny = r.action == "deny";
                let cand = (r.priority, deny);
                if best.is_none_or(|b| cand > b) {
                    best = Some(cand);
                }
            }
        }
        !best.is_some_and(|(_, deny)| deny)
    };
    decide("out", src, dst) && decide("in", dst, src)
}

const PROBES: [L4; 4] = [
    L4::Tcp {
        src: 40000,
        dst: 80,
    },
    L4::Tcp {
        src: 40000,
        dst: 8888,
    },
    L4::Udp {
        src: 40000,
        dst: 53,
    },
    L4::Icmp { kind: 8, code: 0 },
];

/// Every pair of t1 (local and across the tunnel) × every probe against the model; an allowed
/// connection's reply comes back, a denied one reaches nothing.
fn truth_table(rules: &[Rule]) -> Result<(), String> {
    let fab = Fabric::new(rules);
    for src in EPS.iter().filter(|e| e.tenant == "t1") {
        for dst in EPS
            .iter()
            .filter(|d| d.tenant == "t1" && d.name != src.name)
        {
            for l4 in PROBES {
                let want = model_allows(rules, src, dst, l4);
                let mut cts = vec![Conntrack::default(), Conntrack::default()];
                let pkt = ip_packet(src, dst, l4);
                let ends = deliver(&fab, src.host, pkt, None, &mut cts);
                let got =
                    matches!(&ends[..], [End::Port(h, p, _)] if (*h, *p) == (dst.host, dst.port));
                if got != want || (!got && ends != vec![End::Dropped]) {
                    return Err(format!(
                        "{} -> {} {l4:?}: model {want}, pipeline {ends:?}",
                        src.name, dst.name
                    ));
                }
                if got {
                    let reply = pkt.reply(dst.port, dst.mac(), ip_packet(dst, src, l4).eth_dst);
                    let back = deliver(&fab, dst.host, reply, None, &mut cts);
                    if !matches!(&back[..], [End::Port(h, p, _)] if (*h, *p) == (src.host, src.port))
                    {
                        return Err(format!(
                            "reply {} -> {} {l4:?}: {back:?}",
                            dst.name, src.name
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn rule(
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
        tenant_name: "t1".into(),
        policy_name: policy.into(),
        rule_id: id.into(),
        direction: dir.into(),
        priority: prio,
        protocol: proto.into(),
        port,
        action: action.into(),
        ..Rule::default()
    };
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

#[test]
fn policy_truth_tables_across_the_tunnel() {
    truth_table(&[]).unwrap();
    // Contiv's tutorial on group B: TCP denied but 8888.
    truth_table(&[
        rule("pB", "1", "in", 1, "tcp", 0, "", "deny"),
        rule("pB", "2", "in", 10, "tcp", 8888, "", "allow"),
    ])
    .unwrap();
    // Every peer kind, both directions, priorities and ties.
    truth_table(&[
        rule("pA", "1", "out", 5, "tcp", 0, "group:B", "deny"),
        rule("pA", "2", "out", 6, "tcp", 8888, "group:B", "allow"),
        rule("pA", "3", "out", 3, "udp", 0, "net:net2", "deny"),
        rule("pA", "4", "out", 3, "icmp", 0, "ip:10.1.1.4/31", "deny"),
        rule("pB", "1", "in", 4, "udp", 53, "group:A", "deny"),
        rule("pB", "2", "in", 4, "udp", 53, "group:A", "allow"),
        rule("pB", "3", "in", 2, "icmp", 0, "net:net", "deny"),
        rule("pB", "4", "in", 7, "", 0, "ip:10.1.2.2", "deny"),
    ])
    .unwrap();
}

fn arb_rule() -> impl Strategy<Value = (String, String, i64, String, i64, String, String)> {
    (
        prop::sample::select(vec!["pA", "pB"]),
        prop::sample::select(vec!["in", "out"]),
        1i64..5,
        prop::sample::select(vec!["tcp", "udp", "icmp", ""]),
        prop::sample::select(vec![0i64, 80, 53]),
        prop::sample::select(vec![
            "",
            "group:A",
            "group:B",
            "net:net",
            "net:net2",
            "ip:10.1.1.4/31",
            "ip:10.1.2.2",
        ]),
        prop::sample::select(vec!["allow", "deny"]),
    )
        .prop_map(|(p, d, pr, proto, port, peer, a)| {
            let port = if proto == "tcp" || proto == "udp" {
                port
            } else {
                0
            };
            (
                p.into(),
                d.into(),
                pr,
                proto.into(),
                port,
                peer.into(),
                a.into(),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_rules_agree_with_the_model(specs in prop::collection::vec(arb_rule(), 0..6)) {
        let rules: Vec<Rule> = specs
            .iter()
            .enumerate()
            .map(|(i, (p, d, pr, proto, port, peer, a))| {
                rule(p, &i.to_string(), d, *pr, proto, *port, peer, a)
            })
            .collect();
        truth_table(&rules).map_err(TestCaseError::fail)?;
    }
}

//! The compiler without OVS: compiled flows run through the interpreter in `pipeline::sim`,
//! compared with the independent model of `common` (fixed cases and a property test).

mod common;

use std::collections::BTreeSet;

use common::*;
use fabric_model::Rule;
use openflow::FlowKey;
use pipeline::sim::{Conntrack, Packet, Tables, L3, L4};
use proptest::prelude::*;

/// The standard fixture's input.
fn input(rules: &[Rule]) -> pipeline::HostInput {
    Fixture::standard().input(rules)
}

/// An endpoint of the standard fixture.
fn ep_(name: &str) -> Ep {
    Fixture::standard().ep(name).clone()
}

fn packet(src: &Ep, dst: &Ep, probe: Probe) -> Packet {
    let l4 = match probe {
        Probe::Tcp(p) => L4::Tcp { src: 40000, dst: p },
        Probe::Udp(p) => L4::Udp { src: 40000, dst: p },
        Probe::Ping => L4::Icmp { kind: 8, code: 0 },
    };
    let (port, mac) = match src.port() {
        Some(p) => (p, src.mac()),
        None => (GW_PORT, GW_MAC),
    };
    Packet::ipv4(port, mac, ROUTER_MAC, src.ip, dst.ip, l4)
}

/// Where the network delivers a packet for `dst` from this host (`None`: nowhere).
fn expected_port(src: &Ep, dst: &Ep) -> Option<u32> {
    match (src.place, dst.place) {
        (_, Place::Local(p)) => Some(p),
        (Place::Local(_), _) => Some(GW_PORT),
        _ => None, // gateway to gateway: not ours
    }
}

/// Sends `src` → `dst`, and if it got through, the reply; checks both against the model.
fn check(
    fx: &Fixture,
    tables: &Tables,
    rules: &[Rule],
    src: &Ep,
    dst: &Ep,
    probe: Probe,
) -> Result<(), String> {
    let Some(port) = expected_port(src, dst) else {
        return Ok(());
    };
    let mut ct = Conntrack::default();
    let pkt = packet(src, dst, probe);
    let out = tables.run(pkt, &mut ct).map_err(|e| e.to_string())?;
    let want = fx.allowed(rules, src, dst, probe);
    let got = out.outputs == vec![port];
    if got != want || (!got && !out.outputs.is_empty()) {
        return Err(format!(
            "{} -> {} {probe:?}: model says {want}, pipeline sent to {:?} (trace {:?})",
            src.name, dst.name, out.outputs, out.trace
        ));
    }
    if !got {
        return Ok(());
    }
    let wanted_dst_mac = if port == GW_PORT { GW_MAC } else { dst.mac() };
    if out.packet.eth_src != ROUTER_MAC || out.packet.eth_dst != wanted_dst_mac {
        return Err(format!(
            "{} -> {}: MACs not rewritten: {:?}",
            src.name, dst.name, out.packet
        ));
    }
    // The reply passes whatever the rules say of the reverse direction.
    let (rport, rmac) = match dst.port() {
        Some(p) => (p, dst.mac()),
        None => (GW_PORT, GW_MAC),
    };
    let reply = pkt.reply(rport, rmac, ROUTER_MAC);
    let back = tables.run(reply, &mut ct).map_err(|e| e.to_string())?;
    let back_port = src.port().unwrap_or(GW_PORT);
    if back.outputs != vec![back_port] {
        return Err(format!(
            "reply {} -> {} {probe:?} not delivered: {:?} (trace {:?})",
            dst.name, src.name, back.outputs, back.trace
        ));
    }
    Ok(())
}

fn check_all(rules: &[Rule]) -> Result<(), String> {
    check_fixture(&Fixture::standard(), rules)
}

/// Every source × destination × probe of `fx` (replies included) against the model.
fn check_fixture(fx: &Fixture, rules: &[Rule]) -> Result<(), String> {
    let compiled = pipeline::compile(&fx.input(rules)).map_err(|e| e.to_string())?;
    let keys: BTreeSet<FlowKey> = compiled.flows.iter().map(|f| f.key()).collect();
    if keys.len() != compiled.flows.len() {
        return Err("two flows share a key".into());
    }
    let tables = Tables::new(&compiled.flows);
    for src in &fx.eps {
        for dst in &fx.eps {
            if src.name == dst.name {
                continue;
            }
            for probe in PROBES {
                check(fx, &tables, rules, src, dst, probe)?;
            }
        }
    }
    Ok(())
}

#[test]
fn no_rules_everything_flows() {
    check_all(&[]).unwrap();
}

#[test]
fn contiv_tutorial_policy() {
    let rules = vec![
        rule("pB", "1", "in", 1, "tcp", 0, "", "deny"),
        rule("pB", "2", "in", 10, "tcp", 8888, "", "allow"),
    ];
    check_all(&rules).unwrap();
    let tables_flows = pipeline::compile(&input(&rules)).unwrap().flows;
    let tables = Tables::new(&tables_flows);
    let (a1, b1) = (&ep_("a1"), &ep_("b1"));
    let run = |p| {
        tables
            .run(packet(a1, b1, p), &mut Conntrack::default())
            .unwrap()
            .outputs
    };
    assert_eq!(run(Probe::Tcp(8888)), vec![2]);
    assert!(run(Probe::Tcp(80)).is_empty());
    assert_eq!(run(Probe::Ping), vec![2]);
}

#[test]
fn rules_of_all_kinds() {
    let rules = vec![
        rule("pA", "1", "out", 5, "tcp", 0, "group:B", "deny"),
        rule("pA", "2", "out", 6, "tcp", 8888, "group:B", "allow"),
        rule("pA", "3", "out", 3, "udp", 0, "net:n2", "deny"),
        rule("pA", "4", "out", 3, "icmp", 0, "ip:10.99.0.0/16", "deny"),
        rule("shared", "1", "in", 9, "", 0, "ip:10.1.1.1-19", "deny"),
        rule("shared", "2", "in", 9, "tcp", 80, "ip:10.1.1.1-19", "allow"),
        rule("pB", "1", "in", 4, "udp", 53, "group:A", "deny"),
        rule("pB", "2", "in", 4, "udp", 53, "group:A", "allow"),
        rule("pC", "1", "in", 2, "icmp", 0, "net:n1", "deny"),
        rule("pC", "2", "out", 2, "1", 0, "", "deny"),
    ];
    check_all(&rules).unwrap();
}

#[test]
fn arp_requests_get_the_router_mac() {
    let compiled = pipeline::compile(&input(&[])).unwrap();
    let tables = Tables::new(&compiled.flows);
    let a1 = ep_("a1");
    let asked = "10.1.1.77".parse().unwrap();
    let req = Packet {
        in_port: 1,
        eth_src: a1.mac(),
        eth_dst: [0xff; 6],
        l3: L3::Arp {
            op: 1,
            sha: a1.mac(),
            spa: a1.ip,
            tha: [0; 6],
            tpa: asked,
        },
    };
    let out = tables.run(req, &mut Conntrack::default()).unwrap();
    assert_eq!(out.outputs, vec![1]);
    assert_eq!(out.packet.eth_dst, a1.mac());
    assert_eq!(out.packet.eth_src, ROUTER_MAC);
    assert_eq!(
        out.packet.l3,
        L3::Arp {
            op: 2,
            sha: ROUTER_MAC,
            spa: asked,
            tha: a1.mac(),
            tpa: a1.ip
        }
    );
    // Gratuitous ARP: no answer. Spoofed sender address: dropped.
    let grat = Packet {
        l3: L3::Arp {
            op: 1,
            sha: a1.mac(),
            spa: a1.ip,
            tha: [0; 6],
            tpa: a1.ip,
        },
        ..req
    };
    assert!(tables
        .run(grat, &mut Conntrack::default())
        .unwrap()
        .outputs
        .is_empty());
    let spoof = Packet {
        l3: L3::Arp {
            op: 1,
            sha: a1.mac(),
            spa: asked,
            tha: [0; 6],
            tpa: a1.ip,
        },
        ..req
    };
    assert!(tables
        .run(spoof, &mut Conntrack::default())
        .unwrap()
        .outputs
        .is_empty());
    // The host kernel asks through the gateway port: answered too.
    let from_gw = Packet {
        in_port: GW_PORT,
        eth_src: GW_MAC,
        l3: L3::Arp {
            op: 1,
            sha: GW_MAC,
            spa: "10.99.0.1".parse().unwrap(),
            tha: [0; 6],
            tpa: a1.ip,
        },
        ..req
    };
    assert_eq!(
        tables
            .run(from_gw, &mut Conntrack::default())
            .unwrap()
            .outputs,
        vec![GW_PORT]
    );
}

#[test]
fn spoof_guard() {
    let compiled = pipeline::compile(&input(&[])).unwrap();
    let tables = Tables::new(&compiled.flows);
    let (a1, b1) = (ep_("a1"), ep_("b1"));
    let mut p = packet(&a1, &b1, Probe::Ping);
    assert_eq!(
        tables.run(p, &mut Conntrack::default()).unwrap().outputs,
        vec![2]
    );
    p.eth_src = b1.mac();
    assert!(tables
        .run(p, &mut Conntrack::default())
        .unwrap()
        .outputs
        .is_empty());
    let mut p = packet(&b1, &a1, Probe::Ping);
    p.in_port = 1;
    assert!(tables
        .run(p, &mut Conntrack::default())
        .unwrap()
        .outputs
        .is_empty());
    // From the gateway, only local destinations.
    let p = packet(&ep_("ra"), &ep_("rb"), Probe::Ping);
    assert!(tables
        .run(p, &mut Conntrack::default())
        .unwrap()
        .outputs
        .is_empty());
}

#[test]
fn established_forward_direction_is_rechecked_reverse_is_not() {
    let (a1, b1) = (ep_("a1"), ep_("b1"));
    let open = pipeline::compile(&input(&[])).unwrap().flows;
    let mut ct = Conntrack::default();
    let syn = packet(&a1, &b1, Probe::Tcp(80));
    assert!(Tables::new(&open).run(syn, &mut ct).unwrap().committed);
    // Deny B → A (new connections from B): the a1 → b1 connection keeps flowing both ways.
    let deny_rev = pipeline::compile(&input(&[rule(
        "pB", "1", "out", 1, "", 0, "group:A", "deny",
    )]))
    .unwrap()
    .flows;
    let t = Tables::new(&deny_rev);
    assert_eq!(t.run(syn, &mut ct).unwrap().outputs, vec![2]);
    assert_eq!(
        t.run(syn.reply(2, b1.mac(), ROUTER_MAC), &mut ct)
            .unwrap()
            .outputs,
        vec![1]
    );
    let new_rev = packet(&b1, &a1, Probe::Tcp(22));
    assert!(t.run(new_rev, &mut ct).unwrap().outputs.is_empty());
    // Deny A → B: the established connection's forward packets stop.
    let deny_fwd = pipeline::compile(&input(&[rule(
        "pB", "1", "in", 1, "tcp", 0, "group:A", "deny",
    )]))
    .unwrap()
    .flows;
    assert!(Tables::new(&deny_fwd)
        .run(syn, &mut ct)
        .unwrap()
        .outputs
        .is_empty());
}

#[test]
fn deterministic_and_stable_conjunction_ids() {
    let rules = vec![
        rule("pA", "1", "out", 5, "tcp", 0, "ip:10.1.2.1-30", "deny"),
        rule("shared", "9", "in", 5, "udp", 0, "ip:10.1.1.0-40", "deny"),
    ];
    let a = pipeline::compile(&input(&rules)).unwrap();
    assert_eq!(a, pipeline::compile(&input(&rules)).unwrap());
    let mut more = rules.clone();
    more.push(rule("pB", "1", "in", 5, "tcp", 0, "ip:10.1.1.1-7", "deny"));
    let b = pipeline::compile(&input(&more)).unwrap();
    assert!(
        a.flows.is_subset(&b.flows),
        "adding a rule changed other rules' flows"
    );
}

#[test]
fn unknown_references_warn_and_match_nothing() {
    let rules = vec![rule("pA", "1", "out", 5, "", 0, "group:nope", "deny")];
    let c = pipeline::compile(&input(&rules)).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let bad = vec![rule("pA", "1", "sideways", 5, "", 0, "", "deny")];
    assert!(pipeline::compile(&input(&bad)).is_err());
}

/// The standard fixture compiled with `rules`, and its tables.
struct Host {
    fx: Fixture,
    flows: BTreeSet<openflow::Flow>,
}

impl Host {
    fn new(fx: Fixture, rules: &[Rule]) -> Host {
        let flows = pipeline::compile(&fx.input(rules)).unwrap().flows;
        Host { fx, flows }
    }

    /// Probes (first packets of new connections) from `src` to `dst` that arrive where the
    /// network would deliver them.
    fn passing(&self, src: &str, dst: &str) -> Vec<Probe> {
        let (s, d) = (self.fx.ep(src), self.fx.ep(dst));
        let port = expected_port(s, d).expect("a pair this host routes");
        let tables = Tables::new(&self.flows);
        PROBES
            .into_iter()
            .filter(|p| {
                let out = tables
                    .run(packet(s, d, *p), &mut Conntrack::default())
                    .unwrap();
                out.outputs == vec![port]
            })
            .collect()
    }

    fn assert_blocked(&self, pairs: &[(&str, &str)]) {
        for (s, d) in pairs {
            for (a, b) in [(s, d), (d, s)] {
                assert_eq!(self.passing(a, b), vec![], "{a} -> {b} must be dropped");
            }
        }
    }

    fn assert_open(&self, pairs: &[(&str, &str)]) {
        for (s, d) in pairs {
            for (a, b) in [(s, d), (d, s)] {
                assert_eq!(self.passing(a, b), PROBES, "{a} -> {b} must pass");
            }
        }
    }
}

#[test]
fn tenants_isolated_on_one_host() {
    let h = Host::new(Fixture::standard(), &[]);
    h.assert_blocked(&[("a1", "e1"), ("x1", "e1"), ("c1", "e1")]);
    h.assert_open(&[("a1", "b1"), ("a1", "c1"), ("x1", "a2")]);
    check_all(&[]).unwrap();
}

#[test]
fn tenants_isolated_through_the_gateway_both_directions() {
    let h = Host::new(Fixture::standard(), &[]);
    // This host as the destination's host (from gw0) and as the source's (to gw0).
    h.assert_blocked(&[("re", "a1"), ("re", "x1"), ("ra", "e1"), ("rb", "e1")]);
    h.assert_open(&[("ra", "a1"), ("rb", "c1"), ("re", "e1")]);
    // A local container's packet that another host's kernel brought back through gw0 (its
    // source's host did not drop it): dropped here by its source address.
    let fx = Fixture::standard();
    let (a1, e1) = (fx.ep("a1"), fx.ep("e1"));
    let mut p = packet(a1, e1, Probe::Tcp(80));
    (p.in_port, p.eth_src) = (GW_PORT, GW_MAC);
    let out = Tables::new(&h.flows)
        .run(p, &mut Conntrack::default())
        .unwrap();
    assert!(out.outputs.is_empty(), "{out:?}");
}

#[test]
fn allow_everything_does_not_open_other_tenants() {
    let mut rules = Vec::new();
    let tenants: [(&str, &[&str], &str); 2] = [
        (TENANT, &["pA", "pB", "pC", "shared"], "10.2.1.0/24"),
        (TENANT2, &["pA", "pD", "shared"], "10.1.0.0/16"),
    ];
    for (t, policies, other) in tenants {
        // Any peer, and the other tenant's addresses by prefix: allowed by the rules, not by
        // isolation.
        let peer = format!("ip:{other}");
        for p in policies {
            for (id, dir, peer) in [
                ("1", "in", ""),
                ("2", "out", ""),
                ("3", "in", &peer),
                ("4", "out", &peer),
            ] {
                rules.push(of_tenant(t, rule(p, id, dir, 100, "", 0, peer, "allow")));
            }
        }
    }
    let h = Host::new(Fixture::standard(), &rules);
    h.assert_blocked(&[
        ("a1", "e1"),
        ("b1", "e1"),
        ("re", "a1"),
        ("ra", "e1"),
        ("u2", "a1"),
    ]);
    h.assert_open(&[
        ("a1", "b1"),
        ("ra", "a1"),
        ("re", "e1"),
        ("u2", "e1"),
        ("out", "a1"),
    ]);
    check_all(&rules).unwrap();
}

#[test]
fn unknown_address_of_another_tenant_is_that_tenants() {
    // u2 is in t2's network but no endpoint (not known here yet, or not a container at all).
    let h = Host::new(Fixture::standard(), &[]);
    h.assert_blocked(&[("u2", "a1"), ("u2", "x1")]);
    h.assert_open(&[("u2", "e1")]);
    check_all(&[]).unwrap();
}

#[test]
fn outside_the_fabric_unchanged() {
    let h = Host::new(Fixture::standard(), &[]);
    h.assert_open(&[("out", "a1"), ("out", "e1"), ("out", "x1")]);
    // Only the rules decide for outside sources, in either tenant.
    let rules = vec![
        rule("pA", "1", "in", 5, "", 0, "ip:10.99.0.0/16", "deny"),
        of_tenant(TENANT2, rule("pA", "1", "in", 5, "tcp", 0, "", "deny")),
    ];
    let h = Host::new(Fixture::standard(), &rules);
    assert_eq!(h.passing("out", "a1"), vec![]);
    assert_eq!(h.passing("out", "b1"), PROBES);
    assert_eq!(
        h.passing("out", "e1"),
        vec![Probe::Udp(53), Probe::Udp(8888), Probe::Ping]
    );
    assert_eq!(h.passing("e1", "out"), PROBES);
    check_all(&rules).unwrap();
}

/// Legacy state: t2's network lies inside t1's; an address two tenants' endpoints share; a
/// fourth address range only t1 has.
fn overlapping() -> Fixture {
    let (t1, t2) = (Some(TENANT), Some(TENANT2));
    Fixture {
        tenants: vec![
            tenant(
                TENANT,
                7,
                &[("n1", "10.1.0.0/16")],
                &[("A", 0x0001_0001), ("B", 0x0001_0002)],
            ),
            tenant(
                TENANT2,
                9,
                &[("m1", "10.1.2.0/24"), ("m2", "10.2.0.0/16")],
                &[("A", 0x0002_0001)],
            ),
        ],
        eps: vec![
            ep("a1", [10, 1, 1, 2], t1, Some("A"), Place::Local(1)),
            ep("a2", [10, 1, 2, 3], t1, Some("B"), Place::Local(2)),
            ep("e1", [10, 1, 2, 5], t2, Some("A"), Place::Local(3)),
            ep("e2", [10, 2, 0, 5], t2, None, Place::Local(4)),
            ep("ra", [10, 1, 2, 20], t1, Some("A"), Place::Remote),
            ep("rb", [10, 1, 3, 20], t1, Some("B"), Place::Remote),
            ep("re", [10, 1, 2, 21], t2, Some("A"), Place::Remote),
            ep("s1", [10, 1, 2, 30], t1, Some("A"), Place::Remote),
            ep("s2", [10, 1, 2, 30], t2, Some("A"), Place::Remote),
            ep("u", [10, 1, 2, 77], None, None, Place::Outside),
            ep("u1", [10, 1, 3, 77], None, None, Place::Outside),
            ep("out", [10, 99, 0, 2], None, None, Place::Outside),
        ],
    }
}

#[test]
fn legacy_overlapping_networks_fail_closed() {
    let fx = overlapping();
    let c = pipeline::compile(&fx.input(&[])).unwrap();
    let ip = |s: &str| s.parse().unwrap();
    assert_eq!(
        c.warnings,
        vec![
            pipeline::Warning::OverlappingTenantNetworks {
                a: "t1:n1".into(),
                b: "t2:m1".into()
            },
            pipeline::Warning::SharedEndpointAddress {
                ip: ip("10.1.2.30")
            },
        ]
    );
    let h = Host::new(fx.clone(), &[]);
    // Known endpoints in the overlap reach their own tenant, and only it.
    h.assert_open(&[
        ("a1", "a2"),
        ("ra", "a1"),
        ("ra", "a2"),
        ("re", "e1"),
        ("e1", "e2"),
        ("rb", "a2"),
    ]);
    h.assert_blocked(&[
        ("ra", "e1"),
        ("re", "a1"),
        ("a2", "e1"),
        ("a1", "e1"),
        ("e2", "a1"),
    ]);
    // Not known as an endpoint, in the overlap: either tenant's, so neither's.
    h.assert_blocked(&[("u", "a1"), ("u", "e1")]);
    // In t1's network only: t1's.
    h.assert_open(&[("u1", "a1")]);
    h.assert_blocked(&[("u1", "e1")]);
    // The address both tenants' endpoints have.
    h.assert_blocked(&[("s1", "a1"), ("s2", "e1"), ("s1", "e1")]);
    h.assert_open(&[("out", "a1"), ("out", "e1")]);
    check_fixture(&fx, &[]).unwrap();
    let allow_all = vec![
        rule("pA", "1", "in", 100, "", 0, "", "allow"),
        of_tenant(TENANT2, rule("pA", "1", "in", 100, "", 0, "", "allow")),
    ];
    check_fixture(&fx, &allow_all).unwrap();
}

#[test]
fn unknown_tenant_and_endpoints_outside_their_networks_fail_closed() {
    let mut fx = Fixture::standard();
    // t9: a tenant this host has not heard of, with a network and a remote endpoint.
    let mut t9 = tenant("t9", 99, &[("k1", "10.9.0.0/16")], &[("A", 0x0009_0001)]);
    t9.known = false;
    fx.tenants.push(t9);
    let t9 = Some("t9");
    fx.eps
        .push(ep("r9", [10, 9, 0, 5], t9, Some("A"), Place::Remote));
    fx.eps
        .push(ep("r9x", [10, 8, 0, 5], t9, Some("A"), Place::Remote));
    // A t2 endpoint outside t2's networks (its network not known here yet).
    fx.eps.push(ep(
        "rx",
        [10, 7, 0, 5],
        Some(TENANT2),
        Some("D"),
        Place::Remote,
    ));
    let c = pipeline::compile(&fx.input(&[])).unwrap();
    let ip = |s: &str| s.parse().unwrap();
    use pipeline::Warning as W;
    assert_eq!(
        c.warnings,
        vec![
            W::UnknownRemoteTenant {
                ip: ip("10.8.0.5"),
                tenant: "t9".into()
            },
            W::UnknownRemoteTenant {
                ip: ip("10.9.0.5"),
                tenant: "t9".into()
            },
            W::UnknownNetworkTenant {
                network: "t9:k1".into(),
                tenant: "t9".into()
            },
            W::EndpointOutsideNetworks {
                ip: ip("10.7.0.5"),
                tenant: "t2".into()
            },
            W::EndpointOutsideNetworks {
                ip: ip("10.8.0.5"),
                tenant: "t9".into()
            },
        ]
    );
    let h = Host::new(fx.clone(), &[]);
    h.assert_blocked(&[
        ("r9", "a1"),
        ("r9", "e1"),
        ("r9x", "a1"),
        ("r9x", "e1"),
        ("rx", "a1"),
    ]);
    h.assert_open(&[("rx", "e1")]);
    check_fixture(&fx, &[]).unwrap();
}

#[test]
fn isolation_flows_grow_with_networks_not_endpoints() {
    let isolation = |fx: &Fixture| {
        let c = pipeline::compile(&fx.input(&[])).unwrap();
        c.flows
            .iter()
            .filter(|f| {
                use pipeline::layout::prio;
                [
                    prio::TENANT_OWN,
                    prio::TENANT_FOREIGN,
                    prio::TENANT_AMBIGUOUS,
                ]
                .contains(&f.priority)
                    && [
                        pipeline::layout::table::SRC_REMOTE,
                        pipeline::layout::table::DST_CLASSIFY,
                    ]
                    .contains(&f.table)
            })
            .count()
    };
    let mut fx = Fixture::standard();
    assert_eq!(isolation(&fx), 4 * 3);
    for i in 0..50u8 {
        fx.eps.push(ep(
            &format!("r{i}"),
            [10, 2, 1, 100 + i],
            Some(TENANT2),
            None,
            Place::Remote,
        ));
        fx.eps.push(ep(
            &format!("s{i}"),
            [10, 1, 2, 100 + i],
            Some(TENANT),
            None,
            Place::Remote,
        ));
    }
    assert_eq!(isolation(&fx), 4 * 3);
}

/// A rule of one of `tenants`, with one of `peers`.
fn arb_rule(tenants: Vec<&'static str>, peers: Vec<&'static str>) -> impl Strategy<Value = Rule> {
    let tenant = prop::sample::select(tenants);
    let policy = prop::sample::select(vec!["pA", "pB", "pC", "pD", "shared"]);
    let dir = prop::sample::select(vec!["in", "out"]);
    let proto_port = prop::sample::select(vec![
        ("", 0),
        ("tcp", 0),
        ("tcp", 80),
        ("tcp", 8888),
        ("udp", 0),
        ("udp", 53),
        ("icmp", 0),
        ("17", 8888),
    ]);
    let peer = prop::sample::select(peers);
    let action = prop::sample::select(vec!["allow", "deny"]);
    (
        tenant,
        policy,
        dir,
        1i64..=4,
        proto_port,
        peer,
        action,
        0u32..1000,
    )
        .prop_map(
            |(tenant, policy, dir, prio, (proto, port), peer, action, id)| {
                of_tenant(
                    tenant,
                    rule(
                        policy,
                        &id.to_string(),
                        dir,
                        prio,
                        proto,
                        port,
                        peer,
                        action,
                    ),
                )
            },
        )
}

/// Rule ids are unique within a tenant's policy.
fn unique(rules: Vec<Rule>) -> Vec<Rule> {
    let mut seen = BTreeSet::new();
    rules
        .into_iter()
        .filter(|r| {
            seen.insert((
                r.tenant_name.clone(),
                r.policy_name.clone(),
                r.rule_id.clone(),
            ))
        })
        .collect()
}

/// Subnets the generated fixtures deal out to tenants (or to nobody: outside the fabric), each
/// with the first three octets of its endpoints' addresses: non-overlapping /24s.
const POOL: [(&str, [u8; 3]); 6] = [
    ("10.1.1.0/24", [10, 1, 1]),
    ("10.1.2.0/24", [10, 1, 2]),
    ("10.2.1.0/24", [10, 2, 1]),
    ("10.2.2.0/24", [10, 2, 2]),
    ("10.3.1.0/24", [10, 3, 1]),
    ("10.3.2.0/24", [10, 3, 2]),
];

/// Legacy state: nested prefixes, so two tenants' networks may overlap; the endpoints of a
/// wide network are put inside its narrower neighbours, where an overlap would be.
const LEGACY_POOL: [(&str, [u8; 3]); 6] = [
    ("10.1.0.0/16", [10, 1, 1]),
    ("10.1.1.0/24", [10, 1, 1]),
    ("10.1.1.0/27", [10, 1, 1]),
    ("10.2.0.0/16", [10, 2, 1]),
    ("10.2.1.0/24", [10, 2, 1]),
    ("10.3.1.0/24", [10, 3, 1]),
];

/// Two or three tenants, networks from `pool` (the first two to the first two tenants, the
/// others to any tenant or none), groups A, B, C in every tenant, and endpoints in random
/// networks of the pool: local, remote or an address no endpoint has; the first two are
/// endpoints of the first two tenants. Plus a host outside the fabric. Addresses are unique,
/// unless `legacy`: then an endpoint may be of another tenant than its network's (or of one
/// when the network is nobody's), and a remote endpoint may have the address of the remote
/// endpoint before it, of another tenant.
fn arb_fixture(
    pool: &'static [(&'static str, [u8; 3])],
    legacy: bool,
) -> impl Strategy<Value = Fixture> {
    let owners = prop::collection::vec(0usize..4, pool.len());
    let place = 0u8..3;
    let group = prop::option::of(prop::sample::select(vec!["A", "B", "C"]));
    let other = prop::option::weighted(0.2, 0usize..3);
    let share = prop::bool::weighted(0.3);
    let eps = prop::collection::vec((0usize..pool.len(), place, group, other, share), 2..10);
    (2usize..=3, owners, eps).prop_map(move |(n, mut owners, mut eps)| {
        owners[0] = 0;
        owners[1] = 1;
        eps[0].0 = 0;
        eps[1].0 = 1;
        eps[0].1 %= 2;
        eps[1].1 %= 2;
        let name = |i: usize| format!("t{}", i + 1);
        let tenants = (0..n)
            .map(|i| Tenant {
                name: name(i),
                vrf: 10 + i as u32,
                known: true,
                networks: (0..pool.len())
                    .filter(|j| owners[*j] == i)
                    .map(|j| (format!("n{j}"), pool[j].0.parse().unwrap()))
                    .collect(),
                groups: ["A", "B", "C"]
                    .iter()
                    .zip(1u32..)
                    .map(|(g, k)| (g.to_string(), ((i as u32 + 1) << 16) | k))
                    .collect(),
            })
            .collect();
        let mut port = 0;
        let mut fx_eps: Vec<Ep> = Vec::new();
        for (k, (j, place, group, other, share)) in eps.into_iter().enumerate() {
            let [a, b, c] = pool[j].1;
            let mut ip = [a, b, c, 10 + k as u8];
            let owner = match other {
                Some(o) if legacy && o < n => Some(o),
                _ => Some(owners[j]).filter(|o| *o < n),
            };
            let place = match (owner, place) {
                (Some(_), 0) => {
                    port += 1;
                    Place::Local(port)
                }
                (Some(_), 1) => Place::Remote,
                _ => Place::Outside,
            };
            let tenant = owner.filter(|_| place != Place::Outside).map(name);
            if let Some(prev) = fx_eps.last() {
                if legacy
                    && share
                    && place == Place::Remote
                    && prev.place == Place::Remote
                    && prev.tenant != tenant
                {
                    ip = prev.ip.octets();
                }
            }
            let group = group.filter(|_| tenant.is_some());
            fx_eps.push(ep(&format!("h{k}"), ip, tenant.as_deref(), group, place));
        }
        fx_eps.push(ep("out", [10, 99, 0, 2], None, None, Place::Outside));
        Fixture {
            tenants,
            eps: fx_eps,
        }
    })
}

fn standard_peers() -> Vec<&'static str> {
    vec![
        "",
        "group:A",
        "group:B",
        "group:C",
        "group:D",
        "net:n1",
        "net:n2",
        "net:m1",
        "ip:10.1.1.2",
        "ip:10.1.0.0/16",
        "ip:10.1.1.1-9",
        "ip:10.1.2.3-20",
        "ip:10.2.1.0/24",
        "ip:10.99.0.0/24",
    ]
}

fn generated_peers() -> Vec<&'static str> {
    vec![
        "",
        "group:A",
        "group:B",
        "group:C",
        "net:n0",
        "net:n1",
        "net:n2",
        "net:n3",
        "net:n4",
        "ip:10.1.1.10",
        "ip:10.0.0.0/8",
        "ip:10.1.1.1-12",
        "ip:10.2.1.10-20",
        "ip:10.2.0.0/16",
        "ip:10.99.0.0/24",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn pipeline_agrees_with_the_model(rules in prop::collection::vec(arb_rule(vec![TENANT, TENANT2], standard_peers()), 0..12)) {
        let rules = unique(rules);
        if let Err(e) = check_all(&rules) {
            prop_assert!(false, "{e}\nrules: {rules:#?}");
        }
    }

    /// Random tenants, networks and endpoints: every cross-tenant cell against the model.
    #[test]
    fn generated_tenants_agree_with_the_model(
        fx in arb_fixture(&POOL, false),
        rules in prop::collection::vec(arb_rule(vec!["t1", "t2", "t3"], generated_peers()), 0..10),
    ) {
        let rules = unique(rules);
        if let Err(e) = check_fixture(&fx, &rules) {
            prop_assert!(false, "{e}\nfixture: {fx:#?}\nrules: {rules:#?}");
        }
    }

    /// The same with legacy state (overlapping networks of two tenants, endpoint addresses of
    /// two tenants, endpoints outside their networks): fail-closed as the model says.
    #[test]
    fn generated_legacy_overlaps_agree_with_the_model(
        fx in arb_fixture(&LEGACY_POOL, true),
        rules in prop::collection::vec(arb_rule(vec!["t1", "t2", "t3"], generated_peers()), 0..10),
    ) {
        let rules = unique(rules);
        if let Err(e) = check_fixture(&fx, &rules) {
            prop_assert!(false, "{e}\nfixture: {fx:#?}\nrules: {rules:#?}");
        }
    }
}

//! The compiler without OVS: compiled flows run through the interpreter in `pipeline::sim`,
//! compared with the independent model of `common` (fixed cases and a property test).

mod common;

use std::collections::BTreeSet;

use common::*;
use fabric_model::Rule;
use openflow::FlowKey;
use pipeline::sim::{Conntrack, Packet, Tables, L3, L4};
use proptest::prelude::*;

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
fn check(tables: &Tables, rules: &[Rule], src: &Ep, dst: &Ep, probe: Probe) -> Result<(), String> {
    let Some(port) = expected_port(src, dst) else {
        return Ok(());
    };
    let mut ct = Conntrack::default();
    let pkt = packet(src, dst, probe);
    let out = tables.run(pkt, &mut ct).map_err(|e| e.to_string())?;
    let want = allowed(rules, src, dst, probe);
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
    let compiled = pipeline::compile(&input(rules)).map_err(|e| e.to_string())?;
    let keys: BTreeSet<FlowKey> = compiled.flows.iter().map(|f| f.key()).collect();
    if keys.len() != compiled.flows.len() {
        return Err("two flows share a key".into());
    }
    let tables = Tables::new(&compiled.flows);
    for src in eps() {
        for dst in eps() {
            if src.name == dst.name {
                continue;
            }
            for probe in PROBES {
                check(&tables, rules, &src, &dst, probe)?;
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
    let e = eps();
    let (a1, b1) = (&e[0], &e[1]);
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
    let a1 = eps()[0];
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
    let e = eps();
    let (a1, b1) = (e[0], e[1]);
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
    let ra = e[5];
    let p = packet(&ra, &e[6], Probe::Ping);
    assert!(tables
        .run(p, &mut Conntrack::default())
        .unwrap()
        .outputs
        .is_empty());
}

#[test]
fn established_forward_direction_is_rechecked_reverse_is_not() {
    let e = eps();
    let (a1, b1) = (e[0], e[1]);
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

fn arb_rule() -> impl Strategy<Value = Rule> {
    let policy = prop::sample::select(vec!["pA", "pB", "pC", "shared"]);
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
    let peer = prop::sample::select(vec![
        "",
        "group:A",
        "group:B",
        "group:C",
        "net:n1",
        "net:n2",
        "ip:10.1.1.2",
        "ip:10.1.0.0/16",
        "ip:10.1.1.1-9",
        "ip:10.1.2.3-20",
        "ip:10.99.0.0/24",
    ]);
    let action = prop::sample::select(vec!["allow", "deny"]);
    (policy, dir, 1i64..=4, proto_port, peer, action, 0u32..1000).prop_map(
        |(policy, dir, prio, (proto, port), peer, action, id)| {
            rule(
                policy,
                &id.to_string(),
                dir,
                prio,
                proto,
                port,
                peer,
                action,
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn pipeline_agrees_with_the_model(rules in prop::collection::vec(arb_rule(), 0..12)) {
        // Rule ids must be unique within a policy.
        let mut seen = BTreeSet::new();
        let rules: Vec<Rule> = rules.into_iter().filter(|r| seen.insert((r.policy_name.clone(), r.rule_id.clone()))).collect();
        if let Err(e) = check_all(&rules) {
            prop_assert!(false, "{e}\nrules: {rules:#?}");
        }
    }
}

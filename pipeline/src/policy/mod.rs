//! Group-based policy: tables `EGRESS` (`out` rules of local sources' groups) and `INGRESS`
//! (`in` rules of local destinations' groups).
//!
//! Group membership is in registers (set by classification, one flow per endpoint); a rule
//! matches its own group's register, its peer (the other group's register, or address
//! prefixes) and protocol/port. When both ends have values the rule is a two-clause
//! conjunction, so flows grow with groups + peers per rule, never with endpoints. The crate
//! docs give the semantics this implements.

pub mod conj;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};

use openflow::flow::{ct_state, proto};
use openflow::{Masked, Match};

use crate::build::{ct_has, ipv4, prefix, with_reg, Flows};
use crate::error::{CompileError, Warning};
use crate::layout::{prio, reg, table};
use crate::resolve::Resolved;
use conj::{ConjIds, PolicyFlows};
use rules::{Direction, Peer, RuleSpec};

/// Tables `EGRESS` and `INGRESS`.
pub fn compile(r: &mut Resolved, f: &mut Flows) -> Result<(), CompileError> {
    let mut pf = PolicyFlows::default();
    bypass(&mut pf);
    // Each rule of a policy attached to a group with members here, with those groups' ids.
    let mut attached: BTreeMap<String, (RuleSpec, BTreeSet<u32>, &str)> = BTreeMap::new();
    for g in r.groups.values() {
        if !r.local_groups.contains(&g.id) {
            continue;
        }
        for p in &g.policies {
            // A policy with no rules (or not known yet) changes nothing.
            let Some(list) = r.rules.get(&(g.tenant.as_str(), p.as_str())) else {
                continue;
            };
            for rule in list {
                let spec = RuleSpec::parse(rule)?;
                attached
                    .entry(spec.key.clone())
                    .or_insert_with(|| (spec, BTreeSet::new(), g.tenant.as_str()))
                    .1
                    .insert(g.id);
            }
        }
    }
    let mut ids = ConjIds::default();
    for (spec, groups, tenant) in attached.values() {
        rule_flows(r, &mut pf, &mut ids, spec, groups, tenant);
    }
    f.out.extend(pf.into_flows(r.input.cookie));
    Ok(())
}

/// Replies and related packets skip policy (stateful); non-local ends skip a table.
fn bypass(pf: &mut PolicyFlows) {
    let rpl = ct_has(Match::default(), ct_state::REPLY);
    let rel = ct_has(Match::default(), ct_state::RELATED);
    pf.plain(
        table::EGRESS,
        prio::BYPASS + 2,
        rpl,
        vec![],
        Some(table::FORWARD),
    );
    pf.plain(
        table::EGRESS,
        prio::BYPASS + 1,
        rel,
        vec![],
        Some(table::FORWARD),
    );
    let remote_src = with_reg(Match::default(), reg::SRC_LOCAL, 0);
    pf.plain(
        table::EGRESS,
        prio::BYPASS,
        remote_src,
        vec![],
        Some(table::INGRESS),
    );
    pf.plain(
        table::EGRESS,
        prio::MISS,
        Match::default(),
        vec![],
        Some(table::INGRESS),
    );
    let remote_dst = with_reg(Match::default(), reg::DST_LOCAL, 0);
    pf.plain(
        table::INGRESS,
        prio::BYPASS,
        remote_dst,
        vec![],
        Some(table::COMMIT),
    );
    pf.plain(
        table::INGRESS,
        prio::MISS,
        Match::default(),
        vec![],
        Some(table::COMMIT),
    );
}

/// The flows of one rule attached to `groups` (ids of groups with local members).
fn rule_flows(
    r: &mut Resolved,
    pf: &mut PolicyFlows,
    ids: &mut ConjIds,
    spec: &RuleSpec,
    groups: &BTreeSet<u32>,
    tenant: &str,
) {
    let (tbl, next, own_reg, peer_reg, dst_side) = match spec.direction {
        Direction::Out => (
            table::EGRESS,
            table::INGRESS,
            reg::SRC_GROUP,
            reg::DST_GROUP,
            true,
        ),
        Direction::In => (
            table::INGRESS,
            table::COMMIT,
            reg::DST_GROUP,
            reg::SRC_GROUP,
            false,
        ),
    };
    let base = l4(spec);
    let unknown = |what, name: &str| Warning::UnknownReference {
        rule: spec.key.clone(),
        what,
        name: name.into(),
    };
    let peers: Vec<Match> = match &spec.peer {
        Peer::Any => Vec::new(),
        Peer::Group(name) => match r.groups.get(&(tenant, name.as_str())) {
            Some(g) => vec![with_reg(base.clone(), peer_reg, g.id)],
            None => return r.warnings.push(unknown("endpoint group", name)),
        },
        Peer::Network(name) => match r.networks.get(&(tenant, name.as_str())) {
            Some(n) => vec![with_addr(base.clone(), dst_side, n.subnet)],
            None => return r.warnings.push(unknown("network", name)),
        },
        Peer::Prefixes(nets) => nets
            .iter()
            .map(|n| with_addr(base.clone(), dst_side, *n))
            .collect(),
    };
    let priority = prio::rule(spec.priority, spec.deny);
    let goto = (!spec.deny).then_some(next);
    let own: Vec<Match> = groups
        .iter()
        .map(|g| with_reg(base.clone(), own_reg, *g))
        .collect();
    if peers.is_empty() || (peers.len() == 1 && own.len() == 1) {
        for m in own {
            let m = match peers.first() {
                Some(p) => and(m, p),
                None => m,
            };
            pf.plain(tbl, priority, m, vec![], goto);
        }
        return;
    }
    let id = ids.id(&spec.key);
    for m in own {
        pf.clause(tbl, priority, m, id, 1, 2);
    }
    for m in peers {
        pf.clause(tbl, priority, m, id, 2, 2);
    }
    let conj = Match {
        conj_id: Some(id),
        ..Match::default()
    };
    pf.plain(tbl, priority, conj, vec![], goto);
}

/// IPv4 with the rule's protocol and destination port.
fn l4(spec: &RuleSpec) -> Match {
    let mut m = ipv4();
    m.ip_proto = spec.protocol;
    if let Some(port) = spec.port {
        match spec.protocol {
            Some(proto::IP_TCP) => m.tcp_dst = Some(Masked::exact(port)),
            Some(proto::IP_UDP) => m.udp_dst = Some(Masked::exact(port)),
            _ => {}
        }
    }
    m
}

/// `m` restricted to a source (`dst_side` false) or destination prefix.
fn with_addr(mut m: Match, dst_side: bool, net: ipnet::Ipv4Net) -> Match {
    let v = prefix(net);
    if dst_side {
        m.ipv4_dst = Some(v);
    } else {
        m.ipv4_src = Some(v);
    }
    m
}

/// `a` with the register and address fields `b` sets (both come from the same base).
fn and(mut a: Match, b: &Match) -> Match {
    for (i, v) in b.regs.iter().enumerate() {
        if v.is_some() {
            a.regs[i] = *v;
        }
    }
    a.ipv4_src = a.ipv4_src.or(b.ipv4_src);
    a.ipv4_dst = a.ipv4_dst.or(b.ipv4_dst);
    a
}

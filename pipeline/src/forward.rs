//! Conntrack, destination classification, commit and L3 forwarding (tables `CT`, `CT_STATE`,
//! `DST_CLASSIFY`, `COMMIT`, `FORWARD`), native L3 mode.
//!
//! A local destination is routed inside OVS (router MAC as source, the container's MAC as
//! destination, TTL decremented); anything else leaves through the gateway port to the host
//! kernel, whose routes to the fabric come from BGP.

use openflow::flow::ct_state;
use openflow::{Action, CtAction, CtZone, Field, Masked, Match};

use crate::build::{ct_has, ipv4, set_mac, set_reg, with_reg, Flows};
use crate::layout::{prio, reg, table};
use crate::resolve::Resolved;

/// Tables `CT`, `CT_STATE`, `DST_CLASSIFY`, `COMMIT` and `FORWARD`.
pub fn compile(r: &Resolved, f: &mut Flows) {
    let input = r.input;
    let gw = input.gateway.ofport;
    conntrack(f);

    for ep in &input.local_endpoints {
        let t = r.tenant_of(ep);
        f.add(
            table::DST_CLASSIFY,
            prio::EXACT,
            Match {
                ipv4_dst: Some(Masked::exact(ep.ipv4)),
                ..with_reg(ipv4(), reg::VRF, t.vrf)
            },
            vec![
                set_reg(reg::DST_GROUP, ep.group),
                set_reg(reg::OUT_PORT, ep.ofport),
                set_reg(reg::DST_LOCAL, 1),
            ],
            Some(table::EGRESS),
        );
    }
    for &(vrf, ip, group) in &r.remotes {
        f.add(
            table::DST_CLASSIFY,
            prio::REMOTE,
            Match {
                ipv4_dst: Some(Masked::exact(ip)),
                ..with_reg(ipv4(), reg::VRF, vrf)
            },
            vec![set_reg(reg::DST_GROUP, group), set_reg(reg::OUT_PORT, gw)],
            Some(table::EGRESS),
        );
    }
    f.add(
        table::DST_CLASSIFY,
        prio::MISS,
        Match::default(),
        vec![set_reg(reg::OUT_PORT, gw)],
        Some(table::EGRESS),
    );

    commit(f);

    let router = input.router_mac;
    let out = |port: u32, mac| {
        vec![
            set_mac(Field::EthSrc, router),
            set_mac(Field::EthDst, mac),
            Action::DecTtl,
            Action::Output(port),
        ]
    };
    for ep in &input.local_endpoints {
        f.add(
            table::FORWARD,
            prio::EXACT,
            with_reg(ipv4(), reg::OUT_PORT, ep.ofport),
            out(ep.ofport, ep.mac),
            None,
        );
    }
    // Everything not local leaves to the host kernel. (Traffic from the gateway always has a
    // local destination: classification took only those.)
    f.add(
        table::FORWARD,
        prio::EXACT,
        with_reg(ipv4(), reg::OUT_PORT, gw),
        out(gw, input.gateway.mac),
        None,
    );
    f.drop(table::FORWARD, prio::MISS, Match::default());
}

/// Tables `CT` and `CT_STATE`: conntrack in the tenant's zone, invalid packets dropped. Shared
/// by every forwarding variant.
pub fn conntrack(f: &mut Flows) {
    f.add(
        table::CT,
        prio::EXACT,
        ipv4(),
        vec![Action::Ct(CtAction {
            commit: false,
            zone: CtZone::Reg(reg::CT_ZONE),
            table: Some(table::CT_STATE),
            set_mark: None,
        })],
        None,
    );
    f.drop(table::CT, prio::MISS, Match::default());

    f.drop(
        table::CT_STATE,
        prio::EXACT,
        ct_has(Match::default(), ct_state::INVALID),
    );
    f.goto(
        table::CT_STATE,
        prio::PORT_GUARD,
        ct_has(Match::default(), 0),
        table::DST_CLASSIFY,
    );
    f.drop(table::CT_STATE, prio::MISS, Match::default());
}

/// Table `COMMIT`: new connections the policy let through are committed in the tenant's zone.
/// Shared by every forwarding variant.
pub fn commit(f: &mut Flows) {
    f.add(
        table::COMMIT,
        prio::EXACT,
        ct_has(ipv4(), ct_state::NEW),
        vec![Action::Ct(CtAction {
            commit: true,
            zone: CtZone::Reg(reg::CT_ZONE),
            table: None,
            set_mark: None,
        })],
        Some(table::FORWARD),
    );
    f.goto(table::COMMIT, prio::MISS, Match::default(), table::FORWARD);
}

//! VXLAN variant: tables `DST_CLASSIFY` (destination by (VRF, address): a local port, or a
//! remote endpoint's VTEP and VNI), `FORWARD` (output, routed or bridged) and `L2` (ARP frames
//! by (VNI, MAC), broadcast to the VNI's local ports and flood list).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use openflow::{Action, Field, Masked, Match};

use super::classify::{set_vni, with_vni};
use super::resolve::Overlay;
use crate::build::{ipv4, set_mac, set_reg, with_reg, Flows};
use crate::layout::{prio, reg, table};
use crate::resolve::Resolved;

const BROADCAST: [u8; 6] = [0xff; 6];

/// `load:vtep->tun_dst`.
fn set_vtep(vtep: Ipv4Addr) -> Action {
    Action::SetField {
        field: Field::TunIpv4Dst,
        value: u64::from(u32::from(vtep)),
    }
}

/// Tables `DST_CLASSIFY`, `FORWARD` and `L2`.
pub fn compile(r: &Resolved, o: &Overlay, f: &mut Flows) {
    let input = r.input;
    let vx = o.vx.ofport;
    let router = input.router_mac;
    // VNI → local ports of that network, for broadcast.
    let mut ports: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (ep, &vni) in input.local_endpoints.iter().zip(&o.local_vni) {
        ports.entry(vni).or_default().push(ep.ofport);
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
        let to_port = with_reg(ipv4(), reg::OUT_PORT, ep.ofport);
        f.add(
            table::FORWARD,
            prio::EXACT,
            to_port.clone(),
            vec![set_mac(Field::EthDst, ep.mac), Action::Output(ep.ofport)],
            None,
        );
        f.add(
            table::FORWARD,
            prio::ROUTED,
            with_reg(to_port, reg::ROUTED, 1),
            vec![
                set_mac(Field::EthSrc, router),
                set_mac(Field::EthDst, ep.mac),
                Action::DecTtl,
                Action::Output(ep.ofport),
            ],
            None,
        );
        f.add(
            table::L2,
            prio::EXACT,
            Match {
                eth_dst: Some(ep.mac),
                ..with_vni(Match::default(), vni)
            },
            vec![Action::Output(ep.ofport)],
            None,
        );
    }
    for rep in &o.remotes {
        // Only local sources reach a remote endpoint: a tunnelled packet is never sent back
        // into the tunnel (split horizon), so a miss drops it.
        f.add(
            table::DST_CLASSIFY,
            prio::REMOTE,
            Match {
                ipv4_dst: Some(Masked::exact(rep.ip)),
                ..with_reg(with_reg(ipv4(), reg::VRF, rep.vrf), reg::SRC_LOCAL, 1)
            },
            vec![
                set_reg(reg::DST_GROUP, rep.group),
                set_reg(reg::OUT_PORT, vx),
                set_vni(rep.vni),
                set_vtep(rep.vtep),
                set_mac(Field::EthDst, rep.mac),
            ],
            Some(table::EGRESS),
        );
        f.add(
            table::L2,
            prio::REMOTE,
            Match {
                eth_dst: Some(rep.mac),
                ..with_reg(with_vni(Match::default(), rep.vni), reg::SRC_LOCAL, 1)
            },
            vec![set_vtep(rep.vtep), Action::Output(vx)],
            None,
        );
    }
    // Unknown destinations in the overlay have nowhere to go (no way out of the fabric yet).
    f.drop(table::DST_CLASSIFY, prio::MISS, Match::default());

    let to_tunnel = with_reg(ipv4(), reg::OUT_PORT, vx);
    f.add(
        table::FORWARD,
        prio::EXACT,
        to_tunnel.clone(),
        vec![Action::Output(vx)],
        None,
    );
    f.add(
        table::FORWARD,
        prio::ROUTED,
        with_reg(to_tunnel, reg::ROUTED, 1),
        vec![
            set_mac(Field::EthSrc, router),
            Action::DecTtl,
            Action::Output(vx),
        ],
        None,
    );
    f.drop(table::FORWARD, prio::MISS, Match::default());

    for &vni in o.nets.keys() {
        let local: Vec<Action> = ports
            .get(&vni)
            .into_iter()
            .flatten()
            .map(|p| Action::Output(*p))
            .collect();
        let bcast = Match {
            eth_dst: Some(BROADCAST),
            ..with_vni(Match::default(), vni)
        };
        // From a local port: the VNI's other local ports (OVS never outputs to the in_port)
        // and, by ingress replication, every VTEP of its flood list.
        let mut all = local.clone();
        for vtep in o.flood.get(&vni).into_iter().flatten() {
            all.push(set_vtep(*vtep));
            all.push(Action::Output(vx));
        }
        f.add(
            table::L2,
            prio::ROUTED,
            with_reg(bcast.clone(), reg::SRC_LOCAL, 1),
            all,
            None,
        );
        // From the tunnel: local ports only (split horizon).
        f.add(table::L2, prio::EXACT, bcast, local, None);
    }
    f.drop(table::L2, prio::MISS, Match::default());
}

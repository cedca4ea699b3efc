//! VXLAN variant: tables `CLASSIFY` (local ports and the VXLAN port), `ARP` (the responder)
//! and `SRC_REMOTE` (the source group of tunnelled traffic).
//!
//! A local port accepts IPv4 and ARP from its container's own MAC and address (the spoof guard
//! of native L3); IPv4 gets the tenant's registers and, sent to the router MAC, the routed
//! flag; ARP gets the VNI of its network in `tun_id`, which scopes the ARP and L2 lookups. The
//! VXLAN port accepts what carries the VNI of a network known here: the VNI gives the tenant.

use openflow::flow::port;
use openflow::{Action, Field, Masked, Match};

use super::resolve::Overlay;
use crate::build::{arp, ipv4, mov, set_mac, set_reg, with_reg, Flows};
use crate::classify::guard_port;
use crate::layout::{prio, reg, table};
use crate::resolve::Resolved;

/// `load:vni->tun_id`.
pub fn set_vni(vni: u32) -> Action {
    Action::SetField {
        field: Field::TunId,
        value: u64::from(vni),
    }
}

/// Matches the VNI in `tun_id`.
pub fn with_vni(m: Match, vni: u32) -> Match {
    Match {
        tun_id: Some(Masked::exact(u64::from(vni))),
        ..m
    }
}

/// Tables `CLASSIFY`, `ARP` and `SRC_REMOTE`.
pub fn compile(r: &Resolved, o: &Overlay, f: &mut Flows) {
    let input = r.input;
    for (ep, &vni) in input.local_endpoints.iter().zip(&o.local_vni) {
        let t = r.tenant_of(ep);
        let m = Match {
            in_port: Some(ep.ofport),
            eth_src: Some(ep.mac),
            ipv4_src: Some(Masked::exact(ep.ipv4)),
            ..ipv4()
        };
        let regs = vec![
            set_reg(reg::VRF, t.vrf),
            set_reg(reg::SRC_GROUP, ep.group),
            set_reg(reg::CT_ZONE, u32::from(t.zone)),
            set_reg(reg::SRC_LOCAL, 1),
        ];
        let mut routed = regs.clone();
        routed.push(set_reg(reg::ROUTED, 1));
        f.add(
            table::CLASSIFY,
            prio::ROUTED,
            Match {
                eth_dst: Some(input.router_mac),
                ..m.clone()
            },
            routed,
            Some(table::CT),
        );
        f.add(table::CLASSIFY, prio::EXACT, m, regs, Some(table::CT));
        f.add(
            table::CLASSIFY,
            prio::EXACT,
            Match {
                in_port: Some(ep.ofport),
                eth_src: Some(ep.mac),
                arp_spa: Some(Masked::exact(ep.ipv4)),
                ..arp()
            },
            vec![set_vni(vni), set_reg(reg::SRC_LOCAL, 1)],
            Some(table::ARP),
        );
        guard_port(f, ep.ofport, ep.ipv4);
        answer(f, prio::EXACT, vni, ep.ipv4, ep.mac);
    }
    let vx = o.vx.ofport;
    for (&vni, n) in &o.nets {
        f.add(
            table::CLASSIFY,
            prio::EXACT,
            Match {
                in_port: Some(vx),
                ..with_vni(ipv4(), vni)
            },
            vec![
                set_reg(reg::VRF, n.tenant.vrf),
                set_reg(reg::CT_ZONE, u32::from(n.tenant.zone)),
            ],
            Some(table::SRC_REMOTE),
        );
        f.goto(
            table::CLASSIFY,
            prio::EXACT,
            Match {
                in_port: Some(vx),
                ..with_vni(arp(), vni)
            },
            table::ARP,
        );
        if let Some(gw) = n.net.gateway {
            answer(f, prio::GATEWAY_ARP, vni, gw, input.router_mac);
        }
    }
    for rep in &o.remotes {
        answer(f, prio::REMOTE, rep.vni, rep.ip, rep.mac);
        f.add(
            table::SRC_REMOTE,
            prio::EXACT,
            Match {
                ipv4_src: Some(Masked::exact(rep.ip)),
                ..with_reg(ipv4(), reg::VRF, rep.vrf)
            },
            vec![set_reg(reg::SRC_GROUP, rep.group)],
            Some(table::CT),
        );
    }
    f.drop(table::CLASSIFY, prio::MISS, Match::default());
    // What the responder does not answer (unknown addresses, replies, requests from the
    // tunnel) is switched as a frame.
    // (Only ARP reaches this table.)
    f.goto(table::ARP, prio::MISS, Match::default(), table::L2);
    // A source the fabric does not know in the packet's own tenant (its route not here yet):
    // no group, as native L3 treats an unknown address of the tenant.
    f.goto(table::SRC_REMOTE, prio::MISS, Match::default(), table::CT);
}

/// Answers a local container's ARP request for `ip` in `vni` with `mac`, from the host.
fn answer(f: &mut Flows, priority: u16, vni: u32, ip: std::net::Ipv4Addr, mac: [u8; 6]) {
    f.add(
        table::ARP,
        priority,
        Match {
            arp_op: Some(1),
            arp_tpa: Some(Masked::exact(ip)),
            ..with_reg(with_vni(arp(), vni), reg::SRC_LOCAL, 1)
        },
        vec![
            mov(Field::EthSrc, Field::EthDst, 48),
            set_mac(Field::EthSrc, mac),
            Action::SetField {
                field: Field::ArpOp,
                value: 2,
            },
            mov(Field::ArpSha, Field::ArpTha, 48),
            set_mac(Field::ArpSha, mac),
            mov(Field::ArpTpa, Field::Reg(reg::SCRATCH), 32),
            mov(Field::ArpSpa, Field::ArpTpa, 32),
            mov(Field::Reg(reg::SCRATCH), Field::ArpSpa, 32),
            Action::Output(port::IN_PORT),
        ],
        None,
    );
}

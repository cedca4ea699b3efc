//! Port classification, spoof guard and the proxy ARP responder (tables `CLASSIFY`, `ARP`,
//! `SRC_REMOTE`).
//!
//! A container's port accepts IPv4 from the container's own MAC and address and ARP from its
//! own MAC and address; everything else from that port is dropped. The gateway port accepts
//! IPv4 for local endpoints (the VRF comes from the destination, the source group from the
//! remote endpoints) and ARP requests.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use openflow::flow::port;
use openflow::{Action, Field, Masked, Match};

use crate::build::{arp, ipv4, mov, set_mac, set_reg, with_reg, Flows};
use crate::error::Warning;
use crate::layout::{prio, reg, table};
use crate::resolve::Resolved;

/// A container's port: whatever its classification flows did not accept is dropped, and a
/// request for its own address (gratuitous ARP) gets no answer. Both data-plane variants.
pub(crate) fn guard_port(f: &mut Flows, ofport: u32, ipv4: Ipv4Addr) {
    f.drop(
        table::CLASSIFY,
        prio::PORT_GUARD,
        Match {
            in_port: Some(ofport),
            ..Match::default()
        },
    );
    f.drop(
        table::ARP,
        prio::ARP_SELF,
        Match {
            in_port: Some(ofport),
            arp_tpa: Some(Masked::exact(ipv4)),
            ..arp()
        },
    );
}

/// Tables `CLASSIFY`, `ARP` and `SRC_REMOTE`.
pub fn compile(r: &mut Resolved, f: &mut Flows) {
    let input = r.input;
    let gw = input.gateway.ofport;
    // Local endpoints, keyed by address, to find addresses two tenants share.
    let mut by_ip: BTreeMap<Ipv4Addr, Vec<usize>> = BTreeMap::new();
    for (i, ep) in input.local_endpoints.iter().enumerate() {
        by_ip.entry(ep.ipv4).or_default().push(i);
        let t = r.tenant_of(ep);
        f.add(
            table::CLASSIFY,
            prio::EXACT,
            Match {
                in_port: Some(ep.ofport),
                eth_src: Some(ep.mac),
                ipv4_src: Some(Masked::exact(ep.ipv4)),
                ..ipv4()
            },
            vec![
                set_reg(reg::VRF, t.vrf),
                set_reg(reg::SRC_GROUP, ep.group),
                set_reg(reg::CT_ZONE, u32::from(t.zone)),
                set_reg(reg::SRC_LOCAL, 1),
            ],
            Some(table::CT),
        );
        f.goto(
            table::CLASSIFY,
            prio::EXACT,
            Match {
                in_port: Some(ep.ofport),
                eth_src: Some(ep.mac),
                arp_spa: Some(Masked::exact(ep.ipv4)),
                ..arp()
            },
            table::ARP,
        );
        guard_port(f, ep.ofport, ep.ipv4);
    }
    for (ip, eps) in by_ip {
        let [i] = eps[..] else {
            r.warnings.push(Warning::AmbiguousGatewayDestination { ip });
            continue;
        };
        let ep = &input.local_endpoints[i];
        let t = r.tenant_of(ep);
        f.add(
            table::CLASSIFY,
            prio::EXACT,
            Match {
                in_port: Some(gw),
                ipv4_dst: Some(Masked::exact(ip)),
                ..ipv4()
            },
            vec![
                set_reg(reg::VRF, t.vrf),
                set_reg(reg::CT_ZONE, u32::from(t.zone)),
            ],
            Some(table::SRC_REMOTE),
        );
    }
    f.goto(
        table::CLASSIFY,
        prio::EXACT,
        Match {
            in_port: Some(gw),
            arp_op: Some(1),
            ..arp()
        },
        table::ARP,
    );
    f.drop(table::CLASSIFY, prio::MISS, Match::default());
    arp_responder(r, f);
    remote_sources(r, f);
}

/// Every ARP request is answered with the router MAC (Contiv's proxy ARP mode): containers
/// route everything, even their own subnet, through the router.
fn arp_responder(r: &Resolved, f: &mut Flows) {
    let mac = r.input.router_mac;
    f.add(
        table::ARP,
        prio::EXACT,
        Match {
            arp_op: Some(1),
            ..arp()
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
    f.drop(table::ARP, prio::MISS, Match::default());
}

/// The source group of traffic from the gateway port: a remote endpoint of the destination's
/// tenant with that address, or none. Sources of other tenants are dropped in between
/// (`isolation`); the miss is for addresses outside every network.
fn remote_sources(r: &Resolved, f: &mut Flows) {
    for &(vrf, ip, group) in &r.remotes {
        f.add(
            table::SRC_REMOTE,
            prio::EXACT,
            Match {
                ipv4_src: Some(Masked::exact(ip)),
                ..with_reg(ipv4(), reg::VRF, vrf)
            },
            vec![set_reg(reg::SRC_GROUP, group)],
            Some(table::CT),
        );
    }
    f.goto(table::SRC_REMOTE, prio::MISS, Match::default(), table::CT);
}

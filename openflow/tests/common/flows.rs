//! A representative flow set: every match field and action of the model, in the shapes the
//! pipeline and the policy compiler produce (classification, conntrack, conjunctive policy,
//! ARP responder, VLAN and tunnel forwarding). Shared by the rendering and codec tests.

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use openflow::flow::{ct_state, port, proto};
use openflow::{Action, CtAction, CtZone, Field, Flow, Masked, Match};

pub fn flow(table: u8, priority: u16, cookie: u64, matches: Match, actions: Vec<Action>) -> Flow {
    Flow {
        table,
        priority,
        matches,
        actions,
        goto_table: None,
        cookie,
    }
}

fn ip() -> Match {
    Match {
        eth_type: Some(proto::ETH_IPV4),
        ..Match::default()
    }
}

/// Clause `clause` of the two-clause conjunction 42.
fn conj(clause: u8) -> Vec<Action> {
    vec![Action::Conjunction {
        id: 42,
        clause,
        n_clauses: 2,
    }]
}

fn set_reg(n: u8, value: u64) -> Action {
    Action::SetField {
        field: Field::Reg(n),
        value,
    }
}

pub fn representative(cookie: u64) -> Vec<Flow> {
    let mut v = Vec::new();

    // Classification: port -> VRF, network, group.
    let mut f = flow(
        0,
        100,
        cookie,
        Match {
            in_port: Some(1),
            ..Match::default()
        },
        vec![set_reg(1, 5), set_reg(4, 7), set_reg(3, 0xdead_beef)],
    );
    f.goto_table = Some(10);
    v.push(f);

    // Spoof guard on source MAC and IP.
    let mut m = ip();
    m.in_port = Some(2);
    m.eth_src = Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01]);
    m.ipv4_src = Some(Masked::exact(Ipv4Addr::new(10, 1, 1, 3)));
    let mut f = flow(5, 200, cookie, m, vec![]);
    f.goto_table = Some(10);
    v.push(f);

    // Conntrack: send untracked through ct in the VRF's zone, commit new connections.
    let mut m = ip();
    m.ct_state = Some(Masked::with_mask(0, ct_state::TRACKED));
    v.push(flow(
        10,
        90,
        cookie,
        m,
        vec![Action::Ct(CtAction {
            commit: false,
            zone: CtZone::Reg(4),
            table: Some(11),
            set_mark: None,
        })],
    ));
    let mut m = ip();
    m.ct_state = Some(Masked::with_mask(
        ct_state::NEW | ct_state::TRACKED,
        ct_state::NEW | ct_state::TRACKED,
    ));
    m.regs[1] = Some(Masked::exact(5));
    m.ipv4_dst = Some(Masked::exact(Ipv4Addr::new(10, 1, 1, 2)));
    let mut f = flow(
        10,
        100,
        cookie,
        m,
        vec![Action::Ct(CtAction {
            commit: true,
            zone: CtZone::Reg(4),
            table: None,
            set_mark: None,
        })],
    );
    f.goto_table = Some(20);
    v.push(f);
    let mut m = ip();
    m.ct_state = Some(Masked::with_mask(
        ct_state::NEW | ct_state::TRACKED,
        ct_state::NEW | ct_state::ESTABLISHED | ct_state::TRACKED,
    ));
    v.push(flow(
        10,
        80,
        cookie,
        m,
        vec![Action::Ct(CtAction {
            commit: true,
            zone: CtZone::Immediate(7),
            table: Some(12),
            set_mark: Some(3),
        })],
    ));
    let mut m = ip();
    m.ct_state = Some(Masked::exact(ct_state::ESTABLISHED | ct_state::TRACKED));
    m.ct_zone = Some(5);
    m.ct_mark = Some(Masked::with_mask(1, 1));
    let mut f = flow(11, 50, cookie, m, vec![]);
    f.goto_table = Some(30);
    v.push(f);

    // Conjunctive policy: source set, destination ports, then the conj_id flow.
    let mut m = ip();
    m.ipv4_src = Some(Masked::with_mask(
        Ipv4Addr::new(10, 1, 0, 0),
        Ipv4Addr::new(255, 255, 0, 0),
    ));
    m.regs[3] = Some(Masked::with_mask(0x10, 0xff));
    v.push(flow(12, 10, cookie, m, conj(1)));
    let mut m = ip();
    m.ip_proto = Some(proto::IP_TCP);
    m.tcp_dst = Some(Masked::exact(80));
    v.push(flow(12, 10, cookie, m, conj(2)));
    let mut m = ip();
    m.ip_proto = Some(proto::IP_UDP);
    m.udp_dst = Some(Masked::with_mask(0x1000, 0xf000));
    m.udp_src = Some(Masked::exact(53));
    v.push(flow(12, 10, cookie, m, conj(2)));
    let mut m = ip();
    m.conj_id = Some(42);
    let mut f = flow(12, 10, cookie, m, vec![]);
    f.goto_table = Some(20);
    v.push(f);

    // ARP responder for the gateway.
    let gw_mac = 0x0011_2233_4455u64;
    let m = Match {
        eth_type: Some(proto::ETH_ARP),
        arp_op: Some(1),
        arp_tpa: Some(Masked::exact(Ipv4Addr::new(10, 1, 1, 1))),
        ..Match::default()
    };
    let mv = |src, dst, n_bits| Action::Move {
        src,
        src_ofs: 0,
        dst,
        dst_ofs: 0,
        n_bits,
    };
    v.push(flow(
        13,
        5,
        cookie,
        m,
        vec![
            mv(Field::EthSrc, Field::EthDst, 48),
            Action::SetField {
                field: Field::EthSrc,
                value: gw_mac,
            },
            Action::SetField {
                field: Field::ArpOp,
                value: 2,
            },
            mv(Field::ArpSha, Field::ArpTha, 48),
            Action::SetField {
                field: Field::ArpSha,
                value: gw_mac,
            },
            mv(Field::ArpSpa, Field::ArpTpa, 32),
            Action::SetField {
                field: Field::ArpSpa,
                value: u64::from(u32::from(Ipv4Addr::new(10, 1, 1, 1))),
            },
            Action::Output(port::IN_PORT),
        ],
    ));

    // L3 forwarding: rewrite MACs, dec_ttl, resubmit, output to the port in a register.
    let mut m = ip();
    m.eth_dst = Some([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    m.ipv4_dst = Some(Masked::with_mask(
        Ipv4Addr::new(10, 2, 0, 0),
        Ipv4Addr::new(255, 255, 255, 0),
    ));
    v.push(flow(
        20,
        5,
        cookie,
        m,
        vec![
            Action::SetField {
                field: Field::EthDst,
                value: 0xaabb_ccdd_ee02,
            },
            Action::DecTtl,
            Action::Move {
                src: Field::Reg(1),
                src_ofs: 0,
                dst: Field::Reg(2),
                dst_ofs: 8,
                n_bits: 8,
            },
            Action::Resubmit(21),
            Action::OutputReg(2),
        ],
    ));

    // VXLAN: tunnel metadata in and out.
    let m = Match {
        in_port: Some(3),
        tun_id: Some(Masked::exact(100)),
        metadata: Some(Masked::with_mask(1, 0xff)),
        ..Match::default()
    };
    let mut f = flow(
        0,
        50,
        cookie,
        m,
        vec![Action::SetField {
            field: Field::Metadata,
            value: 0x64,
        }],
    );
    f.goto_table = Some(10);
    v.push(f);
    let mut m = ip();
    m.regs[0] = Some(Masked::exact(9));
    v.push(flow(
        30,
        5,
        cookie,
        m,
        vec![
            Action::SetField {
                field: Field::TunIpv4Dst,
                value: u64::from(u32::from(Ipv4Addr::new(192, 168, 0, 2))),
            },
            Action::SetField {
                field: Field::TunId,
                value: 100,
            },
            Action::Output(3),
        ],
    ));

    // VLAN push and pop, reserved ports.
    let m = Match {
        vlan_vid: Some(Masked::exact(0)),
        in_port: Some(4),
        ..Match::default()
    };
    v.push(flow(
        31,
        5,
        cookie,
        m,
        vec![
            Action::PushVlan,
            Action::SetField {
                field: Field::VlanVid,
                value: 0x1000 | 100,
            },
            Action::Output(port::NORMAL),
        ],
    ));
    let m = Match {
        vlan_vid: Some(Masked::exact(0x1000 | 100)),
        ..Match::default()
    };
    v.push(flow(
        31,
        4,
        cookie,
        m,
        vec![
            Action::PopVlan,
            Action::Output(port::LOCAL),
            Action::Output(port::CONTROLLER),
        ],
    ));
    let m = Match {
        vlan_vid: Some(Masked::with_mask(0x1000, 0x1000)),
        ..Match::default()
    };
    v.push(flow(31, 3, cookie, m, vec![]));

    // ICMP and IPv6.
    let mut m = ip();
    m.ip_proto = Some(proto::IP_ICMP);
    m.icmpv4_type = Some(8);
    m.icmpv4_code = Some(0);
    v.push(flow(32, 5, cookie, m, vec![Action::Output(port::NORMAL)]));
    let m = Match {
        eth_type: Some(proto::ETH_IPV6),
        ip_proto: Some(proto::IP_TCP),
        ipv6_src: Some(Masked::exact("fd00::1".parse::<Ipv6Addr>().unwrap())),
        ipv6_dst: Some(Masked::with_mask(
            "fd00:1::".parse::<Ipv6Addr>().unwrap(),
            "ffff:ffff:ffff:ffff::".parse::<Ipv6Addr>().unwrap(),
        )),
        tcp_src: Some(Masked::exact(22)),
        ..Match::default()
    };
    v.push(flow(32, 4, cookie, m, vec![Action::Output(port::NORMAL)]));
    let m = Match {
        eth_type: Some(proto::ETH_IPV4),
        ip_proto: Some(47),
        ..Match::default()
    };
    v.push(flow(32, 3, cookie, m, vec![]));
    v
}

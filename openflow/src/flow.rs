//! The flow model: what a flow matches, what it does, and which table it lives in.
//!
//! Every producer of flows (the forwarding pipeline, the policy compiler) builds these values;
//! the codec turns them into OpenFlow 1.3 FLOW_MODs with OXM and Nicira (NXM) fields and actions.
//! All types are ordered and hashable so a desired flow set can be diffed against the installed
//! one without a switch. A flow's identity in the switch is its [`FlowKey`] (table, priority,
//! match), exactly what OpenFlow's strict modify/delete use.

use std::net::{Ipv4Addr, Ipv6Addr};

/// An Ethernet address.
pub type MacAddr = [u8; 6];

/// A value with an optional mask (bits set in the mask must match; `None` means exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Masked<T> {
    pub value: T,
    pub mask: Option<T>,
}

impl<T> Masked<T> {
    /// An exact match on `value`.
    pub fn exact(value: T) -> Self {
        Self { value, mask: None }
    }

    /// A match on the bits of `value` that are set in `mask`.
    pub fn with_mask(value: T, mask: T) -> Self {
        Self {
            value,
            mask: Some(mask),
        }
    }
}

/// Conntrack state bits, as in `ct_state` (OVS's NXM_NX_CT_STATE).
pub mod ct_state {
    pub const NEW: u32 = 0x01;
    pub const ESTABLISHED: u32 = 0x02;
    pub const RELATED: u32 = 0x04;
    pub const REPLY: u32 = 0x08;
    pub const INVALID: u32 = 0x10;
    pub const TRACKED: u32 = 0x20;
}

/// Reserved port numbers (OpenFlow 1.3 `ofp_port_no`).
pub mod port {
    pub const IN_PORT: u32 = 0xffff_fff8;
    pub const TABLE: u32 = 0xffff_fff9;
    pub const NORMAL: u32 = 0xffff_fffa;
    pub const FLOOD: u32 = 0xffff_fffb;
    pub const ALL: u32 = 0xffff_fffc;
    pub const CONTROLLER: u32 = 0xffff_fffd;
    pub const LOCAL: u32 = 0xffff_fffe;
    /// "No port": wildcard `out_port` in flow-stats requests and deletes.
    pub const ANY: u32 = 0xffff_ffff;
}

/// Ethertypes and IP protocol numbers the pipeline matches on.
pub mod proto {
    pub const ETH_IPV4: u16 = 0x0800;
    pub const ETH_ARP: u16 = 0x0806;
    pub const ETH_IPV6: u16 = 0x86dd;
    /// The 802.1Q tag protocol identifier `push_vlan` uses.
    pub const ETH_VLAN: u16 = 0x8100;
    pub const IP_ICMP: u8 = 1;
    pub const IP_TCP: u8 = 6;
    pub const IP_UDP: u8 = 17;
    pub const IP_SCTP: u8 = 132;
    pub const IP_ICMPV6: u8 = 58;
}

/// What a flow matches. Unset fields are wildcards. Prerequisites (an `ipv4_dst` match needs
/// `eth_type = 0x0800`, a `tcp_dst` match needs `ip_proto = 6`) are the producer's job; the
/// codec rejects a match that lacks them instead of letting the switch refuse it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Match {
    pub in_port: Option<u32>,
    pub eth_src: Option<MacAddr>,
    pub eth_dst: Option<MacAddr>,
    pub eth_type: Option<u16>,
    /// OXM `vlan_vid` semantics: the 12-bit VID plus `0x1000` (OFPVID_PRESENT) when a tag is
    /// present; `exact(0)` matches untagged packets, `with_mask(0x1000, 0x1000)` any tag.
    pub vlan_vid: Option<Masked<u16>>,
    pub ip_proto: Option<u8>,
    pub ipv4_src: Option<Masked<Ipv4Addr>>,
    pub ipv4_dst: Option<Masked<Ipv4Addr>>,
    pub ipv6_src: Option<Masked<Ipv6Addr>>,
    pub ipv6_dst: Option<Masked<Ipv6Addr>>,
    pub tcp_src: Option<Masked<u16>>,
    pub tcp_dst: Option<Masked<u16>>,
    pub udp_src: Option<Masked<u16>>,
    pub udp_dst: Option<Masked<u16>>,
    pub icmpv4_type: Option<u8>,
    pub icmpv4_code: Option<u8>,
    pub arp_op: Option<u16>,
    pub arp_spa: Option<Masked<Ipv4Addr>>,
    pub arp_tpa: Option<Masked<Ipv4Addr>>,
    pub tun_id: Option<Masked<u64>>,
    pub metadata: Option<Masked<u64>>,
    /// Nicira registers reg0..reg7 (32 bits each).
    pub regs: [Option<Masked<u32>>; 8],
    /// Conntrack state, see [`ct_state`].
    pub ct_state: Option<Masked<u32>>,
    pub ct_zone: Option<u16>,
    pub ct_mark: Option<Masked<u32>>,
    /// A conjunctive match's id (`conj_id`), matched by the flow that acts once all clauses hit.
    pub conj_id: Option<u32>,
}

/// A header or metadata field an action writes or copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    InPort,
    EthSrc,
    EthDst,
    VlanVid,
    Ipv4Src,
    Ipv4Dst,
    ArpOp,
    ArpSpa,
    ArpTpa,
    ArpSha,
    ArpTha,
    TunId,
    TunIpv4Dst,
    Metadata,
    /// Nicira register 0..=7.
    Reg(u8),
    CtMark,
}

/// Where a conntrack action takes its zone from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CtZone {
    Immediate(u16),
    /// The low 16 bits of a register (`zone=NXM_NX_REGn[0..15]`).
    Reg(u8),
}

/// A conntrack action (`ct(...)`, Nicira NXAST_CT).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CtAction {
    pub commit: bool,
    pub zone: CtZone,
    /// Recirculate to this table after conntrack (`table=`); `None` means no recirculation.
    pub table: Option<u8>,
    /// Set `ct_mark` on commit.
    pub set_mark: Option<u32>,
}

/// What a flow does, in order (OpenFlow apply-actions plus Nicira actions).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Output to a port number (or a reserved port from [`port`]).
    Output(u32),
    /// Output to the port whose number is in a register (Nicira NXAST_OUTPUT_REG, whole register).
    OutputReg(u8),
    /// Write a field. MACs, IPv4 addresses and registers all fit in the low bits of the value;
    /// `VlanVid` takes the OXM form (VID | 0x1000).
    SetField {
        field: Field,
        value: u64,
    },
    /// Copy bits between fields (Nicira NXAST_REG_MOVE).
    Move {
        src: Field,
        src_ofs: u16,
        dst: Field,
        dst_ofs: u16,
        n_bits: u16,
    },
    Ct(CtAction),
    /// One clause of a conjunctive match (`conjunction(id, clause/n_clauses)`, clause 1-based
    /// as in ovs-ofctl's syntax).
    Conjunction {
        id: u32,
        clause: u8,
        n_clauses: u8,
    },
    DecTtl,
    /// Continue in another table and come back (Nicira NXAST_RESUBMIT_TABLE, current in_port).
    Resubmit(u8),
    PushVlan,
    PopVlan,
}

/// A flow's identity in the switch: strict modify and delete address a flow by these.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    pub table: u8,
    pub priority: u16,
    pub matches: Match,
}

/// A flow: where it lives, what it matches, what it does. An empty action list with no
/// `goto_table` drops.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Flow {
    pub table: u8,
    pub priority: u16,
    pub matches: Match,
    pub actions: Vec<Action>,
    pub goto_table: Option<u8>,
    /// Identifies who installed the flow; the flow-writer only ever touches flows whose cookie
    /// it owns, so flows added by hand or by another controller survive a resync.
    pub cookie: u64,
}

impl Flow {
    /// The key this flow is addressed by in the switch.
    pub fn key(&self) -> FlowKey {
        FlowKey {
            table: self.table,
            priority: self.priority,
            matches: self.matches.clone(),
        }
    }
}

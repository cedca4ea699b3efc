//! A small flow-table interpreter for tests: walks a packet through a flow set as OVS would
//! (highest priority first, conjunctive matches, registers, `ct()` with a toy connection
//! tracker) and says where it goes, with the tunnel metadata (`tun_id`, `tun_dst`) of each
//! copy sent. It refuses what OVS leaves undefined (two different flows
//! winning at one priority), so tests catch overlapping flows too.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use openflow::flow::{ct_state, port, proto};
use openflow::{Action, CtZone, Field, Flow, MacAddr, Masked, Match};

/// The layer-4 part of an IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp { src: u16, dst: u16 },
    Udp { src: u16, dst: u16 },
    Icmp { kind: u8, code: u8 },
    Other(u8),
}

/// The layer-3 part of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L3 {
    Ipv4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        l4: L4,
    },
    Arp {
        op: u16,
        sha: MacAddr,
        spa: Ipv4Addr,
        tha: MacAddr,
        tpa: Ipv4Addr,
    },
    /// Anything else, by ethertype.
    Other(u16),
}

/// A frame entering the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub in_port: u32,
    pub eth_src: MacAddr,
    pub eth_dst: MacAddr,
    pub l3: L3,
}

impl Packet {
    /// An IPv4 packet with TTL 64.
    pub fn ipv4(
        in_port: u32,
        eth_src: MacAddr,
        eth_dst: MacAddr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        l4: L4,
    ) -> Self {
        Packet {
            in_port,
            eth_src,
            eth_dst,
            l3: L3::Ipv4 {
                src,
                dst,
                ttl: 64,
                l4,
            },
        }
    }

    /// The reply of an IPv4 packet: addresses and ports swapped, entering at `in_port`.
    pub fn reply(&self, in_port: u32, eth_src: MacAddr, eth_dst: MacAddr) -> Self {
        let l3 = match self.l3 {
            L3::Ipv4 { src, dst, l4, .. } => L3::Ipv4 {
                src: dst,
                dst: src,
                ttl: 64,
                l4: match l4 {
                    L4::Tcp { src, dst } => L4::Tcp { src: dst, dst: src },
                    L4::Udp { src, dst } => L4::Udp { src: dst, dst: src },
                    L4::Icmp { kind: 8, code } => L4::Icmp { kind: 0, code },
                    other => other,
                },
            },
            other => other,
        };
        Packet {
            in_port,
            eth_src,
            eth_dst,
            l3,
        }
    }
}

/// One copy of a packet sent out of a port, with the tunnel metadata it left with (what a
/// flow-based VXLAN port encapsulates with: the VNI and the remote VTEP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub port: u32,
    pub tun_id: u64,
    pub tun_dst: Option<Ipv4Addr>,
    /// The packet as it was at that output.
    pub packet: Packet,
}

/// What OVS would do with the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Ports the packet was sent to (empty: dropped).
    pub outputs: Vec<u32>,
    /// The same outputs with their tunnel metadata and headers.
    pub sent: Vec<Sent>,
    /// The packet as it left (headers rewritten).
    pub packet: Packet,
    /// (table, priority) of each flow that acted, in order.
    pub trace: Vec<(u8, u16)>,
    /// Whether a `ct(commit)` ran.
    pub committed: bool,
}

/// Why the interpreter gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("table {table}: different flows win at priority {priority} (undefined in OVS)")]
    Ambiguous { table: u8, priority: u16 },
    #[error("more than 64 table visits")]
    Loop,
    #[error("unsupported action {0}")]
    Unsupported(String),
}

/// A toy connection tracker: a committed connection is established both ways.
#[derive(Clone, Debug, Default)]
pub struct Conntrack {
    /// (zone, proto, src, sport, dst, dport) of committed connections' original direction.
    conns: BTreeSet<(u16, u8, Ipv4Addr, u16, Ipv4Addr, u16)>,
}

impl Conntrack {
    fn tuple(zone: u16, l3: &L3) -> Option<(u16, u8, Ipv4Addr, u16, Ipv4Addr, u16)> {
        let L3::Ipv4 { src, dst, l4, .. } = *l3 else {
            return None;
        };
        let (p, s, d) = match l4 {
            L4::Tcp { src, dst } => (proto::IP_TCP, src, dst),
            L4::Udp { src, dst } => (proto::IP_UDP, src, dst),
            L4::Icmp { .. } => (proto::IP_ICMP, 0, 0),
            L4::Other(p) => (p, 0, 0),
        };
        Some((zone, p, src, s, dst, d))
    }

    fn state(&self, zone: u16, l3: &L3) -> u32 {
        let Some(t) = Self::tuple(zone, l3) else {
            return ct_state::TRACKED | ct_state::INVALID;
        };
        let reverse = (t.0, t.1, t.4, t.5, t.2, t.3);
        if self.conns.contains(&t) {
            ct_state::TRACKED | ct_state::ESTABLISHED
        } else if self.conns.contains(&reverse) {
            ct_state::TRACKED | ct_state::ESTABLISHED | ct_state::REPLY
        } else {
            ct_state::TRACKED | ct_state::NEW
        }
    }

    fn commit(&mut self, zone: u16, l3: &L3) {
        if let Some(t) = Self::tuple(zone, l3) {
            let reverse = (t.0, t.1, t.4, t.5, t.2, t.3);
            if !self.conns.contains(&reverse) {
                self.conns.insert(t);
            }
        }
    }
}

/// The packet plus pipeline metadata.
#[derive(Clone, Debug)]
struct State {
    pkt: Packet,
    regs: [u32; 8],
    ct_state: u32,
    ct_zone: u16,
    conj_id: Option<u32>,
    tun_id: u64,
    tun_dst: Option<Ipv4Addr>,
}

/// A flow set indexed by table.
pub struct Tables<'a> {
    tables: BTreeMap<u8, Vec<&'a Flow>>,
}

impl<'a> Tables<'a> {
    pub fn new(flows: impl IntoIterator<Item = &'a Flow>) -> Self {
        let mut tables: BTreeMap<u8, Vec<&Flow>> = BTreeMap::new();
        for f in flows {
            tables.entry(f.table).or_default().push(f);
        }
        for list in tables.values_mut() {
            list.sort_by_key(|f| std::cmp::Reverse(f.priority));
        }
        Tables { tables }
    }

    /// Runs `pkt` from table 0.
    pub fn run(&self, pkt: Packet, ct: &mut Conntrack) -> Result<Outcome, SimError> {
        self.run_with_tunnel(pkt, 0, ct)
    }

    /// Runs `pkt` from table 0 as a flow-based tunnel port delivers it: decapsulated, with
    /// the VXLAN header's VNI in `tun_id` (`pkt.in_port` is the tunnel port).
    pub fn run_tunnelled(
        &self,
        pkt: Packet,
        vni: u32,
        ct: &mut Conntrack,
    ) -> Result<Outcome, SimError> {
        self.run_with_tunnel(pkt, u64::from(vni), ct)
    }

    fn run_with_tunnel(
        &self,
        pkt: Packet,
        tun_id: u64,
        ct: &mut Conntrack,
    ) -> Result<Outcome, SimError> {
        let mut st = State {
            pkt,
            regs: [0; 8],
            ct_state: 0,
            ct_zone: 0,
            conj_id: None,
            tun_id,
            tun_dst: None,
        };
        let mut out = Outcome {
            sent: Vec::new(),
            outputs: Vec::new(),
            packet: pkt,
            trace: Vec::new(),
            committed: false,
        };
        let mut next = Some(0u8);
        let mut visits = 0;
        while let Some(t) = next {
            visits += 1;
            if visits > 64 {
                return Err(SimError::Loop);
            }
            next = match self.lookup(t, &st)? {
                None => None,
                Some(flow) => {
                    out.trace.push((t, flow.priority));
                    self.execute(flow, &mut st, ct, &mut out)?
                }
            };
        }
        out.packet = st.pkt;
        Ok(out)
    }

    fn execute(
        &self,
        flow: &Flow,
        st: &mut State,
        ct: &mut Conntrack,
        out: &mut Outcome,
    ) -> Result<Option<u8>, SimError> {
        for a in &flow.actions {
            match a {
                // OVS drops an output to the packet's own in_port unless it says `in_port`.
                Action::Output(p) if *p == st.pkt.in_port => {}
                Action::Output(p) => {
                    let p = if *p == port::IN_PORT {
                        st.pkt.in_port
                    } else {
                        *p
                    };
                    send(st, out, p);
                }
                Action::OutputReg(r) => send(st, out, st.regs[usize::from(*r)]),
                Action::SetField { field, value } => write(st, *field, *value)?,
                Action::Move {
                    src,
                    src_ofs: 0,
                    dst,
                    dst_ofs: 0,
                    ..
                } => {
                    let v = read(st, *src)?;
                    write(st, *dst, v)?;
                }
                Action::Ct(c) => {
                    let zone = match c.zone {
                        CtZone::Immediate(z) => z,
                        CtZone::Reg(r) => st.regs[usize::from(r)] as u16,
                    };
                    if c.commit {
                        ct.commit(zone, &st.pkt.l3);
                        out.committed = true;
                    }
                    if let Some(t) = c.table {
                        st.ct_state = ct.state(zone, &st.pkt.l3);
                        st.ct_zone = zone;
                        return Ok(Some(t));
                    }
                }
                Action::DecTtl => {
                    if let L3::Ipv4 { ttl, .. } = &mut st.pkt.l3 {
                        if *ttl <= 1 {
                            out.outputs.clear();
                            return Ok(None);
                        }
                        *ttl -= 1;
                    }
                }
                other => return Err(SimError::Unsupported(format!("{other:?}"))),
            }
        }
        Ok(flow.goto_table)
    }

    /// The flow that handles `st` in `table`, as OVS's classifier picks it.
    fn lookup(&self, table: u8, st: &State) -> Result<Option<&'a Flow>, SimError> {
        let Some(flows) = self.tables.get(&table) else {
            return Ok(None);
        };
        let hits: Vec<&Flow> = flows
            .iter()
            .copied()
            .filter(|f| matches(&f.matches, st))
            .collect();
        let soft = |f: &&Flow| {
            !f.actions.is_empty()
                && f.actions
                    .iter()
                    .all(|a| matches!(a, Action::Conjunction { .. }))
        };
        let hard = top(table, hits.iter().copied().filter(|f| !soft(f)))?;
        let floor = hard.map(|f| i32::from(f.priority)).unwrap_or(-1);
        let mut prios: Vec<u16> = hits
            .iter()
            .filter(|f| soft(f) && i32::from(f.priority) > floor)
            .map(|f| f.priority)
            .collect();
        prios.sort_unstable_by(|a, b| b.cmp(a));
        prios.dedup();
        for p in prios {
            // conj id → (n_clauses, clauses seen)
            let mut conj: BTreeMap<u32, (u8, BTreeSet<u8>)> = BTreeMap::new();
            for f in hits.iter().filter(|f| f.priority == p && soft(f)) {
                for a in &f.actions {
                    if let Action::Conjunction {
                        id,
                        clause,
                        n_clauses,
                    } = a
                    {
                        conj.entry(*id)
                            .or_insert((*n_clauses, BTreeSet::new()))
                            .1
                            .insert(*clause);
                    }
                }
            }
            let mut winners = Vec::new();
            for (id, (n, seen)) in conj {
                if seen.len() == usize::from(n) {
                    let with_id = State {
                        conj_id: Some(id),
                        ..st.clone()
                    };
                    let cands = flows
                        .iter()
                        .copied()
                        .filter(|f| !soft(f) && matches(&f.matches, &with_id));
                    if let Some(f) = top(table, cands)? {
                        winners.push(f);
                    }
                }
            }
            if let Some(first) = winners.first() {
                if winners
                    .iter()
                    .any(|w| (&w.actions, w.goto_table) != (&first.actions, first.goto_table))
                {
                    return Err(SimError::Ambiguous { table, priority: p });
                }
                return Ok(Some(first));
            }
        }
        Ok(hard)
    }
}

/// Records one output of the packet as it is now.
fn send(st: &State, out: &mut Outcome, port: u32) {
    out.outputs.push(port);
    out.sent.push(Sent {
        port,
        tun_id: st.tun_id,
        tun_dst: st.tun_dst,
        packet: st.pkt,
    });
}

/// The highest-priority flow of `flows`; an error when two with different effects tie.
fn top<'a>(table: u8, flows: impl Iterator<Item = &'a Flow>) -> Result<Option<&'a Flow>, SimError> {
    let mut best: Option<&Flow> = None;
    for f in flows {
        match best {
            None => best = Some(f),
            Some(b) if f.priority > b.priority => best = Some(f),
            Some(b)
                if f.priority == b.priority
                    && (&f.actions, f.goto_table) != (&b.actions, b.goto_table) =>
            {
                return Err(SimError::Ambiguous {
                    table,
                    priority: f.priority,
                });
            }
            _ => {}
        }
    }
    Ok(best)
}

fn masked_eq<T: Copy + Into<u128>>(m: &Option<Masked<T>>, v: Option<T>) -> bool {
    match (m, v) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(m), Some(v)) => {
            let mask = m.mask.map(Into::into).unwrap_or(u128::MAX);
            (m.value.into() & mask) == (v.into() & mask)
        }
    }
}

fn exact<T: PartialEq>(m: &Option<T>, v: Option<T>) -> bool {
    match m {
        None => true,
        Some(x) => v.as_ref() == Some(x),
    }
}

fn ip(a: Ipv4Addr) -> u32 {
    u32::from(a)
}

fn matches(m: &Match, st: &State) -> bool {
    let p = &st.pkt;
    let (eth_type, ipv4, l4, arp) = match p.l3 {
        L3::Ipv4 { src, dst, l4, .. } => (proto::ETH_IPV4, Some((src, dst)), Some(l4), None),
        L3::Arp { op, spa, tpa, .. } => (proto::ETH_ARP, None, None, Some((op, spa, tpa))),
        L3::Other(t) => (t, None, None, None),
    };
    let ip_proto = l4.map(|l| match l {
        L4::Tcp { .. } => proto::IP_TCP,
        L4::Udp { .. } => proto::IP_UDP,
        L4::Icmp { .. } => proto::IP_ICMP,
        L4::Other(n) => n,
    });
    let tcp = match l4 {
        Some(L4::Tcp { src, dst }) => Some((src, dst)),
        _ => None,
    };
    let udp = match l4 {
        Some(L4::Udp { src, dst }) => Some((src, dst)),
        _ => None,
    };
    let icmp = match l4 {
        Some(L4::Icmp { kind, code }) => Some((kind, code)),
        _ => None,
    };
    let ipm = |m: &Option<Masked<Ipv4Addr>>, v: Option<Ipv4Addr>| {
        let m = m.map(|m| Masked {
            value: ip(m.value),
            mask: m.mask.map(ip),
        });
        masked_eq(&m, v.map(ip))
    };
    let regs_ok = m
        .regs
        .iter()
        .zip(st.regs)
        .all(|(m, v)| masked_eq(m, Some(v)));
    exact(&m.in_port, Some(p.in_port))
        && exact(&m.eth_src, Some(p.eth_src))
        && exact(&m.eth_dst, Some(p.eth_dst))
        && exact(&m.eth_type, Some(eth_type))
        && m.vlan_vid.is_none()
        && exact(&m.ip_proto, ip_proto)
        && ipm(&m.ipv4_src, ipv4.map(|x| x.0))
        && ipm(&m.ipv4_dst, ipv4.map(|x| x.1))
        && m.ipv6_src.is_none()
        && m.ipv6_dst.is_none()
        && masked_eq(&m.tcp_src, tcp.map(|x| x.0))
        && masked_eq(&m.tcp_dst, tcp.map(|x| x.1))
        && masked_eq(&m.udp_src, udp.map(|x| x.0))
        && masked_eq(&m.udp_dst, udp.map(|x| x.1))
        && exact(&m.icmpv4_type, icmp.map(|x| x.0))
        && exact(&m.icmpv4_code, icmp.map(|x| x.1))
        && exact(&m.arp_op, arp.map(|x| x.0))
        && ipm(&m.arp_spa, arp.map(|x| x.1))
        && ipm(&m.arp_tpa, arp.map(|x| x.2))
        && masked_eq(&m.tun_id, Some(st.tun_id))
        && m.metadata.is_none()
        && regs_ok
        && masked_eq(&m.ct_state, Some(st.ct_state))
        && exact(&m.ct_zone, Some(st.ct_zone))
        && m.ct_mark.is_none()
        && m.conj_id == st.conj_id.filter(|_| m.conj_id.is_some())
}

fn mac_of(v: u64) -> MacAddr {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn mac_val(m: MacAddr) -> u64 {
    m.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b))
}

fn read(st: &State, f: Field) -> Result<u64, SimError> {
    let p = &st.pkt;
    Ok(match (f, p.l3) {
        (Field::EthSrc, _) => mac_val(p.eth_src),
        (Field::EthDst, _) => mac_val(p.eth_dst),
        (Field::Reg(r), _) => u64::from(st.regs[usize::from(r)]),
        (Field::TunId, _) => st.tun_id,
        (Field::ArpSha, L3::Arp { sha, .. }) => mac_val(sha),
        (Field::ArpTha, L3::Arp { tha, .. }) => mac_val(tha),
        (Field::ArpSpa, L3::Arp { spa, .. }) => u64::from(ip(spa)),
        (Field::ArpTpa, L3::Arp { tpa, .. }) => u64::from(ip(tpa)),
        (Field::ArpOp, L3::Arp { op, .. }) => u64::from(op),
        (Field::Ipv4Src, L3::Ipv4 { src, .. }) => u64::from(ip(src)),
        (Field::Ipv4Dst, L3::Ipv4 { dst, .. }) => u64::from(ip(dst)),
        (f, _) => return Err(SimError::Unsupported(format!("read {f:?}"))),
    })
}

fn write(st: &mut State, f: Field, v: u64) -> Result<(), SimError> {
    let a = Ipv4Addr::from(v as u32);
    match (f, &mut st.pkt.l3) {
        (Field::EthSrc, _) => st.pkt.eth_src = mac_of(v),
        (Field::EthDst, _) => st.pkt.eth_dst = mac_of(v),
        (Field::Reg(r), _) => st.regs[usize::from(r)] = v as u32,
        (Field::TunId, _) => st.tun_id = v,
        (Field::TunIpv4Dst, _) => st.tun_dst = Some(a),
        (Field::ArpSha, L3::Arp { sha, .. }) => *sha = mac_of(v),
        (Field::ArpTha, L3::Arp { tha, .. }) => *tha = mac_of(v),
        (Field::ArpSpa, L3::Arp { spa, .. }) => *spa = a,
        (Field::ArpTpa, L3::Arp { tpa, .. }) => *tpa = a,
        (Field::ArpOp, L3::Arp { op, .. }) => *op = v as u16,
        (Field::Ipv4Src, L3::Ipv4 { src, .. }) => *src = a,
        (Field::Ipv4Dst, L3::Ipv4 { dst, .. }) => *dst = a,
        (f, _) => return Err(SimError::Unsupported(format!("write {f:?}"))),
    }
    Ok(())
}

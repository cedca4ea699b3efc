//! `Display` for the flow model in `ovs-ofctl` syntax.
//!
//! A [`Flow`] renders as one line `ovs-ofctl -O OpenFlow13 add-flows` accepts, e.g.
//! `cookie=0x10,table=10,priority=100,ct_state=+new+trk,ip,reg1=0x5,nw_dst=10.1.1.2
//! actions=ct(commit,zone=NXM_NX_REG4[0..15]),goto_table:20`. Field names and value forms are
//! the ones OVS 3.1 prints back in `dump-flows` (`ip`/`tcp`/`udp6` shortcuts, `tp_dst`, CIDR
//! masks, `+new-est` flags), so a rendering and a dump differ only in the order of the match
//! fields, the spacing of the header and the defaults OVS leaves out; [`crate::ofctl`] removes
//! those differences for comparisons.

use std::fmt::{self, Display, Formatter, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::flow::{
    port, proto, Action, CtAction, CtZone, Field, Flow, FlowKey, MacAddr, Masked, Match,
};
use crate::normalize::CT_STATE_BITS;

/// `ct_state` flag names in bit order, as OVS prints them.
const CT_STATE_FLAGS: [(u32, &str); 8] = [
    (0x01, "new"),
    (0x02, "est"),
    (0x04, "rel"),
    (0x08, "rpl"),
    (0x10, "inv"),
    (0x20, "trk"),
    (0x40, "snat"),
    (0x80, "dnat"),
];

/// The name OVS uses for a reserved port number, if it is one.
pub(crate) fn reserved_port_name(p: u32) -> Option<&'static str> {
    Some(match p {
        port::IN_PORT => "IN_PORT",
        port::TABLE => "TABLE",
        port::NORMAL => "NORMAL",
        port::FLOOD => "FLOOD",
        port::ALL => "ALL",
        port::CONTROLLER => "CONTROLLER",
        port::LOCAL => "LOCAL",
        port::ANY => "ANY",
        _ => return None,
    })
}

struct Mac<'a>(&'a MacAddr);

impl Display for Mac<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

fn mac_from_u64(v: u64) -> MacAddr {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The prefix length of a contiguous mask, `None` if the mask has holes.
fn prefix_len(mask: u128, width: u32) -> Option<u32> {
    let aligned = mask << (128 - width);
    let ones = aligned.leading_ones();
    let expect = if ones == 0 {
        0
    } else {
        u128::MAX << (128 - ones)
    };
    (expect == aligned).then_some(ones)
}

fn write_ipv4(out: &mut String, name: &str, m: &Masked<Ipv4Addr>) {
    let _ = write!(out, ",{name}={}", m.value);
    if let Some(mask) = m.mask {
        match prefix_len(u32::from(mask) as u128, 32) {
            Some(32) => {}
            Some(n) => {
                let _ = write!(out, "/{n}");
            }
            None => {
                let _ = write!(out, "/{mask}");
            }
        }
    }
}

fn write_ipv6(out: &mut String, name: &str, m: &Masked<Ipv6Addr>) {
    let _ = write!(out, ",{name}={}", m.value);
    if let Some(mask) = m.mask {
        match prefix_len(u128::from(mask), 128) {
            Some(128) => {}
            Some(n) => {
                let _ = write!(out, "/{n}");
            }
            None => {
                let _ = write!(out, "/{mask}");
            }
        }
    }
}

/// A masked integer: exact values in `exact` form (decimal or hex), masked ones in hex.
fn write_int<T: Into<u64> + Copy>(out: &mut String, name: &str, m: &Masked<T>, hex: bool) {
    match m.mask {
        None => {
            if hex {
                let _ = write!(out, ",{name}=0x{:x}", m.value.into());
            } else {
                let _ = write!(out, ",{name}={}", m.value.into());
            }
        }
        Some(mask) => {
            let _ = write!(out, ",{name}=0x{:x}/0x{:x}", m.value.into(), mask.into());
        }
    }
}

/// A fully specified state: its set flags joined by `|` (`0` for none).
fn write_ct_flags(out: &mut String, value: u32) {
    let names: Vec<&str> = CT_STATE_FLAGS
        .iter()
        .filter(|(bit, _)| value & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    let unknown = value & !CT_STATE_BITS;
    if names.is_empty() && unknown == 0 {
        out.push('0');
        return;
    }
    out.push_str(&names.join("|"));
    if unknown != 0 {
        if !names.is_empty() {
            out.push('|');
        }
        let _ = write!(out, "0x{unknown:x}");
    }
}

fn write_ct_state(out: &mut String, m: &Masked<u32>) {
    out.push_str(",ct_state=");
    match m.mask {
        // OVS prints a state whose every defined bit is specified as its set flags.
        None => write_ct_flags(out, m.value),
        Some(mask) if mask & CT_STATE_BITS == CT_STATE_BITS => write_ct_flags(out, m.value & mask),
        Some(mask) => {
            for (bit, name) in CT_STATE_FLAGS {
                if mask & bit != 0 {
                    out.push(if m.value & bit != 0 { '+' } else { '-' });
                    out.push_str(name);
                }
            }
        }
    }
}

fn write_port(out: &mut String, p: u32) {
    match reserved_port_name(p) {
        Some(name) => out.push_str(name),
        None => {
            let _ = write!(out, "{p}");
        }
    }
}

/// The protocol shortcut OVS prints (`ip`, `tcp6`, ...) and whether it already covers `ip_proto`.
fn proto_shortcut(eth_type: u16, ip_proto: Option<u8>) -> Option<(&'static str, bool)> {
    Some(match (eth_type, ip_proto) {
        (proto::ETH_IPV4, Some(proto::IP_TCP)) => ("tcp", true),
        (proto::ETH_IPV4, Some(proto::IP_UDP)) => ("udp", true),
        (proto::ETH_IPV4, Some(proto::IP_ICMP)) => ("icmp", true),
        (proto::ETH_IPV4, Some(proto::IP_SCTP)) => ("sctp", true),
        (proto::ETH_IPV4, _) => ("ip", false),
        (proto::ETH_IPV6, Some(proto::IP_TCP)) => ("tcp6", true),
        (proto::ETH_IPV6, Some(proto::IP_UDP)) => ("udp6", true),
        (proto::ETH_IPV6, Some(proto::IP_ICMPV6)) => ("icmp6", true),
        (proto::ETH_IPV6, Some(proto::IP_SCTP)) => ("sctp6", true),
        (proto::ETH_IPV6, _) => ("ipv6", false),
        (proto::ETH_ARP, _) => ("arp", false),
        _ => return None,
    })
}

impl Match {
    /// The match in `ovs-ofctl` syntax, without a leading comma (empty for match-all).
    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(m) = &self.ct_state {
            write_ct_state(&mut out, m);
        }
        if let Some(z) = self.ct_zone {
            let _ = write!(out, ",ct_zone={z}");
        }
        if let Some(m) = &self.ct_mark {
            write_int(&mut out, "ct_mark", m, true);
        }
        if let Some(id) = self.conj_id {
            let _ = write!(out, ",conj_id={id}");
        }
        let mut proto_done = false;
        if let Some(t) = self.eth_type {
            match proto_shortcut(t, self.ip_proto) {
                Some((name, covers)) => {
                    let _ = write!(out, ",{name}");
                    proto_done = covers;
                }
                None => {
                    let _ = write!(out, ",dl_type=0x{t:04x}");
                }
            }
        }
        for (i, r) in self.regs.iter().enumerate() {
            if let Some(m) = r {
                write_int(&mut out, &format!("reg{i}"), m, true);
            }
        }
        if let Some(m) = &self.tun_id {
            write_int(&mut out, "tun_id", m, true);
        }
        if let Some(m) = &self.metadata {
            write_int(&mut out, "metadata", m, true);
        }
        if let Some(p) = self.in_port {
            out.push_str(",in_port=");
            write_port(&mut out, p);
        }
        if let Some(v) = &self.vlan_vid {
            match v.mask {
                None if v.value & 0x1000 != 0 => {
                    let _ = write!(out, ",dl_vlan={}", v.value & 0xfff);
                }
                None => {
                    let _ = write!(out, ",vlan_tci=0x{:04x}/0x1fff", v.value);
                }
                Some(mask) => {
                    let _ = write!(out, ",vlan_tci=0x{:04x}/0x{:04x}", v.value, mask);
                }
            }
        }
        if let Some(m) = &self.eth_src {
            let _ = write!(out, ",dl_src={}", Mac(m));
        }
        if let Some(m) = &self.eth_dst {
            let _ = write!(out, ",dl_dst={}", Mac(m));
        }
        if let Some(m) = &self.ipv4_src {
            write_ipv4(&mut out, "nw_src", m);
        }
        if let Some(m) = &self.ipv4_dst {
            write_ipv4(&mut out, "nw_dst", m);
        }
        if let Some(m) = &self.ipv6_src {
            write_ipv6(&mut out, "ipv6_src", m);
        }
        if let Some(m) = &self.ipv6_dst {
            write_ipv6(&mut out, "ipv6_dst", m);
        }
        if let (Some(p), false) = (self.ip_proto, proto_done) {
            let _ = write!(out, ",nw_proto={p}");
        }
        if let Some(m) = &self.arp_spa {
            write_ipv4(&mut out, "arp_spa", m);
        }
        if let Some(m) = &self.arp_tpa {
            write_ipv4(&mut out, "arp_tpa", m);
        }
        if let Some(op) = self.arp_op {
            let _ = write!(out, ",arp_op={op}");
        }
        // TCP and UDP ports both print as `tp_src`/`tp_dst` (the protocol is in the shortcut).
        for m in [&self.tcp_src, &self.udp_src].into_iter().flatten() {
            write_int(&mut out, "tp_src", m, false);
        }
        for m in [&self.tcp_dst, &self.udp_dst].into_iter().flatten() {
            write_int(&mut out, "tp_dst", m, false);
        }
        if let Some(t) = self.icmpv4_type {
            let _ = write!(out, ",icmp_type={t}");
        }
        if let Some(c) = self.icmpv4_code {
            let _ = write!(out, ",icmp_code={c}");
        }
        if out.starts_with(',') {
            out.remove(0);
        }
        out
    }
}

impl Display for Match {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl Field {
    /// The name `set_field` uses (`reg1`, `eth_src`, `tun_dst`, ...).
    pub fn ofctl_name(&self) -> String {
        match self {
            Field::InPort => "in_port".into(),
            Field::EthSrc => "eth_src".into(),
            Field::EthDst => "eth_dst".into(),
            Field::VlanVid => "vlan_vid".into(),
            Field::Ipv4Src => "ip_src".into(),
            Field::Ipv4Dst => "ip_dst".into(),
            Field::ArpOp => "arp_op".into(),
            Field::ArpSpa => "arp_spa".into(),
            Field::ArpTpa => "arp_tpa".into(),
            Field::ArpSha => "arp_sha".into(),
            Field::ArpTha => "arp_tha".into(),
            Field::TunId => "tun_id".into(),
            Field::TunIpv4Dst => "tun_dst".into(),
            Field::Metadata => "metadata".into(),
            Field::Reg(n) => format!("reg{n}"),
            Field::CtMark => "ct_mark".into(),
        }
    }

    /// The NXM/OXM name `move` and `output:` subfields use (`NXM_NX_REG1`, `OXM_OF_METADATA`).
    pub fn nxm_name(&self) -> String {
        match self {
            Field::InPort => "NXM_OF_IN_PORT".into(),
            Field::EthSrc => "NXM_OF_ETH_SRC".into(),
            Field::EthDst => "NXM_OF_ETH_DST".into(),
            Field::VlanVid => "OXM_OF_VLAN_VID".into(),
            Field::Ipv4Src => "NXM_OF_IP_SRC".into(),
            Field::Ipv4Dst => "NXM_OF_IP_DST".into(),
            Field::ArpOp => "NXM_OF_ARP_OP".into(),
            Field::ArpSpa => "NXM_OF_ARP_SPA".into(),
            Field::ArpTpa => "NXM_OF_ARP_TPA".into(),
            Field::ArpSha => "NXM_NX_ARP_SHA".into(),
            Field::ArpTha => "NXM_NX_ARP_THA".into(),
            Field::TunId => "NXM_NX_TUN_ID".into(),
            Field::TunIpv4Dst => "NXM_NX_TUN_IPV4_DST".into(),
            Field::Metadata => "OXM_OF_METADATA".into(),
            Field::Reg(n) => format!("NXM_NX_REG{n}"),
            Field::CtMark => "NXM_NX_CT_MARK".into(),
        }
    }

    /// The field's width in bits as OVS counts it for subfields (`[]` means all of them).
    pub fn bits(&self) -> u16 {
        match self {
            Field::InPort | Field::ArpOp => 16,
            Field::VlanVid => 12,
            Field::EthSrc | Field::EthDst | Field::ArpSha | Field::ArpTha => 48,
            Field::Ipv4Src
            | Field::Ipv4Dst
            | Field::ArpSpa
            | Field::ArpTpa
            | Field::TunIpv4Dst
            | Field::Reg(_)
            | Field::CtMark => 32,
            Field::TunId | Field::Metadata => 64,
        }
    }

    /// A value for this field in the form `set_field` prints it.
    fn format_value(&self, v: u64) -> String {
        match self {
            Field::EthSrc | Field::EthDst | Field::ArpSha | Field::ArpTha => {
                Mac(&mac_from_u64(v)).to_string()
            }
            Field::Ipv4Src | Field::Ipv4Dst | Field::ArpSpa | Field::ArpTpa | Field::TunIpv4Dst => {
                Ipv4Addr::from(v as u32).to_string()
            }
            Field::InPort | Field::VlanVid | Field::ArpOp => v.to_string(),
            Field::TunId | Field::Metadata | Field::Reg(_) | Field::CtMark => format!("0x{v:x}"),
        }
    }
}

/// A subfield in `NXM_NX_REG1[0..7]` form (`[]` for the whole field, `[n]` for one bit).
struct Subfield<'a> {
    field: &'a Field,
    ofs: u16,
    n_bits: u16,
}

impl Display for Subfield<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let name = self.field.nxm_name();
        if self.ofs == 0 && self.n_bits == self.field.bits() {
            write!(f, "{name}[]")
        } else if self.n_bits == 1 {
            write!(f, "{name}[{}]", self.ofs)
        } else {
            let end = u32::from(self.ofs) + u32::from(self.n_bits) - 1;
            write!(f, "{name}[{}..{end}]", self.ofs)
        }
    }
}

impl Display for CtAction {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.commit {
            parts.push("commit".into());
        }
        if let Some(t) = self.table {
            parts.push(format!("table={t}"));
        }
        match self.zone {
            CtZone::Immediate(0) => {}
            CtZone::Immediate(z) => parts.push(format!("zone={z}")),
            CtZone::Reg(r) => parts.push(format!("zone=NXM_NX_REG{r}[0..15]")),
        }
        if let Some(mark) = self.set_mark {
            parts.push(format!("exec(set_field:0x{mark:x}->ct_mark)"));
        }
        write!(f, "ct({})", parts.join(","))
    }
}

impl Display for Action {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output(port::CONTROLLER) => f.write_str("CONTROLLER:65535"),
            Action::Output(p) => match reserved_port_name(*p) {
                Some(name) => f.write_str(name),
                None => write!(f, "output:{p}"),
            },
            Action::OutputReg(r) => write!(f, "output:NXM_NX_REG{r}[]"),
            Action::SetField { field, value } => {
                write!(
                    f,
                    "set_field:{}->{}",
                    field.format_value(*value),
                    field.ofctl_name()
                )
            }
            Action::Move {
                src,
                src_ofs,
                dst,
                dst_ofs,
                n_bits,
            } => write!(
                f,
                "move:{}->{}",
                Subfield {
                    field: src,
                    ofs: *src_ofs,
                    n_bits: *n_bits
                },
                Subfield {
                    field: dst,
                    ofs: *dst_ofs,
                    n_bits: *n_bits
                }
            ),
            Action::Ct(ct) => ct.fmt(f),
            Action::Conjunction {
                id,
                clause,
                n_clauses,
            } => write!(f, "conjunction({id},{clause}/{n_clauses})"),
            Action::DecTtl => f.write_str("dec_ttl"),
            Action::Resubmit(t) => write!(f, "resubmit(,{t})"),
            Action::PushVlan => f.write_str("push_vlan:0x8100"),
            Action::PopVlan => f.write_str("pop_vlan"),
        }
    }
}

impl Flow {
    /// The action list in `ovs-ofctl` syntax (what follows `actions=`): the apply-actions, then
    /// `goto_table:N`, or `drop` when there is neither.
    pub fn actions_string(&self) -> String {
        let mut parts: Vec<String> = self.actions.iter().map(ToString::to_string).collect();
        if let Some(t) = self.goto_table {
            parts.push(format!("goto_table:{t}"));
        }
        if parts.is_empty() {
            "drop".into()
        } else {
            parts.join(",")
        }
    }
}

impl Display for FlowKey {
    /// `table=T,priority=P[,match]`: the form `del-flows --strict` takes.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "table={},priority={}", self.table, self.priority)?;
        let m = self.matches.render();
        if !m.is_empty() {
            write!(f, ",{m}")?;
        }
        Ok(())
    }
}

impl Display for Flow {
    /// `cookie=0xC,table=T,priority=P[,match] actions=A`: one line of `ovs-ofctl add-flows`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cookie=0x{:x},{} actions={}",
            self.cookie,
            self.key(),
            self.actions_string()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ct_state;

    #[test]
    fn renders_the_brief_example() {
        let mut m = Match {
            eth_type: Some(proto::ETH_IPV4),
            ipv4_dst: Some(Masked::exact(Ipv4Addr::new(10, 1, 1, 2))),
            ct_state: Some(Masked::with_mask(
                ct_state::NEW | ct_state::TRACKED,
                ct_state::NEW | ct_state::TRACKED,
            )),
            ..Match::default()
        };
        m.regs[1] = Some(Masked::exact(5));
        let flow = Flow {
            table: 10,
            priority: 100,
            matches: m,
            actions: vec![Action::Ct(CtAction {
                commit: true,
                zone: CtZone::Reg(4),
                table: None,
                set_mark: None,
            })],
            goto_table: Some(20),
            cookie: 0x10,
        };
        assert_eq!(
            flow.to_string(),
            "cookie=0x10,table=10,priority=100,ct_state=+new+trk,ip,reg1=0x5,nw_dst=10.1.1.2 \
             actions=ct(commit,zone=NXM_NX_REG4[0..15]),goto_table:20"
        );
    }

    #[test]
    fn masks_and_shortcuts() {
        let m = Match {
            eth_type: Some(proto::ETH_IPV4),
            ip_proto: Some(proto::IP_TCP),
            ipv4_src: Some(Masked::with_mask(
                Ipv4Addr::new(10, 1, 0, 0),
                Ipv4Addr::new(255, 255, 0, 0),
            )),
            ipv4_dst: Some(Masked::with_mask(
                Ipv4Addr::new(10, 0, 0, 0),
                Ipv4Addr::new(255, 0, 255, 0),
            )),
            tcp_dst: Some(Masked::with_mask(0x1000, 0xf000)),
            ..Match::default()
        };
        assert_eq!(
            m.to_string(),
            "tcp,nw_src=10.1.0.0/16,nw_dst=10.0.0.0/255.0.255.0,tp_dst=0x1000/0xf000"
        );
        let m = Match {
            ct_state: Some(Masked::exact(0x21)),
            vlan_vid: Some(Masked::exact(0x1064)),
            ..Match::default()
        };
        assert_eq!(m.to_string(), "ct_state=new|trk,dl_vlan=100");
        let m = Match {
            ct_state: Some(Masked::with_mask(0x01, 0x23)),
            ..Match::default()
        };
        assert_eq!(m.to_string(), "ct_state=+new-est-trk");
    }

    #[test]
    fn actions() {
        let a = Action::Move {
            src: Field::Reg(1),
            src_ofs: 0,
            dst: Field::Reg(2),
            dst_ofs: 8,
            n_bits: 8,
        };
        assert_eq!(a.to_string(), "move:NXM_NX_REG1[0..7]->NXM_NX_REG2[8..15]");
        let a = Action::Move {
            src: Field::EthSrc,
            src_ofs: 0,
            dst: Field::EthDst,
            dst_ofs: 0,
            n_bits: 48,
        };
        assert_eq!(a.to_string(), "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]");
        let a = Action::SetField {
            field: Field::EthSrc,
            value: 0x0011_2233_4455,
        };
        assert_eq!(a.to_string(), "set_field:00:11:22:33:44:55->eth_src");
        let a = Action::Ct(CtAction {
            commit: true,
            zone: CtZone::Immediate(7),
            table: Some(12),
            set_mark: Some(3),
        });
        assert_eq!(
            a.to_string(),
            "ct(commit,table=12,zone=7,exec(set_field:0x3->ct_mark))"
        );
        assert_eq!(
            Action::Output(port::CONTROLLER).to_string(),
            "CONTROLLER:65535"
        );
        assert_eq!(Action::Output(3).to_string(), "output:3");
        let f = Flow {
            table: 0,
            priority: 0,
            matches: Match::default(),
            actions: vec![],
            goto_table: None,
            cookie: 0,
        };
        assert_eq!(f.to_string(), "cookie=0x0,table=0,priority=0 actions=drop");
    }

    #[test]
    fn prefix_lengths() {
        assert_eq!(prefix_len(0xffff_0000, 32), Some(16));
        assert_eq!(prefix_len(0, 32), Some(0));
        assert_eq!(prefix_len(0xffff_ffff, 32), Some(32));
        assert_eq!(prefix_len(0xff00_ff00, 32), None);
        assert_eq!(prefix_len(u128::MAX, 128), Some(128));
    }
}

//! OXM: the TLV match fields of OpenFlow 1.3 (`ofp_match` of type OXM) and the field headers
//! `set_field`, `reg_move`, `output_reg` and `ct` use.
//!
//! Fields are written with the header OVS itself uses in OpenFlow 1.3 (OXM basic class where
//! the field has one, Nicira NXM classes 0/1 for registers, conntrack, `conj_id`, tunnel
//! destination); on decode every alias OVS may send (NXM_OF_*, NXM_NX_*, OXM_OF_*) is accepted.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::{DecodeError, EncodeError};
use super::wire::{pad8, patch_u16, Reader};
use crate::flow::{proto, Field, Masked, Match};

pub(crate) const CLASS_NXM0: u16 = 0x0000;
pub(crate) const CLASS_NXM1: u16 = 0x0001;
pub(crate) const CLASS_BASIC: u16 = 0x8000;
pub(crate) const CLASS_EXPERIMENTER: u16 = 0xffff;

/// `ofp_match.type` for OXM matches.
const OFPMT_OXM: u16 = 1;

/// A match or action field, independent of which header names it on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mf {
    /// OXM_OF_IN_PORT, 32 bits.
    InPort,
    /// NXM_OF_IN_PORT, 16 bits (what OVS uses for `set_field:N->in_port` and `move`).
    InPort16,
    Metadata,
    EthDst,
    EthSrc,
    EthType,
    VlanVid,
    IpProto,
    Ipv4Src,
    Ipv4Dst,
    TcpSrc,
    TcpDst,
    UdpSrc,
    UdpDst,
    IcmpType,
    IcmpCode,
    ArpOp,
    ArpSpa,
    ArpTpa,
    ArpSha,
    ArpTha,
    Ipv6Src,
    Ipv6Dst,
    TunId,
    TunIpv4Dst,
    Reg(u8),
    CtState,
    CtZone,
    CtMark,
    ConjId,
}

/// (field, class, field number, value bytes). The first row of a field is the header we send.
const TABLE: &[(Mf, u16, u8, u8)] = &[
    (Mf::InPort, CLASS_BASIC, 0, 4),
    (Mf::InPort16, CLASS_NXM0, 0, 2),
    (Mf::Metadata, CLASS_BASIC, 2, 8),
    (Mf::EthDst, CLASS_BASIC, 3, 6),
    (Mf::EthDst, CLASS_NXM0, 1, 6),
    (Mf::EthSrc, CLASS_BASIC, 4, 6),
    (Mf::EthSrc, CLASS_NXM0, 2, 6),
    (Mf::EthType, CLASS_BASIC, 5, 2),
    (Mf::EthType, CLASS_NXM0, 3, 2),
    (Mf::VlanVid, CLASS_BASIC, 6, 2),
    (Mf::IpProto, CLASS_BASIC, 10, 1),
    (Mf::IpProto, CLASS_NXM0, 6, 1),
    (Mf::Ipv4Src, CLASS_BASIC, 11, 4),
    (Mf::Ipv4Src, CLASS_NXM0, 7, 4),
    (Mf::Ipv4Dst, CLASS_BASIC, 12, 4),
    (Mf::Ipv4Dst, CLASS_NXM0, 8, 4),
    (Mf::TcpSrc, CLASS_BASIC, 13, 2),
    (Mf::TcpSrc, CLASS_NXM0, 9, 2),
    (Mf::TcpDst, CLASS_BASIC, 14, 2),
    (Mf::TcpDst, CLASS_NXM0, 10, 2),
    (Mf::UdpSrc, CLASS_BASIC, 15, 2),
    (Mf::UdpSrc, CLASS_NXM0, 11, 2),
    (Mf::UdpDst, CLASS_BASIC, 16, 2),
    (Mf::UdpDst, CLASS_NXM0, 12, 2),
    (Mf::IcmpType, CLASS_BASIC, 19, 1),
    (Mf::IcmpType, CLASS_NXM0, 13, 1),
    (Mf::IcmpCode, CLASS_BASIC, 20, 1),
    (Mf::IcmpCode, CLASS_NXM0, 14, 1),
    (Mf::ArpOp, CLASS_BASIC, 21, 2),
    (Mf::ArpOp, CLASS_NXM0, 15, 2),
    (Mf::ArpSpa, CLASS_BASIC, 22, 4),
    (Mf::ArpSpa, CLASS_NXM0, 16, 4),
    (Mf::ArpTpa, CLASS_BASIC, 23, 4),
    (Mf::ArpTpa, CLASS_NXM0, 17, 4),
    (Mf::ArpSha, CLASS_BASIC, 24, 6),
    (Mf::ArpSha, CLASS_NXM1, 17, 6),
    (Mf::ArpTha, CLASS_BASIC, 25, 6),
    (Mf::ArpTha, CLASS_NXM1, 18, 6),
    (Mf::Ipv6Src, CLASS_BASIC, 26, 16),
    (Mf::Ipv6Src, CLASS_NXM1, 19, 16),
    (Mf::Ipv6Dst, CLASS_BASIC, 27, 16),
    (Mf::Ipv6Dst, CLASS_NXM1, 20, 16),
    (Mf::TunId, CLASS_BASIC, 38, 8),
    (Mf::TunId, CLASS_NXM1, 16, 8),
    (Mf::TunIpv4Dst, CLASS_NXM1, 32, 4),
    (Mf::ConjId, CLASS_NXM1, 37, 4),
    (Mf::CtState, CLASS_NXM1, 105, 4),
    (Mf::CtZone, CLASS_NXM1, 106, 2),
    (Mf::CtMark, CLASS_NXM1, 107, 4),
];

impl Mf {
    /// (class, field number, value bytes) of the header we send.
    pub(crate) fn header(self) -> (u16, u8, u8) {
        if let Mf::Reg(n) = self {
            return (CLASS_NXM1, n, 4);
        }
        TABLE
            .iter()
            .find(|(mf, ..)| *mf == self)
            .map(|&(_, c, f, l)| (c, f, l))
            .unwrap_or((CLASS_NXM1, 0, 4))
    }

    /// The field a header names, if we know it (and its length is the field's).
    pub(crate) fn lookup(class: u16, field: u8, len: u8) -> Option<Mf> {
        if class == CLASS_NXM1 && field < 8 && len == 4 {
            return Some(Mf::Reg(field));
        }
        TABLE
            .iter()
            .find(|&&(_, c, f, l)| c == class && f == field && l == len)
            .map(|&(mf, ..)| mf)
    }

    /// The field's width in bytes.
    pub(crate) fn len(self) -> u8 {
        self.header().2
    }

    /// A 32-bit NXM/OXM header (no mask) for actions that name a field.
    pub(crate) fn header_u32(self) -> u32 {
        let (c, f, l) = self.header();
        (u32::from(c) << 16) | (u32::from(f) << 9) | u32::from(l)
    }

    /// The field a 32-bit header in an action names.
    pub(crate) fn from_header_u32(h: u32) -> Option<Mf> {
        let class = (h >> 16) as u16;
        let field = ((h >> 9) & 0x7f) as u8;
        let has_mask = h & 0x100 != 0;
        let len = (h & 0xff) as u8;
        if has_mask {
            return None;
        }
        Mf::lookup(class, field, len)
    }

    /// The flow model's name for the field, for error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mf::InPort | Mf::InPort16 => "in_port",
            Mf::Metadata => "metadata",
            Mf::EthDst => "eth_dst",
            Mf::EthSrc => "eth_src",
            Mf::EthType => "eth_type",
            Mf::VlanVid => "vlan_vid",
            Mf::IpProto => "ip_proto",
            Mf::Ipv4Src => "ipv4_src",
            Mf::Ipv4Dst => "ipv4_dst",
            Mf::TcpSrc => "tcp_src",
            Mf::TcpDst => "tcp_dst",
            Mf::UdpSrc => "udp_src",
            Mf::UdpDst => "udp_dst",
            Mf::IcmpType => "icmpv4_type",
            Mf::IcmpCode => "icmpv4_code",
            Mf::ArpOp => "arp_op",
            Mf::ArpSpa => "arp_spa",
            Mf::ArpTpa => "arp_tpa",
            Mf::ArpSha => "arp_sha",
            Mf::ArpTha => "arp_tha",
            Mf::Ipv6Src => "ipv6_src",
            Mf::Ipv6Dst => "ipv6_dst",
            Mf::TunId => "tun_id",
            Mf::TunIpv4Dst => "tun_ipv4_dst",
            Mf::Reg(_) => "reg",
            Mf::CtState => "ct_state",
            Mf::CtZone => "ct_zone",
            Mf::CtMark => "ct_mark",
            Mf::ConjId => "conj_id",
        }
    }

    /// The wire field an action [`Field`] is written as. `set_field` and `move` use NXM's
    /// 16-bit `in_port`, as OVS does.
    pub(crate) fn of_field(f: Field) -> Result<Mf, EncodeError> {
        Ok(match f {
            Field::InPort => Mf::InPort16,
            Field::EthSrc => Mf::EthSrc,
            Field::EthDst => Mf::EthDst,
            Field::VlanVid => Mf::VlanVid,
            Field::Ipv4Src => Mf::Ipv4Src,
            Field::Ipv4Dst => Mf::Ipv4Dst,
            Field::ArpOp => Mf::ArpOp,
            Field::ArpSpa => Mf::ArpSpa,
            Field::ArpTpa => Mf::ArpTpa,
            Field::ArpSha => Mf::ArpSha,
            Field::ArpTha => Mf::ArpTha,
            Field::TunId => Mf::TunId,
            Field::TunIpv4Dst => Mf::TunIpv4Dst,
            Field::Metadata => Mf::Metadata,
            Field::Reg(n) if n < 8 => Mf::Reg(n),
            Field::Reg(n) => return Err(EncodeError::BadRegister(n)),
            Field::CtMark => Mf::CtMark,
        })
    }

    /// The action [`Field`] a wire field is, if the model has it.
    pub(crate) fn to_field(self) -> Option<Field> {
        Some(match self {
            Mf::InPort | Mf::InPort16 => Field::InPort,
            Mf::EthSrc => Field::EthSrc,
            Mf::EthDst => Field::EthDst,
            Mf::VlanVid => Field::VlanVid,
            Mf::Ipv4Src => Field::Ipv4Src,
            Mf::Ipv4Dst => Field::Ipv4Dst,
            Mf::ArpOp => Field::ArpOp,
            Mf::ArpSpa => Field::ArpSpa,
            Mf::ArpTpa => Field::ArpTpa,
            Mf::ArpSha => Field::ArpSha,
            Mf::ArpTha => Field::ArpTha,
            Mf::TunId => Field::TunId,
            Mf::TunIpv4Dst => Field::TunIpv4Dst,
            Mf::Metadata => Field::Metadata,
            Mf::Reg(n) => Field::Reg(n),
            Mf::CtMark => Field::CtMark,
            _ => return None,
        })
    }
}

/// Writes one OXM TLV: header, value and (when given) mask, each `len` bytes big-endian.
/// The value is cut to the mask, as OpenFlow requires.
pub(crate) fn put_oxm(buf: &mut Vec<u8>, mf: Mf, value: u128, mask: Option<u128>) {
    let (class, field, len) = mf.header();
    let n = usize::from(len);
    let has_mask = mask.is_some();
    let tlv_len = if has_mask { 2 * len } else { len };
    buf.extend_from_slice(&class.to_be_bytes());
    buf.push((field << 1) | u8::from(has_mask));
    buf.push(tlv_len);
    let value = mask.map_or(value, |m| value & m);
    buf.extend_from_slice(&value.to_be_bytes()[16 - n..]);
    if let Some(m) = mask {
        buf.extend_from_slice(&m.to_be_bytes()[16 - n..]);
    }
}

/// One decoded OXM TLV.
pub(crate) struct Oxm {
    pub(crate) mf: Mf,
    pub(crate) value: u128,
    pub(crate) mask: Option<u128>,
}

fn be(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .fold(0u128, |acc, &b| (acc << 8) | u128::from(b))
}

/// Reads one OXM TLV.
pub(crate) fn read_oxm(r: &mut Reader<'_>) -> Result<Oxm, DecodeError> {
    let class = r.u16()?;
    let fh = r.u8()?;
    let len = r.u8()?;
    let (field, has_mask) = (fh >> 1, fh & 1 != 0);
    let mut body = r.sub(usize::from(len), "OXM field")?;
    if class == CLASS_EXPERIMENTER {
        return Err(DecodeError::UnsupportedField {
            class,
            field,
            has_mask,
            len,
        });
    }
    let value_len = if has_mask { len / 2 } else { len };
    if has_mask && len % 2 != 0 {
        return Err(DecodeError::UnsupportedField {
            class,
            field,
            has_mask,
            len,
        });
    }
    let mf = Mf::lookup(class, field, value_len).ok_or(DecodeError::UnsupportedField {
        class,
        field,
        has_mask,
        len,
    })?;
    let value = be(body.bytes(usize::from(value_len))?);
    let mask = if has_mask {
        Some(be(body.bytes(usize::from(value_len))?))
    } else {
        None
    };
    Ok(Oxm { mf, value, mask })
}

fn require(ok: bool, field: &'static str, needs: &'static str) -> Result<(), EncodeError> {
    if ok {
        Ok(())
    } else {
        Err(EncodeError::MissingPrerequisite { field, needs })
    }
}

/// Checks OpenFlow's match prerequisites, so a bad match is refused here and not by the switch.
pub(crate) fn check_prerequisites(m: &Match) -> Result<(), EncodeError> {
    let ipv4 = m.eth_type == Some(proto::ETH_IPV4);
    let ipv6 = m.eth_type == Some(proto::ETH_IPV6);
    let arp = m.eth_type == Some(proto::ETH_ARP);
    let ip = ipv4 || ipv6;
    const V4: &str = "eth_type=0x0800";
    const V6: &str = "eth_type=0x86dd";
    const ARP: &str = "eth_type=0x0806";
    if m.ip_proto.is_some() {
        require(ip, "ip_proto", "eth_type=0x0800 or 0x86dd")?;
    }
    if m.ipv4_src.is_some() {
        require(ipv4, "ipv4_src", V4)?;
    }
    if m.ipv4_dst.is_some() {
        require(ipv4, "ipv4_dst", V4)?;
    }
    if m.ipv6_src.is_some() {
        require(ipv6, "ipv6_src", V6)?;
    }
    if m.ipv6_dst.is_some() {
        require(ipv6, "ipv6_dst", V6)?;
    }
    let tcp = ip && m.ip_proto == Some(proto::IP_TCP);
    let udp = ip && m.ip_proto == Some(proto::IP_UDP);
    let icmp = ipv4 && m.ip_proto == Some(proto::IP_ICMP);
    const TCP: &str = "an IP eth_type and ip_proto=6";
    const UDP: &str = "an IP eth_type and ip_proto=17";
    const ICMP: &str = "eth_type=0x0800 and ip_proto=1";
    if m.tcp_src.is_some() {
        require(tcp, "tcp_src", TCP)?;
    }
    if m.tcp_dst.is_some() {
        require(tcp, "tcp_dst", TCP)?;
    }
    if m.udp_src.is_some() {
        require(udp, "udp_src", UDP)?;
    }
    if m.udp_dst.is_some() {
        require(udp, "udp_dst", UDP)?;
    }
    if m.icmpv4_type.is_some() {
        require(icmp, "icmpv4_type", ICMP)?;
    }
    if m.icmpv4_code.is_some() {
        require(icmp, "icmpv4_code", ICMP)?;
    }
    if m.arp_op.is_some() {
        require(arp, "arp_op", ARP)?;
    }
    if m.arp_spa.is_some() {
        require(arp, "arp_spa", ARP)?;
    }
    if m.arp_tpa.is_some() {
        require(arp, "arp_tpa", ARP)?;
    }
    Ok(())
}

fn masked<T: Copy, F: Fn(T) -> u128>(m: &Masked<T>, f: F) -> (u128, Option<u128>) {
    (f(m.value), m.mask.map(f))
}

fn v4(a: Ipv4Addr) -> u128 {
    u128::from(u32::from(a))
}

fn mac(m: [u8; 6]) -> u128 {
    be(&m)
}

/// Writes `ofp_match` (type OXM, padded to 8 bytes) for `m`.
pub(crate) fn encode_match(buf: &mut Vec<u8>, m: &Match) -> Result<(), EncodeError> {
    check_prerequisites(m)?;
    let start = buf.len();
    buf.extend_from_slice(&OFPMT_OXM.to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    let put = |buf: &mut Vec<u8>, mf, (v, mask): (u128, Option<u128>)| put_oxm(buf, mf, v, mask);
    if let Some(p) = m.in_port {
        put(buf, Mf::InPort, (u128::from(p), None));
    }
    if let Some(x) = &m.metadata {
        put(buf, Mf::Metadata, masked(x, u128::from));
    }
    if let Some(x) = m.eth_dst {
        put(buf, Mf::EthDst, (mac(x), None));
    }
    if let Some(x) = m.eth_src {
        put(buf, Mf::EthSrc, (mac(x), None));
    }
    if let Some(x) = m.eth_type {
        put(buf, Mf::EthType, (u128::from(x), None));
    }
    if let Some(x) = &m.vlan_vid {
        put(buf, Mf::VlanVid, masked(x, u128::from));
    }
    if let Some(x) = m.ip_proto {
        put(buf, Mf::IpProto, (u128::from(x), None));
    }
    if let Some(x) = &m.ipv4_src {
        put(buf, Mf::Ipv4Src, masked(x, v4));
    }
    if let Some(x) = &m.ipv4_dst {
        put(buf, Mf::Ipv4Dst, masked(x, v4));
    }
    if let Some(x) = &m.ipv6_src {
        put(buf, Mf::Ipv6Src, masked(x, u128::from));
    }
    if let Some(x) = &m.ipv6_dst {
        put(buf, Mf::Ipv6Dst, masked(x, u128::from));
    }
    for (mf, x) in [
        (Mf::TcpSrc, &m.tcp_src),
        (Mf::TcpDst, &m.tcp_dst),
        (Mf::UdpSrc, &m.udp_src),
        (Mf::UdpDst, &m.udp_dst),
    ] {
        if let Some(x) = x {
            put(buf, mf, masked(x, u128::from));
        }
    }
    if let Some(x) = m.icmpv4_type {
        put(buf, Mf::IcmpType, (u128::from(x), None));
    }
    if let Some(x) = m.icmpv4_code {
        put(buf, Mf::IcmpCode, (u128::from(x), None));
    }
    if let Some(x) = m.arp_op {
        put(buf, Mf::ArpOp, (u128::from(x), None));
    }
    if let Some(x) = &m.arp_spa {
        put(buf, Mf::ArpSpa, masked(x, v4));
    }
    if let Some(x) = &m.arp_tpa {
        put(buf, Mf::ArpTpa, masked(x, v4));
    }
    if let Some(x) = &m.tun_id {
        put(buf, Mf::TunId, masked(x, u128::from));
    }
    for (i, r) in m.regs.iter().enumerate() {
        if let Some(x) = r {
            put(buf, Mf::Reg(i as u8), masked(x, u128::from));
        }
    }
    if let Some(x) = &m.ct_state {
        put(buf, Mf::CtState, masked(x, u128::from));
    }
    if let Some(x) = m.ct_zone {
        put(buf, Mf::CtZone, (u128::from(x), None));
    }
    if let Some(x) = &m.ct_mark {
        put(buf, Mf::CtMark, masked(x, u128::from));
    }
    if let Some(x) = m.conj_id {
        put(buf, Mf::ConjId, (u128::from(x), None));
    }
    let len = buf.len() - start;
    patch_u16(buf, start + 2, len)?;
    pad8(buf, start);
    Ok(())
}

/// Sets `slot` once; a second occurrence of the field is an error.
fn set_once<T>(slot: &mut Option<T>, v: T, name: &'static str) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateField(name));
    }
    *slot = Some(v);
    Ok(())
}

/// The value of a field the model only matches exactly (an all-ones mask is accepted).
fn exact(o: &Oxm) -> Result<u128, DecodeError> {
    match o.mask {
        None => Ok(o.value),
        Some(m) if m == u128::MAX >> (128 - 8 * u32::from(o.mf.len())) => Ok(o.value),
        Some(_) => Err(DecodeError::UnexpectedMask(o.mf.name())),
    }
}

fn to_mac(v: u128) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[10], b[11], b[12], b[13], b[14], b[15]]
}

fn m_u16(o: &Oxm) -> Masked<u16> {
    Masked {
        value: o.value as u16,
        mask: o.mask.map(|m| m as u16),
    }
}

fn m_u32(o: &Oxm) -> Masked<u32> {
    Masked {
        value: o.value as u32,
        mask: o.mask.map(|m| m as u32),
    }
}

fn m_u64(o: &Oxm) -> Masked<u64> {
    Masked {
        value: o.value as u64,
        mask: o.mask.map(|m| m as u64),
    }
}

fn m_v4(o: &Oxm) -> Masked<Ipv4Addr> {
    Masked {
        value: Ipv4Addr::from(o.value as u32),
        mask: o.mask.map(|m| Ipv4Addr::from(m as u32)),
    }
}

fn m_v6(o: &Oxm) -> Masked<Ipv6Addr> {
    Masked {
        value: Ipv6Addr::from(o.value),
        mask: o.mask.map(Ipv6Addr::from),
    }
}

/// A 16-bit OpenFlow 1.0 port number as a 32-bit OpenFlow 1.1+ one (reserved ports move up).
pub(crate) fn port16_to_32(p: u16) -> u32 {
    if p >= 0xff00 {
        u32::from(p) | 0xffff_0000
    } else {
        u32::from(p)
    }
}

/// Reads an `ofp_match` (including its padding) into the flow model.
pub(crate) fn decode_match(r: &mut Reader<'_>) -> Result<Match, DecodeError> {
    let mtype = r.u16()?;
    let len = usize::from(r.u16()?);
    if mtype != OFPMT_OXM {
        return Err(DecodeError::BadMatchType(mtype));
    }
    if len < 4 {
        return Err(DecodeError::BadLength {
            what: "ofp_match",
            len,
            min: 4,
            max: 65535,
        });
    }
    let mut fields = r.sub(len - 4, "ofp_match fields")?;
    r.skip((8 - len % 8) % 8)?;
    let mut m = Match::default();
    while !fields.is_empty() {
        let o = read_oxm(&mut fields)?;
        let name = o.mf.name();
        match o.mf {
            Mf::InPort => set_once(&mut m.in_port, exact(&o)? as u32, name)?,
            Mf::InPort16 => set_once(&mut m.in_port, port16_to_32(exact(&o)? as u16), name)?,
            Mf::Metadata => set_once(&mut m.metadata, m_u64(&o), name)?,
            Mf::EthDst => set_once(&mut m.eth_dst, to_mac(exact(&o)?), name)?,
            Mf::EthSrc => set_once(&mut m.eth_src, to_mac(exact(&o)?), name)?,
            Mf::EthType => set_once(&mut m.eth_type, exact(&o)? as u16, name)?,
            Mf::VlanVid => set_once(&mut m.vlan_vid, m_u16(&o), name)?,
            Mf::IpProto => set_once(&mut m.ip_proto, exact(&o)? as u8, name)?,
            Mf::Ipv4Src => set_once(&mut m.ipv4_src, m_v4(&o), name)?,
            Mf::Ipv4Dst => set_once(&mut m.ipv4_dst, m_v4(&o), name)?,
            Mf::Ipv6Src => set_once(&mut m.ipv6_src, m_v6(&o), name)?,
            Mf::Ipv6Dst => set_once(&mut m.ipv6_dst, m_v6(&o), name)?,
            Mf::TcpSrc => set_once(&mut m.tcp_src, m_u16(&o), name)?,
            Mf::TcpDst => set_once(&mut m.tcp_dst, m_u16(&o), name)?,
            Mf::UdpSrc => set_once(&mut m.udp_src, m_u16(&o), name)?,
            Mf::UdpDst => set_once(&mut m.udp_dst, m_u16(&o), name)?,
            Mf::IcmpType => set_once(&mut m.icmpv4_type, exact(&o)? as u8, name)?,
            Mf::IcmpCode => set_once(&mut m.icmpv4_code, exact(&o)? as u8, name)?,
            Mf::ArpOp => set_once(&mut m.arp_op, exact(&o)? as u16, name)?,
            Mf::ArpSpa => set_once(&mut m.arp_spa, m_v4(&o), name)?,
            Mf::ArpTpa => set_once(&mut m.arp_tpa, m_v4(&o), name)?,
            Mf::TunId => set_once(&mut m.tun_id, m_u64(&o), name)?,
            Mf::Reg(n) => set_once(&mut m.regs[usize::from(n)], m_u32(&o), name)?,
            Mf::CtState => set_once(&mut m.ct_state, m_u32(&o), name)?,
            Mf::CtZone => set_once(&mut m.ct_zone, exact(&o)? as u16, name)?,
            Mf::CtMark => set_once(&mut m.ct_mark, m_u32(&o), name)?,
            Mf::ConjId => set_once(&mut m.conj_id, exact(&o)? as u32, name)?,
            Mf::ArpSha | Mf::ArpTha | Mf::TunIpv4Dst => {
                return Err(DecodeError::UnsupportedField {
                    class: o.mf.header().0,
                    field: o.mf.header().1,
                    has_mask: o.mask.is_some(),
                    len: o.mf.len(),
                })
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::test_util::hex;

    /// `in_port=3,ip,dl_vlan=100` as ovs-ofctl 3.1 sends it in OpenFlow 1.3.
    const OVS_MATCH: &str = "0001 0018 80000004 00000003 80000a02 0800 80000c02 1064";

    #[test]
    fn encodes_like_ovs() {
        let m = Match {
            in_port: Some(3),
            eth_type: Some(0x0800),
            vlan_vid: Some(Masked::exact(0x1064)),
            ..Match::default()
        };
        let mut buf = Vec::new();
        encode_match(&mut buf, &m).unwrap();
        assert_eq!(buf, hex(OVS_MATCH));
        let mut r = Reader::new(&buf, "test");
        assert_eq!(decode_match(&mut r).unwrap(), m);
        assert!(r.is_empty());
    }

    #[test]
    fn nicira_fields_and_masks_round_trip() {
        let mut m = Match {
            eth_type: Some(0x0800),
            ip_proto: Some(6),
            ipv4_dst: Some(Masked::with_mask(
                Ipv4Addr::new(10, 1, 0, 0),
                Ipv4Addr::new(255, 255, 0, 0),
            )),
            tcp_dst: Some(Masked::with_mask(0x1000, 0xf000)),
            ct_state: Some(Masked::with_mask(0x21, 0x23)),
            ct_zone: Some(7),
            ct_mark: Some(Masked::exact(3)),
            conj_id: Some(42),
            tun_id: Some(Masked::exact(100)),
            ..Match::default()
        };
        m.regs[5] = Some(Masked::with_mask(0x10, 0xff));
        let mut buf = Vec::new();
        encode_match(&mut buf, &m).unwrap();
        assert_eq!(buf.len() % 8, 0);
        let mut r = Reader::new(&buf, "test");
        assert_eq!(decode_match(&mut r).unwrap(), m);
    }

    #[test]
    fn ct_state_uses_nxm_header() {
        let m = Match {
            ct_state: Some(Masked::with_mask(0x21, 0x21)),
            ..Match::default()
        };
        let mut buf = Vec::new();
        encode_match(&mut buf, &m).unwrap();
        // NXM_NX_CT_STATE_W: class 1, field 105, hasmask, 8 bytes.
        assert_eq!(&buf[4..8], &hex("0001 d308"));
    }

    #[test]
    fn prerequisites_are_checked() {
        let m = Match {
            tcp_dst: Some(Masked::exact(80)),
            eth_type: Some(0x0800),
            ..Match::default()
        };
        assert!(matches!(
            encode_match(&mut Vec::new(), &m),
            Err(EncodeError::MissingPrerequisite {
                field: "tcp_dst",
                ..
            })
        ));
    }

    #[test]
    fn hostile_matches_are_errors() {
        for bytes in [
            hex("0001"),
            hex("0000 0008 00000000"),
            hex("0001 0003 00000000"),
            hex("0001 000c 80000004 000000"),
            hex("0001 000c 8000ff04 00000003"),
            hex("0001 0010 80000004 00000003 80000004 00000004"),
            hex("0001 000e 80000a04 0800ff00 0000"),
        ] {
            let mut r = Reader::new(&bytes, "test");
            assert!(decode_match(&mut r).is_err(), "{bytes:02x?}");
        }
    }
}

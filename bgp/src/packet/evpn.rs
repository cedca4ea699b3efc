//! BGP EVPN NLRI (RFC 7432 §7, RFC 8365 for VXLAN, RFC 9136 for type 5): route
//! distinguishers, the route types we interpret (2 MAC/IP advertisement, 3 inclusive
//! multicast Ethernet tag, 5 IP prefix), every other route type kept opaque, and the
//! AFI 25 / SAFI 70 contents of MP_REACH_NLRI and MP_UNREACH_NLRI.
//!
//! Every length is checked before a field is read. Error handling:
//! - a route whose length field overruns the attribute, or a route of a type we interpret whose
//!   length or inner lengths (MAC, IP, prefix) do not fit its type, makes the NLRI field
//!   syntactically incorrect: RFC 7606 §5.3 asks for "session reset" (we have no AFI/SAFI
//!   disable), and FRR does the same;
//! - a route of a type we do not interpret is kept opaque, skipped by its length, and is not
//!   an error (RFC 7432 §7, RFC 7606 §5.4).
//!
//! Labels are the raw 24-bit field. With VXLAN encapsulation (RFC 8365 §5.1.3) the whole field
//! is the VNI, which is how FRR and GoBGP send it; with MPLS it would be `label << 4 | S`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// AFI of L2VPN (RFC 4761).
pub const AFI_L2VPN: u16 = 25;
/// SAFI of EVPN (RFC 7432).
pub const SAFI_EVPN: u8 = 70;

/// Route types.
pub mod route_type {
    pub const ETHERNET_AD: u8 = 1;
    pub const MAC_IP: u8 = 2;
    pub const INCLUSIVE_MULTICAST: u8 = 3;
    pub const ETHERNET_SEGMENT: u8 = 4;
    pub const IP_PREFIX: u8 = 5;
}

/// Largest value a 24-bit label / VNI field holds.
pub const MAX_LABEL: u32 = 0x00ff_ffff;

/// A route distinguisher (RFC 4364 §4.2). Types we do not know are kept as their 8 bytes so
/// such routes still compare, reflect and withdraw correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteDistinguisher {
    /// Type 0: 2-octet AS, 4-octet number.
    As2 {
        asn: u16,
        number: u32,
    },
    /// Type 1: IPv4 address, 2-octet number.
    Ip {
        ip: Ipv4Addr,
        number: u16,
    },
    /// Type 2: 4-octet AS, 2-octet number.
    As4 {
        asn: u32,
        number: u16,
    },
    Other([u8; 8]),
}

impl RouteDistinguisher {
    pub fn from_bytes(b: [u8; 8]) -> RouteDistinguisher {
        let be16 = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        match be16(0) {
            0 => RouteDistinguisher::As2 {
                asn: be16(2),
                number: be32(4),
            },
            1 => RouteDistinguisher::Ip {
                ip: Ipv4Addr::new(b[2], b[3], b[4], b[5]),
                number: be16(6),
            },
            2 => RouteDistinguisher::As4 {
                asn: be32(2),
                number: be16(6),
            },
            _ => RouteDistinguisher::Other(b),
        }
    }

    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        match *self {
            RouteDistinguisher::As2 { asn, number } => {
                b[2..4].copy_from_slice(&asn.to_be_bytes());
                b[4..8].copy_from_slice(&number.to_be_bytes());
            }
            RouteDistinguisher::Ip { ip, number } => {
                b[1] = 1;
                b[2..6].copy_from_slice(&ip.octets());
                b[6..8].copy_from_slice(&number.to_be_bytes());
            }
            RouteDistinguisher::As4 { asn, number } => {
                b[1] = 2;
                b[2..6].copy_from_slice(&asn.to_be_bytes());
                b[6..8].copy_from_slice(&number.to_be_bytes());
            }
            RouteDistinguisher::Other(raw) => b = raw,
        }
        b
    }
}

impl std::fmt::Display for RouteDistinguisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteDistinguisher::As2 { asn, number } => write!(f, "{asn}:{number}"),
            RouteDistinguisher::Ip { ip, number } => write!(f, "{ip}:{number}"),
            RouteDistinguisher::As4 { asn, number } => write!(f, "{asn}:{number}"),
            RouteDistinguisher::Other(raw) => write!(f, "raw:{raw:02x?}"),
        }
    }
}

/// Ethernet segment identifier (RFC 7432 §5); all zero for a single-homed site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Esi(pub [u8; 10]);

/// A MAC address.
pub type Mac = [u8; 6];

/// Type 2: MAC/IP advertisement (RFC 7432 §7.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MacIpRoute {
    pub rd: RouteDistinguisher,
    pub esi: Esi,
    pub ethernet_tag: u32,
    pub mac: Mac,
    pub ip: Option<IpAddr>,
    /// MPLS label 1: the L2 VNI with VXLAN.
    pub label1: u32,
    /// MPLS label 2: the L3 VNI of symmetric IRB (RFC 9135), when sent.
    pub label2: Option<u32>,
}

/// Type 3: inclusive multicast Ethernet tag (RFC 7432 §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InclusiveMulticastRoute {
    pub rd: RouteDistinguisher,
    pub ethernet_tag: u32,
    pub originator: IpAddr,
}

/// Type 5: IP prefix (RFC 9136 §3.1). Prefix and gateway are of one family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpPrefixRoute {
    pub rd: RouteDistinguisher,
    pub esi: Esi,
    pub ethernet_tag: u32,
    pub prefix: IpNet,
    pub gateway: IpAddr,
    pub label: u32,
}

/// One EVPN route (NLRI).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EvpnRoute {
    MacIp(MacIpRoute),
    InclusiveMulticast(InclusiveMulticastRoute),
    IpPrefix(IpPrefixRoute),
    /// A route type we do not interpret (1, 4, and later ones): kept verbatim so it can be
    /// passed on (reflected) unchanged.
    Opaque {
        route_type: u8,
        value: Vec<u8>,
    },
}

/// The part of a route BGP compares (RFC 7432 §7.2, §7.3, RFC 9136 §3.1): routes with one key
/// replace each other, whatever their ESI, labels or gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EvpnKey {
    MacIp {
        rd: RouteDistinguisher,
        ethernet_tag: u32,
        mac: Mac,
        ip: Option<IpAddr>,
    },
    InclusiveMulticast {
        rd: RouteDistinguisher,
        ethernet_tag: u32,
        originator: IpAddr,
    },
    IpPrefix {
        rd: RouteDistinguisher,
        ethernet_tag: u32,
        prefix: IpNet,
    },
    /// Routes we do not interpret are keyed by their whole value.
    Opaque { route_type: u8, value: Vec<u8> },
}

impl EvpnRoute {
    pub fn route_type(&self) -> u8 {
        match self {
            EvpnRoute::MacIp(_) => route_type::MAC_IP,
            EvpnRoute::InclusiveMulticast(_) => route_type::INCLUSIVE_MULTICAST,
            EvpnRoute::IpPrefix(_) => route_type::IP_PREFIX,
            EvpnRoute::Opaque { route_type, .. } => *route_type,
        }
    }

    pub fn key(&self) -> EvpnKey {
        match self {
            EvpnRoute::MacIp(r) => EvpnKey::MacIp {
                rd: r.rd,
                ethernet_tag: r.ethernet_tag,
                mac: r.mac,
                ip: r.ip,
            },
            EvpnRoute::InclusiveMulticast(r) => EvpnKey::InclusiveMulticast {
                rd: r.rd,
                ethernet_tag: r.ethernet_tag,
                originator: r.originator,
            },
            EvpnRoute::IpPrefix(r) => EvpnKey::IpPrefix {
                rd: r.rd,
                ethernet_tag: r.ethernet_tag,
                prefix: r.prefix,
            },
            EvpnRoute::Opaque { route_type, value } => EvpnKey::Opaque {
                route_type: *route_type,
                value: value.clone(),
            },
        }
    }

    /// Bytes of the route's value (after type and length).
    fn value_len(&self) -> usize {
        let ip_len = |ip: &IpAddr| if ip.is_ipv4() { 4 } else { 16 };
        match self {
            EvpnRoute::MacIp(r) => {
                30 + r.ip.as_ref().map_or(0, ip_len) + if r.label2.is_some() { 6 } else { 3 }
            }
            EvpnRoute::InclusiveMulticast(r) => 13 + ip_len(&r.originator),
            EvpnRoute::IpPrefix(r) => r.wire_len(),
            EvpnRoute::Opaque { value, .. } => value.len(),
        }
    }

    /// Bytes this route takes in an MP attribute (type, length, value).
    pub fn encoded_len(&self) -> usize {
        2 + self.value_len()
    }

    /// Append the route (type, length, value). Values out of their field's range are cut to
    /// it (labels to 24 bits, opaque values to 255 bytes): the decoder refuses nothing we
    /// write.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.route_type());
        out.push(self.value_len().min(255) as u8);
        match self {
            EvpnRoute::MacIp(r) => {
                out.extend_from_slice(&r.rd.to_bytes());
                out.extend_from_slice(&r.esi.0);
                out.extend_from_slice(&r.ethernet_tag.to_be_bytes());
                out.push(48);
                out.extend_from_slice(&r.mac);
                put_ip_with_len(r.ip.as_ref(), out);
                put_label(r.label1, out);
                if let Some(l2) = r.label2 {
                    put_label(l2, out);
                }
            }
            EvpnRoute::InclusiveMulticast(r) => {
                out.extend_from_slice(&r.rd.to_bytes());
                out.extend_from_slice(&r.ethernet_tag.to_be_bytes());
                put_ip_with_len(Some(&r.originator), out);
            }
            EvpnRoute::IpPrefix(r) => {
                out.extend_from_slice(&r.rd.to_bytes());
                out.extend_from_slice(&r.esi.0);
                out.extend_from_slice(&r.ethernet_tag.to_be_bytes());
                out.push(r.prefix.prefix_len());
                // RFC 9136 §3.1: prefix and gateway are of one family; a mixed route (which
                // the type cannot express on the wire) is written with the prefix's family.
                match (r.prefix, r.gateway) {
                    (IpNet::V4(p), gw) => {
                        out.extend_from_slice(&p.addr().octets());
                        let gw = match gw {
                            IpAddr::V4(g) => g,
                            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                        };
                        out.extend_from_slice(&gw.octets());
                    }
                    (IpNet::V6(p), gw) => {
                        out.extend_from_slice(&p.addr().octets());
                        let gw = match gw {
                            IpAddr::V6(g) => g,
                            IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
                        };
                        out.extend_from_slice(&gw.octets());
                    }
                }
                put_label(r.label, out);
            }
            EvpnRoute::Opaque { value, .. } => {
                out.extend_from_slice(&value[..value.len().min(255)]);
            }
        }
    }
}

impl IpPrefixRoute {
    /// Bytes of the route's value: 34 for IPv4, 58 for IPv6 (the gateway follows the prefix).
    fn wire_len(&self) -> usize {
        match self.prefix {
            IpNet::V4(_) => 34,
            IpNet::V6(_) => 58,
        }
    }
}

fn put_label(label: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&(label & MAX_LABEL).to_be_bytes()[1..]);
}

fn put_ip_with_len(ip: Option<&IpAddr>, out: &mut Vec<u8>) {
    match ip {
        None => out.push(0),
        Some(IpAddr::V4(a)) => {
            out.push(32);
            out.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out.push(128);
            out.extend_from_slice(&a.octets());
        }
    }
}

/// A byte reader whose every read is checked; errors name the field.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!("{what}: needs {n} bytes, {} left", self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let b = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn label(&mut self, what: &str) -> Result<u32, String> {
        let [a, b, c] = self.array(what)?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    fn rd(&mut self) -> Result<RouteDistinguisher, String> {
        Ok(RouteDistinguisher::from_bytes(
            self.array("route distinguisher")?,
        ))
    }

    /// An address of `bytes` bytes (4 or 16).
    fn ip(&mut self, bytes: usize, what: &str) -> Result<IpAddr, String> {
        Ok(match bytes {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>(what)?)),
            16 => IpAddr::V6(Ipv6Addr::from(self.array::<16>(what)?)),
            other => {
                return Err(format!(
                    "{what}: {other} bytes is not an IPv4 or IPv6 address"
                ))
            }
        })
    }

    fn finish(&self, what: &str) -> Result<(), String> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!("{what}: {} bytes left over", self.buf.len()))
        }
    }
}

/// Bytes of an address whose length field says `bits` (0, 32 or 128; RFC 7432 §7.2).
fn ip_bytes(bits: u8, allow_zero: bool, what: &str) -> Result<usize, String> {
    match bits {
        0 if allow_zero => Ok(0),
        32 => Ok(4),
        128 => Ok(16),
        other => Err(format!("{what}: address length {other} bits is invalid")),
    }
}

fn decode_mac_ip(v: &[u8]) -> Result<MacIpRoute, String> {
    let mut r = Reader { buf: v };
    let rd = r.rd()?;
    let esi = Esi(r.array("ESI")?);
    let ethernet_tag = r.u32("Ethernet tag")?;
    let mac_len = r.u8("MAC length")?;
    if mac_len != 48 {
        return Err(format!("MAC length {mac_len} bits is not 48"));
    }
    let mac = r.array("MAC")?;
    let ip_len = r.u8("IP length")?;
    let bytes = ip_bytes(ip_len, true, "IP")?;
    let ip = if bytes == 0 {
        None
    } else {
        Some(r.ip(bytes, "IP")?)
    };
    let label1 = r.label("label 1")?;
    // Label 2 is present or not, nothing else (RFC 7432 §7.2).
    let label2 = match r.buf.len() {
        0 => None,
        3 => Some(r.label("label 2")?),
        n => return Err(format!("{n} bytes after label 1, neither 0 nor 3")),
    };
    r.finish("MAC/IP route")?;
    Ok(MacIpRoute {
        rd,
        esi,
        ethernet_tag,
        mac,
        ip,
        label1,
        label2,
    })
}

fn decode_inclusive_multicast(v: &[u8]) -> Result<InclusiveMulticastRoute, String> {
    let mut r = Reader { buf: v };
    let rd = r.rd()?;
    let ethernet_tag = r.u32("Ethernet tag")?;
    let ip_len = r.u8("originator IP length")?;
    let bytes = ip_bytes(ip_len, false, "originator IP")?;
    let originator = r.ip(bytes, "originator IP")?;
    r.finish("inclusive multicast route")?;
    Ok(InclusiveMulticastRoute {
        rd,
        ethernet_tag,
        originator,
    })
}

fn decode_ip_prefix(v: &[u8]) -> Result<IpPrefixRoute, String> {
    // RFC 9136 §3.1: the route length alone says the family (34 IPv4, 58 IPv6).
    let addr_bytes = match v.len() {
        34 => 4,
        58 => 16,
        n => return Err(format!("IP prefix route of {n} bytes is neither 34 nor 58")),
    };
    let mut r = Reader { buf: v };
    let rd = r.rd()?;
    let esi = Esi(r.array("ESI")?);
    let ethernet_tag = r.u32("Ethernet tag")?;
    let len = r.u8("IP prefix length")?;
    let addr = r.ip(addr_bytes, "IP prefix")?;
    let gateway = r.ip(addr_bytes, "gateway IP")?;
    let label = r.label("label")?;
    r.finish("IP prefix route")?;
    let prefix = match addr {
        IpAddr::V4(a) => Ipv4Net::new(a, len).map(|n| IpNet::V4(n.trunc())),
        IpAddr::V6(a) => Ipv6Net::new(a, len).map(|n| IpNet::V6(n.trunc())),
    }
    .map_err(|_| format!("IP prefix length {len} exceeds the address"))?;
    Ok(IpPrefixRoute {
        rd,
        esi,
        ethernet_tag,
        prefix,
        gateway,
        label,
    })
}

/// Decode a run of EVPN routes (the NLRI of an MP_REACH or MP_UNREACH). An error is a
/// syntactically incorrect NLRI field (see the module comment); `what` names the attribute.
pub fn decode_routes(mut buf: &[u8], what: &str) -> Result<Vec<EvpnRoute>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let [kind, len, rest @ ..] = buf else {
            return Err(format!("{what}: EVPN route header truncated"));
        };
        let len = usize::from(*len);
        if rest.len() < len {
            return Err(format!(
                "{what}: EVPN route type {kind} of {len} bytes overruns the attribute ({} left)",
                rest.len()
            ));
        }
        let value = &rest[..len];
        buf = &rest[len..];
        let bad = |e: String| format!("{what}: EVPN route type {kind}: {e}");
        out.push(match *kind {
            route_type::MAC_IP => EvpnRoute::MacIp(decode_mac_ip(value).map_err(bad)?),
            route_type::INCLUSIVE_MULTICAST => {
                EvpnRoute::InclusiveMulticast(decode_inclusive_multicast(value).map_err(bad)?)
            }
            route_type::IP_PREFIX => EvpnRoute::IpPrefix(decode_ip_prefix(value).map_err(bad)?),
            other => EvpnRoute::Opaque {
                route_type: other,
                value: value.to_vec(),
            },
        });
    }
    Ok(out)
}

/// MP_REACH_NLRI contents for L2VPN/EVPN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnReach {
    /// The advertising VTEP (RFC 8365 §5.1.3: the VXLAN tunnel endpoint).
    pub next_hop: IpAddr,
    pub routes: Vec<EvpnRoute>,
}

/// MP_UNREACH_NLRI contents for L2VPN/EVPN; no routes is the family's End-of-RIB.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EvpnUnreach {
    pub routes: Vec<EvpnRoute>,
}

/// Whether an MP_REACH/MP_UNREACH value (AFI, SAFI first) is of L2VPN/EVPN. Needs 3 bytes.
pub fn is_evpn(v: &[u8]) -> bool {
    matches!(v, [0, 25, SAFI_EVPN, ..])
}

/// Decode the value of an L2VPN/EVPN MP_REACH_NLRI (checked by `is_evpn`). Any error means
/// session reset (RFC 7606 §7.11 for the next hop, §5.3 for the NLRI).
pub fn decode_mp_reach(v: &[u8]) -> Result<EvpnReach, String> {
    let mut r = Reader { buf: v };
    r.take(3, "MP_REACH_NLRI (EVPN): AFI/SAFI")?;
    let nh_len = usize::from(r.u8("MP_REACH_NLRI (EVPN): next hop length")?);
    let nh = r.take(nh_len, "MP_REACH_NLRI (EVPN): next hop")?;
    // RFC 7432 §7: an IPv4 or IPv6 address; a link-local second address (32 bytes, as for
    // IPv6 unicast) is accepted and not kept, since a VTEP is reached by its global address.
    let next_hop = match nh_len {
        4 | 16 => Reader { buf: nh }.ip(nh_len, "next hop")?,
        32 => Reader { buf: nh }.ip(16, "next hop")?,
        other => {
            return Err(format!(
                "MP_REACH_NLRI (EVPN): next hop length {other} is not 4, 16 or 32"
            ))
        }
    };
    r.take(1, "MP_REACH_NLRI (EVPN): reserved byte")?;
    let routes = decode_routes(r.buf, "MP_REACH_NLRI (EVPN)")?;
    Ok(EvpnReach { next_hop, routes })
}

/// Decode the value of an L2VPN/EVPN MP_UNREACH_NLRI (checked by `is_evpn`).
pub fn decode_mp_unreach(v: &[u8]) -> Result<EvpnUnreach, String> {
    let routes = decode_routes(v.get(3..).unwrap_or_default(), "MP_UNREACH_NLRI (EVPN)")?;
    Ok(EvpnUnreach { routes })
}

/// The MP_REACH value head (AFI, SAFI, next hop, reserved) for EVPN routes.
pub fn mp_reach_head(next_hop: &IpAddr, out: &mut Vec<u8>) {
    out.extend_from_slice(&AFI_L2VPN.to_be_bytes());
    out.push(SAFI_EVPN);
    match next_hop {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(16);
            out.extend_from_slice(&a.octets());
        }
    }
    out.push(0);
}

/// The MP_UNREACH value head (AFI, SAFI) for EVPN routes.
pub fn mp_unreach_head(out: &mut Vec<u8>) {
    out.extend_from_slice(&AFI_L2VPN.to_be_bytes());
    out.push(SAFI_EVPN);
}

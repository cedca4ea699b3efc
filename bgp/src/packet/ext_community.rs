//! Extended communities (RFC 4360, attribute 16) as we interpret them for EVPN: route targets
//! (2-octet AS, IPv4 and 4-octet AS forms), the BGP encapsulation (RFC 9012 §4.1, tunnel type
//! 8 = VXLAN), MAC mobility (RFC 7432 §7.7), router's MAC (RFC 9135 §8.1) and our own
//! endpoint-group id. Anything else is kept as its 8 bytes and passed on unchanged.
//!
//! The endpoint-group id (a 32-bit source group for policy) uses type 0x83, sub-type 0x01,
//! two reserved zero bytes, then the id. Why there: RFC 7153 sets the transitive types
//! 0x80-0x8F aside for experimental use, which needs no IANA assignment (the fabric is one
//! administrative domain), and flow specification (RFC 8955) already took 0x80-0x82; a
//! transitive type is passed on unchanged by FRR and GoBGP reflectors. The sub-type leaves
//! room for more of our own later, and the reserved bytes for flags (such as VXLAN-GBP's
//! "policy applied"). The transitive-opaque type 0x03 was not used: its sub-types are
//! IANA-assigned, and the group-policy drafts there carry only VXLAN-GBP's 16 bits.

use std::net::Ipv4Addr;

/// Tunnel type of the encapsulation community for VXLAN (RFC 9012 §14.1 / RFC 8365 §5.1.3).
pub const TUNNEL_VXLAN: u16 = 8;

/// Type and sub-type of our endpoint-group id community.
pub const GROUP_ID_TYPE: u8 = 0x83;
pub const GROUP_ID_SUBTYPE: u8 = 0x01;

/// One extended community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtCommunity {
    /// Route target 0x0002: 2-octet AS, 4-octet number.
    RouteTargetAs2 { asn: u16, number: u32 },
    /// Route target 0x0102: IPv4 address, 2-octet number.
    RouteTargetIp { ip: Ipv4Addr, number: u16 },
    /// Route target 0x0202: 4-octet AS, 2-octet number (RFC 5668).
    RouteTargetAs4 { asn: u32, number: u16 },
    /// BGP encapsulation 0x030c (RFC 9012 §4.1): the tunnel type (8 = VXLAN).
    Encapsulation { tunnel_type: u16 },
    /// MAC mobility 0x0600 (RFC 7432 §7.7).
    MacMobility { sticky: bool, sequence: u32 },
    /// Router's MAC 0x0603 (RFC 9135 §8.1): the VTEP's MAC for symmetric IRB.
    RouterMac([u8; 6]),
    /// Our endpoint-group id (type 0x83, sub-type 0x01; see the module comment).
    GroupId(u32),
    /// Anything else, verbatim.
    Other([u8; 8]),
}

impl ExtCommunity {
    pub fn from_bytes(b: [u8; 8]) -> ExtCommunity {
        let be16 = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        match (b[0], b[1]) {
            (0x00, 0x02) => ExtCommunity::RouteTargetAs2 {
                asn: be16(2),
                number: be32(4),
            },
            (0x01, 0x02) => ExtCommunity::RouteTargetIp {
                ip: Ipv4Addr::new(b[2], b[3], b[4], b[5]),
                number: be16(6),
            },
            (0x02, 0x02) => ExtCommunity::RouteTargetAs4 {
                asn: be32(2),
                number: be16(6),
            },
            // Reserved bytes must be zero to be ours; otherwise the 8 bytes are kept as sent.
            (0x03, 0x0c) if b[2..6] == [0; 4] => ExtCommunity::Encapsulation {
                tunnel_type: be16(6),
            },
            (0x06, 0x00) if b[2] & !1 == 0 && b[3] == 0 => ExtCommunity::MacMobility {
                sticky: b[2] & 1 != 0,
                sequence: be32(4),
            },
            (0x06, 0x03) => ExtCommunity::RouterMac([b[2], b[3], b[4], b[5], b[6], b[7]]),
            (GROUP_ID_TYPE, GROUP_ID_SUBTYPE) if b[2..4] == [0, 0] => {
                ExtCommunity::GroupId(be32(4))
            }
            _ => ExtCommunity::Other(b),
        }
    }

    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        match *self {
            ExtCommunity::RouteTargetAs2 { asn, number } => {
                b[..2].copy_from_slice(&[0x00, 0x02]);
                b[2..4].copy_from_slice(&asn.to_be_bytes());
                b[4..].copy_from_slice(&number.to_be_bytes());
            }
            ExtCommunity::RouteTargetIp { ip, number } => {
                b[..2].copy_from_slice(&[0x01, 0x02]);
                b[2..6].copy_from_slice(&ip.octets());
                b[6..].copy_from_slice(&number.to_be_bytes());
            }
            ExtCommunity::RouteTargetAs4 { asn, number } => {
                b[..2].copy_from_slice(&[0x02, 0x02]);
                b[2..6].copy_from_slice(&asn.to_be_bytes());
                b[6..].copy_from_slice(&number.to_be_bytes());
            }
            ExtCommunity::Encapsulation { tunnel_type } => {
                b[..2].copy_from_slice(&[0x03, 0x0c]);
                b[6..].copy_from_slice(&tunnel_type.to_be_bytes());
            }
            ExtCommunity::MacMobility { sticky, sequence } => {
                b[..2].copy_from_slice(&[0x06, 0x00]);
                b[2] = u8::from(sticky);
                b[4..].copy_from_slice(&sequence.to_be_bytes());
            }
            ExtCommunity::RouterMac(mac) => {
                b[..2].copy_from_slice(&[0x06, 0x03]);
                b[2..].copy_from_slice(&mac);
            }
            ExtCommunity::GroupId(id) => {
                b[..2].copy_from_slice(&[GROUP_ID_TYPE, GROUP_ID_SUBTYPE]);
                b[4..].copy_from_slice(&id.to_be_bytes());
            }
            ExtCommunity::Other(raw) => b = raw,
        }
        b
    }

    /// Whether this is a route target (any form).
    pub fn is_route_target(&self) -> bool {
        matches!(
            self,
            ExtCommunity::RouteTargetAs2 { .. }
                | ExtCommunity::RouteTargetIp { .. }
                | ExtCommunity::RouteTargetAs4 { .. }
        )
    }
}

/// Decode the attribute's value: a positive multiple of 8 bytes (RFC 7606 §7.14: otherwise
/// treat-as-withdraw, which the caller applies).
pub fn decode(v: &[u8]) -> Result<Vec<ExtCommunity>, String> {
    if v.is_empty() || !v.len().is_multiple_of(8) {
        return Err(format!(
            "EXTENDED_COMMUNITIES: length {} is not a positive multiple of 8",
            v.len()
        ));
    }
    Ok(v.chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            ExtCommunity::from_bytes(b)
        })
        .collect())
}

/// The attribute's value.
pub fn encode(list: &[ExtCommunity]) -> Vec<u8> {
    list.iter().flat_map(ExtCommunity::to_bytes).collect()
}

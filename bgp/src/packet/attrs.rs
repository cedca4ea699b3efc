//! Path attributes as we hold them in the RIB, and their encoding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ext_community::{self, ExtCommunity};
use super::open::AS_TRANS;
use super::pmsi::PmsiTunnel;

/// Attribute type codes.
pub mod kind {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH: u8 = 14;
    pub const MP_UNREACH: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const PMSI_TUNNEL: u8 = 22;
}

/// Attribute flag bits.
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// ORIGIN values; lower is preferred.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    #[default]
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AS_PATH segment types (RFC 4271, RFC 5065).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SegmentKind {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

impl SegmentKind {
    pub fn from_code(code: u8) -> Option<SegmentKind> {
        Some(match code {
            1 => SegmentKind::Set,
            2 => SegmentKind::Sequence,
            3 => SegmentKind::ConfedSequence,
            4 => SegmentKind::ConfedSet,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AsSegment {
    pub kind: SegmentKind,
    pub asns: Vec<u32>,
}

/// An AS_PATH (always held with 4-byte ASNs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    pub fn sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns,
            }],
        }
    }

    /// Length for the decision process: a set counts one, confederation segments nothing.
    pub fn decision_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentKind::Sequence => s.asns.len(),
                SegmentKind::Set => 1,
                _ => 0,
            })
            .sum()
    }

    /// The neighbouring AS: the first AS of a leading AS_SEQUENCE.
    pub fn first_as(&self) -> Option<u32> {
        self.segments
            .iter()
            .find(|s| matches!(s.kind, SegmentKind::Sequence | SegmentKind::Set))
            .filter(|s| s.kind == SegmentKind::Sequence)
            .and_then(|s| s.asns.first().copied())
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Prepend our AS for an eBGP advertisement.
    pub fn prepend(&self, asn: u32) -> AsPath {
        let mut segments = self.segments.clone();
        match segments.first_mut() {
            Some(first) if first.kind == SegmentKind::Sequence && first.asns.len() < 255 => {
                first.asns.insert(0, asn)
            }
            _ => segments.insert(
                0,
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![asn],
                },
            ),
        }
        AsPath { segments }
    }

    fn needs_as4(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > u32::from(u16::MAX)))
    }

    fn encode_value(&self, four_octet: bool, out: &mut Vec<u8>) {
        for seg in &self.segments {
            // Segments longer than 255 are split so each fits its one-byte count.
            for chunk in seg.asns.chunks(255) {
                out.push(seg.kind as u8);
                out.push(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        let short = u16::try_from(asn).unwrap_or(AS_TRANS);
                        out.extend_from_slice(&short.to_be_bytes());
                    }
                }
            }
        }
    }
}

/// An attribute we do not interpret, kept to pass on (optional transitive) or show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttr {
    pub flags: u8,
    pub kind: u8,
    pub value: Vec<u8>,
}

/// The attributes of a route. Shared (`Arc`) between all prefixes that came in one UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PathAttrs {
    pub origin: Origin,
    pub as_path: AsPath,
    /// NEXT_HOP for IPv4 routes, the MP_REACH next hop for others.
    pub next_hop: Option<IpAddr>,
    /// Second (link-local) IPv6 next hop of MP_REACH, when sent.
    pub link_local_next_hop: Option<Ipv6Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// EXTENDED_COMMUNITIES (RFC 4360): route targets, encapsulation, MAC mobility, ...
    pub ext_communities: Vec<ExtCommunity>,
    /// PMSI_TUNNEL (RFC 6514): an EVPN type-3 route's flooding tunnel.
    pub pmsi_tunnel: Option<PmsiTunnel>,
    pub other: Vec<RawAttr>,
}

/// Append one attribute (header + value).
pub fn put_attr(out: &mut Vec<u8>, flags: u8, kind: u8, value: &[u8]) {
    if value.len() > 255 {
        out.push(flags | flag::EXTENDED_LENGTH);
        out.push(kind);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.push(flags & !flag::EXTENDED_LENGTH);
        out.push(kind);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
}

impl PathAttrs {
    /// Encode every attribute except MP_REACH/MP_UNREACH. `ipv4_next_hop` adds NEXT_HOP
    /// (for IPv4 NLRI in the base fields).
    pub fn encode(&self, four_octet: bool, ipv4_next_hop: bool, out: &mut Vec<u8>) {
        const WK: u8 = flag::TRANSITIVE;
        const OPT_T: u8 = flag::OPTIONAL | flag::TRANSITIVE;
        const OPT_NT: u8 = flag::OPTIONAL;
        put_attr(out, WK, kind::ORIGIN, &[self.origin as u8]);
        let mut path = Vec::with_capacity(64);
        self.as_path.encode_value(four_octet, &mut path);
        put_attr(out, WK, kind::AS_PATH, &path);
        if ipv4_next_hop {
            if let Some(IpAddr::V4(nh)) = self.next_hop {
                put_attr(out, WK, kind::NEXT_HOP, &nh.octets());
            }
        }
        if let Some(med) = self.med {
            put_attr(out, OPT_NT, kind::MED, &med.to_be_bytes());
        }
        if let Some(lp) = self.local_pref {
            put_attr(out, WK, kind::LOCAL_PREF, &lp.to_be_bytes());
        }
        if self.atomic_aggregate {
            put_attr(out, WK, kind::ATOMIC_AGGREGATE, &[]);
        }
        if let Some((asn, id)) = self.aggregator {
            let mut v = Vec::with_capacity(8);
            if four_octet {
                v.extend_from_slice(&asn.to_be_bytes());
            } else {
                v.extend_from_slice(&u16::try_from(asn).unwrap_or(AS_TRANS).to_be_bytes());
            }
            v.extend_from_slice(&id.octets());
            put_attr(out, OPT_T, kind::AGGREGATOR, &v);
        }
        if !self.communities.is_empty() {
            let v: Vec<u8> = self
                .communities
                .iter()
                .flat_map(|c| c.to_be_bytes())
                .collect();
            put_attr(out, OPT_T, kind::COMMUNITIES, &v);
        }
        if let Some(id) = self.originator_id {
            put_attr(out, OPT_NT, kind::ORIGINATOR_ID, &id.octets());
        }
        if !self.cluster_list.is_empty() {
            let v: Vec<u8> = self.cluster_list.iter().flat_map(|c| c.octets()).collect();
            put_attr(out, OPT_NT, kind::CLUSTER_LIST, &v);
        }
        if !self.ext_communities.is_empty() {
            let v = ext_community::encode(&self.ext_communities);
            put_attr(out, OPT_T, kind::EXTENDED_COMMUNITIES, &v);
        }
        if let Some(pmsi) = &self.pmsi_tunnel {
            put_attr(out, OPT_T, kind::PMSI_TUNNEL, &pmsi.encode());
        }
        if !four_octet && self.as_path.needs_as4() {
            let mut v = Vec::new();
            self.as_path.encode_value(true, &mut v);
            put_attr(out, OPT_T, kind::AS4_PATH, &v);
        }
        for raw in &self.other {
            // Unknown optional transitive attributes are passed on with the Partial bit.
            put_attr(out, raw.flags | flag::PARTIAL, raw.kind, &raw.value);
        }
    }
}

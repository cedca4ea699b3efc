//! UPDATE decoding with RFC 7606 revised error handling. Every length is checked here before
//! anything is interpreted, so no malformed input can loop, panic or over-allocate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::attrs::{flag, kind, AsPath, AsSegment, Origin, PathAttrs, RawAttr, SegmentKind};
use super::error::{update, WireError};
use super::evpn::{self, EvpnReach, EvpnUnreach};
use super::ext_community;
use super::pmsi::PmsiTunnel;
use super::prefix::{decode_nlri, Afi, Prefix, SAFI_UNICAST};

/// What the session negotiated that changes how an UPDATE reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeCtx {
    pub four_octet_as: bool,
    /// iBGP session (LOCAL_PREF kept, confederation segments irrelevant).
    pub ibgp: bool,
}

impl Default for DecodeCtx {
    fn default() -> Self {
        DecodeCtx {
            four_octet_as: true,
            ibgp: false,
        }
    }
}

/// MP_REACH_NLRI contents for a unicast family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub afi: Afi,
    pub next_hop: IpAddr,
    pub link_local: Option<Ipv6Addr>,
    pub nlri: Vec<Prefix>,
}

/// MP_UNREACH_NLRI contents for a unicast family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub afi: Afi,
    pub withdrawn: Vec<Prefix>,
}

/// A decoded UPDATE. When RFC 7606 says "treat-as-withdraw", the reachable NLRI has already
/// been moved to the withdrawn lists and `treat_as_withdraw` says why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Vec<Prefix>,
    pub attrs: Option<PathAttrs>,
    pub nlri: Vec<Prefix>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// L2VPN/EVPN routes of MP_REACH_NLRI (AFI 25, SAFI 70), with their next hop.
    pub evpn_reach: Option<EvpnReach>,
    /// L2VPN/EVPN routes of MP_UNREACH_NLRI; present and empty is the family's End-of-RIB.
    pub evpn_unreach: Option<EvpnUnreach>,
    pub treat_as_withdraw: Option<String>,
    /// Attributes dropped by "attribute discard", with the reason.
    pub discarded: Vec<String>,
}

impl Update {
    /// End-of-RIB marker (RFC 4724 §2) for this family, if this UPDATE is one.
    pub fn end_of_rib(&self) -> Option<Afi> {
        let empty_v4 = self.withdrawn.is_empty() && self.nlri.is_empty() && self.mp_reach.is_none();
        if self.evpn_reach.is_some() {
            return None;
        }
        match (&self.attrs, &self.mp_unreach, &self.evpn_unreach) {
            (None, None, None) if empty_v4 => Some(Afi::Ipv4),
            (_, Some(un), None) if empty_v4 && un.withdrawn.is_empty() => Some(un.afi),
            (_, None, Some(un)) if empty_v4 && un.routes.is_empty() => Some(Afi::L2vpnEvpn),
            _ => None,
        }
    }
}

/// How one attribute error is handled (RFC 7606 §2).
enum Handling {
    Discard,
    TreatAsWithdraw,
    Reset(WireError),
}

struct AttrError {
    handling: Handling,
    reason: String,
}

fn taw(reason: String) -> AttrError {
    AttrError {
        handling: Handling::TreatAsWithdraw,
        reason,
    }
}

fn discard(reason: String) -> AttrError {
    AttrError {
        handling: Handling::Discard,
        reason,
    }
}

fn reset(subcode: u8, reason: String) -> AttrError {
    AttrError {
        handling: Handling::Reset(WireError::update(subcode, reason.clone())),
        reason,
    }
}

fn be32(v: &[u8]) -> u32 {
    u32::from_be_bytes([v[0], v[1], v[2], v[3]])
}

/// Decode an AS_PATH or AS4_PATH value; every segment must be complete and non-empty.
pub fn decode_as_path(mut v: &[u8], asn_size: usize, what: &str) -> Result<AsPath, String> {
    let mut segments = Vec::new();
    while !v.is_empty() {
        let [code, count, rest @ ..] = v else {
            return Err(format!(
                "{what}: segment header truncated ({} byte left)",
                v.len()
            ));
        };
        let kind = SegmentKind::from_code(*code)
            .ok_or_else(|| format!("{what}: segment type {code} unknown"))?;
        let count = usize::from(*count);
        if count == 0 {
            return Err(format!("{what}: segment of zero ASNs"));
        }
        let bytes = count * asn_size;
        if rest.len() < bytes {
            return Err(format!(
                "{what}: segment of {count} ASNs needs {bytes} bytes, {} left",
                rest.len()
            ));
        }
        let asns = rest[..bytes]
            .chunks_exact(asn_size)
            .map(|c| {
                if asn_size == 4 {
                    be32(c)
                } else {
                    u32::from(u16::from_be_bytes([c[0], c[1]]))
                }
            })
            .collect();
        segments.push(AsSegment { kind, asns });
        v = &rest[bytes..];
    }
    Ok(AsPath { segments })
}

/// RFC 7607: AS 0 is reserved and must not appear in a path; a path holding it is malformed.
fn reject_as_zero(path: AsPath, what: &str) -> Result<AsPath, String> {
    if path.contains(0) {
        return Err(format!("{what}: contains AS 0 (RFC 7607)"));
    }
    Ok(path)
}

/// Merge AS_PATH (2-byte, with AS_TRANS) and AS4_PATH per RFC 6793 §4.2.3.
fn merge_as4(as_path: &AsPath, as4: &AsPath) -> AsPath {
    let len2 = as_path.decision_len();
    let len4 = as4.decision_len();
    if len4 > len2 {
        return as_path.clone();
    }
    let mut keep = len2 - len4;
    let mut segments = Vec::new();
    for seg in &as_path.segments {
        if keep == 0 {
            break;
        }
        match seg.kind {
            SegmentKind::Sequence if seg.asns.len() > keep => {
                segments.push(AsSegment {
                    kind: seg.kind,
                    asns: seg.asns[..keep].to_vec(),
                });
                keep = 0;
            }
            SegmentKind::Sequence => {
                keep -= seg.asns.len();
                segments.push(seg.clone());
            }
            SegmentKind::Set => {
                keep -= 1;
                segments.push(seg.clone());
            }
            _ => segments.push(seg.clone()),
        }
    }
    segments.extend(as4.segments.iter().cloned());
    AsPath { segments }
}

/// Expected flags (optional, transitive) of the attributes we interpret.
fn expected_flags(code: u8) -> Option<u8> {
    Some(match code {
        kind::ORIGIN
        | kind::AS_PATH
        | kind::NEXT_HOP
        | kind::LOCAL_PREF
        | kind::ATOMIC_AGGREGATE => flag::TRANSITIVE,
        kind::MED
        | kind::ORIGINATOR_ID
        | kind::CLUSTER_LIST
        | kind::MP_REACH
        | kind::MP_UNREACH => flag::OPTIONAL,
        kind::AGGREGATOR
        | kind::COMMUNITIES
        | kind::AS4_PATH
        | kind::AS4_AGGREGATOR
        | kind::EXTENDED_COMMUNITIES
        | kind::PMSI_TUNNEL => flag::OPTIONAL | flag::TRANSITIVE,
        _ => return None,
    })
}

/// Per-attribute state while walking the attribute list.
#[derive(Default)]
struct Walk {
    attrs: PathAttrs,
    seen: [u64; 4],
    has_origin: bool,
    has_as_path: bool,
    has_next_hop: bool,
    as4_path: Option<AsPath>,
    mp_reach: Option<MpReach>,
    mp_unreach: Option<MpUnreach>,
    evpn_reach: Option<EvpnReach>,
    evpn_unreach: Option<EvpnUnreach>,
}

fn decode_mp_reach(v: &[u8]) -> Result<Option<MpReach>, AttrError> {
    if v.len() < 5 {
        return Err(reset(
            update::OPTIONAL_ATTRIBUTE,
            format!("MP_REACH_NLRI: {} bytes is too short", v.len()),
        ));
    }
    let afi_code = u16::from_be_bytes([v[0], v[1]]);
    let safi = v[2];
    let nh_len = usize::from(v[3]);
    if v.len() < 4 + nh_len + 1 {
        return Err(reset(
            update::OPTIONAL_ATTRIBUTE,
            format!("MP_REACH_NLRI: next hop length {nh_len} overruns the attribute"),
        ));
    }
    let (Some(afi), SAFI_UNICAST) = (Afi::from_code(afi_code), safi) else {
        // A family we never negotiated: nothing of ours to install.
        return Ok(None);
    };
    let nh = &v[4..4 + nh_len];
    let (next_hop, link_local) = match (afi, nh_len) {
        (Afi::Ipv4, 4) => (IpAddr::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3])), None),
        (Afi::Ipv6, 16) => (IpAddr::V6(ipv6(&nh[..16])), None),
        (Afi::Ipv6, 32) => (IpAddr::V6(ipv6(&nh[..16])), Some(ipv6(&nh[16..32]))),
        _ => {
            return Err(reset(
                update::OPTIONAL_ATTRIBUTE,
                format!("MP_REACH_NLRI: next hop length {nh_len} invalid for AFI {afi_code}"),
            ))
        }
    };
    // One reserved byte follows the next hop.
    let mut nlri = Vec::new();
    decode_nlri(&v[4 + nh_len + 1..], afi, "MP_REACH_NLRI", &mut nlri)
        .map_err(|e| reset(update::OPTIONAL_ATTRIBUTE, e.reason))?;
    Ok(Some(MpReach {
        afi,
        next_hop,
        link_local,
        nlri,
    }))
}

fn decode_mp_unreach(v: &[u8]) -> Result<Option<MpUnreach>, AttrError> {
    if v.len() < 3 {
        return Err(reset(
            update::OPTIONAL_ATTRIBUTE,
            format!("MP_UNREACH_NLRI: {} bytes is too short", v.len()),
        ));
    }
    let afi_code = u16::from_be_bytes([v[0], v[1]]);
    let (Some(afi), SAFI_UNICAST) = (Afi::from_code(afi_code), v[2]) else {
        return Ok(None);
    };
    let mut withdrawn = Vec::new();
    decode_nlri(&v[3..], afi, "MP_UNREACH_NLRI", &mut withdrawn)
        .map_err(|e| reset(update::OPTIONAL_ATTRIBUTE, e.reason))?;
    Ok(Some(MpUnreach { afi, withdrawn }))
}

fn ipv6(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[..16]);
    Ipv6Addr::from(o)
}

fn exact_len(name: &str, v: &[u8], want: usize) -> Result<(), String> {
    if v.len() == want {
        Ok(())
    } else {
        Err(format!("{name}: length {} is not {want}", v.len()))
    }
}

/// Interpret one attribute whose header was already checked.
fn apply_attr(
    w: &mut Walk,
    flags: u8,
    code: u8,
    v: &[u8],
    ctx: DecodeCtx,
) -> Result<(), AttrError> {
    let asn_size = if ctx.four_octet_as { 4 } else { 2 };
    match code {
        kind::ORIGIN => {
            exact_len("ORIGIN", v, 1).map_err(taw)?;
            w.attrs.origin = match v[0] {
                0 => Origin::Igp,
                1 => Origin::Egp,
                2 => Origin::Incomplete,
                other => return Err(taw(format!("ORIGIN: value {other} undefined"))),
            };
            w.has_origin = true;
        }
        kind::AS_PATH => {
            let path = decode_as_path(v, asn_size, "AS_PATH")
                .and_then(|p| reject_as_zero(p, "AS_PATH"))
                .map_err(taw)?;
            if !ctx.ibgp
                && path
                    .segments
                    .iter()
                    .any(|s| matches!(s.kind, SegmentKind::ConfedSequence | SegmentKind::ConfedSet))
            {
                return Err(taw(
                    "AS_PATH: confederation segment from an external peer".into()
                ));
            }
            w.attrs.as_path = path;
            w.has_as_path = true;
        }
        kind::NEXT_HOP => {
            exact_len("NEXT_HOP", v, 4).map_err(taw)?;
            let nh = Ipv4Addr::new(v[0], v[1], v[2], v[3]);
            if nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast() {
                return Err(taw(format!(
                    "NEXT_HOP: {nh} is not a usable unicast address"
                )));
            }
            w.attrs.next_hop = Some(IpAddr::V4(nh));
            w.has_next_hop = true;
        }
        kind::MED => {
            exact_len("MULTI_EXIT_DISC", v, 4).map_err(taw)?;
            w.attrs.med = Some(be32(v));
        }
        kind::LOCAL_PREF => {
            if !ctx.ibgp {
                return Err(discard("LOCAL_PREF: received from an external peer".into()));
            }
            exact_len("LOCAL_PREF", v, 4).map_err(taw)?;
            w.attrs.local_pref = Some(be32(v));
        }
        kind::ATOMIC_AGGREGATE => {
            exact_len("ATOMIC_AGGREGATE", v, 0).map_err(discard)?;
            w.attrs.atomic_aggregate = true;
        }
        kind::AGGREGATOR => {
            exact_len("AGGREGATOR", v, asn_size + 4).map_err(discard)?;
            let asn = if ctx.four_octet_as {
                be32(v)
            } else {
                u32::from(u16::from_be_bytes([v[0], v[1]]))
            };
            if asn == 0 {
                // RFC 7607 §2: discarded, so it is never passed on either.
                return Err(discard("AGGREGATOR: AS 0 (RFC 7607)".into()));
            }
            let id = &v[asn_size..];
            w.attrs.aggregator = Some((asn, Ipv4Addr::new(id[0], id[1], id[2], id[3])));
        }
        kind::COMMUNITIES => {
            if v.is_empty() || !v.len().is_multiple_of(4) {
                return Err(taw(format!(
                    "COMMUNITIES: length {} is not a positive multiple of 4",
                    v.len()
                )));
            }
            w.attrs.communities = v.chunks_exact(4).map(be32).collect();
        }
        kind::ORIGINATOR_ID => {
            if !ctx.ibgp {
                return Err(discard(
                    "ORIGINATOR_ID: received from an external peer".into(),
                ));
            }
            exact_len("ORIGINATOR_ID", v, 4).map_err(taw)?;
            w.attrs.originator_id = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3]));
        }
        kind::CLUSTER_LIST => {
            if !ctx.ibgp {
                return Err(discard(
                    "CLUSTER_LIST: received from an external peer".into(),
                ));
            }
            if v.is_empty() || !v.len().is_multiple_of(4) {
                return Err(taw(format!(
                    "CLUSTER_LIST: length {} is not a positive multiple of 4",
                    v.len()
                )));
            }
            w.attrs.cluster_list = v
                .chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect();
        }
        // EVPN: a malformed next hop or NLRI field resets the session (RFC 7606 §7.11, §5.3;
        // see `evpn`), as for the unicast families.
        kind::MP_REACH if evpn::is_evpn(v) => {
            w.evpn_reach =
                Some(evpn::decode_mp_reach(v).map_err(|e| reset(update::OPTIONAL_ATTRIBUTE, e))?)
        }
        kind::MP_UNREACH if evpn::is_evpn(v) => {
            w.evpn_unreach =
                Some(evpn::decode_mp_unreach(v).map_err(|e| reset(update::OPTIONAL_ATTRIBUTE, e))?)
        }
        kind::MP_REACH => w.mp_reach = decode_mp_reach(v)?,
        kind::MP_UNREACH => w.mp_unreach = decode_mp_unreach(v)?,
        kind::EXTENDED_COMMUNITIES => {
            w.attrs.ext_communities = ext_community::decode(v).map_err(taw)?;
        }
        kind::PMSI_TUNNEL => {
            w.attrs.pmsi_tunnel = Some(PmsiTunnel::decode(v).map_err(taw)?);
        }
        kind::AS4_PATH => {
            if ctx.four_octet_as {
                return Err(discard("AS4_PATH: received on a 4-octet AS session".into()));
            }
            let as4 = decode_as_path(v, 4, "AS4_PATH").map_err(discard)?;
            // RFC 7607 asks for the RFC 7606 handling of a malformed path: the routes go,
            // since the path they would be installed with cannot be trusted.
            w.as4_path = Some(reject_as_zero(as4, "AS4_PATH").map_err(taw)?);
        }
        kind::AS4_AGGREGATOR => {
            if ctx.four_octet_as {
                return Err(discard(
                    "AS4_AGGREGATOR: received on a 4-octet AS session".into(),
                ));
            }
            exact_len("AS4_AGGREGATOR", v, 8).map_err(discard)?;
            let asn = be32(v);
            if asn == 0 {
                return Err(discard("AS4_AGGREGATOR: AS 0 (RFC 7607)".into()));
            }
            if let Some(agg) = w.attrs.aggregator.as_mut() {
                agg.0 = asn;
            }
        }
        _ => {
            if flags & flag::OPTIONAL == 0 {
                return Err(AttrError {
                    handling: Handling::Reset(WireError::new(
                        super::error::code::UPDATE,
                        update::UNRECOGNIZED_WELL_KNOWN,
                        vec![flags, code],
                        format!("attribute {code}: unrecognized well-known attribute"),
                    )),
                    reason: format!("attribute {code}: unrecognized well-known attribute"),
                });
            }
            if flags & flag::TRANSITIVE != 0 {
                w.attrs.other.push(RawAttr {
                    flags: flags & !flag::EXTENDED_LENGTH,
                    kind: code,
                    value: v.to_vec(),
                });
            }
        }
    }
    Ok(())
}

/// Decode and validate an UPDATE body (after the 19-byte header).
pub fn decode_update(body: &[u8], ctx: DecodeCtx) -> Result<Update, WireError> {
    let malformed = |reason: String| WireError::update(update::MALFORMED_ATTRIBUTE_LIST, reason);
    if body.len() < 4 {
        return Err(malformed(format!(
            "UPDATE: body of {} bytes is shorter than 4",
            body.len()
        )));
    }
    let wd_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    if 2 + wd_len + 2 > body.len() {
        return Err(malformed(format!(
            "UPDATE: withdrawn routes length {wd_len} overruns the message"
        )));
    }
    let wd_bytes = &body[2..2 + wd_len];
    let at = 2 + wd_len;
    let attr_len = usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    if at + 2 + attr_len > body.len() {
        return Err(malformed(format!(
            "UPDATE: total path attribute length {attr_len} overruns the message"
        )));
    }
    let attr_bytes = &body[at + 2..at + 2 + attr_len];
    let nlri_bytes = &body[at + 2 + attr_len..];

    let mut out = Update::default();
    // "Always decode base NLRI as IPv4": the base fields carry only IPv4 (RFC 4271).
    decode_nlri(wd_bytes, Afi::Ipv4, "withdrawn routes", &mut out.withdrawn)?;
    decode_nlri(nlri_bytes, Afi::Ipv4, "NLRI", &mut out.nlri)?;

    let mut w = Walk::default();
    let mut withdraw_reason: Option<String> = None;
    let mut rest = attr_bytes;
    while !rest.is_empty() {
        if rest.len() < 3 {
            withdraw_reason.get_or_insert(format!(
                "attribute header truncated ({} bytes left)",
                rest.len()
            ));
            break;
        }
        let flags = rest[0];
        let code = rest[1];
        let (len, hdr) = if flags & flag::EXTENDED_LENGTH != 0 {
            if rest.len() < 4 {
                withdraw_reason.get_or_insert(format!(
                    "attribute {code}: extended length header truncated"
                ));
                break;
            }
            (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4)
        } else {
            (usize::from(rest[2]), 3)
        };
        if rest.len() < hdr + len {
            // RFC 7606 §4: an attribute overrunning the attribute field.
            if matches!(code, kind::MP_REACH | kind::MP_UNREACH) {
                return Err(malformed(format!(
                    "attribute {code}: length {len} overruns the path attributes"
                )));
            }
            withdraw_reason.get_or_insert(format!(
                "attribute {code}: length {len} overruns the path attributes"
            ));
            break;
        }
        let value = &rest[hdr..hdr + len];
        rest = &rest[hdr + len..];

        let (word, bit) = (usize::from(code / 64), 1u64 << (code % 64));
        if w.seen[word] & bit != 0 {
            // RFC 7606 §3(g): keep the first, except MP attributes which reset the session.
            if matches!(code, kind::MP_REACH | kind::MP_UNREACH) {
                return Err(malformed(format!(
                    "attribute {code}: appears more than once"
                )));
            }
            out.discarded
                .push(format!("attribute {code}: duplicate discarded"));
            continue;
        }
        w.seen[word] |= bit;

        let result = match expected_flags(code) {
            Some(want) if flags & (flag::OPTIONAL | flag::TRANSITIVE) != want => {
                let reason = format!("attribute {code}: flags {flags:#04x} conflict with its type");
                match code {
                    kind::MP_REACH | kind::MP_UNREACH => {
                        Err(reset(update::ATTRIBUTE_FLAGS, reason))
                    }
                    kind::ATOMIC_AGGREGATE
                    | kind::AGGREGATOR
                    | kind::AS4_PATH
                    | kind::AS4_AGGREGATOR => Err(discard(reason)),
                    _ => Err(taw(reason)),
                }
            }
            _ => apply_attr(&mut w, flags, code, value, ctx),
        };
        if let Err(err) = result {
            match err.handling {
                Handling::Discard => out.discarded.push(err.reason),
                Handling::TreatAsWithdraw => {
                    withdraw_reason.get_or_insert(err.reason);
                }
                Handling::Reset(e) => return Err(e),
            }
        }
    }

    if let Some(as4) = w.as4_path.take() {
        w.attrs.as_path = merge_as4(&w.attrs.as_path, &as4);
    }
    let has_reach = !out.nlri.is_empty()
        || w.mp_reach.as_ref().is_some_and(|r| !r.nlri.is_empty())
        || w.evpn_reach.as_ref().is_some_and(|r| !r.routes.is_empty());
    if has_reach && withdraw_reason.is_none() {
        let mut missing = Vec::new();
        if !w.has_origin {
            missing.push("ORIGIN");
        }
        if !w.has_as_path {
            missing.push("AS_PATH");
        }
        if !out.nlri.is_empty() && !w.has_next_hop {
            missing.push("NEXT_HOP");
        }
        if !missing.is_empty() {
            withdraw_reason = Some(format!(
                "missing well-known attribute(s) {}",
                missing.join(", ")
            ));
        }
    }

    out.mp_unreach = w.mp_unreach;
    out.evpn_unreach = w.evpn_unreach;
    if let Some(reason) = withdraw_reason {
        if let Some(reach) = w.evpn_reach.filter(|r| !r.routes.is_empty()) {
            out.evpn_unreach
                .get_or_insert_with(EvpnUnreach::default)
                .routes
                .extend(reach.routes);
        }
        // Treat-as-withdraw: every reachable prefix of this UPDATE becomes a withdrawal.
        let nlri = std::mem::take(&mut out.nlri);
        out.withdrawn.extend(nlri);
        if let Some(reach) = w.mp_reach {
            match out.mp_unreach.as_mut() {
                Some(un) if un.afi == reach.afi => un.withdrawn.extend(reach.nlri),
                _ => {
                    if reach.afi == Afi::Ipv4 {
                        out.withdrawn.extend(reach.nlri);
                    } else if out.mp_unreach.is_none() {
                        out.mp_unreach = Some(MpUnreach {
                            afi: reach.afi,
                            withdrawn: reach.nlri,
                        });
                    }
                }
            }
        }
        out.treat_as_withdraw = Some(reason);
        return Ok(out);
    }
    let mp_only = w.seen[0] & !((1u64 << kind::MP_REACH) | (1u64 << kind::MP_UNREACH)) == 0
        && w.seen[1..].iter().all(|&x| x == 0);
    if !mp_only {
        out.attrs = Some(w.attrs);
    }
    out.mp_reach = w.mp_reach;
    out.evpn_reach = w.evpn_reach;
    Ok(out)
}

//! MULTIPART flow statistics: the request (by table, cookie and match) and the reply, decoded
//! back into [`Flow`] values so the flow-writer can read what is installed; and aggregate
//! statistics (OFPMP_AGGREGATE): the same selection, answered with one count of flows, packets
//! and bytes.
//!
//! A reply entry the model cannot express (an action or field we do not know, from a flow
//! someone else installed) does not spoil the rest: it comes back as an [`UndecodedFlow`]
//! naming the flow and the reason.

use super::error::{DecodeError, EncodeError};
use super::flow_mod::{decode_instructions, encode_instructions, OFPG_ANY, OFPTT_ALL};
use super::oxm::{decode_match, encode_match};
use super::wire::{patch_u16, Reader};
use crate::flow::{port, Flow, Match};

pub(crate) const OFPMP_FLOW: u16 = 1;
pub(crate) const OFPMP_AGGREGATE: u16 = 2;
/// Multipart reply flag: more replies with the same xid follow.
pub(crate) const OFPMPF_REPLY_MORE: u16 = 1;

/// OFPMP_FLOW request: the flows in `table` whose cookie matches under `cookie_mask` and
/// that the (non-strict) `matches` covers. An OFPMP_AGGREGATE request has the same body
/// (`ofp_aggregate_stats_request` = `ofp_flow_stats_request`) and selects flows the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub table: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub matches: Match,
}

impl FlowStatsRequest {
    /// Every flow in every table whose cookie matches `cookie` under `cookie_mask`.
    pub fn by_cookie(cookie: u64, cookie_mask: u64) -> Self {
        Self {
            table: OFPTT_ALL,
            out_port: port::ANY,
            out_group: OFPG_ANY,
            cookie,
            cookie_mask,
            matches: Match::default(),
        }
    }

    /// Every flow of the switch.
    pub fn all() -> Self {
        Self::by_cookie(0, 0)
    }
}

/// One installed flow with its statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStats {
    pub flow: Flow,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub packet_count: u64,
    pub byte_count: u64,
}

/// An installed flow whose match or instructions the model cannot express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndecodedFlow {
    pub table: u8,
    pub priority: u16,
    pub cookie: u64,
    pub error: DecodeError,
}

/// One OFPMP_FLOW reply message; `more` says further messages with the same xid follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStatsReply {
    pub more: bool,
    pub flows: Vec<Result<FlowStats, UndecodedFlow>>,
}

/// One OFPMP_AGGREGATE reply: totals over the flows the request selected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

fn put_multipart_header(buf: &mut Vec<u8>, mp_type: u16, flags: u16) {
    buf.extend_from_slice(&mp_type.to_be_bytes());
    buf.extend_from_slice(&flags.to_be_bytes());
    buf.extend_from_slice(&[0; 4]);
}

pub(crate) fn encode_flow_stats_request(
    buf: &mut Vec<u8>,
    req: &FlowStatsRequest,
) -> Result<(), EncodeError> {
    encode_selection(buf, OFPMP_FLOW, req)
}

pub(crate) fn encode_aggregate_request(
    buf: &mut Vec<u8>,
    req: &FlowStatsRequest,
) -> Result<(), EncodeError> {
    encode_selection(buf, OFPMP_AGGREGATE, req)
}

/// A multipart request of type `mp_type` whose body is an `ofp_flow_stats_request`.
fn encode_selection(
    buf: &mut Vec<u8>,
    mp_type: u16,
    req: &FlowStatsRequest,
) -> Result<(), EncodeError> {
    put_multipart_header(buf, mp_type, 0);
    buf.push(req.table);
    buf.extend_from_slice(&[0; 3]);
    buf.extend_from_slice(&req.out_port.to_be_bytes());
    buf.extend_from_slice(&req.out_group.to_be_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&req.cookie.to_be_bytes());
    buf.extend_from_slice(&req.cookie_mask.to_be_bytes());
    encode_match(buf, &req.matches)
}

pub(crate) fn decode_flow_stats_request(
    r: &mut Reader<'_>,
) -> Result<FlowStatsRequest, DecodeError> {
    let table = r.u8()?;
    r.skip(3)?;
    let out_port = r.u32()?;
    let out_group = r.u32()?;
    r.skip(4)?;
    let cookie = r.u64()?;
    let cookie_mask = r.u64()?;
    let matches = decode_match(r)?;
    Ok(FlowStatsRequest {
        table,
        out_port,
        out_group,
        cookie,
        cookie_mask,
        matches,
    })
}

/// Length of `ofp_aggregate_stats_reply` (after the multipart header).
const AGGREGATE_REPLY_LEN: usize = 24;

pub(crate) fn encode_aggregate_reply(buf: &mut Vec<u8>, s: &AggregateStats) {
    put_multipart_header(buf, OFPMP_AGGREGATE, 0);
    buf.extend_from_slice(&s.packet_count.to_be_bytes());
    buf.extend_from_slice(&s.byte_count.to_be_bytes());
    buf.extend_from_slice(&s.flow_count.to_be_bytes());
    buf.extend_from_slice(&[0; 4]);
}

/// Reads an `ofp_aggregate_stats_reply` (after the multipart header), which must fill `r`.
pub(crate) fn decode_aggregate_reply(r: &mut Reader<'_>) -> Result<AggregateStats, DecodeError> {
    if r.remaining() != AGGREGATE_REPLY_LEN {
        return Err(DecodeError::BadLength {
            what: "ofp_aggregate_stats_reply",
            len: r.remaining(),
            min: AGGREGATE_REPLY_LEN,
            max: AGGREGATE_REPLY_LEN,
        });
    }
    let packet_count = r.u64()?;
    let byte_count = r.u64()?;
    let flow_count = r.u32()?;
    r.skip(4)?;
    Ok(AggregateStats {
        packet_count,
        byte_count,
        flow_count,
    })
}

/// Fixed part of `ofp_flow_stats` before the match.
const FLOW_STATS_FIXED: usize = 48;

pub(crate) fn encode_flow_stats_reply(
    buf: &mut Vec<u8>,
    reply: &FlowStatsReply,
) -> Result<(), EncodeError> {
    let flags = if reply.more { OFPMPF_REPLY_MORE } else { 0 };
    put_multipart_header(buf, OFPMP_FLOW, flags);
    for entry in &reply.flows {
        let Ok(s) = entry else {
            return Err(EncodeError::Unencodable("an undecoded flow-stats entry"));
        };
        let start = buf.len();
        buf.extend_from_slice(&[0, 0]);
        buf.push(s.flow.table);
        buf.push(0);
        buf.extend_from_slice(&s.duration_sec.to_be_bytes());
        buf.extend_from_slice(&s.duration_nsec.to_be_bytes());
        buf.extend_from_slice(&s.flow.priority.to_be_bytes());
        buf.extend_from_slice(&s.idle_timeout.to_be_bytes());
        buf.extend_from_slice(&s.hard_timeout.to_be_bytes());
        buf.extend_from_slice(&s.flags.to_be_bytes());
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&s.flow.cookie.to_be_bytes());
        buf.extend_from_slice(&s.packet_count.to_be_bytes());
        buf.extend_from_slice(&s.byte_count.to_be_bytes());
        encode_match(buf, &s.flow.matches)?;
        encode_instructions(buf, &s.flow.actions, s.flow.goto_table)?;
        let len = buf.len() - start;
        patch_u16(buf, start, len)?;
    }
    Ok(())
}

/// Reads the fixed part of `ofp_flow_stats` (after its length) into `s`.
fn decode_fixed(r: &mut Reader<'_>, s: &mut FlowStats) -> Result<(), DecodeError> {
    s.flow.table = r.u8()?;
    r.skip(1)?;
    s.duration_sec = r.u32()?;
    s.duration_nsec = r.u32()?;
    s.flow.priority = r.u16()?;
    s.idle_timeout = r.u16()?;
    s.hard_timeout = r.u16()?;
    s.flags = r.u16()?;
    r.skip(4)?;
    s.flow.cookie = r.u64()?;
    s.packet_count = r.u64()?;
    s.byte_count = r.u64()?;
    Ok(())
}

/// Reads one `ofp_flow_stats` entry that fills `r`.
fn decode_entry(r: &mut Reader<'_>) -> Result<FlowStats, UndecodedFlow> {
    let mut s = FlowStats {
        flow: Flow {
            table: 0,
            priority: 0,
            matches: Match::default(),
            actions: Vec::new(),
            goto_table: None,
            cookie: 0,
        },
        duration_sec: 0,
        duration_nsec: 0,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        packet_count: 0,
        byte_count: 0,
    };
    let rest = decode_fixed(r, &mut s)
        .and_then(|()| decode_match(r))
        .and_then(|m| decode_instructions(r).map(|i| (m, i)));
    match rest {
        Ok((matches, (actions, goto_table))) => {
            s.flow.matches = matches;
            s.flow.actions = actions;
            s.flow.goto_table = goto_table;
            Ok(s)
        }
        Err(error) => Err(UndecodedFlow {
            table: s.flow.table,
            priority: s.flow.priority,
            cookie: s.flow.cookie,
            error,
        }),
    }
}

/// Reads the entries of an OFPMP_FLOW reply (after the multipart header).
pub(crate) fn decode_flow_stats_reply(
    r: &mut Reader<'_>,
    more: bool,
) -> Result<FlowStatsReply, DecodeError> {
    let mut flows = Vec::new();
    while !r.is_empty() {
        let len = usize::from(r.u16()?);
        if len < FLOW_STATS_FIXED || len % 8 != 0 {
            return Err(DecodeError::BadLength {
                what: "ofp_flow_stats",
                len,
                min: FLOW_STATS_FIXED,
                max: 65528,
            });
        }
        let mut entry = r.sub(len - 2, "ofp_flow_stats")?;
        flows.push(decode_entry(&mut entry));
    }
    Ok(FlowStatsReply { more, flows })
}

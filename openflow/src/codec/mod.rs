//! The OpenFlow 1.3 codec: messages to bytes and back, with no I/O.
//!
//! [`encode`] turns a [`Message`] and an xid into one wire message; [`frame_len`] finds where
//! the next message ends in a receive buffer; [`decode`] turns one message's bytes into a
//! [`Header`] and a [`Message`]. Decoding never panics: anything unexpected from the switch is
//! a [`DecodeError`]. Message types the agent does not use (PACKET_IN, PORT_STATUS, ...) decode
//! as [`Message::Other`] so the connection can ignore them.
//!
//! Files by message family: [`basic`] (hello, echo, features, barrier), [`errmsg`] (errors),
//! [`flow_mod`], [`multipart`] (flow and aggregate stats), [`bundle`] (ONF bundles), `oxm` (matches and
//! field headers) and `action` (OpenFlow and Nicira actions).

mod action;
pub mod basic;
pub mod bundle;
pub mod errmsg;
mod error;
pub mod flow_mod;
pub mod multipart;
mod oxm;
#[cfg(test)]
pub(crate) mod test_util;
#[cfg(test)]
mod tests;
mod wire;

pub use basic::{Features, Hello};
pub use bundle::{bundle_flags, BundleAdd, BundleControl, BundleCtrlType};
pub use errmsg::ErrorMsg;
pub use error::{DecodeError, EncodeError};
pub use flow_mod::{FlowMod, FlowModCommand, OFPG_ANY, OFPTT_ALL};
pub use multipart::{AggregateStats, FlowStats, FlowStatsReply, FlowStatsRequest, UndecodedFlow};

use wire::{patch_u16, Reader};

/// OpenFlow 1.3's wire version.
pub const OFP_VERSION: u8 = 0x04;
/// Length of the OpenFlow header.
pub const HEADER_LEN: usize = 8;

/// OpenFlow 1.3 message types (`ofp_type`).
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const FLOW_MOD: u8 = 14;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
}

/// The OpenFlow header of a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    pub length: u16,
    pub xid: u32,
}

/// The messages the agent sends and receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    FeaturesRequest,
    FeaturesReply(Features),
    BarrierRequest,
    BarrierReply,
    FlowMod(FlowMod),
    FlowStatsRequest(FlowStatsRequest),
    FlowStatsReply(FlowStatsReply),
    /// OFPMP_AGGREGATE request: the same selection as a flow-stats request.
    AggregateRequest(FlowStatsRequest),
    AggregateReply(AggregateStats),
    BundleControl(BundleControl),
    BundleAdd(BundleAdd),
    /// Any other message, undecoded: its type and the bytes after the header.
    Other {
        msg_type: u8,
        body: Vec<u8>,
    },
}

impl Message {
    /// The `ofp_type` this message is sent as.
    pub fn msg_type(&self) -> u8 {
        use msg_type::*;
        match self {
            Message::Hello(_) => HELLO,
            Message::Error(_) => ERROR,
            Message::EchoRequest(_) => ECHO_REQUEST,
            Message::EchoReply(_) => ECHO_REPLY,
            Message::FeaturesRequest => FEATURES_REQUEST,
            Message::FeaturesReply(_) => FEATURES_REPLY,
            Message::BarrierRequest => BARRIER_REQUEST,
            Message::BarrierReply => BARRIER_REPLY,
            Message::FlowMod(_) => FLOW_MOD,
            Message::FlowStatsRequest(_) | Message::AggregateRequest(_) => MULTIPART_REQUEST,
            Message::FlowStatsReply(_) | Message::AggregateReply(_) => MULTIPART_REPLY,
            Message::BundleControl(_) | Message::BundleAdd(_) => EXPERIMENTER,
            Message::Other { msg_type, .. } => *msg_type,
        }
    }
}

/// Encodes `msg` with transaction id `xid` as one OpenFlow 1.3 message.
pub fn encode(msg: &Message, xid: u32) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::with_capacity(64);
    buf.push(OFP_VERSION);
    buf.push(msg.msg_type());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&xid.to_be_bytes());
    match msg {
        Message::Hello(h) => basic::encode_hello(&mut buf, h),
        Message::Error(e) => errmsg::encode_error(&mut buf, e),
        Message::EchoRequest(d) | Message::EchoReply(d) => buf.extend_from_slice(d),
        Message::FeaturesRequest | Message::BarrierRequest | Message::BarrierReply => {}
        Message::FeaturesReply(f) => basic::encode_features(&mut buf, f),
        Message::FlowMod(fm) => flow_mod::encode_flow_mod(&mut buf, fm)?,
        Message::FlowStatsRequest(r) => multipart::encode_flow_stats_request(&mut buf, r)?,
        Message::FlowStatsReply(r) => multipart::encode_flow_stats_reply(&mut buf, r)?,
        Message::AggregateRequest(r) => multipart::encode_aggregate_request(&mut buf, r)?,
        Message::AggregateReply(s) => multipart::encode_aggregate_reply(&mut buf, s),
        Message::BundleControl(c) => bundle::encode_control(&mut buf, c),
        Message::BundleAdd(a) => bundle::encode_add(&mut buf, a, xid)?,
        Message::Other { body, .. } => buf.extend_from_slice(body),
    }
    let len = buf.len();
    patch_u16(&mut buf, 2, len)?;
    Ok(buf)
}

/// The length of the first message in `buf` if all of it is there, `None` if more bytes are
/// needed. A length field shorter than the header is an error (the stream cannot be resynced).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if len < HEADER_LEN {
        return Err(DecodeError::BadLength {
            what: "OpenFlow header",
            len,
            min: HEADER_LEN,
            max: 65535,
        });
    }
    Ok((buf.len() >= len).then_some(len))
}

/// Reads the header of a message.
pub fn decode_header(frame: &[u8]) -> Result<Header, DecodeError> {
    let mut r = Reader::new(frame, "OpenFlow header");
    Ok(Header {
        version: r.u8()?,
        msg_type: r.u8()?,
        length: r.u16()?,
        xid: r.u32()?,
    })
}

/// Decodes one whole message (exactly the bytes [`frame_len`] delimited). HELLO is accepted
/// in any version (it is how versions are negotiated); everything else must be 1.3.
pub fn decode(frame: &[u8]) -> Result<(Header, Message), DecodeError> {
    use msg_type::*;
    let h = decode_header(frame)?;
    let len = usize::from(h.length);
    if len < HEADER_LEN || len != frame.len() {
        return Err(DecodeError::BadLength {
            what: "OpenFlow message",
            len,
            min: HEADER_LEN,
            max: frame.len(),
        });
    }
    if h.version != OFP_VERSION && h.msg_type != HELLO {
        return Err(DecodeError::BadVersion(h.version));
    }
    let mut r = Reader::new(&frame[HEADER_LEN..], "message body");
    let msg = match h.msg_type {
        HELLO => Message::Hello(basic::decode_hello(&mut r)?),
        ERROR => Message::Error(errmsg::decode_error(&mut r)?),
        ECHO_REQUEST => Message::EchoRequest(r.rest().to_vec()),
        ECHO_REPLY => Message::EchoReply(r.rest().to_vec()),
        FEATURES_REQUEST => Message::FeaturesRequest,
        FEATURES_REPLY => Message::FeaturesReply(basic::decode_features(&mut r)?),
        BARRIER_REQUEST => Message::BarrierRequest,
        BARRIER_REPLY => Message::BarrierReply,
        FLOW_MOD => Message::FlowMod(flow_mod::decode_flow_mod(&mut r)?),
        MULTIPART_REQUEST | MULTIPART_REPLY => {
            let mp_type = r.u16()?;
            let flags = r.u16()?;
            r.skip(4)?;
            match (h.msg_type, mp_type) {
                (MULTIPART_REQUEST, multipart::OFPMP_FLOW) => {
                    Message::FlowStatsRequest(multipart::decode_flow_stats_request(&mut r)?)
                }
                (MULTIPART_REPLY, multipart::OFPMP_FLOW) => {
                    let more = flags & multipart::OFPMPF_REPLY_MORE != 0;
                    Message::FlowStatsReply(multipart::decode_flow_stats_reply(&mut r, more)?)
                }
                (MULTIPART_REQUEST, multipart::OFPMP_AGGREGATE) => {
                    Message::AggregateRequest(multipart::decode_flow_stats_request(&mut r)?)
                }
                (MULTIPART_REPLY, multipart::OFPMP_AGGREGATE) => {
                    Message::AggregateReply(multipart::decode_aggregate_reply(&mut r)?)
                }
                _ => Message::Other {
                    msg_type: h.msg_type,
                    body: frame[HEADER_LEN..].to_vec(),
                },
            }
        }
        EXPERIMENTER => {
            let experimenter = r.u32()?;
            let exp_type = r.u32()?;
            match (experimenter, exp_type) {
                (errmsg::ONF_VENDOR_ID, bundle::ONFT_BUNDLE_CONTROL) => {
                    Message::BundleControl(bundle::decode_control(&mut r)?)
                }
                (errmsg::ONF_VENDOR_ID, bundle::ONFT_BUNDLE_ADD_MESSAGE) => {
                    Message::BundleAdd(bundle::decode_add(&mut r, h.xid)?)
                }
                _ => Message::Other {
                    msg_type: h.msg_type,
                    body: frame[HEADER_LEN..].to_vec(),
                },
            }
        }
        other => Message::Other {
            msg_type: other,
            body: frame[HEADER_LEN..].to_vec(),
        },
    };
    Ok((h, msg))
}

//! BGP wire format: framing and validation (`frame`, `update`), message types, our encoder.
//!
//! Received bytes go through `frame::check_header` and the validating decoders here; nothing
//! from the network reaches a decoder that has not had every length checked.

pub mod attrs;
pub mod encode;
pub mod error;
pub mod evpn;
pub mod evpn_encode;
pub mod ext_community;
pub mod frame;
pub mod open;
pub mod pmsi;
pub mod prefix;
pub mod update;

pub use attrs::{AsPath, Origin, PathAttrs};
pub use error::WireError;
pub use evpn::{EvpnKey, EvpnReach, EvpnRoute, EvpnUnreach, RouteDistinguisher};
pub use ext_community::ExtCommunity;
pub use open::{Capability, GracefulRestart, Open};
pub use pmsi::PmsiTunnel;
pub use prefix::{Afi, Prefix};
pub use update::{DecodeCtx, MpReach, MpUnreach, Update};

use frame::{msg_type, HEADER_LEN};

/// NOTIFICATION message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl std::fmt::Display for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NOTIFICATION {}/{}", self.code, self.subcode)
    }
}

/// ROUTE-REFRESH message (RFC 2918).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    pub safi: u8,
}

/// Any BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Box<Update>),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// Decode one whole message (header included) that `frame::split_message` delimited, or
/// check and decode in one go (the fuzz entry point).
pub fn decode_message(msg: &[u8], max_len: usize, ctx: DecodeCtx) -> Result<Message, WireError> {
    let Some((header, body)) = frame::split_message(msg, max_len)? else {
        return Err(WireError::header(
            error::header::BAD_LENGTH,
            Vec::new(),
            format!(
                "message of {} bytes is shorter than its header says",
                msg.len()
            ),
        ));
    };
    decode_body(header.kind, body, ctx)
}

/// Decode a body whose header was checked.
pub fn decode_body(kind: u8, body: &[u8], ctx: DecodeCtx) -> Result<Message, WireError> {
    Ok(match kind {
        msg_type::OPEN => Message::Open(Open::decode_body(body)?),
        msg_type::UPDATE => Message::Update(Box::new(update::decode_update(body, ctx)?)),
        msg_type::NOTIFICATION => Message::Notification(Notification {
            code: body[0],
            subcode: body[1],
            data: body[2..].to_vec(),
        }),
        msg_type::KEEPALIVE => Message::Keepalive,
        msg_type::ROUTE_REFRESH => Message::RouteRefresh(RouteRefresh {
            afi: u16::from_be_bytes([body[0], body[1]]),
            safi: body[3],
        }),
        other => {
            return Err(WireError::header(
                error::header::BAD_TYPE,
                vec![other],
                format!("message type {other} unknown"),
            ))
        }
    })
}

impl Message {
    /// Encode a message. UPDATEs built here are single messages (fixtures, small updates);
    /// bulk advertisement goes through `encode::Packer`.
    pub fn encode(&self, ctx: encode::EncodeCtx, out: &mut Vec<u8>) {
        match self {
            Message::Open(open) => {
                let start = frame::begin(out, msg_type::OPEN);
                open.encode_body(out);
                frame::finish(out, start);
            }
            Message::Update(update) => encode::encode_update(update, ctx, out),
            Message::Notification(n) => {
                let start = frame::begin(out, msg_type::NOTIFICATION);
                out.push(n.code);
                out.push(n.subcode);
                out.extend_from_slice(&n.data);
                frame::finish(out, start);
            }
            Message::Keepalive => {
                let start = frame::begin(out, msg_type::KEEPALIVE);
                frame::finish(out, start);
            }
            Message::RouteRefresh(rr) => {
                let start = frame::begin(out, msg_type::ROUTE_REFRESH);
                out.extend_from_slice(&rr.afi.to_be_bytes());
                out.push(0);
                out.push(rr.safi);
                frame::finish(out, start);
            }
        }
    }

    pub fn to_bytes(&self, ctx: encode::EncodeCtx) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        self.encode(ctx, &mut out);
        out
    }
}

//! Bundles in OpenFlow 1.3: the ONF extension (experimenter 0x4f4e4600, ONFT_BUNDLE_CONTROL
//! 2300 and ONFT_BUNDLE_ADD_MESSAGE 2301) with OpenFlow 1.4's bundle layout, which OVS
//! supports on 1.3 connections (it is what `ovs-ofctl -O OpenFlow13 --bundle` uses).
//!
//! A bundle is opened, filled with messages (each carried whole, with the add message's own
//! xid), and committed: with the ATOMIC flag the switch applies all of them or none.

use super::errmsg::ONF_VENDOR_ID;
use super::error::{DecodeError, EncodeError};
use super::wire::Reader;
use super::Message;

pub(crate) const ONFT_BUNDLE_CONTROL: u32 = 2300;
pub(crate) const ONFT_BUNDLE_ADD_MESSAGE: u32 = 2301;

/// Bundle flags.
pub mod bundle_flags {
    /// All messages are applied or none.
    pub const ATOMIC: u16 = 1;
    /// Messages are applied in the order they were added.
    pub const ORDERED: u16 = 2;
}

/// The bundle control operations and their replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleCtrlType {
    OpenRequest = 0,
    OpenReply = 1,
    CloseRequest = 2,
    CloseReply = 3,
    CommitRequest = 4,
    CommitReply = 5,
    DiscardRequest = 6,
    DiscardReply = 7,
}

impl BundleCtrlType {
    fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0 => Self::OpenRequest,
            1 => Self::OpenReply,
            2 => Self::CloseRequest,
            3 => Self::CloseReply,
            4 => Self::CommitRequest,
            5 => Self::CommitReply,
            6 => Self::DiscardRequest,
            7 => Self::DiscardReply,
            _ => return None,
        })
    }
}

/// ONFT_BUNDLE_CONTROL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleControl {
    pub bundle_id: u32,
    pub ctrl: BundleCtrlType,
    pub flags: u16,
}

/// ONFT_BUNDLE_ADD_MESSAGE: `message` is sent with the add message's xid (the switch requires
/// the two to be equal), so an error about it names that xid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: u16,
    pub message: Box<Message>,
}

fn put_experimenter(buf: &mut Vec<u8>, exp_type: u32) {
    buf.extend_from_slice(&ONF_VENDOR_ID.to_be_bytes());
    buf.extend_from_slice(&exp_type.to_be_bytes());
}

pub(crate) fn encode_control(buf: &mut Vec<u8>, c: &BundleControl) {
    put_experimenter(buf, ONFT_BUNDLE_CONTROL);
    buf.extend_from_slice(&c.bundle_id.to_be_bytes());
    buf.extend_from_slice(&(c.ctrl as u16).to_be_bytes());
    buf.extend_from_slice(&c.flags.to_be_bytes());
}

pub(crate) fn encode_add(buf: &mut Vec<u8>, a: &BundleAdd, xid: u32) -> Result<(), EncodeError> {
    put_experimenter(buf, ONFT_BUNDLE_ADD_MESSAGE);
    buf.extend_from_slice(&a.bundle_id.to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&a.flags.to_be_bytes());
    if matches!(
        *a.message,
        Message::BundleAdd(_) | Message::BundleControl(_)
    ) {
        return Err(EncodeError::Unencodable("a bundle message inside a bundle"));
    }
    buf.extend_from_slice(&super::encode(&a.message, xid)?);
    Ok(())
}

pub(crate) fn decode_control(r: &mut Reader<'_>) -> Result<BundleControl, DecodeError> {
    let bundle_id = r.u32()?;
    let t = r.u16()?;
    let ctrl = BundleCtrlType::from_u16(t)
        .ok_or_else(|| DecodeError::BadBundle(format!("unknown control type {t}")))?;
    let flags = r.u16()?;
    Ok(BundleControl {
        bundle_id,
        ctrl,
        flags,
    })
}

pub(crate) fn decode_add(r: &mut Reader<'_>, outer_xid: u32) -> Result<BundleAdd, DecodeError> {
    let bundle_id = r.u32()?;
    r.skip(2)?;
    let flags = r.u16()?;
    let inner = r.rest();
    let len = super::frame_len(inner)?
        .ok_or_else(|| DecodeError::BadBundle("inner message truncated".into()))?;
    let (header, message) = super::decode(&inner[..len])?;
    if header.xid != outer_xid {
        return Err(DecodeError::BadBundle(format!(
            "inner xid {:#x} differs from the add message's {outer_xid:#x}",
            header.xid
        )));
    }
    Ok(BundleAdd {
        bundle_id,
        flags,
        message: Box::new(message),
    })
}

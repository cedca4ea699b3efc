//! The session messages: HELLO (with the version bitmap), ECHO request/reply, FEATURES
//! request/reply, BARRIER request/reply.

use super::error::DecodeError;
use super::wire::{pad8, Reader};

const OFPHET_VERSIONBITMAP: u16 = 1;

/// HELLO: the versions the sender speaks, as a bitmap (bit n = wire version n), when it sent
/// a version-bitmap element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub versions: Option<u32>,
}

impl Hello {
    /// The HELLO we send: OpenFlow 1.3 only.
    pub fn of13() -> Self {
        Self {
            versions: Some(1 << super::OFP_VERSION),
        }
    }
}

/// FEATURES_REPLY: who the switch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
}

pub(crate) fn encode_hello(buf: &mut Vec<u8>, h: &Hello) {
    if let Some(bitmap) = h.versions {
        let start = buf.len();
        buf.extend_from_slice(&OFPHET_VERSIONBITMAP.to_be_bytes());
        buf.extend_from_slice(&8u16.to_be_bytes());
        buf.extend_from_slice(&bitmap.to_be_bytes());
        pad8(buf, start);
    }
}

/// Reads HELLO elements; unknown elements are skipped, as the spec requires.
pub(crate) fn decode_hello(r: &mut Reader<'_>) -> Result<Hello, DecodeError> {
    let mut versions = None;
    while r.remaining() >= 4 {
        let etype = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 4 {
            return Err(DecodeError::BadLength {
                what: "hello element",
                len,
                min: 4,
                max: 65535,
            });
        }
        let mut body = r.sub(len - 4, "hello element")?;
        // Elements are padded to 8 bytes; the padding is not in `len`, and may be missing at
        // the very end of the message.
        let pad = (8 - len % 8) % 8;
        r.skip(pad.min(r.remaining()))?;
        if etype == OFPHET_VERSIONBITMAP {
            // Only the first 32-bit word matters for versions 0..31.
            versions = Some(body.u32()?);
        }
    }
    Ok(Hello { versions })
}

pub(crate) fn encode_features(buf: &mut Vec<u8>, f: &Features) {
    buf.extend_from_slice(&f.datapath_id.to_be_bytes());
    buf.extend_from_slice(&f.n_buffers.to_be_bytes());
    buf.push(f.n_tables);
    buf.push(f.auxiliary_id);
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&f.capabilities.to_be_bytes());
    buf.extend_from_slice(&0u32.to_be_bytes());
}

pub(crate) fn decode_features(r: &mut Reader<'_>) -> Result<Features, DecodeError> {
    let datapath_id = r.u64()?;
    let n_buffers = r.u32()?;
    let n_tables = r.u8()?;
    let auxiliary_id = r.u8()?;
    r.skip(2)?;
    let capabilities = r.u32()?;
    let _reserved = r.u32()?;
    Ok(Features {
        datapath_id,
        n_buffers,
        n_tables,
        auxiliary_id,
        capabilities,
    })
}

//! Message framing: the 19-byte header is checked (marker, length bounds, type, per-type
//! minimum length) before a single body byte is read.

use super::error::{header, WireError};

pub const HEADER_LEN: usize = 19;
/// Largest message without RFC 8654 extended messages.
pub const MAX_LEN: usize = 4096;
/// Largest message once extended messages are negotiated.
pub const EXTENDED_MAX_LEN: usize = 65535;

/// Message type codes.
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// A checked header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    /// Whole message length, header included.
    pub len: usize,
}

/// Check a header. `max_len` is 4096, or 65535 once extended messages are negotiated
/// (OPEN and KEEPALIVE stay limited to 4096 by RFC 8654 §4).
pub fn check_header(bytes: &[u8; HEADER_LEN], max_len: usize) -> Result<Header, WireError> {
    if bytes[..16].iter().any(|&b| b != 0xff) {
        return Err(WireError::header(
            header::NOT_SYNCHRONIZED,
            Vec::new(),
            "header: marker is not all ones",
        ));
    }
    let len = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    let kind = bytes[18];
    let bad_len = |why: String| WireError::header(header::BAD_LENGTH, bytes[16..18].to_vec(), why);
    if len < HEADER_LEN {
        return Err(bad_len(format!("header: length {len} is below 19")));
    }
    let limit = match kind {
        msg_type::OPEN | msg_type::KEEPALIVE => MAX_LEN,
        _ => max_len,
    };
    if len > limit {
        return Err(bad_len(format!("header: length {len} exceeds {limit}")));
    }
    let ok = match kind {
        msg_type::OPEN => len >= 29,
        msg_type::UPDATE => len >= 23,
        msg_type::NOTIFICATION => len >= 21,
        msg_type::KEEPALIVE => len == 19,
        msg_type::ROUTE_REFRESH => len == 23,
        _ => {
            return Err(WireError::header(
                header::BAD_TYPE,
                vec![kind],
                format!("header: message type {kind} unknown"),
            ))
        }
    };
    if !ok {
        return Err(bad_len(format!(
            "header: length {len} invalid for message type {kind}"
        )));
    }
    Ok(Header { kind, len })
}

/// Split one complete message off the front of `buf`: `Ok(None)` when more bytes are needed.
pub fn split_message(buf: &[u8], max_len: usize) -> Result<Option<(Header, &[u8])>, WireError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = check_header(head, max_len)?;
    if buf.len() < header.len {
        return Ok(None);
    }
    Ok(Some((header, &buf[HEADER_LEN..header.len])))
}

/// Start a message: marker, placeholder length, type. Returns the offset for `finish`.
pub fn begin(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0, kind]);
    start
}

/// Write the length of the message started at `start`.
pub fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
}

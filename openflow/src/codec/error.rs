//! What can go wrong turning bytes into messages and messages into bytes.

use thiserror::Error;

/// Bytes that are not a message we understand. Never a panic: the connection logs these and
/// answers the request they belong to with the error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("{what} truncated: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("{what}: length field {len} is invalid (must be at least {min}, at most {max})")]
    BadLength {
        what: &'static str,
        len: usize,
        min: usize,
        max: usize,
    },
    #[error("OpenFlow version {0:#04x} where 0x04 (1.3) was expected")]
    BadVersion(u8),
    #[error("match type {0} is not OXM (1)")]
    BadMatchType(u16),
    #[error(
        "unsupported match field: class {class:#06x} field {field} (mask {has_mask}, {len} bytes)"
    )]
    UnsupportedField {
        class: u16,
        field: u8,
        has_mask: bool,
        len: u8,
    },
    #[error("match field {0} appears twice")]
    DuplicateField(&'static str),
    #[error("match field {0} is masked, which the flow model cannot express")]
    UnexpectedMask(&'static str),
    #[error("unsupported action type {0:#06x}")]
    UnsupportedAction(u16),
    #[error("unsupported experimenter action: vendor {vendor:#010x} subtype {subtype}")]
    UnsupportedNxAction { vendor: u32, subtype: u16 },
    #[error("unsupported form of {action}: {detail}")]
    UnsupportedActionForm {
        action: &'static str,
        detail: String,
    },
    #[error("instruction type {0} appears twice")]
    DuplicateInstruction(u16),
    #[error("unknown flow_mod command {0}")]
    BadCommand(u8),
    #[error("unsupported instruction type {0}")]
    UnsupportedInstruction(u16),
    #[error("unsupported multipart type {0}")]
    UnsupportedMultipart(u16),
    #[error("unsupported experimenter message: experimenter {experimenter:#010x} type {exp_type}")]
    UnsupportedExperimenter { experimenter: u32, exp_type: u32 },
    #[error("bundle message: {0}")]
    BadBundle(String),
}

/// A value the codec refuses to encode because the switch would refuse it (or because it does
/// not fit the wire format).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("message of {0} bytes exceeds OpenFlow's 65535-byte limit")]
    TooLong(usize),
    #[error("match field {field} needs {needs}")]
    MissingPrerequisite {
        field: &'static str,
        needs: &'static str,
    },
    #[error("register index {0} out of range (0..=7)")]
    BadRegister(u8),
    #[error("{field} is {bits} bits wide; bits {ofs}..{end} are out of range")]
    BadSubfield {
        field: String,
        bits: u16,
        ofs: u16,
        end: u32,
    },
    #[error("conjunction({id},{clause}/{n_clauses}): need 1 <= clause <= n_clauses and 2 <= n_clauses <= 64")]
    BadConjunction { id: u32, clause: u8, n_clauses: u8 },
    #[error("value {value:#x} does not fit field {field}")]
    ValueTooWide { field: String, value: u64 },
    #[error("{0} cannot be encoded")]
    Unencodable(&'static str),
}

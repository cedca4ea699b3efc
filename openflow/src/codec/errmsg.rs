//! ERROR messages: type and code, their OpenFlow 1.3 names (plus the Nicira and ONF extension
//! errors OVS sends as experimenter errors), and the request they refer to.

use std::fmt;

use super::error::DecodeError;
use super::wire::Reader;

/// `type` of an experimenter error.
const OFPET_EXPERIMENTER: u16 = 0xffff;
/// The ONF's experimenter id (bundles in OpenFlow 1.3).
pub const ONF_VENDOR_ID: u32 = 0x4f4e_4600;

/// An OFPT_ERROR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMsg {
    /// `OFPET_*`, or 0xffff for an experimenter error.
    pub err_type: u16,
    /// `OFP*C_*`, or the experimenter's `exp_type`.
    pub code: u16,
    /// The experimenter id of an experimenter error (Nicira 0x2320, ONF 0x4f4e4600).
    pub experimenter: Option<u32>,
    /// At least the first 64 bytes of the request that failed.
    pub data: Vec<u8>,
}

const TYPES: [&str; 14] = [
    "OFPET_HELLO_FAILED",
    "OFPET_BAD_REQUEST",
    "OFPET_BAD_ACTION",
    "OFPET_BAD_INSTRUCTION",
    "OFPET_BAD_MATCH",
    "OFPET_FLOW_MOD_FAILED",
    "OFPET_GROUP_MOD_FAILED",
    "OFPET_PORT_MOD_FAILED",
    "OFPET_TABLE_MOD_FAILED",
    "OFPET_QUEUE_OP_FAILED",
    "OFPET_SWITCH_CONFIG_FAILED",
    "OFPET_ROLE_REQUEST_FAILED",
    "OFPET_METER_MOD_FAILED",
    "OFPET_TABLE_FEATURES_FAILED",
];

const HELLO_FAILED: &[&str] = &["OFPHFC_INCOMPATIBLE", "OFPHFC_EPERM"];
const BAD_REQUEST: &[&str] = &[
    "OFPBRC_BAD_VERSION",
    "OFPBRC_BAD_TYPE",
    "OFPBRC_BAD_MULTIPART",
    "OFPBRC_BAD_EXPERIMENTER",
    "OFPBRC_BAD_EXP_TYPE",
    "OFPBRC_EPERM",
    "OFPBRC_BAD_LEN",
    "OFPBRC_BUFFER_EMPTY",
    "OFPBRC_BUFFER_UNKNOWN",
    "OFPBRC_BAD_TABLE_ID",
    "OFPBRC_IS_SLAVE",
    "OFPBRC_BAD_PORT",
    "OFPBRC_BAD_PACKET",
    "OFPBRC_MULTIPART_BUFFER_OVERFLOW",
];
const BAD_ACTION: &[&str] = &[
    "OFPBAC_BAD_TYPE",
    "OFPBAC_BAD_LEN",
    "OFPBAC_BAD_EXPERIMENTER",
    "OFPBAC_BAD_EXP_TYPE",
    "OFPBAC_BAD_OUT_PORT",
    "OFPBAC_BAD_ARGUMENT",
    "OFPBAC_EPERM",
    "OFPBAC_TOO_MANY",
    "OFPBAC_BAD_QUEUE",
    "OFPBAC_BAD_OUT_GROUP",
    "OFPBAC_MATCH_INCONSISTENT",
    "OFPBAC_UNSUPPORTED_ORDER",
    "OFPBAC_BAD_TAG",
    "OFPBAC_BAD_SET_TYPE",
    "OFPBAC_BAD_SET_LEN",
    "OFPBAC_BAD_SET_ARGUMENT",
];
const BAD_INSTRUCTION: &[&str] = &[
    "OFPBIC_UNKNOWN_INST",
    "OFPBIC_UNSUP_INST",
    "OFPBIC_BAD_TABLE_ID",
    "OFPBIC_UNSUP_METADATA",
    "OFPBIC_UNSUP_METADATA_MASK",
    "OFPBIC_BAD_EXPERIMENTER",
    "OFPBIC_BAD_EXP_TYPE",
    "OFPBIC_BAD_LEN",
    "OFPBIC_EPERM",
];
const BAD_MATCH: &[&str] = &[
    "OFPBMC_BAD_TYPE",
    "OFPBMC_BAD_LEN",
    "OFPBMC_BAD_TAG",
    "OFPBMC_BAD_DL_ADDR_MASK",
    "OFPBMC_BAD_NW_ADDR_MASK",
    "OFPBMC_BAD_WILDCARDS",
    "OFPBMC_BAD_FIELD",
    "OFPBMC_BAD_VALUE",
    "OFPBMC_BAD_MASK",
    "OFPBMC_BAD_PREREQ",
    "OFPBMC_DUP_FIELD",
    "OFPBMC_EPERM",
];
const FLOW_MOD_FAILED: &[&str] = &[
    "OFPFMFC_UNKNOWN",
    "OFPFMFC_TABLE_FULL",
    "OFPFMFC_BAD_TABLE_ID",
    "OFPFMFC_OVERLAP",
    "OFPFMFC_EPERM",
    "OFPFMFC_BAD_TIMEOUT",
    "OFPFMFC_BAD_COMMAND",
    "OFPFMFC_BAD_FLAGS",
];

/// Nicira errors in OpenFlow 1.2+ (experimenter 0x2320, by `exp_type`).
fn nicira_name(code: u16) -> Option<&'static str> {
    Some(match code {
        2 => "NXBRC_NXM_INVALID",
        3 => "NXBRC_NXM_BAD_TYPE",
        4 => "NXBRC_MUST_BE_ZERO",
        5 => "NXBRC_BAD_REASON",
        9 => "NXBRC_FM_BAD_EVENT",
        10 => "NXBRC_UNENCODABLE_ERROR",
        11 => "NXBAC_MUST_BE_ZERO",
        12 => "NXFMFC_HARDWARE",
        13 => "NXFMFC_BAD_TABLE_ID",
        15 => "NXBAC_BAD_CONJUNCTION",
        _ => return None,
    })
}

/// ONF extension errors in OpenFlow 1.3 (experimenter 0x4f4e4600): bundles and a few others.
fn onf_name(code: u16) -> Option<&'static str> {
    const BUNDLE: [&str; 16] = [
        "OFPBFC_UNKNOWN",
        "OFPBFC_EPERM",
        "OFPBFC_BAD_ID",
        "OFPBFC_BUNDLE_EXIST",
        "OFPBFC_BUNDLE_CLOSED",
        "OFPBFC_OUT_OF_BUNDLES",
        "OFPBFC_BAD_TYPE",
        "OFPBFC_BAD_FLAGS",
        "OFPBFC_MSG_BAD_LEN",
        "OFPBFC_MSG_BAD_XID",
        "OFPBFC_MSG_UNSUP",
        "OFPBFC_MSG_CONFLICT",
        "OFPBFC_MSG_TOO_MANY",
        "OFPBFC_MSG_FAILED",
        "OFPBFC_TIMEOUT",
        "OFPBFC_BUNDLE_IN_PROGRESS",
    ];
    match code {
        2300..=2315 => BUNDLE.get(usize::from(code - 2300)).copied(),
        2600 => Some("OFPBIC_DUP_INST"),
        4250 => Some("OFPBAC_BAD_SET_MASK"),
        _ => None,
    }
}

impl ErrorMsg {
    /// The name of the error type (`OFPET_BAD_ACTION`), if it is a standard one.
    pub fn type_name(&self) -> Option<&'static str> {
        match self.experimenter {
            Some(super::action::NX_VENDOR_ID) => Some("NX_EXPERIMENTER"),
            Some(ONF_VENDOR_ID) => Some("ONF_EXPERIMENTER"),
            Some(_) => None,
            None => TYPES.get(usize::from(self.err_type)).copied(),
        }
    }

    /// The name of the error (`OFPBAC_BAD_OUT_PORT`, `OFPBFC_MSG_FAILED`), if known.
    pub fn code_name(&self) -> Option<&'static str> {
        let table = match (self.experimenter, self.err_type) {
            (Some(super::action::NX_VENDOR_ID), _) => return nicira_name(self.code),
            (Some(ONF_VENDOR_ID), _) => return onf_name(self.code),
            (Some(_), _) => return None,
            (None, 0) => HELLO_FAILED,
            (None, 1) => BAD_REQUEST,
            (None, 2) => BAD_ACTION,
            (None, 3) => BAD_INSTRUCTION,
            (None, 4) => BAD_MATCH,
            (None, 5) => FLOW_MOD_FAILED,
            (None, _) => return None,
        };
        table.get(usize::from(self.code)).copied()
    }

    /// The (type, xid) of the request the error refers to, from the header in `data`.
    pub fn failed_request(&self) -> Option<(u8, u32)> {
        let d = self.data.get(..8)?;
        Some((d[1], u32::from_be_bytes([d[4], d[5], d[6], d[7]])))
    }

    /// For HELLO_FAILED: the switch's explanation, which OVS sends as text.
    pub fn text(&self) -> Option<String> {
        (self.experimenter.is_none() && self.err_type == 0)
            .then(|| String::from_utf8_lossy(&self.data).trim_end().to_owned())
    }
}

impl fmt::Display for ErrorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.type_name(), self.code_name()) {
            (_, Some(code)) => write!(f, "{code}")?,
            (Some(t), None) => write!(f, "{t} code {}", self.code)?,
            (None, None) => match self.experimenter {
                Some(e) => write!(f, "experimenter {e:#010x} error {}", self.code)?,
                None => write!(f, "error type {} code {}", self.err_type, self.code)?,
            },
        }
        write!(f, " ({}, {})", self.err_type, self.code)?;
        if let Some(t) = self.text().filter(|t| !t.is_empty()) {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

pub(crate) fn encode_error(buf: &mut Vec<u8>, e: &ErrorMsg) {
    match e.experimenter {
        Some(exp) => {
            buf.extend_from_slice(&OFPET_EXPERIMENTER.to_be_bytes());
            buf.extend_from_slice(&e.code.to_be_bytes());
            buf.extend_from_slice(&exp.to_be_bytes());
        }
        None => {
            buf.extend_from_slice(&e.err_type.to_be_bytes());
            buf.extend_from_slice(&e.code.to_be_bytes());
        }
    }
    buf.extend_from_slice(&e.data);
}

pub(crate) fn decode_error(r: &mut Reader<'_>) -> Result<ErrorMsg, DecodeError> {
    let err_type = r.u16()?;
    let code = r.u16()?;
    let experimenter = if err_type == OFPET_EXPERIMENTER {
        Some(r.u32()?)
    } else {
        None
    };
    Ok(ErrorMsg {
        err_type,
        code,
        experimenter,
        data: r.rest().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::test_util::hex;

    #[test]
    fn names() {
        // OFPBAC_BAD_OUT_PORT for a FLOW_MOD with xid 7.
        let b = hex("0002 0004 040e0050 00000007");
        let e = decode_error(&mut Reader::new(&b, "t")).unwrap();
        assert_eq!(e.code_name(), Some("OFPBAC_BAD_OUT_PORT"));
        assert_eq!(e.failed_request(), Some((14, 7)));
        assert_eq!(e.to_string(), "OFPBAC_BAD_OUT_PORT (2, 4)");
        // ONF bundle error in OpenFlow 1.3: experimenter type, exp_type 2313.
        let b = hex("ffff 0909 4f4e4600 04040018 00000009");
        let e = decode_error(&mut Reader::new(&b, "t")).unwrap();
        assert_eq!(e.code_name(), Some("OFPBFC_MSG_FAILED"));
        assert_eq!(e.failed_request(), Some((4, 9)));
        let mut out = Vec::new();
        encode_error(&mut out, &e);
        assert_eq!(out, b);
        // Unknown stays printable.
        let e = ErrorMsg {
            err_type: 99,
            code: 1,
            experimenter: None,
            data: vec![],
        };
        assert_eq!(e.to_string(), "error type 99 code 1 (99, 1)");
        assert_eq!(e.failed_request(), None);
    }

    #[test]
    fn truncated() {
        assert!(decode_error(&mut Reader::new(&[0, 1], "t")).is_err());
        assert!(decode_error(&mut Reader::new(&hex("ffff 0001 0000"), "t")).is_err());
    }
}

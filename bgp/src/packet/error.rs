//! Wire errors: every rejection of received bytes carries the NOTIFICATION code/subcode/data
//! RFC 4271 §6 asks for, plus a human reason naming the field.

/// NOTIFICATION error codes (RFC 4271 §4.5).
pub mod code {
    pub const HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Header error subcodes.
pub mod header {
    pub const NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_LENGTH: u8 = 2;
    pub const BAD_TYPE: u8 = 3;
}

/// OPEN error subcodes.
pub mod open {
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_ID: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
}

/// UPDATE error subcodes.
pub mod update {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const MISSING_WELL_KNOWN: u8 = 3;
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Cease subcodes (RFC 4486).
pub mod cease {
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMIN_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMIN_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const COLLISION_RESOLUTION: u8 = 7;
}

/// A received message that must end the session with a NOTIFICATION.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (NOTIFICATION {code}/{subcode})")]
pub struct WireError {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
    pub reason: String,
}

impl WireError {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>, reason: impl Into<String>) -> Self {
        WireError {
            code,
            subcode,
            data,
            reason: reason.into(),
        }
    }

    pub fn header(subcode: u8, data: Vec<u8>, reason: impl Into<String>) -> Self {
        Self::new(code::HEADER, subcode, data, reason)
    }

    pub fn open(subcode: u8, reason: impl Into<String>) -> Self {
        Self::new(code::OPEN, subcode, Vec::new(), reason)
    }

    pub fn update(subcode: u8, reason: impl Into<String>) -> Self {
        Self::new(code::UPDATE, subcode, Vec::new(), reason)
    }

    /// The NOTIFICATION we send for this error.
    pub fn notification(&self) -> super::Notification {
        super::Notification {
            code: self.code,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

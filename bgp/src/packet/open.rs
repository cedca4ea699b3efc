//! OPEN message and the capabilities we negotiate (RFC 5492).

use std::net::Ipv4Addr;

use super::error::{open, WireError};
use super::prefix::Afi;

/// `AS_TRANS` (RFC 6793): what a 4-byte ASN shows in 2-byte fields.
pub const AS_TRANS: u16 = 23456;

/// Graceful-restart capability contents (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restarting: bool,
    /// Seconds the sender needs to come back.
    pub restart_time: u16,
    /// Families whose forwarding state the sender kept (AFI, forwarding-state bit).
    pub families: Vec<(Afi, bool)>,
}

/// One capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// RFC 4760: (AFI, SAFI) as raw numbers, so unknown families can be echoed in logs.
    Multiprotocol {
        afi: u16,
        safi: u8,
    },
    RouteRefresh,
    ExtendedMessage,
    GracefulRestart(GracefulRestart),
    FourOctetAs(u32),
    /// Anything else, kept verbatim.
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

impl Capability {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Capability::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&[1, 4]);
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[0, *safi]);
            }
            Capability::RouteRefresh => out.extend_from_slice(&[2, 0]),
            Capability::ExtendedMessage => out.extend_from_slice(&[6, 0]),
            Capability::GracefulRestart(gr) => {
                out.push(64);
                out.push((2 + 4 * gr.families.len()) as u8);
                let flags: u16 = if gr.restarting { 0x8000 } else { 0 };
                out.extend_from_slice(&(flags | (gr.restart_time & 0x0fff)).to_be_bytes());
                for (afi, forwarding) in &gr.families {
                    out.extend_from_slice(&afi.code().to_be_bytes());
                    out.push(afi.safi());
                    out.push(if *forwarding { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => {
                out.extend_from_slice(&[65, 4]);
                out.extend_from_slice(&asn.to_be_bytes());
            }
            Capability::Unknown { code, value } => {
                out.push(*code);
                out.push(value.len() as u8);
                out.extend_from_slice(value);
            }
        }
    }

    fn decode(code: u8, value: &[u8]) -> Result<Capability, WireError> {
        let bad = |what: &str| {
            WireError::open(
                0,
                format!("capability {code} ({what}): bad length {}", value.len()),
            )
        };
        Ok(match code {
            1 => {
                if value.len() != 4 {
                    return Err(bad("multiprotocol"));
                }
                Capability::Multiprotocol {
                    afi: u16::from_be_bytes([value[0], value[1]]),
                    safi: value[3],
                }
            }
            2 => Capability::RouteRefresh,
            6 => Capability::ExtendedMessage,
            64 => {
                if value.len() < 2 || !(value.len() - 2).is_multiple_of(4) {
                    return Err(bad("graceful restart"));
                }
                let head = u16::from_be_bytes([value[0], value[1]]);
                let families = value[2..]
                    .chunks_exact(4)
                    .filter_map(|c| {
                        Afi::from_afi_safi(u16::from_be_bytes([c[0], c[1]]), c[2])
                            .map(|afi| (afi, c[3] & 0x80 != 0))
                    })
                    .collect();
                Capability::GracefulRestart(GracefulRestart {
                    restarting: head & 0x8000 != 0,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            65 => {
                let Ok(bytes) = <[u8; 4]>::try_from(value) else {
                    return Err(bad("4-octet AS"));
                };
                Capability::FourOctetAs(u32::from_be_bytes(bytes))
            }
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        })
    }
}

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The 2-byte "My Autonomous System" field (AS_TRANS for 4-byte ASNs).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// Build our OPEN: the 2-byte field gets AS_TRANS when the ASN needs 4 bytes.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Open {
        let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
        Open {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The sender's ASN: the 4-octet capability when present.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub fn has(&self, wanted: &Capability) -> bool {
        self.capabilities.iter().any(|c| c == wanted)
    }

    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr),
            _ => None,
        })
    }

    /// Families announced with the multiprotocol capability (IPv4/IPv6 unicast, L2VPN/EVPN);
    /// IPv4 unicast when none is.
    pub fn families(&self) -> Vec<Afi> {
        let mut out: Vec<Afi> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol { afi, safi } => Afi::from_afi_safi(*afi, *safi),
                _ => None,
            })
            .collect();
        if !self
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }))
        {
            out.push(Afi::Ipv4);
        }
        out
    }

    pub(super) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(4);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let mut caps = Vec::new();
        for cap in &self.capabilities {
            cap.encode(&mut caps);
        }
        if caps.is_empty() {
            out.push(0);
        } else {
            // One capabilities parameter holding all of them (fits in 255 bytes for what we send).
            out.push((caps.len() + 2) as u8);
            out.push(2);
            out.push(caps.len() as u8);
            out.extend_from_slice(&caps);
        }
    }

    /// Decode and validate an OPEN body (after the 19-byte header).
    pub(super) fn decode_body(body: &[u8]) -> Result<Open, WireError> {
        if body.len() < 10 {
            return Err(WireError::header(
                super::error::header::BAD_LENGTH,
                ((body.len() + 19) as u16).to_be_bytes().to_vec(),
                format!("OPEN: body of {} bytes is shorter than 10", body.len()),
            ));
        }
        if body[0] != 4 {
            return Err(WireError::new(
                super::error::code::OPEN,
                open::UNSUPPORTED_VERSION,
                vec![0, 4],
                format!("OPEN: version {} is not 4", body[0]),
            ));
        }
        let my_as = u16::from_be_bytes([body[1], body[2]]);
        let hold_time = u16::from_be_bytes([body[3], body[4]]);
        if hold_time == 1 || hold_time == 2 {
            return Err(WireError::open(
                open::UNACCEPTABLE_HOLD_TIME,
                format!("OPEN: hold time {hold_time} is neither 0 nor at least 3"),
            ));
        }
        let bgp_id = Ipv4Addr::new(body[5], body[6], body[7], body[8]);
        if bgp_id.is_unspecified() {
            return Err(WireError::open(
                open::BAD_BGP_ID,
                "OPEN: BGP identifier is 0.0.0.0",
            ));
        }
        let opt_len = usize::from(body[9]);
        let params = &body[10..];
        if params.len() != opt_len {
            return Err(WireError::open(
                0,
                format!(
                    "OPEN: optional parameters length {opt_len} but {} bytes follow",
                    params.len()
                ),
            ));
        }
        let mut capabilities = Vec::new();
        let mut rest = params;
        while !rest.is_empty() {
            let [kind, len, tail @ ..] = rest else {
                return Err(WireError::open(
                    0,
                    "OPEN: optional parameter header truncated",
                ));
            };
            let len = usize::from(*len);
            if tail.len() < len {
                return Err(WireError::open(
                    0,
                    format!("OPEN: optional parameter of {len} bytes truncated"),
                ));
            }
            if *kind != 2 {
                return Err(WireError::open(
                    open::UNSUPPORTED_OPTIONAL_PARAMETER,
                    format!("OPEN: optional parameter type {kind} is not capabilities (2)"),
                ));
            }
            let mut caps = &tail[..len];
            while !caps.is_empty() {
                let [code, clen, ctail @ ..] = caps else {
                    return Err(WireError::open(0, "OPEN: capability header truncated"));
                };
                let clen = usize::from(*clen);
                if ctail.len() < clen {
                    return Err(WireError::open(
                        0,
                        format!("OPEN: capability {code} of {clen} bytes truncated"),
                    ));
                }
                capabilities.push(Capability::decode(*code, &ctail[..clen])?);
                caps = &ctail[clen..];
            }
            rest = &tail[len..];
        }
        Ok(Open {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }
}

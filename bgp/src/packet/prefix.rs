//! Prefixes and their NLRI wire form (length byte + minimal address bytes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::error::{update, WireError};

/// A family we carry: IPv4 and IPv6 unicast, and L2VPN/EVPN (AFI 25, SAFI 70; RFC 7432).
/// This is what `PeerConfig.families` lists; in JSON the values are `"Ipv4"`, `"Ipv6"` and
/// `"L2vpnEvpn"`. The name stays `Afi` (it predates EVPN): each value is an AFI/SAFI pair.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Afi {
    Ipv4,
    Ipv6,
    L2vpnEvpn,
}

impl Afi {
    pub const fn code(self) -> u16 {
        match self {
            Afi::Ipv4 => 1,
            Afi::Ipv6 => 2,
            Afi::L2vpnEvpn => super::evpn::AFI_L2VPN,
        }
    }

    pub const fn safi(self) -> u8 {
        match self {
            Afi::Ipv4 | Afi::Ipv6 => SAFI_UNICAST,
            Afi::L2vpnEvpn => super::evpn::SAFI_EVPN,
        }
    }

    /// The unicast family of an AFI code (EVPN is never unicast: see `from_afi_safi`).
    pub fn from_code(code: u16) -> Option<Afi> {
        match code {
            1 => Some(Afi::Ipv4),
            2 => Some(Afi::Ipv6),
            _ => None,
        }
    }

    /// The family of an (AFI, SAFI) pair, if we carry it.
    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Afi> {
        match (afi, safi) {
            (1, SAFI_UNICAST) => Some(Afi::Ipv4),
            (2, SAFI_UNICAST) => Some(Afi::Ipv6),
            (super::evpn::AFI_L2VPN, super::evpn::SAFI_EVPN) => Some(Afi::L2vpnEvpn),
            _ => None,
        }
    }

    /// Longest prefix of the family (EVPN routes are not prefixes: 0, so any length fails).
    const fn max_len(self) -> u8 {
        match self {
            Afi::Ipv4 => 32,
            Afi::Ipv6 => 128,
            Afi::L2vpnEvpn => 0,
        }
    }
}

/// SAFI unicast, the only one we speak.
pub const SAFI_UNICAST: u8 = 1;

/// A unicast prefix, host bits cleared.
pub type Prefix = IpNet;

/// Address family of a prefix.
pub fn afi_of(prefix: &Prefix) -> Afi {
    match prefix {
        IpNet::V4(_) => Afi::Ipv4,
        IpNet::V6(_) => Afi::Ipv6,
    }
}

/// Bytes this prefix takes as NLRI.
pub fn nlri_len(prefix: &Prefix) -> usize {
    1 + usize::from(prefix.prefix_len()).div_ceil(8)
}

/// Append one NLRI entry.
pub fn encode_nlri(prefix: &Prefix, out: &mut Vec<u8>) {
    let len = prefix.prefix_len();
    let bytes = usize::from(len).div_ceil(8);
    out.push(len);
    match prefix {
        IpNet::V4(net) => out.extend_from_slice(&net.addr().octets()[..bytes]),
        IpNet::V6(net) => out.extend_from_slice(&net.addr().octets()[..bytes]),
    }
}

/// Decode a run of NLRI of one family. `what` names the field for the error.
/// Base (non add-path) encoding only: we never guess add-path.
pub fn decode_nlri(
    mut buf: &[u8],
    afi: Afi,
    what: &str,
    out: &mut Vec<Prefix>,
) -> Result<(), WireError> {
    if afi == Afi::L2vpnEvpn && !buf.is_empty() {
        // EVPN NLRI are routes, not prefixes: `evpn::decode_routes` reads them.
        return Err(WireError::update(
            update::INVALID_NETWORK_FIELD,
            format!("{what}: EVPN routes are not prefixes"),
        ));
    }
    while let Some((&len, rest)) = buf.split_first() {
        if len > afi.max_len() {
            return Err(WireError::update(
                update::INVALID_NETWORK_FIELD,
                format!("{what}: prefix length {len} exceeds {}", afi.max_len()),
            ));
        }
        let bytes = usize::from(len).div_ceil(8);
        if rest.len() < bytes {
            return Err(WireError::update(
                update::INVALID_NETWORK_FIELD,
                format!(
                    "{what}: prefix of length {len} truncated ({} of {bytes} bytes)",
                    rest.len()
                ),
            ));
        }
        let prefix = match afi {
            Afi::Ipv4 => {
                let mut octets = [0u8; 4];
                octets[..bytes].copy_from_slice(&rest[..bytes]);
                // Lengths are checked above, so construction cannot fail.
                Ipv4Net::new(Ipv4Addr::from(octets), len).map(|n| IpNet::V4(n.trunc()))
            }
            Afi::Ipv6 | Afi::L2vpnEvpn => {
                // EVPN never gets here: refused before the loop.
                let mut octets = [0u8; 16];
                octets[..bytes].copy_from_slice(&rest[..bytes]);
                Ipv6Net::new(Ipv6Addr::from(octets), len).map(|n| IpNet::V6(n.trunc()))
            }
        }
        .map_err(|_| {
            WireError::update(
                update::INVALID_NETWORK_FIELD,
                format!("{what}: bad prefix length {len}"),
            )
        })?;
        out.push(prefix);
        buf = &rest[bytes..];
    }
    Ok(())
}

/// Address of a next hop as it appears in attributes.
pub fn ip_octets(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

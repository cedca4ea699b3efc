//! The PMSI tunnel attribute (RFC 6514 §5, attribute 22) as EVPN uses it (RFC 7432 §11.1,
//! RFC 8365 §5.1.3): how a VTEP wants broadcast, unknown unicast and multicast traffic for an
//! Ethernet tag. With ingress replication (tunnel type 6) the tunnel id is the VTEP's address
//! and, with VXLAN, the label field is the VNI.
//!
//! Error handling: RFC 7606 has no section for this attribute, so its §2 rule applies: an
//! attribute that decides how traffic is forwarded and is malformed makes the route
//! treat-as-withdraw (a route kept without it would silently lose its flooding). Malformed
//! is: under 5 bytes, or an ingress-replication tunnel id that is not an IPv4 or IPv6
//! address. Other tunnel types are kept opaque.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Tunnel type: ingress replication.
pub const INGRESS_REPLICATION: u8 = 6;

/// The tunnel identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TunnelId {
    /// Ingress replication: the endpoint to replicate to.
    Ip(IpAddr),
    /// Other tunnel types, verbatim.
    Other(Vec<u8>),
}

/// A PMSI tunnel attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PmsiTunnel {
    pub flags: u8,
    pub tunnel_type: u8,
    /// The raw 24-bit label field (the VNI with VXLAN).
    pub label: u32,
    pub tunnel_id: TunnelId,
}

impl PmsiTunnel {
    /// Ingress replication to `endpoint` for `vni` (what an EVPN VTEP sends with its type 3).
    pub fn ingress_replication(vni: u32, endpoint: IpAddr) -> PmsiTunnel {
        PmsiTunnel {
            flags: 0,
            tunnel_type: INGRESS_REPLICATION,
            label: vni & 0x00ff_ffff,
            tunnel_id: TunnelId::Ip(endpoint),
        }
    }

    /// Decode the attribute's value; an error means treat-as-withdraw (see the module comment).
    pub fn decode(v: &[u8]) -> Result<PmsiTunnel, String> {
        let [flags, tunnel_type, l0, l1, l2, id @ ..] = v else {
            return Err(format!("PMSI_TUNNEL: length {} is under 5", v.len()));
        };
        let tunnel_id = if *tunnel_type == INGRESS_REPLICATION {
            match id.len() {
                4 => TunnelId::Ip(IpAddr::V4(Ipv4Addr::new(id[0], id[1], id[2], id[3]))),
                16 => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(id);
                    TunnelId::Ip(IpAddr::V6(Ipv6Addr::from(o)))
                }
                n => {
                    return Err(format!(
                        "PMSI_TUNNEL: ingress replication tunnel id of {n} bytes is not an address"
                    ))
                }
            }
        } else {
            TunnelId::Other(id.to_vec())
        };
        Ok(PmsiTunnel {
            flags: *flags,
            tunnel_type: *tunnel_type,
            label: u32::from_be_bytes([0, *l0, *l1, *l2]),
            tunnel_id,
        })
    }

    /// The attribute's value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags, self.tunnel_type];
        out.extend_from_slice(&(self.label & 0x00ff_ffff).to_be_bytes()[1..]);
        match &self.tunnel_id {
            TunnelId::Ip(IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
            TunnelId::Ip(IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
            // Bounded so the whole value fits an extended-length attribute.
            TunnelId::Other(raw) => out.extend_from_slice(&raw[..raw.len().min(65_000)]),
        }
        out
    }
}

//! Speaker and peer configuration (serde, so the daemon reads it from JSON).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::packet::Afi;

fn default_hold_time() -> u16 {
    90
}
fn default_connect_retry() -> u32 {
    5
}
fn default_port() -> u16 {
    179
}
fn default_max_paths() -> usize {
    8
}
fn default_families() -> Vec<Afi> {
    vec![Afi::Ipv4, Afi::Ipv6]
}

/// One configured neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub address: IpAddr,
    #[serde(default = "default_port")]
    pub port: u16,
    /// None accepts any AS (dynamic neighbours).
    #[serde(default)]
    pub peer_as: Option<u32>,
    /// Never connect, only accept.
    #[serde(default)]
    pub passive: bool,
    /// Route-reflector client (RFC 4456).
    #[serde(default)]
    pub rr_client: bool,
    #[serde(default)]
    pub next_hop_self: bool,
    /// Cease the session when the peer sends more prefixes than this.
    #[serde(default)]
    pub max_prefix: Option<u64>,
    #[serde(default = "default_families")]
    pub families: Vec<Afi>,
    /// Source address for the connection and our next hop; the socket's own when unset.
    #[serde(default)]
    pub local_address: Option<IpAddr>,
    /// IPv6 next hop to send on an IPv4 session.
    #[serde(default)]
    pub local_v6_next_hop: Option<Ipv6Addr>,
    /// GTSM (RFC 5082): the peer is at most this many hops away.
    #[serde(default)]
    pub ttl_security: Option<u8>,
    /// TCP MD5 signature key (RFC 2385).
    #[serde(default)]
    pub md5_password: Option<String>,
}

impl PeerConfig {
    pub fn new(address: IpAddr, peer_as: Option<u32>) -> PeerConfig {
        PeerConfig {
            address,
            port: default_port(),
            peer_as,
            passive: false,
            rr_client: false,
            next_hop_self: false,
            max_prefix: None,
            families: default_families(),
            local_address: None,
            local_v6_next_hop: None,
            ttl_security: None,
            md5_password: None,
        }
    }
}

/// Accept sessions from any address in `prefix` (a reflector accepting its agents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicNeighbors {
    pub prefix: IpNet,
    #[serde(default)]
    pub peer_as: Option<u32>,
    #[serde(default)]
    pub rr_client: bool,
    #[serde(default)]
    pub max_prefix: Option<u64>,
    #[serde(default = "default_families")]
    pub families: Vec<Afi>,
}

/// The whole speaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Where to accept connections; none for an active-only speaker.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    #[serde(default = "default_hold_time")]
    pub hold_time: u16,
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u32,
    /// Reflect routes between iBGP peers with this cluster id.
    #[serde(default)]
    pub cluster_id: Option<Ipv4Addr>,
    #[serde(default = "default_max_paths")]
    pub max_paths: usize,
    /// Offer graceful restart with this restart time (seconds).
    #[serde(default)]
    pub graceful_restart: Option<u16>,
    /// We are coming back from a restart (R and F bits set in our OPEN).
    #[serde(default)]
    pub restarting: bool,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    #[serde(default)]
    pub dynamic_neighbors: Vec<DynamicNeighbors>,
}

impl SpeakerConfig {
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> SpeakerConfig {
        SpeakerConfig {
            local_as,
            router_id,
            listen: None,
            hold_time: default_hold_time(),
            connect_retry: default_connect_retry(),
            cluster_id: None,
            max_paths: default_max_paths(),
            graceful_restart: None,
            restarting: false,
            peers: Vec::new(),
            dynamic_neighbors: Vec::new(),
        }
    }

    /// Check what serde cannot: every problem names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_as == 0 {
            return Err(ConfigError::Invalid("local_as", "AS 0 is reserved".into()));
        }
        if self.router_id.is_unspecified() {
            return Err(ConfigError::Invalid(
                "router_id",
                "0.0.0.0 is not a valid BGP identifier".into(),
            ));
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(ConfigError::Invalid(
                "hold_time",
                "must be 0 or at least 3 seconds".into(),
            ));
        }
        if self.max_paths == 0 {
            return Err(ConfigError::Invalid(
                "max_paths",
                "must be at least 1".into(),
            ));
        }
        for (i, p) in self.peers.iter().enumerate() {
            if self.peers[..i].iter().any(|q| q.address == p.address) {
                return Err(ConfigError::Invalid(
                    "peers.address",
                    format!("{} appears twice", p.address),
                ));
            }
            if p.families.is_empty() {
                return Err(ConfigError::Invalid(
                    "peers.families",
                    format!("peer {} has no family", p.address),
                ));
            }
            if p.md5_password.as_ref().is_some_and(|k| k.len() > 80) {
                return Err(ConfigError::Invalid(
                    "peers.md5_password",
                    "longer than 80 bytes".into(),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config field {0}: {1}")]
    Invalid(&'static str, String),
}

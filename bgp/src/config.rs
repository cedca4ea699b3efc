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
fn default_true() -> bool {
    true
}
fn default_max_dynamic_peers() -> usize {
    4096
}

/// Longest TCP MD5 key Linux takes (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// One configured neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The neighbour's address.
    pub address: IpAddr,
    /// The neighbour's BGP port.
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
    /// Put our own next hop on routes sent to this (iBGP) peer.
    #[serde(default)]
    pub next_hop_self: bool,
    /// Cease the session when the peer sends more prefixes than this.
    #[serde(default)]
    pub max_prefix: Option<u64>,
    /// Families offered to this peer.
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
    /// Our AS on this session instead of the speaker's `local_as`: sent in our OPEN (My AS and
    /// the 4-byte AS capability), used to tell iBGP from eBGP for this peer and prepended on
    /// export to it. An agent uses its own AS towards its ToR and the fabric AS towards the
    /// reflectors.
    #[serde(default)]
    pub local_as: Option<u32>,
    /// The next hop we send on this session for routes we originate (and with
    /// `next_hop_self`), instead of the session's local address; used for its family only
    /// (the other family keeps the usual rule). An agent reaches the reflectors over a
    /// management network but wants its /32s to point at its fabric address.
    #[serde(default)]
    pub next_hop: Option<IpAddr>,
    /// LOCAL_PREF set on every route imported from this peer, replacing the received one
    /// (makes a reflected iBGP path lose against the ToR's eBGP path).
    #[serde(default)]
    pub import_local_pref: Option<u32>,
    /// On an eBGP session, refuse (treat as withdraw) an UPDATE whose AS_PATH is empty or does
    /// not start with the peer's AS, as FRR does by default. Ignored on iBGP.
    #[serde(default = "default_true")]
    pub enforce_first_as: bool,
    /// Standard communities that keep a route from this peer: a route carrying any of them
    /// is not exported to it, and one it was sent that now carries one is withdrawn from it.
    /// An agent marks its routes with internal communities so that its ToRs and its
    /// reflectors get different sets (see `rib::adj_out`).
    #[serde(default)]
    pub export_deny_communities: Vec<u32>,
    /// Standard communities removed from every route exported to this peer (internal marks
    /// the peer must not see).
    #[serde(default)]
    pub export_strip_communities: Vec<u32>,
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
            local_as: None,
            next_hop: None,
            import_local_pref: None,
            enforce_first_as: true,
            export_deny_communities: Vec::new(),
            export_strip_communities: Vec::new(),
        }
    }
}

/// Accept sessions from any address in `prefix` (a reflector accepting its agents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicNeighbors {
    /// Connections from any address in this prefix are accepted as sessions.
    pub prefix: IpNet,
    /// The AS the neighbours must have; None accepts any.
    #[serde(default)]
    pub peer_as: Option<u32>,
    /// The neighbours are route-reflector clients (RFC 4456).
    #[serde(default)]
    pub rr_client: bool,
    /// Cease a neighbour's session when it sends more prefixes than this.
    #[serde(default)]
    pub max_prefix: Option<u64>,
    /// Families offered to the neighbours.
    #[serde(default = "default_families")]
    pub families: Vec<Afi>,
    /// TCP MD5 key (RFC 2385) for the whole prefix, installed on the listener (Linux
    /// `TCP_MD5SIG_EXT` with a prefix length): a connection without it never reaches us.
    #[serde(default)]
    pub md5_password: Option<String>,
}

/// The whole speaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerConfig {
    /// Our AS (each peer may override it with its own `local_as`).
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Where to accept connections; none for an active-only speaker.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Hold time we offer (seconds; 0 or at least 3).
    #[serde(default = "default_hold_time")]
    pub hold_time: u16,
    /// Seconds between connection attempts.
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u32,
    /// Reflect routes between iBGP peers with this cluster id.
    #[serde(default)]
    pub cluster_id: Option<Ipv4Addr>,
    /// Most equal-cost paths handed to consumers per prefix.
    #[serde(default = "default_max_paths")]
    pub max_paths: usize,
    /// Offer graceful restart with this restart time (seconds).
    #[serde(default)]
    pub graceful_restart: Option<u16>,
    /// We are coming back from a restart (R and F bits set in our OPEN).
    #[serde(default)]
    pub restarting: bool,
    /// Configured neighbours.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Prefixes whose addresses may open sessions without being configured.
    #[serde(default)]
    pub dynamic_neighbors: Vec<DynamicNeighbors>,
    /// Export only the routes announced through `Speaker::announce`: a host is never transit
    /// (what it learns from one ToR goes neither to the other ToR nor to the reflectors).
    #[serde(default)]
    pub export_local_only: bool,
    /// Most dynamic-neighbour sessions at once; further connections are refused.
    #[serde(default = "default_max_dynamic_peers")]
    pub max_dynamic_peers: usize,
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
            export_local_only: false,
            max_dynamic_peers: default_max_dynamic_peers(),
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
            if p.md5_password
                .as_ref()
                .is_some_and(|k| k.len() > MD5_MAX_KEY_LEN)
            {
                return Err(ConfigError::Invalid(
                    "peers.md5_password",
                    format!("longer than {MD5_MAX_KEY_LEN} bytes"),
                ));
            }
            if p.peer_as == Some(0) {
                return Err(ConfigError::Invalid(
                    "peers.peer_as",
                    format!("peer {}: AS 0 is reserved", p.address),
                ));
            }
            if p.local_as == Some(0) {
                return Err(ConfigError::Invalid(
                    "peers.local_as",
                    format!("peer {}: AS 0 is reserved", p.address),
                ));
            }
            if let Some(nh) = p.next_hop {
                if nh.is_unspecified() || nh.is_multicast() {
                    return Err(ConfigError::Invalid(
                        "peers.next_hop",
                        format!("peer {}: {nh} is not a usable unicast next hop", p.address),
                    ));
                }
            }
        }
        for d in &self.dynamic_neighbors {
            if d.peer_as == Some(0) {
                return Err(ConfigError::Invalid(
                    "dynamic_neighbors.peer_as",
                    format!("prefix {}: AS 0 is reserved", d.prefix),
                ));
            }
            if d.families.is_empty() {
                return Err(ConfigError::Invalid(
                    "dynamic_neighbors.families",
                    format!("prefix {} has no family", d.prefix),
                ));
            }
            match &d.md5_password {
                Some(k) if k.len() > MD5_MAX_KEY_LEN => {
                    return Err(ConfigError::Invalid(
                        "dynamic_neighbors.md5_password",
                        format!("longer than {MD5_MAX_KEY_LEN} bytes"),
                    ));
                }
                Some(k) if k.is_empty() => {
                    return Err(ConfigError::Invalid(
                        "dynamic_neighbors.md5_password",
                        "empty (leave it unset for no key)".into(),
                    ));
                }
                Some(_) if self.listen.is_none() => {
                    return Err(ConfigError::Invalid(
                        "dynamic_neighbors.md5_password",
                        "set without a listen address".into(),
                    ));
                }
                _ => {}
            }
        }
        if self.max_dynamic_peers == 0 && !self.dynamic_neighbors.is_empty() {
            return Err(ConfigError::Invalid(
                "max_dynamic_peers",
                "0 would refuse every dynamic neighbour".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config field {0}: {1}")]
    Invalid(&'static str, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration written before the per-session options and the dynamic-neighbour
    /// limits still parses, with their defaults.
    #[test]
    fn older_json_parses_with_defaults() {
        let cfg: SpeakerConfig = serde_json::from_str(
            r#"{"local_as": 65000, "router_id": "10.0.0.1",
                "peers": [{"address": "10.0.0.2", "peer_as": 65001}],
                "dynamic_neighbors": [{"prefix": "10.1.0.0/16", "rr_client": true}]}"#,
        )
        .unwrap();
        assert!(!cfg.export_local_only);
        assert_eq!(cfg.max_dynamic_peers, 4096);
        let p = &cfg.peers[0];
        assert_eq!(
            (
                p.local_as,
                p.next_hop,
                p.import_local_pref,
                p.enforce_first_as
            ),
            (None, None, None, true)
        );
        assert_eq!(cfg.dynamic_neighbors[0].md5_password, None);
        assert!(p.export_deny_communities.is_empty() && p.export_strip_communities.is_empty());
        cfg.validate().unwrap();
        assert_eq!(cfg.peers[0], {
            let mut p = PeerConfig::new("10.0.0.2".parse().unwrap(), Some(65001));
            p.port = 179;
            p
        });
    }

    fn field_of(cfg: &SpeakerConfig) -> &'static str {
        match cfg.validate() {
            Err(ConfigError::Invalid(field, _)) => field,
            Ok(()) => "valid",
        }
    }

    #[test]
    fn validation_names_the_field() {
        let base = || {
            let mut c = SpeakerConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1));
            c.listen = Some("127.0.0.1:0".parse().unwrap());
            c.peers
                .push(PeerConfig::new("10.0.0.2".parse().unwrap(), Some(65001)));
            c.dynamic_neighbors.push(DynamicNeighbors {
                prefix: "10.1.0.0/16".parse().unwrap(),
                peer_as: None,
                rr_client: true,
                max_prefix: None,
                families: default_families(),
                md5_password: Some("k".into()),
            });
            c
        };
        assert_eq!(field_of(&base()), "valid");
        let mut c = base();
        c.peers[0].local_as = Some(0);
        assert_eq!(field_of(&c), "peers.local_as");
        let mut c = base();
        c.peers[0].peer_as = Some(0);
        assert_eq!(field_of(&c), "peers.peer_as");
        let mut c = base();
        c.peers[0].next_hop = Some("0.0.0.0".parse().unwrap());
        assert_eq!(field_of(&c), "peers.next_hop");
        let mut c = base();
        c.dynamic_neighbors[0].md5_password = Some("x".repeat(81));
        assert_eq!(field_of(&c), "dynamic_neighbors.md5_password");
        let mut c = base();
        c.dynamic_neighbors[0].md5_password = Some(String::new());
        assert_eq!(field_of(&c), "dynamic_neighbors.md5_password");
        let mut c = base();
        c.listen = None;
        assert_eq!(field_of(&c), "dynamic_neighbors.md5_password");
        let mut c = base();
        c.dynamic_neighbors[0].peer_as = Some(0);
        assert_eq!(field_of(&c), "dynamic_neighbors.peer_as");
        let mut c = base();
        c.max_dynamic_peers = 0;
        assert_eq!(field_of(&c), "max_dynamic_peers");
    }
}

//! The speaker's peer set: the ToR neighbours of the host's `Bgp` object plus one iBGP session
//! to every master's route reflector, and the peers to add and remove to go from the running
//! set to a new one without restarting the speaker. Pure functions; the route actor applies
//! them.
//!
//! # Mixed fabrics: ToRs and reflectors together
//! A host may peer with its ToRs (eBGP, our own AS) and with the reflectors (iBGP, the fabric
//! AS) at once. Three rules keep that loop-free and free of duplicate paths:
//! - **The ToR path is preferred.** Routes imported from a reflector get LOCAL_PREF
//!   [`REFLECTED_LOCAL_PREF`] (50) when the host also has ToRs, against the default 100 of the
//!   ToR's eBGP path; LOCAL_PREF is compared first, so the reflected path is only a fallback
//!   (without it the reflected path would win on its shorter, empty AS_PATH). A host without
//!   ToRs keeps the reflected paths at their own preference.
//! - **A host exports only its own routes** (`export_local_only`): nothing learned from a ToR
//!   goes to a reflector or to the other ToR, and nothing reflected goes to a ToR. So a ToR
//!   never hears a path through a host (no transit, no loop through the hosts), and the
//!   reflectors hear each /32 only from the host that owns it (no duplicate path at a ToR or a
//!   reflector).
//! - **Our /32s point at our fabric address.** The reflector sessions carry
//!   `next_hop = router_ip`, not the address the host reaches the master from (the session's
//!   source, which the master registered), and the reflectors pass the next hop on unchanged:
//!   other hosts route to our fabric address. On one L2 segment that address is directly
//!   connected; a next hop that is not is skipped by the kernel sync (see
//!   [`crate::next_hops`]).
//! - **Blocks to the reflectors, /32s to the ToRs.** The reflectors get the host's address
//!   blocks and the container /32s outside them; the ToRs every container /32 and no block
//!   ([`crate::announce_blocks`]). A reflected block (LOCAL_PREF 50 with ToRs) is a fallback
//!   like a reflected /32, and never wins over a /32 by longest match.

use crate::announce_blocks::COVERED_COMMUNITY;
use crate::bgp_settings::BgpSettings;
use actix::Message;
use fabric_bgp::packet::Afi;
use fabric_bgp::PeerConfig;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// LOCAL_PREF of reflected routes on a host that also has ToRs: below the default 100 of the
/// ToR's path, so the reflected one is a fallback.
pub const REFLECTED_LOCAL_PREF: u32 = 50;
// The whole point: below the preference of the ToR's path.
const _: () = assert!(REFLECTED_LOCAL_PREF < fabric_bgp::rib::decision::DEFAULT_LOCAL_PREF);

/// The control plane's route reflectors, from the heartbeat answers: the fabric AS of the iBGP
/// sessions and where each reflector listens. No fabric AS (an older master answers `{}`) or no
/// address: no reflector sessions.
#[derive(Message, Debug, Clone, Default, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct Reflectors {
    pub fabric_as: Option<u32>,
    pub addrs: Vec<SocketAddr>,
}

/// The iBGP session to the reflector at `addr`, in the fabric AS, announcing our /32s with our
/// fabric address as next hop. Its source address is left to the kernel: the route towards the
/// master, the address the master registered this agent from and admits sessions from.
pub fn reflector_peer(
    settings: &BgpSettings,
    fabric_as: u32,
    addr: SocketAddr,
    has_tors: bool,
) -> PeerConfig {
    let mut peer = PeerConfig::new(addr.ip(), Some(fabric_as));
    peer.port = addr.port();
    peer.local_as = Some(fabric_as);
    peer.next_hop = Some(settings.router_ip.into());
    // The route table and our announcements are IPv4; IPv6 joins once hosts have an IPv6
    // fabric address to put as its next hop.
    peer.families = vec![Afi::Ipv4];
    peer.import_local_pref = has_tors.then_some(REFLECTED_LOCAL_PREF);
    // The host's address blocks and the /32s outside them, not the /32s a block covers (see
    // crate::announce_blocks). The block mark goes on: receiving agents install a block
    // (a non-/32) only when it carries it.
    peer.export_deny_communities = vec![COVERED_COMMUNITY];
    peer
}

/// Every peer the speaker should have, by address: the ToRs, then the reflectors (none
/// without a fabric AS). A reflector at a ToR's address is left out: the ToR's session wins.
pub fn desired_peers(
    settings: &BgpSettings,
    reflectors: &Reflectors,
) -> BTreeMap<IpAddr, PeerConfig> {
    let mut peers: BTreeMap<IpAddr, PeerConfig> = settings
        .neighbors
        .iter()
        .map(|n| (IpAddr::V4(*n), settings.peer_config(*n)))
        .collect();
    let Some(fabric_as) = reflectors.fabric_as else {
        return peers;
    };
    let has_tors = !settings.neighbors.is_empty();
    for addr in &reflectors.addrs {
        if peers.contains_key(&addr.ip()) {
            tracing::warn!(reflector = %addr, "a reflector at a ToR's address: keeping the ToR session");
            continue;
        }
        // Two ports at one address are one peer (the speaker keys peers by address): the
        // first listed wins.
        peers
            .entry(addr.ip())
            .or_insert_with(|| reflector_peer(settings, fabric_as, *addr, has_tors));
    }
    peers
}

/// Peers to remove, then to add, to turn `current` into `desired`; a peer whose configuration
/// changed (a new AS, port or preference) is removed and added back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerChanges {
    pub remove: Vec<IpAddr>,
    pub add: Vec<PeerConfig>,
}

impl PeerChanges {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    /// The addresses of the peers added.
    pub fn added(&self) -> Vec<IpAddr> {
        self.add.iter().map(|p| p.address).collect()
    }
}

pub fn peer_changes(
    current: &BTreeMap<IpAddr, PeerConfig>,
    desired: &BTreeMap<IpAddr, PeerConfig>,
) -> PeerChanges {
    let remove = current
        .iter()
        .filter(|(addr, config)| desired.get(addr) != Some(config))
        .map(|(addr, _)| *addr)
        .collect();
    let add = desired
        .iter()
        .filter(|(addr, config)| current.get(addr) != Some(config))
        .map(|(_, config)| config.clone())
        .collect();
    PeerChanges { remove, add }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_model::objects::Bgp;
    use std::net::Ipv4Addr;

    fn settings(neighbors: &str) -> BgpSettings {
        let bgp = Bgp {
            hostname: "host1".into(),
            routerip: "10.0.0.21/24".into(),
            as_number: "65021".into(),
            neighbor_as: if neighbors.is_empty() {
                String::new()
            } else {
                "65101".into()
            },
            neighbor: neighbors.into(),
            ..Bgp::default()
        };
        BgpSettings::from_model(&bgp).unwrap()
    }

    fn reflectors(addrs: &[&str]) -> Reflectors {
        Reflectors {
            fabric_as: Some(65000),
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_reflector_session_is_ibgp_in_the_fabric_as_with_our_fabric_next_hop() {
        let s = settings("");
        let peers = desired_peers(&s, &reflectors(&["172.20.20.10:179", "172.20.20.11:1179"]));
        assert_eq!(peers.len(), 2);
        let first = &peers[&ip("172.20.20.10")];
        assert_eq!(first.peer_as, Some(65000));
        assert_eq!(first.local_as, Some(65000), "the fabric AS, not our 65021");
        assert_eq!(
            first.next_hop,
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 21)))
        );
        assert_eq!(
            first.local_address, None,
            "sourced like the agent's requests"
        );
        assert_eq!(first.families, vec![Afi::Ipv4]);
        assert_eq!(first.import_local_pref, None, "no ToR to prefer");
        assert_eq!(first.port, 179);
        assert_eq!(
            first.export_deny_communities,
            [COVERED_COMMUNITY],
            "blocks and uncovered /32s only"
        );
        assert!(
            first.export_strip_communities.is_empty(),
            "the block mark goes on"
        );
        assert_eq!(peers[&ip("172.20.20.11")].port, 1179);
        // The speaker still runs in our own AS (towards ToRs, had we any).
        assert_eq!(s.speaker_config().local_as, 65021);
    }

    #[test]
    fn with_tors_the_reflected_path_is_a_fallback() {
        let s = settings("10.0.0.1");
        let peers = desired_peers(&s, &reflectors(&["172.20.20.10:179"]));
        let tor = &peers[&ip("10.0.0.1")];
        assert_eq!(tor.peer_as, Some(65101));
        assert_eq!(tor.local_as, None);
        assert_eq!(tor.import_local_pref, None, "LOCAL_PREF 100 by default");
        let reflector = &peers[&ip("172.20.20.10")];
        assert_eq!(reflector.import_local_pref, Some(REFLECTED_LOCAL_PREF));
    }

    #[test]
    fn no_fabric_as_or_no_reflector_means_the_tors_only() {
        let s = settings("10.0.0.1");
        let older_master = Reflectors::default();
        assert_eq!(
            desired_peers(&s, &older_master).keys().collect::<Vec<_>>(),
            [&ip("10.0.0.1")]
        );
        let no_as = Reflectors {
            fabric_as: None,
            ..reflectors(&["172.20.20.10:179"])
        };
        assert_eq!(desired_peers(&s, &no_as).len(), 1);
        // A reflector at a ToR's address, or listed twice: one peer.
        let clash = reflectors(&["10.0.0.1:179", "172.20.20.10:179", "172.20.20.10:180"]);
        let peers = desired_peers(&s, &clash);
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[&ip("10.0.0.1")].peer_as, Some(65101));
        assert_eq!(peers[&ip("172.20.20.10")].port, 179);
    }

    #[test]
    fn reflectors_come_and_go_as_peer_changes() {
        let s = settings("10.0.0.1");
        let one = desired_peers(&s, &reflectors(&["172.20.20.10:179"]));
        let two = desired_peers(&s, &reflectors(&["172.20.20.10:179", "172.20.20.11:179"]));
        assert!(peer_changes(&one, &one).is_empty());
        let grow = peer_changes(&one, &two);
        assert_eq!(grow.remove, Vec::<IpAddr>::new());
        assert_eq!(grow.added(), [ip("172.20.20.11")]);
        let shrink = peer_changes(&two, &one);
        assert_eq!(shrink.remove, [ip("172.20.20.11")]);
        assert!(shrink.add.is_empty());
        // A new fabric AS changes every reflector session, not the ToR's.
        let other_as = desired_peers(
            &s,
            &Reflectors {
                fabric_as: Some(65001),
                ..reflectors(&["172.20.20.10:179"])
            },
        );
        let change = peer_changes(&one, &other_as);
        assert_eq!(change.remove, [ip("172.20.20.10")]);
        assert_eq!(change.added(), [ip("172.20.20.10")]);
        // The ToRs gone: the reflectors become the primary path (no lowered preference).
        let alone = desired_peers(&settings(""), &reflectors(&["172.20.20.10:179"]));
        let change = peer_changes(&one, &alone);
        assert_eq!(change.remove, [ip("10.0.0.1"), ip("172.20.20.10")]);
        assert_eq!(change.add.len(), 1);
        assert_eq!(change.add[0].import_local_pref, None);
        // From nothing (a new speaker): every peer is added.
        assert_eq!(peer_changes(&BTreeMap::new(), &two).add.len(), 3);
    }
}

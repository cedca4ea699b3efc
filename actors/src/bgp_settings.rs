//! BGP settings: the master's `Bgp` object for this host (router address, AS, neighbours) as
//! speaker settings, and the plan to go from the running settings to new ones live.
//!
//! A `Bgp` object without neighbour (Contiv allows `neighbor` empty; then `neighbor-as` may be
//! empty too) means the host peers only with the masters' route reflectors (see
//! [`crate::reflector_peers`]): a fabric whose hosts share an L2 segment and have no BGP ToR.
//! Its `as` is still our AS on the speaker, but the reflector sessions use the fabric AS.

use crate::announce_blocks::{BLOCK_COMMUNITY, COVERED_COMMUNITY};
use fabric_model::objects::Bgp;
use ipnet::Ipv4Net;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Graceful-restart time we offer the ToRs (seconds): how long they keep our routes while the
/// agent restarts.
pub const RESTART_TIME: u16 = 120;

/// The speaker settings of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSettings {
    pub local_as: u32,
    pub router_ip: Ipv4Addr,
    /// The router address's subnet (its link to a ToR). A neighbour on it is reached from the
    /// router address; another one (the second ToR of a dual-homed host) from the host's own
    /// address on the link towards it, which is also the next hop it gets from us.
    pub router_net: Ipv4Net,
    /// The ToRs' AS; None when there is no neighbour (reflectors only).
    pub neighbor_as: Option<u32>,
    /// The ToRs; empty: reflectors only.
    pub neighbors: BTreeSet<Ipv4Addr>,
}

impl BgpSettings {
    /// Reads a `Bgp` object; the master validated it, but a bad one is an error, not a panic.
    pub fn from_model(bgp: &Bgp) -> Result<BgpSettings, String> {
        let local_as = bgp
            .asn()
            .ok_or_else(|| format!("bgp {}: bad as '{}'", bgp.hostname, bgp.as_number))?;
        let router_net = bgp
            .router_ip()
            .ok_or_else(|| format!("bgp {}: bad routerip '{}'", bgp.hostname, bgp.routerip))?;
        let neighbors: BTreeSet<Ipv4Addr> = bgp.neighbors().into_iter().collect();
        let neighbor_as = match (neighbors.is_empty(), bgp.neighbor_as.trim().is_empty()) {
            // Reflectors only: no ToR, so no ToR AS needed.
            (true, true) => None,
            _ => Some(bgp.neighbor_asn().ok_or_else(|| {
                format!(
                    "bgp {}: bad neighbor-as '{}'",
                    bgp.hostname, bgp.neighbor_as
                )
            })?),
        };
        Ok(BgpSettings {
            local_as,
            router_ip: router_net.addr(),
            router_net: router_net.trunc(),
            neighbor_as,
            neighbors,
        })
    }

    /// The speaker's configuration, without peers (they are added after our routes).
    pub fn speaker_config(&self) -> fabric_bgp::SpeakerConfig {
        let mut config = fabric_bgp::SpeakerConfig::new(self.local_as, self.router_ip);
        config.hold_time = 9;
        config.connect_retry = 1;
        config.graceful_restart = Some(RESTART_TIME);
        // Always say we are restarting: after a crash the ToRs then keep our routes until our
        // End-of-RIB, and on a first start there is nothing to keep.
        config.restarting = true;
        // A host is never transit: what it learns from one ToR goes neither to the other ToR
        // nor to a reflector, and what a reflector sends goes to no ToR. Only our own /32s
        // leave the host.
        config.export_local_only = true;
        config
    }

    /// The session to ToR `neighbor`.
    pub fn peer_config(&self, neighbor: Ipv4Addr) -> fabric_bgp::PeerConfig {
        let mut peer = fabric_bgp::PeerConfig::new(neighbor.into(), self.neighbor_as);
        peer.local_address = self
            .router_net
            .contains(&neighbor)
            .then_some(self.router_ip.into());
        peer.families = vec![fabric_bgp::packet::Afi::Ipv4];
        // A ToR gets every container /32 and nothing else, unmarked: no address block (those
        // are for the reflectors) and neither internal mark (see crate::announce_blocks).
        peer.export_deny_communities = vec![BLOCK_COMMUNITY];
        peer.export_strip_communities = vec![BLOCK_COMMUNITY, COVERED_COMMUNITY];
        peer
    }
}

/// How to get from the running speaker to new settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BgpPlan {
    /// The same speaker (or still none): at most its peers change, which
    /// [`crate::reflector_peers::peer_changes`] works out from the peer sets.
    Keep,
    Start(BgpSettings),
    Stop,
    /// The AS or router address (or its subnet) changed: a new speaker.
    Restart(BgpSettings),
}

pub fn plan(current: Option<&BgpSettings>, new: Option<&BgpSettings>) -> BgpPlan {
    match (current, new) {
        (None, None) => BgpPlan::Keep,
        (None, Some(n)) => BgpPlan::Start(n.clone()),
        (Some(_), None) => BgpPlan::Stop,
        (Some(c), Some(n))
            if c.local_as != n.local_as
                || c.router_ip != n.router_ip
                || c.router_net != n.router_net =>
        {
            BgpPlan::Restart(n.clone())
        }
        // Neighbours or their AS: the peer sets say what to add and remove.
        (Some(_), Some(_)) => BgpPlan::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bgp(asn: &str, router: &str, neighbor: &str) -> Bgp {
        Bgp {
            hostname: "host1".into(),
            routerip: router.into(),
            as_number: asn.into(),
            neighbor_as: "65101".into(),
            neighbor: neighbor.into(),
            ..Bgp::default()
        }
    }

    #[test]
    fn reads_the_model() {
        let s = BgpSettings::from_model(&bgp("65211", "10.254.1.1/31", "10.254.1.0, 10.254.3.0"))
            .unwrap();
        assert_eq!(s.local_as, 65211);
        assert_eq!(s.router_ip, Ipv4Addr::new(10, 254, 1, 1));
        assert_eq!(s.neighbors.len(), 2);
        assert_eq!(s.neighbor_as, Some(65101));
        assert!(
            s.speaker_config().export_local_only,
            "a host is never transit"
        );
        assert!(BgpSettings::from_model(&bgp("x", "10.254.1.1/31", "10.254.1.0")).is_err());
        assert!(BgpSettings::from_model(&bgp("1", "10.254.1.1", "10.254.1.0")).is_err());
    }

    #[test]
    fn no_neighbour_means_reflectors_only() {
        let mut object = bgp("65000", "10.0.0.21/24", "");
        object.neighbor_as = String::new();
        let s = BgpSettings::from_model(&object).expect("no neighbour is not an error");
        assert!(s.neighbors.is_empty());
        assert_eq!(s.neighbor_as, None);
        assert_eq!(s.router_ip, Ipv4Addr::new(10, 0, 0, 21));
        assert_eq!(s.router_net, "10.0.0.0/24".parse().unwrap());
        // A neighbour AS without neighbour is still read (and must be valid).
        object.neighbor_as = "65101".into();
        assert_eq!(
            BgpSettings::from_model(&object).unwrap().neighbor_as,
            Some(65101)
        );
        object.neighbor_as = "x".into();
        assert!(BgpSettings::from_model(&object).is_err());
        // A neighbour needs its AS.
        let mut tor = bgp("65000", "10.0.0.21/24", "10.0.0.1");
        tor.neighbor_as = String::new();
        assert!(BgpSettings::from_model(&tor).is_err());
    }

    #[test]
    fn a_second_tor_is_reached_from_the_address_on_its_own_link() {
        let s = BgpSettings::from_model(&bgp("65211", "10.254.1.1/31", "10.254.1.0,10.254.3.0"))
            .unwrap();
        assert_eq!(s.router_net, "10.254.1.0/31".parse().unwrap());
        let first = s.peer_config(Ipv4Addr::new(10, 254, 1, 0));
        assert_eq!(first.local_as, None, "our own AS towards the ToRs");
        assert_eq!(
            first.local_address,
            Some(Ipv4Addr::new(10, 254, 1, 1).into())
        );
        assert_eq!(first.peer_as, Some(65101));
        assert_eq!(
            first.export_deny_communities,
            [BLOCK_COMMUNITY],
            "no block to a ToR"
        );
        assert_eq!(
            first.export_strip_communities,
            [BLOCK_COMMUNITY, COVERED_COMMUNITY]
        );
        // Not on the router address's link: the kernel picks the source (and so our next hop).
        let second = s.peer_config(Ipv4Addr::new(10, 254, 3, 0));
        assert_eq!(second.local_address, None);
        assert_eq!(second.peer_as, Some(65101));
        // A wider subnet changes which neighbours are on it: a new speaker.
        let wide = BgpSettings::from_model(&bgp("65211", "10.254.1.1/16", "10.254.1.0,10.254.3.0"))
            .unwrap();
        assert_eq!(
            wide.peer_config(Ipv4Addr::new(10, 254, 3, 0)).local_address,
            Some(Ipv4Addr::new(10, 254, 1, 1).into())
        );
        assert_eq!(plan(Some(&s), Some(&wide)), BgpPlan::Restart(wide.clone()));
    }

    #[test]
    fn a_new_speaker_only_for_a_new_as_or_router_address() {
        let a = BgpSettings::from_model(&bgp("65211", "10.254.1.1/31", "10.254.1.0")).unwrap();
        let b = BgpSettings::from_model(&bgp("65211", "10.254.1.1/31", "10.254.3.0,10.254.1.0"))
            .unwrap();
        let c = BgpSettings::from_model(&bgp("65299", "10.254.1.1/31", "10.254.1.0")).unwrap();
        assert_eq!(plan(None, None), BgpPlan::Keep);
        assert_eq!(plan(None, Some(&a)), BgpPlan::Start(a.clone()));
        assert_eq!(plan(Some(&a), None), BgpPlan::Stop);
        assert_eq!(plan(Some(&a), Some(&a)), BgpPlan::Keep);
        // Neighbours and their AS change peers only (see reflector_peers::peer_changes).
        assert_eq!(plan(Some(&a), Some(&b)), BgpPlan::Keep);
        let mut d = a.clone();
        d.neighbor_as = Some(1);
        assert_eq!(plan(Some(&a), Some(&d)), BgpPlan::Keep);
        assert_eq!(plan(Some(&a), Some(&c)), BgpPlan::Restart(c.clone()));
        let mut e = a.clone();
        e.router_ip = Ipv4Addr::new(10, 254, 1, 0);
        assert_eq!(plan(Some(&a), Some(&e)), BgpPlan::Restart(e.clone()));
    }
}

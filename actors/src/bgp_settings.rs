//! BGP settings: the master's `Bgp` object for this host (router address, AS, neighbours) as
//! speaker settings, and the plan to go from the running settings to new ones live.

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
    pub neighbor_as: u32,
    pub neighbors: BTreeSet<Ipv4Addr>,
}

impl BgpSettings {
    /// Reads a `Bgp` object; the master validated it, but a bad one is an error, not a panic.
    pub fn from_model(bgp: &Bgp) -> Result<BgpSettings, String> {
        let local_as = bgp
            .asn()
            .ok_or_else(|| format!("bgp {}: bad as '{}'", bgp.hostname, bgp.as_number))?;
        let neighbor_as = bgp.neighbor_asn().ok_or_else(|| {
            format!(
                "bgp {}: bad neighbor-as '{}'",
                bgp.hostname, bgp.neighbor_as
            )
        })?;
        let router_net = bgp
            .router_ip()
            .ok_or_else(|| format!("bgp {}: bad routerip '{}'", bgp.hostname, bgp.routerip))?;
        let neighbors: BTreeSet<Ipv4Addr> = bgp.neighbors().into_iter().collect();
        if neighbors.is_empty() {
            return Err(format!("bgp {}: no neighbor", bgp.hostname));
        }
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
        config
    }

    pub fn peer_config(&self, neighbor: Ipv4Addr) -> fabric_bgp::PeerConfig {
        let mut peer = fabric_bgp::PeerConfig::new(neighbor.into(), Some(self.neighbor_as));
        peer.local_address = self
            .router_net
            .contains(&neighbor)
            .then_some(self.router_ip.into());
        peer.families = vec![fabric_bgp::packet::Afi::Ipv4];
        peer
    }
}

/// How to get from the running settings to new ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BgpPlan {
    Keep,
    Start(BgpSettings),
    Stop,
    /// The AS or router address (or its subnet) changed: a new speaker.
    Restart(BgpSettings),
    /// Only neighbours changed: add and remove peers on the running speaker.
    Peers {
        add: Vec<Ipv4Addr>,
        remove: Vec<Ipv4Addr>,
    },
}

pub fn plan(current: Option<&BgpSettings>, new: Option<&BgpSettings>) -> BgpPlan {
    match (current, new) {
        (None, None) => BgpPlan::Keep,
        (None, Some(n)) => BgpPlan::Start(n.clone()),
        (Some(_), None) => BgpPlan::Stop,
        (Some(c), Some(n)) if c == n => BgpPlan::Keep,
        (Some(c), Some(n))
            if c.local_as != n.local_as
                || c.router_ip != n.router_ip
                || c.router_net != n.router_net =>
        {
            BgpPlan::Restart(n.clone())
        }
        (Some(c), Some(n)) if c.neighbor_as != n.neighbor_as => BgpPlan::Peers {
            add: n.neighbors.iter().copied().collect(),
            remove: c.neighbors.iter().copied().collect(),
        },
        (Some(c), Some(n)) => BgpPlan::Peers {
            add: n.neighbors.difference(&c.neighbors).copied().collect(),
            remove: c.neighbors.difference(&n.neighbors).copied().collect(),
        },
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
        assert!(BgpSettings::from_model(&bgp("x", "10.254.1.1/31", "10.254.1.0")).is_err());
        assert!(BgpSettings::from_model(&bgp("1", "10.254.1.1", "10.254.1.0")).is_err());
    }

    #[test]
    fn a_second_tor_is_reached_from_the_address_on_its_own_link() {
        let s = BgpSettings::from_model(&bgp("65211", "10.254.1.1/31", "10.254.1.0,10.254.3.0"))
            .unwrap();
        assert_eq!(s.router_net, "10.254.1.0/31".parse().unwrap());
        let first = s.peer_config(Ipv4Addr::new(10, 254, 1, 0));
        assert_eq!(
            first.local_address,
            Some(Ipv4Addr::new(10, 254, 1, 1).into())
        );
        assert_eq!(first.peer_as, Some(65101));
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
    fn plans_the_smallest_change() {
        let a = BgpSettings::from_model(&bgp("65211", "10.254.1.1/31", "10.254.1.0")).unwrap();
        let b = BgpSettings::from_model(&bgp("65211", "10.254.1.1/31", "10.254.3.0,10.254.1.0"))
            .unwrap();
        let c = BgpSettings::from_model(&bgp("65299", "10.254.1.1/31", "10.254.1.0")).unwrap();
        assert_eq!(plan(None, None), BgpPlan::Keep);
        assert_eq!(plan(None, Some(&a)), BgpPlan::Start(a.clone()));
        assert_eq!(plan(Some(&a), None), BgpPlan::Stop);
        assert_eq!(plan(Some(&a), Some(&a)), BgpPlan::Keep);
        assert_eq!(
            plan(Some(&a), Some(&b)),
            BgpPlan::Peers {
                add: vec![Ipv4Addr::new(10, 254, 3, 0)],
                remove: vec![]
            }
        );
        assert_eq!(plan(Some(&a), Some(&c)), BgpPlan::Restart(c.clone()));
        let mut d = a.clone();
        d.neighbor_as = 1;
        assert_eq!(
            plan(Some(&a), Some(&d)),
            BgpPlan::Peers {
                add: vec![Ipv4Addr::new(10, 254, 1, 0)],
                remove: vec![Ipv4Addr::new(10, 254, 1, 0)]
            }
        );
    }
}

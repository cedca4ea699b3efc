//! The speaker's EVPN half: originating and withdrawing EVPN routes, the EVPN Loc-RIB as
//! operators and tests see it, and EVPN subscribers.
//!
//! EVPN changes go to their own subscribers (`Speaker::subscribe_evpn`) rather than into
//! `RibEvent`: the unicast consumers (the agent's route actor) program kernel routes from
//! every `Changes` event and must not be woken, or have to skip, for MAC/IP routes. An EVPN
//! subscriber gets the family's End-of-RIBs on its own channel, after the changes before
//! them; the unicast subscribers still see `RibEvent::EndOfRib { afi: L2vpnEvpn }`.

use std::net::{IpAddr, Ipv4Addr};

use tokio::sync::mpsc;

use super::core::Core;
use crate::packet::{EvpnKey, EvpnRoute, ExtCommunity, Origin, PmsiTunnel};
use crate::rib::evpn::EvpnChange;
use crate::rib::LOCAL_PEER;

/// What an EVPN subscriber receives, in the order it happened.
#[derive(Debug, Clone)]
pub enum EvpnEvent {
    /// Best-path changes of EVPN routes; the first event is the whole EVPN Loc-RIB.
    Changes(Vec<EvpnChange>),
    /// `peer` sent End-of-RIB for L2VPN/EVPN in its current session (see
    /// `RibEvent::EndOfRib`).
    EndOfRib { peer: IpAddr },
}

/// One EVPN Loc-RIB entry: the best path's route and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnRibRoute {
    pub key: EvpnKey,
    /// The best path's NLRI (ESI, labels, gateway as its sender wrote them).
    pub route: EvpnRoute,
    /// Next hops (VTEPs) of the best path and its ECMP siblings.
    pub next_hops: Vec<Option<IpAddr>>,
    pub as_path: Vec<u32>,
    pub origin: Origin,
    pub local_pref: Option<u32>,
    pub ext_communities: Vec<ExtCommunity>,
    pub pmsi_tunnel: Option<PmsiTunnel>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Where the best path came from; None for our own routes.
    pub from: Option<IpAddr>,
}

impl Core {
    /// Send a new EVPN subscriber the EVPN Loc-RIB and the End-of-RIBs already seen.
    pub(super) fn subscribe_evpn(&mut self, tx: mpsc::UnboundedSender<EvpnEvent>) {
        let snapshot = self
            .rib
            .evpn_best()
            .map(|(key, best)| EvpnChange {
                key: key.clone(),
                best,
            })
            .collect();
        let synced: Vec<EvpnEvent> = self
            .peers
            .iter()
            .filter(|(_, e)| e.end_of_rib.contains(&crate::packet::Afi::L2vpnEvpn))
            .map(|(peer, _)| EvpnEvent::EndOfRib { peer: *peer })
            .collect();
        let sent = std::iter::once(EvpnEvent::Changes(snapshot))
            .chain(synced)
            .all(|event| tx.send(event).is_ok());
        if sent {
            self.evpn_subscribers.push(tx);
            self.rib.config.track_changes = true;
        }
    }

    /// Hand the EVPN changes so far to the EVPN subscribers (dropped when there is none: the
    /// RIB records changes while any subscriber of either kind is there).
    pub(super) fn publish_evpn_changes(&mut self) {
        let changes = self.rib.take_evpn_changes();
        if !changes.is_empty() {
            self.publish_evpn(EvpnEvent::Changes(changes));
        }
    }

    pub(super) fn publish_evpn(&mut self, event: EvpnEvent) {
        if self.evpn_subscribers.is_empty() {
            return;
        }
        self.evpn_subscribers
            .retain(|s| s.send(event.clone()).is_ok());
        if self.evpn_subscribers.is_empty() && self.subscribers.is_empty() {
            self.rib.config.track_changes = false;
        }
    }

    pub(super) fn evpn_loc_rib(&self) -> Vec<EvpnRibRoute> {
        self.rib
            .evpn_best()
            .filter_map(|(key, best)| {
                let first = best.first()?;
                let a = &first.attrs;
                let peer = self.rib.evpn_best_peer(key)?;
                Some(EvpnRibRoute {
                    key: key.clone(),
                    route: first.route.clone(),
                    next_hops: best.iter().map(|p| p.attrs.next_hop).collect(),
                    as_path: a
                        .as_path
                        .segments
                        .iter()
                        .flat_map(|s| s.asns.iter().copied())
                        .collect(),
                    origin: a.origin,
                    local_pref: a.local_pref,
                    ext_communities: a.ext_communities.clone(),
                    pmsi_tunnel: a.pmsi_tunnel.clone(),
                    originator_id: a.originator_id,
                    cluster_list: a.cluster_list.clone(),
                    from: (peer != LOCAL_PEER)
                        .then(|| self.rib.peer_info(peer).map(|i| i.address))
                        .flatten(),
                })
            })
            .collect()
    }
}

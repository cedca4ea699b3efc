//! The core's answers to read-only questions and subscriptions: the Loc-RIB as operators see
//! it, per-peer state, and a new subscriber's snapshot.

use tokio::sync::mpsc;

use super::core::Core;
use super::{PeerState, RibEvent, RibRoute};
use crate::rib::{BestChange, LOCAL_PEER};

impl Core {
    /// Send a new subscriber the whole Loc-RIB and the End-of-RIBs already seen, then keep it.
    pub(super) fn subscribe(&mut self, tx: mpsc::UnboundedSender<RibEvent>) {
        let snapshot: Vec<BestChange> = self
            .rib
            .iter_best()
            .map(|(prefix, paths)| BestChange {
                prefix,
                paths: paths.iter().map(|p| p.attrs.clone()).collect(),
            })
            .collect();
        let synced = self.peers.iter().flat_map(|(peer, e)| {
            e.end_of_rib.iter().map(|afi| RibEvent::EndOfRib {
                peer: *peer,
                afi: *afi,
            })
        });
        let sent = std::iter::once(RibEvent::Changes(snapshot))
            .chain(synced)
            .all(|event| tx.send(event).is_ok());
        if sent {
            self.subscribers.push(tx);
            self.rib.config.track_changes = true;
        }
    }

    pub(super) fn peer_states(&self) -> Vec<PeerState> {
        self.peers
            .values()
            .map(|e| PeerState {
                session: e.status.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                received_prefixes: self.rib.received_count(e.id),
                advertised_prefixes: self.rib.advertised_count(e.id),
                dynamic: e.dynamic,
            })
            .collect()
    }

    pub(super) fn loc_rib(&self) -> Vec<RibRoute> {
        self.rib
            .iter_best()
            .filter_map(|(prefix, paths)| {
                let best = paths.first()?;
                let a = &best.attrs;
                Some(RibRoute {
                    prefix,
                    next_hops: paths.iter().map(|p| p.attrs.next_hop).collect(),
                    as_path: a
                        .as_path
                        .segments
                        .iter()
                        .flat_map(|s| s.asns.iter().copied())
                        .collect(),
                    origin: a.origin,
                    local_pref: a.local_pref,
                    med: a.med,
                    communities: a.communities.clone(),
                    originator_id: a.originator_id,
                    cluster_list: a.cluster_list.clone(),
                    from: (best.peer != LOCAL_PEER)
                        .then(|| self.rib.peer_info(best.peer).map(|i| i.address))
                        .flatten(),
                    stale: best.stale,
                })
            })
            .collect()
    }

    /// Carry out one API command.
    pub(super) fn handle(&mut self, msg: super::CoreMsg) {
        use super::CoreMsg;
        match msg {
            CoreMsg::Accepted(stream, remote) => self.accepted(stream, remote),
            CoreMsg::AddPeer(cfg, reply) => {
                let _ = reply.send(self.add_peer(cfg, false).map(|_| ()));
            }
            CoreMsg::RemovePeer(addr, reply) => {
                let _ = reply.send(self.remove_peer(addr));
            }
            CoreMsg::Announce(prefixes, attrs) => self.rib.announce_local(&prefixes, attrs),
            CoreMsg::Withdraw(prefixes) => self.rib.withdraw_local(&prefixes),
            CoreMsg::AnnounceEvpn(routes, attrs) => self.rib.announce_evpn_local(routes, attrs),
            CoreMsg::WithdrawEvpn(keys) => self.rib.withdraw_evpn_local(&keys),
            CoreMsg::SubscribeEvpn(tx) => self.subscribe_evpn(tx),
            CoreMsg::EvpnRib(reply) => {
                let _ = reply.send(self.evpn_loc_rib());
            }
            CoreMsg::Subscribe(tx) => self.subscribe(tx),
            CoreMsg::PeerStates(reply) => {
                let _ = reply.send(self.peer_states());
            }
            CoreMsg::LocRib(reply) => {
                let _ = reply.send(self.loc_rib());
            }
            CoreMsg::RibSize(reply) => {
                let _ = reply.send(self.rib.len());
            }
            CoreMsg::SetDynamicAllowed(allowed) => self.set_dynamic_allowed(allowed),
            CoreMsg::DynamicStats(reply) => {
                let _ = reply.send(self.dynamic.stats());
            }
            CoreMsg::Refresh(addr) => {
                if let Some(e) = self.peers.get(&addr) {
                    let _ = e.cmd.send(crate::session::SessionCmd::RequestRefresh);
                }
            }
            CoreMsg::StaleTimer { peer, generation } => self.stale_timer(peer, generation),
            CoreMsg::Shutdown(_) => {}
        }
    }
}

//! The EVPN table (L2VPN/EVPN, RFC 7432): routes keyed by their NLRI key (route
//! distinguisher and the route type's key fields, see `packet::evpn::EvpnKey`), each with the
//! paths peers sent for it, best first by the same decision process as unicast; the per-peer
//! Adj-RIB-Out for the family; import, origination, export and packing of its routes.
//!
//! A `BTreeMap` apart from the unicast table: EVPN tables are small (a MAC/IP route per
//! endpoint, a type 3 per VTEP and VNI) and the unicast table's memory layout is built for
//! /32s. The NLRI fields outside the key (ESI, labels, gateway) belong to each path, since two
//! peers may send one key with different labels.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::adj_out::export_attrs;
use super::{decision, Path, PeerId, Rib, LOCAL_PEER};
use crate::packet::encode::Packer;
use crate::packet::evpn::{EvpnKey, EvpnRoute};
use crate::packet::{Afi, EvpnReach, EvpnUnreach, PathAttrs};

/// One EVPN path: the route as its sender wrote it and the shared attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnPath {
    pub route: EvpnRoute,
    pub attrs: Arc<PathAttrs>,
}

/// A change of the best path of an EVPN key: `best` empty means unreachable; otherwise the
/// best path first, then its equal-cost siblings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnChange {
    pub key: EvpnKey,
    pub best: Vec<EvpnPath>,
}

/// The paths of one key, best first; `routes[i]` is the NLRI of `paths[i]`.
#[derive(Debug, Clone, Default)]
struct Entry {
    paths: Vec<Path>,
    routes: Vec<EvpnRoute>,
    ecmp: usize,
}

impl Entry {
    fn best(&self) -> Vec<EvpnPath> {
        self.paths
            .iter()
            .zip(&self.routes)
            .take(self.ecmp.max(1))
            .map(|(p, r)| EvpnPath {
                route: r.clone(),
                attrs: p.attrs.clone(),
            })
            .collect()
    }

    fn best_id(&self) -> Option<(PeerId, *const PathAttrs, &EvpnRoute)> {
        let p = self.paths.first()?;
        Some((p.peer, Arc::as_ptr(&p.attrs), self.routes.first()?))
    }
}

/// Exported attributes by (address of the input attributes, source peer); the input `Arc` is
/// held so its address cannot be reused while memoised.
type ExportMemo = FxHashMap<(usize, PeerId), (Arc<PathAttrs>, Option<Arc<PathAttrs>>)>;

/// The EVPN family's state in a `Rib`.
#[derive(Debug, Default)]
pub struct EvpnRib {
    table: BTreeMap<EvpnKey, Entry>,
    /// What each peer was last sent, per key.
    adj_out: FxHashMap<PeerId, FxHashMap<EvpnKey, (Arc<PathAttrs>, EvpnRoute)>>,
    /// Peers whose EVPN paths are stale (graceful restart), until End-of-RIB or the timer.
    stale: Vec<PeerId>,
    /// Keys whose best path changed since the last flush.
    dirty: Vec<EvpnKey>,
    changes: Vec<EvpnChange>,
    received: FxHashMap<PeerId, u64>,
}

impl Rib {
    /// Install, replace (`Some`) or remove (`None`) `peer`'s path for an EVPN key and rerun
    /// the decision.
    fn set_evpn_path(&mut self, key: EvpnKey, peer: PeerId, new: Option<EvpnPath>) {
        let evpn = &mut self.evpn;
        let entry = match (&new, evpn.table.get_mut(&key)) {
            (_, Some(e)) => e,
            (None, None) => return,
            (Some(_), None) => evpn.table.entry(key.clone()).or_default(),
        };
        let old_best = entry.best_id().map(|(p, a, r)| (p, a, r.clone()));
        let pos = entry.paths.iter().position(|p| p.peer == peer);
        let (before, after) = (pos.is_some(), new.is_some());
        match (pos, new) {
            (Some(i), Some(n)) => {
                entry.paths[i] = Path {
                    peer,
                    stale: false,
                    attrs: n.attrs,
                };
                entry.routes[i] = n.route;
            }
            (None, Some(n)) => {
                entry.paths.push(Path {
                    peer,
                    stale: false,
                    attrs: n.attrs,
                });
                entry.routes.push(n.route);
            }
            (Some(i), None) => {
                entry.paths.remove(i);
                entry.routes.remove(i);
            }
            (None, None) => return,
        }
        // The decision orders `paths`; the routes follow through a sort by the same order.
        let mut order: Vec<(Path, EvpnRoute)> =
            entry.paths.drain(..).zip(entry.routes.drain(..)).collect();
        let mut paths: Vec<Path> = order.iter().map(|(p, _)| p.clone()).collect();
        entry.ecmp = decision::select(&mut paths, &self.infos, self.config.max_paths);
        for p in &paths {
            if let Some(i) = order.iter().position(|(q, _)| q.peer == p.peer) {
                let (path, route) = order.swap_remove(i);
                entry.paths.push(path);
                entry.routes.push(route);
            }
        }
        let new_best = entry.best_id().map(|(p, a, r)| (p, a, r.clone()));
        let best = entry.best();
        if entry.paths.is_empty() {
            evpn.table.remove(&key);
        }
        if before != after {
            let n = evpn.received.entry(peer).or_default();
            *n = if after { *n + 1 } else { n.saturating_sub(1) };
            if let Some(p) = self.peers.get_mut(peer as usize).and_then(|p| p.as_mut()) {
                p.received = if after {
                    p.received + 1
                } else {
                    p.received.saturating_sub(1)
                };
            }
        }
        if old_best != new_best {
            evpn.dirty.push(key.clone());
            if self.config.track_changes {
                evpn.changes.push(EvpnChange { key, best });
            }
        }
    }

    /// Import the EVPN part of an UPDATE from `peer` (`attrs` None: withdrawals only). Loop
    /// checks (AS_PATH, ORIGINATOR_ID, CLUSTER_LIST) are the unicast ones; a refused UPDATE's
    /// routes are treated as withdrawn. Returns (announced, withdrawn, rejected).
    pub(super) fn import_evpn(
        &mut self,
        peer: PeerId,
        reach: Option<EvpnReach>,
        unreach: Option<EvpnUnreach>,
        attrs: Option<&PathAttrs>,
    ) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        // A peer that did not negotiate the family has nothing to say in it (RFC 4760 §6).
        let negotiated = self
            .peer_info(peer)
            .is_some_and(|i| i.families.contains(&Afi::L2vpnEvpn));
        if !negotiated {
            if reach.is_some() || unreach.is_some() {
                tracing::debug!(peer, "EVPN routes from a peer without the family ignored");
            }
            return counts;
        }
        for route in unreach.into_iter().flat_map(|u| u.routes) {
            self.set_evpn_path(route.key(), peer, None);
            counts.1 += 1;
        }
        let (Some(reach), Some(attrs)) = (reach, attrs) else {
            return counts;
        };
        let mut attrs = attrs.clone();
        attrs.next_hop = Some(reach.next_hop);
        attrs.link_local_next_hop = None;
        if let Some(lp) = self.peer_info(peer).and_then(|i| i.import_local_pref) {
            attrs.local_pref = Some(lp);
        }
        // The unicast rules: loops, a next hop of ours, enforce-first-as.
        if let Some(refusal) = self.refusal(peer, &attrs) {
            let reason = match refusal {
                super::adj_in::Refusal::Loop(r) => r.to_string(),
                super::adj_in::Refusal::Invalid(r) => r,
            };
            tracing::debug!(
                peer,
                reason,
                routes = reach.routes.len(),
                "EVPN routes refused (treated as withdrawn)"
            );
            for route in reach.routes {
                self.set_evpn_path(route.key(), peer, None);
                counts.2 += 1;
            }
            return counts;
        }
        let attrs = Arc::new(attrs);
        for route in reach.routes {
            let path = EvpnPath {
                route,
                attrs: attrs.clone(),
            };
            self.set_evpn_path(path.route.key(), peer, Some(path));
            counts.0 += 1;
        }
        counts
    }

    /// Originate EVPN routes (`attrs.next_hop`: the VTEP; unset, the session's address).
    pub fn announce_evpn_local(&mut self, routes: Vec<EvpnRoute>, attrs: PathAttrs) {
        let attrs = Arc::new(attrs);
        for route in routes {
            let path = EvpnPath {
                route,
                attrs: attrs.clone(),
            };
            self.set_evpn_path(path.route.key(), LOCAL_PEER, Some(path));
        }
    }

    /// Stop originating EVPN routes.
    pub fn withdraw_evpn_local(&mut self, keys: &[EvpnKey]) {
        for key in keys {
            self.set_evpn_path(key.clone(), LOCAL_PEER, None);
        }
    }

    /// The session went down: drop the peer's EVPN paths, or mark them stale (graceful).
    pub(super) fn evpn_peer_down(&mut self, peer: PeerId, graceful: bool) {
        self.evpn.adj_out.remove(&peer);
        if graceful {
            let mut any = false;
            for entry in self.evpn.table.values_mut() {
                for p in entry.paths.iter_mut().filter(|p| p.peer == peer) {
                    p.stale = true;
                    any = true;
                }
            }
            if any && !self.evpn.stale.contains(&peer) {
                self.evpn.stale.push(peer);
            }
        } else {
            self.evpn.stale.retain(|&p| p != peer);
            self.remove_evpn_where(peer, false);
        }
    }

    /// Drop the peer's stale EVPN paths (End-of-RIB for the family, or the restart timer).
    pub(super) fn evpn_purge_stale(&mut self, peer: PeerId) {
        let before = self.evpn.stale.len();
        self.evpn.stale.retain(|&p| p != peer);
        if self.evpn.stale.len() != before {
            self.remove_evpn_where(peer, true);
        }
    }

    fn remove_evpn_where(&mut self, peer: PeerId, stale_only: bool) {
        let doomed: Vec<EvpnKey> = self
            .evpn
            .table
            .iter()
            .filter(|(_, e)| {
                e.paths
                    .iter()
                    .any(|p| p.peer == peer && (p.stale || !stale_only))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            self.set_evpn_path(key, peer, None);
        }
    }

    /// Whether the peer has stale EVPN paths.
    pub(super) fn evpn_has_stale(&self, peer: PeerId) -> bool {
        self.evpn.stale.contains(&peer)
    }

    /// A new session (or a refresh): the peer's EVPN Adj-RIB-Out starts empty.
    pub(super) fn evpn_peer_up(&mut self, peer: PeerId) {
        self.evpn.adj_out.remove(&peer);
    }

    /// Take the keys changed since the last flush (once per flush, for every peer).
    pub(super) fn take_evpn_dirty(&mut self) -> Vec<EvpnKey> {
        std::mem::take(&mut self.evpn.dirty)
    }

    /// Write what `peer` must hear of EVPN: every key on a full sync, else the changed ones.
    /// Returns (announced, withdrawn).
    pub(super) fn flush_evpn(
        &mut self,
        peer: PeerId,
        full: bool,
        dirty: &[EvpnKey],
        packer: &mut Packer,
        out: &mut Vec<u8>,
    ) -> (u64, u64) {
        let Some(target) = self.peer_info(peer).cloned() else {
            return (0, 0);
        };
        if !target.families.contains(&Afi::L2vpnEvpn) {
            return (0, 0);
        }
        let keys: Vec<EvpnKey> = if full {
            self.evpn.table.keys().cloned().collect()
        } else {
            dirty.to_vec()
        };
        // Prefixes that share input attributes share one exported `Arc`, so they pack together.
        let mut memo = ExportMemo::default();
        let mut groups: Vec<(Arc<PathAttrs>, Vec<EvpnRoute>)> = Vec::new();
        let mut withdrawn = Vec::new();
        let adj_out = self.evpn.adj_out.entry(peer).or_default();
        for key in keys {
            let exported = self.evpn.table.get(&key).and_then(|e| {
                let (best, route) = (e.paths.first()?, e.routes.first()?);
                let mkey = (Arc::as_ptr(&best.attrs) as usize, best.peer);
                let attrs = match memo.get(&mkey) {
                    Some((_, a)) => a.clone(),
                    None => {
                        let source = self.infos.get(best.peer as usize).and_then(|i| i.as_ref());
                        let a = export_attrs(
                            &self.config,
                            peer,
                            &target,
                            best.peer,
                            source,
                            Afi::L2vpnEvpn,
                            &best.attrs,
                        )
                        .map(|mut a| {
                            // The next hop of an EVPN route is the VTEP that decapsulates: on
                            // eBGP too it goes on as it is (as FRR does), since we are not that
                            // VTEP; only a route of ours without one gets our address.
                            if !target.ibgp && best.attrs.next_hop.is_some() {
                                a.next_hop = best.attrs.next_hop;
                            }
                            Arc::new(a)
                        });
                        memo.insert(mkey, (best.attrs.clone(), a.clone()));
                        a
                    }
                }?;
                Some((attrs, route.clone()))
            });
            match exported {
                Some((attrs, route)) => {
                    let same = adj_out
                        .get(&key)
                        .is_some_and(|(a, r)| **a == *attrs && *r == route);
                    if same && !full {
                        continue;
                    }
                    adj_out.insert(key, (attrs.clone(), route.clone()));
                    match groups.iter_mut().find(|(a, _)| Arc::ptr_eq(a, &attrs)) {
                        Some((_, routes)) => routes.push(route),
                        None => groups.push((attrs, vec![route])),
                    }
                }
                None => {
                    if let Some((_, route)) = adj_out.remove(&key) {
                        withdrawn.push(route);
                    }
                }
            }
        }
        packer.withdraw_evpn(&withdrawn, out);
        let mut announced = 0;
        for (attrs, routes) in &groups {
            announced += routes.len() as u64;
            packer.announce_evpn(attrs, routes, out);
        }
        (announced, withdrawn.len() as u64)
    }

    /// EVPN best-path changes since the last call.
    pub fn take_evpn_changes(&mut self) -> Vec<EvpnChange> {
        std::mem::take(&mut self.evpn.changes)
    }

    /// The EVPN Loc-RIB: every key with its best path and ECMP siblings.
    pub fn evpn_best(&self) -> impl Iterator<Item = (&EvpnKey, Vec<EvpnPath>)> {
        self.evpn.table.iter().map(|(k, e)| (k, e.best()))
    }

    /// The EVPN paths of a key, best first, with the peer each came from and its staleness.
    pub fn evpn_lookup(&self, key: &EvpnKey) -> Vec<(PeerId, bool, EvpnPath)> {
        self.evpn.table.get(key).map_or_else(Vec::new, |e| {
            e.paths
                .iter()
                .zip(&e.routes)
                .map(|(p, r)| {
                    (
                        p.peer,
                        p.stale,
                        EvpnPath {
                            route: r.clone(),
                            attrs: p.attrs.clone(),
                        },
                    )
                })
                .collect()
        })
    }

    /// The peer the best path of a key came from.
    pub fn evpn_best_peer(&self, key: &EvpnKey) -> Option<PeerId> {
        self.evpn.table.get(key)?.paths.first().map(|p| p.peer)
    }

    /// EVPN routes held.
    pub fn evpn_len(&self) -> usize {
        self.evpn.table.len()
    }

    /// EVPN routes currently advertised to a peer.
    pub fn evpn_advertised_count(&self, peer: PeerId) -> u64 {
        self.evpn.adj_out.get(&peer).map_or(0, |m| m.len() as u64)
    }
}

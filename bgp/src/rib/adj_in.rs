//! Import: an UPDATE from a peer into its Adj-RIB-In (and so the Loc-RIB), with loop
//! detection (AS_PATH, ORIGINATOR_ID, CLUSTER_LIST), the import policy and max-prefix.

use std::sync::Arc;

use super::{MaxPrefixExceeded, PeerId, Rib, LOCAL_PEER};
use crate::packet::{Afi, PathAttrs, Prefix, Update};

/// How many prefixes ahead of its insert a prefix's index is prefetched (and its entry's slot,
/// half as many): enough for a memory access (about a hundred nanoseconds) to finish while the
/// inserts before it run.
const PREFETCH_AHEAD: usize = 16;

/// What one UPDATE did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportResult {
    pub announced: usize,
    pub withdrawn: usize,
    /// Prefixes dropped by loop detection or policy.
    pub rejected: usize,
    /// End-of-RIB marker for this family.
    pub end_of_rib: Option<Afi>,
}

/// Why the paths of an UPDATE are refused (their prefixes are treated as withdrawn).
pub(super) enum Refusal {
    /// A routing loop: expected in a redundant topology, logged at debug.
    Loop(&'static str),
    /// The peer broke a rule it should know (enforce-first-as): logged as a warning.
    Invalid(String),
}

impl Rib {
    /// Why a path from `peer` must not be used, if it loops.
    fn loop_reason(&self, peer: PeerId, attrs: &PathAttrs) -> Option<&'static str> {
        let info = self.peer_info(peer);
        let ibgp = info.is_some_and(|i| i.ibgp);
        // Both our AS on this session and the speaker's: a host using its own AS towards its
        // ToR must still never take back a route that went through the fabric AS.
        let session_as = info.map_or(self.config.local_as, |i| i.local_as);
        if !ibgp
            && (attrs.as_path.contains(session_as) || attrs.as_path.contains(self.config.local_as))
        {
            return Some("AS_PATH contains our AS");
        }
        if attrs.originator_id == Some(self.config.router_id) {
            return Some("ORIGINATOR_ID is our router id");
        }
        if self
            .config
            .cluster_id
            .is_some_and(|c| attrs.cluster_list.contains(&c))
        {
            return Some("CLUSTER_LIST contains our cluster id");
        }
        None
    }

    /// Why an UPDATE's paths from `peer` are refused, if they are.
    pub(super) fn refusal(&self, peer: PeerId, attrs: &PathAttrs) -> Option<Refusal> {
        if let Some(reason) = self.loop_reason(peer, attrs) {
            return Some(Refusal::Loop(reason));
        }
        if let Some(nh) = attrs.next_hop.filter(|nh| self.is_own_address(nh)) {
            // RFC 4271 §6.3: a next hop that is our own address would loop the traffic back
            // to us.
            return Some(Refusal::Invalid(format!(
                "NEXT_HOP {nh} is one of our own addresses"
            )));
        }
        let info = self.peer_info(peer)?;
        if info.enforce_first_as && !info.ibgp {
            // RFC 4271 §6.3 allows it and FRR does it by default: an eBGP peer puts its own
            // AS first; anything else is a misconfiguration or a route leak.
            match attrs.as_path.first_as() {
                None => {
                    return Some(Refusal::Invalid(
                        "enforce-first-as: AS_PATH is empty or does not start with a sequence"
                            .into(),
                    ))
                }
                Some(first) if first != info.asn => {
                    return Some(Refusal::Invalid(format!(
                        "enforce-first-as: AS_PATH starts with {first}, not the peer's AS {}",
                        info.asn
                    )))
                }
                Some(_) => {}
            }
        }
        None
    }

    /// Apply an UPDATE received from `peer`.
    pub fn import_update(
        &mut self,
        peer: PeerId,
        update: Update,
    ) -> Result<ImportResult, MaxPrefixExceeded> {
        let mut result = ImportResult {
            end_of_rib: update.end_of_rib(),
            ..ImportResult::default()
        };
        let withdrawn = update
            .withdrawn
            .into_iter()
            .chain(update.mp_unreach.into_iter().flat_map(|u| u.withdrawn));
        for prefix in withdrawn {
            self.set_path(prefix, peer, None);
            result.withdrawn += 1;
        }
        if update.evpn_reach.is_some() || update.evpn_unreach.is_some() {
            let (announced, withdrawn, rejected) = self.import_evpn(
                peer,
                update.evpn_reach,
                update.evpn_unreach,
                update.attrs.as_ref(),
            );
            result.announced += announced;
            result.withdrawn += withdrawn;
            result.rejected += rejected;
            if let Some(limit) = self.peer_info(peer).and_then(|i| i.max_prefix) {
                let count = self.received_count(peer);
                if count > limit {
                    return Err(MaxPrefixExceeded { peer, count, limit });
                }
            }
        }
        let Some(mut attrs) = update.attrs else {
            return Ok(result);
        };
        if let Some(lp) = self.peer_info(peer).and_then(|i| i.import_local_pref) {
            attrs.local_pref = Some(lp);
        }
        let mp = update.mp_reach.map(|reach| {
            let mp_attrs = PathAttrs {
                next_hop: Some(reach.next_hop),
                link_local_next_hop: reach.link_local,
                ..attrs.clone()
            };
            (Arc::new(mp_attrs), reach.nlri)
        });
        let v4 = (!update.nlri.is_empty()).then(|| (Arc::new(attrs), update.nlri));
        for (attrs, nlri) in v4.into_iter().chain(mp) {
            self.import_paths(peer, &attrs, nlri, &mut result)?;
        }
        Ok(result)
    }

    fn import_paths(
        &mut self,
        peer: PeerId,
        attrs: &Arc<PathAttrs>,
        nlri: Vec<Prefix>,
        result: &mut ImportResult,
    ) -> Result<(), MaxPrefixExceeded> {
        if let Some(refusal) = self.refusal(peer, attrs) {
            match refusal {
                Refusal::Loop(reason) => tracing::debug!(
                    peer,
                    reason,
                    prefixes = nlri.len(),
                    "route rejected by loop detection"
                ),
                Refusal::Invalid(reason) => {
                    let address = self
                        .peer_info(peer)
                        .map(|i| i.address.to_string())
                        .unwrap_or_default();
                    tracing::warn!(
                        peer = %address,
                        reason,
                        prefixes = nlri.len(),
                        "UPDATE treated as withdraw"
                    )
                }
            }
            for prefix in nlri {
                self.set_path(prefix, peer, None);
                result.rejected += 1;
            }
            return Ok(());
        }
        let Some(info) = self.peer_info(peer).cloned() else {
            return Ok(());
        };
        // Policy first for the whole UPDATE, then the table. Accepting a route clones the
        // shared attributes' `Arc`, a locked increment, and a locked instruction waits for
        // every earlier store to reach the cache: interleaved with the table inserts, each one
        // waited for the previous insert's cache-missing store (perf put about a third of a
        // full-table import on that increment). Done back to back, they are cheap, and the
        // inserts' misses overlap.
        let policy = self.policy.clone();
        let mut decided = std::mem::take(&mut self.import_scratch);
        decided.clear();
        decided.extend(
            nlri.into_iter()
                .map(|prefix| (prefix, policy.import(&info, &prefix, attrs))),
        );
        // Each insert misses the cache in a table far bigger than the cache, twice (the
        // index, then the entry's slot): both are loaded ahead, the index for the prefix
        // PREFETCH_AHEAD places on, the slot for the one half as far, whose index is in by then.
        for (prefix, _) in decided.iter().take(PREFETCH_AHEAD) {
            self.table.prefetch_index(prefix);
        }
        for (prefix, _) in decided.iter().take(PREFETCH_AHEAD / 2) {
            self.table.prefetch_entry(prefix);
        }
        for i in 0..decided.len() {
            if let Some((ahead, _)) = decided.get(i + PREFETCH_AHEAD) {
                self.table.prefetch_index(ahead);
            }
            if let Some((ahead, _)) = decided.get(i + PREFETCH_AHEAD / 2) {
                self.table.prefetch_entry(ahead);
            }
            let (prefix, accepted) = (decided[i].0, decided[i].1.take());
            if accepted.is_some() {
                result.announced += 1;
            } else {
                result.rejected += 1;
            }
            self.set_path(prefix, peer, accepted);
        }
        decided.clear();
        self.import_scratch = decided;
        if let Some(limit) = info.max_prefix {
            let count = self.received_count(peer);
            if count > limit {
                return Err(MaxPrefixExceeded { peer, count, limit });
            }
        }
        Ok(())
    }

    /// Originate routes ourselves (`announce`): they go to every peer the export rules allow.
    pub fn announce_local(&mut self, prefixes: &[Prefix], attrs: PathAttrs) {
        let attrs = self.shared_local_attrs(attrs);
        for prefix in prefixes {
            self.set_path(*prefix, LOCAL_PEER, Some(attrs.clone()));
        }
    }

    /// `attrs` as an already shared equal set, or newly shared. Sets no route uses any more
    /// are let go first (the list only ever holds what local routes currently use, a handful).
    fn shared_local_attrs(&mut self, attrs: PathAttrs) -> Arc<PathAttrs> {
        self.local_attrs.retain(|a| Arc::strong_count(a) > 1);
        if let Some(shared) = self.local_attrs.iter().find(|a| ***a == attrs) {
            return shared.clone();
        }
        let shared = Arc::new(attrs);
        self.local_attrs.push(shared.clone());
        shared
    }

    /// Stop originating routes.
    pub fn withdraw_local(&mut self, prefixes: &[Prefix]) {
        for prefix in prefixes {
            self.set_path(*prefix, LOCAL_PEER, None);
        }
    }
}

//! Export: which best paths a peer may receive (eBGP/iBGP and route-reflection rules, RFC
//! 4271 §9.2 and RFC 4456 §8), how their attributes change on the way out (AS_PATH prepend,
//! next hop, LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST), and the Adj-RIB-Out of each peer.
//!
//! Per-peer community filters come first and last: a route carrying one of the peer's
//! `export_deny_communities` is not for that peer (withdrawn if it had it: the flush finds no
//! export and withdraws what the Adj-RIB-Out holds), and the peer's
//! `export_strip_communities` are removed from what it gets. An agent uses them to send its
//! address blocks to the reflectors only and its /32s to its ToRs, from one Loc-RIB.

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::decision::DEFAULT_LOCAL_PREF;
use super::{Path, PeerId, PeerInfo, RibConfig, LOCAL_PEER};
use crate::packet::prefix::afi_of;
use crate::packet::{Afi, PathAttrs, Prefix};

/// What a peer was last sent, per prefix.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    routes: FxHashMap<Prefix, Arc<PathAttrs>>,
}

impl AdjRibOut {
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn clear(&mut self) {
        self.routes = FxHashMap::default();
    }

    pub fn get(&self, prefix: &Prefix) -> Option<&Arc<PathAttrs>> {
        self.routes.get(prefix)
    }

    /// Record an advertisement; false when the peer already has exactly this.
    pub fn advertise(&mut self, prefix: Prefix, attrs: &Arc<PathAttrs>) -> bool {
        match self.routes.get_mut(&prefix) {
            Some(old) if Arc::ptr_eq(old, attrs) || **old == **attrs => false,
            Some(old) => {
                *old = attrs.clone();
                true
            }
            None => {
                self.routes.insert(prefix, attrs.clone());
                true
            }
        }
    }

    /// Record a withdrawal; false when the peer never had the prefix.
    pub fn withdraw(&mut self, prefix: &Prefix) -> bool {
        self.routes.remove(prefix).is_some()
    }
}

/// The next hop we put on routes we originate or rewrite, for a family: the session's
/// configured `next_hop` when it is of that family, else our address on the session.
fn self_next_hop(target: &PeerInfo, afi: Afi) -> Option<IpAddr> {
    match (afi, target.next_hop) {
        (Afi::Ipv4, Some(nh @ IpAddr::V4(_)))
        | (Afi::Ipv6, Some(nh @ IpAddr::V6(_)))
        | (Afi::L2vpnEvpn, Some(nh)) => return Some(nh),
        _ => {}
    }
    match (afi, target.local_address) {
        // EVPN: the VTEP address, of either family (RFC 7432 §7).
        (Afi::L2vpnEvpn, a) => Some(a),
        (Afi::Ipv4, IpAddr::V4(a)) => Some(IpAddr::V4(a)),
        (Afi::Ipv6, IpAddr::V6(a)) => Some(IpAddr::V6(a)),
        (Afi::Ipv6, _) => target.local_v6_next_hop.map(IpAddr::V6),
        (Afi::Ipv4, IpAddr::V6(_)) => None,
    }
}

/// Attributes `target` gets for a best path from `source`, or None when it gets nothing.
pub fn export_attrs(
    config: &RibConfig,
    target_id: PeerId,
    target: &PeerInfo,
    source_id: PeerId,
    source: Option<&PeerInfo>,
    afi: Afi,
    attrs: &PathAttrs,
) -> Option<PathAttrs> {
    if source_id == target_id || !target.families.contains(&afi) {
        return None;
    }
    if denied(target, attrs) {
        return None;
    }
    if config.export_local_only && source_id != LOCAL_PEER {
        return None;
    }
    let source_ibgp = source.is_some_and(|s| s.ibgp);
    let reflected = source_id != LOCAL_PEER && source_ibgp && target.ibgp;
    if reflected {
        // RFC 4456 §6: a reflector sends client routes to everyone, non-client routes to clients.
        config.cluster_id?;
        let source_client = source.is_some_and(|s| s.rr_client);
        if !source_client && !target.rr_client {
            return None;
        }
    }
    let mut out = attrs.clone();
    if target.ibgp {
        out.local_pref = Some(attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
        let rewrite = if source_id == LOCAL_PEER {
            attrs.next_hop.is_none() || target.next_hop_self
        } else {
            target.next_hop_self && !reflected
        };
        if rewrite {
            out.next_hop = self_next_hop(target, afi);
            out.link_local_next_hop = None;
        }
        if reflected {
            let source_id_addr = source.map(|s| s.router_id).unwrap_or(config.router_id);
            out.originator_id = Some(attrs.originator_id.unwrap_or(source_id_addr));
            if let Some(cluster) = config.cluster_id {
                out.cluster_list.insert(0, cluster);
            }
        }
    } else {
        if attrs.as_path.contains(target.asn) {
            // The peer would drop it as a loop anyway.
            return None;
        }
        out.as_path = attrs.as_path.prepend(target.local_as);
        out.next_hop = self_next_hop(target, afi);
        out.link_local_next_hop = None;
        out.local_pref = None;
        if source_id != LOCAL_PEER {
            out.med = None;
        }
        out.originator_id = None;
        out.cluster_list.clear();
    }
    out.next_hop?;
    if !target.export_strip_communities.is_empty() {
        out.communities
            .retain(|c| !target.export_strip_communities.contains(c));
    }
    Some(out)
}

/// Whether `attrs` carry a community `target` must not be sent.
fn denied(target: &PeerInfo, attrs: &PathAttrs) -> bool {
    !target.export_deny_communities.is_empty()
        && attrs
            .communities
            .iter()
            .any(|c| target.export_deny_communities.contains(c))
}

/// Memo of exported attributes for one flush: all prefixes that share input attributes share
/// one output `Arc`, which is what lets the packer put them in the same UPDATE.
#[derive(Default)]
pub struct ExportCache {
    memo: FxHashMap<MemoKey, (Arc<PathAttrs>, Option<Arc<PathAttrs>>)>,
}

/// (address of the input attributes, source peer, family).
type MemoKey = (usize, PeerId, Afi);

impl ExportCache {
    #[allow(clippy::too_many_arguments)]
    pub fn export(
        &mut self,
        config: &RibConfig,
        infos: &[Option<PeerInfo>],
        target_id: PeerId,
        target: &PeerInfo,
        prefix: &Prefix,
        best: &Path,
        policy: &dyn crate::policy::Policy,
    ) -> Option<Arc<PathAttrs>> {
        let afi = afi_of(prefix);
        let key = (Arc::as_ptr(&best.attrs) as usize, best.peer, afi);
        let exported = match self.memo.get(&key) {
            Some((_, exported)) => exported.clone(),
            None => {
                let source = infos.get(best.peer as usize).and_then(|i| i.as_ref());
                let exported = export_attrs(
                    config,
                    target_id,
                    target,
                    best.peer,
                    source,
                    afi,
                    &best.attrs,
                )
                .map(Arc::new);
                // The input Arc is held so its address cannot be reused while memoised.
                self.memo
                    .insert(key, (best.attrs.clone(), exported.clone()));
                exported
            }
        }?;
        policy.export(target, prefix, &exported)
    }
}

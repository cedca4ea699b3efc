//! The RIBs. One table maps each prefix to the paths learned for it, tagged by peer: the
//! per-peer Adj-RIB-In is that table's view by peer tag (one hash entry per prefix instead of
//! one per prefix and peer, see the README), the Loc-RIB is the same entry's ordered paths
//! (best first, then ECMP), and up peers that are exported the same routes share an update
//! group (`groups.rs`): one Adj-RIB-Out and one set of packed UPDATEs per group.

pub mod adj_in;
pub mod adj_out;
pub mod decision;
pub mod evpn;
pub mod groups;
pub mod host_blocks;
pub mod packing;
pub mod prefix_map;
pub mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::packet::{Afi, PathAttrs, Prefix};
use crate::policy::{AcceptAll, Policy};

pub use adj_out::AdjRibOut;
pub use groups::SharedFlush;

/// Index of a peer in the RIB; 0 is our own (locally originated) routes.
pub type PeerId = u32;
pub const LOCAL_PEER: PeerId = 0;

/// One path for a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub peer: PeerId,
    /// Kept through a peer's graceful restart, waiting to be refreshed (RFC 4724).
    pub stale: bool,
    pub attrs: Arc<PathAttrs>,
}

/// What we know of a peer for import, decision and export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub address: IpAddr,
    pub router_id: Ipv4Addr,
    /// The peer's AS (0 until its OPEN when any AS is accepted).
    pub asn: u32,
    /// Our AS on this session (the speaker's unless the peer configures its own).
    pub local_as: u32,
    pub ibgp: bool,
    pub rr_client: bool,
    /// Our address on this session: the next hop we advertise unless `next_hop` is set.
    pub local_address: IpAddr,
    pub local_v6_next_hop: Option<Ipv6Addr>,
    /// Configured next hop for routes we originate or rewrite on this session (its family).
    pub next_hop: Option<IpAddr>,
    pub next_hop_self: bool,
    pub max_prefix: Option<u64>,
    pub families: Vec<Afi>,
    /// LOCAL_PREF put on every route imported from this peer.
    pub import_local_pref: Option<u32>,
    /// Refuse eBGP UPDATEs whose AS_PATH does not start with the peer's AS.
    pub enforce_first_as: bool,
    /// Routes carrying any of these standard communities are not exported to this peer.
    pub export_deny_communities: Vec<u32>,
    /// Standard communities removed from what this peer is sent.
    pub export_strip_communities: Vec<u32>,
}

/// RIB-wide settings.
#[derive(Debug, Clone)]
pub struct RibConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Set when we reflect routes (RFC 4456); the id we add to CLUSTER_LIST.
    pub cluster_id: Option<Ipv4Addr>,
    /// Most paths handed to consumers as ECMP.
    pub max_paths: usize,
    /// Record best-path changes for subscribers.
    pub track_changes: bool,
    /// Export only locally originated routes (a host that must never be transit).
    pub export_local_only: bool,
}

/// A change of the best path(s) for a prefix: `paths` empty means unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestChange {
    pub prefix: Prefix,
    pub paths: Vec<Arc<PathAttrs>>,
}

/// Per-peer RIB state.
#[derive(Debug, Default)]
struct PeerRib {
    up: bool,
    /// Families (IPv4, IPv6) in which this peer may still have stale paths: set by a graceful
    /// down, cleared by the purge. An End-of-RIB from a peer with none (every fresh session)
    /// then skips a walk of the whole table (a tenth of the instructions of taking in a full
    /// table of 1,000,000 /32s).
    stale: [bool; 2],
    received: u64,
    /// The update group it is in while up (index into `Rib::groups`).
    group: Option<usize>,
    /// What it must be sent before it takes its group's changes.
    sync: Option<groups::Sync>,
    encode_ctx: crate::packet::encode::EncodeCtx,
}

/// Too many prefixes from one peer: the session must end with Cease/1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer {peer} sent {count} prefixes, above its limit of {limit}")]
pub struct MaxPrefixExceeded {
    pub peer: PeerId,
    pub count: u64,
    pub limit: u64,
}

/// All RIBs of a speaker. Pure: no I/O, no clock.
#[derive(Debug)]
pub struct Rib {
    pub config: RibConfig,
    table: table::Table,
    infos: Vec<Option<PeerInfo>>,
    peers: Vec<Option<PeerRib>>,
    policy: Arc<dyn Policy>,
    changes: Vec<BestChange>,
    /// Prefixes whose best path changed since the last flush (only kept while some up peer
    /// may have to hear of them, see `UpPeers`).
    dirty: Vec<Prefix>,
    up: UpPeers,
    /// Update groups of the up peers (freed slots reused).
    groups: Vec<Option<groups::Group>>,
    /// With one peer up: whether its group's Adj-RIB-Out holds anything (kept here, as it is
    /// read on every best-path change while a sole peer sends a full table).
    sole_holds: bool,
    /// One UPDATE's prefixes with the import policy's verdicts, kept between UPDATEs so the
    /// buffer (about 26 kB for a full 4,096-byte UPDATE of /32s) is allocated once.
    import_scratch: Vec<(Prefix, Option<Arc<PathAttrs>>)>,
    /// The attribute sets our own routes use, shared: routes announced one call at a time
    /// (an agent's containers, as they attach) then have one attribute set, which export and
    /// packing tell apart by address, so they leave in one UPDATE instead of one each.
    local_attrs: Vec<Arc<PathAttrs>>,
    /// Our own addresses (every session's local address and configured next hops, with how
    /// many peers name each; the router id is checked apart): a route pointing at one of them
    /// is not installed (RFC 4271 §6.3). Counted per peer so that thousands of peers coming
    /// and going update it in constant time; a handful of distinct addresses in practice.
    own_addresses: FxHashMap<IpAddr, u32>,
    /// L2VPN/EVPN routes, apart from the unicast table (`evpn.rs`).
    evpn: evpn::EvpnRib,
}

/// The addresses of ours a peer's configuration names.
fn own_addresses_of(info: &PeerInfo) -> impl Iterator<Item = IpAddr> {
    [
        Some(info.local_address),
        info.next_hop,
        info.local_v6_next_hop.map(IpAddr::V6),
    ]
    .into_iter()
    .flatten()
    // The placeholder of a session not yet up is nobody's address.
    .filter(|a| !a.is_unspecified())
}

/// How many peers are up, as far as export needs to know. With exactly one up, a change whose
/// best path came from that very peer cannot be sent anywhere (export never returns a route to
/// its source) unless it has to withdraw something it was sent; this is the common case of a
/// receiver taking in a full table from its only peer, where recording the change and looking
/// the prefix up again at the flush cost about a third of the import's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpPeers {
    None,
    One(PeerId),
    Several,
}

/// Identity of the best paths, to tell whether a change moved them.
fn best_key(entry: &table::Entry) -> BestKey {
    entry
        .best()
        .iter()
        .map(|p| (p.peer, Arc::as_ptr(&p.attrs)))
        .collect()
}

type BestKey = smallvec::SmallVec<[(PeerId, *const PathAttrs); 2]>;

/// Rerun the decision for an entry; returns whether the best set moved, and (when tracking)
/// the new best attributes.
fn rerank(
    entry: &mut table::Entry,
    infos: &[Option<PeerInfo>],
    max_paths: usize,
    track: bool,
    old_best: &BestKey,
) -> (bool, Vec<Arc<PathAttrs>>) {
    let ecmp = decision::select(entry.paths_mut(), infos, max_paths);
    entry.set_ecmp(ecmp);
    let changed = *old_best != best_key(entry);
    let best = if track {
        entry.best().iter().map(|p| p.attrs.clone()).collect()
    } else {
        Vec::new()
    };
    (changed, best)
}

impl Rib {
    pub fn new(config: RibConfig) -> Rib {
        Rib {
            config,
            table: table::Table::default(),
            infos: vec![None],
            peers: vec![Some(PeerRib::default())],
            policy: Arc::new(AcceptAll),
            changes: Vec::new(),
            dirty: Vec::new(),
            up: UpPeers::None,
            groups: Vec::new(),
            sole_holds: false,
            import_scratch: Vec::new(),
            local_attrs: Vec::new(),
            own_addresses: FxHashMap::default(),
            evpn: evpn::EvpnRib::default(),
        }
    }

    /// Whether `address` is one of ours (router id, a session's local address, a configured
    /// next hop).
    pub fn is_own_address(&self, address: &IpAddr) -> bool {
        *address == IpAddr::V4(self.config.router_id) || self.own_addresses.contains_key(address)
    }

    /// Count (`add`) or uncount a peer's addresses in `own_addresses`.
    fn count_own_addresses(&mut self, info: &PeerInfo, add: bool) {
        for a in own_addresses_of(info) {
            if add {
                *self.own_addresses.entry(a).or_default() += 1;
            } else if let Some(n) = self.own_addresses.get_mut(&a) {
                *n -= 1;
                if *n == 0 {
                    self.own_addresses.remove(&a);
                }
            }
        }
    }

    pub fn set_policy(&mut self, policy: Arc<dyn Policy>) {
        self.policy = policy;
    }

    /// Register a peer; returns its id.
    pub fn add_peer(&mut self, info: PeerInfo) -> PeerId {
        let slot = self
            .infos
            .iter()
            .skip(1)
            .position(Option::is_none)
            .map(|i| i + 1);
        let id = match slot {
            Some(i) => i,
            None => {
                self.infos.push(None);
                self.peers.push(None);
                self.infos.len() - 1
            }
        };
        self.count_own_addresses(&info, true);
        self.infos[id] = Some(info);
        self.peers[id] = Some(PeerRib::default());
        id as PeerId
    }

    /// Forget a peer and every route it sent.
    pub fn remove_peer(&mut self, peer: PeerId) {
        self.peer_down(peer, false);
        if let Some(old) = self.infos.get_mut(peer as usize).and_then(Option::take) {
            self.count_own_addresses(&old, false);
        }
        if let Some(slot) = self.peers.get_mut(peer as usize) {
            *slot = None;
        }
    }

    pub fn peer_info(&self, peer: PeerId) -> Option<&PeerInfo> {
        self.infos.get(peer as usize).and_then(|i| i.as_ref())
    }

    /// Update what we learned about a peer from its OPEN (router id, AS, families).
    pub fn set_peer_info(&mut self, peer: PeerId, info: PeerInfo) {
        let Some(slot) = self.infos.get_mut(peer as usize) else {
            return;
        };
        if let Some(old) = slot.replace(info.clone()) {
            self.count_own_addresses(&old, false);
        }
        self.count_own_addresses(&info, true);
        self.regroup(peer);
    }

    fn peer_mut(&mut self, peer: PeerId) -> Option<&mut PeerRib> {
        self.peers.get_mut(peer as usize).and_then(|p| p.as_mut())
    }

    /// Recompute `up` (on session changes only, so a scan of the peers is fine).
    fn recount_up(&mut self) {
        let mut up = self
            .peers
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.up))
            .map(|(id, _)| id as PeerId);
        self.up = match (up.next(), up.next()) {
            (None, _) => UpPeers::None,
            (Some(id), None) => UpPeers::One(id),
            (Some(_), Some(_)) => UpPeers::Several,
        };
        self.recount_sole_holds();
    }

    /// Recompute `sole_holds` (after a flush or a change of groups).
    fn recount_sole_holds(&mut self) {
        self.sole_holds = match self.up {
            UpPeers::One(only) => self
                .peers
                .get(only as usize)
                .and_then(|p| p.as_ref()?.group)
                .and_then(|gi| self.groups[gi].as_ref())
                .is_some_and(|g| !g.adj_out.is_empty()),
            _ => false,
        };
    }

    /// Whether a best-path change must be looked at by the next flush, given the peer the new
    /// best path came from (None when the prefix became unreachable).
    fn export_needed(&self, best_peer: Option<PeerId>) -> bool {
        match self.up {
            UpPeers::None => false,
            UpPeers::Several => true,
            // The sole up peer gets nothing for its own routes (nor for a prefix that is gone);
            // it only needs the change if it may hold an older advertisement of ours to
            // replace or withdraw (`sole_holds`: its group's Adj-RIB-Out, which holds none of
            // its own routes while it is the only member, only grows at a flush, which reads
            // the table as it is then).
            UpPeers::One(only) => best_peer.is_some_and(|p| p != only) || self.sole_holds,
        }
    }

    /// The session reached Established: everything we have goes out at the next flush.
    pub fn peer_up(&mut self, peer: PeerId) {
        self.leave_group(peer);
        if let Some(p) = self.peer_mut(peer) {
            p.up = true;
            self.join_group(peer, groups::Sync::Full);
        }
        self.evpn_peer_up(peer);
        self.recount_up();
    }

    /// The peer asked for our routes again (ROUTE-REFRESH).
    pub fn refresh(&mut self, peer: PeerId) {
        if let Some(p) = self.peer_mut(peer) {
            if p.up && p.group.is_some() {
                p.sync = Some(groups::Sync::Full);
            }
        }
    }

    /// The session went down. With `graceful`, its routes stay as stale (RFC 4724 helper).
    pub fn peer_down(&mut self, peer: PeerId, graceful: bool) {
        self.leave_group(peer);
        if let Some(p) = self.peer_mut(peer) {
            p.up = false;
            if graceful {
                p.stale = [true; 2];
            }
        }
        self.recount_up();
        self.evpn_peer_down(peer, graceful);
        if graceful {
            for entry in self.table.values_mut() {
                for path in entry.paths_mut().iter_mut().filter(|p| p.peer == peer) {
                    path.stale = true;
                }
            }
        } else {
            self.remove_paths_where(peer, None, |_| true);
        }
    }

    /// Whether a peer may still hold stale paths (graceful down, not yet purged).
    pub fn has_stale(&self, peer: PeerId) -> bool {
        self.peers
            .get(peer as usize)
            .and_then(|p| p.as_ref())
            .is_some_and(|p| p.stale.contains(&true))
            || self.evpn_has_stale(peer)
    }

    /// How many peer slots the RIB holds, in use or free (freed slots are reused, so this
    /// stays at the most peers there ever were at once).
    pub fn peer_slots(&self) -> usize {
        self.peers.len() - 1
    }

    /// Drop a peer's stale paths of one family (End-of-RIB received, or restart timer out).
    pub fn purge_stale(&mut self, peer: PeerId, afi: Option<Afi>) {
        let Some(p) = self.peer_mut(peer) else {
            return;
        };
        let pending = match afi {
            Some(Afi::Ipv4) => std::mem::take(&mut p.stale[0]),
            Some(Afi::Ipv6) => std::mem::take(&mut p.stale[1]),
            Some(Afi::L2vpnEvpn) => false,
            None => std::mem::take(&mut p.stale).contains(&true),
        };
        if matches!(afi, None | Some(Afi::L2vpnEvpn)) {
            self.evpn_purge_stale(peer);
        }
        if pending {
            self.remove_paths_where(peer, afi, |p| p.stale);
        }
    }

    fn remove_paths_where(&mut self, peer: PeerId, afi: Option<Afi>, pred: impl Fn(&Path) -> bool) {
        let doomed: Vec<Prefix> = self
            .table
            .iter()
            .filter(|(prefix, _)| afi.is_none_or(|a| crate::packet::prefix::afi_of(prefix) == a))
            .filter(|(_, e)| e.paths().iter().any(|p| p.peer == peer && pred(p)))
            .map(|(prefix, _)| prefix)
            .collect();
        for prefix in doomed {
            self.set_path(prefix, peer, None);
        }
    }

    /// Install, replace (`Some`) or remove (`None`) `peer`'s path for `prefix`, rerun the
    /// decision and note a best-path change. Returns (had a path before, has one now).
    pub(crate) fn set_path(
        &mut self,
        prefix: Prefix,
        peer: PeerId,
        attrs: Option<Arc<PathAttrs>>,
    ) -> (bool, bool) {
        let max_paths = self.config.max_paths;
        let track = self.config.track_changes;
        let new_path = |attrs: Arc<PathAttrs>| Path {
            peer,
            stale: false,
            attrs,
        };
        let (before, after, changed, best, best_peer) = match attrs {
            Some(attrs) => match self.table.insert_new(prefix, new_path(attrs)) {
                Ok(entry) => {
                    let best = if track {
                        vec![entry.paths()[0].attrs.clone()]
                    } else {
                        Vec::new()
                    };
                    (false, true, true, best, Some(peer))
                }
                Err((entry, path)) => {
                    let old_best = best_key(entry);
                    let pos = entry.paths().iter().position(|p| p.peer == peer);
                    match pos {
                        Some(i) => entry.paths_mut()[i] = path,
                        None => entry.push(path),
                    }
                    let (changed, best) = rerank(entry, &self.infos, max_paths, track, &old_best);
                    let best_peer = entry.paths().first().map(|p| p.peer);
                    (pos.is_some(), true, changed, best, best_peer)
                }
            },
            None => {
                let Some(entry) = self.table.get_mut(&prefix) else {
                    return (false, false);
                };
                let Some(i) = entry.paths().iter().position(|p| p.peer == peer) else {
                    return (false, false);
                };
                let old_best = best_key(entry);
                if entry.remove(i) {
                    let (changed, best) = rerank(entry, &self.infos, max_paths, track, &old_best);
                    let best_peer = entry.paths().first().map(|p| p.peer);
                    (true, false, changed, best, best_peer)
                } else {
                    self.table.remove(&prefix);
                    (true, false, true, Vec::new(), None)
                }
            }
        };
        if before != after {
            if let Some(p) = self.peer_mut(peer) {
                if after {
                    p.received += 1;
                } else {
                    p.received = p.received.saturating_sub(1);
                }
            }
        }
        if changed {
            if self.export_needed(best_peer) {
                self.dirty.push(prefix);
            }
            if self.config.track_changes {
                self.changes.push(BestChange {
                    prefix,
                    paths: best,
                });
            }
        }
        (before, after)
    }

    /// Best-path changes since the last call.
    pub fn take_changes(&mut self) -> Vec<BestChange> {
        std::mem::take(&mut self.changes)
    }

    /// The Loc-RIB entry for a prefix: paths best first, and how many are ECMP.
    pub fn lookup(&self, prefix: &Prefix) -> Option<(&[Path], usize)> {
        self.table.get(prefix).map(|e| (e.paths(), e.ecmp()))
    }

    /// Walk the Loc-RIB: (prefix, best paths).
    pub fn iter_best(&self) -> impl Iterator<Item = (Prefix, &[Path])> {
        self.table.iter().map(|(p, e)| (p, e.best()))
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Prefixes accepted from a peer (its Adj-RIB-In size).
    pub fn received_count(&self, peer: PeerId) -> u64 {
        self.peers
            .get(peer as usize)
            .and_then(|p| p.as_ref())
            .map_or(0, |p| p.received)
    }

    /// Prefixes currently advertised to a peer (its Adj-RIB-Out size).
    pub fn advertised_count(&self, peer: PeerId) -> u64 {
        self.group_advertised(peer) + self.evpn_advertised_count(peer)
    }

    /// A peer's Adj-RIB-In: every path it sent that we hold.
    pub fn adj_in(&self, peer: PeerId) -> impl Iterator<Item = (Prefix, &Path)> {
        self.table.iter().flat_map(move |(prefix, e)| {
            e.paths()
                .iter()
                .filter(move |p| p.peer == peer)
                .map(move |p| (prefix, p))
        })
    }
}

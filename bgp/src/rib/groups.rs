//! Update groups: peers that would be exported exactly the same routes share one export pass
//! per flush, one Adj-RIB-Out and one set of packed UPDATEs, handed to every member as shared
//! [`Bytes`] (reference-counted slices of one buffer, not copies).
//!
//! Two up peers are in one group when everything export reads of them is equal: their
//! `PeerInfo` with the import-only and identity fields blanked (so a field added to `PeerInfo`
//! later splits groups rather than merging peers it should not), the encoding they negotiated,
//! and, unless the policy says its export does not look at the peer
//! ([`Policy::export_depends_on_peer`]), the peer itself.
//!
//! The one thing members of a group differ in is their own routes: export never sends a peer
//! a route it is the source of. So the group's export runs for no particular member (every
//! member's routes included), its Adj-RIB-Out records the source peer of each route, and a
//! flush packs its changes grouped by source peer (an attribute set comes from one source;
//! a reflected one carries that source's ORIGINATOR_ID): member M is handed the buffer
//! without the slice of M's own routes. Where the best path of a prefix moves from one member
//! to another, those two get a small UPDATE of their own (the new source withdraws what it had
//! from the old; the old source gets the route if the group's attributes did not change).
//!
//! A group of one member leaves that member's routes out of its Adj-RIB-Out (as a per-peer
//! Adj-RIB-Out did): a speaker with a ToR or two keeps nothing more than before. When a second
//! member joins, the group walks the table once to take the first member's routes in.
//!
//! A member that joins (new session, route refresh) gets its dump from the group's
//! Adj-RIB-Out, not from a walk of the table. Members never wait on each other: the core hands
//! each session its buffers through the session's own queue, which holds references to the
//! shared buffers only.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use rustc_hash::FxHashMap;

use super::adj_out::ExportCache;
use super::{PeerId, PeerInfo, Rib};
use crate::packet::encode::{EncodeCtx, Packer};
use crate::packet::prefix::afi_of;
use crate::packet::{Afi, PathAttrs, Prefix};

/// A peer id no peer has: the target of a group's export (which excludes nobody's routes).
const NO_PEER: PeerId = PeerId::MAX;

/// What makes two peers' exports equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GroupKey {
    info: PeerInfo,
    four_octet_as: bool,
    max_len: usize,
    /// Set when the policy's export looks at the peer: a group of its own.
    solo: Option<PeerId>,
}

impl GroupKey {
    pub(super) fn new(peer: PeerId, info: &PeerInfo, ctx: EncodeCtx, per_peer: bool) -> Self {
        let mut info = info.clone();
        // Read by import only, or naming the peer (export never looks at them).
        info.address = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        info.router_id = std::net::Ipv4Addr::UNSPECIFIED;
        info.max_prefix = None;
        info.import_local_pref = None;
        info.enforce_first_as = true;
        if info.ibgp {
            // The peer's AS is ours on iBGP; export reads it for eBGP only.
            info.asn = info.local_as;
        }
        GroupKey {
            info,
            four_octet_as: ctx.four_octet_as,
            max_len: ctx.max_len,
            solo: per_peer.then_some(peer),
        }
    }
}

/// One route in a group's Adj-RIB-Out: what was sent, and whose route it is.
#[derive(Debug, Clone)]
pub(super) struct Sent {
    pub(super) attrs: Arc<PathAttrs>,
    pub(super) source: PeerId,
}

/// What a member still has to be sent before it takes the group's changes.
#[derive(Debug)]
pub(super) enum Sync {
    /// Everything, then End-of-RIB (new session, route refresh).
    Full,
    /// The difference from what it was sent in another group (its configuration changed).
    Diff(FxHashMap<Prefix, Arc<PathAttrs>>),
}

#[derive(Debug)]
pub(super) struct Group {
    pub(super) key: GroupKey,
    pub(super) members: Vec<PeerId>,
    /// With one member: its own routes are left out of `adj_out`.
    pub(super) exclude: Option<PeerId>,
    pub(super) adj_out: FxHashMap<Prefix, Sent>,
    /// Routes in `adj_out` by source peer, so a member's advertised count is one lookup.
    pub(super) by_source: FxHashMap<PeerId, u64>,
    /// Walk the whole table at the next flush (new group, or a second member).
    pub(super) full_pass: bool,
}

impl Group {
    fn new(key: GroupKey, first: PeerId) -> Group {
        Group {
            key,
            members: vec![first],
            exclude: Some(first),
            adj_out: FxHashMap::default(),
            by_source: FxHashMap::default(),
            full_pass: true,
        }
    }

    /// Routes `member` holds from this group.
    pub(super) fn advertised(&self, member: PeerId) -> u64 {
        let own = if self.exclude == Some(member) {
            0
        } else {
            self.by_source.get(&member).copied().unwrap_or(0)
        };
        self.adj_out.len() as u64 - own
    }

    /// What `member` holds from this group.
    fn view(&self, member: PeerId) -> impl Iterator<Item = (&Prefix, &Sent)> {
        self.adj_out.iter().filter(move |(_, s)| s.source != member)
    }

    fn count(&mut self, source: PeerId, add: bool) {
        if add {
            *self.by_source.entry(source).or_default() += 1;
        } else if let Some(n) = self.by_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.by_source.remove(&source);
            }
        }
    }
}

/// Announcements and withdrawals to pack, grouped by attribute set.
#[derive(Default)]
struct Batch {
    index: FxHashMap<(usize, Afi), usize>,
    announce: Vec<(Arc<PathAttrs>, Afi, Vec<Prefix>)>,
    withdraw_v4: Vec<Prefix>,
    withdraw_v6: Vec<Prefix>,
}

impl Batch {
    fn announce(&mut self, prefix: Prefix, attrs: &Arc<PathAttrs>) {
        let afi = afi_of(&prefix);
        let key = (Arc::as_ptr(attrs) as usize, afi);
        let idx = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.announce.push((attrs.clone(), afi, Vec::new()));
                self.index.insert(key, self.announce.len() - 1);
                self.announce.len() - 1
            }
        };
        self.announce[idx].2.push(prefix);
    }

    fn withdraw(&mut self, prefix: Prefix) {
        match afi_of(&prefix) {
            Afi::Ipv4 => self.withdraw_v4.push(prefix),
            _ => self.withdraw_v6.push(prefix),
        }
    }

    fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.withdraw_v4.is_empty() && self.withdraw_v6.is_empty()
    }

    /// Pack withdrawals, then announcements; returns (messages, announced, withdrawn).
    fn pack(&self, packer: &mut Packer, out: &mut Vec<u8>) -> Counts {
        let before = packer.messages;
        packer.withdraw(Afi::Ipv4, &self.withdraw_v4, out);
        packer.withdraw(Afi::Ipv6, &self.withdraw_v6, out);
        let mut announced = 0;
        for (attrs, afi, prefixes) in &self.announce {
            announced += prefixes.len() as u64;
            packer.announce(*afi, attrs, prefixes, out);
        }
        Counts {
            messages: packer.messages - before,
            announced,
            withdrawn: (self.withdraw_v4.len() + self.withdraw_v6.len()) as u64,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    messages: u64,
    announced: u64,
    withdrawn: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.messages += o.messages;
        self.announced += o.announced;
        self.withdrawn += o.withdrawn;
    }
}

/// One buffer of UPDATEs packed by source peer: each source's routes are one slice of it.
struct Packed {
    bytes: Bytes,
    total: Counts,
    by_source: FxHashMap<PeerId, (Range<usize>, Counts)>,
}

impl Packed {
    /// Pack `batches` (by source, in order).
    fn new(ctx: EncodeCtx, batches: &[(PeerId, Batch)]) -> Packed {
        let mut packer = Packer::new(ctx);
        let mut out = Vec::new();
        let mut total = Counts::default();
        let mut by_source = FxHashMap::default();
        for (source, batch) in batches {
            let start = out.len();
            let counts = batch.pack(&mut packer, &mut out);
            total += counts;
            by_source.insert(*source, (start..out.len(), counts));
        }
        Packed {
            bytes: Bytes::from(out),
            total,
            by_source,
        }
    }

    /// The buffer without `member`'s own routes: at most two slices, sharing the buffer.
    fn for_member(&self, member: PeerId) -> (Vec<Bytes>, Counts) {
        let mut parts = Vec::with_capacity(2);
        let mut counts = self.total;
        match self.by_source.get(&member) {
            Some((range, own)) => {
                if range.start > 0 {
                    parts.push(self.bytes.slice(..range.start));
                }
                if range.end < self.bytes.len() {
                    parts.push(self.bytes.slice(range.end..));
                }
                counts.messages -= own.messages;
                counts.announced -= own.announced;
                counts.withdrawn -= own.withdrawn;
            }
            None => {
                if !self.bytes.is_empty() {
                    parts.push(self.bytes.clone());
                }
            }
        }
        (parts, counts)
    }
}

/// What one flush hands one peer: UPDATE bytes in order, most of them shared with the other
/// members of its group.
#[derive(Debug, Default)]
pub struct SharedFlush {
    pub peer: PeerId,
    pub parts: Vec<Bytes>,
    pub messages: u64,
    pub announced: u64,
    pub withdrawn: u64,
    /// End-of-RIB markers were sent (after a full sync).
    pub end_of_rib: bool,
}

impl SharedFlush {
    fn add(&mut self, parts: Vec<Bytes>, counts: Counts) {
        self.parts.extend(parts);
        self.messages += counts.messages;
        self.announced += counts.announced;
        self.withdrawn += counts.withdrawn;
    }
}

/// Sort batches by source, for a deterministic order on the wire.
fn sorted(batches: FxHashMap<PeerId, Batch>) -> Vec<(PeerId, Batch)> {
    let mut v: Vec<(PeerId, Batch)> = batches.into_iter().filter(|(_, b)| !b.is_empty()).collect();
    v.sort_unstable_by_key(|(s, _)| *s);
    v
}

impl Rib {
    /// The group `peer` belongs in now, by its current info and encoding.
    fn group_key(&self, peer: PeerId) -> Option<GroupKey> {
        let info = self.infos.get(peer as usize)?.as_ref()?;
        let state = self.peers.get(peer as usize)?.as_ref()?;
        Some(GroupKey::new(
            peer,
            info,
            state.encode_ctx,
            self.policy.export_depends_on_peer(),
        ))
    }

    /// Put an up peer in its group (creating it), to be synced with `sync`.
    pub(super) fn join_group(&mut self, peer: PeerId, sync: Sync) {
        let Some(key) = self.group_key(peer) else {
            return;
        };
        let found = self
            .groups
            .iter_mut()
            .enumerate()
            .find_map(|(gi, g)| g.as_mut().filter(|g| g.key == key).map(|g| (gi, g)));
        let gi = match found {
            Some((gi, g)) => {
                if g.exclude.take().is_some() {
                    // The first member's own routes were left out: take them in now.
                    g.full_pass = true;
                }
                g.members.push(peer);
                gi
            }
            None => {
                let group = Some(Group::new(key, peer));
                match self.groups.iter().position(Option::is_none) {
                    Some(gi) => {
                        self.groups[gi] = group;
                        gi
                    }
                    None => {
                        self.groups.push(group);
                        self.groups.len() - 1
                    }
                }
            }
        };
        if let Some(p) = self.peer_mut(peer) {
            p.group = Some(gi);
            p.sync = Some(sync);
        }
    }

    /// Take a peer out of its group; returns what it holds from it (unless it was still to
    /// be synced in full, when it holds nothing we know of).
    pub(super) fn leave_group(
        &mut self,
        peer: PeerId,
    ) -> Option<FxHashMap<Prefix, Arc<PathAttrs>>> {
        let p = self.peer_mut(peer)?;
        let gi = p.group.take()?;
        let sync = p.sync.take();
        let group = self.groups.get_mut(gi)?.as_mut()?;
        let held = match sync {
            Some(Sync::Full) => None,
            Some(Sync::Diff(held)) => Some(held),
            None => Some(
                group
                    .view(peer)
                    .map(|(prefix, s)| (*prefix, s.attrs.clone()))
                    .collect(),
            ),
        };
        group.members.retain(|&m| m != peer);
        match group.members.as_slice() {
            [] => self.groups[gi] = None,
            [only] if group.exclude.is_none() => {
                // A group of one keeps none of its member's own routes.
                let only = *only;
                group.adj_out.retain(|_, s| s.source != only);
                group.by_source.remove(&only);
                group.exclude = Some(only);
            }
            _ => {}
        }
        held
    }

    /// The peer's info or encoding changed: if it is up and now belongs in another group,
    /// move it there, to be sent the difference.
    pub(super) fn regroup(&mut self, peer: PeerId) {
        let Some(gi) = self
            .peers
            .get(peer as usize)
            .and_then(|p| p.as_ref()?.group)
        else {
            return;
        };
        let key = self.group_key(peer);
        if self.groups[gi].as_ref().map(|g| &g.key) == key.as_ref() {
            return;
        }
        let sync = match self.leave_group(peer) {
            Some(held) => Sync::Diff(held),
            None => Sync::Full,
        };
        self.join_group(peer, sync);
        self.recount_sole_holds();
    }

    /// The update group an up peer is in: peers with equal values share their UPDATEs.
    pub fn update_group(&self, peer: PeerId) -> Option<usize> {
        self.peers.get(peer as usize)?.as_ref()?.group
    }

    /// How many routes `peer` holds from its group (what it was sent).
    pub(super) fn group_advertised(&self, peer: PeerId) -> u64 {
        let Some(p) = self.peers.get(peer as usize).and_then(|p| p.as_ref()) else {
            return 0;
        };
        if matches!(p.sync, Some(Sync::Full)) {
            return 0;
        }
        match (p.group, &p.sync) {
            (_, Some(Sync::Diff(held))) => held.len() as u64,
            (Some(gi), _) => self.groups[gi].as_ref().map_or(0, |g| g.advertised(peer)),
            _ => 0,
        }
    }

    /// Produce the UPDATEs every up peer needs since the last flush, shared within groups.
    pub fn flush_shared(&mut self) -> Vec<SharedFlush> {
        let dirty = std::mem::take(&mut self.dirty);
        let full: Vec<PeerId> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.as_ref()
                    .is_some_and(|p| matches!(p.sync, Some(Sync::Full)))
            })
            .map(|(id, _)| id as PeerId)
            .collect();
        let mut flushes = Vec::new();
        for gi in 0..self.groups.len() {
            let Some(mut group) = self.groups[gi].take() else {
                continue;
            };
            self.flush_group(&mut group, &dirty, &mut flushes);
            self.groups[gi] = Some(group);
        }
        self.flush_tails(&full, &mut flushes);
        self.recount_sole_holds();
        flushes.retain(|f| !f.parts.is_empty());
        flushes
    }

    fn flush_group(&mut self, group: &mut Group, dirty: &[Prefix], out: &mut Vec<SharedFlush>) {
        let syncing: Vec<PeerId> = group
            .members
            .iter()
            .copied()
            .filter(|&m| {
                self.peers[m as usize]
                    .as_ref()
                    .is_some_and(|p| p.sync.is_some())
            })
            .collect();
        if !group.full_pass && dirty.is_empty() && syncing.is_empty() {
            return;
        }
        let Some(target) = self.infos[group.members[0] as usize].clone() else {
            return;
        };
        let ctx = self.peers[group.members[0] as usize]
            .as_ref()
            .map(|p| p.encode_ctx)
            .unwrap_or_default();
        // 1. The group's export pass: changes by source peer, and the few member-specific
        // ones where a prefix moved between two members' routes.
        let mut batches: FxHashMap<PeerId, Batch> = FxHashMap::default();
        let mut personal: Vec<(PeerId, Prefix, Option<Arc<PathAttrs>>)> = Vec::new();
        let mut cache = ExportCache::default();
        let exclude = group.exclude.unwrap_or(NO_PEER);
        let mut consider = |prefix: &Prefix, group: &mut Group| {
            let best = self.table.get(prefix).and_then(|e| e.paths().first());
            let exported = best.and_then(|best| {
                cache
                    .export(
                        &self.config,
                        &self.infos,
                        exclude,
                        &target,
                        prefix,
                        best,
                        &*self.policy,
                    )
                    .map(|a| (a, best.peer))
            });
            match (group.adj_out.get_mut(prefix), exported) {
                (None, None) => {}
                (Some(_), None) => {
                    if let Some(old) = group.adj_out.remove(prefix) {
                        group.count(old.source, false);
                        batches.entry(old.source).or_default().withdraw(*prefix);
                    }
                }
                (None, Some((attrs, source))) => {
                    batches.entry(source).or_default().announce(*prefix, &attrs);
                    group.adj_out.insert(*prefix, Sent { attrs, source });
                    group.count(source, true);
                }
                (Some(old), Some((attrs, source))) => {
                    let same = Arc::ptr_eq(&old.attrs, &attrs) || *old.attrs == *attrs;
                    if same && old.source == source {
                        return;
                    }
                    let old_source = std::mem::replace(&mut old.source, source);
                    if !same {
                        old.attrs = attrs.clone();
                        batches.entry(source).or_default().announce(*prefix, &attrs);
                    }
                    if old_source != source {
                        // The new source held the route from the old one and gets nothing
                        // of its own; the old source gets it now, unless the group's
                        // announcement (which only skips the new source) already carries it.
                        personal.push((source, *prefix, None));
                        if same {
                            personal.push((old_source, *prefix, Some(attrs)));
                        }
                        group.count(old_source, false);
                        group.count(source, true);
                    }
                }
            }
        };
        if std::mem::take(&mut group.full_pass) {
            for prefix in self.table.keys() {
                consider(&prefix, group);
            }
        }
        for prefix in dirty {
            consider(prefix, group);
        }
        // 2. Members up to date take the group's changes, packed once.
        let incremental: Vec<PeerId> = group
            .members
            .iter()
            .copied()
            .filter(|m| !syncing.contains(m))
            .collect();
        let batches = sorted(batches);
        if !incremental.is_empty() && !batches.is_empty() {
            let packed = Packed::new(ctx, &batches);
            for &m in &incremental {
                let (parts, counts) = packed.for_member(m);
                let mut f = SharedFlush {
                    peer: m,
                    ..SharedFlush::default()
                };
                f.add(parts, counts);
                out.push(f);
            }
        }
        let mut personal_by_member: FxHashMap<PeerId, Batch> = FxHashMap::default();
        for (m, prefix, attrs) in personal {
            if !incremental.contains(&m) {
                continue;
            }
            let b = personal_by_member.entry(m).or_default();
            match attrs {
                Some(a) => b.announce(prefix, &a),
                None => b.withdraw(prefix),
            }
        }
        for (m, batch) in sorted(personal_by_member) {
            let mut packer = Packer::new(ctx);
            let mut bytes = Vec::new();
            let counts = batch.pack(&mut packer, &mut bytes);
            flush_for(out, m).add(vec![Bytes::from(bytes)], counts);
        }
        // 3. Members joining get the group's Adj-RIB-Out: in full (one dump shared by all
        // joining now, by source as above), or the difference from what they hold.
        let mut dump: Option<Packed> = None;
        for m in syncing {
            let Some(sync) = self.peers[m as usize].as_mut().and_then(|p| p.sync.take()) else {
                continue;
            };
            match sync {
                Sync::Full => {
                    let packed = dump.get_or_insert_with(|| {
                        let mut by_source: FxHashMap<PeerId, Batch> = FxHashMap::default();
                        for (prefix, s) in &group.adj_out {
                            by_source
                                .entry(s.source)
                                .or_default()
                                .announce(*prefix, &s.attrs);
                        }
                        Packed::new(ctx, &sorted(by_source))
                    });
                    let (parts, counts) = packed.for_member(m);
                    flush_for(out, m).add(parts, counts);
                }
                Sync::Diff(mut held) => {
                    let mut batch = Batch::default();
                    for (prefix, s) in group.view(m) {
                        match held.remove(prefix) {
                            Some(a) if Arc::ptr_eq(&a, &s.attrs) || *a == *s.attrs => {}
                            _ => batch.announce(*prefix, &s.attrs),
                        }
                    }
                    for prefix in held.into_keys() {
                        batch.withdraw(prefix);
                    }
                    let mut packer = Packer::new(ctx);
                    let mut bytes = Vec::new();
                    let counts = batch.pack(&mut packer, &mut bytes);
                    if !bytes.is_empty() {
                        flush_for(out, m).add(vec![Bytes::from(bytes)], counts);
                    }
                }
            }
        }
    }
}

/// The flush of `peer` in `out`, added if there is none yet.
pub(super) fn flush_for(out: &mut Vec<SharedFlush>, peer: PeerId) -> &mut SharedFlush {
    let i = match out.iter().rposition(|f| f.peer == peer) {
        Some(i) => i,
        None => {
            out.push(SharedFlush {
                peer,
                ..SharedFlush::default()
            });
            out.len() - 1
        }
    };
    &mut out[i]
}

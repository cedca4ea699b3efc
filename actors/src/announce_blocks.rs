//! What this host announces, and to whom: its address blocks to the reflectors, its
//! containers' /32s to its ToRs. Pure functions; the route actor applies them.
//!
//! # Why blocks
//! On a flat segment every host needs a route to every other host's containers. A /32 per
//! container at every host is thousands of routes per host with thousands of hosts; the
//! master hands each host its reserve as aligned CIDR blocks (see `netmaster`'s
//! `alloc::block_start`), so the host announces the maximal aligned blocks (of at least two
//! addresses) inside its containers' and reserved ("prepared") addresses, and a /32 only for
//! a container outside every block. A reserved address without a container is routed to the
//! gateway port here already (where the pipeline drops what comes for it), so covering it
//! costs nothing. An address the master takes back from the reserve for another host stays
//! in our block until our audit drops it; meanwhile the other host's /32 wins at every host
//! by longest match.
//!
//! # Who gets what
//! One speaker, one Loc-RIB: the sets differ per peer by internal standard communities and
//! the speaker's per-peer export filters (`PeerConfig.export_deny_communities` and
//! `export_strip_communities`):
//! - a block carries [`BLOCK_COMMUNITY`], a container's /32 inside a block
//!   [`COVERED_COMMUNITY`], any other container /32 nothing;
//! - a ToR denies the block mark and strips both: it gets every container's /32, as before
//!   blocks existed, never a block or a reserved address, and never sees a mark;
//! - a reflector denies the covered mark: it gets the blocks and the uncovered /32s. The block
//!   mark goes on to the other agents (reflectors pass communities on), which is how a
//!   receiving agent tells a host's block from any other prefix (it installs no other
//!   non-/32, see [`crate::routes::RouteTable::learn`]).

use ipnet::Ipv4Net;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// Marks a host's address block (65534:1, from the private-use AS range; never leaves the
/// fabric: ToRs strip it).
pub const BLOCK_COMMUNITY: u32 = 0xFFFE_0001;
/// Marks a container /32 inside one of the host's blocks (65534:2): for the ToRs only.
pub const COVERED_COMMUNITY: u32 = 0xFFFE_0002;

/// What kind of announcement a prefix is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// A container /32 outside every block: for everyone.
    Plain,
    /// An aligned block of containers' and reserved addresses: for the reflectors.
    Block,
    /// A container /32 inside a block: for the ToRs.
    Covered,
}

impl Mark {
    /// The communities an announcement of this kind carries.
    pub fn communities(self) -> Vec<u32> {
        match self {
            Mark::Plain => Vec::new(),
            Mark::Block => vec![BLOCK_COMMUNITY],
            Mark::Covered => vec![COVERED_COMMUNITY],
        }
    }
}

/// The maximal aligned CIDR blocks of at least two addresses that lie entirely inside `set`,
/// in address order. Each run of consecutive addresses is cut the usual way (the largest
/// aligned block that starts at the run's next address and does not pass its end), so the
/// blocks are disjoint and every address of `set` outside them is a lone /32 of the cut.
pub fn blocks(set: &BTreeSet<Ipv4Addr>) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    let mut addrs = set.iter().map(|a| u64::from(u32::from(*a))).peekable();
    while let Some(first) = addrs.next() {
        let mut last = first;
        while addrs.peek() == Some(&(last + 1)) {
            last += 1;
            addrs.next();
        }
        cut_run(first, last, &mut out);
    }
    out
}

/// Appends the blocks (two addresses or more) of the run `first..=last`.
fn cut_run(first: u64, last: u64, out: &mut Vec<Ipv4Net>) {
    let mut at = first;
    while at <= last {
        // The largest power of two that `at` is aligned to and that fits in what is left.
        let aligned = if at == 0 { 32 } else { at.trailing_zeros() };
        let fits = 63 - (last - at + 1).leading_zeros();
        let bits = aligned.min(fits).min(32);
        if bits >= 1 {
            if let Ok(net) = Ipv4Net::new(Ipv4Addr::from(at as u32), (32 - bits) as u8) {
                out.push(net);
            }
        }
        at += 1 << bits;
    }
}

/// Every announcement this host should have, by prefix: the blocks of its containers'
/// (`local`) and reserved (`prepared`) addresses, and each container's /32, marked covered
/// when a block holds it.
pub fn announcements<'a>(
    local: &BTreeSet<Ipv4Addr>,
    prepared: impl IntoIterator<Item = &'a Ipv4Addr>,
) -> BTreeMap<Ipv4Net, Mark> {
    let mut all: BTreeSet<Ipv4Addr> = local.clone();
    all.extend(prepared);
    let blocks = blocks(&all);
    let mut out: BTreeMap<Ipv4Net, Mark> = blocks.iter().map(|b| (*b, Mark::Block)).collect();
    for ip in local {
        let covered = covering(&blocks, *ip).is_some();
        let net = crate::routes::host_net(*ip);
        out.insert(net, if covered { Mark::Covered } else { Mark::Plain });
    }
    out
}

/// The block of `blocks` (sorted, disjoint) that holds `ip`.
fn covering(blocks: &[Ipv4Net], ip: Ipv4Addr) -> Option<Ipv4Net> {
    let i = blocks.partition_point(|b| b.network() <= ip);
    i.checked_sub(1)
        .map(|i| blocks[i])
        .filter(|b| b.contains(&ip))
}

/// The speaker calls that turn announcements `from` into `to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceChanges {
    /// Prefixes to (re-)announce, by mark, in the order to send them: uncovered /32s, then
    /// blocks, then covered /32s (which leave the reflectors). A /32 that a block now covers
    /// leaves the reflectors only after the block is there, and one a block no longer
    /// covers is back before the block goes.
    pub announce: Vec<(Mark, Vec<Ipv4Net>)>,
    /// Prefixes to withdraw, after the announcements.
    pub withdraw: Vec<Ipv4Net>,
}

impl AnnounceChanges {
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.withdraw.is_empty()
    }
}

pub fn changes(from: &BTreeMap<Ipv4Net, Mark>, to: &BTreeMap<Ipv4Net, Mark>) -> AnnounceChanges {
    let mut announce = Vec::new();
    for mark in [Mark::Plain, Mark::Block, Mark::Covered] {
        let prefixes: Vec<Ipv4Net> = to
            .iter()
            .filter(|(p, m)| **m == mark && from.get(p) != Some(m))
            .map(|(p, _)| *p)
            .collect();
        if !prefixes.is_empty() {
            announce.push((mark, prefixes));
        }
    }
    let withdraw = from
        .keys()
        .filter(|p| !to.contains_key(p))
        .copied()
        .collect();
    AnnounceChanges { announce, withdraw }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    /// Every address of `b`.
    fn addrs(b: Ipv4Net) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(b.network())..=u32::from(b.broadcast())).map(Ipv4Addr::from)
    }

    fn range(a: &str, n: u32) -> BTreeSet<Ipv4Addr> {
        let start = u32::from(a.parse::<Ipv4Addr>().unwrap());
        (0..n).map(|i| Ipv4Addr::from(start + i)).collect()
    }

    #[test]
    fn runs_are_cut_into_maximal_aligned_blocks() {
        assert_eq!(blocks(&range("10.1.2.8", 8)), vec![net("10.1.2.8/29")]);
        // 24 addresses from an aligned /27: a /28 and a /29.
        assert_eq!(
            blocks(&range("10.1.2.32", 24)),
            vec![net("10.1.2.32/28"), net("10.1.2.48/29")]
        );
        // Unaligned: .7 alone, .8/29, .16/31, .18 alone.
        assert_eq!(
            blocks(&range("10.1.2.7", 12)),
            vec![net("10.1.2.8/29"), net("10.1.2.16/31")]
        );
        assert!(blocks(&range("10.1.2.9", 1)).is_empty(), "no /32 blocks");
        assert!(blocks(&[].into()).is_empty());
        // The ends of the address space.
        assert_eq!(blocks(&range("0.0.0.0", 4)), vec![net("0.0.0.0/30")]);
        assert_eq!(
            blocks(&range("255.255.255.252", 4)),
            vec![net("255.255.255.252/30")]
        );
    }

    #[test]
    fn containers_inside_a_block_are_covered_the_others_plain() {
        let local: BTreeSet<Ipv4Addr> =
            ["10.1.2.9".parse().unwrap(), "10.1.2.40".parse().unwrap()].into();
        let prepared = range("10.1.2.8", 8);
        let a = announcements(&local, &prepared);
        assert_eq!(
            a,
            [
                (net("10.1.2.8/29"), Mark::Block),
                (net("10.1.2.9/32"), Mark::Covered),
                (net("10.1.2.40/32"), Mark::Plain),
            ]
            .into()
        );
        // Prepared addresses alone make no /32: only blocks.
        let none = announcements(&BTreeSet::new(), &range("10.1.2.7", 1));
        assert!(none.is_empty());
    }

    #[test]
    fn changes_send_only_the_difference_in_a_safe_order() {
        let local: BTreeSet<Ipv4Addr> = ["10.1.2.9".parse().unwrap()].into();
        let before = announcements(&local, &BTreeSet::new());
        assert_eq!(before, [(net("10.1.2.9/32"), Mark::Plain)].into());
        // A refill makes a block around the container: the block first, then the /32 marked.
        let after = announcements(&local, &range("10.1.2.8", 8));
        let c = changes(&before, &after);
        assert_eq!(
            c.announce,
            vec![
                (Mark::Block, vec![net("10.1.2.8/29")]),
                (Mark::Covered, vec![net("10.1.2.9/32")])
            ]
        );
        assert!(c.withdraw.is_empty());
        assert!(changes(&after, &after).is_empty());
        // The reserve given back: the /32 unmarked first, then the block withdrawn.
        let c = changes(&after, &before);
        assert_eq!(c.announce, vec![(Mark::Plain, vec![net("10.1.2.9/32")])]);
        assert_eq!(c.withdraw, vec![net("10.1.2.8/29")]);
        // The container gone too: everything withdrawn.
        let c = changes(&after, &BTreeMap::new());
        assert!(c.announce.is_empty());
        assert_eq!(c.withdraw, vec![net("10.1.2.8/29"), net("10.1.2.9/32")]);
    }

    proptest! {
        /// Every address of the set is covered exactly once by the blocks and the lone /32s
        /// left over; no block covers an address outside the set; blocks are maximal (the
        /// aligned block twice the size holds an address outside the set).
        #[test]
        fn blocks_cover_the_set_exactly(
            base in 0u32..=u32::MAX - 512,
            offsets in proptest::collection::btree_set(0u32..512, 0..200),
        ) {
            let set: BTreeSet<Ipv4Addr> = offsets.iter().map(|o| Ipv4Addr::from(base + o)).collect();
            let bs = blocks(&set);
            let mut covered = BTreeMap::<Ipv4Addr, usize>::new();
            for b in &bs {
                prop_assert!(b.prefix_len() <= 31, "{b} is a /32");
                for ip in addrs(*b) {
                    prop_assert!(set.contains(&ip), "{b} covers {ip}, not in the set");
                    *covered.entry(ip).or_default() += 1;
                }
                if let Some(parent) = b.supernet() {
                    prop_assert!(
                        addrs(parent).any(|ip| !set.contains(&ip)),
                        "{b} is not maximal: {parent} is in the set"
                    );
                }
            }
            prop_assert!(covered.values().all(|n| *n == 1), "an address in two blocks");
            // With the leftovers as /32s, every address once.
            let leftovers = set.iter().filter(|ip| !covered.contains_key(ip)).count();
            prop_assert_eq!(covered.len() + leftovers, set.len());
            // And the announcements agree: a container is covered exactly when a block holds it.
            let a = announcements(&set, std::iter::empty());
            for ip in &set {
                let mark = a[&crate::routes::host_net(*ip)];
                prop_assert_eq!(mark == Mark::Covered, covered.contains_key(ip));
            }
        }
    }
}

//! IPv4 host routes (/32s) grouped by their /26, the table's layout for the fabric's own
//! routes: containers take their addresses from pools, so a /26 that holds one container's
//! /32 soon holds many.
//!
//! A /26 with few /32s keeps them in a short sorted list; past [`SPARSE_MAX`] it becomes a
//! block of 64 slots indexed by the address's last six bits, 16 bytes a route when full and
//! no hashing at all. A full table of /32s then needs a hash lookup per /26 (a map a
//! sixty-fourth the size, which stays in cache) instead of a slot per /32 in a map that does
//! not, and it never rehashes its routes as it grows: blocks are allocated once, where a
//! single map of 1,000,000 /32s moves every route at each doubling and faults in twice the
//! memory it ends with (a fresh page costs about 2 us to fault in on the test machine).

use super::prefix_map::{prefetch_read, PrefixMap};
use super::table::Entry;

/// Address bits a block covers: 64 /32s, a /26.
const BLOCK_BITS: u32 = 6;
const BLOCK_SLOTS: usize = 1 << BLOCK_BITS;

/// Most /32s a /26 keeps as a sorted list before it becomes a 64-slot block: a block costs
/// 1 KiB, a list entry 24 bytes, so this keeps a block at most about 60 bytes a route, and a
/// list short enough that inserting into it in order stays cheap.
const SPARSE_MAX: usize = 16;

/// A dense block shrinks back to a list below this many routes (half of [`SPARSE_MAX`], so
/// a /26 hovering around the limit does not convert back and forth).
const SHRINK_BELOW: usize = SPARSE_MAX / 2;

/// The /32s of one /26.
#[derive(Debug, Clone)]
enum Block {
    /// (place in the /26, entry), sorted by place.
    Sparse(Vec<(u8, Entry)>),
    /// The slots, and how many are taken: the count lives here, beside the block's place in
    /// the map, so counting an insert touches no line of the block but the slot's own.
    Dense(Box<Slots>, u8),
}

type Slots = [Option<Entry>; BLOCK_SLOTS];

fn dense_from(list: Vec<(u8, Entry)>) -> Block {
    let mut slots: Box<Slots> = Box::new([const { None }; BLOCK_SLOTS]);
    let taken = list.len() as u8;
    for (low, entry) in list {
        slots[usize::from(low)] = Some(entry);
    }
    Block::Dense(slots, taken)
}

fn sparse_from(slots: Box<Slots>) -> Block {
    let list = slots
        .into_iter()
        .enumerate()
        .filter_map(|(low, slot)| slot.map(|entry| (low as u8, entry)))
        .collect();
    Block::Sparse(list)
}

/// The /26 of a /32 address, and the address's place in it.
fn split(addr: u32) -> (u64, u8) {
    (
        u64::from(addr >> BLOCK_BITS),
        (addr as u8) & (BLOCK_SLOTS as u8 - 1),
    )
}

#[derive(Debug, Default)]
pub struct HostBlocks {
    blocks: PrefixMap<Block>,
    len: usize,
}

impl HostBlocks {
    pub fn get(&self, addr: u32) -> Option<&Entry> {
        let (block, low) = split(addr);
        match self.blocks.get(block)? {
            Block::Sparse(list) => list
                .binary_search_by_key(&low, |(l, _)| *l)
                .ok()
                .map(|i| &list[i].1),
            Block::Dense(slots, _) => slots[usize::from(low)].as_ref(),
        }
    }

    pub fn get_mut(&mut self, addr: u32) -> Option<&mut Entry> {
        let (block, low) = split(addr);
        match self.blocks.get_mut(block)? {
            Block::Sparse(list) => match list.binary_search_by_key(&low, |(l, _)| *l) {
                Ok(i) => Some(&mut list[i].1),
                Err(_) => None,
            },
            Block::Dense(slots, _) => slots[usize::from(low)].as_mut(),
        }
    }

    /// Prefetch, first stage (some prefixes ahead of the insert): start loading the /26's
    /// place in the map of blocks.
    pub fn prefetch_block(&self, addr: u32) {
        self.blocks.prefetch(split(addr).0);
    }

    /// Prefetch, second stage (nearer the insert, once the block's place is in cache): start
    /// loading the slot of `addr` in a dense block, or the lines a short list is searched in.
    pub fn prefetch_entry(&self, addr: u32) {
        let (block, low) = split(addr);
        match self.blocks.get(block) {
            Some(Block::Dense(slots, _)) => {
                prefetch_read(std::ptr::from_ref(&slots[usize::from(low)]).cast());
            }
            Some(Block::Sparse(list)) => {
                let bytes = std::mem::size_of_val(list.as_slice());
                for offset in (0..bytes).step_by(64) {
                    prefetch_read(list.as_ptr().cast::<i8>().wrapping_add(offset));
                }
            }
            None => {}
        }
    }

    /// Insert `make(item)` for a new `addr`: `Ok` with it in place, or `Err` with the entry
    /// already there and `item` handed back.
    #[inline]
    pub fn insert_new_with<T>(
        &mut self,
        addr: u32,
        item: T,
        make: impl FnOnce(T) -> Entry,
    ) -> Result<&mut Entry, (&mut Entry, T)> {
        let (key, low) = split(addr);
        // A new /26's list starts with room for exactly one route: in a table of scattered
        // /32s (one per /26) most lists never hold more, and a larger first allocation would
        // cost them over a hundred bytes a route.
        let block = match self
            .blocks
            .insert_new_with(key, (), |()| Block::Sparse(Vec::with_capacity(1)))
        {
            Ok(b) | Err((b, ())) => b,
        };
        if let Block::Sparse(list) = block {
            if list.len() >= SPARSE_MAX && list.binary_search_by_key(&low, |(l, _)| *l).is_err() {
                *block = dense_from(std::mem::take(list));
            }
        }
        match block {
            Block::Sparse(list) => match list.binary_search_by_key(&low, |(l, _)| *l) {
                Ok(i) => Err((&mut list[i].1, item)),
                Err(i) => {
                    self.len += 1;
                    list.insert(i, (low, make(item)));
                    Ok(&mut list[i].1)
                }
            },
            Block::Dense(slots, taken) => match &mut slots[usize::from(low)] {
                Some(entry) => Err((entry, item)),
                empty => {
                    self.len += 1;
                    *taken += 1;
                    Ok(empty.insert(make(item)))
                }
            },
        }
    }

    pub fn remove(&mut self, addr: u32) -> Option<Entry> {
        let (key, low) = split(addr);
        let block = self.blocks.get_mut(key)?;
        let (removed, left) = match block {
            Block::Sparse(list) => {
                let i = list.binary_search_by_key(&low, |(l, _)| *l).ok()?;
                (list.remove(i).1, list.len())
            }
            Block::Dense(slots, taken) => {
                let removed = slots[usize::from(low)].take()?;
                *taken -= 1;
                if usize::from(*taken) < SHRINK_BELOW {
                    if let Block::Dense(slots, _) =
                        std::mem::replace(block, Block::Sparse(Vec::new()))
                    {
                        *block = sparse_from(slots);
                    }
                }
                (removed, 1)
            }
        };
        self.len -= 1;
        if left == 0 {
            self.blocks.remove(key);
        }
        Some(removed)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every (address, entry).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Entry)> {
        self.blocks.iter().flat_map(|(key, block)| {
            let base = (key as u32) << BLOCK_BITS;
            let (list, dense) = match block {
                Block::Sparse(list) => (Some(list), None),
                Block::Dense(slots, _) => (None, Some(slots)),
            };
            let listed = list
                .into_iter()
                .flatten()
                .map(move |(low, e)| (base | u32::from(*low), e));
            let slotted = dense.into_iter().flat_map(move |slots| {
                slots
                    .iter()
                    .enumerate()
                    .filter_map(move |(low, s)| s.as_ref().map(|e| (base | low as u32, e)))
            });
            listed.chain(slotted)
        })
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.blocks.values_mut().flat_map(|block| {
            let (list, dense) = match block {
                Block::Sparse(list) => (Some(list), None),
                Block::Dense(slots, _) => (None, Some(slots)),
            };
            let listed = list.into_iter().flatten().map(|(_, e)| e);
            let slotted = dense
                .into_iter()
                .flat_map(|slots| slots.iter_mut().flatten());
            listed.chain(slotted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PathAttrs;
    use crate::rib::Path;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn entry(peer: u32) -> Entry {
        Entry::One(Path {
            peer,
            stale: false,
            attrs: Arc::new(PathAttrs::default()),
        })
    }

    fn peer_of(e: &Entry) -> u32 {
        e.paths()[0].peer
    }

    #[test]
    fn an_empty_slot_costs_no_more_than_an_entry() {
        assert_eq!(std::mem::size_of::<Option<Entry>>(), 16);
    }

    #[test]
    fn a_full_slash_26_turns_dense_and_back() {
        let mut hosts = HostBlocks::default();
        let base = 0x0a00_0140u32;
        for low in (0..64u32).rev() {
            assert!(hosts.insert_new_with(base | low, low, entry).is_ok());
        }
        let key = u64::from(base >> BLOCK_BITS);
        assert!(matches!(hosts.blocks.get(key), Some(Block::Dense(..))));
        assert_eq!(hosts.len(), 64);
        assert!(hosts.insert_new_with(base | 7, 99, entry).is_err());
        for low in 0..60u32 {
            assert_eq!(hosts.remove(base | low).as_ref().map(peer_of), Some(low));
        }
        assert!(matches!(hosts.blocks.get(key), Some(Block::Sparse(_))));
        let left: Vec<(u32, u32)> = hosts.iter().map(|(a, e)| (a, peer_of(e))).collect();
        assert_eq!(
            left,
            (60..64).map(|low| (base | low, low)).collect::<Vec<_>>()
        );
        for low in 60..64u32 {
            assert_eq!(hosts.get(base | low).map(peer_of), Some(low));
        }
        for low in 60..64u32 {
            assert!(hosts.remove(base | low).is_some());
        }
        assert_eq!(hosts.len(), 0);
        assert!(hosts.blocks.is_empty());
    }

    proptest! {
        /// Inserts and removes over a few /26s, enough to cross the dense threshold both
        /// ways, leave the blocks holding what a BTreeMap given the same operations holds.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..4, 0u32..3, any::<u8>()), 0..600)) {
            let mut hosts = HostBlocks::default();
            let mut model = BTreeMap::new();
            for (kind, block, low) in ops {
                let addr = 0x0a00_0000 | (block << BLOCK_BITS) | u32::from(low % 64);
                if kind == 0 {
                    prop_assert_eq!(hosts.remove(addr).as_ref().map(peer_of), model.remove(&addr));
                } else {
                    let fresh = hosts.insert_new_with(addr, u32::from(low), entry).is_ok();
                    prop_assert_eq!(fresh, !model.contains_key(&addr));
                    model.entry(addr).or_insert(u32::from(low));
                }
                prop_assert_eq!(hosts.len(), model.len());
            }
            let mut listed: Vec<(u32, u32)> = hosts.iter().map(|(a, e)| (a, peer_of(e))).collect();
            listed.sort();
            let expected: Vec<(u32, u32)> = model.clone().into_iter().collect();
            prop_assert_eq!(listed, expected);
            for (addr, peer) in model {
                prop_assert_eq!(hosts.get(addr).map(peer_of), Some(peer));
                prop_assert_eq!(hosts.get_mut(addr).map(|e| peer_of(e)), Some(peer));
            }
            prop_assert_eq!(hosts.values_mut().count(), hosts.len());
        }
    }
}

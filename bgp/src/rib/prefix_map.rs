//! An open-addressing hash map from packed IPv4 prefixes (`u64` keys) to table entries, built
//! for taking in a full table fast.
//!
//! Each slot holds its key next to its value, so finding a prefix costs one cache miss (a
//! general map with a separate control array costs two), and the slot a key will land in is
//! known from its hash alone, so an UPDATE's prefixes can be prefetched ahead of their inserts
//! ([`PrefixMap::prefetch`]) and their misses overlap. The slot is the top bits of a seeded
//! multiplicative hash, which makes growth a streaming pass: the entries of old slot `i` land
//! near new slot `2i`, in order. Collisions probe linearly; removal shifts the following
//! entries back instead of leaving tombstones, so lookups never slow down with churn.

/// The multiplier of the hash: 2^64 / golden ratio, odd.
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// Grow when more than 3/4 of the slots are taken: linear probing's probe lengths climb
/// steeply above that.
const MAX_LOAD_NUM: usize = 3;
const MAX_LOAD_DEN: usize = 4;

/// Slots of a map's first allocation.
const MIN_SLOTS: usize = 16;

#[derive(Debug, Clone)]
pub struct PrefixMap<V> {
    slots: Vec<Option<(u64, V)>>,
    len: usize,
    /// 64 minus log2 of the slot count: the hash's top bits are the home slot.
    shift: u32,
    /// Mixed into every hash so that which prefixes collide differs from one map to the next
    /// and cannot be chosen by a peer.
    seed: u64,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            slots: Vec::new(),
            len: 0,
            shift: 64,
            seed: random_seed(),
        }
    }
}

/// A per-map seed from the standard library's randomly keyed hasher.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

impl<V> PrefixMap<V> {
    /// The home slot of `key`: a folded 128-bit multiply of the seeded key, top bits.
    fn home(&self, key: u64) -> usize {
        let full = u128::from(key ^ self.seed) * u128::from(MULTIPLIER);
        let mixed = (full as u64) ^ ((full >> 64) as u64);
        // shift is 64 only while there are no slots, and nothing is looked up then.
        mixed.checked_shr(self.shift).unwrap_or(0) as usize
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot holding `key`, if any.
    fn find(&self, key: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        match self.probe(key) {
            (i, true) => Some(i),
            _ => None,
        }
    }

    /// Hint that `key` is about to be looked up or inserted: start loading its home slot.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        if self.slots.is_empty() {
            return;
        }
        let slot: *const Option<(u64, V)> = &self.slots[self.home(key)];
        prefetch_read(slot.cast());
    }

    #[inline]
    pub fn get(&self, key: u64) -> Option<&V> {
        let i = self.find(key)?;
        self.slots[i].as_ref().map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        let i = self.find(key)?;
        self.slots[i].as_mut().map(|(_, v)| v)
    }

    /// Insert `value` under a new `key`: `Ok` with it in place, or `Err` with the value
    /// already there and `value` handed back. One probe either way.
    pub fn insert_new(&mut self, key: u64, value: V) -> Result<&mut V, (&mut V, V)> {
        self.insert_new_with(key, value, |v| v)
    }

    /// [`insert_new`](Self::insert_new) of `make(item)`, made only if `key` is new: a
    /// present key hands `item` itself back.
    #[inline]
    pub fn insert_new_with<T>(
        &mut self,
        key: u64,
        item: T,
        make: impl FnOnce(T) -> V,
    ) -> Result<&mut V, (&mut V, T)> {
        self.reserve_one();
        // The probe's slot holds the key, or is the empty slot it goes in.
        let (i, _) = self.probe(key);
        match &mut self.slots[i] {
            Some((_, v)) => Err((v, item)),
            empty => {
                self.len += 1;
                let (_, v) = empty.insert((key, make(item)));
                Ok(v)
            }
        }
    }

    /// The slot holding `key` (true), or the empty slot where it would go (false). Needs an
    /// empty slot somewhere, which the load bound guarantees once there are slots.
    fn probe(&self, key: u64) -> (usize, bool) {
        let mask = self.mask();
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            match &self.slots[i] {
                None => return (i, false),
                Some((k, _)) if *k == key => return (i, true),
                Some(_) => i = (i + 1) & mask,
            }
        }
        (i, false)
    }

    /// Remove `key`, shifting back the entries that probed past its slot.
    pub fn remove(&mut self, key: u64) -> Option<V> {
        let mut hole = self.find(key)?;
        let removed = self.slots[hole].take().map(|(_, v)| v);
        self.len -= 1;
        let mask = self.mask();
        let mut j = (hole + 1) & mask;
        for _ in 0..self.slots.len() {
            let Some((k, _)) = &self.slots[j] else { break };
            let home = self.home(*k);
            // The entry at j may fill the hole if its home is not cyclically in (hole, j].
            let dist_to_j = j.wrapping_sub(home) & mask;
            let dist_to_hole = hole.wrapping_sub(home) & mask;
            if dist_to_hole < dist_to_j {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
            j = (j + 1) & mask;
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.slots
            .iter()
            .filter_map(|s| s.as_ref().map(|(k, v)| (*k, v)))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.slots
            .iter_mut()
            .filter_map(|s| s.as_mut().map(|(_, v)| v))
    }

    /// Make room for one more entry within the load bound. The check is on every insert and
    /// stays inline; the doubling is rare and kept out of the insert's code.
    #[inline]
    fn reserve_one(&mut self) {
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow();
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let new_len = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, Vec::with_capacity(new_len));
        self.slots.resize_with(new_len, || None);
        self.shift = 64 - new_len.trailing_zeros();
        let mask = self.mask();
        // Old slots in order land in new slots in (nearly) increasing order: a stream.
        for (key, value) in old.into_iter().flatten() {
            let mut i = self.home(key);
            while self.slots[i].is_some() {
                i = (i + 1) & mask;
            }
            self.slots[i] = Some((key, value));
        }
    }
}

/// Start loading the cache line at `ptr`; a no-op where we have no prefetch instruction.
#[inline(always)]
pub(crate) fn prefetch_read(ptr: *const i8) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the intrinsic needs SSE, part of every x86_64 CPU; a prefetch is a hint
        // that never faults and reads nothing into the program, whatever the address.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Insert or replace, as `HashMap::insert` does.
    fn upsert<V>(m: &mut PrefixMap<V>, key: u64, value: V) {
        if let Err((slot, value)) = m.insert_new(key, value) {
            *slot = value;
        }
    }
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn grows_and_finds_every_key() {
        let mut m = PrefixMap::default();
        for k in 0..10_000u64 {
            assert!(m.insert_new(k << 8 | 32, k).is_ok());
        }
        assert_eq!(m.len(), 10_000);
        assert!(m.slots.len() * MAX_LOAD_NUM >= m.len() * MAX_LOAD_DEN);
        for k in 0..10_000u64 {
            assert_eq!(m.get(k << 8 | 32), Some(&k));
        }
        assert_eq!(m.get(10_000 << 8 | 32), None);
        match m.insert_new(5 << 8 | 32, 99) {
            Err((old, back)) => assert_eq!((*old, back), (5, 99)),
            Ok(_) => panic!("a present key was inserted again"),
        }
    }

    #[test]
    fn removal_keeps_colliding_keys_reachable() {
        let mut m = PrefixMap::default();
        // Enough keys in few slots that probe runs wrap and overlap.
        for k in 0..12u64 {
            upsert(&mut m, k, k);
        }
        for k in (0..12u64).step_by(3) {
            assert_eq!(m.remove(k), Some(k));
            assert_eq!(m.remove(k), None);
        }
        for k in 0..12u64 {
            assert_eq!(m.get(k).copied(), (k % 3 != 0).then_some(k));
        }
        assert_eq!(m.len(), 8);
    }

    proptest! {
        /// Any sequence of inserts and removes leaves the map equal to a std HashMap given
        /// the same sequence.
        #[test]
        fn behaves_like_a_hash_map(ops in proptest::collection::vec((any::<bool>(), 0u64..64, any::<u8>()), 0..400)) {
            let mut ours = PrefixMap::default();
            let mut model = HashMap::new();
            for (insert, key, value) in ops {
                if insert {
                    upsert(&mut ours, key, value);
                    model.insert(key, value);
                } else {
                    prop_assert_eq!(ours.remove(key), model.remove(&key));
                }
                prop_assert_eq!(ours.len(), model.len());
            }
            for key in 0..64 {
                prop_assert_eq!(ours.get(key), model.get(&key));
            }
            let mut listed: Vec<(u64, u8)> = ours.iter().map(|(k, v)| (k, *v)).collect();
            listed.sort();
            let mut expected: Vec<(u64, u8)> = model.into_iter().collect();
            expected.sort();
            prop_assert_eq!(listed, expected);
        }
    }
}

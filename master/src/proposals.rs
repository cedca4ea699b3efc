//! Values (addresses, tags) that in-flight requests of this master have proposed but not yet
//! committed. Concurrent requests on one master skip each other's proposals, so they propose
//! different values instead of racing for the same one and retrying; across masters the store's
//! create-if-absent compare still decides.

use crate::alloc;
use crate::keys::{self, TagKind};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

#[derive(Default)]
pub struct Proposals {
    keys: Mutex<HashSet<String>>,
}

impl Proposals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A holder for one request; what it holds is released when it is dropped.
    pub fn holder(&self) -> Held<'_> {
        Held {
            proposals: self,
            keys: Vec::new(),
        }
    }
}

pub struct Held<'a> {
    proposals: &'a Proposals,
    keys: Vec<String>,
}

impl Held<'_> {
    /// Lets go of everything held (before re-planning after a lost compare).
    pub fn release_all(&mut self) {
        let mut set = self.proposals.lock();
        for k in self.keys.drain(..) {
            set.remove(&k);
        }
    }

    /// Holds `key` unless another request holds it.
    pub fn try_hold(&mut self, key: String) -> bool {
        let fresh = self.proposals.lock().insert(key.clone());
        if fresh {
            self.keys.push(key);
        }
        fresh
    }

    /// The lowest tag in `[first, last]` neither allocated nor proposed, now held.
    pub fn pick_tag<V>(
        &mut self,
        kind: TagKind,
        first: u32,
        last: u32,
        taken: Option<&BTreeMap<u32, V>>,
    ) -> Option<u32> {
        let empty = BTreeMap::new();
        let taken = taken.unwrap_or(&empty);
        // Pick and hold under one lock: a request between the two would take the same tag.
        let mut set = self.proposals.lock();
        let tag = alloc::pick_tag(first, last, taken, |t| set.contains(&keys::tag(kind, t)))?;
        set.insert(keys::tag(kind, tag));
        drop(set);
        self.keys.push(keys::tag(kind, tag));
        Some(tag)
    }

    /// Addresses under `prefix` held by other requests.
    pub fn held_under(&self, prefix: &str) -> Vec<String> {
        self.proposals
            .lock()
            .iter()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.release_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_holders_pick_different_tags_and_release_on_drop() {
        let p = Proposals::default();
        let mut a = p.holder();
        let mut b = p.holder();
        let taken: BTreeMap<u32, ()> = [(1, ())].into();
        assert_eq!(a.pick_tag(TagKind::Vxlan, 1, 10, Some(&taken)), Some(2));
        assert_eq!(b.pick_tag(TagKind::Vxlan, 1, 10, Some(&taken)), Some(3));
        assert_eq!(
            b.pick_tag(TagKind::Vlan, 1, 10, Some(&taken)),
            Some(2),
            "kinds are separate"
        );
        drop(a);
        let mut c = p.holder();
        assert_eq!(
            c.pick_tag(TagKind::Vxlan, 1, 10, Some(&taken)),
            Some(2),
            "released on drop"
        );
        assert_eq!(
            c.pick_tag(TagKind::Vxlan, 1, 3, Some(&taken)),
            None,
            "2 held by c, 3 by b"
        );
    }
}

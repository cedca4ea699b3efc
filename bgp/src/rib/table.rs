//! The prefix table behind the RIBs, laid out for memory and for taking in a full table: IPv4
//! /32s live in blocks by /26 ([`HostBlocks`]), other IPv4 prefixes in a [`PrefixMap`] keyed by
//! one packed `u64` (address and length), and an entry keeps its first path inline, so the
//! common one-path prefix costs one slot and no extra allocation.

use std::collections::hash_map::Entry as Slot;
use std::net::Ipv4Addr;

use super::host_blocks::HostBlocks;
use super::prefix_map::PrefixMap;
use super::Path;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxHashMap;

/// The paths of one prefix, best first. One path (the usual case) is stored inline: the whole
/// entry is 16 bytes (the enum tag lives in the niche of `Path::stale`).
#[derive(Debug, Clone)]
pub enum Entry {
    One(Path),
    Many(Box<ManyPaths>),
}

/// Several paths; the first `ecmp` are the multipath set.
#[derive(Debug, Clone)]
pub struct ManyPaths {
    paths: Vec<Path>,
    ecmp: u8,
}

impl Entry {
    pub fn paths(&self) -> &[Path] {
        match self {
            Entry::One(p) => std::slice::from_ref(p),
            Entry::Many(m) => &m.paths,
        }
    }

    pub fn paths_mut(&mut self) -> &mut [Path] {
        match self {
            Entry::One(p) => std::slice::from_mut(p),
            Entry::Many(m) => &mut m.paths,
        }
    }

    /// How many leading paths are equal-cost.
    pub fn ecmp(&self) -> usize {
        match self {
            Entry::One(_) => 1,
            Entry::Many(m) => usize::from(m.ecmp),
        }
    }

    /// The best path and its ECMP siblings.
    pub fn best(&self) -> &[Path] {
        &self.paths()[..self.ecmp()]
    }

    pub fn set_ecmp(&mut self, ecmp: usize) {
        if let Entry::Many(m) = self {
            m.ecmp = ecmp.clamp(1, m.paths.len()) as u8;
        }
    }

    pub fn push(&mut self, path: Path) {
        match self {
            Entry::One(first) => {
                let first = first.clone();
                *self = Entry::Many(Box::new(ManyPaths {
                    paths: vec![first, path],
                    ecmp: 1,
                }));
            }
            Entry::Many(m) => m.paths.push(path),
        }
    }

    /// Remove path `i`; false when the entry is left empty (the caller drops it).
    pub fn remove(&mut self, i: usize) -> bool {
        match self {
            Entry::One(_) => false,
            Entry::Many(m) => {
                if i < m.paths.len() {
                    m.paths.remove(i);
                }
                match m.paths.len() {
                    0 => false,
                    1 => {
                        let last = m.paths[0].clone();
                        *self = Entry::One(last);
                        true
                    }
                    _ => true,
                }
            }
        }
    }
}

fn pack(net: &Ipv4Net) -> u64 {
    (u64::from(u32::from(net.addr())) << 8) | u64::from(net.prefix_len())
}

fn unpack(key: u64) -> Prefix4 {
    let addr = Ipv4Addr::from((key >> 8) as u32);
    // The key was built from a valid Ipv4Net, so the length is at most 32.
    Ipv4Net::new(addr, (key & 0xff) as u8).unwrap_or_default()
}

type Prefix4 = Ipv4Net;

#[derive(Debug, Default)]
pub struct Table {
    /// IPv4 /32s: the fabric's host routes, most of a table.
    hosts: HostBlocks,
    /// Every other IPv4 prefix.
    v4: PrefixMap<Entry>,
    v6: FxHashMap<Ipv6Net, Entry>,
}

/// Where an IPv4 prefix lives.
enum V4Key {
    Host(u32),
    Other(u64),
}

fn v4_key(net: &Ipv4Net) -> V4Key {
    if net.prefix_len() == 32 {
        V4Key::Host(u32::from(net.addr()))
    } else {
        V4Key::Other(pack(net))
    }
}

impl Table {
    pub fn get(&self, prefix: &IpNet) -> Option<&Entry> {
        match prefix {
            IpNet::V4(n) => match v4_key(n) {
                V4Key::Host(a) => self.hosts.get(a),
                V4Key::Other(k) => self.v4.get(k),
            },
            IpNet::V6(n) => self.v6.get(n),
        }
    }

    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut Entry> {
        match prefix {
            IpNet::V4(n) => match v4_key(n) {
                V4Key::Host(a) => self.hosts.get_mut(a),
                V4Key::Other(k) => self.v4.get_mut(k),
            },
            IpNet::V6(n) => self.v6.get_mut(n),
        }
    }

    /// Prefetch, first stage, some prefixes ahead of an insert: where `prefix` is indexed
    /// (IPv4; a no-op for IPv6).
    pub fn prefetch_index(&self, prefix: &IpNet) {
        if let IpNet::V4(n) = prefix {
            match v4_key(n) {
                V4Key::Host(a) => self.hosts.prefetch_block(a),
                V4Key::Other(k) => self.v4.prefetch(k),
            }
        }
    }

    /// Prefetch, second stage, once the first has landed: the entry's own slot, where it is
    /// not the index itself.
    pub fn prefetch_entry(&self, prefix: &IpNet) {
        if let IpNet::V4(n) = prefix {
            if let V4Key::Host(a) = v4_key(n) {
                self.hosts.prefetch_entry(a);
            }
        }
    }

    /// Make `path` the only path of a new entry for `prefix`: `Ok` with the new entry, or
    /// `Err` with the existing entry and the path handed back. One lookup either way, and the
    /// path is moved, not cloned: a new prefix (every prefix of a full table) costs no
    /// reference-count traffic on its shared attributes beyond the one it keeps.
    pub fn insert_new(
        &mut self,
        prefix: IpNet,
        path: Path,
    ) -> Result<&mut Entry, (&mut Entry, Path)> {
        match prefix {
            IpNet::V4(n) => match v4_key(&n) {
                V4Key::Host(a) => self.hosts.insert_new_with(a, path, Entry::One),
                V4Key::Other(k) => self.v4.insert_new_with(k, path, Entry::One),
            },
            IpNet::V6(n) => match self.v6.entry(n) {
                Slot::Occupied(o) => Err((o.into_mut(), path)),
                Slot::Vacant(v) => Ok(v.insert(Entry::One(path))),
            },
        }
    }

    pub fn remove(&mut self, prefix: &IpNet) {
        match prefix {
            IpNet::V4(n) => match v4_key(n) {
                V4Key::Host(a) => {
                    self.hosts.remove(a);
                }
                V4Key::Other(k) => {
                    self.v4.remove(k);
                }
            },
            IpNet::V6(n) => {
                self.v6.remove(n);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &Entry)> {
        let host = |a: u32| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), 32).unwrap_or_default());
        self.hosts
            .iter()
            .map(move |(a, e)| (host(a), e))
            .chain(self.v4.iter().map(|(k, e)| (IpNet::V4(unpack(k)), e)))
            .chain(self.v6.iter().map(|(k, e)| (IpNet::V6(*k), e)))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.hosts
            .values_mut()
            .chain(self.v4.values_mut())
            .chain(self.v6.values_mut())
    }

    pub fn keys(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.iter().map(|(p, _)| p)
    }

    pub fn len(&self) -> usize {
        self.hosts.len() + self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

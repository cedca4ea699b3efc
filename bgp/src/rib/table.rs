//! The prefix table behind the RIBs, laid out for memory: IPv4 prefixes are keyed by one
//! packed `u64` (address and length), and an entry keeps its first path inline, so the common
//! one-path prefix costs one hash slot and no extra allocation.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::Path;

/// The paths of one prefix, best first; the first `ecmp` are the multipath set.
#[derive(Debug, Clone)]
pub struct Entry {
    pub paths: SmallVec<[Path; 1]>,
    pub ecmp: u8,
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
    v4: FxHashMap<u64, Entry>,
    v6: FxHashMap<Ipv6Net, Entry>,
}

impl Table {
    pub fn get(&self, prefix: &IpNet) -> Option<&Entry> {
        match prefix {
            IpNet::V4(n) => self.v4.get(&pack(n)),
            IpNet::V6(n) => self.v6.get(n),
        }
    }

    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut Entry> {
        match prefix {
            IpNet::V4(n) => self.v4.get_mut(&pack(n)),
            IpNet::V6(n) => self.v6.get_mut(n),
        }
    }

    pub fn insert(&mut self, prefix: IpNet, entry: Entry) {
        match prefix {
            IpNet::V4(n) => {
                self.v4.insert(pack(&n), entry);
            }
            IpNet::V6(n) => {
                self.v6.insert(n, entry);
            }
        }
    }

    pub fn remove(&mut self, prefix: &IpNet) {
        match prefix {
            IpNet::V4(n) => {
                self.v4.remove(&pack(n));
            }
            IpNet::V6(n) => {
                self.v6.remove(n);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &Entry)> {
        self.v4
            .iter()
            .map(|(k, e)| (IpNet::V4(unpack(*k)), e))
            .chain(self.v6.iter().map(|(k, e)| (IpNet::V6(*k), e)))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.v4.values_mut().chain(self.v6.values_mut())
    }

    pub fn keys(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.iter().map(|(p, _)| p)
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

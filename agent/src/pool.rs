//! The addresses the master has reserved for this host, per network (and per group with an
//! ipPool of its own), so an attach takes one without waiting for a store write. Pure
//! bookkeeping: the caller asks the master for more when [`AddressPools::take`] says so and
//! hands the answer to [`AddressPools::filled`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Below this many addresses left, a pool asks for more.
pub const LOW_WATER: usize = 8;
/// How many addresses a refill asks for (the master may give fewer).
pub const REFILL: u32 = 24;
/// After the master had nothing to give, how long before asking again.
const EMPTY_BACKOFF: Duration = Duration::from_secs(5);

/// An address taken from a pool, with what the container's interface needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// A request to reserve more addresses for (network, group), as the attach named them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Refill {
    pub network: String,
    pub group: String,
    pub count: u32,
}

/// The master's answer to a [`Refill`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The group whose ipPool the addresses come from; empty for the network's own.
    pub pool_group: String,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub addresses: Vec<Ipv4Addr>,
}

#[derive(Debug, Default)]
struct Pool {
    free: VecDeque<Ipv4Addr>,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
}

#[derive(Debug, Default)]
pub struct AddressPools {
    /// By (network, group whose ipPool they come from or "").
    pools: HashMap<(String, String), Pool>,
    /// (network, group) → the pool its addresses come from, learned from grants.
    pool_of: HashMap<(String, String), String>,
    /// Refills asked and not answered, by (network, group) as asked.
    in_flight: HashSet<(String, String)>,
    /// (network, group) whose last refill got nothing, and when.
    dry_since: HashMap<(String, String), Instant>,
}

impl AddressPools {
    /// An address for an attach to `network` in `group` (empty: none), when the pool has one,
    /// and a refill to ask for when the pool runs low (at most one at a time per pool).
    pub fn take(
        &mut self,
        network: &str,
        group: &str,
        now: Instant,
    ) -> (Option<Reserved>, Option<Refill>) {
        let asked = (network.to_string(), group.to_string());
        let pool_group = if group.is_empty() {
            Some(String::new())
        } else {
            self.pool_of.get(&asked).cloned()
        };
        let taken = pool_group.as_ref().and_then(|g| {
            let pool = self.pools.get_mut(&(network.to_string(), g.clone()))?;
            let ip = pool.free.pop_front()?;
            Some(Reserved {
                ip,
                prefix_len: pool.prefix_len,
                gateway: pool.gateway,
            })
        });
        let left = pool_group
            .and_then(|g| self.pools.get(&(network.to_string(), g)))
            .map_or(0, |p| p.free.len());
        let dry = self
            .dry_since
            .get(&asked)
            .is_some_and(|t| now.saturating_duration_since(*t) < EMPTY_BACKOFF);
        let refill = (left < LOW_WATER && !dry && !self.in_flight.contains(&asked)).then(|| {
            self.in_flight.insert(asked.clone());
            Refill {
                network: asked.0,
                group: asked.1,
                count: REFILL,
            }
        });
        (taken, refill)
    }

    /// The master's answer to `refill` (an error: `None`).
    pub fn filled(&mut self, refill: &Refill, grant: Option<Grant>, now: Instant) {
        let asked = (refill.network.clone(), refill.group.clone());
        self.in_flight.remove(&asked);
        let Some(grant) = grant else { return };
        if grant.addresses.is_empty() {
            self.dry_since.insert(asked.clone(), now);
        } else {
            self.dry_since.remove(&asked);
        }
        self.pool_of.insert(asked, grant.pool_group.clone());
        let pool = self
            .pools
            .entry((refill.network.clone(), grant.pool_group))
            .or_default();
        pool.prefix_len = grant.prefix_len;
        pool.gateway = grant.gateway;
        pool.free.extend(grant.addresses);
    }

    /// Drops what is kept for `network` (the master no longer holds it for us); returns the
    /// addresses dropped.
    pub fn forget_network(&mut self, network: &str) -> Vec<Ipv4Addr> {
        let mut dropped = Vec::new();
        self.pools.retain(|(n, _), pool| {
            if n == network {
                dropped.extend(pool.free.drain(..));
            }
            n != network
        });
        self.pool_of.retain(|(n, _), _| n != network);
        self.dry_since.retain(|(n, _), _| n != network);
        dropped
    }

    /// Every address kept, with its network.
    pub fn addresses(&self) -> Vec<(String, Ipv4Addr)> {
        self.pools
            .iter()
            .flat_map(|((network, _), pool)| pool.free.iter().map(|ip| (network.clone(), *ip)))
            .collect()
    }

    /// Drops the addresses of `kept_before` that the master no longer holds for us
    /// (`reserved`: its list, read after `kept_before` was taken, so an address granted in
    /// between is never dropped); returns them.
    pub fn drop_unreserved(
        &mut self,
        kept_before: &[(String, Ipv4Addr)],
        reserved: &HashSet<(String, Ipv4Addr)>,
    ) -> Vec<Ipv4Addr> {
        let gone: HashSet<&(String, Ipv4Addr)> = kept_before
            .iter()
            .filter(|entry| !reserved.contains(*entry))
            .collect();
        let mut dropped = Vec::new();
        for ((network, _), pool) in self.pools.iter_mut() {
            pool.free.retain(|ip| {
                let keep = !gone.contains(&(network.clone(), *ip));
                if !keep {
                    dropped.push(*ip);
                }
                keep
            });
        }
        dropped
    }

    /// Addresses kept, over every pool.
    pub fn len(&self) -> usize {
        self.pools.values().map(|p| p.free.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(pool_group: &str, first: u8, n: u8) -> Grant {
        Grant {
            pool_group: pool_group.into(),
            prefix_len: 24,
            gateway: Some(Ipv4Addr::new(10, 1, 2, 1)),
            addresses: (first..first + n)
                .map(|i| Ipv4Addr::new(10, 1, 2, i))
                .collect(),
        }
    }

    #[test]
    fn an_empty_pool_asks_once_and_then_serves_the_grant_in_order() {
        let mut p = AddressPools::default();
        let now = Instant::now();
        let (got, refill) = p.take("t:n", "", now);
        assert_eq!(got, None);
        let refill = refill.expect("the first take asks for addresses");
        assert_eq!(
            (refill.network.as_str(), refill.group.as_str()),
            ("t:n", "")
        );
        assert_eq!(p.take("t:n", "", now).1, None, "one refill at a time");
        p.filled(&refill, Some(grant("", 10, 12)), now);
        let (got, again) = p.take("t:n", "", now);
        assert_eq!(got.map(|r| r.ip), Some(Ipv4Addr::new(10, 1, 2, 10)));
        assert_eq!(
            got.map(|r| (r.prefix_len, r.gateway)),
            Some((24, Some(Ipv4Addr::new(10, 1, 2, 1))))
        );
        assert_eq!(again, None, "11 left, above the low water mark");
        for _ in 0..3 {
            assert!(p.take("t:n", "", now).1.is_none());
        }
        let (got, refill) = p.take("t:n", "", now);
        assert_eq!(got.map(|r| r.ip), Some(Ipv4Addr::new(10, 1, 2, 14)));
        assert!(refill.is_some(), "7 left: below the low water mark");
        assert_eq!(p.len(), 7);
    }

    #[test]
    fn a_group_with_its_own_pool_does_not_take_the_networks_addresses() {
        let mut p = AddressPools::default();
        let now = Instant::now();
        let r = p.take("t:n", "", now).1.expect("refill");
        p.filled(&r, Some(grant("", 10, 10)), now);
        let (got, r) = p.take("t:n", "t:g", now);
        assert_eq!(got, None, "the group's pool is not known yet");
        p.filled(
            &r.expect("refill for the group"),
            Some(grant("t:g", 200, 10)),
            now,
        );
        assert_eq!(
            p.take("t:n", "t:g", now).0.map(|r| r.ip),
            Some(Ipv4Addr::new(10, 1, 2, 200))
        );
        // A group without an ipPool shares the network's pool once the master said so.
        let r = p.take("t:n", "t:plain", now).1.expect("refill");
        p.filled(&r, Some(grant("", 30, 10)), now);
        assert_eq!(
            p.take("t:n", "t:plain", now).0.map(|r| r.ip),
            Some(Ipv4Addr::new(10, 1, 2, 10))
        );
    }

    #[test]
    fn an_empty_grant_waits_before_asking_again_and_a_failed_one_does_not() {
        let mut p = AddressPools::default();
        let now = Instant::now();
        let r = p.take("t:n", "", now).1.expect("refill");
        p.filled(&r, None, now);
        let r = p
            .take("t:n", "", now)
            .1
            .expect("an error is retried at the next take");
        p.filled(&r, Some(grant("", 1, 0)), now);
        assert_eq!(p.take("t:n", "", now + Duration::from_secs(1)).1, None);
        assert!(p.take("t:n", "", now + EMPTY_BACKOFF).1.is_some());
    }

    #[test]
    fn addresses_the_master_no_longer_holds_are_dropped_but_newer_grants_stay() {
        let mut p = AddressPools::default();
        let now = Instant::now();
        let r = p.take("t:a", "", now).1.expect("refill");
        p.filled(&r, Some(grant("", 10, 3)), now);
        let before = p.addresses();
        // Granted after the snapshot: not in the master's list the audit read earlier.
        let r = p.take("t:b", "", now).1.expect("refill");
        p.filled(&r, Some(grant("", 50, 2)), now);
        let reserved: HashSet<(String, Ipv4Addr)> =
            [("t:a".to_string(), Ipv4Addr::new(10, 1, 2, 11))].into();
        let mut dropped = p.drop_unreserved(&before, &reserved);
        dropped.sort();
        assert_eq!(
            dropped,
            [Ipv4Addr::new(10, 1, 2, 10), Ipv4Addr::new(10, 1, 2, 12)]
        );
        assert_eq!(p.len(), 3, "t:a's .11 and t:b's two stay");
    }

    #[test]
    fn forgetting_a_network_drops_its_pools_only() {
        let mut p = AddressPools::default();
        let now = Instant::now();
        for net in ["t:a", "t:b"] {
            let r = p.take(net, "", now).1.expect("refill");
            p.filled(&r, Some(grant("", 10, 4)), now);
        }
        assert_eq!(p.forget_network("t:a").len(), 4);
        assert_eq!(p.take("t:a", "", now).0, None);
        assert!(p.take("t:b", "", now).0.is_some());
    }
}

//! Choosing free addresses and tags: pure functions over what is already taken.
//!
//! Choosing is only a proposal: the master then creates the allocation key with a
//! create-if-absent transaction, so two masters proposing the same value cannot both win.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An inclusive range of addresses of one family, as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub first: u128,
    pub last: u128,
    pub v6: bool,
}

impl Pool {
    pub fn v4(first: Ipv4Addr, last: Ipv4Addr) -> Pool {
        Pool {
            first: u32::from(first) as u128,
            last: u32::from(last) as u128,
            v6: false,
        }
    }

    pub fn v6(first: Ipv6Addr, last: Ipv6Addr) -> Pool {
        Pool {
            first: u128::from(first),
            last: u128::from(last),
            v6: true,
        }
    }

    pub fn size(&self) -> u128 {
        self.last - self.first + 1
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (ip, self.v6) {
            (IpAddr::V4(a), false) => (self.first..=self.last).contains(&(u32::from(a) as u128)),
            (IpAddr::V6(a), true) => (self.first..=self.last).contains(&u128::from(a)),
            _ => false,
        }
    }

    fn ip(&self, n: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(n))
        } else {
            IpAddr::V4(Ipv4Addr::from(n as u32))
        }
    }

    fn index(&self, ip: IpAddr) -> Option<u128> {
        let n = match ip {
            IpAddr::V4(a) if !self.v6 => u32::from(a) as u128,
            IpAddr::V6(a) if self.v6 => u128::from(a),
            _ => return None,
        };
        (self.first..=self.last).contains(&n).then_some(n)
    }
}

/// How many candidates one search looks at; an IPv6 /64 is never scanned to the end.
const SCAN_LIMIT: u128 = 1 << 20;

/// The first address at or after `hint` (wrapping) that is in `pool`, not `taken`, not
/// `reserved`, in none of the `fenced` pools. `hint` spreads concurrent allocators over the
/// pool so they rarely collide.
pub fn pick_ip<V>(
    pool: Pool,
    taken: &BTreeMap<IpAddr, V>,
    reserved: &[IpAddr],
    fenced: &[Pool],
    hint: u128,
) -> Option<IpAddr> {
    let size = pool.size();
    let start = hint % size;
    for i in 0..size.min(SCAN_LIMIT) {
        let ip = pool.ip(pool.first + (start + i) % size);
        if is_free(ip, taken, reserved, fenced) {
            return Some(ip);
        }
    }
    None
}

/// Where a reservation of `count` addresses starts its search, as an offset in `pool` like
/// `hint`: the first run of `count.next_power_of_two()` addresses aligned to its own size
/// (a CIDR block), entirely in `pool` and free, at or after `hint` (wrapping). Reserving
/// from there in order fills that block, and the host announces it to the reflectors as one
/// route instead of a /32 per address (see `fabric-actors`' `announce_blocks`). With no such
/// block (a fragmented pool) the search starts at `hint`, as any allocation does.
pub fn block_start<V>(
    pool: Pool,
    taken: &BTreeMap<IpAddr, V>,
    reserved: &[IpAddr],
    fenced: &[Pool],
    hint: u128,
    count: u128,
) -> u128 {
    let size = pool.size();
    let from = hint % size;
    let Some(block) = count.checked_next_power_of_two().filter(|b| *b > 1) else {
        return from;
    };
    let align_up = |n: u128| n.checked_next_multiple_of(block);
    let Some(first_block) = align_up(pool.first) else {
        return from;
    };
    // Past the last aligned address of the space: wrap at once.
    let mut base = align_up(pool.first + from).unwrap_or(first_block);
    let fits = |base: u128| {
        base.checked_add(block - 1)
            .is_some_and(|end| end <= pool.last)
    };
    // Each candidate costs up to `block` lookups: the same bound as one address search.
    let candidates = (size / block + 1).min(SCAN_LIMIT / block);
    for _ in 0..candidates {
        if !fits(base) {
            base = first_block;
            if !fits(base) {
                return from;
            }
        }
        if (base..base + block).all(|n| is_free(pool.ip(n), taken, reserved, fenced)) {
            return base - pool.first;
        }
        base += block;
    }
    from
}

fn is_free<V>(
    ip: IpAddr,
    taken: &BTreeMap<IpAddr, V>,
    reserved: &[IpAddr],
    fenced: &[Pool],
) -> bool {
    !taken.contains_key(&ip) && !reserved.contains(&ip) && !fenced.iter().any(|f| f.contains(ip))
}

/// The lowest tag in `[first, last]` that is not `taken` and not `skip`ped.
pub fn pick_tag<V>(
    first: u32,
    last: u32,
    taken: &BTreeMap<u32, V>,
    skip: impl Fn(u32) -> bool,
) -> Option<u32> {
    let mut candidate = first;
    while candidate <= last {
        if !taken.contains_key(&candidate) && !skip(candidate) {
            return Some(candidate);
        }
        candidate = candidate.checked_add(1)?;
    }
    None
}

/// Formats numbers as Contiv shows tags in use: `1-5, 7, 9-10`.
pub fn ranges<I: IntoIterator<Item = u128>>(sorted: I) -> Vec<(u128, u128)> {
    let mut out: Vec<(u128, u128)> = Vec::new();
    for n in sorted {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => out.push((n, n)),
        }
    }
    out
}

pub fn format_tag_ranges<I: IntoIterator<Item = u32>>(sorted: I) -> String {
    ranges(sorted.into_iter().map(u128::from))
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn format_ip_ranges<'a, I: IntoIterator<Item = &'a IpAddr>>(pool: Pool, sorted: I) -> String {
    ranges(sorted.into_iter().filter_map(|ip| pool.index(*ip)))
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                pool.ip(a).to_string()
            } else {
                format!("{}-{}", pool.ip(a), pool.ip(b))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The free parts of `pool`, in the same format.
pub fn format_free_ranges<V>(
    pool: Pool,
    taken: &BTreeMap<IpAddr, V>,
    reserved: &[IpAddr],
) -> String {
    let mut free = Vec::new();
    let mut cursor = pool.first;
    let mut used: Vec<u128> = taken
        .keys()
        .chain(reserved)
        .filter_map(|ip| pool.index(*ip))
        .collect();
    used.sort_unstable();
    used.dedup();
    for u in used {
        if u > cursor {
            free.push((cursor, u - 1));
        }
        cursor = u + 1;
    }
    if cursor <= pool.last {
        free.push((cursor, pool.last));
    }
    free.into_iter()
        .map(|(a, b)| {
            if a == b {
                pool.ip(a).to_string()
            } else {
                format!("{}-{}", pool.ip(a), pool.ip(b))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn picks_free_addresses_from_the_hint_and_wraps() {
        let pool = Pool::v4("10.0.0.1".parse().unwrap(), "10.0.0.4".parse().unwrap());
        let mut taken = BTreeMap::new();
        taken.insert(v4("10.0.0.3"), ());
        assert_eq!(pick_ip(pool, &taken, &[], &[], 0), Some(v4("10.0.0.1")));
        assert_eq!(pick_ip(pool, &taken, &[], &[], 2), Some(v4("10.0.0.4")));
        assert_eq!(
            pick_ip(pool, &taken, &[v4("10.0.0.4")], &[], 2),
            Some(v4("10.0.0.1"))
        );
        let fence = Pool::v4("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(
            pick_ip(pool, &taken, &[v4("10.0.0.4")], &[fence], 0),
            None,
            "fenced addresses are never picked"
        );
        taken.insert(v4("10.0.0.1"), ());
        taken.insert(v4("10.0.0.2"), ());
        assert_eq!(pick_ip(pool, &taken, &[v4("10.0.0.4")], &[], 0), None);
    }

    /// Reserves `count` addresses as the master does: from `block_start`, then in order.
    fn reserve(
        pool: Pool,
        taken: &BTreeMap<IpAddr, ()>,
        excluded: &[IpAddr],
        hint: u128,
        count: u128,
    ) -> Vec<IpAddr> {
        let mut excluded = excluded.to_vec();
        let mut hint = block_start(pool, taken, &excluded, &[], hint, count);
        let mut out = Vec::new();
        for _ in 0..count {
            let Some(ip) = pick_ip(pool, taken, &excluded, &[], hint) else {
                break;
            };
            hint = pool.index(ip).unwrap() - pool.first + 1;
            excluded.push(ip);
            out.push(ip);
        }
        out
    }

    #[test]
    fn a_reserve_starts_at_a_free_aligned_block() {
        // A /24's pool, the gateway excluded: .0 is outside the pool, so the /29 at .0 is not
        // whole and 8 addresses from the start are the /29 at .8.
        let pool = Pool::v4("10.1.2.1".parse().unwrap(), "10.1.2.254".parse().unwrap());
        let gateway = [v4("10.1.2.1")];
        let mut taken: BTreeMap<IpAddr, ()> = BTreeMap::new();
        let eight = reserve(pool, &taken, &gateway, 0, 8);
        let want: Vec<IpAddr> = (8..16).map(|n| v4(&format!("10.1.2.{n}"))).collect();
        assert_eq!(eight, want);
        // A hint inside a block goes on to the next aligned one.
        assert_eq!(
            block_start(pool, &taken, &gateway, &[], 20, 8),
            23,
            "10.1.2.24"
        );
        // 24 addresses: a /27 (the next power of two), so a /28 and a /29, not straddling.
        let got = reserve(pool, &taken, &gateway, 40, 24);
        assert_eq!(got.first(), Some(&v4("10.1.2.64")));
        assert_eq!(got.last(), Some(&v4("10.1.2.87")));
        // A taken address in a block skips the block.
        taken.insert(v4("10.1.2.12"), ());
        assert_eq!(
            block_start(pool, &taken, &gateway, &[], 0, 8),
            15,
            "10.1.2.16"
        );
        // Near the end, the search wraps to the pool's first whole block.
        assert_eq!(
            block_start(pool, &taken, &gateway, &[], 250, 4),
            3,
            "10.1.2.4"
        );
        // A single address, or no free block at all: the plain hint.
        assert_eq!(block_start(pool, &taken, &gateway, &[], 100, 1), 100);
        let small = Pool::v4("10.1.2.1".parse().unwrap(), "10.1.2.6".parse().unwrap());
        assert_eq!(block_start(small, &taken, &[], &[], 2, 8), 2);
        // Fenced addresses make a block unusable too.
        let fence = Pool::v4("10.1.2.16".parse().unwrap(), "10.1.2.16".parse().unwrap());
        assert_eq!(block_start(pool, &taken, &gateway, &[fence], 0, 8), 23);
    }

    #[test]
    fn v6_pools_reserve_aligned_blocks_too() {
        let pool = Pool::v6(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::ffff".parse().unwrap(),
        );
        let taken: BTreeMap<IpAddr, ()> = BTreeMap::new();
        let got = reserve(pool, &taken, &[], 0, 16);
        assert_eq!(got.first(), Some(&"2001:db8::10".parse().unwrap()));
        assert_eq!(got.last(), Some(&"2001:db8::1f".parse().unwrap()));
        // The top of the address space does not overflow.
        let top = Pool::v6("ffff::".parse().unwrap(), Ipv6Addr::from(u128::MAX));
        let at = block_start(top, &taken, &[], &[], u128::MAX - 3, 32);
        assert_eq!(at % 32, 0, "an aligned block");
    }

    #[test]
    fn v6_pools() {
        let pool = Pool::v6(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::ffff".parse().unwrap(),
        );
        let taken: BTreeMap<IpAddr, ()> = BTreeMap::new();
        assert_eq!(
            pick_ip(pool, &taken, &[v4("10.0.0.1")], &[], 0),
            Some("2001:db8::1".parse().unwrap())
        );
        assert!(!pool.contains(v4("10.0.0.1")));
    }

    #[test]
    fn tags() {
        let mut taken = BTreeMap::new();
        assert_eq!(pick_tag(1, 3, &taken, |_| false), Some(1));
        taken.insert(1, ());
        taken.insert(2, ());
        assert_eq!(pick_tag(1, 3, &taken, |_| false), Some(3));
        assert_eq!(pick_tag(1, 3, &taken, |t| t == 3), None);
        taken.insert(3, ());
        assert_eq!(pick_tag(1, 3, &taken, |_| false), None);
        assert_eq!(pick_tag(2, 10, &taken, |_| false), Some(4));
        assert_eq!(format_tag_ranges([1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
    }

    #[test]
    fn free_ranges() {
        let pool = Pool::v4("10.0.0.1".parse().unwrap(), "10.0.0.10".parse().unwrap());
        let mut taken = BTreeMap::new();
        taken.insert(v4("10.0.0.3"), ());
        taken.insert(v4("10.0.0.4"), ());
        assert_eq!(
            format_free_ranges(pool, &taken, &[v4("10.0.0.10")]),
            "10.0.0.1-10.0.0.2, 10.0.0.5-10.0.0.9"
        );
        assert_eq!(format_ip_ranges(pool, taken.keys()), "10.0.0.3-10.0.0.4");
    }
}

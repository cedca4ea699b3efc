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
        if !taken.contains_key(&ip)
            && !reserved.contains(&ip)
            && !fenced.iter().any(|f| f.contains(ip))
        {
            return Some(ip);
        }
    }
    None
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

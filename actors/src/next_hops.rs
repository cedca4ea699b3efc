//! Which learned next hops the kernel can take as gateways. A route's gateway must be on a
//! connected subnet (Linux checks it: "Nexthop has invalid gateway", ENETUNREACH), and a
//! reflected route's next hop is the owning host's fabric address, unchanged by the reflector:
//! on one L2 segment it is connected, but a host elsewhere (another segment, an address the
//! operator mistyped) is not. Such a next hop is left out of the route with a warning rather
//! than failing the route, or the whole sync; a route left with no next hop is not installed.

use crate::routes::KernelRoute;
use ipnet::Ipv4Net;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// What [`reachable`] left out: each next hop on no connected subnet, and how many routes
/// named it.
pub type Skipped = BTreeMap<Ipv4Addr, usize>;

/// `desired` with only the next hops some `connected` subnet holds; local routes untouched.
pub fn reachable(
    desired: &BTreeMap<Ipv4Net, KernelRoute>,
    connected: &[Ipv4Net],
) -> (BTreeMap<Ipv4Net, KernelRoute>, Skipped) {
    let on_link = |hop: &Ipv4Addr| connected.iter().any(|net| net.contains(hop));
    let mut skipped = Skipped::new();
    let mut table = BTreeMap::new();
    for (prefix, route) in desired {
        let route = match route {
            KernelRoute::Local => KernelRoute::Local,
            KernelRoute::Via(hops) => {
                let (kept, dropped): (BTreeSet<Ipv4Addr>, BTreeSet<Ipv4Addr>) =
                    hops.iter().partition(|hop| on_link(hop));
                for hop in dropped {
                    *skipped.entry(hop).or_default() += 1;
                }
                if kept.is_empty() {
                    continue;
                }
                KernelRoute::Via(kept)
            }
        };
        table.insert(*prefix, route);
    }
    (table, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn via(hops: &[&str]) -> KernelRoute {
        KernelRoute::Via(hops.iter().map(|h| h.parse().unwrap()).collect())
    }

    #[test]
    fn next_hops_off_every_connected_subnet_are_skipped_not_the_route() {
        let desired: BTreeMap<Ipv4Net, KernelRoute> = [
            (net("10.1.2.5/32"), KernelRoute::Local),
            // Reflected from a host on our segment.
            (net("10.1.2.7/32"), via(&["10.0.0.22"])),
            // ECMP over a ToR and a host on another segment: the ToR stays.
            (net("10.1.2.8/32"), via(&["10.254.1.0", "192.168.7.9"])),
            // Only the unreachable host: not installed at all.
            (net("10.1.2.9/32"), via(&["192.168.7.9"])),
        ]
        .into();
        let connected = [net("10.0.0.0/24"), net("10.254.1.0/31")];
        let (table, skipped) = reachable(&desired, &connected);
        assert_eq!(table[&net("10.1.2.5/32")], KernelRoute::Local);
        assert_eq!(table[&net("10.1.2.7/32")], via(&["10.0.0.22"]));
        assert_eq!(table[&net("10.1.2.8/32")], via(&["10.254.1.0"]));
        assert!(!table.contains_key(&net("10.1.2.9/32")));
        assert_eq!(
            skipped,
            [("192.168.7.9".parse().unwrap(), 2)].into(),
            "one entry per next hop, counting its routes"
        );
        // Everything connected: the table as it was.
        let (table, skipped) = reachable(&desired, &[net("0.0.0.0/0")]);
        assert_eq!(table, desired);
        assert!(skipped.is_empty());
    }
}

//! One Contiv rule, parsed: direction, priority, action, protocol and port, and the peer it
//! matches (a group, a network, a set of address prefixes, or anyone).

use std::net::Ipv4Addr;

use fabric_model::{Object, Rule};
use ipnet::Ipv4Net;

use crate::error::CompileError;

/// Which end of the traffic the rule's group is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// Traffic arriving at the group's containers (enforced on their host).
    In,
    /// Traffic the group's containers send (enforced on their host).
    Out,
}

/// The other end of the traffic (`from*` of an `in` rule, `to*` of an `out` rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Any,
    /// An endpoint group of the rule's tenant, by name.
    Group(String),
    /// A network of the rule's tenant, by name: its subnet.
    Network(String),
    /// Addresses, as the prefixes that cover them exactly.
    Prefixes(Vec<Ipv4Net>),
}

/// A rule ready to compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub key: String,
    pub direction: Direction,
    /// 1..=100, higher wins.
    pub priority: u8,
    pub deny: bool,
    pub protocol: Option<u8>,
    /// Destination port (TCP or UDP); `None` for any.
    pub port: Option<u16>,
    pub peer: Peer,
}

impl RuleSpec {
    /// Parses and checks a rule (the model's own field checks, then the address syntax).
    pub fn parse(rule: &Rule) -> Result<Self, CompileError> {
        let key = format!("{}:{}:{}", rule.tenant_name, rule.policy_name, rule.rule_id);
        let err = |reason: String| CompileError::Rule {
            key: key.clone(),
            reason,
        };
        rule.check_fields()
            .map_err(|e| err(format!("{}: {}", e.field, e.reason)))?;
        let direction = match rule.direction.as_str() {
            "in" => Direction::In,
            _ => Direction::Out,
        };
        let (group, network, address) = match direction {
            Direction::In => (
                &rule.from_endpoint_group,
                &rule.from_network,
                &rule.from_ip_address,
            ),
            Direction::Out => (
                &rule.to_endpoint_group,
                &rule.to_network,
                &rule.to_ip_address,
            ),
        };
        let peer = if !group.is_empty() {
            Peer::Group(group.clone())
        } else if !network.is_empty() {
            Peer::Network(network.clone())
        } else if !address.is_empty() {
            Peer::Prefixes(parse_addresses(address).map_err(err)?)
        } else {
            Peer::Any
        };
        let priority = u8::try_from(rule.priority)
            .map_err(|_| err(format!("priority {} is outside 1-100", rule.priority)))?;
        let port = match rule.port {
            0 => None,
            p => Some(u16::try_from(p).map_err(|_| err(format!("port {p} is outside 0-65535")))?),
        };
        Ok(RuleSpec {
            key,
            direction,
            priority,
            deny: rule.action == "deny",
            protocol: rule.protocol_number(),
            port,
            peer,
        })
    }
}

/// Contiv's rule address: `a.b.c.d`, `a.b.c.d/len`, or a range of the last octet
/// `a.b.c.d-e` (a prefix length after a range is ignored: the range says it all).
pub fn parse_addresses(value: &str) -> Result<Vec<Ipv4Net>, String> {
    let bad = || format!("'{value}' is not a.b.c.d, a.b.c.d/len or a.b.c.d-e");
    let (addr, len) = match value.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (value, None),
    };
    if let Some((first, last)) = addr.split_once('-') {
        let first: Ipv4Addr = first.parse().map_err(|_| bad())?;
        let last: u8 = last.parse().map_err(|_| bad())?;
        let o = first.octets();
        if last < o[3] {
            return Err(bad());
        }
        return Ok(range_prefixes(first, Ipv4Addr::new(o[0], o[1], o[2], last)));
    }
    let ip: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let net = Ipv4Net::new(ip, len.unwrap_or(32)).map_err(|_| bad())?;
    Ok(vec![net.trunc()])
}

/// The fewest prefixes that cover `first..=last` exactly.
pub fn range_prefixes(first: Ipv4Addr, last: Ipv4Addr) -> Vec<Ipv4Net> {
    let (mut lo, hi) = (u64::from(u32::from(first)), u64::from(u32::from(last)));
    let mut out = Vec::new();
    while lo <= hi {
        // The largest block aligned at `lo` that does not pass `hi`.
        let mut size = if lo == 0 {
            1 << 32
        } else {
            1u64 << lo.trailing_zeros()
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        let len = 32 - size.trailing_zeros() as u8;
        // `lo` fits in 32 bits here: it never passes `hi`.
        if let Ok(net) = Ipv4Net::new(Ipv4Addr::from(lo as u32), len) {
            out.push(net);
        }
        lo += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<Ipv4Net> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addresses("10.1.1.7").unwrap(), nets(&["10.1.1.7/32"]));
        assert_eq!(
            parse_addresses("10.1.1.7/24").unwrap(),
            nets(&["10.1.1.0/24"])
        );
        assert_eq!(
            parse_addresses("10.1.1.1-6").unwrap(),
            nets(&["10.1.1.1/32", "10.1.1.2/31", "10.1.1.4/31", "10.1.1.6/32"])
        );
        assert_eq!(
            parse_addresses("10.1.1.0-255/8").unwrap(),
            nets(&["10.1.1.0/24"])
        );
        for bad in ["10.1.1", "10.1.1.9-3", "x", "10.1.1.1/40"] {
            assert!(parse_addresses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn range_covers_exactly() {
        for (a, b) in [(0u32, 0u32), (3, 17), (0, u32::MAX), (255, 256), (1, 254)] {
            let ps = range_prefixes(Ipv4Addr::from(a), Ipv4Addr::from(b));
            let total: u64 = ps.iter().map(|p| 1u64 << (32 - p.prefix_len())).sum();
            assert_eq!(total, u64::from(b) - u64::from(a) + 1);
            assert_eq!(u32::from(ps[0].network()), a);
            assert_eq!(u32::from(ps[ps.len() - 1].broadcast()), b);
        }
    }
}

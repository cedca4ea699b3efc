//! Validators for Contiv's field formats (names, addresses, subnets, ranges, tags, bandwidth).
//!
//! Hand-written rather than compiled from the schemas' regexes: they give a reason a person can
//! act on ("prefix length 32 is outside 1-31") instead of "does not match ^((25[0-5]|...".

use crate::error::{FieldError, FieldResult};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Contiv's object name: dot-separated labels of letters and digits, hyphens only inside a label.
pub fn name(field: &'static str, value: &str, max_len: usize) -> FieldResult {
    if value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    optional_name(field, value, max_len)
}

/// Like [`name`], but empty is allowed (optional references).
pub fn optional_name(field: &'static str, value: &str, max_len: usize) -> FieldResult {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > max_len {
        return Err(FieldError::new(
            field,
            format!(
                "is {} characters long, at most {max_len} allowed",
                value.len()
            ),
        ));
    }
    for label in value.split('.') {
        let ok = !label.is_empty()
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(FieldError::new(
                field,
                format!("'{value}' is not a valid name: use letters, digits, '-' inside a word and '.' between words"),
            ));
        }
    }
    Ok(())
}

pub fn max_len(field: &'static str, value: &str, max: usize) -> FieldResult {
    if value.len() > max {
        return Err(FieldError::new(
            field,
            format!("is {} characters long, at most {max} allowed", value.len()),
        ));
    }
    Ok(())
}

pub fn one_of(field: &'static str, value: &str, allowed: &[&str]) -> FieldResult {
    if allowed.contains(&value) {
        Ok(())
    } else {
        let shown: Vec<String> = allowed
            .iter()
            .map(|a| {
                if a.is_empty() {
                    "\"\"".to_string()
                } else {
                    a.to_string()
                }
            })
            .collect();
        Err(FieldError::new(
            field,
            format!("'{value}' is not one of {}", shown.join(", ")),
        ))
    }
}

pub fn int_range(field: &'static str, value: i64, min: i64, max: i64) -> FieldResult {
    if value < min || value > max {
        return Err(FieldError::new(
            field,
            format!("{value} is outside {min}-{max}"),
        ));
    }
    Ok(())
}

pub fn ipv4(field: &'static str, value: &str) -> Result<Ipv4Addr, FieldError> {
    value
        .parse()
        .map_err(|_| FieldError::new(field, format!("'{value}' is not an IPv4 address (a.b.c.d)")))
}

pub fn ipv6(field: &'static str, value: &str) -> Result<Ipv6Addr, FieldError> {
    value
        .parse()
        .map_err(|_| FieldError::new(field, format!("'{value}' is not an IPv6 address")))
}

/// An inclusive IPv4 range `a.b.c.d-e.f.g.h` (or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Range {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl Ipv4Range {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.first <= ip && ip <= self.last
    }

    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.last)) - u64::from(u32::from(self.first)) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

pub fn ipv4_range(field: &'static str, value: &str) -> Result<Ipv4Range, FieldError> {
    let (a, b) = value.split_once('-').unwrap_or((value, value));
    let first = ipv4(field, a)?;
    let last = ipv4(field, b)?;
    if first > last {
        return Err(FieldError::new(
            field,
            format!("range '{value}' ends before it starts"),
        ));
    }
    Ok(Ipv4Range { first, last })
}

/// Contiv's network subnet: `a.b.c.d/len`, or `first-last/len` to hand out only part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetSpec {
    pub net: ipnet::Ipv4Net,
    /// The addresses IPAM may hand out (network and broadcast always excluded).
    pub pool: Ipv4Range,
}

pub fn subnet(field: &'static str, value: &str) -> Result<SubnetSpec, FieldError> {
    let (addr, len) = value.split_once('/').ok_or_else(|| {
        FieldError::new(
            field,
            format!("'{value}' has no prefix length: write a.b.c.d/len"),
        )
    })?;
    let len: u8 = len
        .parse()
        .map_err(|_| FieldError::new(field, format!("prefix length '{len}' is not a number")))?;
    if !(1..=31).contains(&len) {
        return Err(FieldError::new(
            field,
            format!("prefix length {len} is outside 1-31"),
        ));
    }
    let range = ipv4_range(field, addr)?;
    let net = ipnet::Ipv4Net::new(range.first, len)
        .map_err(|e| FieldError::new(field, e.to_string()))?
        .trunc();
    if addr.contains('-') && !net.contains(&range.last) {
        return Err(FieldError::new(
            field,
            format!("range end {} is outside {net}", range.last),
        ));
    }
    let hosts = Ipv4Range {
        first: host_first(net),
        last: host_last(net),
    };
    let pool = if addr.contains('-') {
        Ipv4Range {
            first: range.first.max(hosts.first),
            last: range.last.min(hosts.last),
        }
    } else {
        hosts
    };
    if pool.first > pool.last {
        return Err(FieldError::new(
            field,
            format!("'{value}' leaves no usable address"),
        ));
    }
    Ok(SubnetSpec { net, pool })
}

fn host_first(net: ipnet::Ipv4Net) -> Ipv4Addr {
    if net.prefix_len() >= 31 {
        net.network()
    } else {
        Ipv4Addr::from(u32::from(net.network()) + 1)
    }
}

fn host_last(net: ipnet::Ipv4Net) -> Ipv4Addr {
    if net.prefix_len() >= 31 {
        net.broadcast()
    } else {
        Ipv4Addr::from(u32::from(net.broadcast()) - 1)
    }
}

pub fn ipv6_subnet(field: &'static str, value: &str) -> Result<ipnet::Ipv6Net, FieldError> {
    let net: ipnet::Ipv6Net = value.parse().map_err(|_| {
        FieldError::new(field, format!("'{value}' is not an IPv6 subnet (addr/len)"))
    })?;
    if net.prefix_len() == 0 || net.prefix_len() > 127 {
        return Err(FieldError::new(
            field,
            format!("prefix length {} is outside 1-127", net.prefix_len()),
        ));
    }
    Ok(net.trunc())
}

/// A tag range like `1-4094`, bounded by `[min, max]`.
pub fn tag_range(
    field: &'static str,
    value: &str,
    min: u32,
    max: u32,
) -> Result<(u32, u32), FieldError> {
    let bad = || FieldError::new(field, format!("'{value}' is not a range like {min}-{max}"));
    let (a, b) = value.split_once('-').ok_or_else(bad)?;
    let a: u32 = a.trim().parse().map_err(|_| bad())?;
    let b: u32 = b.trim().parse().map_err(|_| bad())?;
    if a < min || b > max || a > b {
        return Err(FieldError::new(
            field,
            format!("range {a}-{b} must lie within {min}-{max} and not be reversed"),
        ));
    }
    Ok((a, b))
}

/// Rule address match: `a.b.c.d`, `a.b.c.d/len` or `a.b.c.d-N` (last octet range), as Contiv.
pub fn rule_ip(field: &'static str, value: &str) -> FieldResult {
    let (addr, len) = match value.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (value, None),
    };
    if let Some(l) = len {
        let l: u8 = l
            .parse()
            .map_err(|_| FieldError::new(field, format!("prefix length '{l}' is not a number")))?;
        if !(1..=32).contains(&l) {
            return Err(FieldError::new(
                field,
                format!("prefix length {l} is outside 1-32"),
            ));
        }
    }
    match addr.split_once('-') {
        None => ipv4(field, addr).map(|_| ()),
        Some((a, last)) => {
            let a = ipv4(field, a)?;
            let last: u8 = last.parse().map_err(|_| {
                FieldError::new(
                    field,
                    format!("range end '{last}' must be the last octet (0-255)"),
                )
            })?;
            if last < a.octets()[3] {
                return Err(FieldError::new(
                    field,
                    format!("range '{value}' ends before it starts"),
                ));
            }
            Ok(())
        }
    }
}

/// Bandwidth as Contiv writes it: `10Mbps`, `10 mbps`, `500k`, `1Gb`.
pub fn bandwidth(field: &'static str, value: &str) -> FieldResult {
    if value.is_empty() {
        return Ok(());
    }
    let digits: String = value.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = value[digits.len()..].trim_start();
    let units = ["kbps", "mbps", "gbps", "k", "m", "g", "kb", "mb", "gb"];
    if digits.is_empty()
        || digits.starts_with('0')
        || !units.contains(&unit.to_ascii_lowercase().as_str())
    {
        return Err(FieldError::new(
            field,
            format!("'{value}' is not a bandwidth like 10Mbps, 500kbps or 1Gbps"),
        ));
    }
    Ok(())
}

/// Parses a bandwidth string into bits per second (for the data plane and for display).
pub fn bandwidth_bps(value: &str) -> Option<u64> {
    let digits: String = value.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = value[digits.len()..].trim_start().to_ascii_lowercase();
    let mult = match unit.chars().next()? {
        'k' => 1_000,
        'm' => 1_000_000,
        'g' => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("n", "blue", 64).is_ok());
        assert!(name("n", "contiv-net.a1", 64).is_ok());
        assert!(name("n", "", 64).is_err());
        assert!(name("n", "-bad", 64).is_err());
        assert!(name("n", "bad-", 64).is_err());
        assert!(name("n", "a..b", 64).is_err());
        assert!(name("n", "has space", 64).is_err());
        assert!(name("n", "x_y", 64).is_err());
        assert!(name("n", &"a".repeat(65), 64).is_err());
        assert!(optional_name("n", "", 64).is_ok());
    }

    #[test]
    fn subnets() {
        let s = subnet("subnet", "10.1.1.0/24").unwrap();
        assert_eq!(s.pool.first, Ipv4Addr::new(10, 1, 1, 1));
        assert_eq!(s.pool.last, Ipv4Addr::new(10, 1, 1, 254));
        let s = subnet("subnet", "10.1.1.7/24").unwrap();
        assert_eq!(s.net.to_string(), "10.1.1.0/24");
        let s = subnet("subnet", "10.1.1.10-10.1.1.20/24").unwrap();
        assert_eq!(s.pool.len(), 11);
        assert!(subnet("subnet", "10.1.1.0").is_err());
        assert!(subnet("subnet", "10.1.1.0/32").is_err());
        assert!(subnet("subnet", "10.1.1.0/0").is_err());
        assert!(subnet("subnet", "10.1.1.300/24").is_err());
        assert!(subnet("subnet", "10.1.1.20-10.1.1.10/24").is_err());
        assert!(subnet("subnet", "10.1.1.10-10.1.2.20/24").is_err());
        let e = subnet("subnet", "10.1.1.0/33").unwrap_err();
        assert!(e.reason.contains("1-31"), "{e:?}");
    }

    #[test]
    fn ranges_and_tags() {
        assert_eq!(tag_range("vlans", "1-4094", 1, 4094).unwrap(), (1, 4094));
        assert!(tag_range("vlans", "0-4094", 1, 4094).is_err());
        assert!(tag_range("vlans", "100-10", 1, 4094).is_err());
        assert!(tag_range("vlans", "100", 1, 4094).is_err());
        assert!(ipv4_range("ipPool", "10.1.1.10-10.1.1.20").is_ok());
        assert!(ipv4_range("ipPool", "10.1.1.30-10.1.1.20").is_err());
    }

    #[test]
    fn rule_ips() {
        for ok in ["10.1.1.1", "10.1.1.0/24", "10.1.1.1-20", "10.1.1.1-20/24"] {
            assert!(rule_ip("fromIpAddress", ok).is_ok(), "{ok}");
        }
        for bad in ["10.1.1", "10.1.1.0/40", "10.1.1.30-20", "10.1.1.1-300", "x"] {
            assert!(rule_ip("fromIpAddress", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bandwidths() {
        for ok in ["10Mbps", "10 mbps", "500k", "1Gb", "3gbps"] {
            assert!(bandwidth("bandwidth", ok).is_ok(), "{ok}");
        }
        for bad in ["0Mbps", "Mbps", "10tbps", "10 "] {
            assert!(bandwidth("bandwidth", bad).is_err(), "{bad}");
        }
        assert_eq!(bandwidth_bps("10Mbps"), Some(10_000_000));
    }
}

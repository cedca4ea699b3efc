//! Where everything lives in the store. One place, so the layout can be read at a glance:
//!
//! | key | value |
//! |---|---|
//! | `/contiv/config/<collection>/<key>` | the object's JSON (user intent) |
//! | `/contiv/oper/endpoints/<id>` | an endpoint's JSON (written for agents) |
//! | `/contiv/alloc/ip/<tenant:network>/<ip>` | the owner of an allocated address: an endpoint id, or `reserved:<host>` for an address an agent holds for its next containers |
//! | `/contiv/alloc/vlan/<n>`, `/contiv/alloc/vxlan/<n>`, `/contiv/alloc/group/<n>` | the owner of a tag |
//! | `/contiv/refver/<collection>/<key>` | bumped when a referrer of the object appears |
//!
//! The `refver` keys let a delete on one master and a create on another exclude each other:
//! creating a referrer bumps the referred object's refver; deleting compares it unchanged.

use fabric_model::Collection;
use std::net::IpAddr;

pub const ROOT: &str = "/contiv/";

pub fn object(collection: Collection, key: &str) -> String {
    if collection == Collection::Endpoints {
        format!("/contiv/oper/endpoints/{key}")
    } else {
        format!("/contiv/config/{}/{key}", collection.rest_name())
    }
}

pub fn refver(collection: Collection, key: &str) -> String {
    format!("/contiv/refver/{}/{key}", collection.rest_name())
}

pub fn ip(network: &str, ip: IpAddr) -> String {
    format!("/contiv/alloc/ip/{network}/{ip}")
}

pub fn ip_prefix(network: &str) -> String {
    format!("/contiv/alloc/ip/{network}/")
}

/// The owner recorded on an address reserved for `host`'s next containers. Endpoint ids come
/// from CNI container ids, which the CNI spec limits to alphanumerics, `_`, `.` and `-`, so
/// the colon keeps the two apart.
pub fn reservation(host: &str) -> String {
    format!("{RESERVED}{host}")
}

/// The host an owner value reserves an address for, when it is a reservation.
pub fn reserved_for(owner: &str) -> Option<&str> {
    owner.strip_prefix(RESERVED)
}

const RESERVED: &str = "reserved:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TagKind {
    Vlan,
    Vxlan,
    Group,
}

impl TagKind {
    pub fn name(self) -> &'static str {
        match self {
            TagKind::Vlan => "vlan",
            TagKind::Vxlan => "vxlan",
            TagKind::Group => "group",
        }
    }
}

pub fn tag(kind: TagKind, n: u32) -> String {
    format!("/contiv/alloc/{}/{n}", kind.name())
}

/// What a store key is, parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Object(Collection, String),
    Ip(String, IpAddr),
    Tag(TagKind, u32),
    RefVer,
    Other,
}

pub fn parse(key: &str) -> Parsed {
    if let Some(rest) = key.strip_prefix("/contiv/config/") {
        if let Some((coll, k)) = rest.split_once('/') {
            if let Some(c) = Collection::from_rest_name(coll).filter(|c| c.is_config()) {
                return Parsed::Object(c, k.to_string());
            }
        }
    } else if let Some(id) = key.strip_prefix("/contiv/oper/endpoints/") {
        return Parsed::Object(Collection::Endpoints, id.to_string());
    } else if let Some(rest) = key.strip_prefix("/contiv/alloc/ip/") {
        if let Some((net, ip)) = rest.rsplit_once('/') {
            if let Ok(ip) = ip.parse() {
                return Parsed::Ip(net.to_string(), ip);
            }
        }
    } else if let Some(rest) = key.strip_prefix("/contiv/alloc/") {
        if let Some((kind, n)) = rest.split_once('/') {
            let kind = match kind {
                "vlan" => Some(TagKind::Vlan),
                "vxlan" => Some(TagKind::Vxlan),
                "group" => Some(TagKind::Group),
                _ => None,
            };
            if let (Some(kind), Ok(n)) = (kind, n.parse()) {
                return Parsed::Tag(kind, n);
            }
        }
    } else if key.starts_with("/contiv/refver/") {
        return Parsed::RefVer;
    }
    Parsed::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back() {
        assert_eq!(
            parse(&object(Collection::Rules, "blue:p:1")),
            Parsed::Object(Collection::Rules, "blue:p:1".into())
        );
        assert_eq!(
            parse(&object(Collection::Endpoints, "c1")),
            Parsed::Object(Collection::Endpoints, "c1".into())
        );
        let ip: IpAddr = "10.1.1.2".parse().unwrap();
        assert_eq!(
            parse(&self::ip("blue:net", ip)),
            Parsed::Ip("blue:net".into(), ip)
        );
        let v6: IpAddr = "2001:db8::5".parse().unwrap();
        assert_eq!(
            parse(&self::ip("blue:net", v6)),
            Parsed::Ip("blue:net".into(), v6)
        );
        assert_eq!(
            parse(&tag(TagKind::Vxlan, 7)),
            Parsed::Tag(TagKind::Vxlan, 7)
        );
        assert_eq!(parse(&refver(Collection::Tenants, "blue")), Parsed::RefVer);
        assert_eq!(parse("/elsewhere"), Parsed::Other);
    }
}

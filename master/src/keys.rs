//! Where everything lives in the store. One place, so the layout can be read at a glance:
//!
//! | key | value |
//! |---|---|
//! | `/contiv/config/<collection>/<key>` | the object's JSON (user intent) |
//! | `/contiv/oper/endpoints/<id>` | an endpoint's JSON (written for agents) |
//! | `/contiv/alloc/ip/<tenant:network>/<ip>` | the owner of an allocated address: an endpoint id, or `reserved:<host>` for an address an agent holds for its next containers |
//! | `/contiv/alloc/vlan/<n>`, `/contiv/alloc/vxlan/<n>`, `/contiv/alloc/group/<n>` | the owner of a tag |
//! | `/contiv/refver/<collection>/<key>` | bumped when a referrer of the object appears |
//! | `/contiv/auth/users/<username>` | a local user: names, `disable`, the argon2id hash of the password, and a stamp that changes with the password (sessions carry it) |
//! | `/contiv/auth/authorizations/<uuid>` | a principal (local user or LDAP group) granted `admin`, or `ops` of one tenant |
//! | `/contiv/auth/sessions/<id>` | a login or an agent registration: who, the principals, the user's stamp, when it ends; a token is honoured only while its session is here |
//! | `/contiv/auth/signing-key` | the HMAC-SHA256 key that signs tokens, generated once, shared by every master on the store |
//! | `/contiv/agents/<host>` | a registered agent: the address it reaches the masters from and when a master last heard from it (the reflectors admit BGP sessions from these) |
//! | `/contiv/masters/<id>` | a master: its REST URL, its route reflector's address, when it last said so (agents learn every master and reflector from any one) |
//! | `/contiv/auth/ldap` | the LDAP configuration (Contiv's `ldap_configuration` shape), the service account's password with it in clear like the signing key (no reply ever shows it) |
//!
//! The `refver` keys let a delete on one master and a create on another exclude each other:
//! creating a referrer bumps the referred object's refver; deleting compares it unchanged.

use fabric_model::Collection;
use std::net::IpAddr;

pub const ROOT: &str = "/contiv/";

/// Everything of authentication and authorization lives under here; never streamed to clients.
pub const AUTH: &str = "/contiv/auth/";
pub const SIGNING_KEY: &str = "/contiv/auth/signing-key";
pub const LDAP_CONFIG: &str = "/contiv/auth/ldap";

/// Registered agents and the masters themselves (see `fleet`); never streamed to clients.
pub const AGENTS: &str = "/contiv/agents/";
pub const MASTERS: &str = "/contiv/masters/";

pub fn agent(host: &str) -> String {
    format!("{AGENTS}{host}")
}

pub fn master(id: &str) -> String {
    format!("{MASTERS}{id}")
}

pub fn user(name: &str) -> String {
    format!("/contiv/auth/users/{name}")
}

pub fn authorization(id: &str) -> String {
    format!("/contiv/auth/authorizations/{id}")
}

pub fn session(id: &str) -> String {
    format!("/contiv/auth/sessions/{id}")
}

/// An authentication key, parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKey {
    User(String),
    Authorization(String),
    Session(String),
    SigningKey,
    Ldap,
}

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
    Auth(AuthKey),
    Agent(String),
    Master(String),
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
    } else if let Some(host) = key.strip_prefix(AGENTS).filter(|h| !h.is_empty()) {
        return Parsed::Agent(host.to_string());
    } else if let Some(id) = key.strip_prefix(MASTERS).filter(|i| !i.is_empty()) {
        return Parsed::Master(id.to_string());
    } else if key.starts_with("/contiv/refver/") {
        return Parsed::RefVer;
    } else if let Some(rest) = key.strip_prefix(AUTH) {
        let parsed = match rest.split_once('/') {
            Some(("users", name)) if !name.is_empty() => Some(AuthKey::User(name.into())),
            Some(("authorizations", id)) if !id.is_empty() => {
                Some(AuthKey::Authorization(id.into()))
            }
            Some(("sessions", id)) if !id.is_empty() => Some(AuthKey::Session(id.into())),
            None if key == SIGNING_KEY => Some(AuthKey::SigningKey),
            None if key == LDAP_CONFIG => Some(AuthKey::Ldap),
            _ => None,
        };
        if let Some(parsed) = parsed {
            return Parsed::Auth(parsed);
        }
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
        assert_eq!(parse(&agent("host1")), Parsed::Agent("host1".into()));
        assert_eq!(parse(&master("m1")), Parsed::Master("m1".into()));
        assert_eq!(parse(AGENTS), Parsed::Other);
        assert_eq!(
            parse(&user("alice")),
            Parsed::Auth(AuthKey::User("alice".into()))
        );
        assert_eq!(
            parse(&session("ab12")),
            Parsed::Auth(AuthKey::Session("ab12".into()))
        );
        assert_eq!(
            parse(&authorization("u-1")),
            Parsed::Auth(AuthKey::Authorization("u-1".into()))
        );
        assert_eq!(parse(SIGNING_KEY), Parsed::Auth(AuthKey::SigningKey));
        assert_eq!(parse(LDAP_CONFIG), Parsed::Auth(AuthKey::Ldap));
    }
}

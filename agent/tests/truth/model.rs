//! The truth table's rules, written once for both sides: as `netctl` arguments for the fabric
//! and as an independent model of Contiv's policy semantics (pipeline's crate docs, not its
//! compiler): among the matching rules of a direction the highest priority decides, `deny` wins
//! a tie, no match allows; a new connection passes when the source group's `out` rules and the
//! destination group's `in` rules both allow it. Tenants are apart (issue 15): a connection
//! between containers of two tenants never passes, whatever either tenant's rules say. Names
//! are a tenant's own: a rule's policy, its peer group or network, and a container's group
//! and network are looked up in their tenant.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Any,
    Tcp,
    Udp,
    Icmp,
    /// An IP protocol number, as Contiv also accepts.
    Number(u8),
}

/// What a rule matches at the other end: `from*` of an `in` rule, `to*` of an `out` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Any,
    Group(&'static str),
    Network(&'static str),
    /// Contiv's address syntax: `a.b.c.d`, `a.b.c.d/len` or `a.b.c.d-e` (last octet).
    Ip(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub tenant: &'static str,
    pub policy: &'static str,
    pub id: &'static str,
    pub dir: Dir,
    pub priority: u8,
    pub proto: Proto,
    /// Destination port; 0 for any.
    pub port: u16,
    pub peer: Peer,
    pub deny: bool,
}

/// The tenant every object belongs to unless said otherwise.
pub const DEFAULT_TENANT: &str = "default";

/// A rule's action, as `rule`'s last argument.
pub const ALLOW: bool = false;
pub const DENY: bool = true;

/// A rule's protocol and destination port, as `rule`'s fifth argument.
pub const ANY: (Proto, u16) = (Proto::Any, 0);
pub const ICMP: (Proto, u16) = (Proto::Icmp, 0);
pub const fn tcp(port: u16) -> (Proto, u16) {
    (Proto::Tcp, port)
}
pub const fn udp(port: u16) -> (Proto, u16) {
    (Proto::Udp, port)
}
pub const fn protocol(number: u8, port: u16) -> (Proto, u16) {
    (Proto::Number(number), port)
}

/// `rule("pol-b", "2", Dir::In, 10, tcp(8888), Peer::Any, ALLOW)`, a rule of the default
/// tenant (see [`Rule::of`]).
pub fn rule(
    policy: &'static str,
    id: &'static str,
    dir: Dir,
    priority: u8,
    (proto, port): (Proto, u16),
    peer: Peer,
    deny: bool,
) -> Rule {
    Rule {
        tenant: DEFAULT_TENANT,
        policy,
        id,
        dir,
        priority,
        proto,
        port,
        peer,
        deny,
    }
}

impl Rule {
    /// The same rule in `tenant`'s policy of that name.
    pub fn of(self, tenant: &'static str) -> Rule {
        Rule { tenant, ..self }
    }

    /// `netctl policy rule-add ...` as Contiv's tutorial writes it.
    pub fn netctl_add(&self) -> Vec<String> {
        let mut args = vec!["policy".to_string(), "rule-add".into()];
        if self.tenant != DEFAULT_TENANT {
            args.push(format!("--tenant={}", self.tenant));
        }
        args.extend([
            self.policy.into(),
            self.id.into(),
            format!(
                "-direction={}",
                if self.dir == Dir::In { "in" } else { "out" }
            ),
            format!("-priority={}", self.priority),
            format!("-action={}", if self.deny { "deny" } else { "allow" }),
        ]);
        match self.proto {
            Proto::Any => {}
            Proto::Tcp => args.push("-protocol=tcp".into()),
            Proto::Udp => args.push("-protocol=udp".into()),
            Proto::Icmp => args.push("-protocol=icmp".into()),
            Proto::Number(n) => args.push(format!("-protocol={n}")),
        }
        if self.port != 0 {
            args.push(format!("-port={}", self.port));
        }
        let side = if self.dir == Dir::In { "from" } else { "to" };
        match &self.peer {
            Peer::Any => {}
            Peer::Group(g) => args.push(format!("-{side}-group={g}")),
            Peer::Network(n) => args.push(format!("-{side}-network={n}")),
            Peer::Ip(a) => args.push(format!("-{side}-ip-address={a}")),
        }
        args
    }

    /// `netctl policy rule-rm ...`.
    pub fn netctl_rm(&self) -> Vec<String> {
        let mut args = vec!["policy".to_string(), "rule-rm".into()];
        if self.tenant != DEFAULT_TENANT {
            args.push(format!("--tenant={}", self.tenant));
        }
        args.extend([self.policy.to_string(), self.id.to_string()]);
        args
    }

    fn matches(&self, peer: &Ctr, probe: Probe) -> bool {
        let number = match probe {
            Probe::Tcp(_) => 6,
            Probe::Udp(_) => 17,
            Probe::Ping => 1,
        };
        let proto = match self.proto {
            Proto::Any => true,
            Proto::Tcp => number == 6,
            Proto::Udp => number == 17,
            Proto::Icmp => number == 1,
            Proto::Number(n) => number == n,
        };
        let port = match probe {
            Probe::Tcp(p) | Probe::Udp(p) => self.port == 0 || self.port == p,
            Probe::Ping => self.port == 0,
        };
        // A group or network name means the rule's own tenant's object of that name.
        let peer_ok = match &self.peer {
            Peer::Any => true,
            Peer::Group(g) => peer.tenant == self.tenant && peer.group == Some(*g),
            Peer::Network(n) => peer.tenant == self.tenant && peer.network == *n,
            Peer::Ip(a) => address_matches(a, peer.ip),
        };
        proto && port && peer_ok
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.dir == Dir::In { "in" } else { "out" };
        let action = if self.deny { "deny" } else { "allow" };
        if self.tenant != DEFAULT_TENANT {
            write!(f, "{}/", self.tenant)?;
        }
        write!(
            f,
            "{}:{} {dir} p{} {action}",
            self.policy, self.id, self.priority
        )
    }
}

/// Contiv's rule address against one address, written from its documentation.
pub fn address_matches(value: &str, ip: Ipv4Addr) -> bool {
    let (addr, len) = match value.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().expect("prefix length")),
        None => (value, 32),
    };
    if let Some((first, last)) = addr.split_once('-') {
        // A range of the last octet; a prefix length after it says nothing more.
        let first: Ipv4Addr = first.parse().expect("range start");
        let last: u8 = last.parse().expect("range end");
        let (f, x) = (first.octets(), ip.octets());
        return f[..3] == x[..3] && (f[3]..=last).contains(&x[3]);
    }
    let base = u32::from(addr.parse::<Ipv4Addr>().expect("address"));
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    base & mask == u32::from(ip) & mask
}

/// One container of the table.
#[derive(Clone, Debug)]
pub struct Ctr {
    pub name: &'static str,
    pub host: &'static str,
    pub tenant: &'static str,
    pub network: &'static str,
    pub group: Option<&'static str>,
    pub ip: Ipv4Addr,
    pub netns: String,
}

impl fmt::Display for Ctr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenant = if self.tenant == DEFAULT_TENANT {
            String::new()
        } else {
            format!("{}/", self.tenant)
        };
        write!(
            f,
            "{}({tenant}{} {} {})",
            self.name,
            self.group.unwrap_or("-"),
            self.host,
            self.ip
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Tcp(u16),
    Udp(u16),
    Ping,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Tcp(p) => write!(f, "tcp/{p}"),
            Probe::Udp(p) => write!(f, "udp/{p}"),
            Probe::Ping => write!(f, "ping"),
        }
    }
}

/// The rules and which policies each group carries: (tenant, group) → the tenant's policies.
#[derive(Clone, Debug, Default)]
pub struct Intent {
    pub rules: Vec<Rule>,
    pub attached: BTreeMap<(&'static str, &'static str), Vec<&'static str>>,
}

/// A model's answer for one cell, with the rule that decided each side (if any).
#[derive(Clone, Debug)]
pub struct Verdict {
    pub allowed: bool,
    /// Source and destination are of two tenants: denied whatever the rules say.
    pub cross_tenant: bool,
    /// What the rules alone say (the verdict unless the cell is cross-tenant).
    pub rules_allow: bool,
    pub out_rule: Option<Rule>,
    pub in_rule: Option<Rule>,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |r: &Option<Rule>| r.as_ref().map_or("none".to_string(), Rule::to_string);
        if self.cross_tenant {
            let word = if self.rules_allow { "allow" } else { "deny" };
            write!(f, "cross-tenant (the rules alone: {word}); ")?;
        }
        write!(
            f,
            "out: {}; in: {}",
            show(&self.out_rule),
            show(&self.in_rule)
        )
    }
}

impl Intent {
    /// The rule that decides `dir` for `ctr`'s group against `peer`, if any rule matches.
    fn deciding(&self, ctr: &Ctr, dir: Dir, peer: &Ctr, probe: Probe) -> Option<&Rule> {
        let policies = self.attached.get(&(ctr.tenant, ctr.group?))?;
        self.rules
            .iter()
            .filter(|r| r.tenant == ctr.tenant && r.dir == dir && policies.contains(&r.policy))
            .filter(|r| r.matches(peer, probe))
            .max_by_key(|r| (r.priority, r.deny))
    }

    /// Is a new connection `src` → `dst` of this kind allowed?
    pub fn verdict(&self, src: &Ctr, dst: &Ctr, probe: Probe) -> Verdict {
        let out_rule = self.deciding(src, Dir::Out, dst, probe).cloned();
        let in_rule = self.deciding(dst, Dir::In, src, probe).cloned();
        let allows = |r: &Option<Rule>| r.as_ref().is_none_or(|r| !r.deny);
        let rules_allow = allows(&out_rule) && allows(&in_rule);
        let cross_tenant = src.tenant != dst.tenant;
        Verdict {
            allowed: rules_allow && !cross_tenant,
            cross_tenant,
            rules_allow,
            out_rule,
            in_rule,
        }
    }

    /// Replaces a rule with the same tenant, policy and id, or adds it.
    pub fn put(&mut self, rule: Rule) {
        self.remove(rule.tenant, rule.policy, rule.id);
        self.rules.push(rule);
    }

    pub fn remove(&mut self, tenant: &str, policy: &str, id: &str) {
        self.rules
            .retain(|r| !(r.tenant == tenant && r.policy == policy && r.id == id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctr(group: Option<&'static str>, network: &'static str, ip: &str) -> Ctr {
        Ctr {
            name: "x",
            host: "h",
            tenant: DEFAULT_TENANT,
            network,
            group,
            ip: ip.parse().unwrap(),
            netns: String::new(),
        }
    }

    #[test]
    fn addresses() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(address_matches("10.1.2.7", ip("10.1.2.7")));
        assert!(!address_matches("10.1.2.7", ip("10.1.2.8")));
        assert!(address_matches("10.1.2.0/24", ip("10.1.2.200")));
        assert!(!address_matches("10.1.2.0/24", ip("10.1.3.2")));
        assert!(address_matches("10.1.2.10-19", ip("10.1.2.19")));
        assert!(!address_matches("10.1.2.10-19", ip("10.1.2.20")));
        assert!(!address_matches("10.1.2.10-19", ip("10.1.3.12")));
        assert!(address_matches("10.1.2.77/24", ip("10.1.2.3")));
        assert!(address_matches("10.1.2.10-19/8", ip("10.1.2.11")));
        assert!(!address_matches("10.1.2.10-19/8", ip("10.1.2.9")));
    }

    #[test]
    fn priority_then_deny_then_default_allow() {
        let a = ctr(Some("A"), "n1", "10.1.2.10");
        let b = ctr(Some("B"), "n1", "10.1.2.20");
        let mut intent = Intent::default();
        intent.attached.insert((DEFAULT_TENANT, "B"), vec!["pb"]);
        assert!(
            intent.verdict(&a, &b, Probe::Tcp(80)).allowed,
            "no rule: allow"
        );
        intent.put(rule("pb", "1", Dir::In, 1, tcp(0), Peer::Any, DENY));
        intent.put(rule("pb", "2", Dir::In, 10, tcp(8888), Peer::Any, ALLOW));
        assert!(!intent.verdict(&a, &b, Probe::Tcp(80)).allowed);
        assert!(intent.verdict(&a, &b, Probe::Tcp(8888)).allowed);
        assert!(intent.verdict(&a, &b, Probe::Udp(8888)).allowed);
        // A tie: deny wins.
        intent.put(rule("pb", "3", Dir::In, 10, ANY, Peer::Group("A"), DENY));
        assert!(!intent.verdict(&a, &b, Probe::Tcp(8888)).allowed);
        // `in` rules of B say nothing of what B sends.
        assert!(intent.verdict(&b, &a, Probe::Tcp(80)).allowed);
    }

    #[test]
    fn tenants_apart_whatever_the_rules_and_names_their_own() {
        let a = ctr(Some("A"), "n1", "10.1.2.10");
        let t2 = |group, network, ip| Ctr {
            tenant: "t2",
            ..ctr(group, network, ip)
        };
        // t2's A on t2's n1, another address.
        let a2 = t2(Some("A"), "n1", "10.2.2.10");
        let mut intent = Intent::default();
        intent.attached.insert((DEFAULT_TENANT, "A"), vec!["p"]);
        intent.attached.insert(("t2", "A"), vec!["p"]);
        // No rule: the default allows within a tenant, never across.
        assert!(intent.verdict(&a, &a, Probe::Ping).allowed);
        let v = intent.verdict(&a, &a2, Probe::Ping);
        assert!(!v.allowed && v.cross_tenant && v.rules_allow);
        assert!(!intent.verdict(&a2, &a, Probe::Tcp(80)).allowed);
        // An allow-everything rule in both tenants at the highest priority changes nothing.
        for t in [DEFAULT_TENANT, "t2"] {
            intent.put(rule("p", "1", Dir::In, 100, ANY, Peer::Any, ALLOW).of(t));
            intent.put(rule("p", "2", Dir::Out, 100, ANY, Peer::Any, ALLOW).of(t));
        }
        assert!(!intent.verdict(&a, &a2, Probe::Udp(53)).allowed);
        assert!(!intent.verdict(&a2, &a, Probe::Udp(53)).allowed);
        // A group or network name is the rule's tenant's: t2's rule naming A matches t2's A.
        intent.put(rule("p", "3", Dir::In, 100, tcp(80), Peer::Group("A"), DENY).of("t2"));
        intent.put(rule("p", "4", Dir::In, 100, udp(0), Peer::Network("n1"), DENY).of("t2"));
        let v = intent.verdict(&a2, &a2, Probe::Tcp(80));
        assert!(!v.allowed && !v.cross_tenant);
        assert!(!intent.verdict(&a2, &a2, Probe::Udp(53)).allowed);
        let v = intent.verdict(&a, &a2, Probe::Tcp(8888));
        assert_eq!(
            v.in_rule.map(|r| (r.tenant, r.id)),
            Some(("t2", "1")),
            "default's A is not t2's A"
        );
        // Removing t2's rule leaves default's of the same policy and id.
        intent.remove("t2", "p", "1");
        assert_eq!(intent.rules.iter().filter(|r| r.id == "1").count(), 1);
    }
}

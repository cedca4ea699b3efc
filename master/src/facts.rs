//! What every allocation asks of the intent, kept parsed in the cache: each network's tenant and
//! subnets, each group's ipPool, and whether the fabric is in native L3. Without it, every
//! allocation would deserialize every network and group to find overlaps and pools.

use crate::alloc::Pool;
use fabric_model::objects::{EndpointGroup, Global, Network};
use fabric_model::Collection;
use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::Value;
use std::collections::BTreeMap;

/// A network's tenant and subnets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subnets {
    tenant: String,
    v4: Option<Ipv4Net>,
    v6: Option<Ipv6Net>,
}

impl Subnets {
    /// The field in which the two share addresses, if they do.
    fn overlap(&self, other: &Subnets) -> Option<&'static str> {
        fn v4(a: &Ipv4Net, b: &Ipv4Net) -> bool {
            a.contains(&b.network()) || b.contains(&a.network())
        }
        fn v6(a: &Ipv6Net, b: &Ipv6Net) -> bool {
            a.contains(&b.network()) || b.contains(&a.network())
        }
        match (&self.v4, &other.v4, &self.v6, &other.v6) {
            (Some(a), Some(b), _, _) if v4(a, b) => Some("subnet"),
            (_, _, Some(a), Some(b)) if v6(a, b) => Some("ipv6Subnet"),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
pub struct Facts {
    native_l3: bool,
    networks: BTreeMap<String, Subnets>,
    /// Group key → (its network's key, its ipPool).
    pools: BTreeMap<String, (String, Pool)>,
}

impl Facts {
    /// Follows a change of an object; anything but networks, groups and `global` is ignored.
    pub fn apply(&mut self, collection: Collection, key: &str, value: Option<&Value>) {
        match collection {
            Collection::Globals => {
                self.native_l3 = value
                    .and_then(|v| serde_json::from_value::<Global>(v.clone()).ok())
                    .is_some_and(|g| g.is_native_l3());
            }
            Collection::Networks => {
                self.networks.remove(key);
                let Some(net) =
                    value.and_then(|v| serde_json::from_value::<Network>(v.clone()).ok())
                else {
                    return;
                };
                self.networks.insert(
                    key.to_string(),
                    Subnets {
                        v4: net.subnet_spec().ok().map(|s| s.net),
                        v6: fabric_model::fields::ipv6_subnet("ipv6Subnet", &net.ipv6_subnet).ok(),
                        tenant: net.tenant_name,
                    },
                );
            }
            Collection::EndpointGroups => {
                self.pools.remove(key);
                let Some(g) =
                    value.and_then(|v| serde_json::from_value::<EndpointGroup>(v.clone()).ok())
                else {
                    return;
                };
                if let Ok(r) = fabric_model::fields::ipv4_range("ipPool", &g.ip_pool) {
                    self.pools.insert(
                        key.to_string(),
                        (g.network_key(), Pool::v4(r.first, r.last)),
                    );
                }
            }
            _ => {}
        }
    }

    /// Whether `global` says native L3 (false before it exists: a fresh master writes it).
    pub fn native_l3(&self) -> bool {
        self.native_l3
    }

    /// Networks of other tenants sharing addresses with `network`, with the field they share
    /// them in.
    pub fn foreign_overlaps(&self, network: &str) -> Vec<(String, &'static str)> {
        let Some(mine) = self.networks.get(network) else {
            return Vec::new();
        };
        self.overlaps_of(mine)
    }

    /// Networks of other tenants than `net`'s that share addresses with it (`net` need not be
    /// stored yet).
    pub fn foreign_overlaps_of(&self, net: &Network) -> Vec<(String, &'static str)> {
        self.overlaps_of(&Subnets {
            tenant: net.tenant_name.clone(),
            v4: net.subnet_spec().ok().map(|s| s.net),
            v6: fabric_model::fields::ipv6_subnet("ipv6Subnet", &net.ipv6_subnet).ok(),
        })
    }

    fn overlaps_of(&self, mine: &Subnets) -> Vec<(String, &'static str)> {
        self.networks
            .iter()
            .filter(|(_, other)| other.tenant != mine.tenant)
            .filter_map(|(key, other)| mine.overlap(other).map(|f| (key.clone(), f)))
            .collect()
    }

    /// Every pair of networks of different tenants that share addresses, each pair once.
    pub fn cross_tenant_overlaps(&self) -> Vec<(String, String, &'static str)> {
        let nets: Vec<(&String, &Subnets)> = self.networks.iter().collect();
        let mut out = Vec::new();
        for (i, (ka, a)) in nets.iter().enumerate() {
            for (kb, b) in &nets[i + 1..] {
                if a.tenant != b.tenant {
                    if let Some(f) = a.overlap(b) {
                        out.push(((*ka).clone(), (*kb).clone(), f));
                    }
                }
            }
        }
        out
    }

    /// The ipPools of `network`'s groups, but `except`'s.
    pub fn group_pools(&self, network: &str, except: &str) -> Vec<Pool> {
        self.pools
            .iter()
            .filter(|(group, (net, _))| net == network && group.as_str() != except)
            .map(|(_, (_, pool))| *pool)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overlaps_are_across_tenants_only_and_follow_deletes() {
        let mut f = Facts::default();
        let net = |t: &str, s: &str| json!({"tenantName": t, "networkName": "n", "subnet": s});
        f.apply(Collection::Networks, "a:n", Some(&net("a", "10.0.0.0/16")));
        f.apply(Collection::Networks, "a:m", Some(&net("a", "10.0.1.0/24")));
        f.apply(
            Collection::Networks,
            "b:n",
            Some(&net("b", "10.0.200.0/24")),
        );
        f.apply(Collection::Networks, "b:m", Some(&net("b", "10.1.0.0/24")));
        assert_eq!(f.foreign_overlaps("b:n"), vec![("a:n".into(), "subnet")]);
        assert!(f.foreign_overlaps("b:m").is_empty());
        assert_eq!(
            f.cross_tenant_overlaps(),
            vec![("a:n".into(), "b:n".into(), "subnet")]
        );
        f.apply(Collection::Networks, "a:n", None);
        assert!(f.foreign_overlaps("b:n").is_empty());
    }

    #[test]
    fn pools_and_mode() {
        let mut f = Facts::default();
        assert!(!f.native_l3());
        f.apply(
            Collection::Globals,
            "global",
            Some(&json!({"name": "global", "fwdMode": "routing"})),
        );
        assert!(f.native_l3());
        let g = json!({"tenantName": "t", "groupName": "g", "networkName": "n", "ipPool": "10.0.0.8-10.0.0.9"});
        f.apply(Collection::EndpointGroups, "t:g", Some(&g));
        assert_eq!(f.group_pools("t:n", "").len(), 1);
        assert!(f.group_pools("t:n", "t:g").is_empty());
        assert!(f.group_pools("t:other", "").is_empty());
        f.apply(Collection::EndpointGroups, "t:g", None);
        assert!(f.group_pools("t:n", "").is_empty());
    }
}

//! The part of the master's intent the host pipeline needs: tenants, networks, groups with
//! their ids, rules, and the fabric's endpoints on other hosts. [`IntentView`] keeps the raw
//! objects from the state snapshot and the watch stream and derives an [`Intent`] from them.

use fabric_model::objects::{EndpointGroup, Network, Rule};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// What the pipeline compiler needs from the master.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intent {
    pub tenants: BTreeSet<String>,
    /// By key `tenant:network`.
    pub networks: BTreeMap<String, Network>,
    /// By key `tenant:group`, with the group id the master allocated.
    pub groups: BTreeMap<String, (EndpointGroup, u32)>,
    /// By key `tenant:policy:ruleId`.
    pub rules: BTreeMap<String, Rule>,
    /// Endpoints on other hosts: address → (tenant, group id).
    pub remote: BTreeMap<Ipv4Addr, (String, u32)>,
}

/// The collections the intent is made of (REST names).
const COLLECTIONS: [&str; 5] = [
    "tenants",
    "networks",
    "endpointGroups",
    "rules",
    "endpoints",
];

/// Raw objects by collection and key, plus group ids.
#[derive(Debug, Clone, Default)]
pub struct IntentView {
    host: String,
    objects: BTreeMap<&'static str, BTreeMap<String, Value>>,
    group_ids: BTreeMap<u32, String>,
}

impl IntentView {
    pub fn new(host: &str) -> IntentView {
        IntentView {
            host: host.to_string(),
            ..IntentView::default()
        }
    }

    /// Replaces everything with a `/api/v1/state` snapshot.
    pub fn snapshot(&mut self, state: &Value) {
        self.objects.clear();
        for c in COLLECTIONS {
            let map = self.objects.entry(c).or_default();
            for v in state["objects"][c].as_array().into_iter().flatten() {
                if let Some(key) = v["key"].as_str() {
                    map.insert(key.to_string(), v.clone());
                }
            }
        }
        self.group_ids = state["groupIds"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((u32::try_from(v.as_u64()?).ok()?, k.clone())))
            .collect();
    }

    /// Applies one watch line; true if it touched the intent.
    pub fn event(&mut self, line: &Value) -> bool {
        let put = line["type"] == "put";
        if line["tag"] == "groupId" {
            let Some(id) = line["value"].as_u64().and_then(|v| u32::try_from(v).ok()) else {
                return false;
            };
            match (put, line["owner"].as_str()) {
                (true, Some(owner)) => self.group_ids.insert(id, owner.to_string()),
                _ => self.group_ids.remove(&id),
            };
            return true;
        }
        let Some(c) = COLLECTIONS.into_iter().find(|c| line["collection"] == *c) else {
            return false;
        };
        let Some(key) = line["key"].as_str() else {
            return false;
        };
        let map = self.objects.entry(c).or_default();
        if put && !line["object"].is_null() {
            map.insert(key.to_string(), line["object"].clone());
        } else {
            map.remove(key);
        }
        true
    }

    fn typed<T: serde::de::DeserializeOwned>(&self, c: &str) -> impl Iterator<Item = (&String, T)> {
        self.objects
            .get(c)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k, serde_json::from_value::<T>(v.clone()).ok()?)))
    }

    /// The intent as the pipeline sees it now.
    pub fn intent(&self) -> Intent {
        let ids: BTreeMap<&str, u32> = self
            .group_ids
            .iter()
            .map(|(id, owner)| (owner.as_str(), *id))
            .collect();
        let groups: BTreeMap<String, (EndpointGroup, u32)> = self
            .typed::<EndpointGroup>("endpointGroups")
            .filter_map(|(k, g)| Some((k.clone(), (g, *ids.get(k.as_str())?))))
            .collect();
        let remote = self
            .objects
            .get("endpoints")
            .into_iter()
            .flatten()
            .filter(|(_, e)| e["homingHost"] != self.host.as_str())
            .flat_map(|(_, e)| {
                let tenant = e["network"]
                    .as_str()
                    .and_then(|n| n.split(':').next())
                    .unwrap_or_default()
                    .to_string();
                let group = e["endpointGroupKey"]
                    .as_str()
                    .and_then(|g| ids.get(g).copied())
                    .unwrap_or(0);
                e["ipAddress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|ip| ip.as_str()?.parse::<Ipv4Addr>().ok())
                    .map(move |ip| (ip, (tenant.clone(), group)))
                    .collect::<Vec<_>>()
            })
            .collect();
        Intent {
            tenants: self
                .objects
                .get("tenants")
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect(),
            networks: self
                .typed::<Network>("networks")
                .map(|(k, n)| (k.clone(), n))
                .collect(),
            groups,
            rules: self
                .typed::<Rule>("rules")
                .map(|(k, r)| (k.clone(), r))
                .collect(),
            remote,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snapshot_and_events_make_the_intent() {
        let mut v = IntentView::new("host1");
        v.snapshot(&json!({
            "revision": 3,
            "objects": {
                "tenants": [{"key": "default", "tenantName": "default"}],
                "networks": [{"key": "default:net", "tenantName": "default", "networkName": "net",
                              "subnet": "10.1.2.0/24", "gateway": "10.1.2.1", "encap": "vxlan"}],
                "endpointGroups": [{"key": "default:web", "tenantName": "default", "groupName": "web",
                                    "networkName": "net", "policies": ["p"]}],
                "endpoints": [
                    {"key": "a", "endpointID": "a", "network": "default:net", "endpointGroupKey": "default:web",
                     "ipAddress": ["10.1.2.5"], "homingHost": "host2"},
                    {"key": "b", "endpointID": "b", "network": "default:net", "ipAddress": ["10.1.2.6"],
                     "homingHost": "host1"}
                ]
            },
            "groupIds": {"default:web": 7}
        }));
        let i = v.intent();
        assert!(i.tenants.contains("default"));
        assert_eq!(i.networks.len(), 1);
        assert_eq!(i.groups["default:web"].1, 7);
        assert_eq!(i.remote.len(), 1, "only other hosts' endpoints are remote");
        assert_eq!(
            i.remote[&"10.1.2.5".parse().unwrap()],
            ("default".to_string(), 7)
        );

        assert!(v.event(&json!({"revision": 4, "type": "delete", "collection": "endpoints", "key": "a", "object": null})));
        assert!(v.intent().remote.is_empty());
        assert!(v.event(
            &json!({"revision": 5, "type": "delete", "tag": "groupId", "value": 7, "owner": null})
        ));
        assert!(
            v.intent().groups.is_empty(),
            "a group without an id is left out"
        );
        assert!(!v.event(
            &json!({"revision": 6, "type": "put", "collection": "Bgps", "key": "h", "object": {}})
        ));
    }
}

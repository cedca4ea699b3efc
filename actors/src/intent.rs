//! The part of the master's intent the host pipeline needs: tenants, networks, groups with
//! their ids, rules, and the fabric's endpoints on other hosts. [`IntentView`] keeps it up to
//! date from the state snapshot and the watch stream, one object at a time: a burst of a
//! thousand rule writes costs a thousand small map updates, not a thousand rebuilds of
//! everything the master holds.

use fabric_model::objects::{EndpointGroup, Network, Rule};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

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

/// An endpoint on another host, as far as the intent cares.
#[derive(Debug, Clone, PartialEq)]
struct RemoteEndpoint {
    tenant: String,
    /// Its group's key, resolved to an id through the group ids.
    group: Option<String>,
    addrs: Vec<Ipv4Addr>,
}

/// The intent, maintained object by object, and what it is derived from.
#[derive(Debug, Clone, Default)]
pub struct IntentView {
    host: String,
    /// Shared with the consumers of [`IntentView::take_change`]; copied on the next write
    /// only while one of them still holds it.
    intent: Arc<Intent>,
    /// Groups as the master has them, with an id or not yet.
    groups: BTreeMap<String, EndpointGroup>,
    /// Group key → id, and id → key (deletions name the id only).
    ids: BTreeMap<String, u32>,
    owners: BTreeMap<u32, String>,
    /// Endpoints on other hosts by key.
    remote: BTreeMap<String, RemoteEndpoint>,
    /// The keys claiming each remote address; the greatest key's endpoint is the one used.
    claims: BTreeMap<Ipv4Addr, BTreeSet<String>>,
    changed: bool,
}

/// The collections the intent is made of (REST names).
const COLLECTIONS: [&str; 5] = [
    "tenants",
    "networks",
    "endpointGroups",
    "rules",
    "endpoints",
];

/// Inserts (`Some`) or removes `key` in `map`.
fn set<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, value: Option<V>) {
    match value {
        Some(v) => map.insert(key, v),
        None => map.remove(&key),
    };
}

/// The object as `T`, or `None` (with a warning) when it is not one.
fn typed<T: DeserializeOwned>(collection: &str, key: &str, object: &Value) -> Option<T> {
    match T::deserialize(object) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(collection, key, error = %e, "object left out of the intent");
            None
        }
    }
}

/// Sets or removes `$key` in the intent's map `$field`, copying the shared intent only when
/// the value really changes.
macro_rules! edit {
    ($view:ident . $field:ident, $key:expr, $value:expr) => {{
        let (key, value) = ($key, $value);
        if $view.intent.$field.get(&key) != value.as_ref() {
            set(&mut Arc::make_mut(&mut $view.intent).$field, key, value);
            $view.changed = true;
        }
    }};
}

impl IntentView {
    pub fn new(host: &str) -> IntentView {
        IntentView {
            host: host.to_string(),
            ..IntentView::default()
        }
    }

    /// Replaces everything with a `/api/v1/state` snapshot; the intent counts as changed.
    pub fn snapshot(&mut self, state: &Value) {
        *self = IntentView::new(&self.host);
        for (owner, id) in state["groupIds"].as_object().into_iter().flatten() {
            if let Some(id) = id.as_u64().and_then(|v| u32::try_from(v).ok()) {
                self.set_group_id(id, owner);
            }
        }
        for c in COLLECTIONS {
            for v in state["objects"][c].as_array().into_iter().flatten() {
                if let Some(key) = v["key"].as_str() {
                    self.apply(c, key, Some(v));
                }
            }
        }
        self.changed = true;
    }

    /// Applies one watch line; true if it is one the intent is made of.
    pub fn event(&mut self, line: &Value) -> bool {
        let put = line["type"] == "put";
        if line["tag"] == "groupId" {
            let Some(id) = line["value"].as_u64().and_then(|v| u32::try_from(v).ok()) else {
                return false;
            };
            match (put, line["owner"].as_str()) {
                (true, Some(owner)) => self.set_group_id(id, owner),
                _ => self.drop_group_id(id),
            }
            return true;
        }
        let Some(c) = COLLECTIONS.into_iter().find(|c| line["collection"] == *c) else {
            return false;
        };
        let Some(key) = line["key"].as_str() else {
            return false;
        };
        let object = Some(&line["object"]).filter(|o| put && !o.is_null());
        self.apply(c, key, object);
        true
    }

    /// The intent as the pipeline sees it now.
    pub fn intent(&self) -> Arc<Intent> {
        self.intent.clone()
    }

    /// The intent, if it changed since the last call.
    pub fn take_change(&mut self) -> Option<Arc<Intent>> {
        std::mem::take(&mut self.changed).then(|| self.intent.clone())
    }

    /// One object of `collection` put (`Some`) or deleted.
    fn apply(&mut self, collection: &str, key: &str, object: Option<&Value>) {
        match collection {
            "tenants" => {
                let known = self.intent.tenants.contains(key);
                if known != object.is_some() {
                    let tenants = &mut Arc::make_mut(&mut self.intent).tenants;
                    if known {
                        tenants.remove(key);
                    } else {
                        tenants.insert(key.to_string());
                    }
                    self.changed = true;
                }
            }
            "networks" => {
                let network = object.and_then(|o| typed::<Network>(collection, key, o));
                edit!(self.networks, key.to_string(), network);
            }
            "rules" => {
                let rule = object.and_then(|o| typed::<Rule>(collection, key, o));
                edit!(self.rules, key.to_string(), rule);
            }
            "endpointGroups" => {
                let group = object.and_then(|o| typed::<EndpointGroup>(collection, key, o));
                set(&mut self.groups, key.to_string(), group);
                self.refresh_group(key);
            }
            "endpoints" => self.put_endpoint(key, object),
            _ => {}
        }
    }

    /// The intent's entry for group `key`: present when both the group and its id are known.
    fn refresh_group(&mut self, key: &str) {
        let entry = self
            .groups
            .get(key)
            .cloned()
            .zip(self.ids.get(key).copied());
        edit!(self.groups, key.to_string(), entry);
    }

    fn set_group_id(&mut self, id: u32, owner: &str) {
        if let Some(old) = self.owners.insert(id, owner.to_string()) {
            if old != owner && self.ids.get(&old) == Some(&id) {
                self.ids.remove(&old);
                self.refresh_group_and_members(&old);
            }
        }
        if let Some(prev) = self.ids.insert(owner.to_string(), id) {
            if prev != id && self.owners.get(&prev).map(String::as_str) == Some(owner) {
                self.owners.remove(&prev);
            }
        }
        self.refresh_group_and_members(owner);
    }

    fn drop_group_id(&mut self, id: u32) {
        let Some(owner) = self.owners.remove(&id) else {
            return;
        };
        if self.ids.get(&owner) == Some(&id) {
            self.ids.remove(&owner);
        }
        self.refresh_group_and_members(&owner);
    }

    /// After a group's id changed: the group and the remote endpoints in it.
    fn refresh_group_and_members(&mut self, group: &str) {
        self.refresh_group(group);
        let addrs: Vec<Ipv4Addr> = self
            .remote
            .values()
            .filter(|e| e.group.as_deref() == Some(group))
            .flat_map(|e| e.addrs.iter().copied())
            .collect();
        for a in addrs {
            self.refresh_addr(a);
        }
    }

    /// An endpoint put or deleted; only endpoints on other hosts are kept.
    fn put_endpoint(&mut self, key: &str, object: Option<&Value>) {
        let endpoint = object
            .filter(|e| e["homingHost"] != self.host.as_str())
            .map(|e| RemoteEndpoint {
                tenant: e["network"]
                    .as_str()
                    .and_then(|n| n.split(':').next())
                    .unwrap_or_default()
                    .to_string(),
                group: e["endpointGroupKey"].as_str().map(str::to_string),
                addrs: e["ipAddress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|ip| ip.as_str()?.parse::<Ipv4Addr>().ok())
                    .collect(),
            });
        let new_addrs = endpoint
            .as_ref()
            .map(|e| e.addrs.clone())
            .unwrap_or_default();
        let old = match endpoint {
            Some(e) => self.remote.insert(key.to_string(), e),
            None => self.remote.remove(key),
        };
        let old_addrs = old.map(|e| e.addrs).unwrap_or_default();
        for a in &old_addrs {
            if let Some(keys) = self.claims.get_mut(a) {
                keys.remove(key);
                if keys.is_empty() {
                    self.claims.remove(a);
                }
            }
        }
        for a in &new_addrs {
            self.claims.entry(*a).or_default().insert(key.to_string());
        }
        for a in old_addrs.into_iter().chain(new_addrs) {
            self.refresh_addr(a);
        }
    }

    /// The intent's entry for remote address `a`, from the endpoint claiming it.
    fn refresh_addr(&mut self, a: Ipv4Addr) {
        let entry = self
            .claims
            .get(&a)
            .and_then(|keys| keys.last())
            .and_then(|k| self.remote.get(k))
            .map(|e| {
                let id = e.group.as_ref().and_then(|g| self.ids.get(g)).copied();
                (e.tenant.clone(), id.unwrap_or(0))
            });
        edit!(self.remote, a, entry);
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

/// The incremental view against a from-scratch derivation of the same state, after every line
/// of random watch streams.
#[cfg(test)]
mod incremental {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::json;

    /// What the master holds: objects by collection and key, group ids by id.
    #[derive(Default)]
    struct Store {
        objects: BTreeMap<&'static str, BTreeMap<String, Value>>,
        ids: BTreeMap<u32, String>,
    }

    /// The intent derived from scratch, the straightforward way.
    fn reference(store: &Store, host: &str) -> Intent {
        let list = |c: &str| store.objects.get(c).into_iter().flatten();
        let ids: BTreeMap<&str, u32> = store.ids.iter().map(|(id, o)| (o.as_str(), *id)).collect();
        let mut intent = Intent {
            tenants: list("tenants").map(|(k, _)| k.clone()).collect(),
            ..Intent::default()
        };
        for (k, v) in list("networks") {
            if let Ok(n) = Network::deserialize(v) {
                intent.networks.insert(k.clone(), n);
            }
        }
        for (k, v) in list("rules") {
            if let Ok(r) = Rule::deserialize(v) {
                intent.rules.insert(k.clone(), r);
            }
        }
        for (k, v) in list("endpointGroups") {
            if let (Ok(g), Some(id)) = (EndpointGroup::deserialize(v), ids.get(k.as_str())) {
                intent.groups.insert(k.clone(), (g, *id));
            }
        }
        for (_, e) in list("endpoints").filter(|(_, e)| e["homingHost"] != host) {
            let tenant = e["network"].as_str().and_then(|n| n.split(':').next());
            let group = e["endpointGroupKey"].as_str().and_then(|g| ids.get(g));
            for ip in e["ipAddress"].as_array().into_iter().flatten() {
                if let Some(ip) = ip.as_str().and_then(|s| s.parse().ok()) {
                    let entry = (tenant.unwrap_or_default().to_string(), *group.unwrap_or(&0));
                    intent.remote.insert(ip, entry);
                }
            }
        }
        intent
    }

    const GROUPS: [&str; 3] = ["t:g1", "t:g2", "t:g3"];

    /// One watch line over a small universe of keys, so puts and deletes collide.
    fn line() -> impl Strategy<Value = Value> {
        let tenant = (any::<bool>(), 0..2u8).prop_map(|(put, i)| {
            let key = format!("t{i}");
            (
                put,
                "tenants",
                key.clone(),
                json!({"key": key, "tenantName": key}),
            )
        });
        let network = (any::<bool>(), 0..2u8, 0..3u8).prop_map(|(put, i, v)| {
            let key = format!("t:n{i}");
            let object = json!({"key": key, "tenantName": "t", "networkName": format!("n{i}"),
                                "subnet": format!("10.{v}.0.0/16")});
            (put, "networks", key, object)
        });
        let group = (any::<bool>(), 0..3usize, 0..3u8).prop_map(|(put, i, p)| {
            let key = GROUPS[i].to_string();
            let object = json!({"key": key, "tenantName": "t", "groupName": &key[2..],
                                "networkName": "n0", "policies": [format!("p{p}")]});
            (put, "endpointGroups", key, object)
        });
        let rule = (any::<bool>(), 0..3u8, 1..4i64, any::<bool>()).prop_map(|(put, i, pr, bad)| {
            let key = format!("t:p:{i}");
            let object = if bad {
                json!({"key": key, "priority": "high"})
            } else {
                json!({"key": key, "tenantName": "t", "policyName": "p", "ruleId": i.to_string(),
                       "direction": "in", "priority": pr, "action": "allow"})
            };
            (put, "rules", key, object)
        });
        let endpoint = (
            any::<bool>(),
            0..5u8,
            any::<bool>(),
            proptest::option::of(0..3usize),
            proptest::collection::vec(1..5u8, 0..3),
        )
            .prop_map(|(put, i, here, g, ips)| {
                let key = format!("e{i}");
                let ips: Vec<String> = ips.iter().map(|o| format!("10.0.0.{o}")).collect();
                let mut object = json!({"key": key, "network": "t:n0", "ipAddress": ips,
                                        "homingHost": if here { "host1" } else { "host2" }});
                if let Some(g) = g {
                    object["endpointGroupKey"] = json!(GROUPS[g]);
                }
                (put, "endpoints", key, object)
            });
        let objects = prop_oneof![tenant, network, group, rule, endpoint].prop_map(
            |(put, collection, key, object)| {
                json!({"type": if put { "put" } else { "delete" }, "collection": collection,
                       "key": key, "object": if put { object } else { Value::Null }})
            },
        );
        // A group keeps its id (11, 12, 13) for its life, as the master allocates them.
        let id = (any::<bool>(), 0..3usize).prop_map(|(put, i)| {
            json!({"type": if put { "put" } else { "delete" }, "tag": "groupId",
                   "value": 11 + i, "owner": if put { json!(GROUPS[i]) } else { Value::Null }})
        });
        prop_oneof![4 => objects, 1 => id]
    }

    /// What the line does to the master's store.
    fn record(store: &mut Store, line: &Value) {
        let put = line["type"] == "put";
        if line["tag"] == "groupId" {
            let id = line["value"].as_u64().unwrap_or(0) as u32;
            match line["owner"].as_str() {
                Some(owner) if put => store.ids.insert(id, owner.to_string()),
                _ => store.ids.remove(&id),
            };
            return;
        }
        let c = COLLECTIONS
            .into_iter()
            .find(|c| line["collection"] == *c)
            .unwrap();
        let key = line["key"].as_str().unwrap().to_string();
        let map = store.objects.entry(c).or_default();
        if put {
            map.insert(key, line["object"].clone());
        } else {
            map.remove(&key);
        }
    }

    fn snapshot(store: &Store) -> Value {
        let objects: serde_json::Map<String, Value> = store
            .objects
            .iter()
            .map(|(c, m)| (c.to_string(), m.values().cloned().collect()))
            .collect();
        let ids: serde_json::Map<String, Value> = store
            .ids
            .iter()
            .map(|(id, o)| (o.clone(), json!(id)))
            .collect();
        json!({"objects": objects, "groupIds": ids})
    }

    proptest! {
        #[test]
        fn every_line_leaves_the_intent_a_fresh_derivation_gives(
            lines in proptest::collection::vec(line(), 1..60)
        ) {
            let mut store = Store::default();
            let mut view = IntentView::new("host1");
            view.snapshot(&snapshot(&store));
            let mut last = view.take_change();
            prop_assert!(last.is_some(), "a snapshot counts as a change");
            for line in &lines {
                record(&mut store, line);
                view.event(line);
                let want = reference(&store, "host1");
                prop_assert_eq!(&*view.intent(), &want, "after {}", line);
                // A change is reported exactly when the intent differs from the last one.
                match view.take_change() {
                    Some(now) => {
                        prop_assert!(last.as_deref() != Some(&*now), "no-op reported: {}", line);
                        last = Some(now);
                    }
                    None => prop_assert_eq!(last.as_deref(), Some(&want), "missed: {}", line),
                }
            }
            let mut fresh = IntentView::new("host1");
            fresh.snapshot(&snapshot(&store));
            prop_assert_eq!(fresh.intent(), view.intent());
        }
    }
}

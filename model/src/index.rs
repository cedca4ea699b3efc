//! An in-memory copy of all configuration objects with a reverse-reference index: the master's
//! read side, and the [`Catalog`] the integrity rules run against.
//!
//! Objects are kept as JSON (what the store holds) and decoded to their type on demand, so one
//! index serves every collection.

use crate::collection::Collection;
use crate::integrity::Catalog;
use crate::object::{Object, Reference};
use crate::objects::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Runs `$body` with `$t` bound to the Rust type of `$collection`.
#[macro_export]
macro_rules! with_object_type {
    ($collection:expr, $t:ident => $body:expr) => {{
        use $crate::objects::*;
        match $collection {
            $crate::Collection::Tenants => {
                type $t = Tenant;
                $body
            }
            $crate::Collection::Networks => {
                type $t = Network;
                $body
            }
            $crate::Collection::EndpointGroups => {
                type $t = EndpointGroup;
                $body
            }
            $crate::Collection::Policies => {
                type $t = Policy;
                $body
            }
            $crate::Collection::Rules => {
                type $t = Rule;
                $body
            }
            $crate::Collection::AppProfiles => {
                type $t = AppProfile;
                $body
            }
            $crate::Collection::ServiceLbs => {
                type $t = ServiceLb;
                $body
            }
            $crate::Collection::Netprofiles => {
                type $t = Netprofile;
                $body
            }
            $crate::Collection::Globals => {
                type $t = Global;
                $body
            }
            $crate::Collection::Bgps => {
                type $t = Bgp;
                $body
            }
            $crate::Collection::AciGws => {
                type $t = AciGw;
                $body
            }
            $crate::Collection::ExtContractsGroups => {
                type $t = ExtContractsGroup;
                $body
            }
            $crate::Collection::Endpoints => {
                type $t = Endpoint;
                $body
            }
        }
    }};
}

/// The references of a stored object, whatever its type; none if it does not decode.
pub fn references_of(collection: Collection, value: &Value) -> Vec<Reference> {
    with_object_type!(collection, T => serde_json::from_value::<T>(value.clone()).map(|o| o.references()).unwrap_or_default())
}

type Id = (Collection, String);

#[derive(Debug, Default, Clone)]
pub struct ObjectIndex {
    objects: BTreeMap<Collection, BTreeMap<String, Value>>,
    /// target -> the objects referring to it.
    referrers: HashMap<Id, BTreeSet<Id>>,
}

impl ObjectIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, collection: Collection, key: &str) -> Option<&Value> {
        self.objects.get(&collection)?.get(key)
    }

    pub fn exists_key(&self, collection: Collection, key: &str) -> bool {
        self.get(collection, key).is_some()
    }

    pub fn get_typed<O: Object>(&self, key: &str) -> Option<O> {
        serde_json::from_value(self.get(O::COLLECTION, key)?.clone()).ok()
    }

    pub fn list(&self, collection: Collection) -> impl Iterator<Item = (&String, &Value)> {
        self.objects
            .get(&collection)
            .into_iter()
            .flat_map(|m| m.iter())
    }

    pub fn list_typed<O: Object>(&self) -> Vec<O> {
        self.list(O::COLLECTION)
            .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    pub fn len(&self, collection: Collection) -> usize {
        self.objects.get(&collection).map_or(0, BTreeMap::len)
    }

    pub fn is_empty(&self) -> bool {
        self.objects.values().all(BTreeMap::is_empty)
    }

    /// Inserts or replaces an object, keeping the reference index right.
    pub fn put(&mut self, collection: Collection, key: &str, value: Value) {
        self.remove(collection, key);
        let id = (collection, key.to_string());
        for r in references_of(collection, &value) {
            self.referrers
                .entry((r.collection, r.key))
                .or_default()
                .insert(id.clone());
        }
        self.objects
            .entry(collection)
            .or_default()
            .insert(key.to_string(), value);
    }

    pub fn remove(&mut self, collection: Collection, key: &str) -> Option<Value> {
        let old = self.objects.get_mut(&collection)?.remove(key)?;
        let id = (collection, key.to_string());
        for r in references_of(collection, &old) {
            let target = (r.collection, r.key);
            if let Some(set) = self.referrers.get_mut(&target) {
                set.remove(&id);
                if set.is_empty() {
                    self.referrers.remove(&target);
                }
            }
        }
        Some(old)
    }

    /// Objects of `of` that refer to `(collection, key)`.
    pub fn referrers_in(&self, collection: Collection, key: &str, of: Collection) -> Vec<String> {
        self.referrers
            .get(&(collection, key.to_string()))
            .into_iter()
            .flatten()
            .filter(|(c, _)| *c == of)
            .map(|(_, k)| k.clone())
            .collect()
    }
}

impl Catalog for ObjectIndex {
    fn exists(&self, collection: Collection, key: &str) -> bool {
        self.get(collection, key).is_some()
    }

    fn network(&self, key: &str) -> Option<Network> {
        self.get_typed(key)
    }

    fn networks_of_tenant(&self, tenant: &str) -> Vec<Network> {
        self.referrers_in(Collection::Tenants, tenant, Collection::Networks)
            .iter()
            .filter_map(|k| self.get_typed::<Network>(k))
            .collect()
    }

    fn referrers(&self, collection: Collection, key: &str) -> Vec<(Collection, String)> {
        self.referrers
            .get(&(collection, key.to_string()))
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

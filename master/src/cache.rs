//! The master's in-memory mirror of the store: objects (with their reference index), allocated
//! addresses and tags, and the revision of every key. It is fed by the store's watch, so a
//! master sees what other masters on the same etcd wrote, and by its own committed writes, so a
//! client reads its own writes at once.
//!
//! Events are applied per key only when newer than what the key already shows, so a local write
//! applied early and the same write arriving later through the watch do not step on each other.

use crate::keys::{self, Parsed, TagKind};
use fabric_model::index::ObjectIndex;
use fabric_model::Collection;
use fabric_store::Revision;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

#[derive(Debug, Default)]
pub struct Cache {
    pub objects: ObjectIndex,
    /// Networks' subnets, groups' pools and the fabric's mode, parsed.
    pub facts: crate::facts::Facts,
    /// Allocated addresses per network key, with their owner.
    pub ips: HashMap<String, BTreeMap<IpAddr, String>>,
    /// Allocated tags with the owning object's key.
    pub tags: HashMap<TagKind, BTreeMap<u32, String>>,
    /// The last revision applied for each store key; deleted keys keep theirs as a tombstone.
    revisions: HashMap<String, Revision>,
    /// Store keys that currently exist (for compares); the rest of `revisions` are tombstones.
    present: HashMap<String, Revision>,
    /// Every revision up to this one has been applied from the watch.
    pub watched: Revision,
    /// Users, authorizations, sessions, the signing key, the LDAP configuration.
    pub auth: crate::auth::state::AuthState,
    /// Registered agents and running masters.
    pub fleet: crate::fleet::Fleet,
    /// The tenant of each endpoint deleted since the cache was loaded, so a watch can show
    /// an endpoint's deletion to exactly those who may see the endpoint (a delete event has
    /// no object). Bounded: cleared past [`MAX_TOMBSTONES`].
    pub deleted_endpoint_tenants: HashMap<String, String>,
    /// The last owner of each released tag, for the same reason.
    pub deleted_tag_owners: HashMap<(TagKind, u32), String>,
}

/// Deleted endpoints whose tenant the cache remembers for watches.
const MAX_TOMBSTONES: usize = 100_000;

impl Cache {
    /// The mod revision of a key as the cache last saw it; 0 when absent (etcd's convention).
    pub fn mod_revision(&self, key: &str) -> Revision {
        self.present.get(key).copied().unwrap_or(0)
    }

    /// Applies one change; returns false when the cache already holds something newer.
    pub fn apply(&mut self, revision: Revision, key: &str, value: Option<&[u8]>) -> bool {
        if self.revisions.get(key).is_some_and(|&r| r >= revision) {
            return false;
        }
        self.revisions.insert(key.to_string(), revision);
        match value {
            Some(_) => self.present.insert(key.to_string(), revision),
            None => self.present.remove(key),
        };
        match keys::parse(key) {
            Parsed::Object(collection, k) => self.apply_object(collection, &k, value),
            Parsed::Ip(network, ip) => {
                let set = self.ips.entry(network.clone()).or_default();
                match value {
                    Some(owner) => {
                        set.insert(ip, String::from_utf8_lossy(owner).into_owned());
                    }
                    None => {
                        set.remove(&ip);
                        if set.is_empty() {
                            self.ips.remove(&network);
                        }
                    }
                }
            }
            Parsed::Tag(kind, n) => {
                let set = self.tags.entry(kind).or_default();
                match value {
                    Some(owner) => set.insert(n, String::from_utf8_lossy(owner).into_owned()),
                    None => set.remove(&n).inspect(|owner| {
                        self.deleted_tag_owners.insert((kind, n), owner.clone());
                    }),
                };
            }
            Parsed::Auth(k) => self.auth.apply(&k, value),
            Parsed::Agent(host) => self.fleet.apply_agent(&host, value),
            Parsed::Master(id) => self.fleet.apply_master(&id, value),
            Parsed::RefVer | Parsed::Other => {}
        }
        true
    }

    fn apply_object(&mut self, collection: Collection, key: &str, value: Option<&[u8]>) {
        match value.map(serde_json::from_slice::<serde_json::Value>) {
            Some(Ok(json)) => {
                self.facts.apply(collection, key, Some(&json));
                self.objects.put(collection, key, json)
            }
            Some(Err(error)) => {
                // A value we cannot read is someone else's bug; keep serving the rest.
                tracing::warn!(%key, %error, "store holds an object that is not JSON; ignoring it");
                self.facts.apply(collection, key, None);
                self.objects.remove(collection, key);
            }
            None => {
                if collection == Collection::Endpoints {
                    if let Some(tenant) = self
                        .objects
                        .get(collection, key)
                        .and_then(|o| o["network"].as_str())
                        .map(|n| crate::auth::rules::tenant_of_key(n).to_string())
                    {
                        if self.deleted_endpoint_tenants.len() >= MAX_TOMBSTONES {
                            self.deleted_endpoint_tenants.clear();
                        }
                        self.deleted_endpoint_tenants
                            .insert(key.to_string(), tenant);
                    }
                }
                self.facts.apply(collection, key, None);
                self.objects.remove(collection, key);
            }
        }
    }

    pub fn ips_of(&self, network: &str) -> Option<&BTreeMap<IpAddr, String>> {
        self.ips.get(network)
    }

    /// Every allocated address: network, address, owner.
    pub fn ips(&self) -> impl Iterator<Item = (&String, &IpAddr, &String)> {
        self.ips
            .iter()
            .flat_map(|(net, ips)| ips.iter().map(move |(ip, owner)| (net, ip, owner)))
    }

    pub fn tags_of(&self, kind: TagKind) -> Option<&BTreeMap<u32, String>> {
        self.tags.get(&kind)
    }

    /// Drops everything (before a full reload after the store's history was compacted).
    pub fn clear(&mut self) {
        *self = Cache::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_wins_per_key() {
        let mut c = Cache::default();
        let k = keys::object(Collection::Tenants, "blue");
        assert!(c.apply(5, &k, Some(br#"{"tenantName":"blue"}"#)));
        assert!(
            !c.apply(4, &k, None),
            "an older delete must not undo a newer put"
        );
        assert!(c.objects.get(Collection::Tenants, "blue").is_some());
        assert_eq!(c.mod_revision(&k), 5);
        assert!(c.apply(6, &k, None));
        assert_eq!(c.mod_revision(&k), 0);
        assert!(
            !c.apply(6, &k, Some(b"{}")),
            "a replay of an applied revision is ignored"
        );
    }

    #[test]
    fn allocations_are_tracked() {
        let mut c = Cache::default();
        let ip: IpAddr = "10.1.1.2".parse().unwrap();
        c.apply(1, &keys::ip("blue:n", ip), Some(b"ep1"));
        c.apply(2, &keys::tag(TagKind::Vxlan, 9), Some(b"blue:n"));
        assert_eq!(
            c.ips_of("blue:n").unwrap().get(&ip).map(String::as_str),
            Some("ep1")
        );
        assert!(c.tags_of(TagKind::Vxlan).unwrap().contains_key(&9));
        c.apply(3, &keys::ip("blue:n", ip), None);
        assert!(c.ips_of("blue:n").is_none());
    }
}

//! Writing user intent: decode a REST body into its model type, validate it against the cache,
//! allocate what it needs (VLAN/VXLAN tags, group ids), and commit it in one transaction whose
//! compares make a concurrent writer on another master lose cleanly instead of corrupting state.

use crate::auth::{rules, Caller, Need};
use crate::cache::Cache;
use crate::error::ApiError;
use crate::keys::{self, TagKind};
use crate::master::{Master, Plan};
use crate::proposals::Held;
use crate::tenancy;
use fabric_model::integrity::{check_delete, check_write};
use fabric_model::objects::*;
use fabric_model::{with_object_type, Collection, Object, DEFAULT_TENANT};
use fabric_store::Txn;
use serde_json::Value;

/// Largest group id: 32-bit register values, 0 meaning "no group".
const MAX_GROUP_ID: u32 = u32::MAX - 1;
/// Rules deleted with their policy in one transaction, below the store's op limit.
const RULES_PER_TXN: usize = 100;

/// Per-type steps of a write beyond validation: allocations on create, their release on delete.
pub(crate) trait Intent: Object {
    fn prepare(
        &mut self,
        _old: Option<&Self>,
        _cache: &Cache,
        _txn: &mut Txn,
        _held: &mut Held,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    fn release(&self, _cache: &Cache, _txn: &mut Txn) {}

    /// The host whose agent alone (with admins) may write this object; `None` when the
    /// object is configuration, governed by its collection's rule.
    fn owner_host(&self) -> Option<&str> {
        None
    }
}

/// What writing `obj` (replacing `old`) needs of the caller, with the compares that keep it.
fn authorize_write<T: Intent>(
    caller: &Caller,
    cache: &Cache,
    obj: &T,
    old: Option<&T>,
    id: &str,
) -> Result<Vec<fabric_store::Compare>, ApiError> {
    let key = obj.key();
    let mut compares = match obj.owner_host() {
        Some(host) => caller.require(cache, Need::Host(host), id)?,
        None => caller.require(cache, rules::write_need(T::COLLECTION, &key), id)?,
    };
    // An agent cannot take over another host's endpoint by writing its id.
    if let Some(old_host) = old.and_then(Intent::owner_host) {
        compares.extend(caller.require(cache, Need::Host(old_host), id)?);
    }
    Ok(compares)
}

impl Intent for Tenant {}
impl Intent for Policy {}
impl Intent for Rule {}
impl Intent for AppProfile {}
impl Intent for ServiceLb {}
impl Intent for Netprofile {}
impl Intent for Bgp {}
impl Intent for AciGw {}
impl Intent for ExtContractsGroup {}

/// An endpoint's address, when some host holds it in reserve, becomes the endpoint's in the same
/// transaction; an address another endpoint or another host holds is refused.
impl Intent for Endpoint {
    fn owner_host(&self) -> Option<&str> {
        Some(&self.homing_host)
    }

    fn prepare(
        &mut self,
        _old: Option<&Self>,
        cache: &Cache,
        txn: &mut Txn,
        _held: &mut Held,
    ) -> Result<(), ApiError> {
        if let Some(ip) = self.ip_address.first().and_then(|ip| ip.parse().ok()) {
            if let Some((network, holder)) = tenancy::foreign_holder_of(cache, &self.network, ip) {
                return Err(ApiError::conflict(
                    self.display_id(),
                    Some("ipAddress"),
                    format!(
                        "{ip} is held by {holder} in networks/{network} of another tenant; in \
                         native L3 one address cannot belong to two tenants"
                    ),
                ));
            }
            tenancy::guard_address(cache, &self.network, ip, txn);
        }
        let Some((ip, owner)) = address_holder(self, cache) else {
            return Ok(());
        };
        if !may_take(self, owner) {
            return Err(ApiError::conflict(
                self.display_id(),
                Some("ipAddress"),
                format!("{ip} is held by {owner}"),
            ));
        }
        let id = self.key();
        if *owner == id {
            return Ok(());
        }
        let key = keys::ip(&self.network, ip);
        txn.compares.push(fabric_store::Compare::Value(
            key.clone(),
            owner.clone().into_bytes(),
        ));
        txn.success.push(fabric_store::Op::Put {
            key,
            value: id.into_bytes(),
        });
        Ok(())
    }
}

/// The endpoint's address and who holds it now, when someone does.
pub(crate) fn address_holder<'c>(
    ep: &Endpoint,
    cache: &'c Cache,
) -> Option<(std::net::IpAddr, &'c String)> {
    let ip = ep.ip_address.first()?.parse().ok()?;
    Some((ip, cache.ips_of(&ep.network)?.get(&ip)?))
}

/// Whether the endpoint may have an address `owner` holds: its own, or its host's reserve.
pub(crate) fn may_take(ep: &Endpoint, owner: &str) -> bool {
    owner == ep.key() || keys::reserved_for(owner) == Some(ep.homing_host.as_str())
}

/// Addresses of a network held by endpoints (not by a host's reserve).
fn in_use(cache: &Cache, network: &str) -> usize {
    cache.ips_of(network).map_or(0, |ips| {
        ips.values()
            .filter(|owner| keys::reserved_for(owner).is_none())
            .count()
    })
}

fn global(cache: &Cache) -> Global {
    cache
        .objects
        .get_typed::<Global>(GLOBAL_NAME)
        .unwrap_or_default()
}

/// Records `owner` as the holder of `tag`, only if nobody holds it when the transaction commits.
fn claim_tag(kind: TagKind, tag: u32, owner: &str, txn: &mut Txn) {
    let key = keys::tag(kind, tag);
    txn.compares
        .push(fabric_store::Compare::Absent(key.clone()));
    txn.success.push(fabric_store::Op::Put {
        key,
        value: owner.as_bytes().to_vec(),
    });
}

fn release_tag(cache: &Cache, kind: TagKind, tag: u32, owner: &str, txn: &mut Txn) {
    if cache
        .tags_of(kind)
        .and_then(|t| t.get(&tag))
        .is_some_and(|o| o == owner)
    {
        txn.success.push(fabric_store::Op::Delete {
            key: keys::tag(kind, tag),
        });
    }
}

impl Intent for Network {
    fn prepare(
        &mut self,
        old: Option<&Self>,
        cache: &Cache,
        txn: &mut Txn,
        held: &mut Held,
    ) -> Result<(), ApiError> {
        if let Some(old) = old {
            if self.pkt_tag == 0 {
                self.pkt_tag = old.pkt_tag;
            }
            return Ok(());
        }
        // A new subnet is checked for overlap against the tenant's other networks; comparing the
        // tenant's refver makes that check hold against networks created on other masters too.
        let tenant_ver = keys::refver(Collection::Tenants, &self.tenant_name);
        txn.compares.push(fabric_store::Compare::ModRevision(
            tenant_ver.clone(),
            cache.mod_revision(&tenant_ver),
        ));
        tenancy::check_new_network(self, cache, txn)?;
        let g = global(cache);
        let (kind, range, range_field) = if self.encap == "vlan" {
            (TagKind::Vlan, g.vlan_range(), "vlans")
        } else {
            (TagKind::Vxlan, g.vxlan_range(), "vxlans")
        };
        let (first, last) = range
            .map_err(|e| ApiError::conflict("globals/global".into(), Some(e.field), e.reason))?;
        let taken = cache.tags_of(kind);
        let tag = if self.pkt_tag != 0 {
            let tag = self.pkt_tag as u32;
            if !(first..=last).contains(&tag) {
                return Err(ApiError::new(
                    422,
                    Some(self.display_id()),
                    Some("pktTag"),
                    format!("{tag} is outside the global {range_field} range {first}-{last}"),
                ));
            }
            if let Some(owner) = taken.and_then(|t| t.get(&tag)) {
                return Err(ApiError::conflict(
                    self.display_id(),
                    Some("pktTag"),
                    format!("{} {tag} is already used by {owner}", kind.name()),
                ));
            }
            tag
        } else {
            held.pick_tag(kind, first, last, taken).ok_or_else(|| {
                ApiError::conflict(
                    self.display_id(),
                    Some("pktTag"),
                    format!(
                        "no free {} left in the global range {first}-{last}",
                        kind.name()
                    ),
                )
            })?
        };
        self.pkt_tag = i64::from(tag);
        claim_tag(kind, tag, &self.key(), txn);
        Ok(())
    }

    fn release(&self, cache: &Cache, txn: &mut Txn) {
        let kind = if self.encap == "vlan" {
            TagKind::Vlan
        } else {
            TagKind::Vxlan
        };
        release_tag(cache, kind, self.pkt_tag as u32, &self.key(), txn);
    }
}

impl Intent for EndpointGroup {
    fn prepare(
        &mut self,
        old: Option<&Self>,
        cache: &Cache,
        txn: &mut Txn,
        held: &mut Held,
    ) -> Result<(), ApiError> {
        if old.is_some() {
            return Ok(());
        }
        let id = held
            .pick_tag(
                TagKind::Group,
                1,
                MAX_GROUP_ID,
                cache.tags_of(TagKind::Group),
            )
            .ok_or_else(|| ApiError::conflict(self.display_id(), None, "no free group id"))?;
        claim_tag(TagKind::Group, id, &self.key(), txn);
        Ok(())
    }

    fn release(&self, cache: &Cache, txn: &mut Txn) {
        if let Some(id) = group_id(cache, &self.key()) {
            release_tag(cache, TagKind::Group, id, &self.key(), txn);
        }
    }
}

/// The 32-bit id allocated to a group.
pub fn group_id(cache: &Cache, group_key: &str) -> Option<u32> {
    cache
        .tags_of(TagKind::Group)?
        .iter()
        .find(|(_, owner)| owner.as_str() == group_key)
        .map(|(id, _)| *id)
}

impl Intent for Global {
    fn prepare(
        &mut self,
        old: Option<&Self>,
        cache: &Cache,
        txn: &mut Txn,
        _held: &mut Held,
    ) -> Result<(), ApiError> {
        tenancy::check_global(self, old, cache, txn)?;
        // Contiv's clients write the whole object without our field: keep what was set.
        if self.fabric_as.is_empty() {
            self.fabric_as = old
                .map(|o| o.fabric_as.clone())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| fabric_model::objects::DEFAULT_FABRIC_AS.to_string());
        }
        for (kind, range, field) in [
            (TagKind::Vlan, self.vlan_range(), "vlans"),
            (TagKind::Vxlan, self.vxlan_range(), "vxlans"),
        ] {
            let Ok((first, last)) = range else { continue };
            if let Some((tag, owner)) = cache
                .tags_of(kind)
                .and_then(|t| t.iter().find(|(t, _)| !(first..=last).contains(*t)))
            {
                return Err(ApiError::conflict(
                    self.display_id(),
                    Some(field),
                    format!(
                        "range {first}-{last} would exclude {} {tag} in use by network {owner}",
                        kind.name()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Decodes a REST body for `collection/path_key`: key fields missing from the body come from the
/// path, key fields present must agree with it, and decoding errors name the field.
pub fn decode_body<T: Object>(path_key: &str, mut body: Value) -> Result<T, ApiError> {
    let collection = T::COLLECTION;
    let id = format!("{}/{path_key}", collection.rest_name());
    let Value::Object(map) = &mut body else {
        return Err(ApiError::bad_request(
            Some(id),
            None,
            "the body must be a JSON object",
        ));
    };
    let fields = collection.key_fields();
    let parts: Vec<&str> = if fields.len() == 1 {
        vec![path_key]
    } else {
        path_key.split(':').collect()
    };
    if parts.len() != fields.len() {
        return Err(ApiError::bad_request(
            Some(id),
            Some("key"),
            format!("'{path_key}' must have the form {}", fields.join(":")),
        ));
    }
    for (field, part) in fields.iter().zip(&parts) {
        match map.get(*field) {
            None => {
                map.insert(field.to_string(), Value::String(part.to_string()));
            }
            Some(Value::String(s)) if s.is_empty() => {
                map.insert(field.to_string(), Value::String(part.to_string()));
            }
            Some(Value::String(s)) if s == part => {}
            Some(other) => {
                return Err(ApiError::bad_request(
                    Some(id),
                    Some(field),
                    format!("is {other} but the key in the path says '{part}'"),
                ))
            }
        }
    }
    map.remove("key");
    serde_path_to_error::deserialize(body).map_err(|e| ApiError::from_decode(&id, e))
}

impl Master {
    /// Creates or updates a configuration object (POST and PUT, as Contiv).
    pub async fn put_object(
        &self,
        caller: &Caller,
        collection: Collection,
        key: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        if !collection.is_config() {
            return Err(ApiError::read_only(format!(
                "{}/{key}",
                collection.rest_name()
            )));
        }
        with_object_type!(collection, T => {
            let obj: T = decode_body(key, body)?;
            self.write_checked(caller, obj, |_, _| Ok(())).await
        })
    }

    /// Validates and commits one object; used by the REST API and for the startup defaults.
    pub(crate) async fn write<T: Intent>(&self, obj: T) -> Result<Value, ApiError> {
        self.write_checked(&Caller::unrestricted(), obj, |_, _| Ok(()))
            .await
    }

    /// [`Master::write`] with one more condition on the state it commits against.
    pub(crate) async fn write_checked<T: Intent>(
        &self,
        caller: &Caller,
        mut obj: T,
        check: impl Fn(&T, &Cache) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        obj.apply_defaults();
        obj.validate()?;
        let id = obj.display_id();
        let _one_at_a_time = if T::COLLECTION == Collection::Networks {
            Some(self.network_writes.lock().await)
        } else {
            None
        };
        let mut held = self.proposals.holder();
        let (json, _) = self
            .commit(&id, |cache| {
                held.release_all();
                let mut obj = obj.clone();
                let key = obj.key();
                let store_key = keys::object(T::COLLECTION, &key);
                let old: Option<T> = cache.objects.get_typed(&key);
                let granted = authorize_write(caller, cache, &obj, old.as_ref(), &id)?;
                check(&obj, cache)?;
                let mut txn =
                    Txn::new().when_mod_revision(store_key.clone(), cache.mod_revision(&store_key));
                txn.compares.extend(granted);
                obj.prepare(old.as_ref(), cache, &mut txn, &mut held)?;
                check_write(&obj, old.as_ref(), &cache.objects)?;
                let old_refs = old.as_ref().map(Object::references).unwrap_or_default();
                let mut bumped = Vec::new();
                for r in obj.references() {
                    txn.compares
                        .push(fabric_store::Compare::Present(keys::object(
                            r.collection,
                            &r.key,
                        )));
                    let ver = keys::refver(r.collection, &r.key);
                    if !old_refs
                        .iter()
                        .any(|o| o.collection == r.collection && o.key == r.key)
                        && !bumped.contains(&ver)
                    {
                        bumped.push(ver);
                    }
                }
                for ver in bumped {
                    txn = txn.put(ver, Vec::new());
                }
                obj.set_key();
                let json = serde_json::to_value(&obj)
                    .map_err(|e| ApiError::new(500, Some(id.clone()), None, e.to_string()))?;
                txn = txn.put(store_key, json.to_string().into_bytes());
                Ok(Plan { txn, result: json })
            })
            .await?;
        Ok(json)
    }

    pub async fn delete_object(
        &self,
        caller: &Caller,
        collection: Collection,
        key: &str,
    ) -> Result<(), ApiError> {
        let id = format!("{}/{key}", collection.rest_name());
        if !collection.is_config() {
            return Err(ApiError::read_only(id));
        }
        // Refused before anything goes (a network's reserves, a policy's excess rules); each
        // transaction below checks again.
        caller.require(&self.cache(), rules::write_need(collection, key), &id)?;
        if (collection == Collection::Tenants && key == DEFAULT_TENANT)
            || collection == Collection::Globals
        {
            return Err(ApiError::conflict(
                id,
                None,
                "exists always and cannot be deleted",
            ));
        }
        if collection == Collection::Policies {
            self.delete_rules_beyond_one_txn(caller, key).await?;
        }
        with_object_type!(collection, T => self.delete::<T>(caller, key).await)
    }

    pub(crate) async fn delete<T: Intent>(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<(), ApiError> {
        let id = format!("{}/{key}", T::COLLECTION.rest_name());
        // Addresses hosts hold in reserve do not keep a network alive; they go first (only
        // when nothing else holds one, so a refused delete leaves the hosts' reserves).
        if T::COLLECTION == Collection::Networks && in_use(&self.cache(), key) == 0 {
            self.drop_reservations(caller, &id, |network, _| network == key)
                .await?;
        }
        self.commit(&id, |cache| {
            let granted = match T::COLLECTION {
                Collection::Endpoints => caller.require(cache, Need::AnyAgent, &id)?,
                c => caller.require(cache, rules::write_need(c, key), &id)?,
            };
            let old: T = cache
                .objects
                .get_typed(key)
                .ok_or_else(|| ApiError::not_found(id.clone()))?;
            let granted = match old.owner_host() {
                Some(host) => caller.require(cache, Need::Host(host), &id)?,
                None => granted,
            };
            check_delete(T::COLLECTION, key, &cache.objects)?;
            if T::COLLECTION == Collection::Networks {
                let used = in_use(cache, key);
                if used > 0 {
                    return Err(ApiError::conflict(
                        id.clone(),
                        None,
                        format!(
                            "still has {used} allocated addresses: detach its containers first"
                        ),
                    ));
                }
            }
            let store_key = keys::object(T::COLLECTION, key);
            let ver = keys::refver(T::COLLECTION, key);
            let mut txn = Txn::new();
            txn.compares.extend(granted);
            if T::COLLECTION == Collection::Networks {
                // Reserved since the reserves were dropped above: they go with the network.
                for (ip, _) in cache
                    .ips_of(key)
                    .into_iter()
                    .flatten()
                    .filter(|(_, owner)| keys::reserved_for(owner).is_some())
                    .take(fabric_store::MAX_TXN_OPS / 2)
                {
                    txn = txn.delete(keys::ip(key, *ip));
                }
            }
            let mut txn = txn
                .when_mod_revision(store_key.clone(), cache.mod_revision(&store_key))
                .when_mod_revision(ver.clone(), cache.mod_revision(&ver))
                .delete(store_key);
            if cache.mod_revision(&ver) != 0 {
                txn = txn.delete(ver);
            }
            if T::COLLECTION == Collection::Policies {
                for rule in cache
                    .objects
                    .referrers_in(Collection::Policies, key, Collection::Rules)
                {
                    txn = txn.delete(keys::object(Collection::Rules, &rule));
                }
            }
            old.release(cache, &mut txn);
            Ok(Plan { txn, result: () })
        })
        .await?;
        Ok(())
    }

    /// A policy's rules go with it; when there are more than one transaction holds, the excess
    /// goes first (a crash in between leaves a policy with fewer rules, never orphan rules).
    /// A policy in use is refused before any rule goes.
    async fn delete_rules_beyond_one_txn(
        &self,
        caller: &Caller,
        policy: &str,
    ) -> Result<(), ApiError> {
        let id = format!("{}/{policy}", Collection::Policies.rest_name());
        loop {
            let (rules, granted) = {
                let cache = self.cache();
                let granted =
                    caller.require(&cache, rules::write_need(Collection::Policies, policy), &id)?;
                check_delete(Collection::Policies, policy, &cache.objects)?;
                let rules =
                    cache
                        .objects
                        .referrers_in(Collection::Policies, policy, Collection::Rules);
                (rules, granted)
            };
            if rules.len() <= RULES_PER_TXN {
                return Ok(());
            }
            let mut txn = Txn::new();
            txn.compares.extend(granted);
            for rule in rules.iter().take(RULES_PER_TXN) {
                txn = txn.delete(keys::object(Collection::Rules, rule));
            }
            let ops = txn.success.clone();
            let outcome = self.store.txn(txn).await?;
            if outcome.succeeded {
                self.apply_local(outcome.revision, &ops);
            } else {
                // The caller's grant changed: the next round checks it again.
                self.wait_for(outcome.revision).await;
            }
        }
    }

    /// Creates the `default` tenant and the `global` object when the store has none.
    pub async fn ensure_defaults(&self) -> Result<(), ApiError> {
        if !self
            .cache()
            .objects
            .exists_key(Collection::Tenants, DEFAULT_TENANT)
        {
            let tenant = Tenant {
                tenant_name: DEFAULT_TENANT.into(),
                ..Tenant::default()
            };
            self.write(tenant)
                .await
                .map(drop)
                .or_else(ignore_conflict)?;
        }
        let g = Global::default();
        if !self
            .cache()
            .objects
            .exists_key(Collection::Globals, &g.name)
        {
            let mut g = g;
            if !self.settings.fwd_mode.is_empty() {
                g.fwd_mode = self.settings.fwd_mode.clone();
            }
            if !self.settings.infra.is_empty() {
                g.network_infra_type = self.settings.infra.clone();
            }
            self.write(g).await.map(drop).or_else(ignore_conflict)?;
        }
        Ok(())
    }
}

/// Another master created the default first: fine.
fn ignore_conflict(e: ApiError) -> Result<(), ApiError> {
    if e.status == 409 {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_and_path_key_must_agree() {
        let n: Network = decode_body("blue:net", json!({"subnet": "10.0.0.0/24"})).unwrap();
        assert_eq!(
            (n.tenant_name.as_str(), n.network_name.as_str()),
            ("blue", "net")
        );
        let e = decode_body::<Network>("blue:net", json!({"tenantName": "red"})).unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, Some("tenantName")));
        let e = decode_body::<Network>("blue", json!({})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("key"));
        let e = decode_body::<Rule>("t:p:1", json!({"priority": "high"})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("priority"), "{e:?}");
        let e = decode_body::<Rule>("t:p:1", json!([1])).unwrap_err();
        assert_eq!(e.status, 400);
    }
}

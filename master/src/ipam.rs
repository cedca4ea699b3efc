//! Agent-facing address management: allocate an address of a network (or of a group's pool),
//! release it, and record or remove the endpoint that uses it.
//!
//! Each address is its own store key created only if absent, so two masters, or two requests on
//! one master, can never hand out the same address; requests on one master also mark their
//! proposals as pending so they rarely need a second try.

use crate::alloc::{self, Pool};
use crate::auth::{Caller, Need, Role};
use crate::cache::Cache;
use crate::error::ApiError;
use crate::keys;
use crate::master::{Master, Plan};
use crate::proposals::Held;
use fabric_model::objects::{Endpoint, EndpointGroup, Network};
use fabric_model::{Collection, Object};
use fabric_store::Txn;
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocateRequest {
    /// The network's key, `tenant:network`.
    pub network: String,
    /// The group's key, `tenant:group`; its ipPool, when set, narrows the choice.
    #[serde(default)]
    pub group: String,
    /// An address the caller would like (e.g. a restarted container's); used when free.
    #[serde(default)]
    pub preferred: Option<IpAddr>,
    /// Who holds the address (an endpoint id); shown in inspect.
    pub owner: String,
    /// Allocate from the network's ipv6Subnet instead of its IPv4 subnet.
    #[serde(default)]
    pub ipv6: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    pub network: String,
    pub ip_address: IpAddr,
    pub prefix_len: u8,
    /// Empty when the network has no gateway.
    pub gateway: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRequest {
    pub network: String,
    pub ip_address: IpAddr,
    /// The address is released only while it is this endpoint's (or reserved for `host`): an
    /// agent undoing an attach must not free an address someone else now holds. Required;
    /// empty, with `host`, means "only from that host's reserve".
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
}

/// Where a request's addresses come from.
pub(crate) struct PoolOf {
    pub pool: Pool,
    /// Addresses of the pool never handed out (the gateway).
    pub excluded: Vec<IpAddr>,
    pub prefix_len: u8,
    /// The network's whole subnet of the request's family.
    pub subnet: ipnet::IpNet,
    pub gateway: String,
    /// The group's key when its ipPool narrows the network's pool, else empty.
    pub narrowed_by: String,
    /// Other groups' ipPools inside `pool`: kept for those groups' endpoints, never handed out
    /// here.
    pub fenced: Vec<Pool>,
}

impl PoolOf {
    /// Whether `ip` may be handed out by this request: in the pool, outside other groups'
    /// pools.
    pub fn offers(&self, ip: IpAddr) -> bool {
        self.pool.contains(ip) && !self.fenced.iter().any(|f| f.contains(ip))
    }

    /// The request's own description of its pool, for errors.
    pub fn describe(&self) -> String {
        if !self.narrowed_by.is_empty() {
            format!("the ipPool of group {}", self.narrowed_by)
        } else if self.fenced.is_empty() {
            "the network's pool".into()
        } else {
            "the network's pool outside its groups' ipPools".into()
        }
    }

    /// How many of the addresses this request could be given are taken.
    pub fn taken_of<V>(&self, taken: &std::collections::BTreeMap<IpAddr, V>) -> u128 {
        taken.keys().filter(|ip| self.offers(**ip)).count() as u128
    }

    /// How many addresses of the pool this request could ever be given.
    pub fn usable(&self) -> u128 {
        let fenced: u128 = self
            .fenced
            .iter()
            .map(|f| {
                let (first, last) = (f.first.max(self.pool.first), f.last.min(self.pool.last));
                if first > last {
                    0
                } else {
                    last - first + 1
                }
            })
            .sum();
        self.pool.size().saturating_sub(fenced)
    }
}

/// The pool, the excluded addresses and the prefix length of a request for `network`, narrowed
/// by `group`'s ipPool when it has one.
pub(crate) fn pool_of(
    cache: &Cache,
    network: &str,
    group: &str,
    ipv6: bool,
) -> Result<PoolOf, ApiError> {
    let id = format!("networks/{network}");
    let net: Network = cache
        .objects
        .get_typed(network)
        .ok_or_else(|| ApiError::not_found(id.clone()))?;
    if ipv6 {
        let net6: ipnet::Ipv6Net = net.ipv6_subnet.parse().map_err(|_| {
            ApiError::conflict(
                id.clone(),
                Some("ipv6Subnet"),
                "the network has no IPv6 subnet",
            )
        })?;
        let first = u128::from(net6.network()) + 1;
        let pool = Pool {
            first,
            last: u128::from(net6.broadcast()),
            v6: true,
        };
        return Ok(PoolOf {
            pool,
            excluded: net.ipv6_gateway.parse().into_iter().collect(),
            prefix_len: net6.prefix_len(),
            subnet: net6.into(),
            gateway: net.ipv6_gateway,
            narrowed_by: String::new(),
            fenced: Vec::new(),
        });
    }
    let spec = net.subnet_spec().map_err(|e| e.on(id.clone()))?;
    let mut pool = Pool::v4(spec.pool.first, spec.pool.last);
    let mut narrowed_by = String::new();
    let mut fenced = Vec::new();
    if !group.is_empty() {
        let g: EndpointGroup = cache
            .objects
            .get_typed(group)
            .ok_or_else(|| ApiError::not_found(format!("endpointGroups/{group}")))?;
        if g.network_key() != network {
            return Err(ApiError::bad_request(
                Some(format!("endpointGroups/{group}")),
                Some("networkName"),
                format!(
                    "the group belongs to network {}, not {network}",
                    g.network_key(),
                ),
            ));
        }
        if !g.ip_pool.is_empty() {
            let r = fabric_model::fields::ipv4_range("ipPool", &g.ip_pool)
                .map_err(|e| e.on(g.display_id()))?;
            pool = Pool::v4(r.first, r.last);
            narrowed_by = group.to_string();
        }
    }
    if narrowed_by.is_empty() {
        // A group's pool is its own: endpoints of no group, or of a group without a pool, take
        // the rest of the network.
        fenced = cache.facts.group_pools(network, "");
    }
    Ok(PoolOf {
        pool,
        excluded: net.gateway.parse().into_iter().collect(),
        prefix_len: spec.net.prefix_len(),
        subnet: spec.net.into(),
        gateway: net.gateway,
        narrowed_by,
        fenced,
    })
}

/// Addresses that endpoints of other tenants hold in networks overlapping `network` (native L3
/// only; empty unless an overlap predates the rule that refuses them).
pub(crate) fn foreign_addresses(cache: &Cache, network: &str) -> Vec<IpAddr> {
    crate::tenancy::foreign_holders(cache, network)
        .into_iter()
        .map(|(_, ip, _)| ip)
        .collect()
}

/// Addresses of `network` that requests on this master are proposing right now.
pub(crate) fn proposed(held: &Held<'_>, network: &str) -> Vec<IpAddr> {
    let prefix = keys::ip_prefix(network);
    held.held_under(&prefix)
        .iter()
        .filter_map(|k| k.strip_prefix(&prefix)?.parse::<IpAddr>().ok())
        .collect()
}

/// A request naming no network is malformed (400 naming the field), not a missing network.
fn require_network(network: &str) -> Result<(), ApiError> {
    if network.is_empty() {
        return Err(ApiError::bad_request(
            None,
            Some("network"),
            "is required (the network's key, tenant:network)",
        ));
    }
    Ok(())
}

impl Master {
    pub async fn allocate(
        &self,
        caller: &Caller,
        req: AllocateRequest,
    ) -> Result<Allocation, ApiError> {
        require_network(&req.network)?;
        if req.owner.is_empty() {
            return Err(ApiError::bad_request(
                None,
                Some("owner"),
                "is required (the endpoint id)",
            ));
        }
        let hint_seed = RandomState::new().hash_one(&req.owner) as u128;
        let mut attempt: u128 = 0;
        let mut held = self.proposals.holder();
        let id = format!("networks/{}", req.network);
        let (allocation, _) = self
            .commit(&id, |cache| {
                held.release_all();
                let granted = caller.require(cache, Need::AnyAgent, "agent/allocate")?;
                let from = pool_of(cache, &req.network, &req.group, req.ipv6)?;
                // A wish outside the network is a mistake to report, not to paper over with
                // some other address.
                if let Some(ip) = req.preferred.filter(|ip| !from.subnet.contains(ip)) {
                    return Err(ApiError::new(
                        422,
                        Some(id.clone()),
                        Some("preferred"),
                        format!("{ip} is outside the network's subnet {}", from.subnet),
                    ));
                }
                let mut reserved = from.excluded.clone();
                reserved.extend(proposed(&held, &req.network));
                reserved.extend(foreign_addresses(cache, &req.network));
                let empty = Default::default();
                let taken = cache.ips_of(&req.network).unwrap_or(&empty);
                let preferred = req.preferred.filter(|ip| {
                    from.offers(*ip) && !taken.contains_key(ip) && !reserved.contains(ip)
                });
                let picked = preferred.or_else(|| {
                    alloc::pick_ip(
                        from.pool,
                        taken,
                        &reserved,
                        &from.fenced,
                        hint_seed.wrapping_add(attempt),
                    )
                });
                attempt += 1;
                let (ip, mut txn) = match picked {
                    Some(ip) => {
                        let key = keys::ip(&req.network, ip);
                        held.try_hold(key.clone());
                        (ip, Txn::new().when_absent(key))
                    }
                    // A full pool takes back an address some host holds for its next
                    // containers; that host's record of it then fails and it tries again.
                    None => match taken.iter().find(|(ip, owner)| {
                        from.offers(**ip)
                            && !reserved.contains(ip)
                            && keys::reserved_for(owner).is_some()
                    }) {
                        Some((ip, owner)) => (
                            *ip,
                            Txn::new().when_value(
                                keys::ip(&req.network, *ip),
                                owner.clone().into_bytes(),
                            ),
                        ),
                        None => {
                            return Err(ApiError::conflict(
                                id.clone(),
                                None,
                                format!(
                                    "no free address in {}: {} allocated of {}",
                                    from.describe(),
                                    from.taken_of(taken),
                                    from.usable()
                                ),
                            ));
                        }
                    },
                };
                crate::tenancy::guard_address(cache, &req.network, ip, &mut txn);
                let (prefix_len, gateway) = (from.prefix_len, from.gateway.clone());
                let key = keys::ip(&req.network, ip);
                let mut txn = txn
                    .when_present(keys::object(Collection::Networks, &req.network))
                    .put(key, req.owner.clone().into_bytes());
                txn.compares.extend(granted);
                Ok(Plan {
                    txn,
                    result: Allocation {
                        network: req.network.clone(),
                        ip_address: ip,
                        prefix_len,
                        gateway,
                    },
                })
            })
            .await?;
        Ok(allocation)
    }

    /// Releasing an address that is not allocated succeeds (a retried release must not fail);
    /// with an owner, an address someone else now holds is left alone.
    /// An agent may release only its own host's addresses: those its reserve holds, or an
    /// endpoint's whose record names it as `homingHost` (or, while the address is not recorded
    /// by any endpoint yet, the attach it is undoing).
    pub async fn release(&self, caller: &Caller, req: ReleaseRequest) -> Result<(), ApiError> {
        require_network(&req.network)?;
        let key = keys::ip(&req.network, req.ip_address);
        // Without a holder named, anyone could free a live endpoint's address and have the next
        // container given the same one.
        let owner =
            match (req.owner.as_deref(), req.host.as_deref()) {
                (Some(owner), Some(_)) => owner,
                (Some(owner), None) if !owner.is_empty() => owner,
                _ => return Err(ApiError::bad_request(
                    None,
                    Some("owner"),
                    "is required: the endpoint that holds the address (or \"\" with `host` for \
                     an address reserved for that host)",
                )),
            };
        let reservation = req.host.as_deref().map(keys::reservation);
        let released = self
            .commit(&key, |cache| {
                let object = "agent/release";
                let mut txn = Txn::new();
                txn.compares
                    .extend(caller.require(cache, Need::AnyAgent, object)?);
                let agent_host = match caller.grant(cache)?.map(|g| g.role) {
                    Some(Role::Agent(h)) => Some(h),
                    _ => None,
                };
                // An agent naming a host names its own.
                if let (Some(_), Some(named)) = (&agent_host, &req.host) {
                    txn.compares
                        .extend(caller.require(cache, Need::Host(named), object)?);
                }
                // Free: nothing to do (a retried release must not fail). Someone else's: a
                // refusal, so a caller naming the wrong holder hears it freed nothing.
                let held = cache
                    .ips_of(&req.network)
                    .and_then(|ips| ips.get(&req.ip_address))
                    .ok_or_else(|| ApiError::not_found(key.clone()))?;
                if *held != owner && Some(held) != reservation.as_ref() {
                    return Err(ApiError::conflict(
                        key.clone(),
                        Some("owner"),
                        format!(
                            "{} is held by another endpoint than '{owner}': not released",
                            req.ip_address
                        ),
                    ));
                }
                if let Some(mine) = &agent_host {
                    let holder_host = match keys::reserved_for(held) {
                        Some(h) => Some(h.to_string()),
                        None => {
                            // The endpoint holding it: its record says whose it is; compare
                            // the record so a concurrent re-record cannot slip in between.
                            let ep_key = keys::object(Collection::Endpoints, held);
                            txn.compares.push(fabric_store::Compare::ModRevision(
                                ep_key.clone(),
                                cache.mod_revision(&ep_key),
                            ));
                            cache
                                .objects
                                .get_typed::<Endpoint>(held)
                                .map(|ep| ep.homing_host)
                        }
                    };
                    if let Some(h) = holder_host.filter(|h| h != mine) {
                        return Err(crate::auth::caller::forbidden(
                            &key,
                            format!(
                                "is held by {held} of host '{h}'; the agent of host '{mine}' may \
                                 release only its own host's addresses"
                            ),
                        ));
                    }
                }
                Ok(Plan {
                    txn: txn
                        .when_value(key.clone(), held.clone().into_bytes())
                        .delete(key.clone()),
                    result: (),
                })
            })
            .await;
        match released {
            Err(e) if e.status == 404 => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Records an endpoint of an agent. `from_reservation`: the agent took the address from
    /// those reserved for the endpoint's host, and the record must find it still reserved (a
    /// network deleted and created again since has dropped it).
    pub async fn record_endpoint(
        &self,
        caller: &Caller,
        id: &str,
        body: serde_json::Value,
        from_reservation: bool,
    ) -> Result<serde_json::Value, ApiError> {
        let ep: Endpoint = crate::intent::decode_body(id, body)?;
        if !from_reservation {
            return self.write_checked(caller, ep, |_, _| Ok(())).await;
        }
        self.write_checked(
            caller,
            ep,
            |ep, cache| match crate::intent::address_holder(ep, cache) {
                Some((_, owner)) if crate::intent::may_take(ep, owner) => Ok(()),
                _ => Err(ApiError::conflict(
                    ep.display_id(),
                    Some("ipAddress"),
                    format!(
                        "{} is no longer reserved for host {}",
                        ep.ip_address.first().map_or("(none)", String::as_str),
                        ep.homing_host
                    ),
                )),
            },
        )
        .await
    }

    /// Removing an absent endpoint succeeds, as a CNI DEL of something gone must.
    pub async fn remove_endpoint(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        match self.delete::<Endpoint>(caller, id).await {
            Err(e) if e.status == 404 => Ok(()),
            other => other,
        }
    }
}

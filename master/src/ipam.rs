//! Agent-facing address management: allocate an address of a network (or of a group's pool),
//! release it, and record or remove the endpoint that uses it.
//!
//! Each address is its own store key created only if absent, so two masters, or two requests on
//! one master, can never hand out the same address; requests on one master also mark their
//! proposals as pending so they rarely need a second try.

use crate::alloc::{self, Pool};
use crate::cache::Cache;
use crate::error::ApiError;
use crate::keys;
use crate::master::{Master, Plan};
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
}

/// The pool, the reserved addresses and the prefix length of a request.
fn pool_of(
    cache: &Cache,
    req: &AllocateRequest,
) -> Result<(Pool, Vec<IpAddr>, u8, String), ApiError> {
    let id = format!("networks/{}", req.network);
    let net: Network = cache
        .objects
        .get_typed(&req.network)
        .ok_or_else(|| ApiError::not_found(id.clone()))?;
    if req.ipv6 {
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
        let reserved: Vec<IpAddr> = net.ipv6_gateway.parse().into_iter().collect();
        return Ok((pool, reserved, net6.prefix_len(), net.ipv6_gateway));
    }
    let spec = net.subnet_spec().map_err(|e| e.on(id.clone()))?;
    let mut pool = Pool::v4(spec.pool.first, spec.pool.last);
    if !req.group.is_empty() {
        let group: EndpointGroup = cache
            .objects
            .get_typed(&req.group)
            .ok_or_else(|| ApiError::not_found(format!("endpointGroups/{}", req.group)))?;
        if group.network_key() != req.network {
            return Err(ApiError::bad_request(
                Some(format!("endpointGroups/{}", req.group)),
                Some("networkName"),
                format!(
                    "the group belongs to network {}, not {}",
                    group.network_key(),
                    req.network
                ),
            ));
        }
        if !group.ip_pool.is_empty() {
            let r = fabric_model::fields::ipv4_range("ipPool", &group.ip_pool)
                .map_err(|e| e.on(group.display_id()))?;
            pool = Pool::v4(r.first, r.last);
        }
    }
    let reserved: Vec<IpAddr> = net.gateway.parse().into_iter().collect();
    Ok((pool, reserved, spec.net.prefix_len(), net.gateway))
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
    pub async fn allocate(&self, req: AllocateRequest) -> Result<Allocation, ApiError> {
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
                let (pool, mut reserved, prefix_len, gateway) = pool_of(cache, &req)?;
                let prefix = keys::ip_prefix(&req.network);
                reserved.extend(
                    held.held_under(&prefix)
                        .iter()
                        .filter_map(|k| k.strip_prefix(&prefix)?.parse::<IpAddr>().ok()),
                );
                let empty = Default::default();
                let taken = cache.ips_of(&req.network).unwrap_or(&empty);
                let preferred = req.preferred.filter(|ip| {
                    pool.contains(*ip) && !taken.contains_key(ip) && !reserved.contains(ip)
                });
                let ip = match preferred {
                    Some(ip) => ip,
                    None => alloc::pick_ip(pool, taken, &reserved, hint_seed.wrapping_add(attempt))
                        .ok_or_else(|| {
                            let group = if req.group.is_empty() {
                                String::new()
                            } else {
                                format!(" of group {}", req.group)
                            };
                            ApiError::conflict(
                                id.clone(),
                                None,
                                format!(
                                    "no free address in the pool{group}: {} allocated of {}",
                                    taken.len(),
                                    pool.size()
                                ),
                            )
                        })?,
                };
                attempt += 1;
                let key = keys::ip(&req.network, ip);
                held.try_hold(key.clone());
                let txn = Txn::new()
                    .when_absent(key.clone())
                    .when_present(keys::object(Collection::Networks, &req.network))
                    .put(key, req.owner.clone().into_bytes());
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

    /// Releasing an address that is not allocated succeeds (a retried release must not fail).
    pub async fn release(&self, req: ReleaseRequest) -> Result<(), ApiError> {
        require_network(&req.network)?;
        let key = keys::ip(&req.network, req.ip_address);
        let ops = vec![fabric_store::Op::Delete { key: key.clone() }];
        let outcome = self.store.txn(Txn::new().delete(key)).await?;
        self.apply_local(outcome.revision, &ops);
        Ok(())
    }

    pub async fn record_endpoint(
        &self,
        id: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let ep: Endpoint = crate::intent::decode_body(id, body)?;
        self.write(ep).await
    }

    /// Removing an absent endpoint succeeds, as a CNI DEL of something gone must.
    pub async fn remove_endpoint(&self, id: &str) -> Result<(), ApiError> {
        match self.delete::<Endpoint>(id).await {
            Err(e) if e.status == 404 => Ok(()),
            other => other,
        }
    }
}

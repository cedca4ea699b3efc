//! Addresses reserved for a host: an agent keeps a few addresses of a network ahead of its
//! containers, so an attach takes one with no store write on its way to routable. The
//! endpoint's record later turns the reservation into the endpoint's allocation in its own
//! transaction (see `Intent for Endpoint`). Calico gives hosts address blocks for the same
//! reason.
//!
//! A reservation is an allocation key whose owner is `reserved:<host>`, so everything that
//! counts taken addresses counts it. A host gets at most a quarter of a pool's free addresses
//! at a time, and an allocation that finds its pool full takes a reserved address back.
//!
//! A grant starts at a free block aligned to its size rounded up to a power of two
//! ([`alloc::block_start`]): 8 addresses from an empty region are one /29, 24 a /28 and a /29.
//! The agent announces such blocks to the reflectors instead of a /32 per address.

use crate::alloc;
use crate::auth::{Caller, Need};
use crate::error::ApiError;
use crate::ipam::{foreign_addresses, pool_of, proposed};
use crate::keys;
use crate::master::{Master, Plan};
use fabric_model::Collection;
use fabric_store::{Txn, MAX_TXN_OPS};
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

/// Most addresses one request reserves.
pub const MAX_RESERVE: u32 = 32;
/// A host takes at most 1/FREE_SHARE of a pool's free addresses at once.
const FREE_SHARE: u128 = 4;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveRequest {
    /// The network's key, `tenant:network`.
    pub network: String,
    /// The group's key, `tenant:group`; its ipPool, when set, is the pool reserved from.
    #[serde(default)]
    pub group: String,
    /// The host the addresses are kept for.
    pub host: String,
    /// How many addresses the host would like (at most [`MAX_RESERVE`] are given).
    pub count: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub network: String,
    /// The group whose ipPool the addresses come from; empty when they are the network's.
    pub group: String,
    pub prefix_len: u8,
    /// Empty when the network has no gateway.
    pub gateway: String,
    /// Possibly fewer than asked, or none, when the pool is short.
    pub addresses: Vec<IpAddr>,
}

fn required(field: &str, value: &str, what: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::bad_request(
            None,
            Some(field),
            format!("is required ({what})"),
        ));
    }
    Ok(())
}

impl Master {
    /// Reserves up to `count` free addresses for `host`.
    pub async fn reserve(
        &self,
        caller: &Caller,
        req: ReserveRequest,
    ) -> Result<Reservation, ApiError> {
        required("network", &req.network, "the network's key, tenant:network")?;
        required("host", &req.host, "the host the addresses are kept for")?;
        let owner = keys::reservation(&req.host);
        let hint_seed = RandomState::new().hash_one(&req.host) as u128;
        let mut held = self.proposals.holder();
        let id = format!("networks/{}", req.network);
        let (reservation, _) = self
            .commit(&id, |cache| {
                held.release_all();
                let granted = caller.require(cache, Need::Host(&req.host), &id)?;
                let from = pool_of(cache, &req.network, &req.group, false)?;
                let mut excluded = from.excluded.clone();
                excluded.extend(proposed(&held, &req.network));
                excluded.extend(foreign_addresses(cache, &req.network));
                let empty = Default::default();
                let taken = cache.ips_of(&req.network).unwrap_or(&empty);
                let excluded_free = excluded
                    .iter()
                    .filter(|ip| from.offers(**ip) && !taken.contains_key(ip))
                    .count() as u128;
                let free = from
                    .usable()
                    .saturating_sub(from.taken_of(taken) + excluded_free);
                let grant = u128::from(req.count.min(MAX_RESERVE)).min(free / FREE_SHARE);
                let mut txn =
                    Txn::new().when_present(keys::object(Collection::Networks, &req.network));
                txn.compares.extend(granted);
                let mut addresses = Vec::new();
                // Hosts start at different places so that concurrent requests rarely collide,
                // at a free block aligned to the grant's size, so that the reserve is a few
                // CIDR blocks the host announces as such (one route instead of one per
                // address at every other host).
                let mut hint =
                    alloc::block_start(from.pool, taken, &excluded, &from.fenced, hint_seed, grant);
                for _ in 0..grant {
                    let Some(ip) = alloc::pick_ip(from.pool, taken, &excluded, &from.fenced, hint)
                    else {
                        break;
                    };
                    hint = ip_index(ip).wrapping_sub(from.pool.first).wrapping_add(1);
                    let key = keys::ip(&req.network, ip);
                    held.try_hold(key.clone());
                    crate::tenancy::guard_address(cache, &req.network, ip, &mut txn);
                    txn = txn
                        .when_absent(key.clone())
                        .put(key, owner.clone().into_bytes());
                    excluded.push(ip);
                    addresses.push(ip);
                }
                Ok(Plan {
                    txn,
                    result: Reservation {
                        network: req.network.clone(),
                        group: from.narrowed_by.clone(),
                        prefix_len: from.prefix_len,
                        gateway: from.gateway.clone(),
                        addresses,
                    },
                })
            })
            .await?;
        Ok(reservation)
    }

    /// Every address reserved for `host`, as (network, address).
    pub fn reservations_of(&self, host: &str) -> Vec<(String, IpAddr)> {
        let owner = keys::reservation(host);
        self.cache()
            .ips()
            .filter(|(_, _, o)| **o == owner)
            .map(|(network, ip, _)| (network.clone(), *ip))
            .collect()
    }

    /// Gives back every address reserved for `host` (an agent starting afresh); returns how
    /// many.
    pub async fn unreserve_all(&self, caller: &Caller, host: &str) -> Result<usize, ApiError> {
        required("host", host, "the host whose reservations go")?;
        let owner = keys::reservation(host);
        let what = format!("agent/hosts/{host}/reservations");
        caller.require(&self.cache(), Need::Host(host), &what)?;
        self.drop_reservations(caller, &what, |_, o| *o == owner)
            .await
    }

    /// Deletes the reserved addresses `which(network, owner)` picks, a batch per transaction;
    /// each batch only deletes keys still holding the reservation it saw.
    pub(crate) async fn drop_reservations(
        &self,
        caller: &Caller,
        what: &str,
        which: impl Fn(&str, &String) -> bool,
    ) -> Result<usize, ApiError> {
        let mut released = 0;
        // Each round removes a batch or ends; the bound only guards against a store that
        // never applies what it acknowledged.
        for _ in 0..10_000 {
            let (batch, granted): (Vec<(String, String)>, _) = {
                let cache = self.cache();
                let granted = caller.require(&cache, Need::Any, what)?;
                let batch = cache
                    .ips()
                    .filter(|(network, _, o)| keys::reserved_for(o).is_some() && which(network, o))
                    .map(|(network, ip, o)| (keys::ip(network, *ip), o.clone()))
                    .take(MAX_TXN_OPS / 2 - 8)
                    .collect();
                (batch, granted)
            };
            if batch.is_empty() {
                return Ok(released);
            }
            let mut txn = Txn::new();
            // Keeps the caller's session (and grant) alive until the batch commits.
            txn.compares.extend(granted);
            for (key, owner) in &batch {
                txn = txn
                    .when_value(key.clone(), owner.clone().into_bytes())
                    .delete(key.clone());
            }
            let ops = txn.success.clone();
            let outcome = self.store.txn(txn).await?;
            if outcome.succeeded {
                self.apply_local(outcome.revision, &ops);
                released += batch.len();
            } else {
                self.wait_for(outcome.revision).await;
            }
        }
        Err(ApiError::conflict(
            what.to_string(),
            None,
            "its reservations kept changing; try again",
        ))
    }
}

fn ip_index(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

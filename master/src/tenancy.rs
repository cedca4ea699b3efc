//! What keeps tenants apart in native L3 mode, on the master's side: the top-of-rack routers
//! hold one routing table for the whole fabric, so two tenants can never share an address.
//!
//! - A network whose subnet overlaps another tenant's network is refused while the fabric is
//!   in native L3 (`global` fwdMode `routing`), and `global` cannot switch into native L3
//!   while such networks exist. Every network create bumps one fabric-wide version key that
//!   both writes compare, so two masters cannot slip an overlap in between them.
//! - Should an overlap be in the store anyway (written before this rule existed), an address
//!   held in one of the overlapping networks is never handed out in the other: allocations and
//!   endpoint records compare the other network's address key absent in the same transaction.
//! - [`audit`] lists such leftovers (the leader runs it when its term begins, see `leader`), so
//!   an operator hears of them.

use crate::cache::Cache;
use crate::error::ApiError;
use crate::keys;
use fabric_model::objects::{Global, Network, Overlap, GLOBAL_NAME};
use fabric_model::{Collection, Object};
use fabric_store::{Compare, Txn};
use std::net::IpAddr;

/// The key every network create bumps; the overlap checks compare it.
pub fn subnets_version() -> String {
    // `*` is no valid network name, so this never clashes with a network's own refver.
    keys::refver(Collection::Networks, "*")
}

/// Why native L3 cannot carry two tenants' copies of an address, for error messages.
const WHY: &str = "native L3 mode (fwdMode routing) puts every tenant's addresses in the \
top-of-rack routers' one routing table, so tenants cannot share addresses; use another \
subnet, or an overlay mode";

/// Refuses a new network that overlaps another tenant's in native L3; makes the check hold
/// against a concurrent network create or mode change on another master.
pub fn check_new_network(net: &Network, cache: &Cache, txn: &mut Txn) -> Result<(), ApiError> {
    let ver = subnets_version();
    txn.compares
        .push(Compare::ModRevision(ver.clone(), cache.mod_revision(&ver)));
    let global_key = keys::object(Collection::Globals, GLOBAL_NAME);
    txn.compares.push(Compare::ModRevision(
        global_key.clone(),
        cache.mod_revision(&global_key),
    ));
    txn.success.push(fabric_store::Op::Put {
        key: ver,
        value: Vec::new(),
    });
    // A network of no tenant is refused for that by the reference check, which names the field
    // the user got wrong.
    if !cache.facts.native_l3()
        || !cache
            .objects
            .exists_key(Collection::Tenants, &net.tenant_name)
    {
        return Ok(());
    }
    let Some(other) = cache
        .facts
        .foreign_overlaps_of(net)
        .into_iter()
        .find_map(|(key, _)| cache.objects.get_typed::<Network>(&key))
    else {
        return Ok(());
    };
    let o = net.overlap_with(&other).unwrap_or(Overlap {
        field: "subnet",
        mine: net.subnet.clone(),
        theirs: other.subnet.clone(),
    });
    Err(ApiError::new(
        422,
        Some(net.display_id()),
        Some(o.field),
        format!(
            "{} overlaps {} of tenant '{}' ({}): {WHY}",
            o.mine,
            other.display_id(),
            other.tenant_name,
            o.theirs
        ),
    ))
}

/// Refuses a change of `global`'s forwarding mode while any network exists (as Contiv did), so
/// in particular no switch into native L3 over two tenants' overlapping networks. A change that
/// keeps the mode, and the first `global` of a store, pass: [`audit`] reports leftovers.
pub fn check_global(
    new: &Global,
    old: Option<&Global>,
    cache: &Cache,
    txn: &mut Txn,
) -> Result<(), ApiError> {
    let Some(old) = old.filter(|o| o.fwd_mode != new.fwd_mode) else {
        return Ok(());
    };
    // Every network create bumps this key: a network made on another master meanwhile makes
    // the write fail its compare and be planned again.
    let ver = subnets_version();
    txn.compares
        .push(Compare::ModRevision(ver.clone(), cache.mod_revision(&ver)));
    let networks: Vec<&String> = cache
        .objects
        .list(Collection::Networks)
        .map(|(key, _)| key)
        .collect();
    let Some(first) = networks.first() else {
        return Ok(());
    };
    // Contiv refuses it too: every network's forwarding (and, in native L3, its addresses'
    // uniqueness across tenants) was set up for the mode it was created in.
    Err(ApiError::conflict(
        new.display_id(),
        Some("fwdMode"),
        format!(
            "cannot change from {} to {} while {} network(s) exist (networks/{first}{}); \
             delete them first",
            old.fwd_mode,
            new.fwd_mode,
            networks.len(),
            if networks.len() > 1 { ", ..." } else { "" }
        ),
    ))
}

/// In native L3, the addresses that endpoints (or hosts' reserves) of other tenants hold in
/// networks overlapping `network`, with that network and the holder; empty in the overlay
/// modes or when nothing overlaps.
pub fn foreign_holders(cache: &Cache, network: &str) -> Vec<(String, IpAddr, String)> {
    let mut out = Vec::new();
    for other in overlapping_in_native_l3(cache, network) {
        for (ip, owner) in cache.ips_of(&other).into_iter().flatten() {
            out.push((other.clone(), *ip, owner.clone()));
        }
    }
    out
}

/// The networks of other tenants that overlap `network`, when the fabric is in native L3.
fn overlapping_in_native_l3(cache: &Cache, network: &str) -> Vec<String> {
    if !cache.facts.native_l3() {
        return Vec::new();
    }
    cache
        .facts
        .foreign_overlaps(network)
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// Makes `txn` fail if, by the time it commits, another tenant's overlapping network holds
/// `ip` (only ever non-empty for overlaps that predate the native L3 rule).
pub fn guard_address(cache: &Cache, network: &str, ip: IpAddr, txn: &mut Txn) {
    for other in overlapping_in_native_l3(cache, network) {
        txn.compares.push(Compare::Absent(keys::ip(&other, ip)));
    }
}

/// The endpoint of another tenant that holds `ip` in a network overlapping `network`.
pub fn foreign_holder_of(cache: &Cache, network: &str, ip: IpAddr) -> Option<(String, String)> {
    overlapping_in_native_l3(cache, network)
        .into_iter()
        .find_map(|other| {
            let owner = cache.ips_of(&other)?.get(&ip)?.clone();
            Some((other, owner))
        })
}

/// Problems with tenant separation in the stored state, as sentences: overlapping networks of
/// different tenants while in native L3, and addresses two tenants' endpoints both hold.
pub fn audit(cache: &Cache) -> Vec<String> {
    if !cache.facts.native_l3() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (a, b, field) in cache.facts.cross_tenant_overlaps() {
        found.push(format!(
            "networks/{a} and networks/{b} of different tenants overlap in their {field} while \
             the fabric is in native L3; no address held in one will be handed out in the other"
        ));
        if let (Some(ia), Some(ib)) = (cache.ips_of(&a), cache.ips_of(&b)) {
            for (ip, owner) in ia {
                if let Some(other) = ib.get(ip) {
                    found.push(format!(
                        "{ip} is held both by {owner} in networks/{a} and by {other} in \
                         networks/{b}: one tenant can receive the other's traffic; detach one \
                         of them"
                    ));
                }
            }
        }
    }
    found
}

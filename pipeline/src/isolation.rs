//! Tenant isolation, native L3 (tables `SRC_REMOTE` and `DST_CLASSIFY`): a packet between
//! endpoints of two tenants is dropped at the source's host and at the destination's host,
//! whatever the rules say.
//!
//! OVS never routes between VRFs, but whatever is not local leaves through gw0 to the host
//! kernel, whose single routing table may send it back through gw0 into another tenant's
//! container, or to another host. So each end checks the tenant of the other end's address:
//! `SRC_REMOTE` (from gw0, reg0 = the destination's VRF) the source's, `DST_CLASSIFY` (reg0 =
//! the source's VRF) the destination's. Traffic from gw0 never needs the second check: its
//! destination is a local endpoint of reg0's tenant, matched exactly above these flows.
//!
//! The tenant of an address comes from the networks' subnets, which the intent holds for every
//! tenant, rather than from the endpoints this host has heard of: an endpoint that has not
//! reached this host yet is still inside its network, so there is no window in which it gets
//! through. Per network N of tenant T, in both tables: `reg0=VRF(T)` and N continues as the
//! table's miss does (`TENANT_OWN`), N alone drops (`TENANT_FOREIGN`). The exact endpoint
//! flows above still give known endpoints their groups. An address in no network is outside
//! the fabric and takes the miss, as before: only the rules apply to it.
//!
//! What an address cannot decide is dropped at `TENANT_AMBIGUOUS`, below the exact endpoint
//! flows and above `TENANT_OWN`:
//! - the overlap of two tenants' networks (legacy state; the master refuses it in native L3),
//!   for both tenants: an unknown address there could be either's. The tenants' known endpoints
//!   there still reach their own tenant through the exact flows;
//! - an address that is an endpoint of two tenants: which one sent a packet through gw0, or
//!   which one the kernel will deliver a packet to, is unknowable, so it has no exact remote
//!   flow (`Resolved::shared`) and is dropped for everyone (a tenant's local endpoint at that
//!   address is still reached from its own tenant's local endpoints, inside OVS);
//! - an endpoint outside its own tenant's networks (its network not known here yet, or legacy
//!   state): dropped by address for every tenant but its own, whose exact flows are above.
//!
//! Flows: four per network, four per overlapping pair of networks, two per address of the last
//! two kinds (none in a consistent fabric); never endpoints × tenants.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openflow::Match;

use crate::build::{ipv4, prefix, set_reg, with_reg, Flows};
use crate::error::Warning;
use crate::input::NetworkInput;
use crate::layout::{prio, reg, table};
use crate::resolve::Resolved;

/// The isolation flows of `SRC_REMOTE` and `DST_CLASSIFY`.
pub fn compile(r: &mut Resolved, f: &mut Flows) {
    let input = r.input;
    let gw = input.gateway.ofport;
    for n in &input.networks {
        let net = prefix(n.subnet);
        match r.tenants.get(n.tenant.as_str()) {
            Some(t) => {
                f.goto(
                    table::SRC_REMOTE,
                    prio::TENANT_OWN,
                    Match {
                        ipv4_src: Some(net),
                        ..with_reg(ipv4(), reg::VRF, t.vrf)
                    },
                    table::CT,
                );
                f.add(
                    table::DST_CLASSIFY,
                    prio::TENANT_OWN,
                    Match {
                        ipv4_dst: Some(net),
                        ..with_reg(ipv4(), reg::VRF, t.vrf)
                    },
                    vec![set_reg(reg::OUT_PORT, gw)],
                    Some(table::EGRESS),
                );
            }
            // No VRF, so no endpoint here is of that tenant: its subnet is foreign to every
            // packet, and still dropping it keeps the tenant's other hosts out meanwhile.
            None => r.warnings.push(Warning::UnknownNetworkTenant {
                network: key(n),
                tenant: n.tenant.clone(),
            }),
        }
        f.drop(
            table::SRC_REMOTE,
            prio::TENANT_FOREIGN,
            Match {
                ipv4_src: Some(net),
                ..ipv4()
            },
        );
        f.drop(
            table::DST_CLASSIFY,
            prio::TENANT_FOREIGN,
            Match {
                ipv4_dst: Some(net),
                ..ipv4()
            },
        );
    }
    for (outer, inner) in overlaps(&input.networks) {
        let (o, i) = (&input.networks[outer], &input.networks[inner]);
        r.warnings.push(Warning::OverlappingTenantNetworks {
            a: key(o),
            b: key(i),
        });
        for tenant in [&o.tenant, &i.tenant] {
            if let Some(t) = r.tenants.get(tenant.as_str()) {
                let m = with_reg(ipv4(), reg::VRF, t.vrf);
                drop_address(f, &m, i.subnet);
            }
        }
    }
    let mut pinned = r.shared.clone();
    for (ip, tenant) in outside_own_networks(r) {
        r.warnings.push(Warning::EndpointOutsideNetworks {
            ip,
            tenant: tenant.into(),
        });
        pinned.insert(ip);
    }
    for ip in pinned {
        drop_address(f, &ipv4(), Ipv4Net::from(ip));
    }
}

/// Drops `base` with source `net` in `SRC_REMOTE` and with destination `net` in `DST_CLASSIFY`,
/// at `TENANT_AMBIGUOUS`.
fn drop_address(f: &mut Flows, base: &Match, net: Ipv4Net) {
    let p = prefix(net);
    f.drop(
        table::SRC_REMOTE,
        prio::TENANT_AMBIGUOUS,
        Match {
            ipv4_src: Some(p),
            ..base.clone()
        },
    );
    f.drop(
        table::DST_CLASSIFY,
        prio::TENANT_AMBIGUOUS,
        Match {
            ipv4_dst: Some(p),
            ..base.clone()
        },
    );
}

fn key(n: &NetworkInput) -> String {
    format!("{}:{}", n.tenant, n.name)
}

/// Pairs (outer, inner) of indices of networks of different tenants whose inner subnet lies
/// within the outer one. Prefixes either nest or are disjoint, so these are all the overlaps;
/// sorted by address then length, the networks still open form a chain of nested prefixes,
/// which keeps this to one sort rather than comparing every pair.
fn overlaps(nets: &[NetworkInput]) -> Vec<(usize, usize)> {
    let mut order: Vec<(Ipv4Net, usize)> = nets.iter().map(|n| n.subnet.trunc()).zip(0..).collect();
    order.sort_unstable_by_key(|(n, i)| (n.network(), n.prefix_len(), *i));
    let mut open: Vec<(Ipv4Net, usize)> = Vec::new();
    let mut pairs = Vec::new();
    for (net, i) in order {
        while open.last().is_some_and(|(o, _)| !o.contains(&net)) {
            open.pop();
        }
        pairs.extend(
            open.iter()
                .filter(|(_, o)| nets[*o].tenant != nets[i].tenant)
                .map(|(_, o)| (*o, i)),
        );
        open.push((net, i));
    }
    pairs
}

/// Endpoints (local or remote, known tenant or not) whose address is in none of their own
/// tenant's networks, as (address, tenant).
fn outside_own_networks<'a>(r: &Resolved<'a>) -> BTreeSet<(Ipv4Addr, &'a str)> {
    let input = r.input;
    // tenant → prefix lengths of its networks, and (tenant, length, network address) for each.
    let mut lens: BTreeMap<&str, BTreeSet<u8>> = BTreeMap::new();
    let mut nets: BTreeSet<(&str, u8, u32)> = BTreeSet::new();
    for n in &input.networks {
        let s = n.subnet.trunc();
        lens.entry(n.tenant.as_str())
            .or_default()
            .insert(s.prefix_len());
        nets.insert((n.tenant.as_str(), s.prefix_len(), u32::from(s.network())));
    }
    let inside = |ip: Ipv4Addr, tenant: &str| {
        lens.get(tenant).is_some_and(|ls| {
            ls.iter().any(|&len| {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                nets.contains(&(tenant, len, u32::from(ip) & mask))
            })
        })
    };
    let local = input
        .local_endpoints
        .iter()
        .map(|e| (e.ipv4, e.tenant.as_str()));
    let remote = input
        .remote_endpoints
        .iter()
        .map(|e| (e.ipv4, e.tenant.as_str()));
    local
        .chain(remote)
        .filter(|(ip, t)| !inside(*ip, t))
        .collect()
}

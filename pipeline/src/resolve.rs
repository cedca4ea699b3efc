//! Checks the input and indexes it: tenants by name, groups by name and id, rules by policy,
//! networks by name, and which groups have members on this host.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use fabric_model::Rule;

use crate::error::{CompileError, Warning};
use crate::input::{GroupInput, HostInput, LocalEndpoint, NetworkInput, TenantInput};

/// The input, checked and indexed. Maps are ordered so that everything derived from them
/// (conjunction ids in particular) is the same for the same input.
pub struct Resolved<'a> {
    pub input: &'a HostInput,
    pub tenants: BTreeMap<&'a str, &'a TenantInput>,
    /// (tenant, group name) → group.
    pub groups: BTreeMap<(&'a str, &'a str), &'a GroupInput>,
    /// (tenant, network name) → network.
    pub networks: BTreeMap<(&'a str, &'a str), &'a NetworkInput>,
    /// (tenant, policy name) → its rules, ordered by rule id.
    pub rules: BTreeMap<(&'a str, &'a str), Vec<&'a Rule>>,
    /// Ids of the groups with at least one endpoint on this host.
    pub local_groups: BTreeSet<u32>,
    /// Remote endpoints as (VRF, address, group), one per (VRF, address): the first listed;
    /// without the [`Resolved::shared`] addresses.
    pub remotes: Vec<(u32, Ipv4Addr, u32)>,
    /// Addresses that are endpoints (local or remote) of more than one tenant. A packet through
    /// the gateway port does not say which of them it is, so these are left out of `remotes`
    /// and isolation drops them (fail-closed) rather than let one tenant in as the other.
    pub shared: BTreeSet<Ipv4Addr>,
    pub warnings: Vec<Warning>,
}

impl<'a> Resolved<'a> {
    pub fn new(input: &'a HostInput) -> Result<Self, CompileError> {
        let mut tenants = BTreeMap::new();
        let mut zones = BTreeMap::new();
        for t in &input.tenants {
            let err = |reason: String| CompileError::Tenant {
                name: t.name.clone(),
                reason,
            };
            if tenants.insert(t.name.as_str(), t).is_some() {
                return Err(err("listed twice".into()));
            }
            if let Some(other) = zones.insert(t.zone, t.name.as_str()) {
                return Err(err(format!(
                    "conntrack zone {} is also tenant {other}'s",
                    t.zone
                )));
            }
        }
        if tenants.len()
            != input
                .tenants
                .iter()
                .map(|t| t.vrf)
                .collect::<BTreeSet<_>>()
                .len()
        {
            return Err(CompileError::Tenant {
                name: String::new(),
                reason: "two tenants share a VRF id".into(),
            });
        }
        let mut groups = BTreeMap::new();
        let mut ids = BTreeSet::new();
        for g in &input.groups {
            let err = |reason: &str| CompileError::Group {
                key: format!("{}:{}", g.tenant, g.name),
                reason: reason.into(),
            };
            if g.id == 0 {
                return Err(err("group id 0 means 'no group'"));
            }
            if !ids.insert(g.id) {
                return Err(err("its id is another group's"));
            }
            if groups
                .insert((g.tenant.as_str(), g.name.as_str()), g)
                .is_some()
            {
                return Err(err("listed twice"));
            }
        }
        let networks = input
            .networks
            .iter()
            .map(|n| ((n.tenant.as_str(), n.name.as_str()), n))
            .collect();
        let mut rules: BTreeMap<_, Vec<&Rule>> = BTreeMap::new();
        for r in &input.rules {
            rules
                .entry((r.tenant_name.as_str(), r.policy_name.as_str()))
                .or_default()
                .push(r);
        }
        for list in rules.values_mut() {
            list.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        }
        check_endpoints(input, &tenants)?;
        let local_groups = input
            .local_endpoints
            .iter()
            .map(|e| e.group)
            .filter(|g| *g != 0)
            .collect();
        let mut warnings = Vec::new();
        let mut seen = BTreeSet::new();
        let mut remotes = Vec::new();
        for rep in &input.remote_endpoints {
            let Some(t) = tenants.get(rep.tenant.as_str()) else {
                warnings.push(Warning::UnknownRemoteTenant {
                    ip: rep.ipv4,
                    tenant: rep.tenant.clone(),
                });
                continue;
            };
            if seen.insert((t.vrf, rep.ipv4)) {
                remotes.push((t.vrf, rep.ipv4, rep.group));
            }
        }
        let shared = shared_addresses(input);
        for &ip in &shared {
            warnings.push(Warning::SharedEndpointAddress { ip });
        }
        remotes.retain(|(_, ip, _)| !shared.contains(ip));
        Ok(Resolved {
            input,
            tenants,
            groups,
            networks,
            rules,
            local_groups,
            remotes,
            shared,
            warnings,
        })
    }

    /// The tenant of a local endpoint (checked to exist in [`Resolved::new`]).
    pub fn tenant_of(&self, ep: &LocalEndpoint) -> &'a TenantInput {
        self.tenants[ep.tenant.as_str()]
    }
}

/// Addresses listed as endpoints of two tenants or more (remote endpoints of tenants not known
/// yet count: their tenant is still another one).
fn shared_addresses(input: &HostInput) -> BTreeSet<Ipv4Addr> {
    let local = input
        .local_endpoints
        .iter()
        .map(|e| (e.ipv4, e.tenant.as_str()));
    let remote = input
        .remote_endpoints
        .iter()
        .map(|e| (e.ipv4, e.tenant.as_str()));
    let mut owners: Vec<(Ipv4Addr, &str)> = local.chain(remote).collect();
    owners.sort_unstable();
    owners.dedup();
    owners
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[0].0)
        .collect()
}

fn check_endpoints(
    input: &HostInput,
    tenants: &BTreeMap<&str, &TenantInput>,
) -> Result<(), CompileError> {
    let mut ports = BTreeSet::new();
    let mut addrs = BTreeSet::new();
    for ep in &input.local_endpoints {
        let err = |reason: String| CompileError::Endpoint {
            ofport: ep.ofport,
            reason,
        };
        if ep.ofport == 0 || ep.ofport >= 0xffff_ff00 {
            return Err(err("not a physical port number".into()));
        }
        if ep.ofport == input.gateway.ofport {
            return Err(err("is the gateway port".into()));
        }
        if !ports.insert(ep.ofport) {
            return Err(err("two endpoints on one port".into()));
        }
        if !tenants.contains_key(ep.tenant.as_str()) {
            return Err(err(format!("tenant '{}' is unknown", ep.tenant)));
        }
        if !addrs.insert((ep.tenant.as_str(), ep.ipv4)) {
            return Err(err(format!(
                "{} is another local endpoint's in tenant {}",
                ep.ipv4, ep.tenant
            )));
        }
        if ep.mac[0] & 1 == 1 {
            return Err(err("its MAC is a multicast address".into()));
        }
    }
    Ok(())
}

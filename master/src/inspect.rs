//! `inspect`: an object's configuration together with its operational state (Contiv's
//! `{"Config": ..., "Oper": ...}`), computed from the cache.

use crate::alloc::{self, Pool};
use crate::cache::Cache;
use crate::error::ApiError;
use crate::intent::group_id;
use crate::keys::{self, TagKind};
use fabric_model::objects::{Endpoint, EndpointGroup, Network};
use fabric_model::Collection;
use serde_json::{json, Value};

pub fn inspect(cache: &Cache, collection: Collection, key: &str) -> Result<Value, ApiError> {
    let config = cache
        .objects
        .get(collection, key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("{}/{key}", collection.rest_name())))?;
    let oper = match collection {
        Collection::Networks => network_oper(cache, key),
        Collection::EndpointGroups => group_oper(cache, key),
        Collection::Tenants => tenant_oper(cache, key),
        Collection::Policies => policy_oper(cache, key),
        Collection::Globals => global_oper(cache),
        Collection::ServiceLbs => json!({}),
        Collection::Endpoints => config.clone(),
        _ => json!({}),
    };
    Ok(json!({ "Config": config, "Oper": oper }))
}

fn endpoints_where(cache: &Cache, pred: impl Fn(&Endpoint) -> bool) -> Vec<Endpoint> {
    cache
        .objects
        .list_typed::<Endpoint>()
        .into_iter()
        .filter(|e| pred(e))
        .collect()
}

fn network_oper(cache: &Cache, key: &str) -> Value {
    let Some(net) = cache.objects.get_typed::<Network>(key) else {
        return json!({});
    };
    let endpoints = endpoints_where(cache, |e| e.network == key);
    let empty = Default::default();
    let ips = cache.ips_of(key).unwrap_or(&empty);
    // Addresses hosts keep for their next containers are neither in use nor available.
    let (kept, used): (Vec<_>, Vec<_>) = ips
        .iter()
        .partition(|(_, owner)| keys::reserved_for(owner).is_some());
    let (allocated, kept_ranges, available) = match net.subnet_spec() {
        Ok(spec) => {
            let pool = Pool::v4(spec.pool.first, spec.pool.last);
            let gateway: Vec<std::net::IpAddr> = net.gateway.parse().into_iter().collect();
            (
                alloc::format_ip_ranges(pool, used.iter().map(|(ip, _)| *ip)),
                alloc::format_ip_ranges(pool, kept.iter().map(|(ip, _)| *ip)),
                alloc::format_free_ranges(pool, ips, &gateway),
            )
        }
        Err(_) => (String::new(), String::new(), String::new()),
    };
    json!({
        "pktTag": net.pkt_tag,
        "networkTag": net.cfgd_tag,
        "numEndpoints": endpoints.len(),
        "allocatedAddressesCount": used.len(),
        "allocatedIPAddresses": allocated,
        "reservedAddressesCount": kept.len(),
        "reservedIPAddresses": kept_ranges,
        "availableIPAddresses": available,
        "endpoints": endpoints,
    })
}

fn group_oper(cache: &Cache, key: &str) -> Value {
    let endpoints = endpoints_where(cache, |e| e.endpoint_group_key == key);
    let group = cache.objects.get_typed::<EndpointGroup>(key);
    json!({
        "pktTag": group_id(cache, key),
        "groupTag": group.map(|g| g.cfgd_tag).unwrap_or_default(),
        "numEndpoints": endpoints.len(),
        "endpoints": endpoints,
    })
}

fn tenant_oper(cache: &Cache, tenant: &str) -> Value {
    let count = |c: Collection| {
        cache
            .objects
            .referrers_in(Collection::Tenants, tenant, c)
            .len()
    };
    let prefix = format!("{tenant}:");
    let endpoints = endpoints_where(cache, |e| e.network.starts_with(&prefix));
    json!({
        "totalNetworks": count(Collection::Networks),
        "totalEPGs": count(Collection::EndpointGroups),
        "totalPolicies": count(Collection::Policies),
        "totalAppProfiles": count(Collection::AppProfiles),
        "totalServicelbs": count(Collection::ServiceLbs),
        "totalNetprofiles": count(Collection::Netprofiles),
        "totalEndpoints": endpoints.len(),
        "networks": cache.objects.referrers_in(Collection::Tenants, tenant, Collection::Networks),
        "endpointGroups": cache.objects.referrers_in(Collection::Tenants, tenant, Collection::EndpointGroups),
        "policies": cache.objects.referrers_in(Collection::Tenants, tenant, Collection::Policies),
    })
}

fn policy_oper(cache: &Cache, key: &str) -> Value {
    let groups = cache
        .objects
        .referrers_in(Collection::Policies, key, Collection::EndpointGroups);
    let endpoints = endpoints_where(cache, |e| groups.contains(&e.endpoint_group_key));
    json!({
        "numEndpoints": endpoints.len(),
        "endpointGroups": groups,
        "rules": cache.objects.referrers_in(Collection::Policies, key, Collection::Rules),
        "policyViolations": 0,
        "endpoints": endpoints,
    })
}

fn global_oper(cache: &Cache) -> Value {
    let in_use = |kind| {
        cache
            .tags_of(kind)
            .map(|t| alloc::format_tag_ranges(t.keys().copied()))
            .unwrap_or_default()
    };
    json!({
        "numNetworks": cache.objects.len(Collection::Networks),
        "vlansInUse": in_use(TagKind::Vlan),
        "vxlansInUse": in_use(TagKind::Vxlan),
        "clusterMode": "",
    })
}

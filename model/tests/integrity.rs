//! Cross-object rules over an in-memory index: the same rules the master enforces.

use fabric_model::index::ObjectIndex;
use fabric_model::integrity::{check_delete, check_write};
use fabric_model::*;
use serde_json::to_value;

fn put<O: Object>(ix: &mut ObjectIndex, mut o: O) {
    o.apply_defaults();
    check_write(&o, None, ix).unwrap_or_else(|e| panic!("setup object rejected: {e}"));
    o.set_key();
    ix.put(O::COLLECTION, &o.key(), to_value(&o).unwrap());
}

fn tenant(name: &str) -> Tenant {
    Tenant {
        tenant_name: name.into(),
        ..Tenant::default()
    }
}

fn network(tenant: &str, name: &str, subnet: &str) -> Network {
    Network {
        tenant_name: tenant.into(),
        network_name: name.into(),
        subnet: subnet.into(),
        ..Network::default()
    }
}

fn base() -> ObjectIndex {
    let mut ix = ObjectIndex::new();
    put(&mut ix, tenant("default"));
    put(&mut ix, tenant("blue"));
    put(&mut ix, network("blue", "contiv-net", "10.1.1.0/24"));
    put(
        &mut ix,
        Policy {
            tenant_name: "blue".into(),
            policy_name: "db-policy".into(),
            ..Policy::default()
        },
    );
    ix
}

#[test]
fn subnets_may_not_overlap_within_a_tenant_but_may_across_tenants() {
    let ix = base();
    let mut n = network("blue", "other", "10.1.0.0/16");
    n.apply_defaults();
    let e = check_write(&n, None, &ix).unwrap_err();
    assert_eq!(
        (e.object.as_str(), e.field.as_str()),
        ("networks/blue:other", "subnet")
    );
    assert!(e.reason.contains("overlaps network 'contiv-net'"), "{e}");
    let mut same_elsewhere = network("default", "contiv-net", "10.1.1.0/24");
    same_elsewhere.apply_defaults();
    assert!(check_write(&same_elsewhere, None, &ix).is_ok());
}

#[test]
fn references_must_exist() {
    let ix = base();
    let mut n = network("red", "n", "10.9.0.0/24");
    n.apply_defaults();
    let e = check_write(&n, None, &ix).unwrap_err();
    assert_eq!(e.field, "tenantName");
    assert!(e.reason.contains("tenant 'red' does not exist"), "{e}");
    let g = EndpointGroup {
        tenant_name: "blue".into(),
        group_name: "db".into(),
        network_name: "contiv-net".into(),
        policies: vec!["nope".into()],
        ..EndpointGroup::default()
    };
    let e = check_write(&g, None, &ix).unwrap_err();
    assert_eq!(e.field, "policies");
    let r = Rule {
        tenant_name: "blue".into(),
        policy_name: "db-policy".into(),
        rule_id: "1".into(),
        direction: "in".into(),
        from_endpoint_group: "ghost".into(),
        action: "allow".into(),
        ..Rule::default()
    };
    assert_eq!(
        check_write(&r, None, &ix).unwrap_err().field,
        "fromEndpointGroup"
    );
}

#[test]
fn group_pool_lies_inside_the_network() {
    let ix = base();
    let mut g = EndpointGroup {
        tenant_name: "blue".into(),
        group_name: "db".into(),
        network_name: "contiv-net".into(),
        ip_pool: "10.1.1.10-10.1.1.20".into(),
        ..EndpointGroup::default()
    };
    assert!(check_write(&g, None, &ix).is_ok());
    g.ip_pool = "10.1.1.250-10.1.2.5".into();
    let e = check_write(&g, None, &ix).unwrap_err();
    assert_eq!(e.field, "ipPool");
    g.ip_pool = "10.1.1.0-10.1.1.5".into();
    assert_eq!(
        check_write(&g, None, &ix).unwrap_err().field,
        "ipPool",
        "network address is not usable"
    );
}

#[test]
fn objects_in_use_cannot_be_deleted() {
    let mut ix = base();
    put(
        &mut ix,
        EndpointGroup {
            tenant_name: "blue".into(),
            group_name: "db-group".into(),
            network_name: "contiv-net".into(),
            policies: vec!["db-policy".into()],
            ..EndpointGroup::default()
        },
    );
    put(
        &mut ix,
        Rule {
            tenant_name: "blue".into(),
            policy_name: "db-policy".into(),
            rule_id: "1".into(),
            direction: "in".into(),
            protocol: "tcp".into(),
            action: "deny".into(),
            ..Rule::default()
        },
    );
    let e = check_delete(Collection::Tenants, "blue", &ix).unwrap_err();
    assert!(e.reason.contains("networks/blue:contiv-net"), "{e}");
    let e = check_delete(Collection::Networks, "blue:contiv-net", &ix).unwrap_err();
    assert!(e.reason.contains("endpointGroups/blue:db-group"), "{e}");
    let e = check_delete(Collection::Policies, "blue:db-policy", &ix).unwrap_err();
    assert!(e.reason.contains("endpointGroups/blue:db-group"), "{e}");
    assert!(
        !e.reason.contains("rules/"),
        "a policy's rules do not keep it in use: {e}"
    );
    ix.remove(Collection::EndpointGroups, "blue:db-group");
    assert!(check_delete(Collection::Policies, "blue:db-policy", &ix).is_ok());
    assert!(check_delete(Collection::Networks, "blue:contiv-net", &ix).is_ok());
    let ep = Endpoint {
        endpoint_id: "c1".into(),
        network: "blue:contiv-net".into(),
        ..Endpoint::default()
    };
    ix.put(Collection::Endpoints, "c1", to_value(&ep).unwrap());
    assert!(
        check_delete(Collection::Networks, "blue:contiv-net", &ix).is_err(),
        "endpoints keep a network in use"
    );
}

#[test]
fn immutable_fields_cannot_change() {
    let ix = base();
    let old: Network = ix.get_typed("blue:contiv-net").unwrap();
    let mut new = old.clone();
    new.gateway = "10.1.1.254".into();
    assert!(
        check_write(&new, Some(&old), &ix).is_ok(),
        "gateway may change"
    );
    let mut new = old.clone();
    new.subnet = "10.1.2.0/24".into();
    let e = check_write(&new, Some(&old), &ix).unwrap_err();
    assert_eq!(e.field, "subnet");
    let mut new = old.clone();
    new.encap = "vlan".into();
    assert_eq!(
        check_write(&new, Some(&old), &ix).unwrap_err().field,
        "encap"
    );
}

#[test]
fn index_tracks_references_through_updates() {
    let mut ix = base();
    let mut g = EndpointGroup {
        tenant_name: "blue".into(),
        group_name: "g".into(),
        network_name: "contiv-net".into(),
        policies: vec!["db-policy".into()],
        ..EndpointGroup::default()
    };
    put(&mut ix, g.clone());
    assert_eq!(
        ix.referrers_in(
            Collection::Policies,
            "blue:db-policy",
            Collection::EndpointGroups
        ),
        vec!["blue:g"]
    );
    g.policies.clear();
    put(&mut ix, g);
    assert!(ix
        .referrers_in(
            Collection::Policies,
            "blue:db-policy",
            Collection::EndpointGroups
        )
        .is_empty());
}

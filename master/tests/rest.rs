//! The REST API of every collection, with every validation rule, on both stores.

mod common;

use common::{samples, Fixture, TestMaster};
use serde_json::{json, Value};

both_backends! {
    defaults_exist => defaults_exist;
    every_collection_round_trips => every_collection_round_trips;
    field_validation_names_the_field => field_validation_names_the_field;
    cross_object_rules => cross_object_rules;
    objects_in_use_cannot_be_deleted => objects_in_use_cannot_be_deleted;
    immutable_fields_cannot_change => immutable_fields_cannot_change;
    tags_are_allocated_from_global_ranges => tags_are_allocated_from_global_ranges;
    addresses_are_allocated_released_and_exhausted => addresses_are_allocated_released_and_exhausted;
    endpoints_are_recorded_and_inspected => endpoints_are_recorded_and_inspected;
    watch_streams_every_change_after_a_revision => watch_streams_every_change_after_a_revision;
    agent_hosts_are_named_like_everything_else => agent_hosts_are_named_like_everything_else;
}

async fn agent_hosts_are_named_like_everything_else(f: &Fixture) {
    let m = f.master().await;
    for bad in ["bad_host", "-lead", "a..b"] {
        let (s, v) = m
            .request(
                reqwest::Method::PUT,
                &format!("/api/v1/agent/hosts/{bad}"),
                Some(json!({"leaseSecs": 10})),
            )
            .await;
        assert_eq!((s, v["field"].as_str()), (400, Some("host")), "{bad}: {v}");
    }
    let (s, v) = m
        .request(
            reqwest::Method::PUT,
            "/api/v1/agent/hosts/host-1.rack2",
            Some(json!({"leaseSecs": 10})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, hosts) = m.get("/api/v1/agent/hosts").await;
    assert_eq!(hosts.as_array().map(Vec::len), Some(1), "{hosts}");
}

async fn defaults_exist(f: &Fixture) {
    let m = f.master().await;
    let (s, t) = m.get("/api/v1/tenants/default/").await;
    assert_eq!((s, t["tenantName"].as_str()), (200, Some("default")));
    let (_, g) = m.get("/api/v1/globals/global/").await;
    assert_eq!(g["vlans"], "1-4094");
    assert_eq!(g["vxlans"], "1-10000");
    assert_eq!(g["arpMode"], "proxy");
    assert_eq!(g["fwdMode"], "routing", "native L3, what the agents run");
    let (s, _) = m.delete("/api/v1/tenants/default/").await;
    assert_eq!(s, 409, "the default tenant stays");
    let (s, _) = m.delete("/api/v1/globals/global/").await;
    assert_eq!(s, 409, "the global object stays");
    // A second master on the same store finds them and does not duplicate anything.
    let (s, v) = m.get("/version").await;
    assert_eq!(s, 200);
    assert!(v["Version"].is_string());
}

async fn every_collection_round_trips(f: &Fixture) {
    let m = f.master().await;
    for (coll, key, body) in samples() {
        let created = m
            .create(&format!("/api/v1/{coll}/{key}/"), body.clone())
            .await;
        assert_eq!(created["key"], key, "{coll}: key is set");
        for (field, value) in body.as_object().unwrap() {
            assert_eq!(&created[field], value, "{coll}.{field} stored as sent");
        }
        let (s, got) = m.get(&format!("/api/v1/{coll}/{key}/")).await;
        assert_eq!(
            (s, &got),
            (200, &created),
            "{coll}: GET returns what POST stored"
        );
        let (s, list) = m.get(&format!("/api/v1/{coll}/")).await;
        assert_eq!(s, 200);
        assert!(
            list.as_array().unwrap().contains(&created),
            "{coll}: listed"
        );
        let (s, ins) = m.get(&format!("/api/v1/inspect/{coll}/{key}/")).await;
        assert_eq!(
            (s, &ins["Config"]),
            (200, &created),
            "{coll}: inspect has the config"
        );
        assert!(ins["Oper"].is_object(), "{coll}: inspect has oper state");
    }
    // Updates through PUT and POST (Contiv's create-or-update).
    let (s, v) = m
        .request(
            reqwest::Method::PUT,
            "/api/v1/netprofiles/blue:prof/",
            Some(json!({"bandwidth": "20Mbps", "DSCP": 7})),
        )
        .await;
    assert_eq!((s, v["DSCP"].as_i64()), (200, Some(7)), "{v}");
    // Delete in reverse dependency order; each disappears.
    for (coll, key, _) in samples().into_iter().rev() {
        if coll == "globals" {
            continue;
        }
        let (s, v) = m.delete(&format!("/api/v1/{coll}/{key}/")).await;
        assert_eq!(s, 200, "DELETE {coll}/{key}: {v}");
        assert_eq!(m.get(&format!("/api/v1/{coll}/{key}/")).await.0, 404);
    }
    let (s, v) = m.delete("/api/v1/tenants/blue/").await;
    assert_eq!(s, 404, "already gone: {v}");
    assert_eq!(m.get("/api/v1/nonsense/").await.0, 404);
}

async fn field_validation_names_the_field(f: &Fixture) {
    let m = f.master().await;
    let net = "/api/v1/networks/default:n/";
    m.rejects(net, json!({"subnet": "10.1.1.0/33"}), 422, "subnet")
        .await;
    m.rejects(net, json!({"subnet": "10.1.1.0"}), 422, "subnet")
        .await;
    m.rejects(net, json!({}), 422, "subnet").await;
    m.rejects(
        net,
        json!({"subnet": "10.1.1.0/24", "gateway": "10.2.0.1"}),
        422,
        "gateway",
    )
    .await;
    m.rejects(
        net,
        json!({"subnet": "10.1.1.0/24", "encap": "vlan", "pktTag": 4095}),
        422,
        "pktTag",
    )
    .await;
    m.rejects(
        net,
        json!({"subnet": "10.1.1.0/24", "pktTag": 16777216}),
        422,
        "pktTag",
    )
    .await;
    m.rejects(
        net,
        json!({"subnet": "10.1.1.0/24", "encap": "gre"}),
        422,
        "encap",
    )
    .await;
    m.rejects(
        net,
        json!({"subnet": "10.1.1.0/24", "tenantName": "other"}),
        400,
        "tenantName",
    )
    .await;
    m.rejects(net, json!({"subnet": 5}), 400, "subnet").await;
    m.rejects(
        "/api/v1/networks/default:bad_name/",
        json!({"subnet": "10.1.1.0/24"}),
        422,
        "networkName",
    )
    .await;
    m.rejects(
        "/api/v1/tenants/x/",
        json!({"defaultNetwork": "-x"}),
        422,
        "defaultNetwork",
    )
    .await;
    let rule = "/api/v1/rules/default:p:1/";
    m.create("/api/v1/policys/default:p/", json!({})).await;
    m.rejects(
        rule,
        json!({"direction": "in", "action": "allow", "priority": 101}),
        422,
        "priority",
    )
    .await;
    m.rejects(
        rule,
        json!({"direction": "in", "action": "allow", "priority": 0}),
        422,
        "priority",
    )
    .await;
    m.rejects(
        rule,
        json!({"direction": "up", "action": "allow"}),
        422,
        "direction",
    )
    .await;
    m.rejects(
        rule,
        json!({"direction": "in", "action": "maybe"}),
        422,
        "action",
    )
    .await;
    m.rejects(
        rule,
        json!({"direction": "in", "action": "allow", "protocol": "tcp", "port": 65536}),
        422,
        "port",
    )
    .await;
    m.rejects(
        rule,
        json!({"direction": "in", "action": "allow", "protocol": "xyz"}),
        422,
        "protocol",
    )
    .await;
    m.rejects(
        rule,
        json!({"direction": "in", "action": "allow", "toEndpointGroup": "g"}),
        422,
        "toEndpointGroup",
    )
    .await;
    m.rejects(
        rule,
        json!({"direction": "out", "action": "allow", "fromNetwork": "n"}),
        422,
        "fromNetwork",
    )
    .await;
    m.rejects(
        rule,
        json!({"direction": "in", "action": "allow", "fromIpAddress": "10.1.1.300"}),
        422,
        "fromIpAddress",
    )
    .await;
    m.rejects(rule, json!({"direction": "in", "action": "allow", "fromEndpointGroup": "g", "fromIpAddress": "10.0.0.1"}), 422, "fromIpAddress").await;
    m.rejects(
        rule,
        json!({"direction": "in", "action": "allow", "fromEndpointGroup": "g", "fromNetwork": "n"}),
        422,
        "fromNetwork",
    )
    .await;
    m.rejects(
        "/api/v1/netprofiles/default:p/",
        json!({"DSCP": 64}),
        422,
        "DSCP",
    )
    .await;
    m.rejects(
        "/api/v1/netprofiles/default:p/",
        json!({"bandwidth": "lots"}),
        422,
        "bandwidth",
    )
    .await;
    m.rejects(
        "/api/v1/netprofiles/default:p/",
        json!({"burst": 20000}),
        422,
        "burst",
    )
    .await;
    m.rejects(
        "/api/v1/globals/global/",
        json!({"vlans": "0-4094"}),
        422,
        "vlans",
    )
    .await;
    m.rejects(
        "/api/v1/globals/global/",
        json!({"vxlans": "1-16777216"}),
        422,
        "vxlans",
    )
    .await;
    m.rejects(
        "/api/v1/globals/global/",
        json!({"fwdMode": "flying"}),
        422,
        "fwdMode",
    )
    .await;
    m.rejects(
        "/api/v1/Bgps/h/",
        json!({"routerip": "50.1.1.1", "as": "1", "neighbor-as": "2", "neighbor": "50.1.1.2"}),
        422,
        "routerip",
    )
    .await;
    m.rejects(
        "/api/v1/Bgps/h/",
        json!({"routerip": "50.1.1.1/24", "as": "x", "neighbor-as": "2", "neighbor": "50.1.1.2"}),
        422,
        "as",
    )
    .await;
    m.rejects(
        "/api/v1/serviceLBs/default:s/",
        json!({"networkName": "n", "selectors": ["a=b"], "ports": ["80"]}),
        422,
        "ports",
    )
    .await;
    m.rejects(
        "/api/v1/aciGws/aciGw/",
        json!({"nodeBindings": "pod-1"}),
        422,
        "nodeBindings",
    )
    .await;
    m.rejects(
        "/api/v1/extContractsGroups/default:e/",
        json!({"contractsType": "both"}),
        422,
        "contractsType",
    )
    .await;
    let (s, v) = m
        .request(reqwest::Method::POST, "/api/v1/tenants/x/", None)
        .await;
    assert_eq!(s, 400, "an empty body is not JSON: {v}");
    let (s, v) = m
        .post("/api/v1/endpoints/e1/", json!({"network": "default:n"}))
        .await;
    assert_eq!(s, 405, "endpoints are read-only to users: {v}");
}

async fn cross_object_rules(f: &Fixture) {
    let m = f.master().await;
    m.create("/api/v1/tenants/blue/", json!({})).await;
    m.create("/api/v1/networks/blue:a/", json!({"subnet": "10.1.1.0/24"}))
        .await;
    let v = m
        .rejects(
            "/api/v1/networks/blue:b/",
            json!({"subnet": "10.1.0.0/16"}),
            422,
            "subnet",
        )
        .await;
    assert!(v["reason"].as_str().unwrap().contains("overlaps"), "{v}");
    // The forwarding mode stays while networks exist (Contiv's rule)...
    let v = m
        .rejects(
            "/api/v1/globals/global/",
            json!({"fwdMode": "bridge"}),
            409,
            "fwdMode",
        )
        .await;
    assert!(
        v["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("networks/blue:a"),
        "names a network: {v}"
    );
    // ...and changes once they are gone. Another tenant may reuse the subnet in an overlay
    // mode (native L3 refuses it: see tests/tenancy.rs).
    let (s, v) = m.delete("/api/v1/networks/blue:a/").await;
    assert_eq!(s, 200, "{v}");
    m.create("/api/v1/globals/global/", json!({"fwdMode": "bridge"}))
        .await;
    m.create("/api/v1/networks/blue:a/", json!({"subnet": "10.1.1.0/24"}))
        .await;
    m.create(
        "/api/v1/networks/default:a/",
        json!({"subnet": "10.1.1.0/24"}),
    )
    .await;
    m.rejects(
        "/api/v1/networks/red:a/",
        json!({"subnet": "10.1.1.0/24"}),
        422,
        "tenantName",
    )
    .await;
    m.rejects(
        "/api/v1/endpointGroups/blue:g/",
        json!({"networkName": "nope"}),
        422,
        "networkName",
    )
    .await;
    m.rejects(
        "/api/v1/endpointGroups/blue:g/",
        json!({"networkName": "a", "ipPool": "10.1.2.1-10.1.2.9"}),
        422,
        "ipPool",
    )
    .await;
    m.rejects(
        "/api/v1/endpointGroups/blue:g/",
        json!({"networkName": "a", "policies": ["ghost"]}),
        422,
        "policies",
    )
    .await;
    m.create(
        "/api/v1/endpointGroups/blue:g/",
        json!({"networkName": "a", "ipPool": "10.1.1.100-10.1.1.109"}),
    )
    .await;
    m.rejects(
        "/api/v1/rules/blue:nopol:1/",
        json!({"direction": "in", "action": "allow"}),
        422,
        "policyName",
    )
    .await;
    m.create("/api/v1/policys/blue:p/", json!({})).await;
    m.rejects(
        "/api/v1/rules/blue:p:1/",
        json!({"direction": "in", "action": "allow", "fromEndpointGroup": "ghost"}),
        422,
        "fromEndpointGroup",
    )
    .await;
    m.rejects(
        "/api/v1/rules/blue:p:1/",
        json!({"direction": "out", "action": "allow", "toNetwork": "ghost"}),
        422,
        "toNetwork",
    )
    .await;
    m.create(
        "/api/v1/rules/blue:p:1/",
        json!({"direction": "in", "action": "allow", "fromEndpointGroup": "g"}),
    )
    .await;
    m.rejects(
        "/api/v1/appProfiles/blue:app/",
        json!({"endpointGroups": ["ghost"]}),
        422,
        "endpointGroups",
    )
    .await;
    m.rejects(
        "/api/v1/serviceLBs/blue:s/",
        json!({"networkName": "ghost", "selectors": ["a=b"], "ports": ["80:80:TCP"]}),
        422,
        "networkName",
    )
    .await;
}

async fn objects_in_use_cannot_be_deleted(f: &Fixture) {
    let m = f.master().await;
    m.create("/api/v1/tenants/blue/", json!({})).await;
    m.create("/api/v1/networks/blue:n/", json!({"subnet": "10.1.1.0/24"}))
        .await;
    m.create("/api/v1/policys/blue:p/", json!({})).await;
    m.create(
        "/api/v1/rules/blue:p:1/",
        json!({"direction": "in", "action": "deny", "protocol": "tcp"}),
    )
    .await;
    // More rules than one transaction deletes: a refused delete must not remove any of them.
    for i in 2..=150 {
        m.create(
            &format!("/api/v1/rules/blue:p:{i}/"),
            json!({"direction": "out", "action": "allow"}),
        )
        .await;
    }
    m.create(
        "/api/v1/endpointGroups/blue:g/",
        json!({"networkName": "n", "policies": ["p"]}),
    )
    .await;
    for (path, user) in [
        ("/api/v1/tenants/blue/", "networks/blue:n"),
        ("/api/v1/networks/blue:n/", "endpointGroups/blue:g"),
        ("/api/v1/policys/blue:p/", "endpointGroups/blue:g"),
    ] {
        let before = m.master.store.revision().await.unwrap();
        let (s, v) = m.delete(path).await;
        assert_eq!(s, 409, "{path}: {v}");
        assert!(
            v["reason"].as_str().unwrap().contains(user),
            "{path} names its user: {v}"
        );
        assert_eq!(
            m.master.store.revision().await.unwrap(),
            before,
            "refused delete changes nothing"
        );
    }
    // Detach the policy: now it goes, with its rules.
    m.create(
        "/api/v1/endpointGroups/blue:g/",
        json!({"networkName": "n", "policies": []}),
    )
    .await;
    assert_eq!(m.delete("/api/v1/policys/blue:p/").await.0, 200);
    assert_eq!(
        m.get("/api/v1/rules/blue:p:1/").await.0,
        404,
        "rules go with their policy"
    );
    let (_, rules) = m.get("/api/v1/rules/").await;
    assert_eq!(rules.as_array().map(Vec::len), Some(0), "all 150: {rules}");
    // A network with endpoints (or allocated addresses) stays.
    m.delete("/api/v1/endpointGroups/blue:g/").await;
    let (s, _) = m
        .post(
            "/api/v1/agent/allocate",
            json!({"network": "blue:n", "owner": "ep1"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = m.delete("/api/v1/networks/blue:n/").await;
    assert_eq!(s, 409, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("allocated"), "{v}");
}

async fn immutable_fields_cannot_change(f: &Fixture) {
    let m = f.master().await;
    m.create(
        "/api/v1/networks/default:n/",
        json!({"subnet": "10.1.1.0/24", "encap": "vlan", "pktTag": 100}),
    )
    .await;
    m.rejects(
        "/api/v1/networks/default:n/",
        json!({"subnet": "10.1.2.0/24", "encap": "vlan"}),
        422,
        "subnet",
    )
    .await;
    m.rejects(
        "/api/v1/networks/default:n/",
        json!({"subnet": "10.1.1.0/24", "encap": "vxlan"}),
        422,
        "encap",
    )
    .await;
    m.rejects(
        "/api/v1/networks/default:n/",
        json!({"subnet": "10.1.1.0/24", "encap": "vlan", "pktTag": 101}),
        422,
        "pktTag",
    )
    .await;
    let v = m
        .create(
            "/api/v1/networks/default:n/",
            json!({"subnet": "10.1.1.0/24", "encap": "vlan", "gateway": "10.1.1.1"}),
        )
        .await;
    assert_eq!(
        (v["gateway"].as_str(), v["pktTag"].as_i64()),
        (Some("10.1.1.1"), Some(100)),
        "mutable field changes, tag kept"
    );
    m.create(
        "/api/v1/endpointGroups/default:g/",
        json!({"networkName": "n"}),
    )
    .await;
    m.create(
        "/api/v1/networks/default:m/",
        json!({"subnet": "10.2.1.0/24"}),
    )
    .await;
    m.rejects(
        "/api/v1/endpointGroups/default:g/",
        json!({"networkName": "m"}),
        422,
        "networkName",
    )
    .await;
}

async fn tags_are_allocated_from_global_ranges(f: &Fixture) {
    let m = f.master().await;
    m.create(
        "/api/v1/globals/global/",
        json!({"vlans": "100-101", "vxlans": "5000-5001"}),
    )
    .await;
    let a = m
        .create(
            "/api/v1/networks/default:a/",
            json!({"subnet": "10.0.1.0/24"}),
        )
        .await;
    let b = m
        .create(
            "/api/v1/networks/default:b/",
            json!({"subnet": "10.0.2.0/24"}),
        )
        .await;
    assert_eq!(
        (a["pktTag"].as_i64(), b["pktTag"].as_i64()),
        (Some(5000), Some(5001))
    );
    let v = m
        .rejects(
            "/api/v1/networks/default:c/",
            json!({"subnet": "10.0.3.0/24"}),
            409,
            "pktTag",
        )
        .await;
    assert!(
        v["reason"].as_str().unwrap().contains("no free vxlan"),
        "{v}"
    );
    m.create(
        "/api/v1/networks/default:v/",
        json!({"subnet": "10.0.4.0/24", "encap": "vlan", "pktTag": 101}),
    )
    .await;
    m.rejects(
        "/api/v1/networks/default:w/",
        json!({"subnet": "10.0.5.0/24", "encap": "vlan", "pktTag": 101}),
        409,
        "pktTag",
    )
    .await;
    m.rejects(
        "/api/v1/networks/default:w/",
        json!({"subnet": "10.0.5.0/24", "encap": "vlan", "pktTag": 200}),
        422,
        "pktTag",
    )
    .await;
    let v = m
        .rejects(
            "/api/v1/globals/global/",
            json!({"vlans": "1-100"}),
            409,
            "vlans",
        )
        .await;
    assert!(
        v["reason"].as_str().unwrap().contains("101"),
        "names the tag in use: {v}"
    );
    let (_, g) = m.get("/api/v1/inspect/globals/global/").await;
    assert_eq!(
        (
            g["Oper"]["vlansInUse"].as_str(),
            g["Oper"]["vxlansInUse"].as_str()
        ),
        (Some("101"), Some("5000-5001"))
    );
    assert_eq!(m.delete("/api/v1/networks/default:a/").await.0, 200);
    let c = m
        .create(
            "/api/v1/networks/default:c/",
            json!({"subnet": "10.0.3.0/24"}),
        )
        .await;
    assert_eq!(
        c["pktTag"].as_i64(),
        Some(5000),
        "a deleted network's tag is free again"
    );
}

async fn addresses_are_allocated_released_and_exhausted(f: &Fixture) {
    let m = f.master().await;
    m.create(
        "/api/v1/networks/default:n/",
        json!({"subnet": "10.9.0.0/29", "gateway": "10.9.0.1", "ipv6Subnet": "2001:db8::/120"}),
    )
    .await;
    let alloc = |owner: &str| json!({"network": "default:n", "owner": owner});
    let mut got = Vec::new();
    let mut holder = std::collections::BTreeMap::new();
    for i in 0..5 {
        let (s, v) = m
            .post("/api/v1/agent/allocate", alloc(&format!("ep{i}")))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["prefixLen"].as_u64(), v["gateway"].as_str()),
            (Some(29), Some("10.9.0.1"))
        );
        got.push(v["ipAddress"].as_str().unwrap().to_string());
        holder.insert(got[i].clone(), format!("ep{i}"));
    }
    got.sort();
    assert_eq!(
        got,
        ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"],
        "all hosts but the gateway"
    );
    let (s, v) = m.post("/api/v1/agent/allocate", alloc("ep5")).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("no free address"),
        "{v}"
    );
    // Freeing a live endpoint's address without naming its holder would let the next
    // container have the same address: refused, and a wrong holder frees nothing.
    let before = m.master.store.revision().await.unwrap();
    let (s, v) = m
        .post(
            "/api/v1/agent/release",
            json!({"network": "default:n", "ipAddress": "10.9.0.4"}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (400, Some("owner")), "{v}");
    let (s, _) = m
        .post(
            "/api/v1/agent/release",
            json!({"network": "default:n", "ipAddress": "10.9.0.4", "owner": "someone-else"}),
        )
        .await;
    assert_eq!(s, 409, "a release naming another holder is refused");
    assert_eq!(before, m.master.store.revision().await.unwrap());
    let (s, v) = m.post("/api/v1/agent/allocate", alloc("thief")).await;
    assert_eq!(s, 409, "still full: no duplicate address handed out: {v}");
    let owner = holder["10.9.0.4"].clone();
    let release = json!({"network": "default:n", "ipAddress": "10.9.0.4", "owner": owner});
    let (s, _) = m.post("/api/v1/agent/release", release.clone()).await;
    assert_eq!(s, 200);
    let (s, _) = m.post("/api/v1/agent/release", release).await;
    assert_eq!(s, 200, "releasing twice is fine");
    let before = m.master.store.revision().await.unwrap();
    let (s, v) = m
        .post(
            "/api/v1/agent/allocate",
            json!({"network": "default:n", "owner": "x", "preferred": "10.8.0.4"}),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (422, Some("preferred")),
        "a preferred address outside the subnet is an error, not replaced: {v}"
    );
    assert_eq!(before, m.master.store.revision().await.unwrap());
    let (_, v) = m
        .post(
            "/api/v1/agent/allocate",
            json!({"network": "default:n", "owner": "x", "preferred": "10.9.0.4"}),
        )
        .await;
    assert_eq!(
        v["ipAddress"], "10.9.0.4",
        "preferred address honoured when free"
    );
    let (_, ins) = m.get("/api/v1/inspect/networks/default:n/").await;
    assert_eq!(ins["Oper"]["allocatedAddressesCount"], 5);
    assert_eq!(ins["Oper"]["allocatedIPAddresses"], "10.9.0.2-10.9.0.6");
    let (s, v) = m
        .post(
            "/api/v1/agent/allocate",
            json!({"network": "default:n", "owner": "v6", "ipv6": true}),
        )
        .await;
    assert_eq!((s, v["prefixLen"].as_u64()), (200, Some(120)), "{v}");
    let v6: std::net::Ipv6Addr = v["ipAddress"].as_str().unwrap().parse().unwrap();
    let net6: ipnet::Ipv6Net = "2001:db8::/120".parse().unwrap();
    assert!(
        net6.contains(&v6) && v6 != net6.network(),
        "{v6} is a host of {net6}"
    );
    // A group's pool narrows the choice.
    m.create(
        "/api/v1/networks/default:big/",
        json!({"subnet": "10.8.0.0/24"}),
    )
    .await;
    m.create(
        "/api/v1/endpointGroups/default:g/",
        json!({"networkName": "big", "ipPool": "10.8.0.50-10.8.0.51"}),
    )
    .await;
    for _ in 0..2 {
        let (_, v) = m
            .post(
                "/api/v1/agent/allocate",
                json!({"network": "default:big", "group": "default:g", "owner": "e"}),
            )
            .await;
        let ip = v["ipAddress"].as_str().unwrap();
        assert!(ip == "10.8.0.50" || ip == "10.8.0.51", "{v}");
    }
    let (s, _) = m
        .post(
            "/api/v1/agent/allocate",
            json!({"network": "default:big", "group": "default:g", "owner": "e"}),
        )
        .await;
    assert_eq!(
        s, 409,
        "the group's pool is exhausted even though the network is not"
    );
    let (s, v) = m
        .post(
            "/api/v1/agent/allocate",
            json!({"network": "default:ghost", "owner": "e"}),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = m
        .post("/api/v1/agent/allocate", json!({"network": "default:n"}))
        .await;
    assert_eq!((s, v["field"].as_str()), (400, Some("owner")), "{v}");
}

async fn endpoints_are_recorded_and_inspected(f: &Fixture) {
    let m = f.master().await;
    m.create(
        "/api/v1/networks/default:n/",
        json!({"subnet": "10.9.0.0/24"}),
    )
    .await;
    m.create(
        "/api/v1/endpointGroups/default:g/",
        json!({"networkName": "n"}),
    )
    .await;
    let ep = json!({"network": "default:n", "endpointGroupKey": "default:g", "ipAddress": ["10.9.0.5"], "homingHost": "host1", "containerID": "abc"});
    let (s, v) = m
        .request(
            reqwest::Method::PUT,
            "/api/v1/agent/endpoints/abc-eth0",
            Some(ep),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, ins) = m.get("/api/v1/inspect/endpointGroups/default:g/").await;
    assert_eq!(ins["Oper"]["numEndpoints"], 1);
    assert!(
        ins["Oper"]["pktTag"].as_u64().is_some_and(|id| id >= 1),
        "the group has a 32-bit id: {ins}"
    );
    let (_, ins) = m.get("/api/v1/inspect/networks/default:n/").await;
    assert_eq!(ins["Oper"]["endpoints"][0]["homingHost"], "host1");
    assert_eq!(m.get("/api/v1/endpoints/abc-eth0/").await.0, 200);
    assert_eq!(m.get("/api/v1/inspect/endpoints/abc-eth0/").await.0, 200);
    assert_eq!(
        m.delete("/api/v1/endpointGroups/default:g/").await.0,
        409,
        "a group with endpoints stays"
    );
    let (s, _) = m
        .request(
            reqwest::Method::PUT,
            "/api/v1/agent/endpoints/bad",
            Some(json!({"network": "default:ghost"})),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(
        m.request(
            reqwest::Method::DELETE,
            "/api/v1/agent/endpoints/abc-eth0",
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        m.request(
            reqwest::Method::DELETE,
            "/api/v1/agent/endpoints/abc-eth0",
            None
        )
        .await
        .0,
        200,
        "removing twice is fine"
    );
    assert_eq!(m.delete("/api/v1/endpointGroups/default:g/").await.0, 200);
}

async fn read_lines(m: &TestMaster, since: u64, want: usize) -> Vec<Value> {
    let mut resp = m
        .client
        .get(format!("{}/api/v1/watch?since={since}", m.base))
        .send()
        .await
        .expect("watch");
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while buf.lines().count() < want {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => buf.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!(
                "watch ended early with {} of {want} lines: {other:?}",
                buf.lines().count()
            ),
        }
    }
    buf.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

async fn watch_streams_every_change_after_a_revision(f: &Fixture) {
    let m = f.master().await;
    let start = m.master.store.revision().await.unwrap();
    for i in 0..5 {
        m.create(&format!("/api/v1/tenants/t{i}/"), json!({})).await;
    }
    let events = read_lines(&m, start, 5).await;
    let names: Vec<&str> = events.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(names, ["t0", "t1", "t2", "t3", "t4"]);
    let revs: Vec<u64> = events
        .iter()
        .map(|e| e["revision"].as_u64().unwrap())
        .collect();
    assert!(revs.windows(2).all(|w| w[0] < w[1]), "in order: {revs:?}");
    // Resuming from the third event's revision yields exactly what came after it, then live ones.
    let resume = revs[2];
    m.delete("/api/v1/tenants/t0/").await;
    let events = read_lines(&m, resume, 3).await;
    assert_eq!(events[0]["key"], "t3");
    assert_eq!(events[1]["key"], "t4");
    assert_eq!(
        (events[2]["key"].as_str(), events[2]["type"].as_str()),
        (Some("t0"), Some("delete"))
    );
    let (_, state) = m.get("/api/v1/state").await;
    assert!(state["revision"].as_u64().unwrap() >= revs[4]);
    assert_eq!(
        state["objects"]["tenants"].as_array().unwrap().len(),
        5,
        "default + t1..t4"
    );
}

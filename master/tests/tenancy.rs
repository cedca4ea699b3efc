//! Tenants in native L3 mode (fwdMode `routing`, the default): a subnet that overlaps another
//! tenant's network is refused, `global` cannot switch into native L3 over such networks, an
//! address another tenant holds is never handed out even where an overlap predates the rule,
//! and a group's ipPool is kept for that group's endpoints. On both stores.

mod common;

use common::{Fixture, TestMaster};
use serde_json::{json, Value};

both_backends! {
    an_overlapping_network_of_another_tenant_is_refused => an_overlapping_network_of_another_tenant_is_refused;
    global_cannot_switch_to_routing_over_overlapping_tenants => global_cannot_switch_to_routing_over_overlapping_tenants;
    an_address_another_tenant_holds_is_never_handed_out => an_address_another_tenant_holds_is_never_handed_out;
    a_groups_pool_is_kept_for_the_group => a_groups_pool_is_kept_for_the_group;
}

async fn tenant(m: &TestMaster, name: &str) {
    m.create(&format!("/api/v1/tenants/{name}/"), json!({}))
        .await;
}

async fn set_fwd_mode(m: &TestMaster, mode: &str) -> (u16, Value) {
    m.post("/api/v1/globals/global/", json!({"fwdMode": mode}))
        .await
}

async fn allocate(m: &TestMaster, body: Value) -> (u16, Value) {
    m.post("/api/v1/agent/allocate", body).await
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

async fn an_overlapping_network_of_another_tenant_is_refused(f: &Fixture) {
    let m = f.master().await;
    let (_, g) = m.get("/api/v1/globals/global/").await;
    assert_eq!(g["fwdMode"], "routing", "native L3 is the default: {g}");
    tenant(&m, "t2").await;
    m.create(
        "/api/v1/networks/default:n1/",
        json!({"subnet": "10.1.0.0/24", "gateway": "10.1.0.1", "ipv6Subnet": "2001:db8:1::/64"}),
    )
    .await;
    for (subnet, extra) in [
        ("10.1.0.0/24", json!({})),
        ("10.1.0.128/25", json!({})),
        ("10.0.0.0/8", json!({})),
    ] {
        let mut body = json!({"subnet": subnet});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let v = m
            .rejects("/api/v1/networks/t2:n2/", body, 422, "subnet")
            .await;
        let msg = message(&v);
        for named in ["networks/t2:n2", "networks/default:n1", "native L3"] {
            assert!(msg.contains(named), "the error names {named}: {msg}");
        }
    }
    let v = m
        .rejects(
            "/api/v1/networks/t2:n2/",
            json!({"subnet": "10.2.0.0/24", "ipv6Subnet": "2001:db8:1:0:8000::/65"}),
            422,
            "ipv6Subnet",
        )
        .await;
    assert!(message(&v).contains("networks/default:n1"), "{v}");
    // A subnet of its own is fine, and so is one another tenant used after it is gone.
    m.create(
        "/api/v1/networks/t2:n2/",
        json!({"subnet": "10.2.0.0/24", "gateway": "10.2.0.1"}),
    )
    .await;
    let (s, v) = m.delete("/api/v1/networks/default:n1/").await;
    assert_eq!(s, 200, "{v}");
    m.create("/api/v1/networks/t2:n3/", json!({"subnet": "10.1.0.0/24"}))
        .await;
}

async fn global_cannot_switch_to_routing_over_overlapping_tenants(f: &Fixture) {
    let m = f.master().await;
    tenant(&m, "t2").await;
    let (s, v) = set_fwd_mode(&m, "bridge").await;
    assert_eq!(s, 200, "{v}");
    // The overlay modes let tenants reuse subnets.
    m.create(
        "/api/v1/networks/default:n/",
        json!({"subnet": "10.5.0.0/24"}),
    )
    .await;
    m.create("/api/v1/networks/t2:n/", json!({"subnet": "10.5.0.0/24"}))
        .await;
    // No mode change while networks exist (Contiv's rule), so never into native L3 over two
    // tenants' copies of a subnet.
    let v = m
        .rejects(
            "/api/v1/globals/global/",
            json!({"fwdMode": "routing"}),
            409,
            "fwdMode",
        )
        .await;
    for named in ["networks/", "2 network(s)", "bridge to routing"] {
        assert!(message(&v).contains(named), "names {named}: {v}");
    }
    let (_, g) = m.get("/api/v1/globals/global/").await;
    assert_eq!(g["fwdMode"], "bridge");
    // Other changes in the overlay mode still go through.
    let (s, v) = m
        .post(
            "/api/v1/globals/global/",
            json!({"fwdMode": "bridge", "arpMode": "flood"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = m.delete("/api/v1/networks/t2:n/").await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = set_fwd_mode(&m, "routing").await;
    assert_eq!(s, 409, "one network is still there");
    let (s, v) = m.delete("/api/v1/networks/default:n/").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = set_fwd_mode(&m, "routing").await;
    assert_eq!(s, 200, "no network left: {v}");
}

/// Writes `global` straight into the store, as a master from before the native L3 rule might
/// have left it over overlapping networks.
async fn force_routing(m: &TestMaster) {
    let (_, mut g) = m.get("/api/v1/globals/global/").await;
    g["fwdMode"] = json!("routing");
    let txn = fabric_store::Txn::new().put(
        "/contiv/config/globals/global".to_string(),
        g.to_string().into_bytes(),
    );
    let outcome = m.master.store.txn(txn).await.expect("store write");
    m.master.wait_for(outcome.revision).await;
}

async fn an_address_another_tenant_holds_is_never_handed_out(f: &Fixture) {
    let m = f.master().await;
    tenant(&m, "t2").await;
    set_fwd_mode(&m, "bridge").await;
    // 10.6.0.0/29: hosts .1-.6, .1 the gateway.
    for net in ["default:a", "t2:b"] {
        m.create(
            &format!("/api/v1/networks/{net}/"),
            json!({"subnet": "10.6.0.0/29", "gateway": "10.6.0.1"}),
        )
        .await;
    }
    let (s, v) = allocate(
        &m,
        json!({"network": "default:a", "owner": "d1", "preferred": "10.6.0.3"}),
    )
    .await;
    assert_eq!((s, v["ipAddress"].as_str()), (200, Some("10.6.0.3")), "{v}");
    force_routing(&m).await;
    let problems = netmaster::tenancy::audit(&m.master.cache());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("networks/default:a") && p.contains("networks/t2:b")),
        "the start-up audit reports the overlap: {problems:?}"
    );

    // Preferred or not, t2 never gets 10.6.0.3.
    let (s, v) = allocate(
        &m,
        json!({"network": "t2:b", "owner": "e1", "preferred": "10.6.0.3"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(v["ipAddress"], "10.6.0.3", "{v}");
    let e1_ip = v["ipAddress"].as_str().unwrap().to_string();
    let mut got = vec![e1_ip.clone()];
    loop {
        let owner = format!("e{}", got.len() + 1);
        let (s, v) = allocate(&m, json!({"network": "t2:b", "owner": owner})).await;
        if s != 200 {
            assert_eq!(s, 409, "{v}");
            assert!(message(&v).contains("no free address"), "{v}");
            break;
        }
        got.push(v["ipAddress"].as_str().unwrap().to_string());
        assert!(
            got.len() <= 6,
            "more addresses than the pool holds: {got:?}"
        );
    }
    got.sort();
    assert_eq!(got, ["10.6.0.2", "10.6.0.4", "10.6.0.5", "10.6.0.6"]);
    // Nor can an agent record a t2 endpoint on it.
    let ep = json!({"network": "t2:b", "ipAddress": ["10.6.0.3"], "homingHost": "h1", "containerID": "c9"});
    let before = m.master.store.revision().await.unwrap();
    let (s, v) = m
        .request(reqwest::Method::PUT, "/api/v1/agent/endpoints/c9", Some(ep))
        .await;
    assert_eq!((s, v["field"].as_str()), (409, Some("ipAddress")), "{v}");
    assert!(message(&v).contains("another tenant"), "{v}");
    assert_eq!(before, m.master.store.revision().await.unwrap());
    // Nor is it reserved for a host.
    let (s, v) = m
        .post(
            "/api/v1/agent/release",
            json!({"network": "t2:b", "ipAddress": e1_ip, "owner": "e1"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = m
        .post(
            "/api/v1/agent/reserve",
            json!({"network": "t2:b", "host": "h1", "count": 4}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(!v["addresses"].to_string().contains("10.6.0.3"), "{v}");
}

async fn a_groups_pool_is_kept_for_the_group(f: &Fixture) {
    let m = f.master().await;
    // Hosts .1-.14, the gateway .1, group g's pool .8-.14: the rest is .2-.7.
    m.create(
        "/api/v1/networks/default:n/",
        json!({"subnet": "10.7.0.0/28", "gateway": "10.7.0.1"}),
    )
    .await;
    m.create(
        "/api/v1/endpointGroups/default:g/",
        json!({"networkName": "n", "ipPool": "10.7.0.8-10.7.0.14"}),
    )
    .await;
    m.create(
        "/api/v1/endpointGroups/default:plain/",
        json!({"networkName": "n"}),
    )
    .await;
    let (s, v) = m
        .post(
            "/api/v1/agent/reserve",
            json!({"network": "default:n", "host": "h1", "count": 8}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for a in v["addresses"].as_array().unwrap() {
        let last: u8 = a
            .as_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (2..=7).contains(&last),
            "a host's reserve outside the pool: {v}"
        );
    }
    let mut got = Vec::new();
    for i in 0..8 {
        let group = if i % 2 == 0 { "" } else { "default:plain" };
        let (s, v) = allocate(
            &m,
            json!({"network": "default:n", "owner": format!("o{i}"), "group": group}),
        )
        .await;
        if s != 200 {
            assert_eq!(s, 409, "{v}");
            let msg = message(&v);
            assert!(
                msg.contains("no free address") && msg.contains("outside its groups' ipPools"),
                "{v}"
            );
            break;
        }
        got.push(v["ipAddress"].as_str().unwrap().to_string());
    }
    got.sort();
    assert_eq!(
        got,
        ["10.7.0.2", "10.7.0.3", "10.7.0.4", "10.7.0.5", "10.7.0.6", "10.7.0.7"],
        "no pool address for endpoints without the pool's group (the host's reserve is taken back)"
    );
    let (s, v) = allocate(
        &m,
        json!({"network": "default:n", "owner": "x", "preferred": "10.7.0.9"}),
    )
    .await;
    assert_eq!(s, 409, "a preferred pool address is not given either: {v}");
    let (s, v) = allocate(
        &m,
        json!({"network": "default:n", "owner": "y", "group": "default:g"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let last: u8 = v["ipAddress"]
        .as_str()
        .unwrap()
        .rsplit('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((8..=14).contains(&last), "{v}");
}

//! Addresses reserved for a host's next containers: reserved apart from everyone else's,
//! turned into an endpoint's allocation by its record, taken back by a full pool, given back
//! by the host, and no obstacle to deleting a network. On both stores.

mod common;

use common::{Fixture, TestMaster};
use serde_json::{json, Value};
use std::collections::BTreeSet;

both_backends! {
    reserved_addresses_are_the_hosts_until_recorded => reserved_addresses_are_the_hosts_until_recorded;
    a_full_pool_takes_reserved_addresses_back => a_full_pool_takes_reserved_addresses_back;
    reservations_go_with_the_host_and_the_network => reservations_go_with_the_host_and_the_network;
}

/// Network `default:n` with `subnet` and its first address as the gateway.
async fn network(m: &TestMaster, subnet: &str) {
    m.create(
        "/api/v1/networks/default:n/",
        json!({"subnet": subnet, "gateway": "10.9.0.1"}),
    )
    .await;
}

/// `count` addresses of `default:n` for `host`.
async fn reserve_n(m: &TestMaster, host: &str, count: u32) -> (u16, Value) {
    reserve(
        m,
        json!({"network": "default:n", "host": host, "count": count}),
    )
    .await
}

async fn reserve(m: &TestMaster, body: Value) -> (u16, Value) {
    m.post("/api/v1/agent/reserve", body).await
}

fn addresses(v: &Value) -> Vec<String> {
    v["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| a.as_str().expect("an address").to_string())
        .collect()
}

/// Whether `ip` lies in Contiv's range list (`10.1.1.2-10.1.1.9, 10.1.1.12`).
fn in_ranges(list: &str, ip: &str) -> bool {
    let n = |a: &str| u32::from(a.trim().parse::<std::net::Ipv4Addr>().expect("an address"));
    let ip = n(ip);
    list.split(',')
        .filter(|r| !r.trim().is_empty())
        .any(|r| match r.split_once('-') {
            Some((a, b)) => (n(a)..=n(b)).contains(&ip),
            None => n(r) == ip,
        })
}

/// Addresses taken: allocated to endpoints plus kept in hosts' reserves.
async fn taken_count(m: &TestMaster, network: &str) -> u64 {
    let (allocated, reserved) = counts(m, network).await;
    allocated + reserved
}

/// Inspect's (allocatedAddressesCount, reservedAddressesCount).
async fn counts(m: &TestMaster, network: &str) -> (u64, u64) {
    let (_, ins) = m.get(&format!("/api/v1/inspect/networks/{network}/")).await;
    let count = |field: &str| ins["Oper"][field].as_u64().expect(field);
    (
        count("allocatedAddressesCount"),
        count("reservedAddressesCount"),
    )
}

async fn record(m: &TestMaster, id: &str, ip: &str, host: &str, reserved: bool) -> (u16, Value) {
    let path = if reserved {
        format!("/api/v1/agent/endpoints/{id}?reserved=true")
    } else {
        format!("/api/v1/agent/endpoints/{id}")
    };
    let ep =
        json!({"network": "default:n", "ipAddress": [ip], "homingHost": host, "containerID": id});
    m.request(reqwest::Method::PUT, &path, Some(ep)).await
}

async fn reserved_addresses_are_the_hosts_until_recorded(f: &Fixture) {
    let m = f.master().await;
    network(&m, "10.9.0.0/24").await;
    let (s, v) = reserve_n(&m, "host1", 8).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["prefixLen"].as_u64(), v["gateway"].as_str()),
        (Some(24), Some("10.9.0.1"))
    );
    assert_eq!(v["group"], "", "{v}");
    let mine = addresses(&v);
    let distinct: BTreeSet<&String> = mine.iter().collect();
    assert_eq!(distinct.len(), 8, "eight distinct addresses: {v}");
    let subnet: ipnet::Ipv4Net = "10.9.0.0/24".parse().unwrap();
    for a in &mine {
        let ip: std::net::Ipv4Addr = a.parse().unwrap();
        assert!(
            subnet.contains(&ip) && a != "10.9.0.1" && a != "10.9.0.0" && a != "10.9.0.255",
            "{a}"
        );
    }
    assert_eq!(
        counts(&m, "default:n").await,
        (0, 8),
        "reserved, not allocated"
    );
    let (_, ins) = m.get("/api/v1/inspect/networks/default:n/").await;
    let available = ins["Oper"]["availableIPAddresses"]
        .as_str()
        .unwrap_or_default();
    for a in &mine {
        assert!(
            !in_ranges(available, a),
            "{a} is not available: {available}"
        );
    }
    // Nobody else gets them.
    let mut taken: BTreeSet<String> = mine.iter().cloned().collect();
    for i in 0..40 {
        let (s, v) = m
            .post(
                "/api/v1/agent/allocate",
                json!({"network": "default:n", "owner": format!("o{i}")}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let got = v["ipAddress"].as_str().unwrap().to_string();
        assert!(!mine.contains(&got), "{got} was reserved for host1");
        taken.insert(got);
    }
    let (s, v) = reserve_n(&m, "host2", 8).await;
    assert_eq!(s, 200, "{v}");
    let theirs = addresses(&v);
    assert!(
        theirs.iter().all(|a| !mine.contains(a)),
        "{mine:?} / {theirs:?}"
    );
    taken.extend(theirs.iter().cloned());
    let free = (2..255)
        .map(|n| format!("10.9.0.{n}"))
        .find(|a| !taken.contains(a))
        .expect("a free address");

    // The record turns host1's reservation into the endpoint's allocation.
    let (s, v) = record(&m, "c1-eth0", &mine[0], "host1", true).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = record(&m, "c2-eth0", &mine[0], "host1", false).await;
    assert_eq!(
        (s, v["field"].as_str()),
        (409, Some("ipAddress")),
        "now c1's: {v}"
    );
    assert!(v["reason"].as_str().unwrap().contains("c1-eth0"), "{v}");
    let (s, _) = record(&m, "c1-eth0", &mine[0], "host1", true).await;
    assert_eq!(s, 200, "recording again is fine");
    // Another host's reservation, an address nobody reserved, a bad flag.
    let (s, v) = record(&m, "c3-eth0", &theirs[0], "host1", true).await;
    assert_eq!((s, v["field"].as_str()), (409, Some("ipAddress")), "{v}");
    let (s, v) = record(&m, "c3-eth0", &free, "host1", true).await;
    assert_eq!((s, v["field"].as_str()), (409, Some("ipAddress")), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("no longer reserved"),
        "{v}"
    );
    let (s, v) = m
        .request(
            reqwest::Method::PUT,
            "/api/v1/agent/endpoints/c3-eth0?reserved=maybe",
            Some(json!({"network": "default:n", "ipAddress": [&mine[1]], "homingHost": "host1"})),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (400, Some("reserved")), "{v}");
    assert_eq!(
        m.get("/api/v1/endpoints/c3-eth0/").await.0,
        404,
        "nothing recorded"
    );

    // A release with an owner frees only what that owner (or the host's reserve) holds.
    let release = |ip: &str, owner: &str| json!({"network": "default:n", "ipAddress": ip, "owner": owner, "host": "host1"});
    let before = taken_count(&m, "default:n").await;
    assert_eq!(
        m.post("/api/v1/agent/release", release(&mine[0], "other"))
            .await
            .0,
        409,
        "c1 holds it, not 'other': refused"
    );
    assert_eq!(
        taken_count(&m, "default:n").await,
        before,
        "c1's address stays"
    );
    assert_eq!(
        m.post("/api/v1/agent/release", release(&mine[1], "c9-eth0"))
            .await
            .0,
        200
    );
    assert_eq!(
        taken_count(&m, "default:n").await,
        before - 1,
        "host1's reserve gave it back"
    );
    taken.remove(&mine[1]);
    assert_eq!(
        m.post("/api/v1/agent/release", release(&theirs[1], "c9-eth0"))
            .await
            .0,
        409,
        "host2's reserve is not host1's: refused"
    );
    assert_eq!(
        taken_count(&m, "default:n").await,
        before - 1,
        "host2's reserve is not host1's"
    );

    // A group's ipPool is what its reservations come from.
    m.create(
        "/api/v1/endpointGroups/default:g/",
        json!({"networkName": "n", "ipPool": "10.9.0.200-10.9.0.219"}),
    )
    .await;
    let (s, v) = reserve(
        &m,
        json!({"network": "default:n", "group": "default:g", "host": "host1", "count": 32}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["group"], "default:g");
    let pooled = addresses(&v);
    let free_in_pool = (200..220)
        .filter(|n| !taken.contains(&format!("10.9.0.{n}")))
        .count();
    assert_eq!(
        pooled.len(),
        free_in_pool / 4,
        "a quarter of the group pool's free addresses: {v}"
    );
    for a in &pooled {
        let last: u8 = a.rsplit('.').next().unwrap().parse().unwrap();
        assert!((200..=219).contains(&last), "{a} outside the group's pool");
    }

    // Bad requests change nothing.
    let count = taken_count(&m, "default:n").await;
    let (s, v) = reserve(&m, json!({"network": "default:n", "count": 4})).await;
    assert_eq!((s, v["field"].as_str()), (400, Some("host")), "{v}");
    let (s, v) = reserve(&m, json!({"network": "default:n", "host": "", "count": 4})).await;
    assert_eq!((s, v["field"].as_str()), (400, Some("host")), "{v}");
    let (s, v) = reserve(
        &m,
        json!({"network": "default:n", "host": "h", "count": -1}),
    )
    .await;
    assert_eq!((s, v["field"].as_str()), (400, Some("count")), "{v}");
    let (s, v) = reserve(
        &m,
        json!({"network": "default:ghost", "host": "h", "count": 4}),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(taken_count(&m, "default:n").await, count);
}

async fn a_full_pool_takes_reserved_addresses_back(f: &Fixture) {
    let m = f.master().await;
    // 13 usable addresses (.2-.14; .1 is the gateway).
    network(&m, "10.9.0.0/28").await;
    let (s, v) = reserve_n(&m, "host1", 32).await;
    assert_eq!(s, 200, "{v}");
    let mine = addresses(&v);
    assert_eq!(mine.len(), 3, "a quarter of 13 free: {v}");
    let mut others = BTreeSet::new();
    for i in 0..13 {
        let (s, v) = m
            .post(
                "/api/v1/agent/allocate",
                json!({"network": "default:n", "owner": format!("o{i}")}),
            )
            .await;
        assert_eq!(s, 200, "allocation {i}: {v}");
        assert!(
            others.insert(v["ipAddress"].as_str().unwrap().to_string()),
            "{v}"
        );
    }
    assert!(
        mine.iter().all(|a| others.contains(a)),
        "the last three allocations took host1's reserve back: {mine:?} in {others:?}"
    );
    let (s, v) = m
        .post(
            "/api/v1/agent/allocate",
            json!({"network": "default:n", "owner": "o13"}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("no free address"),
        "{v}"
    );
    let (s, v) = record(&m, "late-eth0", &mine[0], "host1", true).await;
    assert_eq!(
        (s, v["field"].as_str()),
        (409, Some("ipAddress")),
        "taken back: {v}"
    );
    let (s, v) = reserve_n(&m, "host1", 4).await;
    assert_eq!(
        (s, addresses(&v).len()),
        (200, 0),
        "nothing left to reserve: {v}"
    );
}

async fn reservations_go_with_the_host_and_the_network(f: &Fixture) {
    let m = f.master().await;
    network(&m, "10.9.0.0/24").await;
    for host in ["host1", "host2"] {
        let (s, v) = reserve(
            &m,
            json!({"network": "default:n", "host": host, "count": 10}),
        )
        .await;
        assert_eq!((s, addresses(&v).len()), (200, 10), "{v}");
    }
    let (s, v) = m.get("/api/v1/agent/hosts/host1/reservations").await;
    assert_eq!(s, 200, "{v}");
    let listed = v["reservations"].as_array().map_or(0, Vec::len);
    assert_eq!(listed, 10, "{v}");
    assert!(
        v["reservations"][0]["network"] == "default:n"
            && v["reservations"][0]["ipAddress"].is_string(),
        "{v}"
    );
    let (s, v) = m.delete("/api/v1/agent/hosts/host1/reservations").await;
    assert_eq!((s, v["released"].as_u64()), (200, Some(10)), "{v}");
    let (_, v) = m.get("/api/v1/agent/hosts/host1/reservations").await;
    assert_eq!(v["reservations"], serde_json::json!([]), "{v}");
    assert_eq!(taken_count(&m, "default:n").await, 10, "host2's stay");
    let (s, v) = m.delete("/api/v1/agent/hosts/host1/reservations").await;
    assert_eq!((s, v["released"].as_u64()), (200, Some(0)), "again: {v}");

    // An endpoint keeps the network (and the reserves) in place; reserves alone do not.
    let (s, v) = m
        .post(
            "/api/v1/agent/allocate",
            json!({"network": "default:n", "owner": "e1-eth0"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let ip = v["ipAddress"].as_str().unwrap().to_string();
    let (s, v) = m.delete("/api/v1/networks/default:n/").await;
    assert_eq!(s, 409, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("1 allocated"), "{v}");
    assert_eq!(taken_count(&m, "default:n").await, 11);
    let (s, _) = m
        .post(
            "/api/v1/agent/release",
            json!({"network": "default:n", "ipAddress": ip, "owner": "e1-eth0"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = m.delete("/api/v1/networks/default:n/").await;
    assert_eq!(s, 200, "{v}");
    network(&m, "10.9.0.0/24").await;
    assert_eq!(
        taken_count(&m, "default:n").await,
        0,
        "the old reserves went with the network"
    );
}

//! Two masters on one etcd, eight clients allocating at once: no address, VNI or group id is
//! handed out twice, none is lost, and inspect counts match what the clients received.

mod common;

use common::{Backend, Fixture, TestMaster};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const CLIENTS: usize = 8;
const ADDRESSES: usize = 5_000;
const VNIS: usize = 500;

/// Each client alternates between the masters and allocates its share; returns what it got.
async fn allocate_addresses(masters: Arc<Vec<TestMaster>>) -> Vec<String> {
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let masters = masters.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..ADDRESSES / CLIENTS {
                let m = &masters[(c + i) % masters.len()];
                let (s, v) = m
                    .post(
                        "/api/v1/agent/allocate",
                        json!({"network": "default:big", "owner": format!("c{c}-{i}")}),
                    )
                    .await;
                assert_eq!(s, 200, "allocation {c}/{i}: {v}");
                got.push(v["ipAddress"].as_str().expect("an address").to_string());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

/// Each client creates networks in its own tenant, each taking a VNI from the global range.
async fn create_networks(masters: Arc<Vec<TestMaster>>) -> Vec<i64> {
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let masters = masters.clone();
        tasks.push(tokio::spawn(async move {
            let m = &masters[c % masters.len()];
            m.create(&format!("/api/v1/tenants/t{c}/"), json!({})).await;
            let mut tags = Vec::new();
            for i in 0..(VNIS / CLIENTS + usize::from(c < VNIS % CLIENTS)) {
                let m = &masters[(c + i) % masters.len()];
                let v = m
                    .create(
                        &format!("/api/v1/networks/t{c}:n{i}/"),
                        // Tenants' subnets apart: native L3 refuses overlaps between tenants.
                        json!({"subnet": format!("10.{}.{}.0/24", 100 + c, i)}),
                    )
                    .await;
                tags.push(v["pktTag"].as_i64().expect("a VNI"));
            }
            tags
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

/// Polls (bounded) until every master's inspect shows `want` for `pointer`.
async fn eventually_equal(
    masters: &[TestMaster],
    path: &str,
    pointer: &str,
    want: serde_json::Value,
) {
    for m in masters {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (_, v) = m.get(path).await;
            if v.pointer(pointer) == Some(&want) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} {path}{pointer}: {:?}, want {want}",
                m.base,
                v.pointer(pointer)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn run(backend: Backend, masters_count: usize) {
    let fixture = Fixture::new(backend);
    let mut masters = Vec::new();
    for _ in 0..masters_count {
        masters.push(fixture.master().await);
    }
    let masters = Arc::new(masters);
    masters[0]
        .create(
            "/api/v1/networks/default:big/",
            json!({"subnet": "10.0.0.0/19"}),
        )
        .await;
    // Both masters know the network before clients hit the second one.
    eventually_equal(
        &masters,
        "/api/v1/inspect/networks/default:big/",
        "/Config/subnet",
        json!("10.0.0.0/19"),
    )
    .await;

    let (ips, vnis) = tokio::join!(
        allocate_addresses(masters.clone()),
        create_networks(masters.clone())
    );

    let unique: HashSet<&String> = ips.iter().collect();
    assert_eq!(ips.len(), ADDRESSES);
    assert_eq!(unique.len(), ADDRESSES, "an address was handed out twice");
    let unique: HashSet<i64> = vnis.iter().copied().collect();
    assert_eq!(vnis.len(), VNIS);
    assert_eq!(unique.len(), VNIS, "a VNI was handed out twice");
    assert!(
        vnis.iter().all(|v| (1..=10_000).contains(v)),
        "VNIs come from the global range"
    );

    eventually_equal(
        &masters,
        "/api/v1/inspect/networks/default:big/",
        "/Oper/allocatedAddressesCount",
        json!(ADDRESSES),
    )
    .await;
    let mut sorted: Vec<u32> = vnis.iter().map(|v| *v as u32).collect();
    sorted.sort_unstable();
    let in_use = if sorted == (1..=VNIS as u32).collect::<Vec<_>>() {
        format!("1-{VNIS}")
    } else {
        String::new()
    };
    if !in_use.is_empty() {
        eventually_equal(
            &masters,
            "/api/v1/inspect/globals/global/",
            "/Oper/vxlansInUse",
            json!(in_use),
        )
        .await;
    }
    // Every master lists every network (500 created plus the big one).
    for m in masters.iter() {
        let (_, list) = m.get("/api/v1/networks/").await;
        assert_eq!(list.as_array().map(Vec::len), Some(VNIS + 1), "{}", m.base);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_masters_on_one_etcd_never_hand_out_twice() {
    run(Backend::Etcd, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_embedded_master_under_eight_clients() {
    run(Backend::Embedded, 1).await;
}

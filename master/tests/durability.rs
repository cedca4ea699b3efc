//! `kill -9` of the real `netmaster` binary during a stream of writes, on both stores: after a
//! restart on the same data directory (or etcd), every write the API acknowledged is there as it
//! was acknowledged, nothing beyond the writes in flight at the kill appeared, tags stay unique,
//! and new allocations never hand out an address that was already given.

mod common;

use common::process::NetmasterProcess;
use common::Fixture;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

both_backends! {
    acknowledged_writes_survive_kill_9 => acknowledged_writes_survive_kill_9;
}

/// Concurrent writers, each with its own tenant and one request in flight at a time.
const WRITERS: usize = 4;
/// Iterations a writer does at most (5 writes each); the kill comes long before.
const MAX_ITERATIONS: usize = 200;
/// The master is killed once this many writes were acknowledged (plus a varying extra)...
const KILL_AFTER_ACKS: usize = 120;
/// ... or after this long, whichever comes first.
const KILL_DEADLINE: Duration = Duration::from_secs(10);
/// Allocations made after the restart.
const AFTER_RESTART: usize = 40;
const POOL: &str = "default:pool";

/// A write the API answered with 2xx.
#[derive(Debug, Clone)]
enum Acked {
    /// `collection/key` and the object the API returned.
    Object(String, Value),
    /// An address and the owner it was allocated to.
    Address(String, String),
}

/// A client that acts as the master's first admin (sessions are in the store, so the token
/// outlives a restart).
fn client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "X-Auth-Token",
        reqwest::header::HeaderValue::from_str(token).expect("a token is a header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// POST; `Err` for a transport failure (no answer), `Ok((status, body))` otherwise.
async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
) -> Result<(u16, Value), String> {
    let resp = client
        .post(format!("{base}{path}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let resp = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// What one writer did: its acknowledged writes, and whether the kill cut it off.
struct WriterLog {
    acked: Vec<Acked>,
    cut_off: bool,
}

/// Writes policy, rule, network, group and an address allocation, again and again, until a
/// request gets no answer (the master is gone). Any answer other than 2xx is a failure.
async fn writer(
    base: String,
    token: String,
    w: usize,
    acks: Arc<AtomicUsize>,
) -> Result<WriterLog, String> {
    let client = client(&token);
    let mut acked = Vec::new();
    let t = format!("t{w}");
    for j in 0..MAX_ITERATIONS {
        let writes = [
            (format!("/api/v1/policys/{t}:p{j}/"), json!({})),
            (
                format!("/api/v1/rules/{t}:p{j}:1/"),
                json!({"direction": "in", "protocol": "tcp", "port": 80 + j, "action": "allow"}),
            ),
            (
                format!("/api/v1/networks/{t}:n{j}/"),
                json!({"subnet": format!("10.{}.{j}.0/24", w + 1)}),
            ),
            (
                format!("/api/v1/endpointGroups/{t}:g{j}/"),
                json!({"networkName": format!("n{j}"), "policies": [format!("p{j}")]}),
            ),
            (
                "/api/v1/agent/allocate".to_string(),
                json!({"network": POOL, "owner": format!("w{w}-{j}")}),
            ),
        ];
        for (path, body) in writes {
            let owner = body["owner"].as_str().map(str::to_string);
            let (status, v) = match post(&client, &base, &path, body).await {
                Ok(answer) => answer,
                Err(_) => {
                    return Ok(WriterLog {
                        acked,
                        cut_off: true,
                    })
                }
            };
            if !(200..300).contains(&status) {
                return Err(format!("POST {path} answered {status}: {v}"));
            }
            acked.push(match owner {
                Some(owner) => Acked::Address(
                    v["ipAddress"]
                        .as_str()
                        .ok_or_else(|| format!("allocation without an address: {v}"))?
                        .to_string(),
                    owner,
                ),
                None => Acked::Object(
                    path.trim_start_matches("/api/v1/")
                        .trim_end_matches('/')
                        .to_string(),
                    v,
                ),
            });
            acks.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(WriterLog {
        acked,
        cut_off: false,
    })
}

/// Objects of the writers' tenants in one collection, by key.
async fn listed(client: &reqwest::Client, base: &str, coll: &str) -> BTreeMap<String, Value> {
    let (s, list) = get(client, base, &format!("/api/v1/{coll}/")).await;
    assert_eq!(s, 200, "list {coll}: {list}");
    list.as_array()
        .expect("a list")
        .iter()
        .filter(|o| o["tenantName"].as_str().is_some_and(|t| t.starts_with('t')))
        .map(|o| (o["key"].as_str().expect("a key").to_string(), o.clone()))
        .collect()
}

async fn allocate(client: &reqwest::Client, base: &str, body: Value) -> String {
    let (s, v) = post(client, base, "/api/v1/agent/allocate", body.clone())
        .await
        .expect("the restarted master answers");
    assert_eq!(s, 200, "allocate {body}: {v}");
    v["ipAddress"].as_str().expect("an address").to_string()
}

async fn acknowledged_writes_survive_kill_9(f: &Fixture) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let log = dir.path().join("netmaster.log");
    let etcd = f.etcd.as_ref().map(|e| e.endpoints());
    let mut master = NetmasterProcess::start(&data, etcd.as_deref(), &log).await;
    let token = master.admin_token().await;
    let http = client(&token);

    // Setup, all acknowledged before the stream starts.
    for w in 0..WRITERS {
        let (s, v) = post(
            &http,
            &master.base,
            &format!("/api/v1/tenants/t{w}/"),
            json!({}),
        )
        .await
        .expect("setup");
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = post(
        &http,
        &master.base,
        &format!("/api/v1/networks/{POOL}/"),
        json!({"subnet": "10.200.0.0/16", "gateway": "10.200.0.1"}),
    )
    .await
    .expect("setup");
    assert_eq!(s, 200, "{v}");

    // The stream, and the kill in the middle of it.
    let acks = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(master.base.clone(), token.clone(), w, acks.clone())))
        .collect();
    let extra = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize % 80);
    let started = Instant::now();
    while acks.load(Ordering::Relaxed) < KILL_AFTER_ACKS + extra
        && started.elapsed() < KILL_DEADLINE
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    master.kill();
    let mut acked = Vec::new();
    for (w, handle) in writers.into_iter().enumerate() {
        let log = handle
            .await
            .expect("writer task")
            .unwrap_or_else(|e| panic!("writer {w}: {e}\nmaster log:\n{}", master.log_tail()));
        assert!(
            log.cut_off,
            "writer {w} finished before the kill: not mid-stream"
        );
        acked.extend(log.acked);
    }
    assert!(
        acked.len() >= 20,
        "only {} writes acknowledged before the kill: the machine is too slow for this test",
        acked.len()
    );

    eprintln!(
        "{} writes acknowledged before the kill after {:?}",
        acked.len(),
        started.elapsed()
    );

    // Restart on the same data directory / etcd.
    let master = NetmasterProcess::start(&data, etcd.as_deref(), &log).await;
    let base = master.base.as_str();

    // Every acknowledged object is there, exactly as acknowledged.
    let mut acked_objects = 0;
    let mut acked_ips: BTreeMap<String, String> = BTreeMap::new();
    for a in &acked {
        match a {
            Acked::Object(path, want) => {
                acked_objects += 1;
                let (s, got) = get(&http, base, &format!("/api/v1/{path}/")).await;
                assert_eq!(
                    s, 200,
                    "acknowledged {path} is missing after the restart: {got}"
                );
                assert_eq!(&got, want, "{path} differs from what was acknowledged");
            }
            Acked::Address(ip, owner) => {
                let before = acked_ips.insert(ip.clone(), owner.clone());
                assert!(
                    before.is_none(),
                    "{ip} acknowledged twice: {before:?} and {owner}"
                );
            }
        }
    }

    // Nothing beyond the writes in flight at the kill (at most one per writer) appeared.
    let mut present = 0;
    for coll in ["policys", "rules", "networks", "endpointGroups"] {
        present += listed(&http, base, coll).await.len();
    }
    let (s, ins) = get(&http, base, &format!("/api/v1/inspect/networks/{POOL}/")).await;
    assert_eq!(s, 200, "{ins}");
    let allocated = ins["Oper"]["allocatedAddressesCount"]
        .as_u64()
        .expect("an address count") as usize;
    assert!(present >= acked_objects && allocated >= acked_ips.len());
    assert!(
        present + allocated <= acked_objects + acked_ips.len() + WRITERS,
        "{present} objects and {allocated} addresses after the restart, but only {} objects and \
         {} addresses were acknowledged with {WRITERS} writes in flight",
        acked_objects,
        acked_ips.len()
    );

    // Tags stay unique: one VNI per network, one group id per group.
    let networks = listed(&http, base, "networks").await;
    let vnis: HashSet<i64> = networks
        .values()
        .map(|n| n["pktTag"].as_i64().expect("a VNI"))
        .collect();
    assert_eq!(
        vnis.len(),
        networks.len(),
        "a VNI is used twice: {networks:?}"
    );
    let (_, state) = get(&http, base, "/api/v1/state").await;
    let group_ids = state["groupIds"].as_object().expect("group ids");
    let distinct: HashSet<u64> = group_ids.values().filter_map(Value::as_u64).collect();
    assert_eq!(
        distinct.len(),
        group_ids.len(),
        "a group id is used twice: {group_ids:?}"
    );

    // New allocations, concurrent, never repeat an address already handed out; an acknowledged
    // address asked for as preferred is not given again.
    let mut tasks = Vec::new();
    for c in 0..4 {
        let base = base.to_string();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let http = client(&token);
            let mut got = Vec::new();
            for i in 0..AFTER_RESTART / 4 {
                let owner = format!("after-{c}-{i}");
                let body = json!({"network": POOL, "owner": owner});
                got.push((allocate(&http, &base, body).await, owner));
            }
            got
        }));
    }
    let mut after: BTreeMap<String, String> = BTreeMap::new();
    for t in tasks {
        for (ip, owner) in t.await.expect("allocating task") {
            assert!(
                !acked_ips.contains_key(&ip),
                "{ip} was handed out again after the restart"
            );
            let before = after.insert(ip.clone(), owner);
            assert!(before.is_none(), "{ip} handed out twice after the restart");
        }
    }
    for (ip, _) in acked_ips.iter().take(5) {
        let body = json!({"network": POOL, "owner": format!("wants-{ip}"), "preferred": ip});
        let got = allocate(&http, base, body).await;
        assert_ne!(&got, ip, "a taken preferred address was handed out again");
        assert!(!acked_ips.contains_key(&got) && !after.contains_key(&got));
        after.insert(got, format!("wants-{ip}"));
    }
    let (_, ins) = get(&http, base, &format!("/api/v1/inspect/networks/{POOL}/")).await;
    assert_eq!(
        ins["Oper"]["allocatedAddressesCount"].as_u64(),
        Some((allocated + after.len()) as u64),
        "inspect counts every allocation: {ins}"
    );

    // The store itself holds each acknowledged address with its owner.
    drop(master);
    let store = fabric_store::open(etcd.as_deref(), &data)
        .await
        .expect("the store opens after the master is gone");
    let snapshot = store
        .list(&format!("/contiv/alloc/ip/{POOL}/"))
        .await
        .expect("list addresses");
    let owners: BTreeMap<String, String> = snapshot
        .kvs
        .iter()
        .filter_map(|kv| {
            let ip = kv.key.rsplit('/').next()?.to_string();
            Some((ip, String::from_utf8_lossy(&kv.value).into_owned()))
        })
        .collect();
    for (ip, owner) in acked_ips.iter().chain(&after) {
        assert_eq!(owners.get(ip), Some(owner), "the store's owner of {ip}");
    }
    assert!(
        !owners.contains_key("10.200.0.1"),
        "the gateway is never allocated"
    );
}

//! Leader election on a real etcd between two clients (two masters' stores): one leads; a
//! leader that resigns, is dropped or stops renewing its lease is replaced (at once, or within
//! the lease); a transaction fenced by a leadership that moved does not commit.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use fabric_store::{Elector, EtcdStore, Fence, Leadership, Lost, Store, Txn};
use tokio::task::JoinHandle;

const NAME: &str = "/contiv/leader";
/// The lease of these tests: etcd's minimum with its default timings.
const TTL: Duration = Duration::from_secs(2);

/// Two clients of one etcd (the etcd process lives as long as the returned backend).
async fn two_clients() -> (support::Backend, EtcdStore, EtcdStore) {
    let backend = support::etcd().await;
    let endpoints = backend.etcd.as_ref().expect("an etcd").endpoints();
    let a = EtcdStore::connect(&endpoints).await.expect("client a");
    let b = EtcdStore::connect(&endpoints).await.expect("client b");
    (backend, a, b)
}

fn candidate(store: &EtcdStore, value: &str) -> JoinHandle<Leadership> {
    let (store, value) = (store.clone(), value.as_bytes().to_vec());
    tokio::spawn(async move { store.campaign(NAME, value, TTL).await.expect("campaign") })
}

/// The candidate's leadership, failing the test if it does not come within `within`.
async fn elected(candidate: JoinHandle<Leadership>, within: Duration) -> Leadership {
    tokio::time::timeout(within, candidate)
        .await
        .unwrap_or_else(|_| panic!("not elected within {within:?}"))
        .expect("campaign task")
}

async fn leader_value(store: &EtcdStore) -> Option<String> {
    let kv = store.leader(NAME).await.expect("leader read")?;
    Some(String::from_utf8_lossy(&kv.value).into_owned())
}

async fn fenced_put(store: &EtcdStore, fence: &Fence, value: &str) -> bool {
    let txn = Txn::new().fenced(fence).put("/contiv/data", value);
    store.txn(txn).await.expect("txn").succeeded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_campaigners_only_one_leads() {
    let (_etcd, a, b) = two_clients().await;
    let first = elected(candidate(&a, "a"), support::WAIT).await;
    let second = candidate(&b, "b");
    // Longer than a lease: the first keeps renewing, the second keeps waiting.
    tokio::time::sleep(TTL * 2).await;
    assert!(!second.is_finished(), "two leaders at once");
    assert!(!first.is_lost());
    assert_eq!(leader_value(&b).await.as_deref(), Some("a"));
    assert!(fenced_put(&b, first.fence(), "a was here").await);
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_leader_elects_the_other_at_once() {
    let (_etcd, a, b) = two_clients().await;
    let first = elected(candidate(&a, "a"), support::WAIT).await;
    let second = candidate(&b, "b");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dropped = Instant::now();
    drop(first);
    // Dropping revokes the lease: no need to wait for it to run out.
    let second = elected(second, TTL).await;
    println!("elected {:?} after the drop", dropped.elapsed());
    assert_eq!(leader_value(&a).await.as_deref(), Some("b"));
    assert!(!second.is_lost());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_stops_renewing_is_replaced_within_its_lease() {
    let (_etcd, a, b) = two_clients().await;
    let first = elected(candidate(&a, "a"), support::WAIT).await;
    let old = first.fence().clone();
    let second = candidate(&b, "b");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = Instant::now();
    // As a killed process: no renewal, no revocation.
    first.abandon();
    let second = elected(second, TTL + Duration::from_secs(3)).await;
    let took = stopped.elapsed();
    println!("elected {took:?} after the leader stopped renewing");
    assert!(
        took >= TTL / 2,
        "elected after {took:?}: the old lease cannot have run out yet"
    );
    // The old leader's fenced writes fail now; the new leader's commit.
    assert!(!fenced_put(&a, &old, "stale").await);
    assert!(fenced_put(&b, second.fence(), "fresh").await);
    let kv = b.get("/contiv/data").await.expect("read").expect("written");
    assert_eq!(kv.value, b"fresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_txn_fails_after_the_leadership_moved() {
    let (_etcd, a, b) = two_clients().await;
    let first = elected(candidate(&a, "a"), support::WAIT).await;
    let old = first.fence().clone();
    assert!(fenced_put(&a, &old, "1").await);
    let second = candidate(&b, "b");
    first.resign().await.expect("resign");
    let second = elected(second, support::WAIT).await;
    // A write the old leader planned before it lost, arriving after: refused.
    let late = Txn::new()
        .fenced(&old)
        .put("/contiv/data", "late")
        .or_put("/contiv/refused", "x");
    let result = a.txn(late).await.expect("txn");
    assert!(!result.succeeded);
    assert_eq!(a.get("/contiv/data").await.unwrap().unwrap().value, b"1");
    assert!(fenced_put(&b, second.fence(), "2").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_lease_elsewhere_is_noticed_as_lost() {
    let (_etcd, a, b) = two_clients().await;
    let first = elected(candidate(&a, "a"), support::WAIT).await;
    let raw = b.client();
    let key = raw
        .clone()
        .get(first.key(), None)
        .await
        .expect("read the leader key");
    let lease = key.kvs().first().expect("leader key").lease();
    raw.clone().lease_revoke(lease).await.expect("revoke");
    let lost = tokio::time::timeout(TTL * 2, first.lost())
        .await
        .expect("lost noticed within two leases");
    assert!(
        matches!(lost, Lost::KeyChanged(_) | Lost::LeaseExpired { .. }),
        "{lost:?}"
    );
    assert!(first.is_lost());
    assert_eq!(leader_value(&b).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_campaign_leaves_no_candidate_behind() {
    let (_etcd, a, b) = two_clients().await;
    let first = elected(candidate(&a, "a"), support::WAIT).await;
    let waiting = b.campaign(NAME, b"b".to_vec(), TTL);
    assert!(tokio::time::timeout(Duration::from_millis(500), waiting)
        .await
        .is_err());
    // The cancelled candidate's lease is revoked in the background: only the leader's key stays.
    let until = Instant::now() + support::WAIT;
    loop {
        let keys = a.list("/contiv/leader/").await.expect("list").kvs;
        if keys.len() == 1 {
            assert_eq!(keys[0].key, first.key());
            break;
        }
        assert!(Instant::now() < until, "candidate keys left: {keys:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.resign().await.expect("resign");
    assert_eq!(leader_value(&b).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_leads_at_once_and_takes_over_a_dead_leaders_key() {
    let backend = support::embedded().await;
    let store = backend.store.clone();
    let first = tokio::time::timeout(support::WAIT, store.campaign(NAME, b"a".to_vec(), TTL))
        .await
        .expect("the embedded store's one master leads at once")
        .expect("campaign");
    let old = first.fence().clone();
    // As a master killed while leading: its key stays in the file.
    first.abandon();
    let second = tokio::time::timeout(support::WAIT, store.campaign(NAME, b"b".to_vec(), TTL))
        .await
        .expect("leads once the old leadership is gone")
        .expect("campaign");
    let keys = store.list("/contiv/leader/").await.expect("list").kvs;
    assert_eq!(keys.len(), 1, "the dead leader's key is deleted: {keys:?}");
    let stale = Txn::new().fenced(&old).put("/contiv/data", "stale");
    assert!(!store.txn(stale).await.expect("txn").succeeded);
    let fresh = Txn::new()
        .fenced(second.fence())
        .put("/contiv/data", "fresh");
    assert!(store.txn(fresh).await.expect("txn").succeeded);
}

//! etcd-only behaviour: compaction mapped to `Compacted`, a three-member cluster reached
//! through several endpoints surviving the loss of a member.

#[path = "support/mod.rs"]
mod support;

use fabric_store::testing::EtcdCluster;
use fabric_store::{EtcdStore, Store, StoreError, Txn};
use support::{next_event, next_item};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_compacted_revision_reports_compacted() {
    let backend = support::etcd().await;
    let endpoints = backend.etcd.as_ref().unwrap().endpoints();
    let store = EtcdStore::connect(&endpoints).await.unwrap();
    let mut revisions = Vec::new();
    for i in 0..10u8 {
        revisions.push(store.put("/c/k", vec![i]).await.unwrap());
    }
    let compact_at = revisions[5];
    store
        .client()
        .compact(i64::try_from(compact_at).unwrap(), None)
        .await
        .unwrap();

    let mut watch = store.watch("/c/", revisions[1]).await.unwrap();
    match next_item(&mut watch).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!((requested, oldest), (revisions[1], compact_at));
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    // Resync point: list() then watch from its revision works.
    let snapshot = store.list("/c/").await.unwrap();
    let mut watch = store.watch("/c/", snapshot.revision).await.unwrap();
    let r = store.put("/c/k", vec![99]).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_cluster_keeps_serving_when_one_member_dies() {
    let mut cluster = EtcdCluster::start_async(3)
        .await
        .unwrap_or_else(|e| panic!("etcd tests need a runnable etcd: {e}"));
    let endpoints = cluster.endpoints();
    assert_eq!(endpoints.len(), 3);
    let store = EtcdStore::connect(&endpoints).await.unwrap();
    let before = store.put("/cl/before", b"1".to_vec()).await.unwrap();

    cluster.kill_member(0).unwrap();
    // If the dead member led, writes in flight time out (ambiguous, not retried by the store)
    // until the others elect a leader: wait for that, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while let Err(error) = store.put("/probe", b"1".to_vec()).await {
        assert!(
            std::time::Instant::now() < deadline,
            "no writable quorum 20 s after losing 1 of 3 members: {error}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The client still routes some requests to the dead member; the store retries those that
    // never reached it, so every write and read succeeds with 2 of 3 members up.
    let created = 20;
    for i in 0..created {
        let key = format!("/cl/{i}");
        let result = store.txn(Txn::new().when_absent(&key).put(&key, "v")).await;
        assert!(result.unwrap().succeeded, "{key}");
        assert!(store.get(&key).await.unwrap().is_some(), "{key}");
    }
    assert_eq!(store.count("/cl/").await.unwrap(), created + 1);
    // History is served by the surviving members too.
    let mut watch = store.watch("/cl/", before).await.unwrap();
    for _ in 0..created {
        assert!(next_event(&mut watch).await.revision > before);
    }
}

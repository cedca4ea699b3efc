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
    let mut cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(3))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("etcd tests need a runnable etcd: {e}"));
    let endpoints = cluster.endpoints();
    assert_eq!(endpoints.len(), 3);
    let store = EtcdStore::connect(&endpoints).await.unwrap();
    let before = store.put("/cl/before", b"1".to_vec()).await.unwrap();

    cluster.kill_member(0).unwrap();
    // Requests routed to the dead member fail; the client must get through on the others.
    let mut created = 0;
    let mut failures = 0;
    for i in 0..20 {
        let key = format!("/cl/{i}");
        match store.txn(Txn::new().when_absent(&key).put(&key, "v")).await {
            Ok(result) => {
                assert!(result.succeeded);
                created += 1;
            }
            Err(error) => {
                failures += 1;
                assert!(
                    failures <= 10,
                    "too many failures after member loss: {error}"
                );
            }
        }
    }
    assert!(
        created >= 10,
        "only {created} writes succeeded with 2 of 3 members up"
    );
    assert_eq!(store.count("/cl/").await.unwrap(), created + 1);
    // History is served by the surviving members too.
    let mut watch = store.watch("/cl/", before).await.unwrap();
    for _ in 0..created {
        assert!(next_event(&mut watch).await.revision > before);
    }
}

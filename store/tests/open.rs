//! `fabric_store::open` picks the backend: etcd when endpoints are given, else the embedded
//! file in the data directory.

#[path = "support/mod.rs"]
mod support;

use fabric_store::{open, EMBEDDED_FILE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_endpoints_opens_embedded_file_in_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested/data");
    for endpoints in [None, Some(&[][..])] {
        let store = open(endpoints, &data_dir).await.unwrap();
        store
            .put("/contiv/tenants/blue", b"{}".to_vec())
            .await
            .unwrap();
        // Dropping the handle releases the file, so the second round can open it again.
        drop(store);
    }
    assert!(data_dir.join(EMBEDDED_FILE).is_file());
    let store = open(None, &data_dir).await.unwrap();
    let kv = store
        .get("/contiv/tenants/blue")
        .await
        .unwrap()
        .expect("persisted");
    assert_eq!(
        kv.mod_revision, 2,
        "the second round updated the first round's key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_endpoints_uses_etcd() {
    let backend = support::etcd().await;
    let endpoints = backend.etcd.as_ref().unwrap().endpoints();
    let dir = tempfile::tempdir().unwrap();
    let store = open(Some(&endpoints), dir.path()).await.unwrap();
    store
        .put("/contiv/tenants/blue", b"{}".to_vec())
        .await
        .unwrap();
    // The write is visible through the fixture's own connection, and no file was created.
    assert!(backend
        .store
        .get("/contiv/tenants/blue")
        .await
        .unwrap()
        .is_some());
    assert!(!dir.path().join(fabric_store::EMBEDDED_FILE).exists());
}

//! Unit tests of the embedded backend's own mechanics: event-log compaction and the
//! `Compacted` error, persistence across reopen, lag recovery of slow watchers, close.

use std::path::Path;

use futures::StreamExt;
use redb::{ReadableDatabase, ReadableTableMetadata};

use super::tables::LOG;
use super::{EmbeddedOptions, EmbeddedStore};
use crate::error::StoreError;
use crate::store::Store;
use crate::types::{Event, Txn, WatchStream};

const WAIT: std::time::Duration = std::time::Duration::from_secs(15);

async fn open(path: &Path, retention: u64, watch_buffer: usize) -> EmbeddedStore {
    let options = EmbeddedOptions {
        event_log_retention: retention,
        watch_buffer,
        ..EmbeddedOptions::default()
    };
    EmbeddedStore::open_with(path, options).await.unwrap()
}

async fn next(stream: &mut WatchStream) -> Result<Event, StoreError> {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("watch item in time")
        .expect("stream not ended")
}

fn log_len(store: &EmbeddedStore) -> u64 {
    let read = store.db.begin_read().unwrap();
    read.open_table(LOG).unwrap().len().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_keeps_only_retained_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.redb"), 10, 64).await;
    for i in 0..30u8 {
        store.put(&format!("/k/{i}"), vec![i]).await.unwrap();
    }
    assert_eq!(store.revision().await.unwrap(), 30);
    assert_eq!(log_len(&store), 10);
    // Compaction trims history only, never data.
    assert_eq!(store.count("/k/").await.unwrap(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_before_retained_history_gets_compacted_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.redb"), 10, 64).await;
    for i in 0..30u8 {
        store.put("/k", vec![i]).await.unwrap();
    }
    for after in [0, 5, 19] {
        let mut watch = store.watch("/", after).await.unwrap();
        match next(&mut watch).await {
            Err(StoreError::Compacted { requested, oldest }) => {
                assert_eq!((requested, oldest), (after, 21));
            }
            other => panic!("watch after {after}: expected Compacted, got {other:?}"),
        }
        assert!(watch.next().await.is_none(), "stream ends after Compacted");
    }
    let mut watch = store.watch("/", 20).await.unwrap();
    for revision in 21..=30 {
        assert_eq!(next(&mut watch).await.unwrap().revision, revision);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_compaction_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = open(&path, 5, 64).await;
    for i in 0..12u8 {
        store.put(&format!("/k/{i}"), vec![i]).await.unwrap();
    }
    store.delete("/k/0").await.unwrap();
    store.close().await.unwrap();
    drop(store);

    let store = open(&path, 5, 64).await;
    assert_eq!(store.revision().await.unwrap(), 13);
    assert_eq!(store.count("/k/").await.unwrap(), 11);
    let kv = store.get("/k/3").await.unwrap().unwrap();
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (vec![3], 4, 4)
    );
    let mut watch = store.watch("/", 2).await.unwrap();
    assert!(matches!(
        next(&mut watch).await,
        Err(StoreError::Compacted { oldest: 9, .. })
    ));
    // Revisions continue after the persisted one.
    assert_eq!(store.put("/k/new", vec![]).await.unwrap(), 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_replays_missed_revisions_from_log() {
    const WRITES: usize = 700;
    let dir = tempfile::tempdir().unwrap();
    // A live buffer of 2 batches: a watcher that is not read falls behind almost at once.
    let store = std::sync::Arc::new(open(&dir.path().join("s.redb"), 100_000, 2).await);
    let mut watch = store.watch("/lag/", 0).await.unwrap();
    let mut writers = Vec::new();
    for task in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in (task..WRITES).step_by(4) {
                store.put(&format!("/lag/{i}"), vec![]).await.unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut revisions = Vec::new();
    for _ in 0..WRITES {
        revisions.push(next(&mut watch).await.unwrap().revision);
    }
    let expected: Vec<u64> = (1..=WRITES as u64).collect();
    assert_eq!(revisions, expected, "every revision exactly once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_txns_get_distinct_consecutive_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(&dir.path().join("s.redb"), 1000, 64).await);
    let mut tasks = Vec::new();
    for task in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..20 {
                let key = format!("/c/{task}/{i}");
                let result = store.txn(Txn::new().when_absent(&key).put(&key, "v")).await;
                revisions.push(result.unwrap().revision);
            }
            revisions
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=320).collect();
    assert_eq!(all, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_open_of_same_file_is_refused_and_close_ends_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = open(&path, 10, 64).await;
    let err = EmbeddedStore::open(&path)
        .await
        .err()
        .expect("file is locked");
    assert!(matches!(err, StoreError::Redb(_)), "{err}");

    let mut watch = store.watch("/", 0).await.unwrap();
    store.close().await.unwrap();
    assert!(matches!(
        store.put("/k", vec![]).await,
        Err(StoreError::Closed)
    ));
    drop(store);
    assert!(matches!(next(&mut watch).await, Err(StoreError::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_opened_during_writes_get_every_later_revision_once() {
    const WRITES: u64 = 400;
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(&dir.path().join("s.redb"), 100_000, 16).await);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..WRITES {
                store.put(&format!("/h/{}", i % 7), vec![]).await.unwrap();
            }
        })
    };
    // Open watchers at moving points of the stream: at the current revision (pure hand-over)
    // and a few revisions back (replay, then hand-over).
    let mut watchers = Vec::new();
    while watchers.len() < 30 {
        let now = store.revision().await.unwrap();
        if now >= WRITES {
            break;
        }
        let after = if watchers.len() % 2 == 0 {
            now
        } else {
            now.saturating_sub(5)
        };
        watchers.push((after, store.watch("/h/", after).await.unwrap()));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    writer.await.unwrap();
    assert!(
        watchers.len() >= 5,
        "only {} watchers opened during writes",
        watchers.len()
    );
    for (after, mut watch) in watchers {
        for expected in after + 1..=WRITES {
            assert_eq!(
                next(&mut watch).await.unwrap().revision,
                expected,
                "after {after}"
            );
        }
    }
}

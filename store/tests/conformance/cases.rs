//! The conformance cases; each takes any `Store` and asserts the behaviour both backends share.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fabric_store::{Compare, Event, EventKind, Fence, Lost, Op, Store, StoreError, Txn};

use crate::support::{assert_quiet, next_event, take_events, WAIT};

fn put_event(revision: u64, key: &str, value: &str) -> Event {
    Event {
        revision,
        kind: EventKind::Put,
        key: key.to_string(),
        value: Some(value.as_bytes().to_vec()),
    }
}

fn delete_event(revision: u64, key: &str) -> Event {
    Event {
        revision,
        kind: EventKind::Delete,
        key: key.to_string(),
        value: None,
    }
}

pub async fn get_put_delete(store: &Arc<dyn Store>) {
    assert_eq!(store.get("/t/a").await.unwrap(), None);
    let r1 = store.put("/t/a", b"one".to_vec()).await.unwrap();
    let kv = store.get("/t/a").await.unwrap().expect("key after put");
    assert_eq!(
        (kv.key.as_str(), kv.value.as_slice()),
        ("/t/a", &b"one"[..])
    );
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r1));

    let r2 = store.put("/t/a", b"two".to_vec()).await.unwrap();
    assert!(r2 > r1);
    let kv = store.get("/t/a").await.unwrap().expect("key after update");
    assert_eq!(kv.value, b"two");
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r2));

    let r3 = store
        .delete("/t/a")
        .await
        .unwrap()
        .expect("delete of present key");
    assert!(r3 > r2);
    assert_eq!(store.get("/t/a").await.unwrap(), None);
    assert_eq!(store.delete("/t/a").await.unwrap(), None);
    assert_eq!(store.revision().await.unwrap(), r3);

    // A re-created key starts a new life: new create revision.
    let r4 = store.put("/t/a", b"three".to_vec()).await.unwrap();
    assert_eq!(
        store.get("/t/a").await.unwrap().unwrap().create_revision,
        r4
    );
}

pub async fn list_and_count_by_prefix(store: &Arc<dyn Store>) {
    for key in ["/t/b", "/t/a", "/t/c/d", "/tx", "/u"] {
        store.put(key, key.as_bytes().to_vec()).await.unwrap();
    }
    let snapshot = store.list("/t/").await.unwrap();
    let keys: Vec<&str> = snapshot.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/t/a", "/t/b", "/t/c/d"]);
    assert!(snapshot.kvs.iter().all(|kv| kv.value == kv.key.as_bytes()));
    assert_eq!(snapshot.revision, store.revision().await.unwrap());
    assert_eq!(store.count("/t/").await.unwrap(), 3);
    assert_eq!(store.count("/t").await.unwrap(), 4);
    assert_eq!(store.count("").await.unwrap(), 5);
    assert_eq!(store.list("").await.unwrap().kvs.len(), 5);

    let empty = store.list("/none/").await.unwrap();
    assert!(empty.kvs.is_empty());
    assert_eq!(empty.revision, snapshot.revision);
    assert_eq!(store.count("/none/").await.unwrap(), 0);
}

pub async fn txn_absent(store: &Arc<dyn Store>) {
    let create = || {
        Txn::new()
            .when_absent("/ip/10.0.0.1")
            .put("/ip/10.0.0.1", "ep1")
            .or_put("/conflicts/10.0.0.1", "lost")
    };
    let first = store.txn(create()).await.unwrap();
    assert!(first.succeeded);
    assert_eq!(store.get("/conflicts/10.0.0.1").await.unwrap(), None);

    let second = store.txn(create()).await.unwrap();
    assert!(!second.succeeded);
    assert!(
        second.revision > first.revision,
        "failure ops wrote, revision moves"
    );
    assert_eq!(
        store.get("/ip/10.0.0.1").await.unwrap().unwrap().value,
        b"ep1"
    );
    assert_eq!(
        store
            .get("/conflicts/10.0.0.1")
            .await
            .unwrap()
            .unwrap()
            .value,
        b"lost"
    );
}

pub async fn txn_present(store: &Arc<dyn Store>) {
    let update = || Txn::new().when_present("/k").put("/k", "updated");
    let on_missing = store.txn(update()).await.unwrap();
    assert!(!on_missing.succeeded);
    assert_eq!(store.get("/k").await.unwrap(), None);

    store.put("/k", b"v".to_vec()).await.unwrap();
    assert!(store.txn(update()).await.unwrap().succeeded);
    assert_eq!(store.get("/k").await.unwrap().unwrap().value, b"updated");
}

pub async fn txn_mod_revision(store: &Arc<dyn Store>) {
    // An absent key has mod revision 0 (etcd's rule).
    let created = store
        .txn(Txn::new().when_mod_revision("/k", 0).put("/k", "v1"))
        .await
        .unwrap();
    assert!(created.succeeded);
    let seen = store.get("/k").await.unwrap().unwrap().mod_revision;
    assert_eq!(seen, created.revision);

    let ok = store
        .txn(Txn::new().when_mod_revision("/k", seen).put("/k", "v2"))
        .await
        .unwrap();
    assert!(ok.succeeded);
    let stale = store
        .txn(Txn::new().when_mod_revision("/k", seen).put("/k", "v3"))
        .await
        .unwrap();
    assert!(!stale.succeeded);
    assert_eq!(
        stale.revision, ok.revision,
        "a txn that wrote nothing keeps the revision"
    );
    assert_eq!(store.get("/k").await.unwrap().unwrap().value, b"v2");
}

pub async fn txn_value(store: &Arc<dyn Store>) {
    let swap = |from: &str, to: &str| Txn::new().when_value("/k", from).put("/k", to.to_string());
    assert!(
        !store.txn(swap("", "x")).await.unwrap().succeeded,
        "absent key has no value"
    );
    store.put("/k", b"a".to_vec()).await.unwrap();
    assert!(!store.txn(swap("b", "c")).await.unwrap().succeeded);
    assert!(store.txn(swap("a", "b")).await.unwrap().succeeded);
    assert_eq!(store.get("/k").await.unwrap().unwrap().value, b"b");
}

pub async fn txn_multi_op_is_atomic(store: &Arc<dyn Store>) {
    store.put("/m/old", b"x".to_vec()).await.unwrap();
    let before = store.revision().await.unwrap();
    let txn = Txn::new()
        .when_absent("/m/a")
        .when_present("/m/old")
        .put("/m/a", "1")
        .put("/m/b", "2")
        .delete("/m/old");
    let result = store.txn(txn).await.unwrap();
    assert!(result.succeeded);
    assert_eq!(result.revision, before + 1, "one txn, one revision");
    let snapshot = store.list("/m/").await.unwrap();
    let keys: Vec<(&str, u64)> = snapshot
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.mod_revision))
        .collect();
    assert_eq!(keys, [("/m/a", result.revision), ("/m/b", result.revision)]);

    // One false compare among several: none of the success ops runs.
    let txn = Txn::new()
        .when_absent("/m/c")
        .when_absent("/m/a")
        .put("/m/c", "3")
        .delete("/m/b");
    let failed = store.txn(txn).await.unwrap();
    assert!(!failed.succeeded);
    assert_eq!(failed.revision, result.revision);
    assert_eq!(store.count("/m/").await.unwrap(), 2);

    let mut watch = store.watch("/m/", before).await.unwrap();
    let mut events = take_events(&mut watch, 3).await;
    events.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        events,
        [
            put_event(result.revision, "/m/a", "1"),
            put_event(result.revision, "/m/b", "2"),
            delete_event(result.revision, "/m/old"),
        ]
    );
    assert_quiet(&mut watch).await;
}

pub async fn txn_rejects_invalid(store: &Arc<dyn Store>) {
    let before = store.revision().await.unwrap();
    let duplicate = Txn {
        success: vec![
            Op::Put {
                key: "/d".into(),
                value: b"1".to_vec(),
            },
            Op::Delete { key: "/d".into() },
        ],
        ..Txn::default()
    };
    let err = store.txn(duplicate).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidTxn(m) if m.contains("/d")),
        "{err}"
    );
    let empty_key = Txn::new()
        .when(Compare::Present(String::new()))
        .put("/e", "1");
    assert!(matches!(
        store.txn(empty_key).await,
        Err(StoreError::InvalidTxn(_))
    ));
    assert_eq!(store.revision().await.unwrap(), before);
    assert_eq!(store.count("/").await.unwrap(), 0);
}

pub async fn revision_is_monotonic(store: &Arc<dyn Store>) {
    let mut last = store.revision().await.unwrap();
    for i in 0..20 {
        let revision = store.put(&format!("/r/{}", i % 3), vec![i]).await.unwrap();
        assert_eq!(
            revision,
            last + 1,
            "each write txn bumps the revision by one"
        );
        assert_eq!(store.revision().await.unwrap(), revision);
        last = revision;
    }
    // Deleting an absent key changes nothing and keeps the revision.
    assert_eq!(store.delete("/r/absent").await.unwrap(), None);
    assert_eq!(store.revision().await.unwrap(), last);
}

/// Writes /w/a, /w/b, updates /w/a, deletes /w/b; returns the four revisions.
async fn write_history(store: &dyn Store) -> [u64; 4] {
    [
        store.put("/w/a", b"1".to_vec()).await.unwrap(),
        store.put("/w/b", b"2".to_vec()).await.unwrap(),
        store.put("/w/a", b"3".to_vec()).await.unwrap(),
        store.delete("/w/b").await.unwrap().expect("present"),
    ]
}

pub async fn watch_from_zero(store: &Arc<dyn Store>) {
    let [r1, r2, r3, r4] = write_history(store.as_ref()).await;
    let mut watch = store.watch("/w/", 0).await.unwrap();
    assert_eq!(
        take_events(&mut watch, 4).await,
        [
            put_event(r1, "/w/a", "1"),
            put_event(r2, "/w/b", "2"),
            put_event(r3, "/w/a", "3"),
            delete_event(r4, "/w/b"),
        ]
    );
    assert_quiet(&mut watch).await;
}

pub async fn watch_from_middle(store: &Arc<dyn Store>) {
    let [_, r2, r3, r4] = write_history(store.as_ref()).await;
    let mut watch = store.watch("/w/", r2).await.unwrap();
    assert_eq!(
        take_events(&mut watch, 2).await,
        [put_event(r3, "/w/a", "3"), delete_event(r4, "/w/b")]
    );
    assert_quiet(&mut watch).await;
}

pub async fn watch_live(store: &Arc<dyn Store>) {
    write_history(store.as_ref()).await;
    let now = store.revision().await.unwrap();
    let mut watch = store.watch("/w/", now).await.unwrap();
    assert_quiet(&mut watch).await;
    let r = store.put("/w/live", b"x".to_vec()).await.unwrap();
    assert_eq!(next_event(&mut watch).await, put_event(r, "/w/live", "x"));
    let r = store.delete("/w/live").await.unwrap().unwrap();
    assert_eq!(next_event(&mut watch).await, delete_event(r, "/w/live"));
}

pub async fn watch_resume_after_reconnect(store: &Arc<dyn Store>) {
    const TOTAL: usize = 300;
    let start = store.revision().await.unwrap();
    let mut watch = store.watch("/res/", start).await.unwrap();
    let writer = {
        // The writer runs while the watcher drops and re-opens its stream.
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..TOTAL {
                store.put(&format!("/res/{i:04}"), vec![1]).await.unwrap();
            }
        })
    };
    let mut seen = take_events(&mut watch, 100).await;
    drop(watch);
    let last = seen.last().unwrap().revision;
    let mut resumed = store.watch("/res/", last).await.unwrap();
    seen.extend(take_events(&mut resumed, TOTAL - 100).await);
    writer.await.unwrap();
    assert_quiet(&mut resumed).await;
    let keys: Vec<String> = seen.iter().map(|e| e.key.clone()).collect();
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("/res/{i:04}")).collect();
    assert_eq!(keys, expected, "no gap, no duplicate, in order");
    assert!(seen.windows(2).all(|w| w[0].revision < w[1].revision));
}

pub async fn watch_filters_prefix(store: &Arc<dyn Store>) {
    let mut watch = store.watch("/a/", 0).await.unwrap();
    let r1 = store.put("/a/1", b"1".to_vec()).await.unwrap();
    store.put("/b/1", b"1".to_vec()).await.unwrap();
    store.put("/a", b"no slash".to_vec()).await.unwrap();
    store.put("/ab", b"other".to_vec()).await.unwrap();
    let r2 = store.put("/a/2", b"2".to_vec()).await.unwrap();
    assert_eq!(
        take_events(&mut watch, 2).await,
        [put_event(r1, "/a/1", "1"), put_event(r2, "/a/2", "2")]
    );
    assert_quiet(&mut watch).await;
}

pub async fn concurrent_create_if_absent(store: &Arc<dyn Store>) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 500;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every task walks the same candidate sequence, like competing allocators.
            let mut mine = Vec::new();
            let mut candidate = 0usize;
            while mine.len() < PER_TASK {
                let key = format!("/alloc/{candidate:05}");
                let txn = Txn::new().when_absent(&key).put(&key, task.to_string());
                if store.txn(txn).await.unwrap().succeeded {
                    mine.push(key);
                }
                candidate += 1;
            }
            mine
        }));
    }
    let mut owner = BTreeMap::new();
    for (task, handle) in tasks.into_iter().enumerate() {
        for key in handle.await.unwrap() {
            assert!(
                owner.insert(key.clone(), task).is_none(),
                "{key} created twice"
            );
        }
    }
    assert_eq!(owner.len(), TASKS * PER_TASK);
    let snapshot = store.list("/alloc/").await.unwrap();
    assert_eq!(snapshot.kvs.len(), TASKS * PER_TASK);
    let mut values = HashSet::new();
    for kv in &snapshot.kvs {
        assert_eq!(
            kv.value,
            owner[&kv.key].to_string().into_bytes(),
            "{}",
            kv.key
        );
        assert_eq!(
            kv.create_revision, kv.mod_revision,
            "{} written once",
            kv.key
        );
        values.insert(kv.create_revision);
    }
    assert_eq!(
        values.len(),
        TASKS * PER_TASK,
        "every create has its own revision"
    );
}

/// Leadership on either backend: the leader key names the leader, a fenced transaction
/// commits only while its leadership lasts, a second campaign waits for the first to resign.
pub async fn election_fence(store: &Arc<dyn Store>) {
    const NAME: &str = "/e/leader";
    const TTL: Duration = Duration::from_secs(2);
    let first = tokio::time::timeout(WAIT, store.campaign(NAME, b"one".to_vec(), TTL))
        .await
        .expect("an uncontested campaign wins at once")
        .unwrap();
    assert!(first.key().starts_with("/e/leader/"), "{}", first.key());
    let kv = store.get(first.key()).await.unwrap().expect("leader key");
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (first.revision(), first.revision())
    );
    let leader = store.leader(NAME).await.unwrap().expect("a leader");
    assert_eq!(
        (leader.key.as_str(), leader.value.as_slice()),
        (first.key(), &b"one"[..])
    );
    let fenced = |fence: &Fence, value: &str| Txn::new().fenced(fence).put("/e/data", value);
    assert!(
        store
            .txn(fenced(first.fence(), "1"))
            .await
            .unwrap()
            .succeeded
    );
    assert!(!first.is_lost());

    // A second candidate waits while the first leads.
    let second = {
        let store = store.clone();
        tokio::spawn(async move { store.campaign(NAME, b"two".to_vec(), TTL).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "two leaders at once");

    let old = first.fence().clone();
    first.resign().await.unwrap();
    let second = tokio::time::timeout(WAIT, second)
        .await
        .expect("the candidate leads once the leader resigned")
        .unwrap()
        .unwrap();
    assert_ne!(second.fence(), &old);
    assert!(!store.txn(fenced(&old, "stale")).await.unwrap().succeeded);
    assert!(
        store
            .txn(fenced(second.fence(), "2"))
            .await
            .unwrap()
            .succeeded
    );
    assert_eq!(store.get("/e/data").await.unwrap().unwrap().value, b"2");
    let leader = store.leader(NAME).await.unwrap().expect("a leader");
    assert_eq!(leader.value, b"two");

    // Deleting the leader key ends the leadership.
    store.delete(second.key()).await.unwrap();
    let lost = tokio::time::timeout(WAIT, second.lost())
        .await
        .expect("lost in time");
    assert!(matches!(lost, Lost::KeyChanged(_)), "{lost:?}");
    assert!(second.is_lost());
    drop(second);
    assert_eq!(store.leader(NAME).await.unwrap(), None);
}

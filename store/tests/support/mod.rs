//! Shared by the integration tests: a store of either backend with what keeps it alive, and
//! bounded helpers for reading watch streams.

#![allow(dead_code)] // each test target uses a different part

use std::sync::Arc;
use std::time::Duration;

use fabric_store::testing::EtcdProcess;
use fabric_store::{EmbeddedStore, EtcdStore, Event, Store, StoreError, WatchStream};
use futures::StreamExt;

/// Upper bound for any single wait on a watch stream.
pub const WAIT: Duration = Duration::from_secs(15);

/// A store under test plus the temp dir or etcd process behind it (dropped after the store).
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub embedded_dir: Option<tempfile::TempDir>,
    pub etcd: Option<EtcdProcess>,
}

pub async fn embedded() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join("store.redb"))
        .await
        .expect("open embedded store");
    Backend {
        store: Arc::new(store),
        embedded_dir: Some(dir),
        etcd: None,
    }
}

pub async fn etcd() -> Backend {
    let etcd = EtcdProcess::start_async()
        .await
        .unwrap_or_else(|e| panic!("etcd tests need a runnable etcd: {e}"));
    let store = EtcdStore::connect(&etcd.endpoints())
        .await
        .expect("connect to etcd");
    Backend {
        store: Arc::new(store),
        embedded_dir: None,
        etcd: Some(etcd),
    }
}

/// etcd serving only over mutual TLS, connected with the fixture's CA and client certificate.
pub async fn etcd_tls() -> Backend {
    let etcd = EtcdProcess::start_tls_async()
        .await
        .unwrap_or_else(|e| panic!("etcd tests need a runnable etcd: {e}"));
    let tls = etcd
        .tls_files()
        .expect("a TLS fixture has certificates")
        .client();
    let store = EtcdStore::connect_with(&etcd.endpoints(), &tls)
        .await
        .expect("connect to etcd over TLS");
    Backend {
        store: Arc::new(store),
        embedded_dir: None,
        etcd: Some(etcd),
    }
}

/// The next item of a watch, failing the test if none arrives within [`WAIT`].
pub async fn next_item(stream: &mut WatchStream) -> Result<Event, StoreError> {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap_or_else(|_| panic!("no watch event within {WAIT:?}"))
        .expect("watch stream ended")
}

pub async fn next_event(stream: &mut WatchStream) -> Event {
    next_item(stream).await.expect("watch error")
}

pub async fn take_events(stream: &mut WatchStream, n: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(next_event(stream).await);
    }
    events
}

/// Asserts that nothing arrives for a short while (used after the expected events).
pub async fn assert_quiet(stream: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

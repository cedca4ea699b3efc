//! The embedded backend: one redb file, a group-commit writer thread, and revisioned watches
//! fed from a bounded event log plus a live broadcast.

mod codec;
mod election;
mod tables;
mod watch;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::StoreError;
use crate::store::Store;
use crate::types::{KeyValue, Revision, Snapshot, Txn, TxnResult, WatchStream};
use tables::{meta_value, read_kv, scan_prefix, KV, META, META_REVISION};
use writer::{Request, Writer, WriterCounters};

/// Tuning of the embedded store.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Revisions kept in the event log; a watch from before them gets `Compacted`.
    pub event_log_retention: u64,
    /// Most transactions committed together under one fsync.
    pub max_batch: usize,
    /// Committed batches buffered for live watchers before a slow one replays from the log.
    pub watch_buffer: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            event_log_retention: 100_000,
            max_batch: 512,
            watch_buffer: 1024,
        }
    }
}

/// The writer's queue; `None` once closed. Shared (weakly) with leaderships, which write their
/// resignation through it without keeping the writer alive.
type Requests = Arc<Mutex<Option<mpsc::Sender<Request>>>>;

pub struct EmbeddedStore {
    db: Arc<Database>,
    requests: Requests,
    writer: Mutex<Option<JoinHandle<()>>>,
    revision: Arc<AtomicU64>,
    events: broadcast::Sender<Arc<writer::CommittedBatch>>,
    counters: Arc<WriterCounters>,
    /// One leadership at a time (see `election`): the store has one master process, so the
    /// election happens inside it.
    leadership: Arc<tokio::sync::Semaphore>,
}

/// Counters of the writer, e.g. for metrics; `txns / commits` is the mean batch size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Durable commits, one fsync each.
    pub commits: u64,
    /// Transactions processed (including those that wrote nothing).
    pub txns: u64,
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path` with default options.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, EmbeddedOptions::default()).await
    }

    pub async fn open_with(path: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        if options.event_log_retention == 0 || options.max_batch == 0 || options.watch_buffer == 0 {
            return Err(StoreError::Backend(format!(
                "embedded store options must all be positive: {options:?}"
            )));
        }
        let path = path.to_path_buf();
        let (db, revision, compacted) = tokio::task::spawn_blocking(move || {
            let db = Database::create(&path)?;
            let (revision, compacted) = writer::load_counters(&db)?;
            tracing::info!(path = %path.display(), revision, compacted, "embedded store opened");
            Ok::<_, StoreError>((Arc::new(db), revision, compacted))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("open task failed: {e}")))??;

        let (requests, queue) = mpsc::channel(options.max_batch * 4);
        let (events, _) = broadcast::channel(options.watch_buffer);
        let published = Arc::new(AtomicU64::new(revision));
        let counters = Arc::new(WriterCounters::default());
        let writer = Writer {
            db: db.clone(),
            revision,
            compacted,
            retention: options.event_log_retention,
            max_batch: options.max_batch,
            published_revision: published.clone(),
            counters: counters.clone(),
            events: events.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(queue))?;
        Ok(Self {
            db,
            requests: Arc::new(Mutex::new(Some(requests))),
            writer: Mutex::new(Some(handle)),
            revision: published,
            events,
            counters,
            leadership: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    /// Stops the writer after the transactions already queued; later writes get `Closed`.
    /// The file lock is released once this store and its watch streams are dropped (dropping
    /// the store also waits for the writer, so `close` is only needed to stop writes early).
    pub async fn close(&self) -> Result<(), StoreError> {
        let sender = self.requests.lock().map_err(poisoned)?.take();
        drop(sender);
        let handle = self.writer.lock().map_err(poisoned)?.take();
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| StoreError::Backend(format!("close task failed: {e}")))?
                .map_err(|_| StoreError::Backend("store writer thread panicked".into()))?;
        }
        Ok(())
    }

    pub fn stats(&self) -> EmbeddedStats {
        EmbeddedStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            txns: self.counters.txns.load(Ordering::Relaxed),
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || job(&db))
            .await
            .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> StoreError {
    StoreError::Backend("store handle lock poisoned".into())
}

/// Queues `txn` for the writer and waits for its durable result.
async fn submit(
    requests: &Mutex<Option<mpsc::Sender<Request>>>,
    txn: Txn,
) -> Result<TxnResult, StoreError> {
    txn.validate()?;
    let sender = requests
        .lock()
        .map_err(poisoned)?
        .clone()
        .ok_or(StoreError::Closed)?;
    let (reply, result) = oneshot::channel();
    sender
        .send(Request { txn, reply })
        .await
        .map_err(|_| StoreError::Closed)?;
    result.await.map_err(|_| StoreError::Closed)?
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_string();
        self.read(move |db| read_kv(&db.begin_read()?.open_table(KV)?, &key))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Snapshot, StoreError> {
        let prefix = prefix.to_string();
        self.read(move |db| {
            let read = db.begin_read()?;
            let revision = meta_value(&read.open_table(META)?, META_REVISION)?;
            let mut kvs = Vec::new();
            scan_prefix(&read.open_table(KV)?, &prefix, |key, bytes| {
                kvs.push(codec::decode_kv(key, bytes)?);
                Ok(())
            })?;
            Ok(Snapshot { kvs, revision })
        })
        .await
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let prefix = prefix.to_string();
        self.read(move |db| {
            let mut count = 0;
            scan_prefix(&db.begin_read()?.open_table(KV)?, &prefix, |_, _| {
                count += 1;
                Ok(())
            })?;
            Ok(count)
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        submit(&self.requests, txn).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        Ok(watch::spawn(
            self.db.clone(),
            self.events.subscribe(),
            prefix.to_string(),
            after,
        ))
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        Ok(self.revision.load(Ordering::Acquire))
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit; waiting for it
        // (one batch at most) means the file is free for a reopen once the last watch stream
        // and read of this handle are gone.
        if let Ok(mut requests) = self.requests.lock() {
            requests.take();
        }
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests;

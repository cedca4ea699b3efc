//! Watch streams of the embedded store: replay the event log after the requested revision, then
//! follow the live broadcast of committed batches.
//!
//! Hand-over without gap or duplicate: the task subscribes to the broadcast BEFORE it reads the
//! log, so every batch committed after the log snapshot is also in the subscription; live events
//! at or below the last replayed revision are skipped. A watcher that falls behind the broadcast
//! buffer (lag) re-subscribes and replays the missed revisions from the log, so it never misses
//! an event; only if those were compacted meanwhile does it get `Compacted`.

use std::sync::Arc;

use redb::{Database, ReadableDatabase};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::tables::{meta_value, read_log, LOG, META, META_COMPACTED, META_REVISION};
use super::writer::CommittedBatch;
use crate::error::StoreError;
use crate::types::{Event, Revision, WatchStream};

/// Revisions read from the log per read transaction while replaying.
const REPLAY_CHUNK: u64 = 1024;
/// Events buffered between the watch task and its consumer.
const STREAM_BUFFER: usize = 256;

pub fn spawn(
    db: Arc<Database>,
    live: broadcast::Receiver<Arc<CommittedBatch>>,
    prefix: String,
    after: Revision,
) -> WatchStream {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let sink = tx.clone();
        tokio::select! {
            result = pump(db, live, &prefix, after, &tx) => {
                if let Err(error) = result {
                    let _ = sink.send(Err(error)).await;
                }
            }
            // The consumer dropped the stream: stop, and release the database.
            _ = sink.closed() => {}
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// Outcome of `pump` other than an error: the consumer went away.
struct ConsumerGone;

async fn pump(
    db: Arc<Database>,
    mut live: broadcast::Receiver<Arc<CommittedBatch>>,
    prefix: &str,
    after: Revision,
    tx: &mpsc::Sender<Result<Event, StoreError>>,
) -> Result<(), StoreError> {
    let mut last = after;
    loop {
        // Replay: `live` is already subscribed, so nothing committed from here on escapes it.
        loop {
            let chunk = read_chunk(db.clone(), last).await?;
            if emit(tx, prefix, chunk.events.into_iter()).await.is_err() {
                return Ok(());
            }
            last = chunk.upto;
            if chunk.upto >= chunk.current {
                break;
            }
        }
        // Live.
        loop {
            match live.recv().await {
                Ok(batch) => {
                    let fresh = batch.events.iter().filter(|e| e.revision > last).cloned();
                    if emit(tx, prefix, fresh).await.is_err() {
                        return Ok(());
                    }
                    last = last.max(batch.last);
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(prefix, last, skipped, "watcher lagged, replaying from log");
                    live = live.resubscribe();
                    break;
                }
                Err(RecvError::Closed) => return Err(StoreError::Closed),
            }
        }
    }
}

async fn emit(
    tx: &mpsc::Sender<Result<Event, StoreError>>,
    prefix: &str,
    events: impl Iterator<Item = Event>,
) -> Result<(), ConsumerGone> {
    for event in events.filter(|e| e.key.starts_with(prefix)) {
        tx.send(Ok(event)).await.map_err(|_| ConsumerGone)?;
    }
    Ok(())
}

struct Chunk {
    events: Vec<Event>,
    /// Highest revision this chunk covers (events of it included).
    upto: Revision,
    /// Store revision when the chunk was read.
    current: Revision,
}

async fn read_chunk(db: Arc<Database>, after: Revision) -> Result<Chunk, StoreError> {
    tokio::task::spawn_blocking(move || {
        let read = db.begin_read()?;
        let meta = read.open_table(META)?;
        let current = meta_value(&meta, META_REVISION)?;
        let compacted = meta_value(&meta, META_COMPACTED)?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: compacted + 1,
            });
        }
        let upto = current.min(after.saturating_add(REPLAY_CHUNK)).max(after);
        let events = read_log(&read.open_table(LOG)?, after, upto)?;
        Ok(Chunk {
            events,
            upto,
            current,
        })
    })
    .await
    .map_err(|e| StoreError::Backend(format!("watch log reader task failed: {e}")))?
}

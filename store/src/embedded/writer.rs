//! The single writer thread with group commit: it drains every transaction waiting in its queue,
//! evaluates them one after another inside ONE redb write transaction (each atomic, each with
//! its own revision), commits with full durability (one fsync for the whole batch), then
//! publishes the events to watchers and acks every caller. Callers are acked only after the
//! fsync, so nothing acknowledged can be lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableTable, Table};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::codec::{encode_events, encode_kv};
use super::tables::{meta_value, read_kv, KV, LOG, META, META_COMPACTED, META_REVISION};
use crate::error::StoreError;
use crate::types::{Event, EventKind, Op, Revision, Txn, TxnResult};

/// A transaction waiting for the writer, with the channel its result goes back on.
pub struct Request {
    pub txn: Txn,
    pub reply: oneshot::Sender<Result<TxnResult, StoreError>>,
}

/// Events of one committed batch, covering revisions `after+1 ..= last` without a gap (a
/// revision is in exactly one batch), as published to watchers.
#[derive(Debug)]
pub struct CommittedBatch {
    pub last: Revision,
    pub events: Vec<Event>,
}

/// State the writer thread owns.
pub struct Writer {
    pub db: Arc<Database>,
    pub revision: Revision,
    pub compacted: Revision,
    pub retention: u64,
    pub max_batch: usize,
    pub published_revision: Arc<AtomicU64>,
    pub events: broadcast::Sender<Arc<CommittedBatch>>,
}

struct BatchOutcome {
    results: Vec<TxnResult>,
    events: Vec<Event>,
    revision: Revision,
    compacted: Revision,
}

impl Writer {
    /// Runs until every request sender is gone.
    pub fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        while let Some(first) = requests.blocking_recv() {
            batch.push(first);
            while batch.len() < self.max_batch {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit_and_ack(&mut batch);
        }
        tracing::debug!(revision = self.revision, "embedded store writer stopped");
    }

    fn commit_and_ack(&mut self, batch: &mut Vec<Request>) {
        let size = batch.len();
        match self.commit_batch(batch.iter().map(|r| &r.txn)) {
            Ok(outcome) => {
                let changed = outcome.revision != self.revision;
                self.revision = outcome.revision;
                self.compacted = outcome.compacted;
                self.published_revision
                    .store(outcome.revision, Ordering::Release);
                if changed {
                    // No receiver is fine: nobody watches.
                    let _ = self.events.send(Arc::new(CommittedBatch {
                        last: outcome.revision,
                        events: outcome.events,
                    }));
                }
                for (request, result) in batch.drain(..).zip(outcome.results) {
                    let _ = request.reply.send(Ok(result));
                }
            }
            Err(error) => {
                tracing::error!(%error, batch = size, "embedded store batch commit failed");
                let message = format!("batch commit failed: {error}");
                for request in batch.drain(..) {
                    let _ = request
                        .reply
                        .send(Err(StoreError::Backend(message.clone())));
                }
            }
        }
    }

    fn commit_batch<'a>(
        &self,
        txns: impl Iterator<Item = &'a Txn>,
    ) -> Result<BatchOutcome, StoreError> {
        let write = self.db.begin_write()?;
        let mut outcome = BatchOutcome {
            results: Vec::new(),
            events: Vec::new(),
            revision: self.revision,
            compacted: self.compacted,
        };
        {
            let mut kv = write.open_table(KV)?;
            let mut log = write.open_table(LOG)?;
            for txn in txns {
                let succeeded = evaluate(&kv, txn)?;
                let ops = if succeeded {
                    &txn.success
                } else {
                    &txn.failure
                };
                let next = outcome.revision + 1;
                let events = apply(&mut kv, ops, next)?;
                if !events.is_empty() {
                    log.insert(next, encode_events(&events).as_slice())?;
                    outcome.revision = next;
                    outcome.events.extend(events);
                }
                outcome.results.push(TxnResult {
                    succeeded,
                    revision: outcome.revision,
                });
            }
            if outcome.revision != self.revision {
                let mut meta = write.open_table(META)?;
                meta.insert(META_REVISION, outcome.revision)?;
                let cut = outcome.revision.saturating_sub(self.retention);
                if cut > outcome.compacted {
                    log.retain_in(..=cut, |_, _| false)?;
                    meta.insert(META_COMPACTED, cut)?;
                    outcome.compacted = cut;
                }
            }
        }
        if outcome.revision == self.revision {
            // Nothing changed (failed compares, deletes of absent keys): no fsync needed.
            write.abort()?;
        } else {
            write.commit()?;
        }
        Ok(outcome)
    }
}

/// Reads the persisted revision counters after open.
pub fn load_counters(db: &Database) -> Result<(Revision, Revision), StoreError> {
    let write = db.begin_write()?;
    let counters = {
        // Opening creates the tables in a new file, so readers never meet a missing table.
        write.open_table(KV)?;
        write.open_table(LOG)?;
        let meta = write.open_table(META)?;
        (
            meta_value(&meta, META_REVISION)?,
            meta_value(&meta, META_COMPACTED)?,
        )
    };
    write.commit()?;
    Ok(counters)
}

fn evaluate(
    kv: &impl ReadableTable<&'static str, &'static [u8]>,
    txn: &Txn,
) -> Result<bool, StoreError> {
    for compare in &txn.compares {
        if !compare.holds(read_kv(kv, compare.key())?.as_ref()) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn apply(
    kv: &mut Table<&'static str, &'static [u8]>,
    ops: &[Op],
    revision: Revision,
) -> Result<Vec<Event>, StoreError> {
    let mut events = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::Put { key, value } => {
                let create_revision =
                    read_kv(kv, key)?.map_or(revision, |existing| existing.create_revision);
                kv.insert(
                    key.as_str(),
                    encode_kv(create_revision, revision, value).as_slice(),
                )?;
                events.push(Event {
                    revision,
                    kind: EventKind::Put,
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
            Op::Delete { key } => {
                if kv.remove(key.as_str())?.is_some() {
                    events.push(Event {
                        revision,
                        kind: EventKind::Delete,
                        key: key.clone(),
                        value: None,
                    });
                }
            }
        }
    }
    Ok(events)
}

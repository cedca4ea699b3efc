//! Leader election on the embedded store. The file is locked by one process, so there is one
//! master and the election happens inside it: one leadership at a time (a semaphore), granted
//! at once when nobody holds it. The leader key is written all the same (deleting keys a
//! previous process left behind, in the same transaction), so fenced transactions compare the
//! same thing as on etcd and fail once the leadership ended. There is no lease: a leadership
//! lasts until it is resigned, abandoned or dropped (`ttl` is not used).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::task::AbortHandle;

use super::{submit, watch as embedded_watch, EmbeddedStore, Requests};
use crate::election::{self, Elector, Fence, Leadership, Term};
use crate::error::StoreError;
use crate::store::Store;
use crate::types::{KeyValue, Txn, MAX_TXN_OPS};

#[async_trait::async_trait]
impl Elector for EmbeddedStore {
    async fn campaign(
        &self,
        name: &str,
        value: Vec<u8>,
        _ttl: Duration,
    ) -> Result<Leadership, StoreError> {
        election::check_name(name)?;
        let permit = self
            .leadership
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let prefix = election::prefix(name);
        // Keys under the prefix now are stale: left by a process that died while leading, or
        // by a leadership dropped without its resignation being written yet.
        let mut stale: Vec<String> = self
            .list(&prefix)
            .await?
            .kvs
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        while stale.len() >= MAX_TXN_OPS {
            let batch = stale.split_off(stale.len() - (MAX_TXN_OPS - 1));
            self.txn(batch.into_iter().fold(Txn::new(), Txn::delete))
                .await?;
        }
        let key = format!("{prefix}{:016x}", unique_id());
        let txn = stale
            .into_iter()
            .fold(Txn::new().when_absent(&key).put(&key, value), Txn::delete);
        let result = self.txn(txn).await?;
        if !result.succeeded {
            return Err(StoreError::Unexpected(format!(
                "leader key {key} existed before it was created"
            )));
        }
        let fence = Fence {
            key,
            revision: result.revision,
        };
        let (lost_tx, lost_rx) = watch::channel(None);
        let mut events = embedded_watch::spawn(
            self.db.clone(),
            self.events.subscribe(),
            fence.key.clone(),
            fence.revision,
        );
        let watched = fence.clone();
        let watcher = tokio::spawn(async move {
            let mut seen = watched.revision;
            // The embedded watch only ends when the store goes away.
            if let Some(reason) =
                election::until_key_changes(&mut events, &watched.key, &mut seen).await
            {
                lost_tx.send_replace(Some(reason));
            }
        });
        let term = EmbeddedTerm {
            requests: Arc::downgrade(&self.requests),
            fence: fence.clone(),
            watcher: watcher.abort_handle(),
            _permit: permit,
        };
        Ok(Leadership::new(fence, lost_rx, Box::new(term)))
    }

    async fn leader(&self, name: &str) -> Result<Option<KeyValue>, StoreError> {
        election::check_name(name)?;
        Ok(election::first_created(
            self.list(&election::prefix(name)).await?,
        ))
    }
}

/// A leader key suffix no other campaign of this process or an earlier one used.
fn unique_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

struct EmbeddedTerm {
    requests: Weak<<Requests as std::ops::Deref>::Target>,
    fence: Fence,
    watcher: AbortHandle,
    /// Released when the term ends, letting the next campaign in.
    _permit: OwnedSemaphorePermit,
}

impl Term for EmbeddedTerm {
    fn resign(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        self.watcher.abort();
        Box::pin(async move {
            let Some(requests) = self.requests.upgrade() else {
                return Err(StoreError::Closed);
            };
            // Only our own key, only if still ours; the permit goes (with `self`) once the key
            // is gone, so the next leader's key is created after ours was deleted.
            let txn = Txn::new()
                .fenced(&self.fence)
                .delete(self.fence.key.clone());
            submit(&requests, txn).await.map(|_| ())
        })
    }

    fn abandon(self: Box<Self>) {
        // The key stays, as a crashed leader's would; the next campaign deletes it.
        self.watcher.abort();
    }
}

//! The master's shared state: the store, the cache that mirrors it, and the loop that keeps the
//! cache in step with the store's watch (so several masters on one etcd see each other).

use crate::cache::Cache;
use crate::error::ApiError;
use crate::keys;
use crate::metrics::Metrics;
use crate::proposals::Proposals;
use fabric_store::{Event, EventKind, Op, Revision, Store, StoreError, Txn};
use futures::StreamExt;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Settings from the command line that shape defaults (Contiv's netmaster flags).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub fwd_mode: String,
    pub net_mode: String,
    pub cluster_mode: String,
    pub infra: String,
    pub backend: &'static str,
    pub auth: crate::auth::AuthSettings,
}

pub struct Master {
    pub store: Arc<dyn Store>,
    cache: RwLock<Cache>,
    watched_tx: watch::Sender<Revision>,
    pub settings: Settings,
    pub metrics: Metrics,
    pub(crate) proposals: Proposals,
    /// Network writes of this master, one at a time: each compares and bumps the one
    /// fabric-wide subnets version (see `tenancy`), so concurrent ones would only keep
    /// invalidating each other. Across masters the store's compare still decides.
    pub(crate) network_writes: tokio::sync::Mutex<()>,
    /// Agents' registrations (host → lease), kept in memory: an agent re-registers within a
    /// heartbeat after a master restart.
    pub hosts: crate::api::hosts::Registry,
    /// Authentication: settings, failed-login counts, the bound on password hashing.
    pub auth: crate::auth::Auth,
    /// Whether this master leads (see `leader`); idle until `leader::start`.
    pub leader: crate::leader::Leader,
}

/// How many times a write is re-planned after losing a compare to a concurrent writer.
pub const WRITE_ATTEMPTS: usize = 32;

/// What a successful plan commits, and what the cache applies locally afterwards.
pub struct Plan<T> {
    pub txn: Txn,
    pub result: T,
}

impl Master {
    /// Loads the store into the cache and starts following it.
    pub async fn start(
        store: Arc<dyn Store>,
        settings: Settings,
    ) -> Result<Arc<Master>, StoreError> {
        let (watched_tx, _) = watch::channel(0);
        let master = Arc::new(Master {
            store,
            cache: RwLock::new(Cache::default()),
            watched_tx,
            metrics: Metrics::default(),
            proposals: Proposals::default(),
            network_writes: Default::default(),
            hosts: Default::default(),
            auth: crate::auth::Auth::new(settings.auth.clone()),
            leader: Default::default(),
            settings,
        });
        let from = master.reload().await?;
        let follower = Arc::downgrade(&master);
        tokio::spawn(follow(follower, from));
        Ok(master)
    }

    /// Replaces the cache with a fresh snapshot; returns the snapshot's revision.
    async fn reload(&self) -> Result<Revision, StoreError> {
        let snapshot = self.store.list(keys::ROOT).await?;
        let mut cache = self.cache_mut();
        cache.clear();
        for kv in &snapshot.kvs {
            cache.apply(kv.mod_revision, &kv.key, Some(&kv.value));
        }
        cache.watched = snapshot.revision;
        drop(cache);
        self.watched_tx.send_replace(snapshot.revision);
        Ok(snapshot.revision)
    }

    pub fn cache(&self) -> RwLockReadGuard<'_, Cache> {
        self.cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cache_mut(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn apply_event(&self, event: &Event) {
        let mut cache = self.cache_mut();
        let value = match event.kind {
            EventKind::Put => event.value.as_deref(),
            EventKind::Delete => None,
        };
        cache.apply(event.revision, &event.key, value);
        cache.watched = cache.watched.max(event.revision);
        drop(cache);
        self.watched_tx.send_if_modified(|w| {
            let newer = event.revision > *w;
            if newer {
                *w = event.revision;
            }
            newer
        });
    }

    /// Waits (bounded) until the watch has delivered everything up to `revision`, so a retry
    /// plans against the write that beat it.
    pub async fn wait_for(&self, revision: Revision) {
        let mut rx = self.watched_tx.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|w| *w >= revision)).await;
    }

    /// Plans against the cache and commits, re-planning when a concurrent writer won a compare.
    /// The committed ops are applied to the cache at once so the caller reads its own write.
    pub async fn commit<T>(
        &self,
        what: &str,
        mut plan: impl FnMut(&Cache) -> Result<Plan<T>, ApiError>,
    ) -> Result<(T, Revision), ApiError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Plan { txn, result } = plan(&self.cache())?;
            let ops = txn.success.clone();
            let outcome = self.store.txn(txn).await?;
            if outcome.succeeded {
                self.apply_local(outcome.revision, &ops);
                return Ok((result, outcome.revision));
            }
            self.metrics.write_conflicts.inc();
            self.wait_for(outcome.revision).await;
        }
        Err(ApiError::conflict(
            what.to_string(),
            None,
            format!("changed concurrently {WRITE_ATTEMPTS} times in a row; try again"),
        ))
    }

    pub(crate) fn apply_local(&self, revision: Revision, ops: &[Op]) {
        let mut cache = self.cache_mut();
        for op in ops {
            match op {
                Op::Put { key, value } => cache.apply(revision, key, Some(value)),
                Op::Delete { key } => cache.apply(revision, key, None),
            };
        }
    }

    pub fn watched_revision(&self) -> Revision {
        *self.watched_tx.borrow()
    }
}

/// Follows the store's watch for as long as the master lives; reloads after compaction and
/// reconnects (with a bounded back-off) after errors, resuming from the last applied revision.
async fn follow(master: std::sync::Weak<Master>, mut from: Revision) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(m) = master.upgrade() else { return };
        let stream = m.store.watch(keys::ROOT, from).await;
        drop(m);
        let mut stream = match stream {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, from, "store watch failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        while let Some(item) = stream.next().await {
            let Some(m) = master.upgrade() else { return };
            match item {
                Ok(event) => {
                    from = from.max(event.revision);
                    m.apply_event(&event);
                    backoff = Duration::from_millis(100);
                }
                Err(StoreError::Compacted { .. }) => {
                    tracing::warn!(from, "store history compacted; reloading the cache");
                    match m.reload().await {
                        Ok(rev) => from = rev,
                        Err(error) => tracing::warn!(%error, "reload failed; retrying"),
                    }
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, from, "store watch broke; resuming");
                    break;
                }
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

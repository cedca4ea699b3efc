//! Leader election on etcd: a lease kept alive every third of its TTL, etcd's v3election
//! `Campaign` on it, and a watch of the leader key. The leadership is lost when a renewal is not
//! acknowledged within the TTL (measured from when that renewal was sent, so we give up no later
//! than etcd does) or when the key changes or goes.

use std::collections::VecDeque;
use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::convert;
use super::retry::{retry, Safety};
use super::watch as etcd_watch;
use super::EtcdStore;
use crate::election::{self, Fence, Leadership, Lost, Term};
use crate::error::StoreError;
use crate::store::Store;
use crate::types::KeyValue;

/// Pause before re-opening a broken keep-alive stream or leader-key watch.
const REOPEN_BACKOFF: Duration = Duration::from_millis(200);
/// Bound on revoking the lease when resigning.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn campaign(
    store: &EtcdStore,
    name: &str,
    value: Vec<u8>,
    ttl: Duration,
) -> Result<Leadership, StoreError> {
    election::check_name(name)?;
    let client = store.client();
    let asked = i64::try_from(ttl.as_secs())
        .ok()
        .filter(|secs| *secs >= 1)
        .ok_or_else(|| StoreError::Backend(format!("lease TTL {ttl:?}: at least 1 s")))?;
    let granted_at = Instant::now();
    // A grant that reached etcd but whose answer was lost leaves a lease nobody renews; it runs
    // out by itself, so only undelivered grants are retried.
    let grant = retry(store.attempts, Safety::NotDelivered, || {
        let mut lease = client.lease_client();
        async move { lease.grant(asked, None).await }
    })
    .await?;
    let lease = grant.id();
    let ttl = Duration::from_secs(u64::try_from(grant.ttl()).unwrap_or(0).max(1));
    let (lost_tx, lost_rx) = watch::channel(None);
    let keeper = tokio::spawn(keep_alive(
        client.clone(),
        lease,
        ttl,
        granted_at,
        lost_tx.clone(),
    ));
    // From here on, every early return drops the term, which revokes the lease.
    let mut term = EtcdTerm {
        client: client.clone(),
        lease,
        tasks: vec![keeper.abort_handle()],
    };
    let mut elections = client.election_client();
    let response = tokio::select! {
        response = elections.campaign(name, value, lease) => response?,
        reason = election::wait_lost(lost_rx.clone()) => {
            return Err(StoreError::Backend(format!("campaign for {name}: {reason}")));
        }
    };
    let leader = response
        .leader()
        .ok_or_else(|| StoreError::Unexpected("campaign answered without a leader key".into()))?;
    let key = leader
        .key_str()
        .map_err(|e| StoreError::Unexpected(format!("leader key is not UTF-8: {e}")))?
        .to_string();
    let revision = convert::revision(leader.rev());
    // etcd answers once every earlier key is gone, without checking that ours still exists (our
    // lease may have run out while we waited), so check it before claiming anything.
    let current = store.get(&key).await?;
    let fence = Fence { key, revision };
    if !fence.holds(current.as_ref()) {
        return Err(StoreError::Backend(format!(
            "campaign for {name}: the leader key {} was gone by the time we were elected",
            fence.key
        )));
    }
    let watcher = tokio::spawn(watch_key(store.clone(), fence.clone(), lost_tx));
    term.tasks.push(watcher.abort_handle());
    tracing::debug!(%name, key = %fence.key, revision, lease, ?ttl, "elected");
    Ok(Leadership::new(fence, lost_rx, Box::new(term)))
}

pub async fn leader(store: &EtcdStore, name: &str) -> Result<Option<KeyValue>, StoreError> {
    election::check_name(name)?;
    Ok(election::first_created(
        store.list(&election::prefix(name)).await?,
    ))
}

/// The lease and the tasks of one leadership (or candidacy).
struct EtcdTerm {
    client: Client,
    lease: i64,
    tasks: Vec<AbortHandle>,
}

impl EtcdTerm {
    fn stop_tasks(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Term for EtcdTerm {
    fn resign(mut self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        self.stop_tasks();
        let (mut leases, lease) = (self.client.lease_client(), self.lease);
        // Revoking deletes the leader key with the lease: the next candidate leads at once.
        self.lease = 0;
        Box::pin(async move {
            match tokio::time::timeout(REVOKE_TIMEOUT, leases.revoke(lease)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(error.into()),
                Err(_) => Err(StoreError::Backend(format!(
                    "revoking lease {lease:x}: no answer within {REVOKE_TIMEOUT:?}"
                ))),
            }
        })
    }

    fn abandon(mut self: Box<Self>) {
        self.stop_tasks();
        self.lease = 0;
    }
}

impl Drop for EtcdTerm {
    /// A term dropped before it became a leadership (a failed or cancelled campaign) revokes
    /// its lease in the background, so it does not linger as a candidate.
    fn drop(&mut self) {
        self.stop_tasks();
        if self.lease == 0 {
            return;
        }
        let (mut leases, lease) = (self.client.lease_client(), self.lease);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(REVOKE_TIMEOUT, leases.revoke(lease)).await;
            });
        }
    }
}

/// Renews `lease` every third of `ttl` until it cannot, then reports why on `lost`. The lease
/// counts as alive until `ttl` after the last acknowledged renewal was *sent* (etcd restarts the
/// TTL when it receives it, later), so `lost` never fires after etcd dropped the lease.
async fn keep_alive(
    client: Client,
    lease: i64,
    ttl: Duration,
    granted_at: Instant,
    lost: watch::Sender<Option<Lost>>,
) {
    let every = (ttl / 3).max(Duration::from_millis(100));
    let mut deadline = granted_at + ttl;
    let expired = |reason: String| Lost::LeaseExpired { ttl, reason };
    let mut channel: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    let mut sent: VecDeque<Instant> = VecDeque::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reason = loop {
        let Some((keeper, stream)) = channel.as_mut() else {
            let opened_at = Instant::now();
            let mut leases = client.lease_client();
            match tokio::time::timeout_at(deadline, leases.keep_alive(lease)).await {
                // Opening sends one renewal and waits for its answer.
                Ok(Ok(opened)) => {
                    deadline = deadline.max(opened_at + ttl);
                    channel = Some(opened);
                    sent.clear();
                }
                Ok(Err(etcd_client::Error::LeaseKeepAliveError(reason))) => {
                    break expired(format!("etcd refused the renewal: {reason}"));
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, lease, "opening the lease keep-alive failed; retrying");
                    tokio::time::sleep(REOPEN_BACKOFF).await;
                }
                Err(_) => break expired("no renewal got through".into()),
            }
            continue;
        };
        tokio::select! {
            _ = tick.tick() => {
                sent.push_back(Instant::now());
                if let Err(error) = keeper.keep_alive().await {
                    tracing::debug!(%error, lease, "sending a lease renewal failed; reopening");
                    channel = None;
                }
            }
            answer = stream.message() => match answer {
                Ok(Some(answer)) if answer.ttl() > 0 => {
                    if let Some(at) = sent.pop_front() {
                        deadline = deadline.max(at + ttl);
                    }
                }
                Ok(Some(_)) => break expired("etcd says the lease is gone".into()),
                Ok(None) | Err(_) => {
                    tracing::debug!(lease, "the lease keep-alive stream broke; reopening");
                    channel = None;
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                break expired("no renewal was acknowledged in time".into());
            }
        }
    };
    tracing::debug!(lease, %reason, "lease lost");
    lost.send_replace(Some(reason));
}

/// Watches the leader key from its revision; any change to it ends the leadership. After the
/// watch breaks, the key is read again (from a revision taken before the read, so nothing
/// between the two is missed) and watched from there.
async fn watch_key(store: EtcdStore, fence: Fence, lost: watch::Sender<Option<Lost>>) {
    let mut seen = fence.revision;
    loop {
        match etcd_watch::start(&store.client, store.attempts, &fence.key, seen).await {
            Ok(mut events) => {
                if let Some(reason) =
                    election::until_key_changes(&mut events, &fence.key, &mut seen).await
                {
                    lost.send_replace(Some(reason));
                    return;
                }
            }
            Err(error) => {
                tracing::debug!(%error, key = %fence.key, "watching the leader key failed")
            }
        }
        tokio::time::sleep(REOPEN_BACKOFF).await;
        let Ok(now) = store.revision().await else {
            continue;
        };
        match store.get(&fence.key).await {
            Ok(current) if fence.holds(current.as_ref()) => seen = seen.max(now),
            Ok(_) => {
                lost.send_replace(Some(Lost::KeyChanged(fence.key.clone())));
                return;
            }
            Err(error) => {
                tracing::debug!(%error, key = %fence.key, "reading the leader key failed")
            }
        }
    }
}

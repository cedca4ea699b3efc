//! Leader election over the store, for both backends: [`Elector::campaign`] waits until the
//! caller leads and returns a [`Leadership`], whose [`Fence`] makes a transaction commit only
//! while that leadership lasts.
//!
//! The model is etcd's v3 election: each campaigner holds a key `<name>/<id>` bound to a lease
//! it keeps alive; the one whose key was created first leads; losing the lease deletes the key,
//! so the next campaigner leads. The leader key is never rewritten (no proclaim), so its mod
//! revision stays its create revision, and `Compare::ModRevision(key, revision)` holds exactly
//! while the key lives: a transaction carrying that compare commits only while its leader
//! still leads, even if the leader itself has not noticed yet that it lost (a paused process,
//! a partition). The embedded store has one master; it leads at once, with a leader key all the
//! same, so fenced transactions behave alike on both backends.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::types::{Compare, Event, KeyValue, Revision, Snapshot, Txn, WatchStream};

/// Campaigning for, and finding, the leader of a named election.
#[async_trait::async_trait]
pub trait Elector: Send + Sync {
    /// Waits until this caller leads election `name` (a key prefix, e.g. `/contiv/leader`),
    /// then returns the leadership. `value` is stored in the leader key (e.g. the caller's id),
    /// for [`Elector::leader`]. `ttl` is the lease: a leader that stops renewing it (crash,
    /// partition) is replaced within about `ttl` (etcd rounds it up to whole seconds and to its
    /// minimum). Cancel-safe: dropping the future withdraws the candidacy.
    async fn campaign(
        &self,
        name: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Leadership, StoreError>;

    /// The current leader's key and value, `None` when nobody leads.
    async fn leader(&self, name: &str) -> Result<Option<KeyValue>, StoreError>;
}

/// What makes a transaction commit only while one leadership lasts: the leader key and the
/// revision it was created at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    pub key: String,
    pub revision: Revision,
}

impl Fence {
    /// The compare a fenced transaction carries.
    pub fn compare(&self) -> Compare {
        Compare::ModRevision(self.key.clone(), self.revision)
    }

    /// Whether the leadership still holds, given the leader key as read now.
    pub fn holds(&self, current: Option<&KeyValue>) -> bool {
        self.compare().holds(current)
    }
}

impl Txn {
    /// Makes the transaction commit only while `fence`'s leadership lasts.
    pub fn fenced(self, fence: &Fence) -> Self {
        self.when(fence.compare())
    }
}

/// Why a leadership ended without being resigned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    /// Someone deleted or rewrote the leader key (or its lease ran out on the server).
    #[error("the leader key {0} was deleted or rewritten")]
    KeyChanged(String),
    /// The lease could not be renewed in time.
    #[error("the lease was not renewed within its {ttl:?}: {reason}")]
    LeaseExpired { ttl: Duration, reason: String },
    /// The task watching the leadership stopped (resigned, abandoned, or the store went away).
    #[error("the leadership is no longer watched")]
    Ended,
}

/// How a backend ends a leadership.
pub(crate) trait Term: Send + Sync {
    /// Deletes the leader key (revokes the lease), so another campaigner leads at once.
    fn resign(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>>;
    /// Stops renewing without deleting anything.
    fn abandon(self: Box<Self>);
}

/// Being the leader of an election, from [`Elector::campaign`]. Dropping it resigns in the
/// background (best effort; if that cannot happen the lease still runs out).
pub struct Leadership {
    fence: Fence,
    lost: watch::Receiver<Option<Lost>>,
    term: Option<Box<dyn Term>>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("fence", &self.fence)
            .field("lost", &*self.lost.borrow())
            .finish()
    }
}

impl Leadership {
    pub(crate) fn new(
        fence: Fence,
        lost: watch::Receiver<Option<Lost>>,
        term: Box<dyn Term>,
    ) -> Self {
        Self {
            fence,
            lost,
            term: Some(term),
        }
    }

    /// The fence of this leadership: add it to every leader-only transaction.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// The leader key, `<name>/<id>`.
    pub fn key(&self) -> &str {
        &self.fence.key
    }

    /// The revision the leader key was created (and last modified) at.
    pub fn revision(&self) -> Revision {
        self.fence.revision
    }

    /// Whether the leadership is known to be lost.
    pub fn is_lost(&self) -> bool {
        self.lost.borrow().is_some() || self.lost.has_changed().is_err()
    }

    /// Completes when the leadership is lost: the lease could not be renewed in time, or the
    /// leader key went away. Transactions fenced by it fail from then on, if not earlier.
    pub async fn lost(&self) -> Lost {
        wait_lost(self.lost.clone()).await
    }

    /// Gives the leadership up: the leader key is deleted, so another campaigner leads at once.
    pub async fn resign(mut self) -> Result<(), StoreError> {
        match self.term.take() {
            Some(term) => term.resign().await,
            None => Ok(()),
        }
    }

    /// Stops renewing the leadership without giving it up, as a process that died would: the
    /// leader key stays until the lease runs out, then another campaigner leads. For tests of
    /// failover, and for exiting in a hurry.
    pub fn abandon(mut self) {
        if let Some(term) = self.term.take() {
            term.abandon();
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        let Some(term) = self.term.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = term.resign().await {
                        tracing::debug!(%error, "resigning a dropped leadership failed; the lease will run out");
                    }
                });
            }
            Err(_) => term.abandon(),
        }
    }
}

/// Waits until `lost` says why the leadership ended ([`Lost::Ended`] if its sender went away).
pub(crate) async fn wait_lost(mut lost: watch::Receiver<Option<Lost>>) -> Lost {
    let reason = match lost.wait_for(Option::is_some).await {
        Ok(reason) => reason.clone(),
        Err(_) => None,
    };
    reason.unwrap_or(Lost::Ended)
}

/// The prefix of an election's keys.
pub(crate) fn prefix(name: &str) -> String {
    format!("{name}/")
}

/// The leader among an election's keys: the one created first (as etcd decides).
pub(crate) fn first_created(snapshot: Snapshot) -> Option<KeyValue> {
    snapshot.kvs.into_iter().min_by_key(|kv| kv.create_revision)
}

/// Checks an election name: a key prefix without a trailing `/` (the keys are `<name>/<id>`).
pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.ends_with('/') {
        return Err(StoreError::InvalidTxn(format!(
            "election name {name:?} must be non-empty and not end with '/'"
        )));
    }
    Ok(())
}

/// Reads `events` (a watch on the leader key from its revision) until one touches exactly
/// `key` (a put would change its mod revision, a delete ends it): returns `Some(KeyChanged)`.
/// `None` when the stream ended or failed first (the caller may watch again).
pub(crate) async fn until_key_changes(
    events: &mut WatchStream,
    key: &str,
    seen: &mut Revision,
) -> Option<Lost> {
    while let Some(item) = events.next().await {
        match item {
            Ok(Event {
                key: k, revision, ..
            }) => {
                *seen = (*seen).max(revision);
                if k == key {
                    return Some(Lost::KeyChanged(key.to_string()));
                }
            }
            Err(error) => {
                tracing::debug!(%error, %key, "watch of the leader key broke");
                return None;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, create: Revision, modified: Revision) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Vec::new(),
            create_revision: create,
            mod_revision: modified,
        }
    }

    #[test]
    fn the_first_created_key_leads() {
        let snapshot = Snapshot {
            kvs: vec![kv("/e/b", 7, 7), kv("/e/a", 9, 9), kv("/e/c", 8, 8)],
            revision: 9,
        };
        assert_eq!(
            first_created(snapshot).map(|kv| kv.key),
            Some("/e/b".into())
        );
        assert_eq!(first_created(Snapshot::default()), None);
    }

    #[test]
    fn a_fence_holds_only_for_its_key_at_its_revision() {
        let fence = Fence {
            key: "/e/a".into(),
            revision: 5,
        };
        assert!(fence.holds(Some(&kv("/e/a", 5, 5))));
        assert!(!fence.holds(Some(&kv("/e/a", 5, 6))));
        assert!(!fence.holds(None));
        let txn = Txn::new().fenced(&fence).put("/x", "1");
        assert_eq!(txn.compares, vec![Compare::ModRevision("/e/a".into(), 5)]);
    }

    #[test]
    fn election_names_are_prefixes_without_a_slash() {
        assert!(check_name("/contiv/leader").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("/contiv/leader/").is_err());
        assert_eq!(prefix("/e"), "/e/");
    }
}

//! Which master leads. Every master campaigns in the background for as long as it runs (again
//! after losing) on the store's election ([`ELECTION`]); the one that leads runs the
//! leader-only jobs ([`jobs`]): sweeps of ended sessions and of agents' and masters' records
//! nobody refreshed, and the tenancy audit once per term. Every write of such a job carries the
//! leadership's [`Fence`] in its transaction, so a master that lost the lead (a lease that ran
//! out during a pause or a partition) cannot commit one, even before it notices.
//!
//! Everything else (the REST API, allocation, the reflector) runs on every master: their
//! writes are compare-and-swap transactions that need no leader.

pub mod jobs;
pub mod sweep;

use crate::master::Master;
use fabric_store::{Fence, Store, StoreError};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The election every master of one store campaigns in (keys `/contiv/leader/<lease>`).
pub const ELECTION: &str = "/contiv/leader";
/// The default lease: a leader that stops renewing it is replaced within about this long.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);
/// Accepted leases (seconds): etcd grants no less than 2 s with its default timings, and a
/// longer lease than a minute only delays failover.
pub const LEASE_SECS: std::ops::RangeInclusive<u64> = 2..=60;
/// Bound on resigning when the master stops.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct LeaderSettings {
    /// This master's id: the leader key's value, what `/info` shows as the leader.
    pub id: String,
    pub lease: Duration,
}

/// Parses `--leader-lease`: whole seconds in [`LEASE_SECS`].
pub fn parse_lease(text: &str) -> Result<Duration, String> {
    let secs: u64 = text
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !LEASE_SECS.contains(&secs) {
        return Err(format!(
            "{secs} s is outside {}-{} s",
            LEASE_SECS.start(),
            LEASE_SECS.end()
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// This master's view of its leadership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The fence of the current term; `Some` exactly while this master leads.
    pub fence: Option<Fence>,
    /// When the current term began (Unix milliseconds).
    pub since_ms: Option<u64>,
    /// When the current term's first round of leader-only jobs finished (Unix milliseconds).
    pub first_jobs_ms: Option<u64>,
}

/// How to stop campaigning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Delete the leader key: another master leads at once (a clean shutdown).
    Resign,
    /// Stop renewing and delete nothing: another master leads once the lease runs out, as
    /// after `kill -9` (for tests of failover).
    Crash,
}

/// The leadership state a [`Master`] carries; idle until [`start`].
#[derive(Debug)]
pub struct Leader {
    id: OnceLock<String>,
    status: watch::Sender<Status>,
    stop: watch::Sender<Option<Stop>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Default for Leader {
    fn default() -> Self {
        Leader {
            id: OnceLock::new(),
            status: watch::channel(Status::default()).0,
            stop: watch::channel(None).0,
            task: Mutex::new(None),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leadership of this master was started already")]
    Started,
}

/// Starts campaigning for `master` in the background, for as long as it lives (or until
/// [`Leader::stop`]). With the embedded store it leads at once.
pub fn start(master: &Arc<Master>, settings: LeaderSettings) -> Result<(), LeaderError> {
    let leader = &master.leader;
    leader
        .id
        .set(settings.id.clone())
        .map_err(|_| LeaderError::Started)?;
    let task = tokio::spawn(campaign_forever(
        Arc::downgrade(master),
        master.store.clone(),
        settings,
        leader.stop.subscribe(),
    ));
    if let Ok(mut slot) = leader.task.lock() {
        *slot = Some(task);
    }
    Ok(())
}

impl Leader {
    /// This master's id, once [`start`]ed.
    pub fn id(&self) -> Option<&str> {
        self.id.get().map(String::as_str)
    }

    pub fn is_leader(&self) -> bool {
        self.status.borrow().fence.is_some()
    }

    /// The current term's fence, while this master leads.
    pub fn fence(&self) -> Option<Fence> {
        self.status.borrow().fence.clone()
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Waits (bounded) until this master leads and its first round of leader-only jobs is
    /// done; returns the fence, `None` if that did not happen within `within`.
    pub async fn wait_leading(&self, within: Duration) -> Option<Fence> {
        let mut status = self.status.subscribe();
        let ready = tokio::time::timeout(
            within,
            status.wait_for(|s| s.fence.is_some() && s.first_jobs_ms.is_some()),
        )
        .await;
        match ready {
            Ok(Ok(status)) => status.fence.clone(),
            _ => None,
        }
    }

    /// Stops campaigning (and leading) and waits, bounded, until that is done.
    pub async fn stop(&self, how: Stop) {
        self.stop.send_replace(Some(how));
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            if tokio::time::timeout(STOP_TIMEOUT, task).await.is_err() {
                tracing::warn!(
                    master = self.id().unwrap_or(""),
                    "leadership did not stop in time"
                );
            }
        }
    }

    fn begin_term(&self, fence: Fence) {
        self.status.send_replace(Status {
            fence: Some(fence),
            since_ms: Some(now_ms()),
            first_jobs_ms: None,
        });
    }

    fn end_term(&self) {
        self.status.send_replace(Status::default());
    }

    /// Records that the current term's first round of leader-only jobs finished.
    pub(crate) fn first_jobs_done(&self, fence: &Fence) {
        self.status.send_if_modified(|s| {
            let now = s.fence.as_ref() == Some(fence) && s.first_jobs_ms.is_none();
            if now {
                s.first_jobs_ms = Some(now_ms());
            }
            now
        });
    }
}

/// The id of the master that leads `store`'s election now, if any.
pub async fn current_leader(store: &dyn Store) -> Result<Option<String>, StoreError> {
    let kv = store.leader(ELECTION).await?;
    Ok(kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Completes when campaigning must stop: how, or [`Stop::Resign`] when the master is gone
/// (its [`Leader`] dropped).
async fn stopped(stop: &mut watch::Receiver<Option<Stop>>) -> Stop {
    match stop.wait_for(Option::is_some).await {
        Ok(how) => how.unwrap_or(Stop::Resign),
        Err(_) => Stop::Resign,
    }
}

enum Ended {
    Lost(fabric_store::Lost),
    Stopped(Stop),
}

/// Campaigns, leads until the leadership is lost, campaigns again; until stopped.
async fn campaign_forever(
    master: Weak<Master>,
    store: Arc<dyn Store>,
    settings: LeaderSettings,
    mut stop: watch::Receiver<Option<Stop>>,
) {
    let id = settings.id;
    let mut backoff = Duration::from_millis(100);
    loop {
        let campaign = store.campaign(ELECTION, id.as_bytes().to_vec(), settings.lease);
        // Dropping the campaign withdraws the candidacy.
        let leadership = tokio::select! {
            result = campaign => result,
            _ = stopped(&mut stop) => return,
        };
        let leadership = match leadership {
            Ok(leadership) => leadership,
            Err(error) => {
                tracing::warn!(master = %id, %error, "campaign for leadership failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(&mut stop) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let fence = leadership.fence().clone();
        let Some(m) = master.upgrade() else { return };
        m.leader.begin_term(fence.clone());
        m.metrics.leader.set(1);
        m.metrics.leader_changes.inc();
        tracing::info!(master = %id, revision = fence.revision, key = %fence.key, "leading");
        let mut jobs = tokio::spawn(jobs::run(Arc::downgrade(&m), fence.clone()));
        drop(m);
        let ended = tokio::select! {
            lost = leadership.lost() => Ended::Lost(lost),
            how = stopped(&mut stop) => Ended::Stopped(how),
            done = &mut jobs => match done {
                // The store refused a fenced commit: the term is over, noticed or not.
                Ok(jobs::JobsEnded::Fenced(error)) => {
                    Ended::Lost(fabric_store::Lost::KeyChanged(error.to_string()))
                }
                Ok(jobs::JobsEnded::MasterGone) | Err(_) => Ended::Stopped(Stop::Resign),
            },
        };
        jobs.abort();
        if let Some(m) = master.upgrade() {
            m.leader.end_term();
            m.metrics.leader.set(0);
            m.metrics.leader_changes.inc();
        }
        match ended {
            Ended::Lost(reason) => {
                tracing::info!(master = %id, revision = fence.revision, %reason, "leadership lost; campaigning again");
                // Dropping it revokes what is left of the lease in the background.
                drop(leadership);
            }
            Ended::Stopped(Stop::Resign) => {
                if let Err(error) = leadership.resign().await {
                    tracing::warn!(master = %id, %error, "resigning failed; the lease will run out");
                }
                tracing::info!(master = %id, revision = fence.revision, "resigned the leadership");
                return;
            }
            Ended::Stopped(Stop::Crash) => {
                leadership.abandon();
                tracing::info!(master = %id, revision = fence.revision, "stopped renewing the leadership");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_whole_seconds_in_range() {
        assert_eq!(parse_lease("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_lease("10s"), Ok(Duration::from_secs(10)));
        assert!(parse_lease("1").unwrap_err().contains("outside 2-60"));
        assert!(parse_lease("61").is_err());
        assert!(parse_lease("fast").unwrap_err().contains("not a number"));
    }

    #[test]
    fn first_jobs_are_recorded_once_per_term() {
        let leader = Leader::default();
        let fence = Fence {
            key: "/contiv/leader/1".into(),
            revision: 3,
        };
        assert!(!leader.is_leader());
        leader.begin_term(fence.clone());
        assert!(leader.is_leader());
        leader.first_jobs_done(&Fence {
            key: "/contiv/leader/0".into(),
            revision: 2,
        });
        assert_eq!(leader.status().first_jobs_ms, None, "another term's jobs");
        leader.first_jobs_done(&fence);
        let first = leader.status().first_jobs_ms;
        assert!(first.is_some());
        leader.first_jobs_done(&fence);
        assert_eq!(leader.status().first_jobs_ms, first);
        leader.end_term();
        assert_eq!(leader.fence(), None);
    }
}

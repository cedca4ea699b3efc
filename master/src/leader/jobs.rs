//! The leader-only jobs and how they run: once when a term begins (the tenancy audit, which
//! only reports), then every [`ROUND_EVERY`] the sweeps, the first round right away. Each sweep
//! plans against the cache (a pure function, see `sweep` and `auth::bootstrap`) and commits
//! through [`commit_fenced`], which adds the term's fence to the transaction.

use crate::master::Master;
use fabric_store::{Fence, Revision, StoreError, Txn};
use std::sync::Weak;
use std::time::Duration;

/// How often the sweeps run while leading.
pub const ROUND_EVERY: Duration = Duration::from_secs(30);

/// What a fenced commit came to, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Applied at this revision.
    Done(Revision),
    /// One of the job's own compares failed (someone changed what it planned on); the
    /// leadership still holds. The store was at this revision.
    Conflict(Revision),
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The fence failed: this master no longer leads (it may not have noticed yet).
    #[error("no longer the leader: leader key {key} is not at revision {revision} any more")]
    Fenced { key: String, revision: Revision },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Commits `txn` only while `fence`'s leadership lasts, and applies it to the cache. A failed
/// transaction is told apart by reading the leader key: gone or changed means fenced out.
pub async fn commit_fenced(
    master: &Master,
    fence: &Fence,
    txn: Txn,
) -> Result<Committed, JobError> {
    let txn = txn.fenced(fence);
    let ops = txn.success.clone();
    let outcome = master.store.txn(txn).await?;
    if outcome.succeeded {
        master.apply_local(outcome.revision, &ops);
        return Ok(Committed::Done(outcome.revision));
    }
    let current = master.store.get(&fence.key).await?;
    if fence.holds(current.as_ref()) {
        Ok(Committed::Conflict(outcome.revision))
    } else {
        Err(JobError::Fenced {
            key: fence.key.clone(),
            revision: fence.revision,
        })
    }
}

/// Why the jobs of a term stopped on their own.
#[derive(Debug)]
pub enum JobsEnded {
    /// The master is gone.
    MasterGone,
    /// A fenced commit failed: the leadership is over.
    Fenced(JobError),
}

/// Runs the leader-only jobs of the term `fence` belongs to until the master goes away or a
/// commit is fenced out (the caller aborts it when the leadership ends otherwise).
pub async fn run(master: Weak<Master>, fence: Fence) -> JobsEnded {
    {
        let Some(m) = master.upgrade() else {
            return JobsEnded::MasterGone;
        };
        audit(&m);
    }
    let mut tick = tokio::time::interval(ROUND_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(m) = master.upgrade() else {
            return JobsEnded::MasterGone;
        };
        if let Err(error) = round(&m, &fence).await {
            return JobsEnded::Fenced(error);
        }
        m.leader.first_jobs_done(&fence);
    }
}

/// The tenancy audit: problems in the stored state, reported once per term by the leader
/// (rather than by every master at its start).
fn audit(master: &Master) {
    for problem in crate::tenancy::audit(&master.cache()) {
        tracing::error!(%problem, "tenants are not kept apart in the stored state");
    }
}

/// One round of sweeps. A store error is logged and left for the next round; being fenced out
/// ends the round and is returned.
pub async fn round(master: &Master, fence: &Fence) -> Result<(), JobError> {
    use super::sweep::{sweep_records, Records};
    let now = crate::auth::caller::now_secs();
    report("sessions", fence, master.sweep_sessions(fence).await)?;
    report(
        "agents",
        fence,
        sweep_records(master, fence, Records::Agents, now).await,
    )?;
    report(
        "masters",
        fence,
        sweep_records(master, fence, Records::Masters, now).await,
    )
}

/// Logs a sweep's outcome; passes being fenced out on.
fn report(job: &str, fence: &Fence, result: Result<usize, JobError>) -> Result<(), JobError> {
    match result {
        Ok(0) => Ok(()),
        Ok(swept) => {
            tracing::info!(job, swept, revision = fence.revision, "leader sweep");
            Ok(())
        }
        Err(error @ JobError::Fenced { .. }) => Err(error),
        Err(error) => {
            tracing::warn!(job, %error, "leader sweep failed; the next round retries");
            Ok(())
        }
    }
}

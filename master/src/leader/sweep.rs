//! The leader's sweep of fleet records nobody refreshed: agents' (`/contiv/agents/<host>`, a
//! heartbeat rewrites them at least every `fleet::REFRESH_SECS`) and masters'
//! (`/contiv/masters/<id>`, each master rewrites its own as often). A record older than
//! [`MAX_AGE_SECS`] belongs to a host or master that is gone; without the sweep the reflectors
//! would keep admitting it and agents would keep being told about it.
//!
//! Each delete compares the record's revision as planned, so a record refreshed in between
//! stays (that batch fails and the next round plans again).

use super::jobs::{commit_fenced, Committed, JobError};
use crate::cache::Cache;
use crate::keys;
use crate::master::Master;
use fabric_store::{Fence, Revision, Txn};

/// Records not refreshed for this long are swept (ten refresh periods: a master or agent that
/// merely restarted has long rewritten its record).
pub const MAX_AGE_SECS: u64 = 600;
/// Records deleted per transaction (with the fence, within etcd's 128 compares).
const BATCH: usize = 100;

/// Which records a sweep looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    Agents,
    Masters,
}

/// The records `now` finds stale, as (key, revision to compare), from the cache.
pub fn plan(cache: &Cache, which: Records, now: u64) -> Vec<(String, Revision)> {
    let records: Vec<(String, u64)> = match which {
        Records::Agents => cache
            .fleet
            .agents
            .iter()
            .map(|(host, r)| (keys::agent(host), r.seen))
            .collect(),
        Records::Masters => cache
            .fleet
            .masters
            .iter()
            .map(|(id, r)| (keys::master(id), r.seen))
            .collect(),
    };
    stale(records, now, MAX_AGE_SECS)
        .into_iter()
        .map(|key| {
            let revision = cache.mod_revision(&key);
            (key, revision)
        })
        .collect()
}

/// The keys among `(key, seen)` whose `seen` (Unix seconds) is more than `max_age` before
/// `now`. A `seen` in the future (another machine's clock ahead) is not stale.
pub fn stale(
    records: impl IntoIterator<Item = (String, u64)>,
    now: u64,
    max_age: u64,
) -> Vec<String> {
    records
        .into_iter()
        .filter(|(_, seen)| now.saturating_sub(*seen) > max_age)
        .map(|(key, _)| key)
        .collect()
}

/// Deletes the stale records of one kind, fenced; returns how many went.
pub async fn sweep_records(
    master: &Master,
    fence: &Fence,
    which: Records,
    now: u64,
) -> Result<usize, JobError> {
    let planned = plan(&master.cache(), which, now);
    let mut swept = 0;
    for batch in planned.chunks(BATCH) {
        let txn = batch.iter().fold(Txn::new(), |txn, (key, revision)| {
            txn.when_mod_revision(key.clone(), *revision)
                .delete(key.clone())
        });
        match commit_fenced(master, fence, txn).await? {
            Committed::Done(_) => swept += batch.len(),
            // Refreshed meanwhile: the next round plans again.
            Committed::Conflict(_) => {}
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(seen: &[(&str, u64)]) -> Vec<(String, u64)> {
        seen.iter().map(|(k, s)| (k.to_string(), *s)).collect()
    }

    #[test]
    fn only_records_older_than_the_age_are_stale() {
        let now = 10_000;
        let found = stale(
            records(&[
                ("/old", now - MAX_AGE_SECS - 1),
                ("/edge", now - MAX_AGE_SECS),
                ("/fresh", now - 5),
                ("/future", now + 60),
            ]),
            now,
            MAX_AGE_SECS,
        );
        assert_eq!(found, ["/old"]);
    }

    #[test]
    fn plans_compare_the_revision_the_cache_saw() {
        let mut cache = Cache::default();
        let old = br#"{"host":"h1","address":"10.0.0.1","seen":100}"#;
        let new = br#"{"host":"h2","address":"10.0.0.2","seen":1000}"#;
        let master = br#"{"id":"m1","url":"https://10.0.0.9:9999","seen":100}"#;
        cache.apply(7, &keys::agent("h1"), Some(old));
        cache.apply(8, &keys::agent("h2"), Some(new));
        cache.apply(9, &keys::master("m1"), Some(master));
        let now = 100 + MAX_AGE_SECS + 1;
        assert_eq!(plan(&cache, Records::Agents, now), [(keys::agent("h1"), 7)]);
        assert_eq!(
            plan(&cache, Records::Masters, now),
            [(keys::master("m1"), 9)]
        );
        assert!(plan(&cache, Records::Masters, 100).is_empty());
    }
}

//! The flow-writer: owns a cookie (value and mask) on one switch, knows which flows with that
//! cookie are installed, and turns a desired flow set into the smallest set of FLOW_MODs,
//! applied atomically.
//!
//! [`diff`] is the pure part: installed and desired flows in, FLOW_MODs out (add for new keys,
//! modify-strict for changed actions, delete-strict for stale keys), unit-tested without a
//! switch. [`FlowWriter`] reads what is installed with its cookie (flow-stats multipart) when
//! it starts, keeps that view up to date as it writes, and sends each sync's difference in one
//! ONF bundle (all or nothing) or, if asked, one barrier-fenced batch. Flows whose cookie is not
//! ours are never read, modified or deleted; the one exception OpenFlow forces is a foreign flow
//! with exactly the same table, priority and match as one of ours, which our add replaces.

use std::collections::BTreeMap;
use std::sync::Arc;

use thiserror::Error;
use tracing::{debug, info};

use crate::codec::{FlowMod, FlowStatsRequest, UndecodedFlow};
use crate::conn::{ConnError, Connection};
use crate::flow::{Flow, FlowKey};

/// How a sync's FLOW_MODs are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Atomicity {
    /// One ONF bundle, ATOMIC and ORDERED: the switch applies all of the sync or none of it.
    Bundle,
    /// One write of all FLOW_MODs followed by a BARRIER: in order, and complete when the sync
    /// returns, but a refused FLOW_MOD does not undo the others.
    BarrierBatch,
}

/// What one sync changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub added: usize,
    pub modified: usize,
    pub deleted: usize,
}

impl SyncStats {
    /// The number of FLOW_MODs sent.
    pub fn total(&self) -> usize {
        self.added + self.modified + self.deleted
    }
}

/// Why a sync (or reading the installed flows) failed.
#[derive(Debug, Error)]
pub enum WriterError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("cookie {cookie:#x}/{mask:#x} would own flows with cookie 0: OVS's default and hidden flows, and everything added without a cookie")]
    ZeroCookie { cookie: u64, mask: u64 },
    #[error("flow has cookie {:#x}, outside this writer's {cookie:#x}/{mask:#x}: {flow}", flow.cookie)]
    ForeignCookie {
        flow: Box<Flow>,
        cookie: u64,
        mask: u64,
    },
    #[error("two desired flows share a key (table, priority, match): {first} and {second}")]
    DuplicateKey { first: Box<Flow>, second: Box<Flow> },
    #[error(
        "the installed flows are not known (first use, or after a failed sync): sync the whole set"
    )]
    NotLoaded,
    #[error("{} installed flow(s) with our cookie cannot be read back: {}", .0.len(),
        .0.iter().map(|u| format!("table={} priority={} cookie={:#x}: {}", u.table, u.priority, u.cookie, u.error)).collect::<Vec<_>>().join("; "))]
    Undecodable(Vec<UndecodedFlow>),
}

/// The FLOW_MODs that turn `installed` into `desired`: adds for keys not installed,
/// modify-strict for installed keys whose instructions differ, an add for installed keys whose
/// cookie differs (modify cannot change a cookie), delete-strict for installed keys not
/// desired. Both sides are normalised first (see [`Flow::normalized`]); if `desired` holds a
/// key twice, the last flow wins. Strict operations carry the installed flow's exact cookie,
/// so they can only touch that flow. Order: adds, then modifies, then deletes, so a batch
/// applied in order never leaves a gap where traffic matched neither old nor new flow.
pub fn diff(
    installed: impl IntoIterator<Item = Flow>,
    desired: impl IntoIterator<Item = Flow>,
) -> Vec<FlowMod> {
    plan(&by_key(installed), &by_key(desired)).0
}

/// [`diff`] over flows already normalised and keyed, with what it changes counted.
fn plan(
    installed: &BTreeMap<FlowKey, Flow>,
    desired: &BTreeMap<FlowKey, Flow>,
) -> (Vec<FlowMod>, SyncStats) {
    let mut stats = SyncStats::default();
    let mut adds = Vec::new();
    let mut modifies = Vec::new();
    for (key, want) in desired {
        change(want, installed.get(key), &mut adds, &mut modifies);
    }
    let deletes: Vec<FlowMod> = installed
        .iter()
        .filter(|(key, _)| !desired.contains_key(key))
        .map(|(key, have)| FlowMod::delete_strict(key, have.cookie, u64::MAX))
        .collect();
    stats.added = adds.len();
    stats.modified = modifies.len();
    stats.deleted = deletes.len();
    (
        adds.into_iter().chain(modifies).chain(deletes).collect(),
        stats,
    )
}

/// The FLOW_MOD that makes `have` (installed under `want`'s key, if any) into `want`: an add
/// for a new key, modify-strict for changed instructions, an add for a changed cookie (modify
/// cannot change one), nothing for an equal flow.
fn change(want: &Flow, have: Option<&Flow>, adds: &mut Vec<FlowMod>, modifies: &mut Vec<FlowMod>) {
    match have {
        None => adds.push(FlowMod::add(want)),
        Some(have) if have == want => {}
        Some(have) if have.cookie == want.cookie => {
            modifies.push(FlowMod::modify_strict(want, u64::MAX))
        }
        Some(_) => modifies.push(FlowMod::add(want)),
    }
}

fn by_key(flows: impl IntoIterator<Item = Flow>) -> BTreeMap<FlowKey, Flow> {
    flows
        .into_iter()
        .map(|f| {
            let f = f.normalized();
            (f.key(), f)
        })
        .collect()
}

/// Installs desired flow sets on one switch, touching only flows with its cookie.
pub struct FlowWriter {
    conn: Arc<Connection>,
    cookie: u64,
    mask: u64,
    atomicity: Atomicity,
    /// What the switch holds with our cookie, by key; `None` when it must be read again
    /// (after a failed sync the switch may hold part of it).
    installed: Option<BTreeMap<FlowKey, Flow>>,
}

impl FlowWriter {
    /// A writer for the flows whose cookie equals `cookie` under `mask` (`u64::MAX`: exactly
    /// `cookie`). Reads what is installed with that cookie now, so the first sync after a
    /// restart sends only what changed while the agent was away.
    /// A cookie whose owned bits are all zero is refused ([`WriterError::ZeroCookie`]).
    pub async fn new(conn: Arc<Connection>, cookie: u64, mask: u64) -> Result<Self, WriterError> {
        if cookie & mask == 0 {
            return Err(WriterError::ZeroCookie { cookie, mask });
        }
        let mut w = FlowWriter {
            conn,
            cookie: cookie & mask,
            mask,
            atomicity: Atomicity::Bundle,
            installed: None,
        };
        w.refresh().await?;
        Ok(w)
    }

    /// Chooses bundles (the default) or barrier-fenced batches.
    pub fn set_atomicity(&mut self, a: Atomicity) {
        self.atomicity = a;
    }

    /// The cookie and mask this writer owns.
    pub fn cookie(&self) -> (u64, u64) {
        (self.cookie, self.mask)
    }

    /// Reads the installed flows with our cookie from the switch again.
    pub async fn refresh(&mut self) -> Result<(), WriterError> {
        self.installed = None;
        let entries = self
            .conn
            .flow_stats(FlowStatsRequest::by_cookie(self.cookie, self.mask))
            .await?;
        let mut installed = BTreeMap::new();
        let mut bad = Vec::new();
        for e in entries {
            match e {
                Ok(s) => {
                    installed.insert(s.flow.key(), s.flow);
                }
                Err(u) => bad.push(u),
            }
        }
        if !bad.is_empty() {
            return Err(WriterError::Undecodable(bad));
        }
        debug!(
            cookie = self.cookie,
            flows = installed.len(),
            "read installed flows"
        );
        self.installed = Some(installed);
        Ok(())
    }

    /// The flows this writer believes are installed (as of the last read or sync).
    pub fn installed(&self) -> impl Iterator<Item = &Flow> {
        self.installed.iter().flat_map(|m| m.values())
    }

    /// Makes the switch hold exactly `desired` among the flows with our cookie, sending only
    /// the difference, in one bundle (or one barrier-fenced batch). A sync with nothing to do
    /// sends nothing. Every desired flow must carry a cookie inside ours; two desired flows
    /// with the same key are refused.
    pub async fn sync(
        &mut self,
        desired: impl IntoIterator<Item = Flow>,
    ) -> Result<SyncStats, WriterError> {
        let started = std::time::Instant::now();
        let desired = self.check(desired)?;
        if self.installed.is_none() {
            self.refresh().await?;
        }
        let installed = self.installed.take().unwrap_or_default();
        let (mods, stats) = plan(&installed, &desired);
        self.send(mods, stats, desired, started).await
    }

    /// Like [`sync`](Self::sync), given what changed since the last desired set instead of the
    /// whole set: `removed` flows of that set leave, `added` flows arrive. A caller that keeps
    /// its previous desired set and diffs it (a merge of two sorted sets) spares the writer
    /// normalising and comparing every flow, which at ten thousand flows is most of a sync.
    /// Without a known installed set (first use, or after a failure) it fails with
    /// [`WriterError::NotLoaded`]: call `sync` with the whole set then. An added flow whose key
    /// another desired flow holds, not removed, is a [`WriterError::DuplicateKey`].
    pub async fn apply(
        &mut self,
        added: impl IntoIterator<Item = Flow>,
        removed: impl IntoIterator<Item = Flow>,
    ) -> Result<SyncStats, WriterError> {
        let started = std::time::Instant::now();
        let added = self.check(added)?;
        let removed = by_key(removed);
        let Some(mut installed) = self.installed.take() else {
            return Err(WriterError::NotLoaded);
        };
        let mut stats = SyncStats::default();
        let mut adds = Vec::new();
        let mut modifies = Vec::new();
        for (key, want) in &added {
            let have = installed.get(key);
            if let Some(have) = have.filter(|_| !removed.contains_key(key)) {
                let err = WriterError::DuplicateKey {
                    first: Box::new(have.clone()),
                    second: Box::new(want.clone()),
                };
                self.installed = Some(installed);
                return Err(err);
            }
            change(want, have, &mut adds, &mut modifies);
        }
        let deletes: Vec<FlowMod> = removed
            .keys()
            .filter(|key| !added.contains_key(*key))
            .filter_map(|key| installed.get(key))
            .map(|have| FlowMod::delete_strict(&have.key(), have.cookie, u64::MAX))
            .collect();
        stats.added = adds.len();
        stats.modified = modifies.len();
        stats.deleted = deletes.len();
        let mods: Vec<FlowMod> = adds.into_iter().chain(modifies).chain(deletes).collect();
        for key in removed.keys() {
            installed.remove(key);
        }
        installed.extend(added);
        self.send(mods, stats, installed, started).await
    }

    /// Sends a sync's FLOW_MODs; on success `after` is what the switch holds.
    async fn send(
        &mut self,
        mods: Vec<FlowMod>,
        stats: SyncStats,
        after: BTreeMap<FlowKey, Flow>,
        started: std::time::Instant,
    ) -> Result<SyncStats, WriterError> {
        if mods.is_empty() {
            self.installed = Some(after);
            return Ok(stats);
        }
        let planned = started.elapsed();
        // One FLOW_MOD is atomic by itself: a bundle would only add a round trip.
        let result = match self.atomicity {
            Atomicity::Bundle if mods.len() > 1 => self.conn.send_bundle(mods).await,
            Atomicity::Bundle | Atomicity::BarrierBatch => self.conn.send_batch(mods).await,
        };
        match result {
            Ok(()) => {
                info!(
                    cookie = self.cookie,
                    added = stats.added,
                    modified = stats.modified,
                    deleted = stats.deleted,
                    plan_ms = planned.as_millis() as u64,
                    switch_ms = (started.elapsed() - planned).as_millis() as u64,
                    "flows synced"
                );
                self.installed = Some(after);
                Ok(stats)
            }
            // The switch may hold part of the sync (batch) or none of it (bundle); either
            // way the next sync reads it again before diffing.
            Err(e) => Err(e.into()),
        }
    }

    /// Normalises the desired flows, checking cookies and duplicate keys.
    fn check(
        &self,
        desired: impl IntoIterator<Item = Flow>,
    ) -> Result<BTreeMap<FlowKey, Flow>, WriterError> {
        let mut out = BTreeMap::new();
        for f in desired {
            let f = f.normalized();
            if f.cookie & self.mask != self.cookie {
                return Err(WriterError::ForeignCookie {
                    flow: Box::new(f),
                    cookie: self.cookie,
                    mask: self.mask,
                });
            }
            let key = f.key();
            if let Some(first) = out.get(&key) {
                if *first != f {
                    return Err(WriterError::DuplicateKey {
                        first: Box::new(Flow::clone(first)),
                        second: Box::new(f),
                    });
                }
            }
            out.insert(key, f);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::codec::FlowModCommand;
    use crate::flow::{Action, Masked, Match};

    fn flow(table: u8, priority: u16, port: u32, out: u32) -> Flow {
        Flow {
            table,
            priority,
            matches: Match {
                in_port: Some(port),
                ..Match::default()
            },
            actions: vec![Action::Output(out)],
            goto_table: None,
            cookie: 0x10,
        }
    }

    #[test]
    fn nothing_to_do() {
        let a = vec![flow(0, 1, 1, 2), flow(0, 1, 2, 1)];
        assert!(diff(a.clone(), a).is_empty());
        assert!(diff(vec![], vec![]).is_empty());
    }

    #[test]
    fn adds_modifies_deletes_in_that_order() {
        let installed = vec![flow(0, 1, 1, 2), flow(0, 1, 2, 1), flow(1, 5, 3, 3)];
        let desired = vec![flow(0, 1, 1, 2), flow(0, 1, 2, 9), flow(2, 5, 3, 3)];
        let mods = diff(installed.clone(), desired.clone());
        let got: Vec<_> = mods
            .iter()
            .map(|m| (m.command, m.table, m.flow()))
            .collect();
        assert_eq!(
            got,
            vec![
                (FlowModCommand::Add, 2, flow(2, 5, 3, 3)),
                (FlowModCommand::ModifyStrict, 0, flow(0, 1, 2, 9)),
                (
                    FlowModCommand::DeleteStrict,
                    1,
                    Flow {
                        actions: vec![],
                        ..flow(1, 5, 3, 3)
                    }
                ),
            ]
        );
        // Strict operations carry the installed flow's exact cookie.
        assert!(mods[1..]
            .iter()
            .all(|m| m.cookie == 0x10 && m.cookie_mask == u64::MAX));
        let desired = vec![flow(0, 1, 1, 2), flow(0, 1, 2, 9), flow(2, 5, 3, 3)];
        assert_eq!(
            plan(&by_key(installed), &by_key(desired)).1,
            SyncStats {
                added: 1,
                modified: 1,
                deleted: 1
            }
        );
    }

    #[test]
    fn goto_and_cookie_changes() {
        let have = flow(0, 1, 1, 2);
        let mut want = have.clone();
        want.goto_table = Some(3);
        assert_eq!(
            diff(vec![have.clone()], vec![want.clone()])[0].command,
            FlowModCommand::ModifyStrict
        );
        // modify cannot change a cookie: the flow is replaced by an add.
        want.cookie = 0x11;
        let mods = diff(vec![have], vec![want.clone()]);
        assert_eq!(mods.len(), 1);
        assert_eq!(mods[0].command, FlowModCommand::Add);
        assert_eq!(mods[0].flow(), want);
    }

    #[test]
    fn compares_normalised_flows() {
        let mut want = flow(0, 1, 1, 2);
        want.matches.eth_type = Some(0x0800);
        want.matches.ipv4_dst = Some(Masked::with_mask(
            Ipv4Addr::new(10, 1, 1, 2),
            Ipv4Addr::new(255, 255, 0, 0),
        ));
        want.matches.ct_state = Some(Masked::exact(0x22));
        // What the switch reports for it.
        let have = want.normalized();
        assert_ne!(have, want);
        assert!(diff(vec![have], vec![want]).is_empty());
    }
}

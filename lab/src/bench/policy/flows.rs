//! The host's OVS flow count, polled over one OpenFlow 1.3 connection to br-int's management
//! socket (`<run>/ovs/br-int.mgmt`, what `ovs-ofctl ... unix:<mgmt>` talks to) with aggregate
//! requests (OFPMP_AGGREGATE, what `ovs-ofctl dump-aggregate` sends, any cookie): no process
//! per poll. Each change of the count is recorded with its instant.
//!
//! The poller asks only for the tables that change (the policy tables, for rules): each
//! request makes ovs-vswitchd walk the tables it names on the same thread that installs flows,
//! and walking the whole bridge (8,000 flows at the default size) back to back held up the
//! very installs being timed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use openflow::codec::FlowStatsRequest;
use openflow::Connection;

async fn connect(mgmt: &Path) -> Result<Connection> {
    Connection::connect(mgmt)
        .await
        .with_context(|| format!("OpenFlow session with {}", mgmt.display()))
}

/// The number of flows (any cookie) in br-int's `tables` over `conn`; every table when
/// `tables` is empty.
async fn flow_count(conn: &Connection, tables: &[u8]) -> Result<u64> {
    let all = [FlowStatsRequest::all().table];
    let mut sum = 0;
    for table in if tables.is_empty() { &all[..] } else { tables } {
        let req = FlowStatsRequest {
            table: *table,
            ..FlowStatsRequest::all()
        };
        let totals = conn
            .aggregate(req)
            .await
            .with_context(|| format!("aggregate request to br-int (table {table})"))?;
        sum += u64::from(totals.flow_count);
    }
    Ok(sum)
}

/// The flow count of br-int behind `mgmt`, once (a session of its own).
pub fn count(mgmt: &Path) -> Result<u64> {
    crate::bench::runtime()?.block_on(async { flow_count(&connect(mgmt).await?, &[]).await })
}

/// How many polls ran and how long one took on average: the poller's resolution when it
/// polls back to back.
#[derive(Debug, Clone, Copy, Default)]
pub struct PollCost {
    pub polls: u64,
    pub mean: Duration,
}

/// A thread polling the count until stopped (at most `limit`).
pub struct Poller {
    stop: Arc<AtomicBool>,
    changes: Arc<Mutex<Vec<(Instant, u64)>>>,
    failed: Arc<Mutex<Option<String>>>,
    handle: Option<std::thread::JoinHandle<Result<PollCost>>>,
}

impl Poller {
    /// Opens the session, then polls every `pause` after the previous reply (zero: the next
    /// request as soon as the reply is in). Fails if the session cannot be opened.
    /// Counts the flows in `tables` (every table when empty).
    pub fn start(
        mgmt: PathBuf,
        tables: Vec<u8>,
        pause: Duration,
        limit: Duration,
    ) -> Result<Poller> {
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(Mutex::new(None));
        let (s, c, f) = (stop.clone(), changes.clone(), failed.clone());
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let handle = std::thread::spawn(move || -> Result<PollCost> {
            let polled = poll(&mgmt, &tables, pause, limit, &s, &c, &ready_tx);
            if let Err(e) = &polled {
                // Seen by `start` if the session never came up, by `settle` otherwise.
                let _ = ready_tx.send(Err(format!("{e:#}")));
                if let Ok(mut slot) = f.lock() {
                    *slot = Some(format!("{e:#}"));
                }
            }
            polled
        });
        let poller = Poller {
            stop,
            changes,
            failed,
            handle: Some(handle),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(poller),
            Ok(Err(e)) => bail!("the flow poller: {e}"),
            Err(_) => bail!("the flow poller ended before its session was up"),
        }
    }

    /// The last change so far: its instant and the count.
    pub fn last(&self) -> Option<(Instant, u64)> {
        self.changes.lock().ok()?.last().copied()
    }

    /// Waits until the count has not changed for `quiet` since `after` (at most `limit`); the
    /// last change.
    pub fn settle(
        &self,
        after: Instant,
        quiet: Duration,
        limit: Duration,
    ) -> Result<(Instant, u64)> {
        let until = Instant::now() + limit;
        while Instant::now() < until && !crate::bench::attach::stopping() {
            if let Some(e) = self.failed.lock().ok().and_then(|f| f.clone()) {
                bail!("the flow poller failed: {e}");
            }
            if let Some((at, n)) = self.last() {
                if at.max(after).elapsed() >= quiet {
                    return Ok((at, n));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("the flow count did not settle within {limit:?}")
    }

    /// Stops the thread; the polls it made and their mean time.
    pub fn stop(mut self) -> Result<PollCost> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("the flow poller panicked"),
            None => Ok(PollCost::default()),
        }
    }
}

/// The poller thread's body: one session, aggregate requests until `stop` or `limit`.
fn poll(
    mgmt: &Path,
    tables: &[u8],
    pause: Duration,
    limit: Duration,
    stop: &AtomicBool,
    changes: &Mutex<Vec<(Instant, u64)>>,
    ready: &mpsc::Sender<Result<(), String>>,
) -> Result<PollCost> {
    crate::bench::runtime()?.block_on(async {
        let conn = connect(mgmt).await?;
        // One round trip before saying ready: the first poll measures a warm session.
        flow_count(&conn, tables).await?;
        let _ = ready.send(Ok(()));
        let until = Instant::now() + limit;
        let (mut last, mut polls, mut busy) = (None, 0u64, Duration::ZERO);
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let sent = Instant::now();
            let n = flow_count(&conn, tables).await?;
            let at = Instant::now();
            polls += 1;
            busy += at - sent;
            if last != Some(n) {
                last = Some(n);
                changes
                    .lock()
                    .map_err(|_| anyhow!("the change list is poisoned"))?
                    .push((at, n));
            }
        }
        let mean = Duration::from_secs_f64(busy.as_secs_f64() / polls.max(1) as f64);
        Ok(PollCost { polls, mean })
    })
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

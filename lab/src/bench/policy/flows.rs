//! The host's OVS flow count, polled in a tight loop through `ovs-ofctl dump-aggregate` on
//! br-int's management socket; each change of the count is recorded with its instant.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The flow count of br-int behind `mgmt` (`<run>/ovs/br-int.mgmt`).
pub fn count(mgmt: &Path) -> Result<u64> {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "dump-aggregate"])
        .arg(format!("unix:{}", mgmt.display()))
        .output()
        .context("running ovs-ofctl")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "ovs-ofctl dump-aggregate: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("flow_count="))
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no flow_count in: {text}"))
}

/// A thread polling the count until stopped (at most `limit`).
pub struct Poller {
    stop: Arc<AtomicBool>,
    changes: Arc<Mutex<Vec<(Instant, u64)>>>,
    handle: Option<std::thread::JoinHandle<Result<usize>>>,
}

impl Poller {
    /// Polls every `pause` after the previous poll returned (zero: a tight loop).
    pub fn start(mgmt: PathBuf, pause: Duration, limit: Duration) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(Mutex::new(Vec::new()));
        let (s, c) = (stop.clone(), changes.clone());
        let handle = std::thread::spawn(move || -> Result<usize> {
            let until = Instant::now() + limit;
            let (mut last, mut polls) = (None, 0);
            while !s.load(Ordering::Relaxed) && Instant::now() < until {
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
                let n = count(&mgmt)?;
                let at = Instant::now();
                polls += 1;
                if last != Some(n) {
                    last = Some(n);
                    if let Ok(mut list) = c.lock() {
                        list.push((at, n));
                    }
                }
            }
            Ok(polls)
        });
        Poller {
            stop,
            changes,
            handle: Some(handle),
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
            if let Some((at, n)) = self.last() {
                if at.max(after).elapsed() >= quiet {
                    return Ok((at, n));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("the flow count did not settle within {limit:?}")
    }

    /// Stops the thread; the number of polls it made.
    pub fn stop(mut self) -> Result<usize> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("the flow poller panicked"),
            None => Ok(0),
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

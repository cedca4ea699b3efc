//! Slows down password guessing: failed attempts are counted per key (a username, a source
//! address); after [`FREE_FAILURES`] in a row (an address: [`FREE_FAILURES_PER_ADDRESS`], since
//! many users may share one behind a NAT) the key must wait before its next try, doubling
//! with each further failure up to [`MAX_WAIT`]. Keys are independent, so a user under attack
//! does not lock out anyone else, and an address spraying many usernames is held back by its
//! own key. A success clears the key. Counts live in memory, per master, and fade after
//! [`FORGET_AFTER`] without failures.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const FREE_FAILURES: u32 = 5;
pub const FREE_FAILURES_PER_ADDRESS: u32 = 20;
pub const MAX_WAIT: Duration = Duration::from_secs(300);
pub const FORGET_AFTER: Duration = Duration::from_secs(900);
/// Keys kept at most; past this the stalest go first (an attacker minting usernames cannot
/// grow memory, and its address keeps its own count).
const MAX_KEYS: usize = 20_000;

#[derive(Debug, Default)]
pub struct Throttle {
    keys: Mutex<HashMap<String, (u32, Instant)>>,
}

fn wait_after(key: &str, failures: u32) -> Duration {
    let free = if key.starts_with("addr:") {
        FREE_FAILURES_PER_ADDRESS
    } else {
        FREE_FAILURES
    };
    if failures < free {
        return Duration::ZERO;
    }
    let doublings = (failures - free).min(16);
    Duration::from_secs(1u64 << doublings).min(MAX_WAIT)
}

impl Throttle {
    /// `Err(wait)` while `key` must still wait before its next attempt.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let Some(&(failures, last)) = keys.get(key) else {
            return Ok(());
        };
        let since = now.saturating_duration_since(last);
        if since >= FORGET_AFTER {
            return Ok(());
        }
        let wait = wait_after(key, failures);
        if since < wait {
            return Err(wait - since);
        }
        Ok(())
    }

    pub fn fail(&self, key: &str, now: Instant) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            keys.retain(|_, (_, last)| now.saturating_duration_since(*last) < FORGET_AFTER);
            if keys.len() >= MAX_KEYS {
                if let Some(stalest) = keys
                    .iter()
                    .min_by_key(|(_, (_, l))| *l)
                    .map(|(k, _)| k.clone())
                {
                    keys.remove(&stalest);
                }
            }
        }
        let entry = keys.entry(key.to_string()).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
    }

    pub fn succeed(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_per_key_and_clear() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert!(t.check("u:alice", now).is_ok());
            t.fail("u:alice", now);
        }
        assert_eq!(t.check("u:alice", now), Err(Duration::from_secs(1)));
        assert!(t.check("u:bob", now).is_ok(), "other keys are not held");
        assert!(t.check("u:alice", now + Duration::from_secs(1)).is_ok());
        t.fail("u:alice", now + Duration::from_secs(1));
        assert_eq!(
            t.check("u:alice", now + Duration::from_secs(1)),
            Err(Duration::from_secs(2))
        );
        assert!(t.check("u:alice", now + FORGET_AFTER * 2).is_ok());
        t.succeed("u:alice");
        assert!(t.check("u:alice", now + Duration::from_secs(1)).is_ok());
    }
}

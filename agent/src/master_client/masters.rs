//! The masters of one control plane as the agent's client sees them: the URLs configured with
//! `--netmaster` (comma-separated), then those learned from heartbeat answers, and which one
//! requests go to first. A request starts at the current master and moves to the next when that
//! one fails ([`Repeat`] says when it may); the master that answers becomes current, so a dead
//! master costs one failed attempt, not one per request. Learned masters are only ever added:
//! the configured ones stay whatever the masters say, so an agent never talks itself out of the
//! masters its operator gave it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

/// Whether a request may go to the next master after the one it went to failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Safe to repeat whatever happened: reads, and writes that are idempotent by design.
    Always,
    /// Repeat only when it cannot have been applied: no connection was made (TLS included), or
    /// the master answered 503 (it refuses before doing anything).
    IfNotApplied,
}

/// How an attempt at one master ended, when it was not an answer to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The master may have carried the request out.
    pub maybe_applied: bool,
    /// Why, for logs and the final error.
    pub reason: String,
}

impl Failure {
    /// Whether the request may go on to the next master.
    pub fn allows(&self, repeat: Repeat) -> bool {
        repeat == Repeat::Always || !self.maybe_applied
    }
}

/// A 5xx answer is the master failing, not answering; 503 is answered before any work (its
/// connection cap, a store or signing key not ready), any other 5xx may follow a store write
/// whose outcome is unknown.
pub fn status_failure(status: u16, message: &str) -> Option<Failure> {
    (500..=599).contains(&status).then(|| Failure {
        maybe_applied: status != 503,
        reason: format!("HTTP {status}: {message}"),
    })
}

/// `--netmaster`'s URLs: comma-separated, trailing `/` dropped, empty items and duplicates
/// skipped.
pub fn parse_list(list: &str) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for url in list
        .split(',')
        .map(|u| u.trim().trim_end_matches('/'))
        .filter(|u| !u.is_empty())
    {
        if !urls.iter().any(|known| known == url) {
            urls.push(url.to_string());
        }
    }
    urls
}

/// Whether `url` is one the client can talk to at all.
pub fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

/// Whether `url`'s host is a wildcard address (`0.0.0.0`, `[::]`): a master listening on every
/// address advertises that when it has no `--control-url`, and it names no master to reach.
pub fn is_wildcard_host(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

/// The list and the current master.
#[derive(Debug)]
pub struct Masters {
    urls: RwLock<Vec<String>>,
    current: AtomicUsize,
}

impl Masters {
    /// `urls` must not be empty (the caller checks the flag).
    pub fn new(urls: Vec<String>) -> Masters {
        Masters {
            urls: RwLock::new(urls),
            current: AtomicUsize::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<String>> {
        // A panic while holding the lock leaves a plain list behind: still usable.
        self.urls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every master, in the order given then learned.
    pub fn all(&self) -> Vec<String> {
        self.read().clone()
    }

    /// The masters in the order one request tries them: the current one first, then the
    /// others in list order, each once. Paired with their index for [`Masters::answered`] and
    /// [`Masters::failed`].
    pub fn order(&self) -> Vec<(usize, String)> {
        let urls = self.read();
        let count = urls.len();
        let start = self.current.load(Ordering::Relaxed) % count.max(1);
        (0..count)
            .map(|step| {
                let index = (start + step) % count;
                (index, urls[index].clone())
            })
            .collect()
    }

    /// The master at `index` answered: requests go there first.
    pub fn answered(&self, index: usize) {
        self.current.store(index, Ordering::Relaxed);
    }

    /// The master at `index` failed: requests go to the next one first, unless another
    /// request already moved on (so two failures at once do not skip a master).
    pub fn failed(&self, index: usize) {
        let count = self.read().len().max(1);
        let _ = self.current.compare_exchange(
            index,
            (index + 1) % count,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Adds the URLs not known yet that `allowed` accepts; the ones added. Nothing is removed.
    pub fn learn(&self, urls: &[String], allowed: impl Fn(&str) -> bool) -> Vec<String> {
        let mut list = self
            .urls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut added = Vec::new();
        for url in urls {
            let url = url.trim().trim_end_matches('/');
            if url.is_empty() || list.iter().any(|known| known == url) || !allowed(url) {
                continue;
            }
            list.push(url.to_string());
            added.push(url.to_string());
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masters(list: &str) -> Masters {
        Masters::new(parse_list(list))
    }

    fn urls(order: &[(usize, String)]) -> Vec<&str> {
        order.iter().map(|(_, u)| u.as_str()).collect()
    }

    #[test]
    fn lists_are_split_trimmed_and_deduplicated() {
        assert_eq!(
            parse_list(" https://a:9999/ ,https://b:9999,, https://a:9999"),
            ["https://a:9999", "https://b:9999"]
        );
        assert!(parse_list(" , ").is_empty());
        assert!(is_http_url("https://10.0.0.1:9999"));
        assert!(is_http_url("http://[::1]:9999"));
        for bad in ["10.0.0.1:9999", "ftp://a", "https://", "https:///x"] {
            assert!(!is_http_url(bad), "{bad}");
        }
        assert!(is_wildcard_host("https://0.0.0.0:9999"));
        assert!(is_wildcard_host("https://[::]:9999/"));
        assert!(!is_wildcard_host("https://10.0.0.1:9999"));
        assert!(!is_wildcard_host("https://master:9999"));
    }

    #[test]
    fn a_failed_master_sends_the_next_requests_to_the_next_one() {
        let m = masters("http://a,http://b,http://c");
        assert_eq!(urls(&m.order()), ["http://a", "http://b", "http://c"]);
        m.failed(0);
        assert_eq!(urls(&m.order()), ["http://b", "http://c", "http://a"]);
        // A second failure of a, reported late, does not skip b.
        m.failed(0);
        assert_eq!(urls(&m.order())[0], "http://b");
        m.failed(1);
        m.failed(2);
        assert_eq!(urls(&m.order())[0], "http://a", "wraps around");
        m.answered(2);
        assert_eq!(urls(&m.order()), ["http://c", "http://a", "http://b"]);
    }

    #[test]
    fn learned_masters_are_added_never_removed() {
        let m = masters("https://a:9999");
        let learned = vec![
            "https://b:9999/".to_string(),
            "https://a:9999".to_string(),
            "http://plain:9999".to_string(),
        ];
        let added = m.learn(&learned, |u| u.starts_with("https://"));
        assert_eq!(added, ["https://b:9999"]);
        assert_eq!(m.all(), ["https://a:9999", "https://b:9999"]);
        // A master list without a configured one removes nothing.
        assert!(m
            .learn(&["https://b:9999".to_string()], |_| true)
            .is_empty());
        assert_eq!(m.all(), ["https://a:9999", "https://b:9999"]);
    }

    #[test]
    fn which_failures_allow_a_write_to_move_on() {
        let busy = status_failure(503, "connection limit").unwrap();
        assert!(!busy.maybe_applied);
        assert!(busy.allows(Repeat::IfNotApplied));
        let broken = status_failure(500, "store: timeout").unwrap();
        assert!(broken.maybe_applied);
        assert!(!broken.allows(Repeat::IfNotApplied));
        assert!(broken.allows(Repeat::Always));
        assert_eq!(
            status_failure(409, "taken"),
            None,
            "an answer, not a failure"
        );
        assert_eq!(status_failure(200, ""), None);
    }
}

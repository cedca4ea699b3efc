//! `lab bench failover`: two netmasters on one etcd, all on loopback; each run SIGKILLs the
//! leader and times how long until the other leads and has run its first leader-only jobs,
//! then restarts the killed one (same data directory and id) as a follower for the next run.
//!
//! What is measured, and how: the bench notes the wall clock (Unix ms) just before it sends
//! SIGKILL; the survivor's `/info` reports, from the same machine's clock, when its term began
//! (`leaderSince`) and when its first round of leader-only jobs finished (`leaderJobsAt`). The
//! figures are the differences, so how often `/info` is polled (every 20 ms) does not enter
//! them. Before each kill the bench writes a stale agent record (seen an hour ago) straight into
//! etcd (its JSON gateway); the new leader's first round must have deleted it, in a fenced
//! transaction, which the bench checks: the "first job" is real work committed under the new
//! leader's fence, not a no-op. Each kill waits a random part of a renewal period first, so the
//! kills sample the leader's renewal cycle instead of all landing at one point of it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde::Deserialize;

use lab::auth::Access;

use super::daemon::{self, Daemon, Security};

#[derive(clap::Args, Debug)]
pub struct FailoverArgs {
    /// Failovers to measure.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// The masters' `--leader-lease`, seconds.
    #[arg(long, default_value_t = 5)]
    lease: u64,
    /// How the bench reaches the masters: tls-token (the product), token or plain.
    #[arg(long, value_enum, default_value = "tls-token")]
    security: Security,
    /// The netmaster binary (default: next to lab, then on PATH).
    #[arg(long)]
    netmaster: Option<PathBuf>,
}

/// The issue's target: a new leader within this long of the old one's death.
const TARGET: Duration = Duration::from_secs(10);
/// Bound on any one wait (a leader, a restart): far beyond the target, so a miss is measured.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// The part of `/info` the bench reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    leader: bool,
    leader_id: Option<String>,
    leader_since: Option<u64>,
    leader_jobs_at: Option<u64>,
}

/// One of the two masters: its directory and id stay across restarts.
struct Master {
    id: String,
    dir: PathBuf,
    running: Option<(Daemon, Access)>,
}

struct Setup<'a> {
    netmaster: &'a Path,
    etcd_url: &'a str,
    security: Security,
    lease: u64,
}

impl Setup<'_> {
    fn start(&self, master: &mut Master) -> Result<()> {
        let flags = [
            "--master-id".to_string(),
            master.id.clone(),
            "--leader-lease".to_string(),
            self.lease.to_string(),
            // No BGP: this bench is about the REST side's leadership.
            "--reflector-listen".to_string(),
            "off".to_string(),
        ];
        let started = daemon::netmaster_with(
            self.netmaster,
            &master.dir,
            Some(self.etcd_url),
            self.security,
            &flags,
        )
        .with_context(|| format!("starting master {}", master.id))?;
        master.running = Some(started);
        Ok(())
    }
}

/// One failover.
struct Run {
    killed: String,
    elected_ms: u64,
    jobs_ms: u64,
}

pub fn run(args: &FailoverArgs) -> Result<i32> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let netmaster = match &args.netmaster {
        Some(path) => path.clone(),
        None => super::own_binary("netmaster").context(
            "netmaster not found next to lab or on PATH: cargo build --release -p netmaster",
        )?,
    };
    let etcd_bin = super::system_program("etcd", "etcd-server")?;
    let dir = tempfile::Builder::new()
        .prefix("lab-bench-failover-")
        .tempdir()
        .context("creating a temporary directory")?;
    let (_etcd, etcd_url) = daemon::etcd(&etcd_bin, dir.path())?;
    let setup = Setup {
        netmaster: &netmaster,
        etcd_url: &etcd_url,
        security: args.security,
        lease: args.lease,
    };
    println!("netmaster: {}", netmaster.display());
    println!("etcd:      {}", etcd_bin.display());
    println!(
        "Two masters on one etcd (loopback, {}), --leader-lease {}; each run SIGKILLs the leader. \
         Times from the kill to the survivor's term start (elected) and to the end of its first \
         round of leader-only jobs, which must delete a stale agent record under its fence.",
        args.security.name(),
        args.lease
    );
    // Declared after etcd: dropped (killed) before it.
    let mut masters = Vec::new();
    for i in 0..2 {
        let master_dir = dir.path().join(format!("m{i}"));
        std::fs::create_dir_all(&master_dir)?;
        if i > 0 {
            // The first master created the admin on the shared store with its password.
            let password = "admin-password";
            std::fs::copy(
                dir.path().join("m0").join(password),
                master_dir.join(password),
            )
            .context("sharing the admin password")?;
        }
        let mut master = Master {
            id: format!("bench-m{i}"),
            dir: master_dir,
            running: None,
        };
        setup.start(&mut master)?;
        masters.push(master);
    }
    println!(
        "{:>4}  {:<9} {:>12} {:>15}",
        "run", "killed", "elected ms", "first jobs ms"
    );
    let mut runs = Vec::new();
    for n in 1..=args.runs {
        let run = failover(&setup, &mut masters, n).with_context(|| format!("run {n}"))?;
        println!(
            "{n:>4}  {:<9} {:>12} {:>15}",
            run.killed, run.elected_ms, run.jobs_ms
        );
        runs.push(run);
    }
    let elected = summary(runs.iter().map(|r| r.elected_ms));
    let jobs = summary(runs.iter().map(|r| r.jobs_ms));
    println!(
        "elected:                  p50 {:>6} ms, max {:>6} ms",
        elected.0, elected.1
    );
    println!(
        "first leader-only jobs:   p50 {:>6} ms, max {:>6} ms",
        jobs.0, jobs.1
    );
    let met = Duration::from_millis(jobs.1) < TARGET;
    println!(
        "target (new leader at work within {TARGET:?} of the kill, every run): {}",
        if met { "met" } else { "missed" }
    );
    Ok(if met { 0 } else { 1 })
}

/// p50 and max.
fn summary(values: impl Iterator<Item = u64>) -> (u64, u64) {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    let p50 = values
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0);
    (p50, values.last().copied().unwrap_or(0))
}

fn failover(setup: &Setup, masters: &mut [Master], n: usize) -> Result<Run> {
    let leader = settled_leader(masters)?;
    let survivor = 1 - leader;
    let stale = format!("/contiv/agents/bench-gone-{n}");
    let seen = now_ms() / 1000 - 3600;
    let record = format!(r#"{{"host":"bench-gone-{n}","address":"10.255.0.{n}","seen":{seen}}}"#);
    etcd_put(setup.etcd_url, &stale, &record)?;
    // The leader renews every third of its lease; runs follow each other at a steady pace, so
    // without this every kill would land at the same point of that cycle (and measure one
    // remaining lease). A delay below a renewal period spreads them over the cycle.
    std::thread::sleep(jitter(Duration::from_secs(setup.lease) / 3));
    let killed_ms = now_ms();
    if let Some((mut daemon, _)) = masters[leader].running.take() {
        daemon.stop();
    }
    let access = match &masters[survivor].running {
        Some((_, access)) => access.clone(),
        None => bail!("master {} is not running", masters[survivor].id),
    };
    let until = Instant::now() + WAIT;
    let info = loop {
        if let Ok(info) = info(&access) {
            if info.leader && info.leader_jobs_at.is_some() {
                break info;
            }
        }
        if Instant::now() > until {
            bail!(
                "{} did not lead within {WAIT:?} of the kill",
                masters[survivor].id
            );
        }
        std::thread::sleep(POLL);
    };
    let since = |at: Option<u64>| at.unwrap_or(killed_ms).saturating_sub(killed_ms);
    let run = Run {
        killed: masters[leader].id.clone(),
        elected_ms: since(info.leader_since),
        jobs_ms: since(info.leader_jobs_at),
    };
    if etcd_exists(setup.etcd_url, &stale)? {
        bail!("the new leader's first round did not sweep the stale record {stale}");
    }
    setup.start(&mut masters[leader])?;
    Ok(run)
}

/// Which master leads once exactly one does, has run its first jobs, and the other names it.
fn settled_leader(masters: &[Master]) -> Result<usize> {
    let until = Instant::now() + WAIT;
    loop {
        let infos: Vec<Option<Info>> = masters
            .iter()
            .map(|m| m.running.as_ref().and_then(|(_, a)| info(a).ok()))
            .collect();
        let leading: Vec<usize> = (0..infos.len())
            .filter(|&i| {
                infos[i]
                    .as_ref()
                    .is_some_and(|i| i.leader && i.leader_jobs_at.is_some())
            })
            .collect();
        if let [one] = leading[..] {
            let followers_agree = infos.iter().enumerate().all(|(i, info)| {
                i == one
                    || info.as_ref().and_then(|i| i.leader_id.as_deref())
                        == Some(masters[one].id.as_str())
            });
            if followers_agree {
                return Ok(one);
            }
        }
        if Instant::now() > until {
            bail!("no settled leader within {WAIT:?}: {infos:?}");
        }
        std::thread::sleep(POLL);
    }
}

fn info(access: &Access) -> Result<Info> {
    let agent = access.agent(Duration::from_secs(2))?;
    let (status, text) = access.request(&agent, "GET", "/info", None)?;
    if status != 200 {
        bail!("GET /info: {status} {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("GET /info: {text}"))
}

/// A duration in `0..below`, from the clock's nanoseconds (no need for a better source).
fn jitter(below: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let below_ms = below.as_millis().max(1) as u64;
    Duration::from_millis(u64::from(nanos) % below_ms)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A put through etcd's JSON gateway (`/v3/kv/put`), as another writer would.
fn etcd_put(url: &str, key: &str, value: &str) -> Result<()> {
    let body = serde_json::json!({"key": b64(key), "value": b64(value)}).to_string();
    let (status, text) = etcd_post(url, "/v3/kv/put", &body)?;
    if status != 200 {
        bail!("etcd put {key}: {status} {text}");
    }
    Ok(())
}

fn etcd_exists(url: &str, key: &str) -> Result<bool> {
    let body = serde_json::json!({"key": b64(key), "count_only": true}).to_string();
    let (status, text) = etcd_post(url, "/v3/kv/range", &body)?;
    if status != 200 {
        bail!("etcd range {key}: {status} {text}");
    }
    let reply: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("etcd range {key}: {text}"))?;
    // The gateway writes int64 as strings and leaves zero out.
    Ok(reply["count"].as_str().is_some_and(|c| c != "0"))
}

fn etcd_post(url: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let agent = super::rest::agent(Duration::from_secs(5));
    let mut resp = agent
        .post(&format!("{url}{path}"))
        .header("Content-Type", "application/json")
        .send(body)
        .with_context(|| format!("POST {url}{path}"))?;
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Ok((resp.status().as_u16(), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_the_median_and_the_max() {
        assert_eq!(summary([5, 1, 3].into_iter()), (3, 5));
        assert_eq!(summary([4, 1, 3, 2].into_iter()), (2, 4));
        assert_eq!(summary(std::iter::empty()), (0, 0));
    }

    #[test]
    fn info_reads_the_leader_fields() {
        let info: Info = serde_json::from_str(
            r#"{"leader":true,"leaderId":"m1","leaderSince":5,"leaderJobsAt":7,"revision":3}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(info.leader);
        assert_eq!(info.leader_id.as_deref(), Some("m1"));
        assert_eq!((info.leader_since, info.leader_jobs_at), (Some(5), Some(7)));
    }
}

//! `lab bench rest`: N policy+rule pairs created through netmaster's REST API, on the embedded
//! store and on etcd side by side in one run. Every measurement starts a fresh netmaster on a
//! fresh store (a new data directory; a new etcd), all on loopback, and removes it after.
//! Sequential runs use one keep-alive connection; concurrent runs one connection per client.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use super::daemon;

#[derive(clap::Args, Debug)]
pub struct RestArgs {
    /// Numbers of policy+rule pairs, comma separated (each pair is two objects).
    #[arg(long, value_delimiter = ',', default_value = "1000,3000")]
    n: Vec<usize>,
    /// Connections of the concurrent variant; 0 runs only the single-connection one.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Measure each cell this many times and show the run with the median rate (the machine's
    /// other load makes single runs noisy: a durable write costs about one fsync).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Run one store only.
    #[arg(long, value_enum)]
    store: Option<StoreKind>,
    /// The netmaster binary (default: next to lab, then on PATH).
    #[arg(long)]
    netmaster: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    Embedded,
    Etcd,
}

/// An HTTP client whose answers are answers (4xx/5xx are not transport errors).
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

/// One measured run.
struct Measure {
    objects: usize,
    secs: f64,
    /// Request latencies, sorted, in seconds.
    latencies: Vec<f64>,
}

impl Measure {
    fn rate(&self) -> f64 {
        self.objects as f64 / self.secs
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or(0.0) * 1000.0
    }

    fn cell(&self) -> String {
        format!(
            "{:>7.0} ({:.1}/{:.1})",
            self.rate(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.99)
        )
    }
}

fn post(agent: &ureq::Agent, url: &str, body: &str) -> Result<()> {
    let mut resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    if status != 200 {
        bail!("POST {url} answered {status}: {text}");
    }
    Ok(())
}

fn count(agent: &ureq::Agent, url: &str) -> Result<usize> {
    let mut resp = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let text = resp.body_mut().read_to_string()?;
    let list: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("GET {url}: {text}"))?;
    match list.as_array() {
        Some(items) => Ok(items.len()),
        None => bail!("GET {url}: not a list: {text}"),
    }
}

/// Client `c` of `clients` creates pairs `c, c + clients, ...` below `n`, over one connection.
fn client(base: &str, n: usize, c: usize, clients: usize) -> Result<Vec<f64>> {
    let agent = agent(Duration::from_secs(30));
    // Open the connection before the clock starts.
    count(&agent, &format!("{base}/api/v1/tenants/"))?;
    let mut latencies = Vec::with_capacity(2 * n / clients + 2);
    for i in (c..n).step_by(clients) {
        let policy = format!("{base}/api/v1/policys/default:bench-{i}/");
        let rule = format!("{base}/api/v1/rules/default:bench-{i}:1/");
        let rule_body = format!(
            r#"{{"direction":"in","protocol":"tcp","port":{},"action":"allow"}}"#,
            1 + i % 65535
        );
        for (url, body) in [(policy, "{}".to_string()), (rule, rule_body)] {
            let t = Instant::now();
            post(&agent, &url, &body)?;
            latencies.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(latencies)
}

/// Fresh store, fresh netmaster, N pairs by `clients` connections; checks they all exist.
fn measure(netmaster: &Path, etcd: Option<&Path>, n: usize, clients: usize) -> Result<Measure> {
    let dir = tempfile::Builder::new()
        .prefix("lab-bench-rest-")
        .tempdir()
        .context("creating a temporary directory")?;
    // Dropped in reverse order: netmaster first, then etcd, then the directory.
    let etcd = match etcd {
        Some(binary) => Some(daemon::etcd(binary, dir.path())?),
        None => None,
    };
    let (_master, base) = daemon::netmaster(
        netmaster,
        dir.path(),
        etcd.as_ref().map(|(_, url)| url.as_str()),
    )?;
    let started = Instant::now();
    let results: Vec<Result<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let base = base.as_str();
                s.spawn(move || client(base, n, c, clients))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a client thread panicked"))
            })
            .collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for r in results {
        latencies.extend(r?);
    }
    latencies.sort_by(f64::total_cmp);
    let check = agent(Duration::from_secs(30));
    let policies = count(&check, &format!("{base}/api/v1/policys/"))?;
    let rules = count(&check, &format!("{base}/api/v1/rules/"))?;
    if (policies, rules) != (n, n) {
        bail!("created {n} pairs but the master lists {policies} policies and {rules} rules");
    }
    Ok(Measure {
        objects: 2 * n,
        secs,
        latencies,
    })
}

/// The median time of a 4 KiB write + fdatasync in a temporary directory (where the stores
/// live): a durable write cannot be faster, so it puts the figures in context.
fn fsync_p50_ms() -> Result<f64> {
    let dir = tempfile::Builder::new()
        .prefix("lab-bench-fsync-")
        .tempdir()?;
    let mut file = std::fs::File::create(dir.path().join("probe"))?;
    let block = [0u8; 4096];
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

pub fn run(args: &RestArgs) -> Result<i32> {
    let netmaster = match &args.netmaster {
        Some(path) => path.clone(),
        None => super::own_binary("netmaster").context(
            "netmaster not found next to lab or on PATH: cargo build --release -p netmaster",
        )?,
    };
    let stores: Vec<StoreKind> = match args.store {
        Some(one) => vec![one],
        None => vec![StoreKind::Embedded, StoreKind::Etcd],
    };
    let etcd = if stores.contains(&StoreKind::Etcd) {
        Some(super::system_program("etcd", "etcd-server")?)
    } else {
        None
    };
    let mut conns = vec![1];
    if args.clients > 1 {
        conns.push(args.clients);
    }
    println!("netmaster: {}", netmaster.display());
    if let Some(etcd) = &etcd {
        println!("etcd:      {}", etcd.display());
    }
    println!(
        "fdatasync of 4 KiB in {}: p50 {:.2} ms",
        std::env::temp_dir().display(),
        fsync_p50_ms().context("probing fdatasync")?
    );
    println!(
        "Each run: a fresh netmaster on a fresh store, N policies and N rules (2N objects) created \
         over `conns` keep-alive connections.\nCells: objects/s (request latency p50/p99 ms), the \
         median of {} run(s).",
        args.repeat.max(1)
    );
    print!("{:>6} {:>5}", "N", "conns");
    for s in &stores {
        print!(" {:>24}", format!("{s:?}").to_lowercase());
    }
    if stores.len() == 2 {
        print!(" {:>14}", "embedded/etcd");
    }
    println!();
    let mut rates: Vec<(usize, usize, StoreKind, f64)> = Vec::new();
    for &n in &args.n {
        for &c in &conns {
            print!("{n:>6} {c:>5}");
            let mut row = Vec::new();
            for &s in &stores {
                let etcd_bin = (s == StoreKind::Etcd).then_some(etcd.as_deref()).flatten();
                std::io::stdout().flush().ok();
                let mut runs = Vec::new();
                for _ in 0..args.repeat.max(1) {
                    runs.push(
                        measure(&netmaster, etcd_bin, n, c)
                            .with_context(|| format!("{s:?} store, N={n}, {c} connections"))?,
                    );
                }
                runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
                let m = &runs[runs.len() / 2];
                print!(" {:>24}", m.cell());
                rates.push((n, c, s, m.rate()));
                row.push(m.rate());
            }
            if let [embedded, etcd] = row[..] {
                print!(" {:>14.2}", embedded / etcd);
            }
            println!();
        }
    }
    // Does the rate hold as the store grows? Each N against the smallest.
    if let Some(&first) = args.n.first() {
        for &n in args.n.iter().skip(1) {
            for &(_, c, s, base_rate) in rates.iter().filter(|r| r.0 == first) {
                if let Some(&(_, _, _, rate)) =
                    rates.iter().find(|r| r.0 == n && r.1 == c && r.2 == s)
                {
                    println!(
                        "{:<8} {c} conn(s): rate at N={n} is {:.0}% of the rate at N={first}",
                        format!("{s:?}").to_lowercase(),
                        100.0 * rate / base_rate
                    );
                }
            }
        }
    }
    Ok(0)
}

//! `lab bench rest`: N policy+rule pairs created through netmaster's REST API, on the embedded
//! store and on etcd side by side in one run. Every measurement starts a fresh netmaster on a
//! fresh store (a new data directory; a new etcd), all on loopback, and removes it after.
//! Three ways of talking to it: HTTP/1.1 over one keep-alive connection, one request at a time;
//! HTTP/1.1 over one connection per client; one HTTP/2 connection with K requests in flight.
//! Each run checks on the master's side (`netmaster_http_connections_total`) that it used
//! exactly the connections it claims.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use super::daemon;
use super::h2::H2;

#[derive(clap::Args, Debug)]
pub struct RestArgs {
    /// Numbers of policy+rule pairs, comma separated (each pair is two objects).
    #[arg(long, value_delimiter = ',', default_value = "1000,3000")]
    n: Vec<usize>,
    /// Connections of the concurrent HTTP/1.1 variant; 0 or 1 leaves it out.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests in flight on the one HTTP/2 connection of the HTTP/2 variant; 0 leaves it out.
    #[arg(long, default_value_t = 16)]
    streams: usize,
    /// Measure each cell this many times, in rounds that each measure every cell once, and show
    /// the run with the median rate (the machine's other load makes single runs noisy: a
    /// durable write costs about one fsync).
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

/// How a run talks to the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// HTTP/1.1, one keep-alive connection per client, one request at a time on each.
    Http1 { conns: usize },
    /// One HTTP/2 connection with `streams` requests in flight.
    Http2 { streams: usize },
}

impl Variant {
    fn connections(self) -> usize {
        match self {
            Variant::Http1 { conns } => conns,
            Variant::Http2 { .. } => 1,
        }
    }

    fn in_flight(self) -> usize {
        match self {
            Variant::Http1 { conns } => conns,
            Variant::Http2 { streams } => streams,
        }
    }

    fn protocol(self) -> &'static str {
        match self {
            Variant::Http1 { .. } => "http/1.1",
            Variant::Http2 { .. } => "h2c",
        }
    }

    fn describe(self) -> String {
        format!(
            "{} {} conn(s) {} in flight",
            self.protocol(),
            self.connections(),
            self.in_flight()
        )
    }
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

/// Pair `i`: its policy, then its rule (the policy must exist first), as (path, body).
fn pair(i: usize) -> [(String, String); 2] {
    [
        (
            format!("/api/v1/policys/default:bench-{i}/"),
            "{}".to_string(),
        ),
        (
            format!("/api/v1/rules/default:bench-{i}:1/"),
            format!(
                r#"{{"direction":"in","protocol":"tcp","port":{},"action":"allow"}}"#,
                1 + i % 65535
            ),
        ),
    ]
}

/// Client `c` of `clients` creates pairs `c, c + clients, ...` below `n`, over one connection.
fn client(base: &str, n: usize, c: usize, clients: usize) -> Result<Vec<f64>> {
    let agent = agent(Duration::from_secs(30));
    // Open the connection before the first write.
    count(&agent, &format!("{base}/api/v1/tenants/"))?;
    let mut latencies = Vec::with_capacity(2 * n / clients + 2);
    for i in (c..n).step_by(clients) {
        for (path, body) in pair(i) {
            let t = Instant::now();
            post(&agent, &format!("{base}{path}"), &body)?;
            latencies.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(latencies)
}

/// `clients` threads, each with its own connection.
fn http1(base: &str, n: usize, clients: usize) -> Result<Vec<f64>> {
    let results: Vec<Result<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| s.spawn(move || client(base, n, c, clients)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a client thread panicked"))
            })
            .collect()
    });
    let mut latencies = Vec::new();
    for r in results {
        latencies.extend(r?);
    }
    Ok(latencies)
}

/// One HTTP/2 connection; `streams` workers on it, worker `w` creating pairs `w, w + streams,
/// ...` below `n`, each pair's policy then its rule, the workers concurrently. One thread
/// drives them all (a current-thread runtime), as one client process would.
fn http2(base: &str, n: usize, streams: usize) -> Result<Vec<f64>> {
    super::runtime()?.block_on(async {
        let conn = H2::connect(base).await?;
        // The connection works before the workers start.
        conn.get("/api/v1/tenants/").await?;
        let workers = (0..streams).map(|w| {
            let conn = conn.clone();
            async move {
                let mut latencies = Vec::with_capacity(2 * n / streams + 2);
                for i in (w..n).step_by(streams) {
                    for (path, body) in pair(i) {
                        let t = Instant::now();
                        conn.post(&path, &body).await?;
                        latencies.push(t.elapsed().as_secs_f64());
                    }
                }
                anyhow::Ok(latencies)
            }
        });
        let per_worker = futures::future::try_join_all(workers).await?;
        Ok(per_worker.concat())
    })
}

/// `netmaster_http_connections_total`: the connections the master has accepted, this probe's
/// own (a fresh one) included.
fn connections_accepted(base: &str) -> Result<u64> {
    let url = format!("{base}/metrics");
    let mut resp = agent(Duration::from_secs(30))
        .get(&url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let text = resp.body_mut().read_to_string()?;
    match text
        .lines()
        .find_map(|l| l.strip_prefix("netmaster_http_connections_total "))
        .and_then(|v| v.trim().parse().ok())
    {
        Some(n) => Ok(n),
        None => bail!(
            "GET {url}: no netmaster_http_connections_total (a netmaster older than the bench?)"
        ),
    }
}

/// Fresh store, fresh netmaster, N pairs created as `variant` says; checks they all exist and
/// that the master accepted exactly the variant's connections meanwhile.
fn measure(netmaster: &Path, etcd: Option<&Path>, n: usize, variant: Variant) -> Result<Measure> {
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
    let before = connections_accepted(&base)?;
    let started = Instant::now();
    let mut latencies = match variant {
        Variant::Http1 { conns } => http1(&base, n, conns)?,
        Variant::Http2 { streams } => http2(&base, n, streams)?,
    };
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    // Both probes open a connection of their own; whatever else was accepted was the run's.
    let used = connections_accepted(&base)?.saturating_sub(before + 1);
    if used != variant.connections() as u64 {
        bail!(
            "{}: the master accepted {used} connection(s) during the run",
            variant.describe()
        );
    }
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

/// The issue's target for etcd: this many objects/s at every N...
const TARGET_RATE: f64 = 2000.0;
/// ...and the rate at the largest N at least this share of the rate at the first.
const TARGET_HOLD: f64 = 0.9;

pub fn run(args: &RestArgs) -> Result<i32> {
    let mut ns: Vec<usize> = Vec::new();
    for &n in &args.n {
        if !ns.contains(&n) {
            ns.push(n);
        }
    }
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
    let mut variants = vec![Variant::Http1 { conns: 1 }];
    if args.clients > 1 {
        variants.push(Variant::Http1 {
            conns: args.clients,
        });
    }
    if args.streams > 0 {
        variants.push(Variant::Http2 {
            streams: args.streams,
        });
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
         over `conns` keep-alive connections with `flight` requests in flight (each worker: a \
         policy, then its rule).\nCells: objects/s (request latency p50/p99 ms), the median of \
         {} round(s) (each round measures every cell once).",
        args.repeat.max(1)
    );
    // Round after round, each round measuring every way, store and N once: the machine's other
    // load drifts over the minutes of a run, and interleaving lets the drift weigh on every
    // cell alike instead of on whichever came last. Each cell shows its median round.
    let repeat = args.repeat.max(1);
    let progress = std::io::stderr().is_terminal();
    let mut runs: Vec<(usize, Variant, StoreKind, Measure)> = Vec::new();
    for r in 0..repeat {
        for &v in &variants {
            for &s in &stores {
                let etcd_bin = (s == StoreKind::Etcd).then_some(etcd.as_deref()).flatten();
                for &n in &ns {
                    let what = format!(
                        "{} store, N={n}, {}",
                        format!("{s:?}").to_lowercase(),
                        v.describe()
                    );
                    if progress {
                        eprint!("\rmeasuring {what} (round {}/{repeat})\x1b[K", r + 1);
                    }
                    runs.push((n, v, s, measure(&netmaster, etcd_bin, n, v).context(what)?));
                }
            }
        }
    }
    let mut cells: Vec<(usize, Variant, StoreKind, Measure)> = Vec::new();
    for &v in &variants {
        for &s in &stores {
            for &n in &ns {
                let mut cell: Vec<Measure> = runs
                    .extract_if(.., |r| (r.0, r.1, r.2) == (n, v, s))
                    .map(|r| r.3)
                    .collect();
                cell.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
                let median = cell.swap_remove(cell.len() / 2);
                cells.push((n, v, s, median));
            }
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    print!(
        "{:>6} {:>8} {:>5} {:>6}",
        "N", "protocol", "conns", "flight"
    );
    for s in &stores {
        print!(" {:>24}", format!("{s:?}").to_lowercase());
    }
    if stores.len() == 2 {
        print!(" {:>14}", "embedded/etcd");
    }
    println!();
    for &n in &ns {
        for &v in &variants {
            print!(
                "{n:>6} {:>8} {:>5} {:>6}",
                v.protocol(),
                v.connections(),
                v.in_flight()
            );
            let row: Vec<&Measure> = stores
                .iter()
                .filter_map(|&s| {
                    cells
                        .iter()
                        .find(|c| c.0 == n && c.1 == v && c.2 == s)
                        .map(|c| &c.3)
                })
                .collect();
            for m in &row {
                print!(" {:>24}", m.cell());
            }
            if let [embedded, etcd] = row[..] {
                print!(" {:>14.2}", embedded.rate() / etcd.rate());
            }
            println!();
        }
    }
    let rates: Vec<(usize, Variant, StoreKind, f64)> = cells
        .iter()
        .map(|(n, v, s, m)| (*n, *v, *s, m.rate()))
        .collect();
    // Does the rate hold as the store grows? Each N against the smallest.
    let rate_of = |n: usize, v: Variant, s: StoreKind| {
        rates
            .iter()
            .find(|r| r.0 == n && r.1 == v && r.2 == s)
            .map(|r| r.3)
    };
    let first = ns.first().copied();
    for &n in ns.iter().skip(1) {
        for &(_, v, s, base_rate) in rates.iter().filter(|r| Some(r.0) == first) {
            if let (Some(first), Some(rate)) = (first, rate_of(n, v, s)) {
                println!(
                    "{:<8} {:<36} rate at N={n} is {:.0}% of the rate at N={first}",
                    format!("{s:?}").to_lowercase(),
                    v.describe(),
                    100.0 * rate / base_rate
                );
            }
        }
    }
    // The issue's target, for the one-connection variants on etcd.
    if let (true, Some(first), Some(&last)) = (stores.contains(&StoreKind::Etcd), first, ns.last())
    {
        for &v in variants.iter().filter(|v| v.connections() == 1) {
            let at: Vec<f64> = ns
                .iter()
                .filter_map(|&n| rate_of(n, v, StoreKind::Etcd))
                .collect();
            let slowest = at.iter().copied().fold(f64::INFINITY, f64::min);
            let hold = match (
                rate_of(first, v, StoreKind::Etcd),
                rate_of(last, v, StoreKind::Etcd),
            ) {
                (Some(a), Some(b)) => b / a,
                _ => 0.0,
            };
            let met = slowest >= TARGET_RATE && hold >= TARGET_HOLD;
            println!(
                "target (etcd, one connection: >= {TARGET_RATE:.0} objects/s at every N, N={last} \
                 rate >= {:.0}% of N={first}) with {}: slowest {slowest:.0}/s, {:.0}%: {}",
                100.0 * TARGET_HOLD,
                v.describe(),
                100.0 * hold,
                if met { "met" } else { "missed" }
            );
        }
    }
    Ok(0)
}

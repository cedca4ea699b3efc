//! `lab bench rest`: N policy+rule pairs created through netmaster's REST API, on the embedded
//! store and on etcd side by side in one run. Every measurement starts a fresh netmaster on a
//! fresh store (a new data directory; a new etcd), all on loopback, and removes it after.
//! Three ways of talking to it: HTTP/1.1 over one keep-alive connection, one request at a time;
//! HTTP/1.1 over one connection per client; one HTTP/2 connection with K requests in flight.
//! Each run checks on the master's side (`netmaster_http_connections_total`) that it used
//! exactly the connections it claims.
//!
//! The master runs as the product does (TLS with its self-signed certificate, `--auth on`; the
//! bench logs in as admin and every request carries the token) unless `--security` says
//! otherwise; given several (`--security tls-token,plain`), every cell is measured with each,
//! interleaved, and the first is compared with the others (issue 18: TLS and a token at least
//! 0.8 of plain HTTP without authentication at every cell).

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use lab::auth::Access;

use super::daemon::{self, Security};
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
    /// How clients reach the master, comma separated: tls-token (the product: TLS, a token on
    /// every request), token (plain HTTP, a token), plain (plain HTTP, authentication off).
    /// With several, the first is compared with each other one cell by cell.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "tls-token")]
    security: Vec<Security>,
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

    fn protocol(self, security: Security) -> &'static str {
        match (self, security) {
            (Variant::Http1 { .. }, _) => "http/1.1",
            (Variant::Http2 { .. }, Security::TlsToken) => "h2",
            (Variant::Http2 { .. }, _) => "h2c",
        }
    }

    fn describe(self, security: Security) -> String {
        format!(
            "{} {} {} conn(s) {} in flight",
            security.name(),
            self.protocol(security),
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

fn post(agent: &ureq::Agent, access: &Access, path: &str, body: &str) -> Result<()> {
    let (status, text) = access
        .request(agent, "POST", path, Some(body))
        .with_context(|| format!("POST {path}"))?;
    if status != 200 {
        bail!("POST {path} answered {status}: {text}");
    }
    Ok(())
}

fn count(agent: &ureq::Agent, access: &Access, path: &str) -> Result<usize> {
    let (status, text) = access
        .request(agent, "GET", path, None)
        .with_context(|| format!("GET {path}"))?;
    let list: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("GET {path}: {status} {text}"))?;
    match list.as_array() {
        Some(items) => Ok(items.len()),
        None => bail!("GET {path}: not a list: {status} {text}"),
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
fn client(access: &Access, n: usize, c: usize, clients: usize) -> Result<Vec<f64>> {
    let agent = access.agent(Duration::from_secs(30))?;
    // Open the connection (and its TLS session) before the first write.
    count(&agent, access, "/api/v1/tenants/")?;
    let mut latencies = Vec::with_capacity(2 * n / clients + 2);
    for i in (c..n).step_by(clients) {
        for (path, body) in pair(i) {
            let t = Instant::now();
            post(&agent, access, &path, &body)?;
            latencies.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(latencies)
}

/// `clients` threads, each with its own connection.
fn http1(access: &Access, n: usize, clients: usize) -> Result<Vec<f64>> {
    let results: Vec<Result<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| s.spawn(move || client(access, n, c, clients)))
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
fn http2(access: &Access, n: usize, streams: usize) -> Result<Vec<f64>> {
    super::runtime()?.block_on(async {
        let conn = H2::connect(access).await?;
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
fn connections_accepted(access: &Access) -> Result<u64> {
    let url = format!("{}/metrics", access.url);
    let agent = access.agent(Duration::from_secs(30))?;
    let (_, text) = access
        .request(&agent, "GET", "/metrics", None)
        .with_context(|| format!("GET {url}"))?;
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
fn measure(
    netmaster: &Path,
    etcd: Option<&Path>,
    n: usize,
    variant: Variant,
    security: Security,
) -> Result<Measure> {
    let dir = tempfile::Builder::new()
        .prefix("lab-bench-rest-")
        .tempdir()
        .context("creating a temporary directory")?;
    // Dropped in reverse order: netmaster first, then etcd, then the directory.
    let etcd = match etcd {
        Some(binary) => Some(daemon::etcd(binary, dir.path())?),
        None => None,
    };
    // The login happens here, before the first count of connections.
    let (_master, access) = daemon::netmaster(
        netmaster,
        dir.path(),
        etcd.as_ref().map(|(_, url)| url.as_str()),
        security,
    )?;
    let before = connections_accepted(&access)?;
    let started = Instant::now();
    let mut latencies = match variant {
        Variant::Http1 { conns } => http1(&access, n, conns)?,
        Variant::Http2 { streams } => http2(&access, n, streams)?,
    };
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    // Both probes open a connection of their own; whatever else was accepted was the run's.
    let used = connections_accepted(&access)?.saturating_sub(before + 1);
    if used != variant.connections() as u64 {
        bail!(
            "{}: the master accepted {used} connection(s) during the run",
            variant.describe(security)
        );
    }
    let check = access.agent(Duration::from_secs(30))?;
    let policies = count(&check, &access, "/api/v1/policys/")?;
    let rules = count(&check, &access, "/api/v1/rules/")?;
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

/// A cell: N, the way of talking, the security, the store.
type Cell = (usize, Variant, Security, StoreKind);

/// Issue 18's target: with TLS and a token, at least this share of the plain rate.
const TARGET_SECURE: f64 = 0.8;

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
    let mut securities: Vec<Security> = Vec::new();
    for &security in &args.security {
        if !securities.contains(&security) {
            securities.push(security);
        }
    }
    // Round after round, each round measuring every way, security, store and N once: the
    // machine's other load drifts over the minutes of a run, and interleaving lets the drift
    // weigh on every cell alike instead of on whichever came last. Each cell shows its median
    // round.
    let repeat = args.repeat.max(1);
    let progress = std::io::stderr().is_terminal();
    let mut runs: Vec<(Cell, Measure)> = Vec::new();
    for r in 0..repeat {
        for &v in &variants {
            for &security in &securities {
                for &s in &stores {
                    let etcd_bin = (s == StoreKind::Etcd).then_some(etcd.as_deref()).flatten();
                    for &n in &ns {
                        let what = format!(
                            "{} store, N={n}, {}",
                            format!("{s:?}").to_lowercase(),
                            v.describe(security)
                        );
                        if progress {
                            eprint!("\rmeasuring {what} (round {}/{repeat})\x1b[K", r + 1);
                        }
                        let m = measure(&netmaster, etcd_bin, n, v, security).context(what)?;
                        runs.push(((n, v, security, s), m));
                    }
                }
            }
        }
    }
    let mut cells: Vec<(Cell, Measure)> = Vec::new();
    for &v in &variants {
        for &security in &securities {
            for &s in &stores {
                for &n in &ns {
                    let key = (n, v, security, s);
                    let mut cell: Vec<Measure> =
                        runs.extract_if(.., |r| r.0 == key).map(|r| r.1).collect();
                    cell.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
                    let median = cell.swap_remove(cell.len() / 2);
                    cells.push((key, median));
                }
            }
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    print!(
        "{:>6} {:>9} {:>8} {:>5} {:>6}",
        "N", "security", "protocol", "conns", "flight"
    );
    for s in &stores {
        print!(" {:>24}", format!("{s:?}").to_lowercase());
    }
    if stores.len() == 2 {
        print!(" {:>14}", "embedded/etcd");
    }
    println!();
    let measure_of = |key: Cell| cells.iter().find(|c| c.0 == key).map(|c| &c.1);
    for &n in &ns {
        for &v in &variants {
            for &security in &securities {
                print!(
                    "{n:>6} {:>9} {:>8} {:>5} {:>6}",
                    security.name(),
                    v.protocol(security),
                    v.connections(),
                    v.in_flight()
                );
                let row: Vec<&Measure> = stores
                    .iter()
                    .filter_map(|&s| measure_of((n, v, security, s)))
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
    }
    let rate_of = |n: usize, v: Variant, security: Security, s: StoreKind| {
        measure_of((n, v, security, s)).map(Measure::rate)
    };
    // Does the rate hold as the store grows? Each N against the smallest.
    let first = ns.first().copied();
    for &n in ns.iter().skip(1) {
        for &((_, v, security, s), ref m) in cells.iter().filter(|c| Some(c.0 .0) == first) {
            if let (Some(first), Some(rate)) = (first, rate_of(n, v, security, s)) {
                println!(
                    "{:<8} {:<46} rate at N={n} is {:.0}% of the rate at N={first}",
                    format!("{s:?}").to_lowercase(),
                    v.describe(security),
                    100.0 * rate / m.rate()
                );
            }
        }
    }
    // The issue's target, for the one-connection variants on etcd, with the first security.
    let product = securities[0];
    if let (true, Some(first), Some(&last)) = (stores.contains(&StoreKind::Etcd), first, ns.last())
    {
        for &v in variants.iter().filter(|v| v.connections() == 1) {
            let at: Vec<f64> = ns
                .iter()
                .filter_map(|&n| rate_of(n, v, product, StoreKind::Etcd))
                .collect();
            let slowest = at.iter().copied().fold(f64::INFINITY, f64::min);
            let hold = match (
                rate_of(first, v, product, StoreKind::Etcd),
                rate_of(last, v, product, StoreKind::Etcd),
            ) {
                (Some(a), Some(b)) => b / a,
                _ => 0.0,
            };
            let met = slowest >= TARGET_RATE && hold >= TARGET_HOLD;
            println!(
                "target (etcd, one connection: >= {TARGET_RATE:.0} objects/s at every N, N={last} \
                 rate >= {:.0}% of N={first}) with {}: slowest {slowest:.0}/s, {:.0}%: {}",
                100.0 * TARGET_HOLD,
                v.describe(product),
                100.0 * hold,
                if met { "met" } else { "missed" }
            );
        }
    }
    // Security side by side: the first against each other one, cell by cell.
    for &other in securities.iter().skip(1) {
        let mut lowest = f64::INFINITY;
        for &n in &ns {
            for &v in &variants {
                for &s in &stores {
                    if let (Some(a), Some(b)) = (rate_of(n, v, product, s), rate_of(n, v, other, s))
                    {
                        lowest = lowest.min(a / b);
                        println!(
                            "{:<8} N={n:<6} {:<24} {} / {}: {:.2}",
                            format!("{s:?}").to_lowercase(),
                            format!(
                                "{} {}c {}f",
                                v.protocol(product),
                                v.connections(),
                                v.in_flight()
                            ),
                            product.name(),
                            other.name(),
                            a / b
                        );
                    }
                }
            }
        }
        if product == Security::TlsToken && other == Security::Plain {
            println!(
                "target (issue 18: tls+token >= {TARGET_SECURE:.1} of plain at every cell): \
                 lowest {lowest:.2}: {}",
                if lowest >= TARGET_SECURE {
                    "met"
                } else {
                    "missed"
                }
            );
        }
    }
    Ok(0)
}

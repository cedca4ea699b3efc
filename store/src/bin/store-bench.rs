//! Store benchmark: raw fsync latency of the data directory's filesystem, then N sequential
//! and N concurrent transactions on each backend (embedded redb, and a real etcd it starts),
//! printing ops/s and latency percentiles. Shows what durability costs and what group commit
//! buys back.
//!
//! `cargo run --release -p fabric-store --features test-support --bin store-bench -- \
//!     [--ops N] [--clients C] [--dir DIR] [--backend embedded|etcd|all]`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fabric_store::testing::EtcdProcess;
use fabric_store::{EmbeddedStore, EtcdStore, Store, Txn};

struct Args {
    ops: usize,
    clients: usize,
    dir: PathBuf,
    backend: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        ops: 2000,
        clients: 8,
        dir: std::env::temp_dir(),
        backend: "all".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--ops" => args.ops = value.parse().context("--ops must be a number")?,
            "--clients" => args.clients = value.parse().context("--clients must be a number")?,
            "--dir" => args.dir = value.into(),
            "--backend" => args.backend = value,
            other => bail!("unknown flag {other}"),
        }
    }
    if args.ops == 0 || args.clients == 0 {
        bail!("--ops and --clients must be positive");
    }
    Ok(args)
}

/// Latency summary of one run.
fn report(label: &str, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "{label:<44} {:>9.0} ops/s   p50 {:>8.3} ms   p99 {:>8.3} ms",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

/// Raw cost of durability on this filesystem: 4 KiB write + fdatasync, repeated.
fn fsync_probe(dir: &Path, rounds: usize) -> anyhow::Result<()> {
    let file_dir = tempfile::tempdir_in(dir)?;
    let mut file = std::fs::File::create(file_dir.path().join("probe"))?;
    let block = [0u8; 4096];
    let mut latencies = Vec::with_capacity(rounds);
    let start = Instant::now();
    for _ in 0..rounds {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    report("raw 4KiB write + fdatasync", start.elapsed(), latencies);
    Ok(())
}

async fn sequential(store: &dyn Store, label: &str, ops: usize) -> anyhow::Result<()> {
    let mut latencies = Vec::with_capacity(ops);
    let start = Instant::now();
    for i in 0..ops {
        let t = Instant::now();
        store
            .put(&format!("/bench/seq/{label}/{i}"), vec![0; 128])
            .await?;
        latencies.push(t.elapsed());
    }
    report(
        &format!("{label}: sequential put"),
        start.elapsed(),
        latencies,
    );
    Ok(())
}

/// `clients` tasks allocate from one candidate sequence with create-if-absent, like masters
/// handing out addresses.
async fn concurrent(
    store: Arc<dyn Store>,
    label: &str,
    ops: usize,
    clients: usize,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let store = store.clone();
        let prefix = format!("/bench/cas/{label}");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (client..ops).step_by(clients) {
                let key = format!("{prefix}/{i}");
                let t = Instant::now();
                store
                    .txn(Txn::new().when_absent(&key).put(&key, vec![0; 128]))
                    .await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(ops);
    for task in tasks {
        latencies.extend(task.await??);
    }
    report(
        &format!("{label}: {clients} concurrent CAS create"),
        start.elapsed(),
        latencies,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    println!(
        "ops={} clients={} dir={}",
        args.ops,
        args.clients,
        args.dir.display()
    );
    fsync_probe(&args.dir, 200)?;
    if matches!(args.backend.as_str(), "all" | "embedded") {
        let dir = tempfile::tempdir_in(&args.dir)?;
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("bench.redb")).await?);
        sequential(store.as_ref(), "embedded", args.ops).await?;
        let before = store.stats();
        concurrent(store.clone(), "embedded", args.ops, args.clients).await?;
        let after = store.stats();
        println!(
            "embedded group commit: {:.1} txns per fsync in the concurrent run",
            (after.txns - before.txns) as f64 / (after.commits - before.commits).max(1) as f64
        );
    }
    if matches!(args.backend.as_str(), "all" | "etcd") {
        // etcd's data dir lives in the system temp dir (the fixture decides).
        let etcd = EtcdProcess::start_async().await?;
        let store = Arc::new(EtcdStore::connect(&etcd.endpoints()).await?);
        sequential(store.as_ref(), "etcd", args.ops).await?;
        concurrent(store, "etcd", args.ops, args.clients).await?;
    }
    Ok(())
}

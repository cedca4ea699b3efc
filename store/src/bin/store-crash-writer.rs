//! Crash-test helper: writes keys `/crash/<task>/<n>` from several tasks until killed (or a
//! bounded count) and prints each key to stdout only after the store acknowledged it. The
//! crash tests SIGKILL this process and then check that every printed key survived.
//!
//! Usage: `store-crash-writer embedded <file>` or `store-crash-writer etcd <url>[,<url>...]`

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context};
use fabric_store::{EmbeddedStore, EtcdStore, Store};

const TASKS: usize = 4;
/// Bound on writes per task, so a forgotten child stops by itself.
const MAX_PER_TASK: usize = 100_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let store: Arc<dyn Store> = match args.as_slice() {
        [backend, path] if backend == "embedded" => Arc::new(
            EmbeddedStore::open(path.as_ref())
                .await
                .with_context(|| format!("open embedded store {path}"))?,
        ),
        [backend, urls] if backend == "etcd" => {
            let endpoints: Vec<String> = urls.split(',').map(str::to_string).collect();
            Arc::new(
                EtcdStore::connect(&endpoints)
                    .await
                    .context("connect to etcd")?,
            )
        }
        _ => bail!("usage: store-crash-writer embedded <file> | etcd <url>[,<url>...]"),
    };
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..MAX_PER_TASK {
                let key = format!("/crash/{task}/{n:06}");
                store.put(&key, key.clone().into_bytes()).await?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{key}")?;
                out.flush()?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

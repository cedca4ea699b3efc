//! Crash durability: a child process writes keys and prints each one once acknowledged; we
//! SIGKILL it mid-stream (and, for etcd, SIGKILL etcd too), reopen, and check that every
//! acknowledged key is there.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fabric_store::testing::EtcdProcess;
use fabric_store::{EmbeddedStore, EtcdStore, Store};

const WRITER: &str = env!("CARGO_BIN_EXE_store-crash-writer");
/// Acknowledged keys to wait for before pulling the plug.
const ACKS_BEFORE_KILL: usize = 200;
const ACK_DEADLINE: Duration = Duration::from_secs(60);

/// The writer child; SIGKILLed on drop if the test fails early.
struct Writer {
    child: Child,
    acks: mpsc::Receiver<String>,
}

impl Writer {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(WRITER)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn store-crash-writer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, acks) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, acks }
    }

    fn wait_for_acks(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + ACK_DEADLINE;
        let mut acked = Vec::new();
        while acked.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.acks.recv_timeout(left) {
                Ok(key) => acked.push(key),
                Err(e) => panic!("writer gave {} of {n} acks: {e}", acked.len()),
            }
        }
        acked
    }

    /// SIGKILL, reap, and collect every ack it printed before dying.
    fn kill(mut self, mut acked: Vec<String>) -> Vec<String> {
        self.child.kill().expect("SIGKILL writer");
        self.child.wait().expect("reap writer");
        // The reader thread sees EOF now; whatever it forwarded was acknowledged.
        while let Ok(key) = self.acks.recv_timeout(Duration::from_secs(5)) {
            acked.push(key);
        }
        acked
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn assert_all_present(store: &dyn Store, acked: &[String]) {
    assert!(acked.len() >= ACKS_BEFORE_KILL);
    for key in acked {
        let kv = store.get(key).await.unwrap();
        let kv = kv.unwrap_or_else(|| panic!("acknowledged key {key} lost in the crash"));
        assert_eq!(kv.value, key.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_keeps_every_acknowledged_write_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let writer = Writer::start(&["embedded", path.to_str().unwrap()]);
    let acked = writer.wait_for_acks(ACKS_BEFORE_KILL);
    let acked = writer.kill(acked);

    let store = EmbeddedStore::open(&path)
        .await
        .expect("reopen after crash");
    assert_all_present(&store, &acked).await;
    // Revision = number of committed puts; at least the acknowledged ones.
    assert!(store.revision().await.unwrap() >= acked.len() as u64);
    assert_eq!(
        store.count("/crash/").await.unwrap(),
        store.revision().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_keeps_every_acknowledged_write_after_sigkill_of_etcd_and_writer() {
    let mut etcd = EtcdProcess::start_async()
        .await
        .unwrap_or_else(|e| panic!("etcd tests need a runnable etcd: {e}"));
    let endpoints = etcd.endpoints().join(",");
    let writer = Writer::start(&["etcd", &endpoints]);
    let acked = writer.wait_for_acks(ACKS_BEFORE_KILL);
    // Power loss of the server while writes are in flight, then of the client.
    etcd.kill().unwrap();
    let acked = writer.kill(acked);
    let etcd = tokio::task::spawn_blocking(move || etcd.restart().map(|()| etcd))
        .await
        .unwrap()
        .expect("restart etcd on its data dir");

    let store = EtcdStore::connect(&etcd.endpoints()).await.unwrap();
    assert_all_present(&store, &acked).await;
}

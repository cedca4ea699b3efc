//! Leadership among masters: the embedded store's one master leads at once; of two masters on
//! one etcd exactly one leads; when the leader stops renewing its lease (as after kill -9) or
//! goes away, the other leads within 10 s and runs its first leader-only jobs (a stale agent
//! record is swept); a sweep by a master that lost the lead does not commit (the fence).

mod common;

use common::{Backend, Fixture, TestMaster};
use fabric_store::Fence;
use netmaster::keys;
use netmaster::leader::jobs::JobError;
use netmaster::leader::sweep::{self, Records};
use netmaster::leader::Stop;
use serde_json::json;
use std::time::{Duration, Instant};

/// The lease of these masters: failover within it, a margin for the busy test machine.
const LEASE: Duration = Duration::from_secs(2);
/// The target for a new leader.
const FAILOVER: Duration = Duration::from_secs(10);

fn fixture(backend: Backend) -> Fixture {
    let mut fixture = Fixture::new(backend);
    fixture.leader_lease = LEASE;
    fixture
}

/// Which of `masters` leads, once exactly one does and has run its first jobs (bounded).
async fn the_leader(masters: &[&TestMaster], within: Duration) -> usize {
    let until = Instant::now() + within;
    loop {
        let leading: Vec<usize> = (0..masters.len())
            .filter(|&i| masters[i].master.leader.status().first_jobs_ms.is_some())
            .collect();
        if let [one] = leading[..] {
            return one;
        }
        assert!(
            Instant::now() < until,
            "not exactly one leader within {within:?}: {leading:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An agent record last refreshed long ago (a host that is gone).
async fn stale_agent(m: &TestMaster, host: &str) -> String {
    let key = keys::agent(host);
    let seen = netmaster::auth::caller::now_secs() - sweep::MAX_AGE_SECS - 60;
    let record = json!({"host": host, "address": "10.0.0.99", "seen": seen});
    let revision = m
        .master
        .store
        .put(&key, record.to_string().into_bytes())
        .await
        .expect("write the record");
    m.master.wait_for(revision).await;
    key
}

async fn exists(m: &TestMaster, key: &str) -> bool {
    m.master.store.get(key).await.expect("read").is_some()
}

async fn info(m: &TestMaster) -> serde_json::Value {
    let (status, v) = m.get("/info").await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_stores_master_leads_at_once() {
    let fixture = fixture(Backend::Embedded);
    let m = fixture.master().await;
    let fence = m.master.leader.wait_leading(FAILOVER).await;
    let fence = fence.expect("the one master leads");
    assert!(fence.key.starts_with("/contiv/leader/"), "{fence:?}");
    let v = info(&m).await;
    assert_eq!(v["leader"], json!(true), "{v}");
    assert_eq!(v["leaderId"], v["masterId"], "{v}");
    assert!(
        v["leaderJobsAt"].as_u64() >= v["leaderSince"].as_u64(),
        "{v}"
    );
    let (_, metrics) = m.get("/metrics").await;
    let text = metrics.as_str().unwrap_or_default();
    assert!(text.contains("\nnetmaster_leader 1\n"), "{text}");
    assert!(
        text.contains("\nnetmaster_leader_changes_total 1\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_masters_on_etcd_one_leads() {
    let fixture = fixture(Backend::Etcd);
    let a = fixture.master().await;
    let b = fixture.master().await;
    let masters = [&a, &b];
    let leader = the_leader(&masters, FAILOVER).await;
    // Over two more leases, still that one alone.
    tokio::time::sleep(LEASE * 2).await;
    assert_eq!(the_leader(&masters, Duration::ZERO).await, leader);
    let follower = masters[1 - leader];
    let v = info(follower).await;
    assert_eq!(v["leader"], json!(false), "{v}");
    assert_eq!(
        v["leaderId"],
        json!(masters[leader].master.leader.id()),
        "the follower names the leader: {v}"
    );
    assert_eq!(v["leaderSince"], json!(null), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_is_replaced_within_ten_seconds() {
    let fixture = fixture(Backend::Etcd);
    let a = fixture.master().await;
    let b = fixture.master().await;
    let masters = [&a, &b];
    let leader = the_leader(&masters, FAILOVER).await;
    let (old, new) = (masters[leader], masters[1 - leader]);
    // Left for the new leader: the old one swept at its start and sweeps again only in 30 s.
    let gone = stale_agent(old, "gone-host").await;
    let crashed = Instant::now();
    // No resignation: the key stays until the lease runs out, as after kill -9.
    old.master.leader.stop(Stop::Crash).await;
    assert!(!old.master.leader.is_leader());
    let fence = new.master.leader.wait_leading(FAILOVER).await;
    let took = crashed.elapsed();
    let fence = fence.unwrap_or_else(|| panic!("no new leader within {FAILOVER:?}"));
    println!("new leader after {took:?} (lease {LEASE:?})");
    assert!(
        took >= LEASE / 2,
        "led after {took:?}: before the old lease ran out"
    );
    // Its first leader-only jobs ran: the stale record is gone.
    assert!(!exists(new, &gone).await, "the new leader swept {gone}");
    assert_eq!(info(new).await["leaderId"], json!(new.master.leader.id()));
    assert!(fence.revision > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_leader_hands_over_at_once() {
    let fixture = fixture(Backend::Etcd);
    let a = fixture.master().await;
    let b = fixture.master().await;
    let leader = the_leader(&[&a, &b], FAILOVER).await;
    let (old, new) = if leader == 0 { (a, b) } else { (b, a) };
    let dropped = Instant::now();
    // The master goes (its server and every handle): its leadership resigns.
    drop(old);
    let fence = new.master.leader.wait_leading(FAILOVER).await;
    let took = dropped.elapsed();
    assert!(fence.is_some(), "no new leader within {FAILOVER:?}");
    println!("new leader after {took:?}");
    assert!(took < LEASE, "resigned, not left to run out: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_by_a_master_that_lost_the_lead_does_not_commit() {
    let fixture = fixture(Backend::Etcd);
    let a = fixture.master().await;
    let b = fixture.master().await;
    let masters = [&a, &b];
    let leader = the_leader(&masters, FAILOVER).await;
    let (old, new) = (masters[leader], masters[1 - leader]);
    let stale: Fence = old.master.leader.fence().expect("leads");
    old.master.leader.stop(Stop::Resign).await;
    new.master
        .leader
        .wait_leading(FAILOVER)
        .await
        .expect("the other leads");
    // A stale record, and a sweep the old leader planned with its old fence: refused.
    let gone = stale_agent(old, "gone-host").await;
    let now = netmaster::auth::caller::now_secs();
    let result = sweep::sweep_records(&old.master, &stale, Records::Agents, now).await;
    assert!(matches!(result, Err(JobError::Fenced { .. })), "{result:?}");
    assert!(
        exists(old, &gone).await,
        "a fenced-out sweep deleted {gone}"
    );
    let sessions = old.master.sweep_sessions(&stale).await;
    assert!(
        matches!(sessions, Ok(0) | Err(JobError::Fenced { .. })),
        "{sessions:?}"
    );
    // The leader's sweep commits.
    let fence = new.master.leader.fence().expect("leads");
    let swept = sweep::sweep_records(&new.master, &fence, Records::Agents, now).await;
    assert_eq!(swept.expect("sweep"), 1);
    assert!(!exists(new, &gone).await);
}

//! The flow-writer against a real ovs-vswitchd: sync set A, then set B, and `dump-flows` shows
//! exactly B; a flow with another cookie (and OVS's own default flow) survives every sync; a
//! resync sends nothing; a new writer after a "restart" reads the installed state and sends
//! nothing; a refused sync changes nothing; cookie masks split the table between writers.

mod common;

use std::sync::Arc;

use common::{flows::representative, Ovs};
use openflow::ofctl::normalize_all;
use openflow::{
    Action, Atomicity, ConnError, Connection, Flow, FlowWriter, Match, SyncStats, WriterError,
};

/// Set B: A without its first three flows, every flow with a goto sent one table further,
/// plus three new flows.
fn set_b(cookie: u64) -> (Vec<Flow>, SyncStats) {
    let a = representative(cookie);
    let mut modified = 0;
    let mut b: Vec<Flow> = a[3..]
        .iter()
        .cloned()
        .map(|mut f| {
            if let Some(t) = f.goto_table {
                f.goto_table = Some(t + 1);
                modified += 1;
            }
            f
        })
        .collect();
    for p in 1..=3 {
        b.push(Flow {
            table: 40,
            priority: p,
            matches: Match {
                in_port: Some(u32::from(p)),
                ..Match::default()
            },
            actions: vec![Action::Output(7)],
            goto_table: None,
            cookie,
        });
    }
    let stats = SyncStats {
        added: 3,
        modified,
        deleted: 3,
    };
    (b, stats)
}

fn rendered(flows: &[Flow]) -> Vec<String> {
    let lines: Vec<String> = flows.iter().map(ToString::to_string).collect();
    normalize_all(lines.iter().map(String::as_str))
}

fn dumped(ovs: &Ovs, filter: &str) -> Vec<String> {
    normalize_all([ovs.dump_flows(Some(filter)).as_str()])
}

async fn sync_a_then_b(atomicity: Atomicity) {
    let ovs = Ovs::start();
    // Someone else's flow, and OVS's own default flow (cookie 0), must survive.
    let foreign = "cookie=0x99,table=12,priority=10,tcp,tp_dst=81 actions=drop".to_string();
    ovs.add_flows(std::slice::from_ref(&foreign));
    let foreign_before = dumped(&ovs, "cookie=0x99/-1");
    let default_before = dumped(&ovs, "cookie=0/-1");
    assert_eq!(foreign_before.len(), 1);
    // OVS's default NORMAL flow and its hidden table-254 flows all have cookie 0.
    assert!(default_before.iter().any(|l| l.contains("actions=NORMAL")));

    let conn = Arc::new(Connection::connect(ovs.mgmt()).await.expect("connect"));
    let mut w = FlowWriter::new(conn.clone(), 0x10, u64::MAX)
        .await
        .expect("writer");
    w.set_atomicity(atomicity);
    assert_eq!(w.installed().count(), 0);

    let a = representative(0x10);
    let stats = w.sync(a.clone()).await.expect("sync A");
    assert_eq!(
        stats,
        SyncStats {
            added: a.len(),
            modified: 0,
            deleted: 0
        }
    );
    assert_eq!(dumped(&ovs, "cookie=0x10/-1"), rendered(&a));

    let (b, expect) = set_b(0x10);
    let stats = w.sync(b.clone()).await.expect("sync B");
    assert_eq!(stats, expect);
    assert_eq!(dumped(&ovs, "cookie=0x10/-1"), rendered(&b));
    assert_eq!(dumped(&ovs, "cookie=0x99/-1"), foreign_before);
    assert_eq!(dumped(&ovs, "cookie=0/-1"), default_before);

    // Same set again: nothing to send.
    assert_eq!(w.sync(b.clone()).await.unwrap(), SyncStats::default());

    // "Restart": a new writer on a new connection reads what is installed and sends nothing.
    let everything_before = dumped(&ovs, "");
    drop(w);
    let conn2 = Arc::new(Connection::connect(ovs.mgmt()).await.expect("reconnect"));
    let mut w2 = FlowWriter::new(conn2, 0x10, u64::MAX)
        .await
        .expect("writer");
    assert_eq!(w2.installed().count(), b.len());
    assert_eq!(w2.sync(b.clone()).await.unwrap(), SyncStats::default());
    assert_eq!(dumped(&ovs, ""), everything_before);

    // Empty desired set: only our flows go.
    let stats = w2.sync(Vec::new()).await.unwrap();
    assert_eq!(stats.deleted, b.len());
    assert!(dumped(&ovs, "cookie=0x10/-1").is_empty());
    assert_eq!(dumped(&ovs, "cookie=0x99/-1"), foreign_before);
    assert_eq!(dumped(&ovs, "cookie=0/-1"), default_before);
}

#[tokio::test]
async fn sync_installs_exactly_the_desired_set_with_bundles() {
    sync_a_then_b(Atomicity::Bundle).await;
}

#[tokio::test]
async fn sync_installs_exactly_the_desired_set_with_barrier_batches() {
    sync_a_then_b(Atomicity::BarrierBatch).await;
}

#[tokio::test]
async fn a_refused_sync_changes_nothing() {
    let ovs = Ovs::start();
    let conn = Arc::new(Connection::connect(ovs.mgmt()).await.expect("connect"));
    let mut w = FlowWriter::new(conn, 0x10, u64::MAX).await.expect("writer");
    let a = representative(0x10);
    w.sync(a.clone()).await.expect("sync A");
    let before = dumped(&ovs, "");

    let (mut b, _) = set_b(0x10);
    // goto_table must go forward: OVS refuses this one.
    b.push(Flow {
        table: 20,
        priority: 1,
        matches: Match::default(),
        actions: vec![],
        goto_table: Some(3),
        cookie: 0x10,
    });
    match w.sync(b).await {
        Err(WriterError::Conn(ConnError::Rejected { failures, atomic })) => {
            assert!(atomic);
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].flow_mod.goto_table, Some(3));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        dumped(&ovs, ""),
        before,
        "an atomic sync that failed left traces"
    );
    // The writer re-reads the switch and finds nothing to do for A.
    assert_eq!(w.sync(a).await.unwrap(), SyncStats::default());
}

#[tokio::test]
async fn cookie_masks_split_the_switch_between_writers() {
    let ovs = Ovs::start();
    let conn = Arc::new(Connection::connect(ovs.mgmt()).await.expect("connect"));
    let mask = 0xffff_0000_0000_0000;
    let mut w1 = FlowWriter::new(conn.clone(), 0x0001 << 48, mask)
        .await
        .unwrap();
    let mut w2 = FlowWriter::new(conn.clone(), 0x0002 << 48, mask)
        .await
        .unwrap();
    // Each writer's flows use several cookies inside its space.
    let with_low_bits = |base: u64| -> Vec<Flow> {
        representative(base)
            .into_iter()
            .enumerate()
            .map(|(i, mut f)| {
                f.cookie = base | i as u64;
                f
            })
            .collect()
    };
    let f1 = with_low_bits(0x0001 << 48);
    let f2 = with_low_bits(0x0002 << 48);
    // The same keys in both sets: the second writer's adds replace the first's flows, which
    // OpenFlow cannot avoid (one flow per key). Give the second set its own tables instead.
    let f2: Vec<Flow> = f2
        .into_iter()
        .map(|mut f| {
            f.table += 100;
            f.goto_table = f.goto_table.map(|t| t + 100);
            f
        })
        .collect();
    w1.sync(f1.clone()).await.unwrap();
    w2.sync(f2.clone()).await.unwrap();
    assert_eq!(
        dumped(&ovs, "cookie=0x0001000000000000/0xffff000000000000"),
        rendered(&f1)
    );
    w1.sync(Vec::new()).await.unwrap();
    assert!(dumped(&ovs, "cookie=0x0001000000000000/0xffff000000000000").is_empty());
    assert_eq!(
        dumped(&ovs, "cookie=0x0002000000000000/0xffff000000000000"),
        rendered(&f2)
    );

    // A writer for cookie 0 would own OVS's default and hidden flows: refused.
    assert!(matches!(
        FlowWriter::new(conn.clone(), 0, u64::MAX).await,
        Err(WriterError::ZeroCookie { .. })
    ));
    assert!(matches!(
        FlowWriter::new(conn.clone(), 0x1, mask).await,
        Err(WriterError::ZeroCookie { .. })
    ));

    // A flow outside the writer's cookie space, or two flows with one key, are refused.
    let mut stray = f2[0].clone();
    stray.cookie = 0x0003 << 48;
    assert!(matches!(
        w2.sync(vec![stray]).await,
        Err(WriterError::ForeignCookie { .. })
    ));
    let mut twin = f2[0].clone();
    twin.actions = vec![Action::Output(1)];
    assert!(matches!(
        w2.sync(vec![f2[0].clone(), twin]).await,
        Err(WriterError::DuplicateKey { .. })
    ));
    // Neither touched the switch.
    assert_eq!(
        dumped(&ovs, "cookie=0x0002000000000000/0xffff000000000000"),
        rendered(&f2)
    );
}

/// Enough flows that OVS splits the flow-stats reply over many messages (REPLY_MORE) and the
/// bundle holds thousands of messages. Prints the timings the README quotes.
#[tokio::test]
async fn thousands_of_flows() {
    const N: u32 = 5000;
    let ovs = Ovs::start();
    let conn = Arc::new(Connection::connect(ovs.mgmt()).await.expect("connect"));
    let mut w = FlowWriter::new(conn.clone(), 0x77, u64::MAX).await.unwrap();
    let flows = |out: u32| -> Vec<Flow> {
        (0..N)
            .map(|i| {
                let mut m = Match {
                    eth_type: Some(0x0800),
                    ..Match::default()
                };
                m.regs[1] = Some(openflow::Masked::exact(i));
                Flow {
                    table: 20,
                    priority: 100,
                    matches: m,
                    actions: vec![Action::Output(out)],
                    goto_table: None,
                    cookie: 0x77,
                }
            })
            .collect()
    };
    let t = std::time::Instant::now();
    let stats = w.sync(flows(1)).await.unwrap();
    let full = t.elapsed();
    assert_eq!(stats.added, N as usize);

    let mut changed = flows(1);
    changed[17].actions = vec![Action::Output(2)];
    let t = std::time::Instant::now();
    let stats = w.sync(changed.clone()).await.unwrap();
    let one = t.elapsed();
    assert_eq!(stats.modified, 1);
    assert_eq!(stats.total(), 1);

    changed[18].actions = vec![Action::Output(2)];
    w.set_atomicity(Atomicity::BarrierBatch);
    let t = std::time::Instant::now();
    assert_eq!(w.sync(changed.clone()).await.unwrap().modified, 1);
    let one_batch = t.elapsed();
    let t = std::time::Instant::now();
    assert_eq!(w.sync(changed.clone()).await.unwrap(), SyncStats::default());
    let nothing = t.elapsed();
    let t = std::time::Instant::now();
    let mut w2 = FlowWriter::new(conn, 0x77, u64::MAX).await.unwrap();
    let read = t.elapsed();
    assert_eq!(w2.installed().count(), N as usize);
    assert_eq!(w2.sync(changed).await.unwrap(), SyncStats::default());
    eprintln!(
        "{N} flows: full sync {full:?}; one-flow change: bundle {one:?}, barrier batch \
         {one_batch:?}; sync with no change {nothing:?}; reading them back {read:?}"
    );
}

/// `apply` with what changed from A to B gives the switch exactly what `sync` of B gives, in
/// the same FLOW_MODs; an added flow colliding with a kept one is refused and changes nothing.
#[tokio::test]
async fn apply_of_a_difference_equals_sync_of_the_whole_set() {
    let ovs = Ovs::start();
    let conn = Arc::new(Connection::connect(ovs.mgmt()).await.expect("connect"));
    let mut w = FlowWriter::new(conn, 0x10, u64::MAX).await.expect("writer");
    let a = representative(0x10);
    w.sync(a.clone()).await.expect("sync A");
    let (b, expect) = set_b(0x10);
    let removed: Vec<Flow> = a.iter().filter(|f| !b.contains(f)).cloned().collect();
    let added: Vec<Flow> = b.iter().filter(|f| !a.contains(f)).cloned().collect();
    let stats = w.apply(added, removed).await.expect("apply A -> B");
    assert_eq!(stats, expect);
    assert_eq!(dumped(&ovs, "cookie=0x10/-1"), rendered(&b));
    assert_eq!(w.installed().count(), b.len());

    // A flow with the key of one that stays, not removed: two desired flows for one key.
    let mut twin = b[b.len() - 1].clone();
    twin.actions = vec![Action::Output(9)];
    let err = w.apply([twin], []).await.expect_err("duplicate key");
    assert!(matches!(err, WriterError::DuplicateKey { .. }), "{err}");
    assert_eq!(dumped(&ovs, "cookie=0x10/-1"), rendered(&b));
    // Nothing to do: nothing sent; the writer still knows what is installed.
    assert_eq!(w.apply([], []).await.unwrap(), SyncStats::default());
    assert_eq!(w.sync(b.clone()).await.unwrap(), SyncStats::default());
}

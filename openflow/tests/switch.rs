//! The codec and connection against a real ovs-vswitchd: every representative flow encoded by
//! us, installed in one bundle, read back through our own flow-stats decoding and compared
//! equal; the same flows as `ovs-ofctl dump-flows` prints them equal our `Display`; refused
//! flows are reported with the offending flow (batch: the rest applied; bundle: nothing
//! applied); aggregate statistics count exactly the flows installed, as `ovs-ofctl
//! dump-aggregate` does; and the same session over TCP.

mod common;

use std::collections::BTreeSet;

use common::{flows::representative, Ovs};
use openflow::codec::{FlowStatsRequest, OFPTT_ALL};
use openflow::ofctl::normalize_all;
use openflow::{ConnError, Connection, Flow, FlowMod, Match};

async fn installed(conn: &Connection, cookie: u64) -> BTreeSet<Flow> {
    conn.flow_stats(FlowStatsRequest::by_cookie(cookie, u64::MAX))
        .await
        .expect("flow stats")
        .into_iter()
        .map(|f| f.expect("every installed flow decodes").flow)
        .collect()
}

#[tokio::test]
async fn flows_encoded_by_us_read_back_equal() {
    let ovs = Ovs::start();
    let conn = Connection::connect(ovs.mgmt()).await.expect("connect");
    assert!(conn.features().n_tables > 0);
    let flows = representative(0x10);
    let mods: Vec<FlowMod> = flows.iter().map(FlowMod::add).collect();
    conn.send_bundle(mods).await.expect("bundle accepted");

    // Through our own multipart decoding: exactly the (normalised) flows we sent.
    let want: BTreeSet<Flow> = flows.iter().map(Flow::normalized).collect();
    let got = installed(&conn, 0x10).await;
    assert_eq!(got, want);

    // Through ovs-ofctl: what it prints is our rendering of the same flows.
    let dump = ovs.dump_flows(Some("cookie=0x10/-1"));
    let rendered: Vec<String> = flows.iter().map(ToString::to_string).collect();
    assert_eq!(
        normalize_all([dump.as_str()]),
        normalize_all(rendered.iter().map(String::as_str))
    );

    // Echo and barrier on the live session.
    assert_eq!(conn.echo(b"ping".to_vec()).await.unwrap(), b"ping");
    conn.barrier().await.unwrap();

    // Delete by cookie leaves other cookies alone (the default NORMAL flow has cookie 0).
    conn.send_batch(vec![FlowMod::delete_cookie(None, 0x10, u64::MAX)])
        .await
        .unwrap();
    assert!(installed(&conn, 0x10).await.is_empty());
    let all = conn.flow_stats(FlowStatsRequest::all()).await.unwrap();
    assert_eq!(all.len(), 1, "only OVS's own default flow is left: {all:?}");
}

/// `ovs-ofctl dump-aggregate`'s flow_count for `filter`.
fn ofctl_flow_count(ovs: &Ovs, filter: &str) -> u32 {
    let out = ovs.ofctl("dump-aggregate", &[filter]);
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("flow_count="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no flow_count in {out:?}"))
}

#[tokio::test]
async fn aggregate_counts_the_installed_flows() {
    let ovs = Ovs::start();
    let conn = Connection::connect(ovs.mgmt()).await.expect("connect");
    let by_cookie = |c| FlowStatsRequest::by_cookie(c, u64::MAX);
    // Only OVS's default NORMAL flow (cookie 0) at first.
    let empty = conn.aggregate(FlowStatsRequest::all()).await.unwrap();
    assert_eq!(empty.flow_count, 1, "{empty:?}");
    assert_eq!(conn.aggregate(by_cookie(0x10)).await.unwrap().flow_count, 0);

    let flows = representative(0x10);
    let n = u32::try_from(flows.len()).unwrap();
    conn.send_bundle(flows.iter().map(FlowMod::add).collect())
        .await
        .expect("bundle accepted");
    // 400 more in one table under another cookie.
    let many: Vec<Flow> = (0..400u16).map(|p| drop_flow(30, p + 1, 0x20)).collect();
    conn.send_bundle(many.iter().map(FlowMod::add).collect())
        .await
        .expect("bundle accepted");

    let ours = conn.aggregate(by_cookie(0x10)).await.unwrap();
    assert_eq!(ours.flow_count, n);
    assert_eq!(ours.flow_count, ofctl_flow_count(&ovs, "cookie=0x10/-1"));
    let listed = conn.flow_stats(by_cookie(0x10)).await.unwrap().len();
    assert_eq!(usize::try_from(ours.flow_count).unwrap(), listed);
    assert_eq!(
        conn.aggregate(by_cookie(0x20)).await.unwrap().flow_count,
        400
    );
    let all = conn.aggregate(FlowStatsRequest::all()).await.unwrap();
    assert_eq!(all.flow_count, n + 400 + 1);
    assert_eq!(all.flow_count, ofctl_flow_count(&ovs, ""));
    // A table selects too: table 30 holds the 400 and the representative flows put there.
    let table30 = FlowStatsRequest {
        table: 30,
        ..FlowStatsRequest::all()
    };
    let representative_in_30 = flows.iter().filter(|f| f.table == 30).count();
    let in_30 = conn.aggregate(table30).await.unwrap().flow_count;
    assert_eq!(usize::try_from(in_30).unwrap(), 400 + representative_in_30);
    assert_eq!(in_30, ofctl_flow_count(&ovs, "table=30"));

    // Many requests back to back on the one session, as the bench's poller sends them.
    for _ in 0..200 {
        assert_eq!(
            conn.aggregate(by_cookie(0x20)).await.unwrap().flow_count,
            400
        );
    }
    conn.send_batch(vec![FlowMod::delete_cookie(None, 0x20, u64::MAX)])
        .await
        .unwrap();
    assert_eq!(conn.aggregate(by_cookie(0x20)).await.unwrap().flow_count, 0);
    assert_eq!(
        conn.aggregate(FlowStatsRequest::all())
            .await
            .unwrap()
            .flow_count,
        n + 1
    );
}

/// A flow OVS refuses although it encodes fine: goto_table must go forward.
fn backwards_goto(priority: u16, cookie: u64) -> Flow {
    Flow {
        table: 10,
        priority,
        matches: Match::default(),
        actions: vec![],
        goto_table: Some(5),
        cookie,
    }
}

fn drop_flow(table: u8, priority: u16, cookie: u64) -> Flow {
    Flow {
        table,
        priority,
        matches: Match::default(),
        actions: vec![],
        goto_table: None,
        cookie,
    }
}

#[tokio::test]
async fn refused_flows_are_reported_with_the_flow() {
    let ovs = Ovs::start();
    let conn = Connection::connect(ovs.mgmt()).await.expect("connect");

    // Barrier-fenced batch: not atomic, the good flows go in.
    let bad = backwards_goto(7, 0x20);
    let batch = vec![
        FlowMod::add(&drop_flow(1, 1, 0x20)),
        FlowMod::add(&bad),
        FlowMod::add(&drop_flow(2, 1, 0x20)),
    ];
    match conn.send_batch(batch).await {
        Err(ConnError::Rejected { failures, atomic }) => {
            assert!(!atomic);
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(failures[0].flow_mod.flow(), bad);
            assert_eq!(failures[0].error.code_name(), Some("OFPBIC_BAD_TABLE_ID"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let got = installed(&conn, 0x20).await;
    assert_eq!(
        got,
        [drop_flow(1, 1, 0x20), drop_flow(2, 1, 0x20)]
            .into_iter()
            .collect()
    );

    // Bundle: atomic, nothing goes in.
    let bundle = vec![
        FlowMod::add(&drop_flow(3, 1, 0x30)),
        FlowMod::add(&backwards_goto(8, 0x30)),
        FlowMod::add(&drop_flow(4, 1, 0x30)),
    ];
    match conn.send_bundle(bundle).await {
        Err(ConnError::Rejected { failures, atomic }) => {
            assert!(atomic);
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(failures[0].flow_mod.flow(), backwards_goto(8, 0x30));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(installed(&conn, 0x30).await.is_empty());
    // The session is still usable after both failures.
    conn.send_bundle(vec![FlowMod::add(&drop_flow(3, 1, 0x30))])
        .await
        .unwrap();
    assert_eq!(installed(&conn, 0x30).await.len(), 1);
    let table_all = FlowMod::delete_cookie(Some(OFPTT_ALL), 0, 0);
    conn.send_batch(vec![table_all]).await.unwrap();
    assert!(conn
        .flow_stats(FlowStatsRequest::all())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn session_over_tcp() {
    let ovs = Ovs::start();
    // OVS listens in its own namespace; a relay on 127.0.0.1 forwards to its unix socket, so
    // the TCP code path runs against the real switch.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mgmt = ovs.mgmt();
    let relay = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut unix = tokio::net::UnixStream::connect(mgmt).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
    });
    let conn = Connection::connect_tcp(addr)
        .await
        .expect("connect over TCP");
    conn.send_bundle(vec![FlowMod::add(&drop_flow(1, 9, 0x40))])
        .await
        .unwrap();
    assert_eq!(installed(&conn, 0x40).await.len(), 1);
    drop(conn);
    relay.abort();
}

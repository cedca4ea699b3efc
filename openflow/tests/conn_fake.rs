//! The connection against a scripted switch over an in-memory pipe: handshake and version
//! negotiation, echo answering, xid multiplexing, multipart gathering, batch error reporting
//! and a switch that goes away. No OVS needed.

use std::time::Duration;

use openflow::codec::{
    self, AggregateStats, ErrorMsg, Features, FlowStatsReply, FlowStatsRequest, Hello, Message,
};
use openflow::{ConnError, Connection, Flow, FlowMod, Match};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// The switch's end of the pipe.
struct FakeSwitch {
    io: DuplexStream,
    buf: Vec<u8>,
}

impl FakeSwitch {
    async fn recv(&mut self) -> (u32, Message) {
        loop {
            if let Some(n) = codec::frame_len(&self.buf).unwrap() {
                let frame: Vec<u8> = self.buf.drain(..n).collect();
                let (h, m) = codec::decode(&frame).unwrap();
                return (h.xid, m);
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "controller closed the pipe");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send(&mut self, msg: Message, xid: u32) {
        self.io
            .write_all(&codec::encode(&msg, xid).unwrap())
            .await
            .unwrap();
    }

    /// Answers the controller's HELLO and FEATURES_REQUEST.
    async fn handshake(&mut self) {
        let (_, m) = self.recv().await;
        assert_eq!(m, Message::Hello(Hello::of13()));
        self.send(Message::Hello(Hello::of13()), 100).await;
        let (xid, m) = self.recv().await;
        assert_eq!(m, Message::FeaturesRequest);
        let f = Features {
            datapath_id: 0xabc,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x4f,
        };
        self.send(Message::FeaturesReply(f), xid).await;
    }
}

fn pipe() -> (DuplexStream, FakeSwitch) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (
        a,
        FakeSwitch {
            io: b,
            buf: Vec::new(),
        },
    )
}

async fn connected() -> (Connection, FakeSwitch) {
    let (a, mut sw) = pipe();
    let (conn, ()) = tokio::join!(Connection::from_stream(a), sw.handshake());
    (conn.unwrap(), sw)
}

fn flow(priority: u16) -> Flow {
    Flow {
        table: 0,
        priority,
        matches: Match {
            in_port: Some(u32::from(priority)),
            ..Match::default()
        },
        actions: vec![],
        goto_table: None,
        cookie: 7,
    }
}

#[tokio::test]
async fn handshake_features_and_echo() {
    let (conn, mut sw) = connected().await;
    assert_eq!(conn.features().datapath_id, 0xabc);
    // The switch's echo request is answered in the background with the same xid and data.
    sw.send(Message::EchoRequest(vec![9, 8, 7]), 555).await;
    assert_eq!(sw.recv().await, (555, Message::EchoReply(vec![9, 8, 7])));
    // Our echo request.
    let echo = conn.echo(vec![1, 2]);
    let switch = async {
        let (xid, m) = sw.recv().await;
        assert_eq!(m, Message::EchoRequest(vec![1, 2]));
        sw.send(Message::EchoReply(vec![1, 2]), xid).await;
    };
    let (r, ()) = tokio::join!(echo, switch);
    assert_eq!(r.unwrap(), vec![1, 2]);
}

#[tokio::test]
async fn replies_find_their_requests_by_xid() {
    let (conn, mut sw) = connected().await;
    let switch = async {
        let (x1, m1) = sw.recv().await;
        let (x2, m2) = sw.recv().await;
        assert_eq!(
            (m1, m2),
            (Message::BarrierRequest, Message::EchoRequest(vec![5]))
        );
        // Answer in reverse order.
        sw.send(Message::EchoReply(vec![5]), x2).await;
        sw.send(Message::BarrierReply, x1).await;
    };
    let (b, e, ()) = tokio::join!(conn.barrier(), conn.echo(vec![5]), switch);
    b.unwrap();
    assert_eq!(e.unwrap(), vec![5]);
}

#[tokio::test]
async fn multipart_replies_are_gathered() {
    let (conn, mut sw) = connected().await;
    let switch = async {
        let (xid, m) = sw.recv().await;
        assert!(matches!(m, Message::FlowStatsRequest(_)));
        for (more, p) in [(true, 1), (true, 2), (false, 3)] {
            let stats = openflow::codec::FlowStats {
                flow: flow(p),
                duration_sec: 0,
                duration_nsec: 0,
                idle_timeout: 0,
                hard_timeout: 0,
                flags: 0,
                packet_count: 0,
                byte_count: 0,
            };
            let reply = FlowStatsReply {
                more,
                flows: vec![Ok(stats)],
            };
            sw.send(Message::FlowStatsReply(reply), xid).await;
        }
    };
    let (r, ()) = tokio::join!(conn.flow_stats(FlowStatsRequest::by_cookie(7, !0)), switch);
    let got: Vec<u16> = r
        .unwrap()
        .into_iter()
        .map(|f| f.unwrap().flow.priority)
        .collect();
    assert_eq!(got, vec![1, 2, 3]);
}

#[tokio::test]
async fn aggregate_request_and_reply() {
    let (conn, mut sw) = connected().await;
    let totals = AggregateStats {
        packet_count: 12,
        byte_count: 720,
        flow_count: 4,
    };
    let switch = async {
        let (xid, m) = sw.recv().await;
        assert_eq!(
            m,
            Message::AggregateRequest(FlowStatsRequest::by_cookie(7, !0))
        );
        sw.send(Message::AggregateReply(totals), xid).await;
        // A second request refused by the switch.
        let (xid, m) = sw.recv().await;
        assert_eq!(m, Message::AggregateRequest(FlowStatsRequest::all()));
        let err = ErrorMsg {
            err_type: 1,
            code: 2,
            experimenter: None,
            data: vec![],
        };
        sw.send(Message::Error(err), xid).await;
    };
    let client = async {
        let first = conn.aggregate(FlowStatsRequest::by_cookie(7, !0)).await;
        let second = conn.aggregate(FlowStatsRequest::all()).await;
        (first, second)
    };
    let ((first, second), ()) = tokio::join!(client, switch);
    assert_eq!(first.unwrap(), totals);
    assert!(
        matches!(&second, Err(ConnError::Switch(e)) if e.code_name() == Some("OFPBRC_BAD_MULTIPART")),
        "{second:?}"
    );
}

#[tokio::test]
async fn batch_errors_name_the_flow() {
    let (conn, mut sw) = connected().await;
    let mods: Vec<FlowMod> = (1..=3).map(|p| FlowMod::add(&flow(p))).collect();
    let switch = async {
        let mut xids = Vec::new();
        for _ in 0..3 {
            let (xid, m) = sw.recv().await;
            assert!(matches!(m, Message::FlowMod(_)));
            xids.push(xid);
        }
        let (bx, m) = sw.recv().await;
        assert_eq!(m, Message::BarrierRequest);
        let err = ErrorMsg {
            err_type: 2,
            code: 4,
            experimenter: None,
            data: vec![4, 14, 0, 8, 0, 0, 0, 0],
        };
        sw.send(Message::Error(err), xids[1]).await;
        sw.send(Message::BarrierReply, bx).await;
    };
    let (r, ()) = tokio::join!(conn.send_batch(mods.clone()), switch);
    match r {
        Err(ConnError::Rejected { failures, atomic }) => {
            assert!(!atomic);
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].flow_mod, mods[1]);
            assert_eq!(failures[0].error.code_name(), Some("OFPBAC_BAD_OUT_PORT"));
            let text = failures[0].to_string();
            assert!(text.contains("priority=2"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn request_errors_and_messages_without_replies() {
    let (conn, mut sw) = connected().await;
    let switch = async {
        let (xid, _) = sw.recv().await;
        let err = ErrorMsg {
            err_type: 1,
            code: 1,
            experimenter: None,
            data: vec![],
        };
        sw.send(Message::Error(err), xid).await;
    };
    let (r, ()) = tokio::join!(conn.barrier(), switch);
    assert!(matches!(r, Err(ConnError::Switch(e)) if e.code_name() == Some("OFPBRC_BAD_TYPE")));
    let r = conn.request(Message::FlowMod(FlowMod::add(&flow(1)))).await;
    assert!(matches!(r, Err(ConnError::NoReply(14))));
}

#[tokio::test]
async fn refuses_a_switch_without_openflow_13() {
    let (a, mut sw) = pipe();
    let switch = async {
        let _ = sw.recv().await;
        sw.send(
            Message::Hello(Hello {
                versions: Some(1 << 1),
            }),
            1,
        )
        .await;
        // The controller says why before giving up.
        let (_, m) = sw.recv().await;
        assert!(matches!(m, Message::Error(e) if e.code_name() == Some("OFPHFC_INCOMPATIBLE")));
    };
    let (r, ()) = tokio::join!(Connection::from_stream(a), switch);
    assert!(matches!(r, Err(ConnError::Handshake(_))), "{:?}", r.err());
}

#[tokio::test]
async fn a_vanishing_switch_fails_waiting_requests() {
    let (conn, mut sw) = connected().await;
    let switch = async move {
        let _ = sw.recv().await;
        drop(sw);
    };
    let (r, ()) = tokio::join!(conn.barrier(), switch);
    assert!(matches!(r, Err(ConnError::Closed)), "{r:?}");
    assert!(conn.is_closed());
    assert!(matches!(conn.barrier().await, Err(ConnError::Closed)));
}

#[tokio::test]
async fn garbage_from_the_switch_closes_the_session() {
    let (conn, mut sw) = connected().await;
    let switch = async {
        let _ = sw.recv().await;
        // A header whose length is shorter than a header: the stream cannot be resynced.
        sw.io.write_all(&[4, 21, 0, 2, 0, 0, 0, 1]).await.unwrap();
    };
    let (r, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(5), conn.barrier()),
        switch
    );
    assert!(matches!(r, Ok(Err(ConnError::Closed))), "{r:?}");
}

//! Whole-message fixtures: bytes captured from OVS 3.1 (`ovs-vswitchd` replies, `ovs-ofctl -O
//! OpenFlow13` requests) decoded and encoded, plus mutation tests showing that no byte string
//! makes the decoder panic.

use std::net::Ipv4Addr;

use super::test_util::hex;
use super::*;
use crate::flow::{Action, CtAction, CtZone, Flow, Masked, Match};

/// HELLO from ovs-vswitchd (bridge with protocols=OpenFlow13).
const OVS_HELLO: &str = "0400 0010 0000002f 0001 0008 00000010";
/// FEATURES_REPLY from ovs-vswitchd.
const OVS_FEATURES: &str =
    "0406 0020 00000002 00008651b2712444 00000000 fe 00 0000 0000004f 00000000";
/// OFPMP_FLOW reply from ovs-vswitchd to a request for cookie 0x10/-1, holding
/// `table=10,priority=100,ct_state=+new+trk,ip,reg1=0x5,nw_dst=10.1.1.2
/// actions=ct(commit,zone=NXM_NX_REG4[0..15]),goto_table:20` and
/// `table=12,priority=10,tcp,tp_dst=80 actions=conjunction(42,2/2)` (statistics included).
const OVS_FLOW_STATS: &str = "
    0413 00f0 00000004 0001 0000 00000000
    0080 0a 00 0000000b 626dc000 0064 0000 0000 0000 00000000
      0000000000000010 0000000000000000 0000000000000000
      0001 0026 80000a02 0800 80001804 0a010102 00010204 00000005 0001d308 00000021 00000021
        0000
      0004 0020 00000000
        ffff 0018 00002320 0023 0001 00010804 000f ff 000000 0000
      0001 0008 14 000000
    0060 0c 00 00000009 89680000 000a 0000 0000 0000 00000000
      0000000000000010 0000000000000000 0000000000000000
      0001 0015 80000a02 0800 80001401 06 80001c02 0050 000000
      0004 0018 00000000
        ffff 0010 00002320 0022 01 02 0000002a";
/// ovs-ofctl -O OpenFlow13 dump-aggregate with `cookie=0x10/-1` (every table, any port and
/// group, empty match), xid 6.
const OFCTL_AGGREGATE_BY_COOKIE: &str = "
    0412 0038 00000006 0002 0000 00000000
    ff 000000 ffffffff ffffffff 00000000 0000000000000010 ffffffffffffffff
    0001 0004 00000000";
/// ovs-ofctl -O OpenFlow13 dump-aggregate with `table=10,ip,nw_dst=10.1.1.2`, xid 6.
const OFCTL_AGGREGATE_BY_MATCH: &str = "
    0412 0048 00000006 0002 0000 00000000
    0a 000000 ffffffff ffffffff 00000000 0000000000000000 0000000000000000
    0001 0012 80000a02 0800 80001804 0a010102 000000000000";
/// ovs-vswitchd's OFPMP_AGGREGATE reply to [`OFCTL_AGGREGATE_BY_COOKIE`] with three flows of
/// cookie 0x10 having matched 3 packets of 60 bytes each in two of them.
const OVS_AGGREGATE_REPLY: &str = "
    0413 0028 00000006 0002 0000 00000000
    0000000000000006 0000000000000168 00000003 00000000";
/// ERROR from ovs-vswitchd for a FLOW_MOD (xid 5) with an action of unknown type 0x63.
const OVS_ERROR: &str = "
    0401 005c 00000005 0002 0000
    040e005000000005000000000000009900000000000000000000000000000001ffffffffffffffffffffffff
    000000000001000400000000000400180000000000630008000000000000000800000000";
/// ovs-ofctl -O OpenFlow13 --bundle add-flow: open, add (a FLOW_MOD for
/// `cookie=0x20,table=20,priority=1,ip actions=conjunction(42,1/2)`), commit.
const OFCTL_BUNDLE_OPEN: &str = "0404 0018 00000003 4f4e4600 000008fc 00000000 0000 0003";
const OFCTL_BUNDLE_ADD: &str = "
    0404 0070 00000002 4f4e4600 000008fd 00000000 0000 0003
    040e 0058 00000002 0000000000000020 0000000000000000 14 00 0000 0000 0001
      ffffffff ffffffff ffffffff 0000 0000
      0001 000a 80000a02 0800 000000000000
      0004 0018 00000000 ffff 0010 00002320 0022 00 02 0000002a";
const OFCTL_BUNDLE_COMMIT: &str = "0404 0018 00000005 4f4e4600 000008fc 00000000 0004 0003";

fn installed_flows() -> Vec<Flow> {
    let mut m = Match {
        eth_type: Some(0x0800),
        ipv4_dst: Some(Masked::exact(Ipv4Addr::new(10, 1, 1, 2))),
        ct_state: Some(Masked::with_mask(0x21, 0x21)),
        ..Match::default()
    };
    m.regs[1] = Some(Masked::exact(5));
    let a = Flow {
        table: 10,
        priority: 100,
        matches: m,
        actions: vec![Action::Ct(CtAction {
            commit: true,
            zone: CtZone::Reg(4),
            table: None,
            set_mark: None,
        })],
        goto_table: Some(20),
        cookie: 0x10,
    };
    let b = Flow {
        table: 12,
        priority: 10,
        matches: Match {
            eth_type: Some(0x0800),
            ip_proto: Some(6),
            tcp_dst: Some(Masked::exact(80)),
            ..Match::default()
        },
        actions: vec![Action::Conjunction {
            id: 42,
            clause: 2,
            n_clauses: 2,
        }],
        goto_table: None,
        cookie: 0x10,
    };
    vec![a, b]
}

#[test]
fn decodes_ovs_session_messages() {
    let (h, m) = decode(&hex(OVS_HELLO)).unwrap();
    assert_eq!(h.xid, 0x2f);
    assert_eq!(
        m,
        Message::Hello(Hello {
            versions: Some(0x10)
        })
    );
    let (_, m) = decode(&hex(OVS_FEATURES)).unwrap();
    let Message::FeaturesReply(f) = m else {
        panic!("{m:?}")
    };
    assert_eq!(f.datapath_id, 0x8651_b271_2444);
    assert_eq!(f.n_tables, 254);
    assert_eq!(
        encode(&Message::FeaturesReply(f), 2).unwrap(),
        hex(OVS_FEATURES)
    );
    let (h, m) = decode(&hex("0415 0008 00000006")).unwrap();
    assert_eq!((h.xid, m), (6, Message::BarrierReply));
}

#[test]
fn decodes_ovs_flow_stats_into_flows() {
    let (h, m) = decode(&hex(OVS_FLOW_STATS)).unwrap();
    assert_eq!(h.xid, 4);
    let Message::FlowStatsReply(reply) = m else {
        panic!("{m:?}")
    };
    assert!(!reply.more);
    let flows: Vec<Flow> = reply
        .flows
        .iter()
        .map(|f| f.as_ref().unwrap().flow.clone())
        .collect();
    assert_eq!(flows, installed_flows());
}

#[test]
fn flow_stats_reply_round_trips() {
    let (_, m) = decode(&hex(OVS_FLOW_STATS)).unwrap();
    let bytes = encode(&m, 4).unwrap();
    let (_, again) = decode(&bytes).unwrap();
    assert_eq!(again, m);
}

#[test]
fn aggregate_requests_are_byte_identical_to_ovs_ofctl() {
    let by_cookie = Message::AggregateRequest(FlowStatsRequest::by_cookie(0x10, u64::MAX));
    assert_eq!(
        encode(&by_cookie, 6).unwrap(),
        hex(OFCTL_AGGREGATE_BY_COOKIE)
    );
    assert_eq!(
        decode(&hex(OFCTL_AGGREGATE_BY_COOKIE)).unwrap().1,
        by_cookie
    );

    let by_match = Message::AggregateRequest(FlowStatsRequest {
        table: 10,
        matches: Match {
            eth_type: Some(0x0800),
            ipv4_dst: Some(Masked::exact(Ipv4Addr::new(10, 1, 1, 2))),
            ..Match::default()
        },
        ..FlowStatsRequest::all()
    });
    assert_eq!(encode(&by_match, 6).unwrap(), hex(OFCTL_AGGREGATE_BY_MATCH));
    assert_eq!(decode(&hex(OFCTL_AGGREGATE_BY_MATCH)).unwrap().1, by_match);
    // Same body as a flow-stats request; only the multipart type differs.
    let Message::AggregateRequest(req) = by_match else {
        unreachable!()
    };
    let mut flow = encode(&Message::FlowStatsRequest(req), 6).unwrap();
    assert_eq!(flow[8..10], [0, 1]);
    flow[9] = 2;
    assert_eq!(flow, hex(OFCTL_AGGREGATE_BY_MATCH));
}

#[test]
fn decodes_ovs_aggregate_reply() {
    let (h, m) = decode(&hex(OVS_AGGREGATE_REPLY)).unwrap();
    assert_eq!(h.xid, 6);
    let want = AggregateStats {
        packet_count: 6,
        byte_count: 360,
        flow_count: 3,
    };
    assert_eq!(m, Message::AggregateReply(want));
    assert_eq!(encode(&m, 6).unwrap(), hex(OVS_AGGREGATE_REPLY));
}

#[test]
fn aggregate_reply_of_the_wrong_length_is_an_error() {
    // Without the 4 pad bytes, and with 8 bytes too many (length fields adjusted).
    let short =
        hex("0413 0024 00000006 0002 0000 00000000 0000000000000006 0000000000000168 00000003");
    let long = hex("0413 0030 00000006 0002 0000 00000000
         0000000000000006 0000000000000168 00000003 00000000 0000000000000000");
    for bytes in [short, long] {
        assert!(
            matches!(
                decode(&bytes),
                Err(DecodeError::BadLength {
                    what: "ofp_aggregate_stats_reply",
                    ..
                })
            ),
            "{:?}",
            decode(&bytes)
        );
    }
}

#[test]
fn decodes_ovs_error() {
    let (h, m) = decode(&hex(OVS_ERROR)).unwrap();
    let Message::Error(e) = m else {
        panic!("{m:?}")
    };
    assert_eq!(h.xid, 5);
    assert_eq!(e.code_name(), Some("OFPBAC_BAD_TYPE"));
    assert_eq!(e.type_name(), Some("OFPET_BAD_ACTION"));
    assert_eq!(e.failed_request(), Some((msg_type::FLOW_MOD, 5)));
}

#[test]
fn encodes_requests_like_ovs_ofctl() {
    assert_eq!(
        encode(&Message::Hello(Hello::of13()), 0x2f).unwrap(),
        hex(OVS_HELLO)
    );
    let open = Message::BundleControl(BundleControl {
        bundle_id: 0,
        ctrl: BundleCtrlType::OpenRequest,
        flags: bundle_flags::ATOMIC | bundle_flags::ORDERED,
    });
    assert_eq!(encode(&open, 3).unwrap(), hex(OFCTL_BUNDLE_OPEN));
    let flow = Flow {
        table: 20,
        priority: 1,
        matches: Match {
            eth_type: Some(0x0800),
            ..Match::default()
        },
        actions: vec![Action::Conjunction {
            id: 42,
            clause: 1,
            n_clauses: 2,
        }],
        goto_table: None,
        cookie: 0x20,
    };
    let add = Message::BundleAdd(BundleAdd {
        bundle_id: 0,
        flags: 3,
        message: Box::new(Message::FlowMod(FlowMod::add(&flow))),
    });
    assert_eq!(encode(&add, 2).unwrap(), hex(OFCTL_BUNDLE_ADD));
    assert_eq!(decode(&hex(OFCTL_BUNDLE_ADD)).unwrap().1, add);
    let commit = Message::BundleControl(BundleControl {
        bundle_id: 0,
        ctrl: BundleCtrlType::CommitRequest,
        flags: 3,
    });
    assert_eq!(encode(&commit, 5).unwrap(), hex(OFCTL_BUNDLE_COMMIT));
}

#[test]
fn every_message_round_trips() {
    let flow = installed_flows().remove(0);
    let msgs = vec![
        Message::Hello(Hello::of13()),
        Message::Hello(Hello { versions: None }),
        Message::EchoRequest(vec![1, 2, 3]),
        Message::EchoReply(vec![]),
        Message::FeaturesRequest,
        Message::BarrierRequest,
        Message::BarrierReply,
        Message::FlowMod(FlowMod::add(&flow)),
        Message::FlowMod(FlowMod::modify_strict(&flow, u64::MAX)),
        Message::FlowMod(FlowMod::delete_strict(&flow.key(), 0x10, u64::MAX)),
        Message::FlowMod(FlowMod::delete_cookie(None, 0x10, u64::MAX)),
        Message::FlowStatsRequest(FlowStatsRequest::by_cookie(0x10, u64::MAX)),
        Message::AggregateRequest(FlowStatsRequest::all()),
        Message::AggregateReply(AggregateStats {
            packet_count: u64::MAX,
            byte_count: 1,
            flow_count: u32::MAX,
        }),
        Message::BundleControl(BundleControl {
            bundle_id: 7,
            ctrl: BundleCtrlType::CommitReply,
            flags: 1,
        }),
        Message::Error(ErrorMsg {
            err_type: 5,
            code: 1,
            experimenter: None,
            data: vec![4, 14, 0, 8, 0, 0, 0, 1],
        }),
        Message::Other {
            msg_type: 12,
            body: vec![0; 16],
        },
    ];
    for m in msgs {
        let bytes = encode(&m, 0x1234).unwrap();
        assert_eq!(frame_len(&bytes).unwrap(), Some(bytes.len()));
        let (h, back) = decode(&bytes).unwrap();
        assert_eq!(h.xid, 0x1234);
        assert_eq!(back, m);
    }
}

#[test]
fn framing() {
    assert_eq!(frame_len(&hex("0400 0010 0000")).unwrap(), None);
    assert_eq!(frame_len(&hex("0400 0010 00000001 0001")).unwrap(), None);
    assert!(frame_len(&hex("0400 0004 00000001")).is_err());
    assert!(matches!(
        decode(&hex("0105 0008 00000001")),
        Err(DecodeError::BadVersion(1))
    ));
    // A HELLO of another version still decodes (that is how versions are negotiated).
    assert!(decode(&hex("0100 0008 00000001")).is_ok());
}

/// Every truncation and every single-byte corruption of every fixture decodes to a value or
/// an error, never a panic.
#[test]
fn mutations_never_panic() {
    let fixtures = [
        OVS_HELLO,
        OVS_FEATURES,
        OVS_FLOW_STATS,
        OVS_ERROR,
        OFCTL_AGGREGATE_BY_COOKIE,
        OFCTL_AGGREGATE_BY_MATCH,
        OVS_AGGREGATE_REPLY,
        OFCTL_BUNDLE_OPEN,
        OFCTL_BUNDLE_ADD,
        OFCTL_BUNDLE_COMMIT,
    ];
    for f in fixtures {
        let bytes = hex(f);
        for cut in 0..bytes.len() {
            let _ = frame_len(&bytes[..cut]);
            let _ = decode(&bytes[..cut]);
        }
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                if let Ok(Some(n)) = frame_len(&b) {
                    let _ = decode(&b[..n]);
                }
                let _ = decode(&b);
            }
        }
    }
}

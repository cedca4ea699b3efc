//! RFC 7607, AS 0, without sockets: an OPEN naming AS 0 (either field) is refused with
//! NOTIFICATION 2/2 Bad Peer AS; an AS_PATH or AS4_PATH holding AS 0 withdraws the UPDATE's
//! routes (RFC 7606 treat-as-withdraw); an AGGREGATOR or AS4_AGGREGATOR with AS 0 is dropped
//! and never passed on.

use std::net::Ipv4Addr;

use fabric_bgp::fsm::{Action, Event, Fsm, FsmConfig, State};
use fabric_bgp::packet::encode::EncodeCtx;
use fabric_bgp::packet::error::{code, open};
use fabric_bgp::packet::update::decode_update;
use fabric_bgp::packet::{Afi, Capability, DecodeCtx, Message, Open, Update};

const NEW: DecodeCtx = DecodeCtx {
    four_octet_as: true,
    ibgp: false,
};
/// A session with a speaker without the 4-octet AS capability (AS4_PATH in use).
const OLD: DecodeCtx = DecodeCtx {
    four_octet_as: false,
    ibgp: false,
};

fn attr(flags: u8, kind: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, kind, value.len() as u8];
    v.extend_from_slice(value);
    v
}

/// UPDATE body: ORIGIN, NEXT_HOP, the given attributes, NLRI 10.100.0.0/24.
fn body(attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut all = vec![attr(0x40, 1, &[0]), attr(0x40, 3, &[10, 0, 0, 2])];
    all.extend_from_slice(attrs);
    let a = all.concat();
    let mut b = vec![0, 0];
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(&[24, 10, 100, 0]);
    b
}

/// AS_PATH of one AS_SEQUENCE, 4-byte ASNs.
fn as_path4(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0x40, 2, &v)
}

/// AS_PATH of one AS_SEQUENCE, 2-byte ASNs.
fn as_path2(asns: &[u16]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0x40, 2, &v)
}

fn as4_path(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0xc0, 17, &v)
}

fn withdrawn(u: &Update) {
    assert!(
        u.treat_as_withdraw
            .as_deref()
            .is_some_and(|r| r.contains("AS 0")),
        "expected treat-as-withdraw for AS 0, got {u:?}"
    );
    assert!(u.nlri.is_empty() && u.attrs.is_none());
    assert_eq!(u.withdrawn.len(), 1);
}

#[test]
fn as_path_with_as_zero_withdraws() {
    withdrawn(&decode_update(&body(&[as_path4(&[65002, 0, 65010])]), NEW).unwrap());
    withdrawn(&decode_update(&body(&[as_path2(&[0])]), OLD).unwrap());
    let ok = decode_update(&body(&[as_path4(&[65002, 65010])]), NEW).unwrap();
    assert!(ok.treat_as_withdraw.is_none() && ok.nlri.len() == 1);
}

#[test]
fn as_path_set_with_as_zero_withdraws() {
    let mut v = vec![1, 2];
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(&65010u32.to_be_bytes());
    withdrawn(&decode_update(&body(&[attr(0x40, 2, &v)]), NEW).unwrap());
}

#[test]
fn as4_path_with_as_zero_withdraws() {
    // 2-byte session: AS_PATH 23456 (AS_TRANS) and AS4_PATH carrying the real ASNs.
    let u = decode_update(&body(&[as_path2(&[65002, 23456]), as4_path(&[0])]), OLD).unwrap();
    withdrawn(&u);
    let ok = decode_update(
        &body(&[as_path2(&[65002, 23456]), as4_path(&[4_200_000_000])]),
        OLD,
    )
    .unwrap();
    assert!(ok.treat_as_withdraw.is_none());
    let merged: Vec<u32> = ok
        .attrs
        .unwrap()
        .as_path
        .segments
        .iter()
        .flat_map(|s| s.asns.clone())
        .collect();
    assert_eq!(merged, vec![65002, 4_200_000_000]);
}

#[test]
fn aggregator_with_as_zero_is_dropped_and_not_passed_on() {
    let mut agg = 0u32.to_be_bytes().to_vec();
    agg.extend_from_slice(&[10, 0, 0, 9]);
    let u = decode_update(&body(&[as_path4(&[65002]), attr(0xc0, 7, &agg)]), NEW).unwrap();
    assert!(u.treat_as_withdraw.is_none(), "the routes stay: {u:?}");
    assert_eq!(u.nlri.len(), 1);
    assert!(
        u.discarded.iter().any(|d| d.contains("AGGREGATOR")),
        "{u:?}"
    );
    let attrs = u.attrs.clone().unwrap();
    assert_eq!(attrs.aggregator, None);
    // Re-encoded for a neighbour, the attribute is not there (type 7 never appears).
    let out = Message::Update(Box::new(u)).to_bytes(EncodeCtx::default());
    let again = decode_update(&out[19..], NEW).unwrap();
    assert_eq!(again.attrs.unwrap().aggregator, None);
    assert!(again.discarded.is_empty(), "nothing left to discard");

    // On a 2-byte session: AGGREGATOR 0 (2 bytes) is dropped the same way.
    let agg2 = [0, 0, 10, 0, 0, 9];
    let u = decode_update(&body(&[as_path2(&[65002]), attr(0xc0, 7, &agg2)]), OLD).unwrap();
    assert_eq!(u.attrs.unwrap().aggregator, None);
}

#[test]
fn as4_aggregator_with_as_zero_is_dropped() {
    // AGGREGATOR with AS_TRANS, AS4_AGGREGATOR with 0: the real AS is unknown, the
    // AS4_AGGREGATOR goes and the AGGREGATOR keeps AS_TRANS.
    let agg2 = [0x5b, 0xa0, 10, 0, 0, 9];
    let mut agg4 = 0u32.to_be_bytes().to_vec();
    agg4.extend_from_slice(&[10, 0, 0, 9]);
    let u = decode_update(
        &body(&[
            as_path2(&[65002]),
            attr(0xc0, 7, &agg2),
            attr(0xc0, 18, &agg4),
        ]),
        OLD,
    )
    .unwrap();
    assert!(u.treat_as_withdraw.is_none());
    assert!(
        u.discarded.iter().any(|d| d.contains("AS4_AGGREGATOR")),
        "{u:?}"
    );
    assert_eq!(
        u.attrs.unwrap().aggregator,
        Some((23456, Ipv4Addr::new(10, 0, 0, 9)))
    );
}

fn fsm(peer_as: Option<u32>) -> Fsm {
    let mut f = Fsm::new(FsmConfig {
        local_as: 65001,
        local_id: Ipv4Addr::new(10, 0, 0, 1),
        peer_as,
        hold_time: 90,
        connect_retry: 5,
        passive: false,
        families: vec![Afi::Ipv4],
        graceful_restart: None,
        restarting: false,
    });
    f.handle(Event::ManualStart);
    f.handle(Event::TcpCrAcked);
    assert_eq!(f.state(), State::OpenSent);
    f
}

fn bad_peer_as(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(a, Action::Send(Message::Notification(n))
            if n.code == code::OPEN && n.subcode == open::BAD_PEER_AS)
    })
}

#[test]
fn open_with_as_zero_is_bad_peer_as() {
    let id = Ipv4Addr::new(10, 0, 0, 2);
    // My AS 0, no 4-octet capability; a dynamic neighbour (any AS) and a configured one.
    for peer_as in [None, Some(65002)] {
        let mut f = fsm(peer_as);
        let a = f.handle(Event::OpenReceived(Open::new(0, 90, id, vec![])));
        assert!(bad_peer_as(&a), "My AS 0: {a:?}");
        assert_eq!(f.state(), State::Idle);
    }
    // 4-octet capability 0 (My AS AS_TRANS, or even a plausible 2-byte AS).
    for my_as in [23456u16, 65002] {
        let mut f = fsm(None);
        let open = Open {
            my_as,
            hold_time: 90,
            bgp_id: id,
            capabilities: vec![Capability::FourOctetAs(0)],
        };
        let a = f.handle(Event::OpenReceived(open));
        assert!(bad_peer_as(&a), "capability AS 0: {a:?}");
    }
    // My AS 0 with a real 4-octet AS is still AS 0 in the OPEN.
    let mut f = fsm(None);
    let open = Open {
        my_as: 0,
        hold_time: 90,
        bgp_id: id,
        capabilities: vec![Capability::FourOctetAs(65002)],
    };
    assert!(bad_peer_as(&f.handle(Event::OpenReceived(open))));
    // A good OPEN still passes.
    let mut f = fsm(None);
    let a = f.handle(Event::OpenReceived(Open::new(
        65002,
        90,
        id,
        vec![Capability::FourOctetAs(65002)],
    )));
    assert!(!bad_peer_as(&a));
    assert_eq!(f.state(), State::OpenConfirm);
}

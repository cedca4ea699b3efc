//! Update groups (`rib::groups`): peers exported the same routes share one export pass, one
//! Adj-RIB-Out and one set of UPDATE buffers. Without I/O: every member gets exactly what
//! per-peer export gives it (a proptest against the per-peer path, on random route sets and
//! sessions coming and going), a late member gets the full dump, members of one group share
//! the buffers, and a peer whose configuration differs is in another group. Over loopback: a
//! member that stops reading does not hold up the others.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::raw_peer::{RawOpen, RawPeer};
use fabric_bgp::config::DynamicNeighbors;
use fabric_bgp::packet::encode::EncodeCtx;
use fabric_bgp::packet::frame::split_message;
use fabric_bgp::packet::{decode_body, Afi, AsPath, DecodeCtx, Message, PathAttrs, Prefix, Update};
use fabric_bgp::policy::Policy;
use fabric_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};
use fabric_bgp::{Speaker, SpeakerConfig};
use proptest::prelude::*;

const AS: u32 = 65001;
const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// Accepts everything, but says its export may look at the peer: every peer in a group of
/// its own, which is the per-peer export path (one Adj-RIB-Out per peer, its own routes left
/// out, one export and packing per peer).
#[derive(Debug)]
struct PerPeer;

impl Policy for PerPeer {}

fn rib(per_peer: bool) -> Rib {
    let mut r = Rib::new(RibConfig {
        local_as: AS,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        cluster_id: Some(CLUSTER),
        max_paths: 1,
        track_changes: false,
        export_local_only: false,
    });
    if per_peer {
        r.set_policy(Arc::new(PerPeer));
    }
    r
}

/// The peers of the proptest: 0-3 route-reflector clients alike (one group), 4 a non-client,
/// 5 and 6 eBGP peers in one AS (one group), 7 a client denying community 100 and 8 a client
/// with next-hop-self (a group each).
const PEERS: usize = 9;

fn info(n: usize) -> PeerInfo {
    let ebgp = n == 5 || n == 6;
    PeerInfo {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 1, n as u8 + 2)),
        router_id: Ipv4Addr::new(10, 0, 1, n as u8 + 2),
        asn: if ebgp { 65002 } else { AS },
        local_as: AS,
        ibgp: !ebgp,
        rr_client: !ebgp && n != 4,
        local_address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        local_v6_next_hop: None,
        next_hop: None,
        next_hop_self: n == 8,
        max_prefix: None,
        families: vec![Afi::Ipv4],
        import_local_pref: None,
        enforce_first_as: false,
        export_deny_communities: if n == 7 { vec![100] } else { Vec::new() },
        export_strip_communities: Vec::new(),
    }
}

fn add_peers(r: &mut Rib) -> Vec<PeerId> {
    (0..PEERS)
        .map(|n| {
            let id = r.add_peer(info(n));
            r.set_encode_ctx(id, EncodeCtx::default());
            id
        })
        .collect()
}

fn prefix(i: usize) -> Prefix {
    if i < 6 {
        format!("10.50.0.{i}/32").parse().unwrap()
    } else {
        format!("10.51.{i}.0/24").parse().unwrap()
    }
}

/// Attribute sets a peer may send: the same set from two sources (ORIGINATOR_ID already set,
/// or from the two eBGP peers) exports to equal attributes, which moves a prefix between
/// members without a change the group would announce.
fn attrs(i: usize) -> PathAttrs {
    let nh = |d| Some(IpAddr::V4(Ipv4Addr::new(10, 9, 0, d)));
    match i {
        0 => PathAttrs {
            next_hop: nh(1),
            ..PathAttrs::default()
        },
        1 => PathAttrs {
            as_path: AsPath::sequence(vec![65002]),
            next_hop: nh(1),
            ..PathAttrs::default()
        },
        2 => PathAttrs {
            next_hop: nh(2),
            local_pref: Some(200),
            ..PathAttrs::default()
        },
        3 => PathAttrs {
            next_hop: nh(1),
            originator_id: Some(Ipv4Addr::new(10, 8, 0, 8)),
            ..PathAttrs::default()
        },
        _ => PathAttrs {
            next_hop: nh(3),
            communities: vec![100],
            ..PathAttrs::default()
        },
    }
}

#[derive(Debug, Clone)]
enum Op {
    Announce(usize, usize, usize),
    Withdraw(usize, usize),
    Local(usize, usize),
    LocalWithdraw(usize),
    Down(usize),
    Up(usize),
    Refresh(usize),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PEERS, 0..10usize, 0..5usize).prop_map(|(p, x, a)| Op::Announce(p, x, a)),
        3 => (0..PEERS, 0..10usize).prop_map(|(p, x)| Op::Withdraw(p, x)),
        1 => (0..10usize, 0..5usize).prop_map(|(x, a)| Op::Local(x, a)),
        1 => (0..10usize).prop_map(Op::LocalWithdraw),
        1 => (0..PEERS).prop_map(Op::Down),
        2 => (0..PEERS).prop_map(Op::Up),
        1 => (0..PEERS).prop_map(Op::Refresh),
        3 => Just(Op::Flush),
    ]
}

/// What a flush told each peer: per prefix the route or a withdrawal (a prefix at most once),
/// and how many End-of-RIBs.
type Told = BTreeMap<PeerId, (BTreeMap<Prefix, Option<PathAttrs>>, usize)>;

fn flush(r: &mut Rib) -> Told {
    let mut told = Told::new();
    for f in r.flush() {
        let ctx = DecodeCtx {
            four_octet_as: true,
            ibgp: r.peer_info(f.peer).unwrap().ibgp,
        };
        let (routes, eor) = told.entry(f.peer).or_default();
        let mut rest = &f.bytes[..];
        while let Some((h, body)) = split_message(rest, 4096).unwrap() {
            let Message::Update(u) = decode_body(h.kind, body, ctx).unwrap() else {
                panic!("not an UPDATE");
            };
            if u.withdrawn.is_empty() && u.nlri.is_empty() {
                *eor += 1;
            }
            for p in u.withdrawn {
                assert!(routes.insert(p, None).is_none(), "{p} twice to {}", f.peer);
            }
            for p in u.nlri {
                assert!(
                    routes.insert(p, u.attrs.clone()).is_none(),
                    "{p} twice to {}",
                    f.peer
                );
            }
            rest = &rest[h.len..];
        }
    }
    told
}

fn apply(r: &mut Rib, ids: &[PeerId], up: &mut [bool], op: &Op) {
    match *op {
        Op::Announce(p, x, a) if up[p] => {
            let u = Update {
                attrs: Some(attrs(a)),
                nlri: vec![prefix(x)],
                ..Update::default()
            };
            r.import_update(ids[p], u).unwrap();
        }
        Op::Withdraw(p, x) if up[p] => {
            let u = Update {
                withdrawn: vec![prefix(x)],
                ..Update::default()
            };
            r.import_update(ids[p], u).unwrap();
        }
        Op::Local(x, a) => r.announce_local(&[prefix(x)], attrs(a)),
        Op::LocalWithdraw(x) => r.withdraw_local(&[prefix(x)]),
        Op::Down(p) if up[p] => {
            r.peer_down(ids[p], false);
            up[p] = false;
        }
        Op::Up(p) if !up[p] => {
            r.peer_up(ids[p]);
            up[p] = true;
        }
        Op::Refresh(p) => r.refresh(ids[p]),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every member of every group is told exactly what the per-peer path tells it, flush by
    /// flush, and holds as many routes.
    #[test]
    fn members_get_exactly_what_per_peer_export_gives(
        initially_up in proptest::collection::vec(any::<bool>(), PEERS),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let (mut grouped, mut per_peer) = (rib(false), rib(true));
        let ids = add_peers(&mut grouped);
        prop_assert_eq!(&ids, &add_peers(&mut per_peer));
        let (mut up_g, mut up_p) = (vec![false; PEERS], vec![false; PEERS]);
        for (p, &u) in initially_up.iter().enumerate() {
            if u {
                apply(&mut grouped, &ids, &mut up_g, &Op::Up(p));
                apply(&mut per_peer, &ids, &mut up_p, &Op::Up(p));
            }
        }
        for op in ops.iter().chain([&Op::Flush]) {
            apply(&mut grouped, &ids, &mut up_g, op);
            apply(&mut per_peer, &ids, &mut up_p, op);
            if let Op::Flush = op {
                prop_assert_eq!(flush(&mut grouped), flush(&mut per_peer), "after {:?}", ops);
                for &id in &ids {
                    prop_assert_eq!(grouped.advertised_count(id), per_peer.advertised_count(id));
                }
            }
        }
        // The four alike clients share a group; the others are apart.
        let g = |n: usize| grouped.update_group(ids[n]);
        for n in 1..4 {
            if up_g[0] && up_g[n] {
                prop_assert_eq!(g(0), g(n));
            }
        }
        for (a, b) in [(0, 4), (0, 5), (0, 7), (0, 8), (7, 8)] {
            if up_g[a] && up_g[b] {
                prop_assert_ne!(g(a), g(b));
            }
        }
    }
}

/// Read until `n` distinct routes came in; the number read.
async fn read_routes(peer: &mut RawPeer, n: usize) -> usize {
    let mut got = std::collections::BTreeSet::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), peer.read()).await {
            Ok(Some(Message::Update(u))) => got.extend(u.nlri),
            Ok(Some(_)) => {}
            other => panic!(
                "reading member stopped after {} routes: {other:?}",
                got.len()
            ),
        }
    }
    got.len()
}

fn host(i: u32) -> Prefix {
    Prefix::from(ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a64_0000 + i), 32).unwrap())
}

/// Routes from each of `clients` (100 each, ids 0..): the reflector case.
fn reflect(r: &mut Rib, ids: &[PeerId]) {
    for (c, &id) in ids.iter().enumerate() {
        let u = Update {
            attrs: Some(PathAttrs {
                next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, c as u8 + 2))),
                ..PathAttrs::default()
            }),
            nlri: (0..100).map(|i| host(c as u32 * 100 + i)).collect(),
            ..Update::default()
        };
        r.import_update(id, u).unwrap();
    }
}

#[test]
fn members_share_buffers_and_a_late_member_gets_the_full_dump() {
    let mut r = rib(false);
    let ids: Vec<PeerId> = (0..4)
        .map(|n| {
            let id = r.add_peer(info(n));
            r.set_encode_ctx(id, EncodeCtx::default());
            id
        })
        .collect();
    for &id in &ids[..3] {
        r.peer_up(id);
    }
    r.flush();
    reflect(&mut r, &ids[..3]);
    let flushes = r.flush_shared();
    assert_eq!(flushes.len(), 3);
    // One buffer of UPDATEs by source: each member gets it without its own slice.
    let base = |f: &fabric_bgp::rib::SharedFlush| -> Vec<usize> {
        f.parts.iter().map(|b| b.as_ptr() as usize).collect()
    };
    let first = flushes[0].parts[0].as_ptr() as usize;
    for f in &flushes {
        assert_eq!(f.announced, 200, "peer {}", f.peer);
        assert_eq!(f.messages, 2);
        let parts_len: usize = f.parts.iter().map(|b| b.len()).sum();
        assert!(parts_len > 0);
        // Every part is a slice of one buffer (within 2 KiB of the first part's start).
        for p in base(f) {
            assert!(p.abs_diff(first) < 2048, "{p:#x} vs {first:#x}");
        }
    }
    for &id in &ids[..3] {
        assert_eq!(r.advertised_count(id), 200);
    }
    // The fourth client comes up late: the dump from the group's Adj-RIB-Out, then End-of-RIB.
    r.peer_up(ids[3]);
    assert_eq!(r.update_group(ids[3]), r.update_group(ids[0]));
    let told = flush(&mut r);
    assert_eq!(told.keys().copied().collect::<Vec<_>>(), vec![ids[3]]);
    let (routes, eor) = &told[&ids[3]];
    assert_eq!(*eor, 1);
    assert_eq!(routes.len(), 300);
    assert!(routes.values().all(Option::is_some));
    assert_eq!(r.advertised_count(ids[3]), 300);
    // Its own routes go to the three others only, and nothing comes back to it.
    reflect(&mut r, &ids);
    let told = flush(&mut r);
    for &id in &ids[..3] {
        assert_eq!(
            told[&id].0.len(),
            100,
            "peer {id}: the late member's routes"
        );
    }
    assert!(!told.contains_key(&ids[3]));
    assert_eq!(r.advertised_count(ids[3]), 300);
    assert_eq!(r.advertised_count(ids[0]), 300);
}

#[test]
fn a_peer_whose_configuration_differs_is_in_another_group() {
    let mut r = rib(false);
    let mut add = |info: PeerInfo, ctx: EncodeCtx| {
        let id = r.add_peer(info);
        r.set_encode_ctx(id, ctx);
        r.peer_up(id);
        id
    };
    let a = add(info(0), EncodeCtx::default());
    let b = add(info(1), EncodeCtx::default());
    let two_octet = EncodeCtx {
        four_octet_as: false,
        ..EncodeCtx::default()
    };
    let c = add(info(2), two_octet);
    let mut deny = info(3);
    deny.export_deny_communities = vec![7];
    let d = add(deny, EncodeCtx::default());
    let mut non_client = info(4);
    non_client.rr_client = false;
    let e = add(non_client, EncodeCtx::default());
    let g = |p| r.update_group(p).unwrap();
    assert_eq!(g(a), g(b), "alike: address and router id do not matter");
    for other in [c, d, e] {
        assert_ne!(g(a), g(other));
    }
    // A peer whose configuration changes while up moves, and is sent only the difference.
    r.flush();
    r.announce_local(&[host(1)], PathAttrs::default());
    r.announce_local(
        &[host(2)],
        PathAttrs {
            communities: vec![7],
            ..PathAttrs::default()
        },
    );
    r.flush();
    let mut changed = info(1);
    changed.export_deny_communities = vec![7];
    r.set_peer_info(b, changed);
    assert_eq!(r.update_group(b), r.update_group(d));
    let told = flush(&mut r);
    let (routes, eor) = &told[&b];
    assert_eq!(*eor, 0);
    assert_eq!(
        routes.iter().collect::<Vec<_>>(),
        vec![(&host(2), &None)],
        "only the newly denied route, withdrawn"
    );
    assert_eq!(r.advertised_count(b), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_reading_does_not_hold_up_the_others() {
    // A reflector whose clients all share one group.
    let mut cfg = SpeakerConfig::new(AS, Ipv4Addr::new(10, 255, 255, 1));
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.cluster_id = Some(Ipv4Addr::new(10, 255, 255, 1));
    cfg.dynamic_neighbors.push(DynamicNeighbors {
        prefix: "127.0.0.0/8".parse().unwrap(),
        peer_as: Some(AS),
        rr_client: true,
        max_prefix: None,
        families: vec![Afi::Ipv4],
        md5_password: None,
    });
    let rr = Speaker::new(cfg).await.unwrap();
    let dst = rr.listen_addr().unwrap();
    let open = |n: u32| RawOpen::new(AS, Ipv4Addr::from(0x0a00_0000 + n));
    // The stuck member: a 4 KiB receive buffer, and it never reads after the OPEN.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 61, 1)), 0))
        .unwrap();
    let _stuck = RawPeer::establish_on(socket.connect(dst).await.unwrap(), &open(1)).await;
    let mut a = RawPeer::establish(IpAddr::V4(Ipv4Addr::new(127, 0, 61, 2)), dst, &open(2)).await;
    let mut b = RawPeer::establish(IpAddr::V4(Ipv4Addr::new(127, 0, 61, 3)), dst, &open(3)).await;
    // About 6 MB of UPDATEs (each route with 900 distinct communities, an UPDATE each): far
    // more than the stuck member's socket takes.
    for i in 0..1500u32 {
        let attrs = PathAttrs {
            communities: (0..900).map(|c| (i << 12) | c).collect(),
            ..PathAttrs::default()
        };
        rr.announce(vec![host(i)], attrs).unwrap();
    }
    assert_eq!(read_routes(&mut a, 1500).await, 1500);
    assert_eq!(read_routes(&mut b, 1500).await, 1500);
    // The group goes on: a's route reaches b while the stuck member still holds its queue.
    a.announce(&[host(5000)], IpAddr::V4(Ipv4Addr::new(127, 0, 61, 2)))
        .await;
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(Message::Update(u)) = b.read().await {
                if u.nlri.contains(&host(5000)) {
                    return u;
                }
            }
        }
    })
    .await
    .expect("b hears a's route although the stuck member reads nothing");
    assert_eq!(
        seen.attrs.unwrap().originator_id,
        Some(Ipv4Addr::new(10, 0, 0, 2))
    );
    let states = rr.peer_states().await.unwrap();
    assert_eq!(states.len(), 3, "the stuck member's session is still up");
    rr.shutdown().await;
}

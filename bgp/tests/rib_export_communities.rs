//! RIBs without I/O, per-peer export filters on standard communities
//! (`export_deny_communities`, `export_strip_communities`): one Loc-RIB, different sets for
//! different peers. The case is the agent's: address blocks marked for the reflectors only,
//! /32s covered by a block marked for the ToRs only, neither mark seen by a ToR.

use std::net::{IpAddr, Ipv4Addr};

use fabric_bgp::packet::encode::EncodeCtx;
use fabric_bgp::packet::frame::split_message;
use fabric_bgp::packet::{decode_body, Afi, DecodeCtx, Message, PathAttrs, Prefix, Update};
use fabric_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};

const LOCAL_AS: u32 = 65001;
const FABRIC_AS: u32 = 64512;
const ROUTER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The agent's marks (any values do; these are the ones `fabric-actors` uses).
const BLOCK: u32 = 0xFFFE_0001;
const COVERED: u32 = 0xFFFE_0002;
/// A community nobody filters.
const OTHER: u32 = (65001 << 16) | 7;

fn rib() -> Rib {
    Rib::new(RibConfig {
        local_as: LOCAL_AS,
        router_id: ROUTER_ID,
        cluster_id: None,
        max_paths: 4,
        track_changes: false,
        export_local_only: true,
    })
}

fn v4(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

/// A peer at 10.0.0.n in `asn` (our AS on the session `local_as`) with these filters.
fn info(n: u8, asn: u32, local_as: u32, deny: &[u32], strip: &[u32]) -> PeerInfo {
    PeerInfo {
        address: v4(n),
        router_id: Ipv4Addr::new(10, 0, 0, n),
        asn,
        local_as,
        ibgp: asn == local_as,
        rr_client: false,
        local_address: v4(1),
        local_v6_next_hop: None,
        next_hop: None,
        next_hop_self: false,
        max_prefix: None,
        families: vec![Afi::Ipv4],
        import_local_pref: None,
        enforce_first_as: true,
        export_deny_communities: deny.to_vec(),
        export_strip_communities: strip.to_vec(),
    }
}

fn add(rib: &mut Rib, info: PeerInfo) -> PeerId {
    let id = rib.add_peer(info);
    rib.set_encode_ctx(id, EncodeCtx::default());
    rib.peer_up(id);
    id
}

/// The agent's two kinds of peer: a ToR (eBGP) that must see neither blocks nor marks, a
/// reflector (iBGP in the fabric AS) that must not see covered /32s.
fn tor_and_reflector(r: &mut Rib) -> (PeerId, PeerId) {
    let tor = add(r, info(2, 65101, LOCAL_AS, &[BLOCK], &[BLOCK, COVERED]));
    let rr = add(r, info(3, FABRIC_AS, FABRIC_AS, &[COVERED], &[]));
    (tor, rr)
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn marked(communities: &[u32]) -> PathAttrs {
    PathAttrs {
        communities: communities.to_vec(),
        ..PathAttrs::default()
    }
}

/// Every UPDATE one flush sent, decoded, by peer.
fn flush(rib: &mut Rib) -> Vec<(PeerId, Update)> {
    let mut out = Vec::new();
    for f in rib.flush() {
        let ibgp = rib.peer_info(f.peer).unwrap().ibgp;
        let mut rest = &f.bytes[..];
        while let Some((h, body)) = split_message(rest, 4096).unwrap() {
            let ctx = DecodeCtx {
                four_octet_as: true,
                ibgp,
            };
            if let Message::Update(u) = decode_body(h.kind, body, ctx).unwrap() {
                out.push((f.peer, *u));
            }
            rest = &rest[h.len..];
        }
    }
    out
}

/// (prefix, communities) announced to `peer`, sorted; End-of-RIB markers carry none.
fn announced(sent: &[(PeerId, Update)], peer: PeerId) -> Vec<(Prefix, Vec<u32>)> {
    let mut out: Vec<(Prefix, Vec<u32>)> = sent
        .iter()
        .filter(|(to, _)| *to == peer)
        .flat_map(|(_, u)| {
            let communities = u
                .attrs
                .as_ref()
                .map(|a| a.communities.clone())
                .unwrap_or_default();
            u.nlri.iter().map(move |p| (*p, communities.clone()))
        })
        .collect();
    out.sort();
    out
}

fn withdrawn(sent: &[(PeerId, Update)], peer: PeerId) -> Vec<Prefix> {
    let mut out: Vec<Prefix> = sent
        .iter()
        .filter(|(to, _)| *to == peer)
        .flat_map(|(_, u)| u.withdrawn.clone())
        .collect();
    out.sort();
    out
}

#[test]
fn each_peer_gets_its_own_set_and_never_the_marks_it_strips() {
    let mut r = rib();
    let (tor, rr) = tor_and_reflector(&mut r);
    r.announce_local(&[p("10.1.2.8/29")], marked(&[BLOCK]));
    r.announce_local(&[p("10.1.2.9/32")], marked(&[COVERED, OTHER]));
    r.announce_local(&[p("10.1.2.40/32")], marked(&[]));
    let sent = flush(&mut r);
    assert_eq!(
        announced(&sent, tor),
        vec![(p("10.1.2.9/32"), vec![OTHER]), (p("10.1.2.40/32"), vec![])],
        "the ToR gets every /32, no block, no mark, the other community kept"
    );
    assert_eq!(
        announced(&sent, rr),
        vec![(p("10.1.2.8/29"), vec![BLOCK]), (p("10.1.2.40/32"), vec![])],
        "the reflector gets the block (marked, it strips nothing) and the uncovered /32"
    );
    assert_eq!(r.advertised_count(tor), 2);
    assert_eq!(r.advertised_count(rr), 2);
}

#[test]
fn a_route_re_announced_with_a_denied_community_is_withdrawn_from_that_peer_only() {
    let mut r = rib();
    let (tor, rr) = tor_and_reflector(&mut r);
    r.announce_local(&[p("10.1.2.9/32")], marked(&[]));
    let sent = flush(&mut r);
    assert_eq!(announced(&sent, rr), vec![(p("10.1.2.9/32"), vec![])]);
    assert_eq!(announced(&sent, tor), vec![(p("10.1.2.9/32"), vec![])]);

    // A block now covers it: the reflector gets the block and loses the /32; the ToR hears
    // nothing, since what it would be sent (the mark stripped) is what it has.
    r.announce_local(&[p("10.1.2.8/29")], marked(&[BLOCK]));
    r.announce_local(&[p("10.1.2.9/32")], marked(&[COVERED]));
    let sent = flush(&mut r);
    assert_eq!(announced(&sent, rr), vec![(p("10.1.2.8/29"), vec![BLOCK])]);
    assert_eq!(withdrawn(&sent, rr), vec![p("10.1.2.9/32")]);
    assert!(
        sent.iter().all(|(to, _)| *to != tor),
        "the ToR was sent something: {sent:?}"
    );

    // The block goes (its addresses given back): the /32 comes back to the reflector
    // unmarked, the block is withdrawn; the ToR still hears nothing.
    r.announce_local(&[p("10.1.2.9/32")], marked(&[]));
    r.withdraw_local(&[p("10.1.2.8/29")]);
    let sent = flush(&mut r);
    assert_eq!(announced(&sent, rr), vec![(p("10.1.2.9/32"), vec![])]);
    assert_eq!(withdrawn(&sent, rr), vec![p("10.1.2.8/29")]);
    assert!(sent.iter().all(|(to, _)| *to != tor), "{sent:?}");
}

#[test]
fn a_peer_coming_up_later_gets_only_its_set() {
    let mut r = rib();
    r.announce_local(&[p("10.1.2.8/29")], marked(&[BLOCK]));
    r.announce_local(&[p("10.1.2.9/32")], marked(&[COVERED]));
    assert!(flush(&mut r).is_empty(), "no peer yet");
    let (tor, rr) = tor_and_reflector(&mut r);
    let sent = flush(&mut r);
    assert_eq!(announced(&sent, tor), vec![(p("10.1.2.9/32"), vec![])]);
    assert_eq!(announced(&sent, rr), vec![(p("10.1.2.8/29"), vec![BLOCK])]);
    // A peer without filters gets everything as it is.
    let plain = add(&mut r, info(4, 65102, LOCAL_AS, &[], &[]));
    let sent = flush(&mut r);
    assert_eq!(
        announced(&sent, plain),
        vec![
            (p("10.1.2.8/29"), vec![BLOCK]),
            (p("10.1.2.9/32"), vec![COVERED])
        ]
    );
}

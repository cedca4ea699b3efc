//! RIBs without I/O, the per-session options: our AS per session (`local_as`), a configured
//! next hop, LOCAL_PREF set on import, enforce-first-as on eBGP, export of local routes only,
//! routes whose next hop is one of our own addresses, and peer slots reused.

use std::net::{IpAddr, Ipv4Addr};

use fabric_bgp::packet::encode::EncodeCtx;
use fabric_bgp::packet::frame::split_message;
use fabric_bgp::packet::{
    decode_body, Afi, AsPath, DecodeCtx, Message, MpReach, PathAttrs, Prefix, Update,
};
use fabric_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};

const LOCAL_AS: u32 = 65001;
const ROUTER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn rib(export_local_only: bool) -> Rib {
    Rib::new(RibConfig {
        local_as: LOCAL_AS,
        router_id: ROUTER_ID,
        cluster_id: Some(ROUTER_ID),
        max_paths: 4,
        track_changes: false,
        export_local_only,
    })
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// A peer at 10.0.0.n in `asn`, our AS on the session being `local_as`.
fn info(n: u8, asn: u32, local_as: u32) -> PeerInfo {
    PeerInfo {
        address: v4(10, 0, 0, n),
        router_id: Ipv4Addr::new(10, 0, 0, n),
        asn,
        local_as,
        ibgp: asn == local_as,
        rr_client: false,
        local_address: v4(10, 0, 0, 1),
        local_v6_next_hop: None,
        next_hop: None,
        next_hop_self: false,
        max_prefix: None,
        families: vec![Afi::Ipv4, Afi::Ipv6],
        import_local_pref: None,
        enforce_first_as: true,
        export_deny_communities: Vec::new(),
        export_strip_communities: Vec::new(),
    }
}

fn add(rib: &mut Rib, info: PeerInfo) -> PeerId {
    let id = rib.add_peer(info);
    rib.set_encode_ctx(id, EncodeCtx::default());
    rib.peer_up(id);
    id
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn attrs(path: &[u32], nh: IpAddr) -> PathAttrs {
    PathAttrs {
        as_path: AsPath::sequence(path.to_vec()),
        next_hop: Some(nh),
        ..PathAttrs::default()
    }
}

fn announce(prefixes: &[&str], a: PathAttrs) -> Update {
    Update {
        attrs: Some(a),
        nlri: prefixes.iter().map(|s| p(s)).collect(),
        ..Update::default()
    }
}

/// Every UPDATE each peer was sent by one flush, decoded.
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

/// Prefixes announced to `peer` in a flush's output, with their attributes.
fn announced_to(sent: &[(PeerId, Update)], peer: PeerId) -> Vec<(Prefix, PathAttrs)> {
    sent.iter()
        .filter(|(to, _)| *to == peer)
        .flat_map(|(_, u)| {
            let a = u.attrs.clone().unwrap_or_default();
            let v4 = u.nlri.iter().map({
                let a = a.clone();
                move |p| (*p, a.clone())
            });
            let mp = u.mp_reach.iter().flat_map(move |r| {
                let mut a = a.clone();
                a.next_hop = Some(r.next_hop);
                r.nlri
                    .iter()
                    .map(move |p| (*p, a.clone()))
                    .collect::<Vec<_>>()
            });
            v4.chain(mp).collect::<Vec<_>>()
        })
        .collect()
}

fn best(rib: &Rib, prefix: &str) -> Option<PathAttrs> {
    rib.lookup(&p(prefix))
        .map(|(paths, _)| (*paths[0].attrs).clone())
}

#[test]
fn session_local_as_is_prepended_and_decides_ebgp() {
    let mut r = rib(false);
    // Our AS towards this ToR is 65100, not the speaker's 65001.
    let tor = add(&mut r, info(2, 65002, 65100));
    // Towards this reflector it is the fabric AS, which is the peer's: iBGP.
    let rr = add(&mut r, info(3, 64512, 64512));
    r.announce_local(&[p("10.1.0.1/32")], PathAttrs::default());
    let sent = flush(&mut r);
    let to_tor = announced_to(&sent, tor);
    assert_eq!(to_tor.len(), 1);
    assert_eq!(
        to_tor[0].1.as_path,
        AsPath::sequence(vec![65100]),
        "the session's AS is prepended, not the speaker's"
    );
    let to_rr = announced_to(&sent, rr);
    assert_eq!(to_rr.len(), 1);
    assert_eq!(
        to_rr[0].1.as_path,
        AsPath::sequence(vec![]),
        "iBGP: nothing prepended"
    );
    assert_eq!(to_rr[0].1.local_pref, Some(100), "iBGP carries LOCAL_PREF");

    // A route from the ToR that already went through our session AS is a loop.
    r.import_update(
        tor,
        announce(&["192.168.0.0/24"], attrs(&[65002, 65100], v4(10, 0, 0, 2))),
    )
    .unwrap();
    assert!(
        best(&r, "192.168.0.0/24").is_none(),
        "session AS in the path"
    );
    // And one through the speaker's own AS too.
    r.import_update(
        tor,
        announce(
            &["192.168.1.0/24"],
            attrs(&[65002, LOCAL_AS], v4(10, 0, 0, 2)),
        ),
    )
    .unwrap();
    assert!(
        best(&r, "192.168.1.0/24").is_none(),
        "speaker AS in the path"
    );
}

#[test]
fn configured_next_hop_replaces_the_session_address() {
    let mut r = rib(false);
    let mut rr_info = info(3, LOCAL_AS, LOCAL_AS);
    rr_info.next_hop = Some(v4(172, 16, 0, 9));
    rr_info.next_hop_self = true;
    let rr = add(&mut r, rr_info);
    let mut ebgp_info = info(2, 65002, LOCAL_AS);
    ebgp_info.next_hop = Some(v4(172, 16, 0, 10));
    let ebgp = add(&mut r, ebgp_info);
    let plain = add(&mut r, info(4, 65004, LOCAL_AS));
    r.announce_local(&[p("10.1.0.1/32")], PathAttrs::default());
    // A learned route, rewritten by next_hop_self on the way to the reflector.
    r.import_update(
        plain,
        announce(&["192.168.5.0/24"], attrs(&[65004], v4(10, 0, 0, 4))),
    )
    .unwrap();
    let sent = flush(&mut r);
    for (prefix, a) in announced_to(&sent, rr) {
        assert_eq!(
            a.next_hop,
            Some(v4(172, 16, 0, 9)),
            "{prefix} to the reflector"
        );
    }
    assert_eq!(announced_to(&sent, rr).len(), 2);
    for (prefix, a) in announced_to(&sent, ebgp) {
        assert_eq!(a.next_hop, Some(v4(172, 16, 0, 10)), "{prefix} over eBGP");
    }
    let to_plain = announced_to(&sent, plain);
    assert_eq!(to_plain.len(), 1, "its own route is not sent back");
    assert_eq!(
        to_plain[0].1.next_hop,
        Some(v4(10, 0, 0, 1)),
        "without next_hop, the session address"
    );

    // An IPv4 next hop leaves IPv6 routes to the usual rule (v6 session address or none).
    r.announce_local(&[p("2001:db8::1/128")], PathAttrs::default());
    let sent = flush(&mut r);
    assert!(
        announced_to(&sent, rr).is_empty(),
        "no IPv6 next hop on an IPv4 session without local_v6_next_hop"
    );
}

#[test]
fn import_local_pref_overrides_and_makes_the_reflected_path_lose() {
    let mut r = rib(false);
    let tor = add(&mut r, info(2, 65002, 65100));
    let mut rr_info = info(3, 64512, 64512);
    rr_info.import_local_pref = Some(50);
    let rr = add(&mut r, rr_info);
    // The reflector's path is shorter and says LOCAL_PREF 200: without the override it wins.
    let mut reflected = attrs(&[], v4(10, 0, 0, 3));
    reflected.local_pref = Some(200);
    r.import_update(rr, announce(&["10.2.0.1/32"], reflected))
        .unwrap();
    assert_eq!(best(&r, "10.2.0.1/32").unwrap().local_pref, Some(50));
    r.import_update(
        tor,
        announce(&["10.2.0.1/32"], attrs(&[65002, 65200], v4(10, 0, 0, 2))),
    )
    .unwrap();
    assert_eq!(
        best(&r, "10.2.0.1/32").unwrap().next_hop,
        Some(v4(10, 0, 0, 2)),
        "the ToR's eBGP path (default LOCAL_PREF 100) beats the reflected one at 50"
    );
}

#[test]
fn enforce_first_as_refuses_ebgp_paths_not_starting_with_the_peer() {
    let mut r = rib(false);
    let ebgp = add(&mut r, info(2, 65002, LOCAL_AS));
    let mut lax_info = info(4, 65004, LOCAL_AS);
    lax_info.enforce_first_as = false;
    let lax = add(&mut r, lax_info);
    let ibgp = add(&mut r, info(3, LOCAL_AS, LOCAL_AS));
    let nh = v4(10, 0, 0, 2);

    r.import_update(ebgp, announce(&["192.168.0.0/24"], attrs(&[65002], nh)))
        .unwrap();
    assert!(best(&r, "192.168.0.0/24").is_some(), "a good path is taken");
    // The same prefix again with a path that does not start with 65002: treat-as-withdraw,
    // so the path it had before goes too.
    let result = r
        .import_update(
            ebgp,
            announce(&["192.168.0.0/24"], attrs(&[65099, 65002], nh)),
        )
        .unwrap();
    assert_eq!(result.rejected, 1);
    assert!(best(&r, "192.168.0.0/24").is_none(), "treated as withdraw");
    r.import_update(ebgp, announce(&["192.168.1.0/24"], attrs(&[], nh)))
        .unwrap();
    assert!(
        best(&r, "192.168.1.0/24").is_none(),
        "empty AS_PATH refused"
    );

    r.import_update(lax, announce(&["192.168.2.0/24"], attrs(&[65099], nh)))
        .unwrap();
    assert!(
        best(&r, "192.168.2.0/24").is_some(),
        "enforce_first_as off: accepted"
    );
    r.import_update(ibgp, announce(&["192.168.3.0/24"], attrs(&[], nh)))
        .unwrap();
    assert!(
        best(&r, "192.168.3.0/24").is_some(),
        "not applied on iBGP (an empty path is normal there)"
    );
}

#[test]
fn export_local_only_never_makes_us_transit() {
    let mut r = rib(true);
    let tor1 = add(&mut r, info(2, 65002, 65100));
    let tor2 = add(&mut r, info(4, 65004, 65100));
    let rr = add(&mut r, info(3, 64512, 64512));
    r.import_update(
        tor1,
        announce(&["192.168.0.0/24"], attrs(&[65002], v4(10, 0, 0, 2))),
    )
    .unwrap();
    r.import_update(rr, announce(&["10.9.0.1/32"], attrs(&[], v4(10, 0, 0, 3))))
        .unwrap();
    r.announce_local(&[p("10.1.0.1/32")], PathAttrs::default());
    let sent = flush(&mut r);
    for peer in [tor1, tor2, rr] {
        let prefixes: Vec<Prefix> = announced_to(&sent, peer)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            prefixes,
            vec![p("10.1.0.1/32")],
            "peer {peer} gets only ours"
        );
    }
    assert!(
        best(&r, "192.168.0.0/24").is_some(),
        "learned routes still used"
    );
}

#[test]
fn configured_ipv6_next_hop_goes_in_mp_reach() {
    // IPv6 unicast with an IPv6 next hop: the configured next hop of its family is used.
    let mut r = rib(false);
    let mut v6_info = info(2, 65002, LOCAL_AS);
    v6_info.next_hop = Some("2001:db8::9".parse().unwrap());
    let peer = add(&mut r, v6_info);
    r.announce_local(&[p("2001:db8:1::/48")], PathAttrs::default());
    let sent = flush(&mut r);
    let to_peer = announced_to(&sent, peer);
    assert_eq!(to_peer.len(), 1);
    assert_eq!(to_peer[0].1.next_hop, Some("2001:db8::9".parse().unwrap()));
}

#[test]
fn removed_peers_leave_their_slot_for_the_next() {
    let mut r = rib(false);
    for round in 0..300u32 {
        let id = add(&mut r, info(2, LOCAL_AS, LOCAL_AS));
        r.import_update(
            id,
            announce(
                &[&format!("10.3.{}.{}/32", round / 250, round % 250)],
                attrs(&[], v4(10, 0, 0, 2)),
            ),
        )
        .unwrap();
        r.flush();
        r.remove_peer(id);
    }
    assert_eq!(r.peer_slots(), 1, "one slot, reused 300 times");
    assert!(r.is_empty(), "and no route left behind");
}

#[test]
fn a_next_hop_of_ours_is_not_installed() {
    let mut r = rib(false);
    let peer = add(&mut r, info(2, 65002, LOCAL_AS));
    let mut other_info = info(3, 65003, LOCAL_AS);
    other_info.local_address = v4(10, 0, 1, 1);
    other_info.next_hop = Some(v4(172, 16, 0, 9));
    other_info.local_v6_next_hop = Some("2001:db8::1".parse().unwrap());
    let other = add(&mut r, other_info);
    let good = v4(10, 0, 0, 2);
    r.import_update(peer, announce(&["192.168.0.0/24"], attrs(&[65002], good)))
        .unwrap();
    assert!(best(&r, "192.168.0.0/24").is_some());
    let ours = [
        IpAddr::V4(ROUTER_ID),
        v4(10, 0, 0, 1),   // this session's local address (also our router id here)
        v4(10, 0, 1, 1),   // another session's local address
        v4(172, 16, 0, 9), // a configured next hop
    ];
    for nh in ours {
        // The same prefix again, pointing at us: treat-as-withdraw, the earlier path goes.
        r.import_update(peer, announce(&["192.168.0.0/24"], attrs(&[65002], good)))
            .unwrap();
        let result = r
            .import_update(peer, announce(&["192.168.0.0/24"], attrs(&[65002], nh)))
            .unwrap();
        assert_eq!(result.rejected, 1, "{nh}");
        assert!(
            best(&r, "192.168.0.0/24").is_none(),
            "next hop {nh} is ours"
        );
    }
    // MP_REACH (IPv6) next hop: the configured IPv6 next hop is ours too.
    let v6 = |nh: &str| Update {
        attrs: Some(attrs(&[65002], good)),
        mp_reach: Some(MpReach {
            afi: Afi::Ipv6,
            next_hop: nh.parse().unwrap(),
            link_local: None,
            nlri: vec![p("2001:db8:5::/48")],
        }),
        ..Update::default()
    };
    r.import_update(peer, v6("2001:db8::2")).unwrap();
    assert!(best(&r, "2001:db8:5::/48").is_some());
    r.import_update(peer, v6("2001:db8::1")).unwrap();
    assert!(
        best(&r, "2001:db8:5::/48").is_none(),
        "MP_REACH next hop is ours"
    );
    // Once the peer that named 172.16.0.9 is gone, the address is nobody's.
    r.remove_peer(other);
    r.import_update(
        peer,
        announce(&["192.168.0.0/24"], attrs(&[65002], v4(172, 16, 0, 9))),
    )
    .unwrap();
    assert!(best(&r, "192.168.0.0/24").is_some());
}

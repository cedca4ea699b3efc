//! RIBs without I/O: the decision process and ECMP, loop detection, max-prefix, graceful
//! restart stale handling, export rules (eBGP, iBGP, route reflection) and UPDATE packing.

use std::net::{IpAddr, Ipv4Addr};

use fabric_bgp::packet::encode::EncodeCtx;
use fabric_bgp::packet::frame::split_message;
use fabric_bgp::packet::{
    decode_body, Afi, AsPath, DecodeCtx, Message, Origin, PathAttrs, Prefix, Update,
};
use fabric_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};

const LOCAL_AS: u32 = 65001;

fn rib(cluster: Option<Ipv4Addr>) -> Rib {
    Rib::new(RibConfig {
        local_as: LOCAL_AS,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        cluster_id: cluster,
        max_paths: 4,
        track_changes: true,
        export_local_only: false,
    })
}

fn peer(rib: &mut Rib, n: u8, asn: u32, rr_client: bool) -> PeerId {
    let id = rib.add_peer(PeerInfo {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
        router_id: Ipv4Addr::new(10, 0, 0, n),
        asn,
        local_as: LOCAL_AS,
        ibgp: asn == LOCAL_AS,
        rr_client,
        local_address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        local_v6_next_hop: None,
        next_hop: None,
        next_hop_self: false,
        max_prefix: Some(100),
        families: vec![Afi::Ipv4],
        import_local_pref: None,
        enforce_first_as: true,
        export_deny_communities: Vec::new(),
        export_strip_communities: Vec::new(),
    });
    rib.set_encode_ctx(id, EncodeCtx::default());
    id
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn attrs(path: &[u32], nh: u8) -> PathAttrs {
    PathAttrs {
        as_path: AsPath::sequence(path.to_vec()),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, nh))),
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

fn best_next_hop(rib: &Rib, prefix: &str) -> Option<IpAddr> {
    rib.lookup(&p(prefix))
        .and_then(|(paths, _)| paths[0].attrs.next_hop)
}

/// Decode every UPDATE a flush produced for `peer`.
fn sent(rib: &mut Rib, peer: PeerId) -> Vec<Update> {
    let mut out = Vec::new();
    for f in rib.flush().into_iter().filter(|f| f.peer == peer) {
        let mut rest = &f.bytes[..];
        while let Some((h, body)) = split_message(rest, 4096).unwrap() {
            let ctx = DecodeCtx {
                four_octet_as: true,
                ibgp: rib.peer_info(peer).unwrap().ibgp,
            };
            if let Message::Update(u) = decode_body(h.kind, body, ctx).unwrap() {
                out.push(*u);
            }
            rest = &rest[h.len..];
        }
    }
    out
}

#[test]
fn shorter_as_path_wins_then_ecmp_on_equal_paths() {
    let mut r = rib(None);
    let a = peer(&mut r, 2, 65002, false);
    let b = peer(&mut r, 3, 65003, false);
    let c = peer(&mut r, 4, 65004, false);
    r.import_update(a, announce(&["192.168.1.0/24"], attrs(&[65002, 65010], 2)))
        .unwrap();
    r.import_update(b, announce(&["192.168.1.0/24"], attrs(&[65003], 3)))
        .unwrap();
    assert_eq!(
        best_next_hop(&r, "192.168.1.0/24"),
        Some("10.0.0.3".parse().unwrap())
    );
    r.import_update(c, announce(&["192.168.1.0/24"], attrs(&[65004], 4)))
        .unwrap();
    let (paths, ecmp) = r.lookup(&p("192.168.1.0/24")).unwrap();
    assert_eq!(ecmp, 2, "two equal one-hop paths are ECMP");
    assert_eq!(paths.len(), 3);
    // Lowest router id breaks the tie for the single best.
    assert_eq!(paths[0].attrs.next_hop, Some("10.0.0.3".parse().unwrap()));
    let changes = r.take_changes();
    assert_eq!(
        changes.last().unwrap().paths.len(),
        2,
        "consumers get both ECMP paths"
    );
}

#[test]
fn local_pref_origin_and_med_rules() {
    let mut r = rib(None);
    let a = peer(&mut r, 2, LOCAL_AS, false);
    let b = peer(&mut r, 3, LOCAL_AS, false);
    let mut low = attrs(&[65010], 2);
    low.local_pref = Some(50);
    let mut high = attrs(&[65010, 65011, 65012], 3);
    high.local_pref = Some(200);
    r.import_update(a, announce(&["192.168.2.0/24"], low))
        .unwrap();
    r.import_update(b, announce(&["192.168.2.0/24"], high))
        .unwrap();
    assert_eq!(
        best_next_hop(&r, "192.168.2.0/24"),
        Some("10.0.0.3".parse().unwrap()),
        "LOCAL_PREF first"
    );

    let mut igp = attrs(&[65010], 2);
    igp.origin = Origin::Incomplete;
    r.import_update(a, announce(&["192.168.3.0/24"], igp))
        .unwrap();
    r.import_update(b, announce(&["192.168.3.0/24"], attrs(&[65010], 3)))
        .unwrap();
    assert_eq!(
        best_next_hop(&r, "192.168.3.0/24"),
        Some("10.0.0.3".parse().unwrap()),
        "lower ORIGIN"
    );

    let mut med_hi = attrs(&[65010], 2);
    med_hi.med = Some(10);
    let mut med_lo = attrs(&[65010], 3);
    med_lo.med = Some(5);
    r.import_update(a, announce(&["192.168.4.0/24"], med_hi))
        .unwrap();
    r.import_update(b, announce(&["192.168.4.0/24"], med_lo))
        .unwrap();
    let (paths, ecmp) = r.lookup(&p("192.168.4.0/24")).unwrap();
    assert_eq!(
        paths[0].attrs.med,
        Some(5),
        "lower MED from the same neighbour AS"
    );
    assert_eq!(ecmp, 1);
}

#[test]
fn ebgp_wins_over_ibgp() {
    let mut r = rib(None);
    let i = peer(&mut r, 2, LOCAL_AS, false);
    let e = peer(&mut r, 3, 65003, false);
    r.import_update(i, announce(&["192.168.5.0/24"], attrs(&[65003], 2)))
        .unwrap();
    r.import_update(e, announce(&["192.168.5.0/24"], attrs(&[65003], 3)))
        .unwrap();
    let (paths, ecmp) = r.lookup(&p("192.168.5.0/24")).unwrap();
    assert_eq!(paths[0].peer, e);
    assert_eq!(ecmp, 1);
}

#[test]
fn as_path_loop_is_rejected() {
    let mut r = rib(None);
    let e = peer(&mut r, 2, 65002, false);
    let res = r
        .import_update(
            e,
            announce(&["192.168.6.0/24"], attrs(&[65002, LOCAL_AS], 2)),
        )
        .unwrap();
    assert_eq!(res.rejected, 1);
    assert!(r.lookup(&p("192.168.6.0/24")).is_none());
}

#[test]
fn reflection_loops_are_rejected() {
    let mut r = rib(Some(Ipv4Addr::new(1, 1, 1, 1)));
    let i = peer(&mut r, 2, LOCAL_AS, true);
    let mut own = attrs(&[], 2);
    own.originator_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(
        r.import_update(i, announce(&["192.168.7.0/24"], own))
            .unwrap()
            .rejected,
        1
    );
    let mut looped = attrs(&[], 2);
    looped.cluster_list = vec![Ipv4Addr::new(1, 1, 1, 1)];
    assert_eq!(
        r.import_update(i, announce(&["192.168.7.0/24"], looped))
            .unwrap()
            .rejected,
        1
    );
}

#[test]
fn max_prefix_is_enforced() {
    let mut r = rib(None);
    let e = peer(&mut r, 2, 65002, false);
    let many: Vec<String> = (0..101).map(|i| format!("10.1.{i}.0/24")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = r
        .import_update(e, announce(&refs, attrs(&[65002], 2)))
        .unwrap_err();
    assert_eq!((err.count, err.limit), (101, 100));
}

#[test]
fn graceful_restart_keeps_stale_until_end_of_rib() {
    let mut r = rib(None);
    let e = peer(&mut r, 2, 65002, false);
    r.import_update(
        e,
        announce(&["192.168.8.0/24", "192.168.9.0/24"], attrs(&[65002], 2)),
    )
    .unwrap();
    r.peer_down(e, true);
    let (paths, _) = r.lookup(&p("192.168.8.0/24")).unwrap();
    assert!(paths[0].stale);
    // After the restart only one prefix comes back; End-of-RIB removes the other.
    r.import_update(e, announce(&["192.168.8.0/24"], attrs(&[65002], 2)))
        .unwrap();
    let eor = r.import_update(e, Update::default()).unwrap();
    assert_eq!(eor.end_of_rib, Some(Afi::Ipv4));
    r.purge_stale(e, Some(Afi::Ipv4));
    assert!(!r.lookup(&p("192.168.8.0/24")).unwrap().0[0].stale);
    assert!(r.lookup(&p("192.168.9.0/24")).is_none());
    assert_eq!(r.received_count(e), 1);
    // A second End-of-RIB has nothing stale left to remove.
    r.purge_stale(e, Some(Afi::Ipv4));
    assert_eq!(r.received_count(e), 1);
    // Another graceful restart marks the routes stale again, and an empty session purges them.
    r.peer_down(e, true);
    r.purge_stale(e, Some(Afi::Ipv4));
    assert!(r.lookup(&p("192.168.8.0/24")).is_none());
    assert_eq!(r.received_count(e), 0);
}

#[test]
fn ebgp_export_prepends_and_sets_next_hop_self() {
    let mut r = rib(None);
    let src = peer(&mut r, 2, 65002, false);
    let dst = peer(&mut r, 3, 65003, false);
    r.peer_up(dst);
    sent(&mut r, dst);
    let mut a = attrs(&[65002], 2);
    a.med = Some(9);
    r.import_update(src, announce(&["192.168.10.0/24"], a))
        .unwrap();
    let updates = sent(&mut r, dst);
    assert_eq!(updates.len(), 1);
    let got = updates[0].attrs.as_ref().unwrap();
    assert_eq!(got.as_path, AsPath::sequence(vec![LOCAL_AS, 65002]));
    assert_eq!(got.next_hop, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(got.med, None, "MED is not passed between neighbouring ASes");
    // The source never gets its own route back.
    r.peer_up(src);
    let back = sent(&mut r, src);
    assert!(back.iter().all(|u| u.nlri.is_empty()), "{back:?}");
}

/// With one peer up, changes to its own routes are not queued for export (the RIB skips
/// them), except where it holds something we sent that they replace; the rest of the table
/// still reaches it, and a peer coming up later gets everything.
#[test]
fn sole_up_peer_hears_what_replaces_its_own_routes() {
    let mut r = rib(None);
    let a = peer(&mut r, 2, 65002, false);
    let b = peer(&mut r, 3, 65003, false);
    r.peer_up(b);
    sent(&mut r, b);
    let nlri = |u: &[Update]| -> Vec<Prefix> { u.iter().flat_map(|u| u.nlri.clone()).collect() };
    let withdrawn =
        |u: &[Update]| -> Vec<Prefix> { u.iter().flat_map(|u| u.withdrawn.clone()).collect() };
    r.import_update(a, announce(&["192.168.20.0/24"], attrs(&[65002, 65010], 2)))
        .unwrap();
    assert_eq!(nlri(&sent(&mut r, b)), vec![p("192.168.20.0/24")]);
    // b's own shorter path wins: what we sent it must be withdrawn.
    r.import_update(b, announce(&["192.168.20.0/24"], attrs(&[65003], 3)))
        .unwrap();
    let got = sent(&mut r, b);
    assert_eq!(withdrawn(&got), vec![p("192.168.20.0/24")], "{got:?}");
    assert!(nlri(&got).is_empty(), "{got:?}");
    // A route only b has: nothing to send back to it.
    r.import_update(b, announce(&["192.168.21.0/24"], attrs(&[65003], 3)))
        .unwrap();
    assert!(sent(&mut r, b).is_empty());
    // b withdraws: a's path is best again and goes to b.
    r.import_update(
        b,
        Update {
            withdrawn: vec![p("192.168.20.0/24")],
            ..Update::default()
        },
    )
    .unwrap();
    assert_eq!(nlri(&sent(&mut r, b)), vec![p("192.168.20.0/24")]);
    // a comes up: it gets b's route, not its own.
    r.peer_up(a);
    let got = sent(&mut r, a);
    assert_eq!(nlri(&got), vec![p("192.168.21.0/24")], "{got:?}");
    // With two peers up, b's changes go to a again.
    r.import_update(b, announce(&["192.168.22.0/24"], attrs(&[65003], 3)))
        .unwrap();
    assert_eq!(nlri(&sent(&mut r, a)), vec![p("192.168.22.0/24")]);
}

#[test]
fn ibgp_routes_are_not_passed_to_ibgp_without_reflection() {
    let mut r = rib(None);
    let a = peer(&mut r, 2, LOCAL_AS, false);
    let b = peer(&mut r, 3, LOCAL_AS, false);
    r.peer_up(b);
    sent(&mut r, b);
    r.import_update(a, announce(&["192.168.11.0/24"], attrs(&[], 2)))
        .unwrap();
    assert!(sent(&mut r, b).iter().all(|u| u.nlri.is_empty()));
}

#[test]
fn reflector_rules_client_and_non_client() {
    let mut r = rib(Some(Ipv4Addr::new(1, 1, 1, 1)));
    let c1 = peer(&mut r, 2, LOCAL_AS, true);
    let c2 = peer(&mut r, 3, LOCAL_AS, true);
    let n1 = peer(&mut r, 4, LOCAL_AS, false);
    let n2 = peer(&mut r, 5, LOCAL_AS, false);
    for p in [c1, c2, n1, n2] {
        r.peer_up(p);
    }
    r.flush();
    // A client's route goes to the other client and to non-clients, with reflection attributes.
    r.import_update(c1, announce(&["192.168.12.0/24"], attrs(&[], 2)))
        .unwrap();
    let mut out: Vec<(PeerId, Update)> = Vec::new();
    for f in r.flush() {
        let mut rest = &f.bytes[..];
        while let Some((h, body)) = split_message(rest, 4096).unwrap() {
            if let Message::Update(u) = decode_body(
                h.kind,
                body,
                DecodeCtx {
                    four_octet_as: true,
                    ibgp: true,
                },
            )
            .unwrap()
            {
                out.push((f.peer, *u));
            }
            rest = &rest[h.len..];
        }
    }
    let receivers: Vec<PeerId> = out
        .iter()
        .filter(|(_, u)| !u.nlri.is_empty())
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(receivers.len(), 3, "{receivers:?}");
    assert!(!receivers.contains(&c1));
    let a = out[0].1.attrs.as_ref().unwrap();
    assert_eq!(a.originator_id, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(a.cluster_list, vec![Ipv4Addr::new(1, 1, 1, 1)]);
    assert_eq!(
        a.next_hop,
        Some("10.0.0.2".parse().unwrap()),
        "reflection keeps the next hop"
    );
    // A non-client's route goes to clients only.
    r.import_update(n1, announce(&["192.168.13.0/24"], attrs(&[], 4)))
        .unwrap();
    let to: Vec<PeerId> = r.flush().into_iter().map(|f| f.peer).collect();
    assert!(
        to.contains(&c1) && to.contains(&c2) && !to.contains(&n2) && !to.contains(&n1),
        "{to:?}"
    );
}

#[test]
fn packing_fills_updates_and_batches_withdrawals() {
    let mut r = rib(None);
    let dst = peer(&mut r, 3, 65003, false);
    r.peer_up(dst);
    r.flush();
    let prefixes: Vec<Prefix> = (0..10_000u32)
        .map(|i| Prefix::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a64_0000 + i), 32).unwrap()))
        .collect();
    r.announce_local(&prefixes, PathAttrs::default());
    let flush = r.flush().pop().unwrap();
    // 4,096 bytes minus header and shared attributes hold about 810 /32s: 10,000 need 13.
    assert_eq!(flush.messages, 13);
    assert_eq!(flush.announced, 10_000);
    assert_eq!(r.advertised_count(dst), 10_000);
    r.withdraw_local(&prefixes[..5_000]);
    let flush = r.flush().pop().unwrap();
    assert_eq!(flush.withdrawn, 5_000);
    // Withdrawals: 5 bytes each, about 814 per message.
    assert_eq!(flush.messages, 7);
    assert_eq!(r.advertised_count(dst), 5_000);
    // Re-announcing what the peer already has sends nothing.
    r.announce_local(&prefixes[5_000..], PathAttrs::default());
    assert!(r.flush().is_empty(), "unchanged routes are not re-sent");
}

#[test]
fn routes_announced_one_by_one_with_equal_attributes_share_an_update() {
    // An agent announces each container's /32 as it attaches: separate calls, equal
    // attributes. Between two flushes they must still go out together.
    let mut r = rib(None);
    let dst = peer(&mut r, 3, 65003, false);
    r.peer_up(dst);
    r.flush();
    for i in 0..5u8 {
        r.announce_local(&[p(&format!("10.1.2.{i}/32"))], PathAttrs::default());
    }
    r.announce_local(&[p("10.1.3.1/32")], attrs(&[], 9));
    let flush = r.flush().pop().unwrap();
    assert_eq!(flush.announced, 6);
    assert_eq!(flush.messages, 2, "one UPDATE per distinct attribute set");
}

#[test]
fn routes_whose_attributes_cannot_fit_a_message_are_not_sent() {
    use fabric_bgp::packet::encode::Packer;
    let huge = PathAttrs {
        communities: (0..1100).collect(),
        next_hop: Some("10.0.0.1".parse().unwrap()),
        ..PathAttrs::default()
    };
    let mut packer = Packer::new(EncodeCtx::default());
    let mut out = Vec::new();
    packer.announce(Afi::Ipv4, &huge, &[p("10.0.0.0/24")], &mut out);
    assert!(
        out.is_empty(),
        "an oversized UPDATE would reset the session"
    );
    let mut ext = Packer::new(EncodeCtx {
        four_octet_as: true,
        max_len: 65535,
    });
    ext.announce(Afi::Ipv4, &huge, &[p("10.0.0.0/24")], &mut out);
    assert_eq!(
        ext.messages, 1,
        "fits once extended messages are negotiated"
    );
}

//! EVPN in the RIB, without I/O: routes keyed by their NLRI key, best path as for unicast,
//! route reflection between clients (ORIGINATOR_ID, CLUSTER_LIST added, next hop, NLRI,
//! extended communities and PMSI tunnel unchanged, nothing back to the sender), withdrawals,
//! End-of-RIB for the family after a full sync, graceful-restart stale handling, our own
//! EVPN routes, the VTEP next hop kept on eBGP, and peers without the family left out.

use std::net::{IpAddr, Ipv4Addr};

use fabric_bgp::packet::encode::EncodeCtx;
use fabric_bgp::packet::evpn::{
    Esi, EvpnReach, EvpnRoute, EvpnUnreach, InclusiveMulticastRoute, MacIpRoute, RouteDistinguisher,
};
use fabric_bgp::packet::frame::split_message;
use fabric_bgp::packet::{
    decode_body, Afi, AsPath, DecodeCtx, ExtCommunity, Message, PathAttrs, PmsiTunnel, Update,
};
use fabric_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};

const AS: u32 = 65000;
const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn rib() -> Rib {
    Rib::new(RibConfig {
        local_as: AS,
        router_id: CLUSTER,
        cluster_id: Some(CLUSTER),
        max_paths: 1,
        track_changes: true,
        export_local_only: false,
    })
}

fn peer(rib: &mut Rib, n: u8, families: Vec<Afi>) -> PeerId {
    peer_as(rib, n, AS, families)
}

fn peer_as(rib: &mut Rib, n: u8, asn: u32, families: Vec<Afi>) -> PeerId {
    let id = rib.add_peer(PeerInfo {
        address: ip(n),
        router_id: Ipv4Addr::new(10, 0, 0, n),
        asn,
        local_as: AS,
        ibgp: asn == AS,
        rr_client: true,
        local_address: ip(1),
        local_v6_next_hop: None,
        next_hop: None,
        next_hop_self: false,
        max_prefix: None,
        families,
        import_local_pref: None,
        enforce_first_as: true,
        export_deny_communities: Vec::new(),
        export_strip_communities: Vec::new(),
    });
    rib.set_encode_ctx(id, EncodeCtx::default());
    rib.peer_up(id);
    id
}

fn both() -> Vec<Afi> {
    vec![Afi::Ipv4, Afi::L2vpnEvpn]
}

fn mac_route(vtep: u8, mac_last: u8, vni: u32) -> EvpnRoute {
    EvpnRoute::MacIp(MacIpRoute {
        rd: RouteDistinguisher::Ip {
            ip: Ipv4Addr::new(10, 0, 0, vtep),
            number: 100,
        },
        esi: Esi::default(),
        ethernet_tag: 0,
        mac: [0x52, 0x54, 0, 0, 0, mac_last],
        ip: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 0, mac_last))),
        label1: vni,
        label2: None,
    })
}

fn imet(vtep: u8) -> EvpnRoute {
    EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
        rd: RouteDistinguisher::Ip {
            ip: Ipv4Addr::new(10, 0, 0, vtep),
            number: 100,
        },
        ethernet_tag: 0,
        originator: ip(vtep),
    })
}

fn evpn_attrs(vtep: u8) -> PathAttrs {
    PathAttrs {
        as_path: AsPath::default(),
        local_pref: Some(100),
        ext_communities: vec![
            ExtCommunity::RouteTargetAs2 {
                asn: 65000,
                number: 100,
            },
            ExtCommunity::Encapsulation { tunnel_type: 8 },
            ExtCommunity::GroupId(42),
        ],
        pmsi_tunnel: Some(PmsiTunnel::ingress_replication(100, ip(vtep))),
        ..PathAttrs::default()
    }
}

fn announce(vtep: u8, routes: Vec<EvpnRoute>, attrs: PathAttrs) -> Update {
    Update {
        attrs: Some(attrs),
        evpn_reach: Some(EvpnReach {
            next_hop: ip(vtep),
            routes,
        }),
        ..Update::default()
    }
}

/// Every UPDATE the next flush sends to `peer`.
fn sent(rib: &mut Rib, peer: PeerId) -> Vec<Update> {
    let mut out = Vec::new();
    for f in rib.flush().into_iter().filter(|f| f.peer == peer) {
        let mut rest = &f.bytes[..];
        while let Some((h, body)) = split_message(rest, 4096).unwrap() {
            let ctx = DecodeCtx {
                four_octet_as: true,
                ibgp: true,
            };
            if let Message::Update(u) = decode_body(h.kind, body, ctx).unwrap() {
                out.push(*u);
            }
            rest = &rest[h.len..];
        }
    }
    out
}

fn reached(updates: &[Update]) -> Vec<(IpAddr, EvpnRoute, PathAttrs)> {
    updates
        .iter()
        .filter_map(|u| Some((u.evpn_reach.as_ref()?, u.attrs.as_ref()?)))
        .flat_map(|(r, a)| r.routes.iter().map(|x| (r.next_hop, x.clone(), a.clone())))
        .collect()
}

fn unreached(updates: &[Update]) -> Vec<EvpnRoute> {
    updates
        .iter()
        .filter_map(|u| u.evpn_unreach.as_ref())
        .flat_map(|u| u.routes.clone())
        .collect()
}

#[test]
fn full_sync_ends_with_evpn_end_of_rib() {
    let mut r = rib();
    let a = peer(&mut r, 2, both());
    let ups = sent(&mut r, a);
    let eors: Vec<Afi> = ups.iter().filter_map(Update::end_of_rib).collect();
    assert_eq!(eors, vec![Afi::Ipv4, Afi::L2vpnEvpn]);
}

#[test]
fn reflected_between_clients_unchanged_but_for_originator_and_cluster_list() {
    let mut r = rib();
    let a = peer(&mut r, 2, both());
    let b = peer(&mut r, 3, both());
    let v4only = peer(&mut r, 4, vec![Afi::Ipv4]);
    r.flush();
    let routes = vec![mac_route(2, 1, 10100), mac_route(2, 2, 10100), imet(2)];
    r.import_update(a, announce(2, routes.clone(), evpn_attrs(2)))
        .unwrap();
    assert_eq!(r.evpn_len(), 3);
    let got = sent(&mut r, b);
    let reflected = reached(&got);
    assert_eq!(
        reflected
            .iter()
            .map(|(_, x, _)| x.clone())
            .collect::<Vec<_>>(),
        routes
    );
    for (nh, _, attrs) in &reflected {
        assert_eq!(*nh, ip(2), "next hop unchanged");
        assert_eq!(attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(attrs.cluster_list, vec![CLUSTER]);
        assert_eq!(attrs.ext_communities, evpn_attrs(2).ext_communities);
        assert_eq!(attrs.pmsi_tunnel, evpn_attrs(2).pmsi_tunnel);
    }
    // One UPDATE for routes that share attributes.
    assert_eq!(got.len(), 1);
    // Nothing back to the sender, nothing to a peer without the family.
    assert!(reached(&sent(&mut r, a)).is_empty());
    assert!(reached(&sent(&mut r, v4only)).is_empty());
    assert_eq!(r.advertised_count(v4only), 0);

    // A withdrawal reaches b.
    r.import_update(
        a,
        Update {
            evpn_unreach: Some(EvpnUnreach {
                routes: vec![mac_route(2, 1, 0)],
            }),
            ..Update::default()
        },
    )
    .unwrap();
    assert_eq!(unreached(&sent(&mut r, b)), vec![mac_route(2, 1, 10100)]);
    assert_eq!(r.evpn_len(), 2);
}

#[test]
fn same_key_replaces_and_best_path_decides() {
    let mut r = rib();
    let a = peer(&mut r, 2, both());
    let b = peer(&mut r, 3, both());
    let c = peer(&mut r, 5, both());
    r.flush();
    // The same key (RD, tag, MAC, IP) from a then from b with another label and VTEP.
    r.import_update(a, announce(2, vec![mac_route(9, 1, 100)], evpn_attrs(2)))
        .unwrap();
    let mut better = evpn_attrs(3);
    better.local_pref = Some(200);
    r.import_update(b, announce(3, vec![mac_route(9, 1, 200)], better))
        .unwrap();
    assert_eq!(r.evpn_len(), 1);
    let key = mac_route(9, 1, 0).key();
    let paths = r.evpn_lookup(&key);
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0].0, b, "higher LOCAL_PREF wins");
    let EvpnRoute::MacIp(m) = &paths[0].2.route else {
        panic!()
    };
    assert_eq!(m.label1, 200, "the winning path keeps its own label");
    let to_c = reached(&sent(&mut r, c));
    assert_eq!(to_c.last().map(|(nh, _, _)| *nh), Some(ip(3)));
    // a replaces its path: still one key, two paths.
    r.import_update(a, announce(2, vec![mac_route(9, 1, 300)], evpn_attrs(2)))
        .unwrap();
    assert_eq!(r.evpn_lookup(&key).len(), 2);
    // b withdraws: a's path is best and c hears of it.
    r.import_update(
        b,
        Update {
            evpn_unreach: Some(EvpnUnreach {
                routes: vec![mac_route(9, 1, 0)],
            }),
            ..Update::default()
        },
    )
    .unwrap();
    let to_c = reached(&sent(&mut r, c));
    assert_eq!(to_c.len(), 1);
    assert_eq!(to_c[0].0, ip(2));
    let EvpnRoute::MacIp(m) = &to_c[0].1 else {
        panic!()
    };
    assert_eq!(m.label1, 300);
}

#[test]
fn own_routes_loop_and_missing_family_are_refused() {
    let mut r = rib();
    let a = peer(&mut r, 2, both());
    let v4only = peer(&mut r, 4, vec![Afi::Ipv4]);
    r.flush();
    // Reflected back to us: our cluster id in CLUSTER_LIST.
    let mut looped = evpn_attrs(2);
    looped.cluster_list = vec![CLUSTER];
    r.import_update(a, announce(2, vec![imet(2)], looped))
        .unwrap();
    assert_eq!(r.evpn_len(), 0);
    // EVPN from a peer that did not negotiate the family.
    r.import_update(v4only, announce(4, vec![imet(4)], evpn_attrs(4)))
        .unwrap();
    assert_eq!(r.evpn_len(), 0);
}

#[test]
fn graceful_restart_keeps_evpn_paths_until_end_of_rib() {
    let mut r = rib();
    let a = peer(&mut r, 2, both());
    r.import_update(
        a,
        announce(2, vec![imet(2), mac_route(2, 1, 1)], evpn_attrs(2)),
    )
    .unwrap();
    r.peer_down(a, true);
    assert_eq!(r.evpn_len(), 2);
    assert!(r.has_stale(a));
    r.peer_up(a);
    // It sends one of the two again, then End-of-RIB for the family.
    r.import_update(a, announce(2, vec![imet(2)], evpn_attrs(2)))
        .unwrap();
    let eor = Update {
        evpn_unreach: Some(EvpnUnreach::default()),
        ..Update::default()
    };
    assert_eq!(eor.end_of_rib(), Some(Afi::L2vpnEvpn));
    r.purge_stale(a, Some(Afi::L2vpnEvpn));
    assert_eq!(r.evpn_len(), 1);
    r.purge_stale(a, Some(Afi::Ipv4));
    r.purge_stale(a, Some(Afi::Ipv6));
    assert!(!r.has_stale(a));
    // A session that ends without graceful restart takes its routes along.
    r.peer_down(a, false);
    assert_eq!(r.evpn_len(), 0);
}

#[test]
fn our_own_evpn_routes_go_out_with_their_vtep_and_are_withdrawn() {
    let mut r = rib();
    let a = peer(&mut r, 2, both());
    r.flush();
    let mut attrs = evpn_attrs(1);
    attrs.next_hop = Some(ip(100));
    r.announce_evpn_local(vec![imet(1), mac_route(1, 7, 5)], attrs);
    let got = reached(&sent(&mut r, a));
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(nh, _, a)| *nh == ip(100)
        && a.originator_id.is_none()
        && a.cluster_list.is_empty()));
    r.withdraw_evpn_local(&[imet(1).key()]);
    assert_eq!(unreached(&sent(&mut r, a)), vec![imet(1)]);
    // Without a next hop: the session's address.
    r.announce_evpn_local(vec![imet(1)], evpn_attrs(1));
    let got = reached(&sent(&mut r, a));
    assert_eq!(got[0].0, ip(1));
    assert_eq!(r.advertised_count(a), 2);
    // A change subscribers see.
    let changes = r.take_evpn_changes();
    assert!(changes.iter().any(|c| c.key == imet(1).key()));
}

#[test]
fn ebgp_keeps_the_vtep_next_hop_and_prepends_our_as() {
    let mut r = rib();
    let a = peer(&mut r, 2, both());
    let tor = peer_as(&mut r, 9, 65009, both());
    r.flush();
    r.import_update(a, announce(2, vec![imet(2)], evpn_attrs(2)))
        .unwrap();
    let mut own = evpn_attrs(1);
    own.next_hop = Some(ip(77));
    r.announce_evpn_local(vec![mac_route(1, 1, 1)], own);
    let got = reached(&sent(&mut r, tor));
    assert_eq!(got.len(), 2);
    for (nh, route, attrs) in got {
        let want = if route == imet(2) { ip(2) } else { ip(77) };
        assert_eq!(nh, want, "{route:?}");
        assert_eq!(attrs.as_path.first_as(), Some(AS));
        assert_eq!(attrs.local_pref, None);
        assert!(attrs.originator_id.is_none() && attrs.cluster_list.is_empty());
    }
}

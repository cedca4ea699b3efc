//! The EVPN speaker API over loopback (no root): speaker A announces EVPN routes
//! (`announce_evpn`), speaker B, with the family negotiated, hands them to an EVPN subscriber
//! (`subscribe_evpn`: snapshot, changes, then A's End-of-RIB for the family) and shows them in
//! `evpn_rib`; A's `withdraw_evpn` reaches B's subscriber; unicast subscribers get the
//! family's End-of-RIB but no EVPN change.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use fabric_bgp::packet::evpn::{
    Esi, EvpnRoute, InclusiveMulticastRoute, MacIpRoute, RouteDistinguisher,
};
use fabric_bgp::packet::{Afi, ExtCommunity, PathAttrs, PmsiTunnel};
use fabric_bgp::{EvpnEvent, PeerConfig, RibEvent, Speaker, SpeakerConfig};
use tokio::sync::mpsc::UnboundedReceiver;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

async fn next<T>(rx: &mut UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("no event in 20 s")
        .expect("the speaker stopped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evpn_routes_reach_the_other_speakers_evpn_subscriber() {
    let rd = RouteDistinguisher::Ip {
        ip: Ipv4Addr::new(127, 0, 0, 12),
        number: 100,
    };
    let routes = vec![
        EvpnRoute::MacIp(MacIpRoute {
            rd,
            esi: Esi::default(),
            ethernet_tag: 0,
            mac: [2, 0, 0, 0, 0, 1],
            ip: Some(v4(192, 168, 1, 1)),
            label1: 100,
            label2: None,
        }),
        EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
            rd,
            ethernet_tag: 0,
            originator: v4(127, 0, 0, 12),
        }),
    ];
    let attrs = PathAttrs {
        next_hop: Some(v4(127, 0, 0, 12)),
        ext_communities: vec![ExtCommunity::GroupId(7)],
        pmsi_tunnel: Some(PmsiTunnel::ingress_replication(100, v4(127, 0, 0, 12))),
        ..PathAttrs::default()
    };

    // A (127.0.0.12) listens, B (127.0.0.13) connects; eBGP, both families.
    let mut a_cfg = SpeakerConfig::new(65001, Ipv4Addr::new(127, 0, 0, 12));
    a_cfg.listen = Some("127.0.0.12:0".parse().unwrap());
    let mut b_peer = PeerConfig::new(v4(127, 0, 0, 13), Some(65002));
    b_peer.passive = true;
    b_peer.families = vec![Afi::Ipv4, Afi::L2vpnEvpn];
    a_cfg.peers.push(b_peer);
    let a = Speaker::new(a_cfg).await.expect("speaker A");
    a.announce_evpn(routes.clone(), attrs).unwrap();
    let port = a.listen_addr().unwrap().port();

    let b = Speaker::new(SpeakerConfig::new(65002, Ipv4Addr::new(127, 0, 0, 13)))
        .await
        .expect("speaker B");
    let mut evpn = b.subscribe_evpn().unwrap();
    let mut unicast = b.subscribe().unwrap();
    match next(&mut evpn).await {
        EvpnEvent::Changes(snapshot) => assert!(snapshot.is_empty()),
        other => panic!("first event is not the snapshot: {other:?}"),
    }
    let mut a_peer = PeerConfig::new(v4(127, 0, 0, 12), Some(65001));
    a_peer.port = port;
    a_peer.local_address = Some(v4(127, 0, 0, 13));
    a_peer.families = vec![Afi::Ipv4, Afi::L2vpnEvpn];
    b.add_peer(a_peer).await.unwrap();

    // Changes first, then A's End-of-RIB for the family.
    let mut seen = Vec::new();
    loop {
        match next(&mut evpn).await {
            EvpnEvent::Changes(batch) => {
                for c in batch {
                    let best = c.best.first().expect("an announcement");
                    assert_eq!(best.attrs.next_hop, Some(v4(127, 0, 0, 12)));
                    assert_eq!(best.attrs.as_path.first_as(), Some(65001));
                    assert_eq!(best.attrs.ext_communities, vec![ExtCommunity::GroupId(7)]);
                    seen.push(best.route.clone());
                }
            }
            EvpnEvent::EndOfRib { peer } => {
                assert_eq!(peer, v4(127, 0, 0, 12));
                break;
            }
        }
    }
    seen.sort_by_key(|r| r.route_type());
    assert_eq!(seen, routes);
    let rib = b.evpn_rib().await.unwrap();
    assert_eq!(rib.len(), 2);
    assert!(rib.iter().all(|r| r.from == Some(v4(127, 0, 0, 12))));

    // Unicast subscribers: End-of-RIB for both families, no EVPN in their changes.
    let mut eors = Vec::new();
    while eors.len() < 2 {
        match next(&mut unicast).await {
            RibEvent::Changes(batch) => assert!(batch.is_empty(), "{batch:?}"),
            RibEvent::EndOfRib { afi, .. } => eors.push(afi),
        }
    }
    eors.sort();
    assert_eq!(eors, vec![Afi::Ipv4, Afi::L2vpnEvpn]);

    // A withdraws the type 2.
    a.withdraw_evpn(vec![routes[0].key()]).unwrap();
    match next(&mut evpn).await {
        EvpnEvent::Changes(batch) => {
            assert_eq!(batch.len(), 1);
            assert_eq!(batch[0].key, routes[0].key());
            assert!(batch[0].best.is_empty());
        }
        other => panic!("expected the withdrawal, got {other:?}"),
    }
    assert_eq!(b.evpn_rib().await.unwrap().len(), 1);
}

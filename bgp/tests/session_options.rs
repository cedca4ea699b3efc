//! Per-session options end to end, speakers over loopback (no root): our AS on one session
//! (`local_as`: the peer must see it in our OPEN, and it decides eBGP or iBGP), the next hop we
//! send (`next_hop`) and LOCAL_PREF set on import (`import_local_pref`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use fabric_bgp::packet::{AsPath, PathAttrs};
use fabric_bgp::{PeerConfig, RibRoute, Speaker, SpeakerConfig};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

async fn route(s: &Speaker, prefix: &str) -> RibRoute {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rib = s.loc_rib().await.expect("speaker runs");
        if let Some(r) = rib.into_iter().find(|r| r.prefix.to_string() == prefix) {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {prefix}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A speaker at `addr` in `asn` with one active peer.
async fn speaker(addr: IpAddr, asn: u32, peer: PeerConfig) -> Speaker {
    let IpAddr::V4(id) = addr else { unreachable!() };
    let mut cfg = SpeakerConfig::new(asn, id);
    cfg.listen = Some(std::net::SocketAddr::new(addr, 0));
    cfg.connect_retry = 1;
    cfg.peers.push(peer);
    Speaker::new(cfg).await.expect("speaker starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_as_next_hop_and_import_local_pref() {
    // The host H (AS 65001) is 127.0.0.70. Towards its ToR T (AS 65050) it speaks as 65070;
    // towards the reflector R it speaks as the fabric AS 65080, which is R's: iBGP.
    let (h, t, r) = (v4(127, 0, 0, 70), v4(127, 0, 0, 71), v4(127, 0, 0, 72));
    let mut h_to_t = PeerConfig::new(t, Some(65050));
    h_to_t.local_as = Some(65070);
    h_to_t.local_address = Some(h);
    h_to_t.next_hop = Some(v4(192, 0, 2, 7));
    h_to_t.passive = true;
    let mut h_to_r = PeerConfig::new(r, Some(65080));
    h_to_r.local_as = Some(65080);
    h_to_r.local_address = Some(h);
    h_to_r.next_hop = Some(v4(192, 0, 2, 7));
    h_to_r.import_local_pref = Some(40);
    h_to_r.passive = true;
    let mut h_cfg = SpeakerConfig::new(65001, Ipv4Addr::new(127, 0, 0, 70));
    h_cfg.listen = Some(std::net::SocketAddr::new(h, 0));
    h_cfg.peers = vec![h_to_t, h_to_r];
    let host = Speaker::new(h_cfg).await.expect("host starts");
    let port = host.listen_addr().unwrap().port();

    // The ToR expects AS 65070: with the speaker's 65001 in the OPEN it would refuse it.
    let mut t_to_h = PeerConfig::new(h, Some(65070));
    t_to_h.port = port;
    t_to_h.local_address = Some(t);
    let tor = speaker(t, 65050, t_to_h).await;
    let mut r_to_h = PeerConfig::new(h, Some(65080));
    r_to_h.port = port;
    r_to_h.local_address = Some(r);
    let reflector = speaker(r, 65080, r_to_h).await;

    host.announce(vec!["10.70.0.1/32".parse().unwrap()], PathAttrs::default())
        .unwrap();
    let at_tor = route(&tor, "10.70.0.1/32").await;
    assert_eq!(at_tor.as_path, vec![65070], "the session AS is prepended");
    assert_eq!(at_tor.next_hops, vec![Some(v4(192, 0, 2, 7))]);
    let at_rr = route(&reflector, "10.70.0.1/32").await;
    assert_eq!(at_rr.as_path, Vec::<u32>::new(), "iBGP: nothing prepended");
    assert_eq!(at_rr.local_pref, Some(100), "iBGP carries LOCAL_PREF");
    assert_eq!(at_rr.next_hops, vec![Some(v4(192, 0, 2, 7))]);

    // What the reflector sends the host comes in at LOCAL_PREF 40, whatever it said.
    let attrs = PathAttrs {
        as_path: AsPath::default(),
        local_pref: Some(300),
        ..PathAttrs::default()
    };
    reflector
        .announce(vec!["10.72.0.1/32".parse().unwrap()], attrs)
        .unwrap();
    let at_host = route(&host, "10.72.0.1/32").await;
    assert_eq!(at_host.local_pref, Some(40));
    assert_eq!(at_host.next_hops, vec![Some(r)]);
    // And the ToR's routes come over eBGP with its AS first (enforce-first-as passes).
    tor.announce(vec!["10.71.0.1/32".parse().unwrap()], PathAttrs::default())
        .unwrap();
    assert_eq!(route(&host, "10.71.0.1/32").await.as_path, vec![65050]);

    for s in [tor, reflector, host] {
        s.shutdown().await;
    }
}

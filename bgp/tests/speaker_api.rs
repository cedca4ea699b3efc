//! The library API in-process, two speakers over loopback (no root needed): sessions come up,
//! announcements reach the other side's best-path subscription (the agent's and the master's
//! feed), withdrawals turn into empty path sets, and peer state and counters are reported.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use fabric_bgp::control::PrefixRange;
use fabric_bgp::packet::{Afi, AsPath, PathAttrs, Prefix};
use fabric_bgp::rib::BestChange;
use fabric_bgp::{PeerConfig, RibEvent, Speaker, SpeakerConfig};
use tokio::sync::mpsc::UnboundedReceiver;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// The best-path changes of an event (none for an End-of-RIB).
fn changes(event: RibEvent) -> Vec<BestChange> {
    match event {
        RibEvent::Changes(batch) => batch,
        RibEvent::EndOfRib { .. } => Vec::new(),
    }
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_speakers_exchange_routes_and_subscribers_see_changes() {
    // A listens on 127.0.0.2 and waits for B (passive); B connects from 127.0.0.3.
    let mut a_cfg = SpeakerConfig::new(65001, Ipv4Addr::new(127, 0, 0, 2));
    a_cfg.listen = Some("127.0.0.2:0".parse().unwrap());
    let mut b_peer = PeerConfig::new(v4(127, 0, 0, 3), Some(65002));
    b_peer.passive = true;
    a_cfg.peers.push(b_peer);
    let a = Speaker::new(a_cfg).await.expect("speaker A starts");
    let port = a.listen_addr().expect("A listens").port();

    let b = Speaker::new(SpeakerConfig::new(65002, Ipv4Addr::new(127, 0, 0, 3)))
        .await
        .expect("speaker B starts");
    let mut a_peer = PeerConfig::new(v4(127, 0, 0, 2), Some(65001));
    a_peer.port = port;
    a_peer.local_address = Some(v4(127, 0, 0, 3));
    b.add_peer(a_peer).await.expect("add peer");
    let mut changes = b.subscribe().expect("subscribe");
    match changes.recv().await.expect("initial snapshot") {
        RibEvent::Changes(snapshot) => assert!(snapshot.is_empty()),
        other => panic!("the first event is not the snapshot: {other:?}"),
    }

    until("both sessions established", async || {
        let sa = a.peer_states().await.ok()?;
        let sb = b.peer_states().await.ok()?;
        let up = |s: &Vec<fabric_bgp::PeerState>| {
            s.iter()
                .all(|p| p.session.state == fabric_bgp::fsm::State::Established)
        };
        (up(&sa) && up(&sb) && !sa.is_empty() && !sb.is_empty()).then_some(())
    })
    .await;

    let prefixes = PrefixRange {
        start: v4(10, 100, 0, 0),
        count: 100,
        prefix_len: 32,
    }
    .prefixes()
    .unwrap();
    let attrs = PathAttrs {
        as_path: AsPath::sequence(vec![]),
        communities: vec![0xfde9_0064],
        ..PathAttrs::default()
    };
    a.announce(prefixes.clone(), attrs).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    until("B's subscriber to see all 100 routes", async || {
        while let Ok(event) = changes.try_recv() {
            for c in self::changes(event) {
                seen.insert(c.prefix, c.paths);
            }
        }
        (seen.len() == 100).then_some(())
    })
    .await;
    for paths in seen.values() {
        assert_eq!(paths.len(), 1);
        assert_eq!(
            paths[0].next_hop,
            Some(v4(127, 0, 0, 2)),
            "A's session address is the next hop"
        );
        assert_eq!(paths[0].as_path, AsPath::sequence(vec![65001]));
        assert_eq!(paths[0].communities, vec![0xfde9_0064]);
    }
    let a_state = a.peer_states().await.unwrap();
    assert_eq!(a_state[0].advertised_prefixes, 100);
    let b_state = b.peer_states().await.unwrap();
    assert_eq!(b_state[0].received_prefixes, 100);
    assert!(b_state[0].session.updates_in >= 1);

    a.withdraw(prefixes[..40].to_vec()).unwrap();
    let mut gone = 0;
    until("B's subscriber to see 40 withdrawals", async || {
        while let Ok(event) = changes.try_recv() {
            gone += self::changes(event)
                .iter()
                .filter(|c| c.paths.is_empty())
                .count();
        }
        (gone == 40).then_some(())
    })
    .await;
    assert_eq!(b.loc_rib_len().await.unwrap(), 60);

    // Removing the peer withdraws what it sent.
    assert!(b.remove_peer(v4(127, 0, 0, 2)).await.unwrap());
    assert_eq!(b.loc_rib_len().await.unwrap(), 0);
    a.shutdown().await;
    b.shutdown().await;
}

/// Both speakers connect to each other at once: collision detection (RFC 4271 §6.8) keeps one
/// session that stays up. Both offer extended messages (RFC 8654), so 10,000 /32s fit in a
/// single UPDATE instead of the 13 a 4,096-byte limit needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_open_keeps_one_session_and_extended_messages_pack_more() {
    let mut a_cfg = SpeakerConfig::new(65001, Ipv4Addr::new(127, 0, 0, 4));
    a_cfg.listen = Some("127.0.0.4:0".parse().unwrap());
    let mut b_cfg = SpeakerConfig::new(65002, Ipv4Addr::new(127, 0, 0, 5));
    b_cfg.listen = Some("127.0.0.5:0".parse().unwrap());
    let a = Speaker::new(a_cfg).await.unwrap();
    let b = Speaker::new(b_cfg).await.unwrap();
    let mut to_b = PeerConfig::new(v4(127, 0, 0, 5), Some(65002));
    to_b.port = b.listen_addr().unwrap().port();
    to_b.local_address = Some(v4(127, 0, 0, 4));
    let mut to_a = PeerConfig::new(v4(127, 0, 0, 4), Some(65001));
    to_a.port = a.listen_addr().unwrap().port();
    to_a.local_address = Some(v4(127, 0, 0, 5));
    let (ra, rb) = tokio::join!(a.add_peer(to_b), b.add_peer(to_a));
    ra.unwrap();
    rb.unwrap();
    let established = async |s: &Speaker| {
        s.peer_states().await.ok().is_some_and(|p| {
            p.len() == 1 && p[0].session.state == fabric_bgp::fsm::State::Established
        })
    };
    until("one session between the two", async || {
        (established(&a).await && established(&b).await).then_some(())
    })
    .await;
    // It stays up: no flap for two seconds.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            established(&a).await && established(&b).await,
            "session flapped after a collision"
        );
    }
    assert_eq!(a.peer_states().await.unwrap()[0].session.flaps, 0);

    let before = a.peer_states().await.unwrap()[0].session.updates_out;
    let prefixes = PrefixRange {
        start: v4(10, 200, 0, 0),
        count: 10_000,
        prefix_len: 32,
    }
    .prefixes()
    .unwrap();
    a.announce(prefixes, PathAttrs::default()).unwrap();
    until("B to hold 10,000 routes", async || {
        (b.loc_rib_len().await.ok()? == 10_000).then_some(())
    })
    .await;
    let sent = a.peer_states().await.unwrap()[0].session.updates_out - before;
    assert_eq!(sent, 1, "10,000 /32s should fit one extended UPDATE");
    a.shutdown().await;
    b.shutdown().await;
}

/// Reads events until `peer`'s End-of-RIB for IPv4 and applies the changes before it to
/// `rib` (prefix → has a path).
async fn until_end_of_rib(
    rx: &mut UnboundedReceiver<RibEvent>,
    rib: &mut std::collections::BTreeMap<Prefix, bool>,
    peer: IpAddr,
) {
    let deadline = Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no End-of-RIB from {peer} in {deadline:?}"))
            .expect("the speaker stopped");
        match event {
            RibEvent::Changes(batch) => {
                for c in batch {
                    rib.insert(c.prefix, !c.paths.is_empty());
                }
            }
            RibEvent::EndOfRib { peer: p, afi } => {
                assert_eq!(p, peer, "End-of-RIB from an unknown peer");
                // Both families are negotiated; the routes are IPv4.
                if afi == Afi::Ipv4 {
                    return;
                }
            }
        }
    }
}

fn held(rib: &std::collections::BTreeMap<Prefix, bool>) -> usize {
    rib.values().filter(|has| **has).count()
}

/// A peer's End-of-RIB reaches subscribers after every best-path change its initial update
/// caused (thousands of routes in several UPDATEs, handled in one batch with the End-of-RIB),
/// a late subscriber gets it right after its snapshot, and a new session of the same peer
/// sends a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_rib_is_reported_after_the_routes_of_the_initial_update() {
    // B listens on 127.0.0.7 for A (passive); A connects from 127.0.0.6.
    let mut b_cfg = SpeakerConfig::new(65002, Ipv4Addr::new(127, 0, 0, 7));
    b_cfg.listen = Some("127.0.0.7:0".parse().unwrap());
    let mut a_peer = PeerConfig::new(v4(127, 0, 0, 6), Some(65001));
    a_peer.passive = true;
    b_cfg.peers.push(a_peer);
    let b = Speaker::new(b_cfg).await.expect("speaker B starts");
    let port = b.listen_addr().expect("B listens").port();
    let mut rx = b.subscribe().expect("subscribe");

    // A speaker at 127.0.0.6 with `count` routes before its session starts, so they are all
    // in the initial update, followed by End-of-RIB.
    let start_a = async |start: IpAddr, count: u64| {
        let a = Speaker::new(SpeakerConfig::new(65001, Ipv4Addr::new(127, 0, 0, 6)))
            .await
            .expect("speaker A starts");
        let prefixes = PrefixRange {
            start,
            count,
            prefix_len: 32,
        }
        .prefixes()
        .unwrap();
        a.announce(prefixes, PathAttrs::default()).unwrap();
        let mut to_b = PeerConfig::new(v4(127, 0, 0, 7), Some(65002));
        to_b.port = port;
        to_b.local_address = Some(v4(127, 0, 0, 6));
        a.add_peer(to_b).await.expect("add peer");
        a
    };
    let a = start_a(v4(10, 50, 0, 0), 3_000).await;
    let mut rib = std::collections::BTreeMap::new();
    until_end_of_rib(&mut rx, &mut rib, v4(127, 0, 0, 6)).await;
    assert_eq!(
        held(&rib),
        3_000,
        "End-of-RIB reported before all the routes it follows"
    );

    // A late subscriber: the whole Loc-RIB, then the End-of-RIB already received.
    let mut late = b.subscribe().expect("subscribe");
    let mut late_rib = std::collections::BTreeMap::new();
    until_end_of_rib(&mut late, &mut late_rib, v4(127, 0, 0, 6)).await;
    assert_eq!(held(&late_rib), 3_000);

    // A new session (A restarted with other routes): the old routes go, the new ones come,
    // then a new End-of-RIB.
    a.shutdown().await;
    let a = start_a(v4(10, 51, 0, 0), 1_000).await;
    until_end_of_rib(&mut rx, &mut rib, v4(127, 0, 0, 6)).await;
    assert_eq!(held(&rib), 1_000, "B's Loc-RIB after A's second session");
    assert!(rib
        .iter()
        .filter(|(_, has)| **has)
        .all(|(p, _)| p.to_string().starts_with("10.51.")));
    a.shutdown().await;
    b.shutdown().await;
}

//! The library API in-process, two speakers over loopback (no root needed): sessions come up,
//! announcements reach the other side's best-path subscription (the agent's and the master's
//! feed), withdrawals turn into empty path sets, and peer state and counters are reported.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use fabric_bgp::control::PrefixRange;
use fabric_bgp::packet::{AsPath, PathAttrs};
use fabric_bgp::{PeerConfig, Speaker, SpeakerConfig};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
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
    let snapshot = changes.recv().await.expect("initial snapshot");
    assert!(snapshot.is_empty());

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
        while let Ok(batch) = changes.try_recv() {
            for c in batch {
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
        while let Ok(batch) = changes.try_recv() {
            gone += batch.iter().filter(|c| c.paths.is_empty()).count();
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

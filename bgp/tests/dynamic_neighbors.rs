//! Dynamic neighbours of a reflector, over loopback (no root: 127.0.x.y are all ours): their
//! state goes when their session ends (hundreds of distinct hosts leave nothing behind), the
//! session cap, the admission list (refused before OPEN, Cease/3 when an address is dropped),
//! graceful restart of a neighbour whose peer entry is gone, and TCP MD5 on the whole prefix.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::raw_peer::{connect, RawOpen, RawPeer};
use fabric_bgp::config::DynamicNeighbors;
use fabric_bgp::packet::error::{cease, code};
use fabric_bgp::packet::Prefix;
use fabric_bgp::{DynamicStats, Speaker, SpeakerConfig};

const AS: u32 = 65000;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn host(p: &str) -> Prefix {
    p.parse().unwrap()
}

/// A reflector listening on `listen`, taking neighbours from 127.0.0.0/8.
fn reflector_config(listen: IpAddr) -> SpeakerConfig {
    let mut cfg = SpeakerConfig::new(AS, Ipv4Addr::new(10, 255, 255, 1));
    cfg.listen = Some(SocketAddr::new(listen, 0));
    cfg.cluster_id = Some(Ipv4Addr::new(10, 255, 255, 1));
    cfg.dynamic_neighbors.push(DynamicNeighbors {
        prefix: "127.0.0.0/8".parse().unwrap(),
        peer_as: Some(AS),
        rr_client: true,
        max_prefix: None,
        families: vec![fabric_bgp::packet::Afi::Ipv4],
        md5_password: None,
    });
    cfg
}

async fn until<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stats(s: &Speaker) -> DynamicStats {
    s.dynamic_stats().await.expect("speaker runs")
}

fn open(n: u32) -> RawOpen {
    RawOpen::new(AS, Ipv4Addr::from(0x0a00_0000 + n))
}

/// The i-th distinct client address: 127.0.10.1, 127.0.10.2, ... (250 per /24).
fn client(i: u32) -> IpAddr {
    v4(127, 0, 10 + (i / 250) as u8, 1 + (i % 250) as u8)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_hosts_come_and_go_and_leave_nothing() {
    let rr = Speaker::new(reflector_config(v4(127, 0, 0, 1)))
        .await
        .unwrap();
    let dst = rr.listen_addr().unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    const HOSTS: u32 = 300;
    const AT_ONCE: u32 = 25;
    for batch in 0..HOSTS / AT_ONCE {
        let mut peers = Vec::new();
        for i in batch * AT_ONCE..(batch + 1) * AT_ONCE {
            let src = client(i);
            let mut peer = RawPeer::establish(src, dst, &open(i)).await;
            let IpAddr::V4(a) = src else { unreachable!() };
            peer.announce(
                &[host(&format!(
                    "10.{}.{}.{}/32",
                    a.octets()[1],
                    a.octets()[2],
                    a.octets()[3]
                ))],
                src,
            )
            .await;
            peers.push(peer);
        }
        until("the batch's routes", 20, async || {
            (rr.loc_rib_len().await.ok()? == AT_ONCE as usize).then_some(())
        })
        .await;
        assert_eq!(rr.peer_states().await.unwrap().len(), AT_ONCE as usize);
        // Each host leaves without a word (its TCP connection closes).
        drop(peers);
        until("the batch's peers to be forgotten", 20, async || {
            let gone = rr.peer_states().await.ok()?.is_empty();
            let routes = rr.loc_rib_len().await.ok()?;
            (gone && routes == 0).then_some(())
        })
        .await;
    }
    let s = stats(&rr).await;
    assert_eq!(s.accepted, u64::from(HOSTS));
    assert_eq!(s.ended, u64::from(HOSTS));
    assert_eq!(s.active, 0);
    assert_eq!(
        s.retained, 0,
        "no graceful restart negotiated: nothing kept"
    );
    // Every session task, its reader and writer, and any timer are gone too.
    until("the sessions' tasks to end", 20, async || {
        (metrics.num_alive_tasks() <= tasks_before).then_some(())
    })
    .await;
    rr.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_refuses_one_more_dynamic_session() {
    let mut cfg = reflector_config(v4(127, 0, 0, 1));
    cfg.max_dynamic_peers = 3;
    let rr = Speaker::new(cfg).await.unwrap();
    let dst = rr.listen_addr().unwrap();
    let mut peers = Vec::new();
    for i in 0..3 {
        peers.push(RawPeer::establish(v4(127, 0, 20, 1 + i), dst, &open(u32::from(i))).await);
    }
    let stream = connect(v4(127, 0, 20, 9), dst, None).await.unwrap();
    let mut fourth = RawPeer::raw(stream);
    assert!(
        fourth.read().await.is_none(),
        "the 4th connection is closed without an OPEN"
    );
    let s = stats(&rr).await;
    assert_eq!((s.active, s.refused_limit, s.accepted), (3, 1, 3));
    // One leaves: its place is free again.
    peers.pop();
    until("the third to be forgotten", 20, async || {
        (stats(&rr).await.active == 2).then_some(())
    })
    .await;
    let _fourth = RawPeer::establish(v4(127, 0, 20, 9), dst, &open(9)).await;
    assert_eq!(stats(&rr).await.active, 3);
    rr.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_list_refuses_before_open_and_closes_dropped_hosts() {
    let rr = Speaker::new(reflector_config(v4(127, 0, 0, 1)))
        .await
        .unwrap();
    let dst = rr.listen_addr().unwrap();
    let (a, b) = (v4(127, 0, 30, 1), v4(127, 0, 30, 2));
    rr.set_dynamic_allowed(Some(BTreeSet::from([a])));

    let stream = connect(b, dst, None).await.unwrap();
    let mut refused = RawPeer::raw(stream);
    assert!(
        refused.read().await.is_none(),
        "an unregistered host is closed before any OPEN"
    );
    let s = stats(&rr).await;
    assert_eq!((s.refused_not_allowed, s.accepted, s.active), (1, 0, 0));
    assert!(rr.peer_states().await.unwrap().is_empty());

    let mut peer_a = RawPeer::establish(a, dst, &open(1)).await;
    peer_a.announce(&[host("10.30.0.1/32")], a).await;
    until("a's route", 20, async || {
        (rr.loc_rib_len().await.ok()? == 1).then_some(())
    })
    .await;

    // The master no longer lists a: its session ends with Cease/3 and its routes go.
    rr.set_dynamic_allowed(Some(BTreeSet::new()));
    let n = peer_a
        .notification()
        .await
        .expect("a NOTIFICATION before the close");
    assert_eq!((n.code, n.subcode), (code::CEASE, cease::PEER_DECONFIGURED));
    assert!(peer_a.read().await.is_none(), "then the connection closes");
    assert_eq!(rr.loc_rib_len().await.unwrap(), 0);
    let s = stats(&rr).await;
    assert_eq!((s.active, s.ended), (0, 1));

    // None lets anyone in the prefix connect again.
    rr.set_dynamic_allowed(None);
    let _b = RawPeer::establish(b, dst, &open(2)).await;
    rr.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_host_keeps_its_routes_stale_until_end_of_rib_or_the_timer() {
    let mut cfg = reflector_config(v4(127, 0, 0, 1));
    cfg.graceful_restart = Some(120);
    let rr = Speaker::new(cfg).await.unwrap();
    let dst = rr.listen_addr().unwrap();
    let src = v4(127, 0, 40, 1);
    let mut gr = open(1);
    gr.graceful_restart = Some((3, false));
    let mut peer = RawPeer::establish(src, dst, &gr).await;
    peer.announce(&[host("10.40.0.1/32"), host("10.40.0.2/32")], src)
        .await;
    until("both routes", 20, async || {
        (rr.loc_rib_len().await.ok()? == 2).then_some(())
    })
    .await;

    // The host dies (no NOTIFICATION): its peer entry goes, its routes stay as stale.
    drop(peer);
    until("the peer entry to go", 20, async || {
        rr.peer_states().await.ok()?.is_empty().then_some(())
    })
    .await;
    let rib = rr.loc_rib().await.unwrap();
    assert_eq!(rib.len(), 2, "routes kept through the restart");
    assert!(rib.iter().all(|r| r.stale), "and marked stale");
    assert_eq!(stats(&rr).await.retained, 1);

    // It comes back within its restart time, resends one route and End-of-RIB: the other
    // goes, and the one resent is fresh.
    gr.graceful_restart = Some((2, true));
    let mut peer = RawPeer::establish(src, dst, &gr).await;
    assert_eq!(stats(&rr).await.retained, 0, "its RIB slot is taken back");
    peer.announce(&[host("10.40.0.1/32")], src).await;
    peer.end_of_rib().await;
    until("the stale route purged by End-of-RIB", 20, async || {
        let rib = rr.loc_rib().await.ok()?;
        (rib.len() == 1 && !rib[0].stale).then_some(())
    })
    .await;

    // It dies again and stays away: after its restart time (2 s) nothing is left.
    drop(peer);
    until("the peer entry to go again", 20, async || {
        rr.peer_states().await.ok()?.is_empty().then_some(())
    })
    .await;
    assert_eq!(rr.loc_rib_len().await.unwrap(), 1);
    let started = tokio::time::Instant::now();
    until("the restart timer to purge the routes", 20, async || {
        (rr.loc_rib_len().await.ok()? == 0).then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the restart time"
    );
    let s = stats(&rr).await;
    assert_eq!((s.retained, s.active, s.accepted, s.ended), (0, 0, 2, 2));
    rr.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_on_the_dynamic_prefix() {
    let mut cfg = reflector_config(v4(127, 0, 0, 1));
    cfg.dynamic_neighbors[0].md5_password = Some("fabric-secret".into());
    let rr = Speaker::new(cfg).await.unwrap();
    let dst = rr.listen_addr().unwrap();
    // Without the key the SYN is dropped by the kernel: the connection never completes.
    let unsigned = tokio::time::timeout(
        Duration::from_secs(3),
        connect(v4(127, 0, 50, 1), dst, None),
    )
    .await;
    assert!(
        !matches!(unsigned, Ok(Ok(_))),
        "a connection without the key must not be accepted"
    );
    let wrong = tokio::time::timeout(
        Duration::from_secs(3),
        connect(v4(127, 0, 50, 2), dst, Some("wrong")),
    )
    .await;
    assert!(!matches!(wrong, Ok(Ok(_))), "nor one with a wrong key");
    let stream = connect(v4(127, 0, 50, 3), dst, Some("fabric-secret"))
        .await
        .expect("the right key connects");
    let _peer = RawPeer::establish_on(stream, &open(3)).await;
    let s = stats(&rr).await;
    assert_eq!((s.accepted, s.active), (1, 1));
    rr.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_stops_reading_does_not_keep_its_writer() {
    let rr = Speaker::new(reflector_config(v4(127, 0, 0, 1)))
        .await
        .unwrap();
    let dst = rr.listen_addr().unwrap();
    // About 6 MB of UPDATEs: 1,500 routes whose 900 communities (distinct per route, so each
    // goes in its own UPDATE) fill a message each, more than the socket buffers hold.
    for i in 0..1500u32 {
        let attrs = fabric_bgp::packet::PathAttrs {
            communities: (0..900).map(|c| (i << 12) | c).collect(),
            ..Default::default()
        };
        let prefix =
            Prefix::from(ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a64_0000 + i), 32).unwrap());
        rr.announce(vec![prefix], attrs).unwrap();
    }
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    let src = v4(127, 0, 60, 1);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(SocketAddr::new(src, 0)).unwrap();
    let stream = socket.connect(dst).await.unwrap();
    // Established, then it reads nothing more: our writer blocks on a full socket.
    let _stuck = RawPeer::establish_on(stream, &open(1)).await;
    until("the reflector to be blocked sending", 20, async || {
        let s = rr.peer_states().await.ok()?;
        (s.first()?.advertised_prefixes == 1500).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The master drops the host: the session is closed on our side, and its writer with its
    // queued UPDATEs goes within the grace period although the peer still holds the socket.
    rr.set_dynamic_allowed(Some(BTreeSet::new()));
    until("the stuck writer to be stopped", 20, async || {
        (metrics.num_alive_tasks() <= tasks_before).then_some(())
    })
    .await;
    assert!(rr.peer_states().await.unwrap().is_empty());
    rr.shutdown().await;
}

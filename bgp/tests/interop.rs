//! Interop with real daemons in network namespaces: BIRD 2, FRR 8.4 and GoBGP 3 peer with our
//! fabric-bgpd over a veth. Each scenario: session up; we advertise 10,000 /32s and the peer's
//! RIB holds exactly those with our next hop and AS path; we withdraw half and the peer drops
//! exactly that half; the peer's routes land in our Loc-RIB; route refresh both ways; and
//! graceful restart (we are killed, the peer keeps our routes, we come back, nothing withdrawn).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use common::peers::{Bird, Frr, GoBgp, PeerDaemon, PeerSpec};
use common::{range, require, veth, wait_for, Bgpd, Dir, Netns, Seen};
use serde_json::{json, Value};

const OUR_AS: u32 = 65001;
const OUR_ADDR: &str = "10.0.0.1";
const PEER_ADDR: &str = "10.0.0.2";
const COUNT: u32 = 10_000;
const BASE: [u8; 4] = [10, 100, 0, 0];

struct Lab {
    ours: Netns,
    theirs: Netns,
    dir: Dir,
}

fn lab(tools: &[&str]) -> Lab {
    let mut all = vec!["ip"];
    all.extend_from_slice(tools);
    require(&all);
    let ours = Netns::new();
    let theirs = Netns::new();
    veth(&ours, "10.0.0.1/24", &theirs, "10.0.0.2/24");
    Lab {
        ours,
        theirs,
        dir: Dir::new(),
    }
}

fn spec(peer_as: u32, gr: bool) -> PeerSpec {
    PeerSpec {
        asn: peer_as,
        router_id: PEER_ADDR.into(),
        address: PEER_ADDR.into(),
        our_address: OUR_ADDR.into(),
        our_as: OUR_AS,
        originate: vec!["192.168.100.0/24".into(), "192.168.101.0/24".into()],
        graceful_restart: gr,
        extra: String::new(),
    }
}

fn speaker_config(peer_as: u32, restarting: bool) -> Value {
    json!({
        "local_as": OUR_AS,
        "router_id": OUR_ADDR,
        "listen": "10.0.0.1:179",
        "connect_retry": 2,
        "graceful_restart": 60,
        "restarting": restarting,
        "peers": [{"address": PEER_ADDR, "peer_as": peer_as, "families": ["Ipv4"]}],
    })
}

fn announce_range(start: [u8; 4], count: u32) -> Value {
    json!({"start": std::net::Ipv4Addr::from(start).to_string(), "count": count, "prefix_len": 32})
}

/// Wait until the peer holds exactly `expected`, each with `next_hop` and `as_path`.
fn wait_exact(
    peer: &dyn PeerDaemon,
    expected: &BTreeSet<String>,
    as_path: &[u32],
    what: &str,
) -> BTreeMap<String, Seen> {
    let hop: IpAddr = OUR_ADDR.parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let learned = peer.learned();
        let keys: BTreeSet<String> = learned.keys().cloned().collect();
        if &keys == expected {
            for (p, seen) in &learned {
                assert_eq!(seen.next_hop, Some(hop), "{what}: next hop of {p}");
                assert_eq!(seen.as_path, as_path, "{what}: AS path of {p}");
            }
            return learned;
        }
        if std::time::Instant::now() > deadline {
            let missing: Vec<_> = expected.difference(&keys).take(5).collect();
            let extra: Vec<_> = keys.difference(expected).take(5).collect();
            panic!(
                "{what}: peer holds {} prefixes, expected {}; missing e.g. {missing:?}, extra e.g. {extra:?}",
                keys.len(),
                expected.len()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

fn counter(bgpd: &Bgpd, name: &str) -> u64 {
    bgpd.peer(PEER_ADDR)[name].as_u64().unwrap_or(0)
}

/// Session, 10k advertise, withdraw half, receive, route refresh both ways.
fn advertise_withdraw_receive(lab: &Lab, peer: &dyn PeerDaemon, peer_as: u32) {
    let ebgp = peer_as != OUR_AS;
    let ours = Bgpd::start(
        &lab.ours,
        &lab.dir,
        "fabric",
        speaker_config(peer_as, false),
        json!([]),
    );
    ours.wait_established(PEER_ADDR);
    wait_for("the peer to report the session established", 30, || {
        peer.established().then_some(())
    });

    let as_path: Vec<u32> = if ebgp { vec![OUR_AS] } else { vec![] };
    ours.ctl(json!({"cmd": "announce", "range": announce_range(BASE, COUNT)}));
    let all: BTreeSet<String> = range(BASE, COUNT).into_iter().collect();
    wait_exact(peer, &all, &as_path, "after advertising 10,000 /32s");

    ours.ctl(json!({"cmd": "withdraw", "range": announce_range(BASE, COUNT / 2)}));
    let kept: BTreeSet<String> = range(BASE, COUNT)
        .into_iter()
        .skip((COUNT / 2) as usize)
        .collect();
    wait_exact(peer, &kept, &as_path, "after withdrawing half");

    let want_path: Vec<u32> = if ebgp { vec![peer_as] } else { vec![] };
    let rib = wait_for("the peer's routes in our Loc-RIB", 30, || {
        let rib = ours.rib();
        ["192.168.100.0/24", "192.168.101.0/24"]
            .iter()
            .all(|p| rib.contains_key(*p))
            .then_some(rib)
    });
    for p in ["192.168.100.0/24", "192.168.101.0/24"] {
        let (hops, path) = &rib[p];
        assert_eq!(
            hops,
            &vec![PEER_ADDR.to_string()],
            "next hop of {p} in our Loc-RIB"
        );
        assert_eq!(path, &want_path, "AS path of {p} in our Loc-RIB");
    }

    // We ask for a refresh: the peer resends its routes, so our UPDATE-in counter grows.
    let before = counter(&ours, "updates_in");
    ours.ctl(json!({"cmd": "refresh", "peer": PEER_ADDR}));
    wait_for("the peer to answer our ROUTE-REFRESH", 20, || {
        (counter(&ours, "updates_in") > before).then_some(())
    });
    // The peer asks: we resend everything, so our UPDATE-out counter grows and its RIB stays exact.
    let before = counter(&ours, "updates_out");
    if peer.request_refresh() {
        wait_for("us to answer the peer's ROUTE-REFRESH", 20, || {
            (counter(&ours, "updates_out") > before).then_some(())
        });
    }
    wait_exact(peer, &kept, &as_path, "after route refresh");
}

/// We are killed; the peer keeps our routes as stale; we come back and re-sync without the
/// peer ever dropping a route.
fn graceful_restart(lab: &Lab, peer: &dyn PeerDaemon, peer_as: u32) {
    let as_path = vec![OUR_AS];
    let announce = json!([{"range": announce_range(BASE, COUNT)}]);
    let mut ours = Bgpd::start(
        &lab.ours,
        &lab.dir,
        "fabric",
        speaker_config(peer_as, false),
        announce.clone(),
    );
    ours.wait_established(PEER_ADDR);
    let all: BTreeSet<String> = range(BASE, COUNT).into_iter().collect();
    wait_exact(peer, &all, &as_path, "before the restart");

    ours.proc.kill();
    wait_for("the peer to notice our session is gone", 30, || {
        (!peer.established()).then_some(())
    });
    let held = peer.learned();
    assert_eq!(
        held.len(),
        all.len(),
        "peer dropped our routes when we died instead of keeping them stale"
    );

    let back = Bgpd::start(
        &lab.ours,
        &lab.dir,
        "fabric2",
        speaker_config(peer_as, true),
        announce,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let mut established_seen = 0;
    loop {
        let learned = peer.learned();
        assert_eq!(
            learned.len(),
            all.len(),
            "the peer withdrew routes during our restart"
        );
        let up = peer.established() && back.peer(PEER_ADDR)["state"] == "Established";
        if up && learned.values().all(|s| !s.stale) {
            established_seen += 1;
            if established_seen >= 3 {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "re-sync after restart did not complete in 40s"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    wait_exact(peer, &all, &as_path, "after the restart");
}

#[test]
fn bird_ebgp_advertise_withdraw_receive_refresh() {
    let lab = lab(&["bird", "birdc"]);
    let bird = Bird::start(&lab.theirs, &lab.dir, &spec(65002, false));
    advertise_withdraw_receive(&lab, &bird, 65002);
}

#[test]
fn bird_ibgp_advertise_withdraw_receive_refresh() {
    let lab = lab(&["bird", "birdc"]);
    let bird = Bird::start(&lab.theirs, &lab.dir, &spec(OUR_AS, false));
    advertise_withdraw_receive(&lab, &bird, OUR_AS);
}

#[test]
fn bird_graceful_restart_keeps_routes() {
    let lab = lab(&["bird", "birdc"]);
    let bird = Bird::start(&lab.theirs, &lab.dir, &spec(65002, true));
    graceful_restart(&lab, &bird, 65002);
}

/// The other direction of RFC 4724: BIRD dies, we keep its routes as stale (helper), BIRD
/// comes back and refreshes them, and End-of-RIB clears the stale mark.
#[test]
fn bird_restarts_and_we_keep_its_routes_as_helper() {
    let lab = lab(&["bird", "birdc"]);
    let bird = Bird::start(&lab.theirs, &lab.dir, &spec(65002, true));
    let ours = Bgpd::start(
        &lab.ours,
        &lab.dir,
        "fabric",
        speaker_config(65002, false),
        json!([]),
    );
    let peer_routes = ["192.168.100.0/24", "192.168.101.0/24"];
    wait_for("BIRD's routes in our Loc-RIB", 30, || {
        peer_routes
            .iter()
            .all(|p| ours.stale(p) == Some(false))
            .then_some(())
    });
    drop(bird);
    wait_for("our session to BIRD to go down", 30, || {
        (ours.peer(PEER_ADDR)["state"] != "Established").then_some(())
    });
    for p in peer_routes {
        assert_eq!(
            ours.stale(p),
            Some(true),
            "{p} must be kept as stale while BIRD restarts"
        );
    }
    let _bird = Bird::start(&lab.theirs, &lab.dir, &spec(65002, true));
    ours.wait_established(PEER_ADDR);
    wait_for("BIRD's routes refreshed (no longer stale)", 30, || {
        peer_routes
            .iter()
            .all(|p| ours.stale(p) == Some(false))
            .then_some(())
    });
}

#[test]
fn frr_ebgp_advertise_withdraw_receive_refresh() {
    let lab = lab(&["/usr/lib/frr/bgpd", "/usr/lib/frr/zebra", "vtysh"]);
    let frr = Frr::start(&lab.theirs, &spec(65003, false));
    advertise_withdraw_receive(&lab, &frr, 65003);
}

#[test]
fn frr_ibgp_advertise_withdraw_receive_refresh() {
    let lab = lab(&["/usr/lib/frr/bgpd", "/usr/lib/frr/zebra", "vtysh"]);
    let frr = Frr::start(&lab.theirs, &spec(OUR_AS, false));
    advertise_withdraw_receive(&lab, &frr, OUR_AS);
}

#[test]
fn frr_graceful_restart_keeps_routes() {
    let lab = lab(&["/usr/lib/frr/bgpd", "/usr/lib/frr/zebra", "vtysh"]);
    let frr = Frr::start(&lab.theirs, &spec(65003, true));
    graceful_restart(&lab, &frr, 65003);
}

#[test]
fn gobgp_ebgp_advertise_withdraw_receive_refresh() {
    let lab = lab(&["gobgpd", "gobgp"]);
    let gobgp = GoBgp::start(&lab.theirs, &lab.dir, &spec(65004, false));
    advertise_withdraw_receive(&lab, &gobgp, 65004);
}

#[test]
fn gobgp_ibgp_advertise_withdraw_receive_refresh() {
    let lab = lab(&["gobgpd", "gobgp"]);
    let gobgp = GoBgp::start(&lab.theirs, &lab.dir, &spec(OUR_AS, false));
    advertise_withdraw_receive(&lab, &gobgp, OUR_AS);
}

#[test]
fn gobgp_graceful_restart_keeps_routes() {
    let lab = lab(&["gobgpd", "gobgp"]);
    let gobgp = GoBgp::start(&lab.theirs, &lab.dir, &spec(65004, true));
    graceful_restart(&lab, &gobgp, 65004);
}

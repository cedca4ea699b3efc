//! ECMP with real peers: two BIRD routers in different ASes advertise the same prefix with
//! equally good paths; our Loc-RIB hands both next hops to the consumer, and when one router
//! withdraws, the other remains.

mod common;

use common::peers::{Bird, PeerSpec};
use common::{bridge, bridge_port, require, wait_for, Bgpd, Dir, Netns};
use serde_json::json;

fn router(address: &str, asn: u32) -> PeerSpec {
    PeerSpec {
        asn,
        router_id: address.into(),
        address: address.into(),
        our_address: "10.0.0.1".into(),
        our_as: 65001,
        originate: vec!["192.168.50.0/24".into()],
        graceful_restart: false,
        extra: String::new(),
    }
}

#[test]
fn two_equal_paths_are_both_handed_out() {
    require(&["ip", "bird", "birdc"]);
    let hub = Netns::new();
    let br = bridge(&hub, "10.0.0.1/24");
    let (n1, n2) = (Netns::new(), Netns::new());
    bridge_port(&hub, &br, &n1, "10.0.0.2/24");
    bridge_port(&hub, &br, &n2, "10.0.0.3/24");
    let (d0, d1, d2) = (Dir::new(), Dir::new(), Dir::new());
    let ours = Bgpd::start(
        &hub,
        &d0,
        "ecmp",
        json!({"local_as": 65001, "router_id": "10.0.0.1", "listen": "10.0.0.1:179", "connect_retry": 1,
               "peers": [{"address": "10.0.0.2", "peer_as": 65002, "families": ["Ipv4"]},
                         {"address": "10.0.0.3", "peer_as": 65003, "families": ["Ipv4"]}]}),
        json!([]),
    );
    let first = Bird::start(&n1, &d1, &router("10.0.0.2", 65002));
    let _second = Bird::start(&n2, &d2, &router("10.0.0.3", 65003));
    let hops = wait_for("both next hops for 192.168.50.0/24", 30, || {
        let rib = ours.rib();
        let (hops, _) = rib.get("192.168.50.0/24")?.clone();
        (hops.len() == 2).then_some(hops)
    });
    let mut sorted = hops.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["10.0.0.2".to_string(), "10.0.0.3".to_string()]);

    drop(first);
    wait_for("one next hop left after a router dies", 30, || {
        let rib = ours.rib();
        let (hops, _) = rib.get("192.168.50.0/24")?.clone();
        (hops == vec!["10.0.0.3".to_string()]).then_some(())
    });
}

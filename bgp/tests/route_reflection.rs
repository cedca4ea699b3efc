//! Route reflection (RFC 4456) with real clients: BIRD, FRR and GoBGP peer only with our
//! reflector (accepted as dynamic neighbours from 10.0.0.0/24). Each learns the other two
//! clients' routes with ORIGINATOR_ID and CLUSTER_LIST set, and nobody gets its own back.

mod common;

use common::peers::{Bird, Frr, GoBgp, PeerDaemon, PeerSpec};
use common::{bridge, bridge_port, require, wait_for, Bgpd, Dir, Netns};
use serde_json::json;

const AS: u32 = 65100;
const REFLECTOR: &str = "10.0.0.1";
const CLUSTER_ID: &str = "1.1.1.1";

fn client(address: &str, prefix: &str) -> PeerSpec {
    PeerSpec {
        asn: AS,
        router_id: address.into(),
        address: address.into(),
        our_address: REFLECTOR.into(),
        our_as: AS,
        originate: vec![prefix.into()],
        graceful_restart: false,
        extra: String::new(),
    }
}

#[test]
fn three_clients_learn_each_other_through_the_reflector() {
    require(&[
        "ip",
        "bird",
        "birdc",
        "/usr/lib/frr/bgpd",
        "vtysh",
        "gobgpd",
        "gobgp",
    ]);
    let r = Netns::new();
    let br = bridge(&r, "10.0.0.1/24");
    let (n1, n2, n3) = (Netns::new(), Netns::new(), Netns::new());
    bridge_port(&r, &br, &n1, "10.0.0.2/24");
    bridge_port(&r, &br, &n2, "10.0.0.3/24");
    bridge_port(&r, &br, &n3, "10.0.0.4/24");
    let (dr, d1, d3) = (Dir::new(), Dir::new(), Dir::new());

    let ours = Bgpd::start(
        &r,
        &dr,
        "reflector",
        json!({
            "local_as": AS,
            "router_id": REFLECTOR,
            "listen": "10.0.0.1:179",
            "cluster_id": CLUSTER_ID,
            "dynamic_neighbors": [{"prefix": "10.0.0.0/24", "peer_as": AS, "rr_client": true, "families": ["Ipv4"]}],
        }),
        json!([]),
    );
    let specs = [
        ("10.0.0.2", "192.168.11.0/24"),
        ("10.0.0.3", "192.168.12.0/24"),
        ("10.0.0.4", "192.168.13.0/24"),
    ];
    let bird = Bird::start(&n1, &d1, &client(specs[0].0, specs[0].1));
    let frr = Frr::start(&n2, &client(specs[1].0, specs[1].1));
    let gobgp = GoBgp::start(&n3, &d3, &client(specs[2].0, specs[2].1));
    let clients: [&dyn PeerDaemon; 3] = [&bird, &frr, &gobgp];

    for (i, c) in clients.iter().enumerate() {
        let others: Vec<(&str, &str)> = specs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| *s)
            .collect();
        wait_for(
            &format!("client {} to learn the other clients' routes", specs[i].0),
            40,
            || {
                let learned = c.learned();
                others
                    .iter()
                    .all(|(_, p)| learned.contains_key(*p))
                    .then_some(())
            },
        );
        let learned = c.learned();
        assert!(
            !learned.contains_key(specs[i].1),
            "client {} got its own route {} back",
            specs[i].0,
            specs[i].1
        );
        for (origin_addr, prefix) in others {
            assert_eq!(
                learned[prefix].next_hop,
                Some(origin_addr.parse().unwrap()),
                "reflected {prefix} keeps the originating client's next hop"
            );
            let (originator, clusters) = c.reflection(prefix).unwrap_or_else(|| {
                panic!("client {} shows no ORIGINATOR_ID for {prefix}", specs[i].0)
            });
            assert_eq!(
                originator, origin_addr,
                "ORIGINATOR_ID of {prefix} at {}",
                specs[i].0
            );
            assert_eq!(
                clusters,
                vec![CLUSTER_ID.to_string()],
                "CLUSTER_LIST of {prefix} at {}",
                specs[i].0
            );
        }
    }

    // Our Adj-RIB-Out per client: exactly the two other clients' routes.
    let peers = ours.ctl(json!({"cmd": "peers"}));
    let peers = peers.as_array().expect("peer list");
    assert_eq!(peers.len(), 3, "three dynamic neighbours: {peers:?}");
    for p in peers {
        assert_eq!(p["dynamic"], true);
        assert_eq!(p["received_prefixes"], 1, "{p}");
        assert_eq!(p["advertised_prefixes"], 2, "{p}");
    }
}

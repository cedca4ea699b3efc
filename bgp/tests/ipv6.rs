//! MP-BGP for IPv6 unicast (RFC 4760) end to end with BIRD over an IPv6 session: our /128s
//! reach BIRD with our IPv6 next hop, a withdrawal removes them, and BIRD's IPv6 route lands
//! in our Loc-RIB.

mod common;

use std::collections::BTreeSet;

use common::peers::{Bird, PeerDaemon};
use common::{require, veth, wait_for, Bgpd, Dir, Netns};
use serde_json::json;

#[test]
fn ipv6_unicast_with_bird() {
    require(&["ip", "bird", "birdc"]);
    let ours_ns = Netns::new();
    let theirs = Netns::new();
    let (a, b) = veth(&ours_ns, "10.0.0.1/24", &theirs, "10.0.0.2/24");
    ours_ns.exec(&["ip", "-6", "addr", "add", "fd00::1/64", "dev", &a, "nodad"]);
    theirs.exec(&["ip", "-6", "addr", "add", "fd00::2/64", "dev", &b, "nodad"]);
    let dir = Dir::new();
    let conf = format!(
        r#"router id 10.0.0.2;
log "{log}" all;
protocol device {{}}
protocol static st6 {{ ipv6; route fd00:200::/48 blackhole; }}
protocol bgp fab {{
  local fd00::2 as 65002;
  neighbor fd00::1 as 65001;
  ipv6 {{ import all; export all; }};
}}
"#,
        log = dir.path("bird.log").display()
    );
    let bird = Bird::start_raw(&theirs, &dir, &conf);
    let ours = Bgpd::start(
        &ours_ns,
        &dir,
        "v6",
        json!({"local_as": 65001, "router_id": "10.0.0.1", "listen": "[fd00::1]:179", "connect_retry": 1,
               "peers": [{"address": "fd00::2", "peer_as": 65002, "families": ["Ipv6"]}]}),
        json!([]),
    );
    ours.wait_established("fd00::2");
    ours.ctl(json!({"cmd": "announce", "range": {"start": "fd00:100::", "count": 1000, "prefix_len": 128}}));
    let base = u128::from("fd00:100::".parse::<std::net::Ipv6Addr>().unwrap());
    let all: BTreeSet<String> = (0..1000u128)
        .map(|i| format!("{}/128", std::net::Ipv6Addr::from(base + i)))
        .collect();
    let learned = wait_for("BIRD to hold our 1,000 IPv6 routes", 30, || {
        let l = bird.learned();
        (l.keys().cloned().collect::<BTreeSet<_>>() == all).then_some(l)
    });
    for (p, seen) in &learned {
        assert_eq!(
            seen.next_hop,
            Some("fd00::1".parse().unwrap()),
            "next hop of {p}"
        );
        assert_eq!(seen.as_path, vec![65001], "AS path of {p}");
    }
    ours.ctl(json!({"cmd": "withdraw", "range": {"start": "fd00:100::", "count": 500, "prefix_len": 128}}));
    wait_for("BIRD to drop the withdrawn half", 30, || {
        (bird.learned().len() == 500).then_some(())
    });
    let rib = wait_for("BIRD's IPv6 route in our Loc-RIB", 30, || {
        let rib = ours.rib();
        rib.get("fd00:200::/48").cloned()
    });
    assert!(
        rib.0
            .iter()
            .any(|h| h.starts_with("fd00::2") || h.starts_with("fe80")),
        "next hop {:?}",
        rib.0
    );
    assert_eq!(rib.1, vec![65002]);
}

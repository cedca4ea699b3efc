//! End to end on lab's two-rack fabric: four containers on four hosts in two racks attached by
//! invoking contivk8s as a runtime does; every pair pings; both ToRs (BIRD, FRR) hold the four
//! /32s with the right next hops; 8 MB go over TCP each way between racks; a deleted container
//! disappears from both; CHECK reports a broken attachment. The master's route reflector has
//! every agent as a client meanwhile, and the ToRs still see exactly one path per /32. A container node labelled with io.contiv.network is attached by lab.

mod common;

use common::{config, poll, Fabric};
use std::collections::BTreeMap;
use std::time::Duration;

/// app2 and app4 join app1/app3 so every host has one; app5 is attached by lab itself.
const EXTRA: &str = "    app2:
      kind: linux
      mgmt-ipv4: 172.20.20.32
      labels:
        lab.kind: container
        lab.host: host2
    app4:
      kind: linux
      mgmt-ipv4: 172.20.20.34
      labels:
        lab.kind: container
        lab.host: host4
    app5:
      kind: linux
      mgmt-ipv4: 172.20.20.35
      labels:
        lab.kind: container
        lab.host: host2
        io.contiv.network: default-net
";

#[test]
fn four_containers_in_two_racks_route_through_both_tors() {
    let fabric = Fabric::up("f", EXTRA);
    let placement = [
        ("app1", "host1"),
        ("app2", "host2"),
        ("app3", "host3"),
        ("app4", "host4"),
    ];
    // Group web carries a policy with no rule yet (Contiv's default: allow).
    fabric.netctl(&["policy", "create", "web-policy"]);
    fabric.netctl(&[
        "group",
        "create",
        "default-net",
        "web",
        "-policy=web-policy",
    ]);
    let mut ips = BTreeMap::new();
    for (app, host) in placement {
        let ns = fabric.netns(app);
        // app2 joins a group through Contiv's pod label, passed as a runtime passes labels.
        let out = if app == "app2" {
            fabric.cni_raw(
                "ADD",
                host,
                &format!("ctr-{app}"),
                &ns,
                config().to_string().as_bytes(),
                &[(
                    "CNI_ARGS",
                    "IgnoreUnknown=1;K8S_POD_NAME=app2;io.contiv.net-group=web",
                )],
            )
        } else {
            fabric.cni("ADD", host, &format!("ctr-{app}"), &ns, &config())
        };
        assert!(out.ok, "ADD {app} failed: {}", out.raw);
        assert_eq!(out.json["cniVersion"], "1.0.0");
        assert_eq!(out.json["ips"][0]["gateway"], "10.1.2.1");
        assert_eq!(
            out.json["interfaces"][1]["sandbox"],
            format!("/run/netns/{ns}")
        );
        ips.insert(app, Fabric::address(&out));
    }
    // Every agent registered with the master and keeps its lease alive.
    let hosts = fabric.get("/api/v1/agent/hosts");
    let alive: Vec<&str> = hosts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["alive"] == true)
        .filter_map(|h| h["host"].as_str())
        .collect();
    assert_eq!(alive, ["host1", "host2", "host3", "host4"], "{hosts}");
    let record = fabric.get("/api/v1/endpoints/ctr-app2-eth1/");
    assert_eq!(record["endpointGroupKey"], "default:web", "{record}");
    assert!(
        record["endpointGroupId"].as_u64().unwrap_or(0) > 0,
        "{record}"
    );
    assert_eq!(record["homingHost"], "host2");
    assert_eq!(record["containerName"], "app2");

    // app5 was attached by lab at deploy time through the same plugin.
    let lab_result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fabric.run_dir("app5").join("cni-result.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let app5_ip = lab_result["ips"][0]["address"]
        .as_str()
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    assert!(!app5_ip.is_empty(), "lab did not attach app5: {lab_result}");
    let distinct: std::collections::BTreeSet<_> = ips.values().chain([&app5_ip]).collect();
    assert_eq!(
        distinct.len(),
        5,
        "addresses must be distinct: {ips:?} {app5_ip}"
    );
    assert!(
        fabric.ping(&fabric.netns("app5"), &ips["app3"]),
        "app5 cannot reach app3"
    );

    // Both ToRs hold all four /32s with the right next hops.
    let host_addr = |h: &str| {
        common::HOSTS
            .iter()
            .find(|x| x.0 == h)
            .map(|x| x.1)
            .unwrap_or("")
    };
    let want1: BTreeMap<String, Vec<String>> = placement
        .iter()
        .map(|(app, host)| {
            let hop = match *host {
                "host1" | "host2" => host_addr(host),
                _ => "10.254.0.1", // tor2 across the inter-ToR link
            };
            (format!("{}/32", ips[app]), vec![hop.to_string()])
        })
        .collect();
    let want2: BTreeMap<String, Vec<String>> = placement
        .iter()
        .map(|(app, host)| {
            let hop = match *host {
                "host3" | "host4" => host_addr(host),
                _ => "10.254.0.0",
            };
            (format!("{}/32", ips[app]), vec![hop.to_string()])
        })
        .collect();
    let app5_prefix = format!("{app5_ip}/32");
    let mut want1 = want1;
    let mut want2 = want2;
    want1.insert(app5_prefix.clone(), vec![host_addr("host2").to_string()]);
    want2.insert(app5_prefix, vec!["10.254.0.0".to_string()]);
    // The master's route reflector has every agent as a client meanwhile; the ToRs must
    // still hold exactly one path per /32 (no loop through the reflector, no duplicate).
    let clients = poll(Duration::from_secs(30), || {
        let (_, out) = fabric.exec(
            "master1",
            &["ss", "-Htn", "state", "established", "( sport = :179 )"],
        );
        (out.lines().count() == 4).then_some(())
    });
    assert!(
        clients.is_some(),
        "not every agent has a session with the master's reflector"
    );
    let tors = poll(Duration::from_secs(20), || {
        let (t1, t2) = (fabric.tor1_routes(), fabric.tor2_routes());
        (t1 == want1 && t2 == want2).then_some(())
    });
    assert!(
        tors.is_some(),
        "ToR RIBs differ:\ntor1 {:?}\nwant {want1:?}\ntor2 {:?}\nwant {want2:?}",
        fabric.tor1_routes(),
        fabric.tor2_routes()
    );

    // Every ordered pair pings.
    for (a, _) in placement {
        for (b, _) in placement {
            if a == b {
                continue;
            }
            let ok = poll(Duration::from_secs(10), || {
                fabric.ping(&fabric.netns(a), &ips[b]).then_some(())
            });
            assert!(ok.is_some(), "{a} cannot ping {b} ({})", ips[b]);
        }
    }

    // Bulk TCP both ways between racks: segments that offloads left oversized or without
    // their checksum would never arrive through the userspace datapath.
    const BULK: usize = 8 << 20;
    for (a, b) in [("app1", "app3"), ("app3", "app1")] {
        let got = common::bulk_tcp(
            &fabric.netns(a),
            &fabric.netns(b),
            &ips[b],
            5201,
            BULK,
            Duration::from_secs(20),
        );
        assert_eq!(got, BULK, "{a} -> {b}: bytes received of {BULK}");
    }

    // CHECK passes on an intact attachment and reports a broken one.
    let app1 = fabric.netns("app1");
    assert!(
        fabric
            .cni("CHECK", "host1", "ctr-app1", &app1, &config())
            .ok
    );
    let (ok, _) = fabric.exec("app1", &["ip", "addr", "flush", "dev", common::IFNAME]);
    assert!(ok);
    let check = fabric.cni("CHECK", "host1", "ctr-app1", &app1, &config());
    assert!(!check.ok, "CHECK of a broken attachment succeeded");
    assert!(
        check.json["code"].as_u64().is_some(),
        "CHECK error is CNI error JSON: {}",
        check.raw
    );
    assert!(
        check.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains("lacks address"),
        "{}",
        check.raw
    );

    // A deleted container disappears from both ToRs; DEL again succeeds.
    let app4 = fabric.netns("app4");
    let del = fabric.cni("DEL", "host4", "ctr-app4", &app4, &config());
    assert!(del.ok, "DEL failed: {}", del.raw);
    let gone = format!("{}/32", ips["app4"]);
    let withdrawn = poll(Duration::from_secs(20), || {
        (!fabric.tor1_routes().contains_key(&gone) && !fabric.tor2_routes().contains_key(&gone))
            .then_some(())
    });
    assert!(withdrawn.is_some(), "{gone} is still in a ToR's RIB");
    assert!(
        fabric.cni("DEL", "host4", "ctr-app4", &app4, &config()).ok,
        "a second DEL must succeed"
    );
    assert!(
        fabric.veths("host4").is_empty(),
        "host4 still has a container veth"
    );
    assert_eq!(fabric.ports("host4"), vec!["gw0".to_string()]);
    assert!(
        fabric
            .routes("host4")
            .iter()
            .all(|r| !r.contains("dev gw0")),
        "{:?}",
        fabric.routes("host4")
    );
    assert_eq!(fabric.endpoints().len(), 4);

    // BGP settings change live: without its Bgp object host3 stops peering and app3's /32
    // leaves tor2; with it again, the route is back.
    let app3_prefix = format!("{}/32", ips["app3"]);
    fabric.netctl(&["bgp", "delete", "host3"]);
    let left = poll(Duration::from_secs(20), || {
        (!fabric.tor2_routes().contains_key(&app3_prefix)).then_some(())
    });
    assert!(
        left.is_some(),
        "{app3_prefix} stayed in tor2 after host3's Bgp was deleted"
    );
    fabric.netctl(&[
        "bgp",
        "create",
        "host3",
        "--router-ip",
        "10.254.2.1/31",
        "--as",
        "65213",
        "--neighbor-as",
        "65102",
        "--neighbor",
        "10.254.2.0",
    ]);
    let back = poll(Duration::from_secs(20), || {
        fabric
            .tor2_routes()
            .contains_key(&app3_prefix)
            .then_some(())
    });
    assert!(
        back.is_some(),
        "{app3_prefix} did not come back after host3's Bgp was recreated"
    );
    // (app1's address was flushed by the CHECK case above: ping from app2.)
    let app2 = fabric.netns("app2");
    let reach = poll(Duration::from_secs(20), || {
        fabric.ping(&app2, &ips["app3"]).then_some(())
    });
    assert!(reach.is_some(), "app2 cannot reach app3 again");

    // A rule added to the group's policy reaches the running container through the watch
    // stream: pings to app2 (in web) stop, app2's own pings still get their replies.
    fabric.netctl(&[
        "policy",
        "rule-add",
        "web-policy",
        "1",
        "-direction=in",
        "-protocol=icmp",
        "-action=deny",
    ]);
    let app3 = fabric.netns("app3");
    let denied = poll(Duration::from_secs(20), || {
        (!fabric.ping(&app3, &ips["app2"])).then_some(())
    });
    assert!(
        denied.is_some(),
        "app3 still pings app2 after the deny rule"
    );
    assert!(
        fabric.ping(&app2, &ips["app3"]),
        "app2's own pings must still get their replies"
    );
}

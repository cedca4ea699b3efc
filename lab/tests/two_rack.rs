//! End-to-end: the two-rack topology comes up with real BIRD, FRR and OVS in namespaces, routes
//! across racks, and destroy leaves nothing behind, also after a deploy that failed half-way.
//! Needs root.

mod common;

use std::time::Duration;

use common::{assert_no_leaks, footprint, poll, require_root_and_tools, text, TestLab};

const TOOLS: &[(&str, &str)] = &[
    ("bird", "bird2"),
    ("birdc", "bird2"),
    ("vtysh", "frr"),
    ("/usr/lib/frr/zebra", "frr"),
    ("ovs-vswitchd", "openvswitch-switch"),
    ("ovsdb-server", "openvswitch-switch"),
    ("ping", "iputils-ping"),
];

/// Processes of a node from `lab inspect --format json`: (name, running).
fn processes(inspect: &serde_json::Value, node: &str) -> Vec<(String, bool)> {
    inspect
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("{node} missing from inspect: {inspect}"))["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["running"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn two_rack_deploys_routes_across_racks_and_destroys_without_leaks() {
    require_root_and_tools(TOOLS);
    let lab = TestLab::new("two-rack", "tr");
    let before = footprint(&lab.name);

    let out = lab.deploy();
    assert!(out.status.success(), "deploy failed: {}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[9/9] starting"),
        "progress per node expected: {stderr}"
    );

    // Every node has its namespace; the OVS hosts run their own ovsdb-server and ovs-vswitchd.
    let inspect = lab.inspect_json();
    assert_eq!(inspect.as_array().unwrap().len(), 9);
    assert!(inspect
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["netns_present"] == true));
    for host in ["host1", "host2", "host3", "host4"] {
        let procs = processes(&inspect, host);
        for daemon in ["ovsdb-server", "ovs-vswitchd"] {
            assert!(
                procs.contains(&(daemon.to_string(), true)),
                "{host}: {procs:?}"
            );
        }
        let (ok, show) = lab.exec(host, "ovs-vsctl show");
        assert!(
            ok && show.contains("Bridge br-int") && show.contains("datapath_type: netdev"),
            "{host}: {show}"
        );
        let pids = lab::netns::netns_pids(&lab.netns(host));
        assert!(
            pids.len() >= 2,
            "{host}: OVS must run inside the host namespace, found {pids:?}"
        );
    }
    assert_eq!(
        processes(&inspect, "tor1"),
        vec![("bird".to_string(), true)]
    );
    assert!(processes(&inspect, "tor2").contains(&("bgpd".to_string(), true)));

    // The ToRs peer over eBGP, seen from both sides through each daemon's own CLI.
    let established = poll(Duration::from_secs(40), || {
        let (_, bird) = lab.exec("tor1", "birdc show protocols tor2");
        let (_, frr) = lab.exec("tor2", "vtysh -c 'show bgp summary json'");
        let frr: serde_json::Value = serde_json::from_str(&frr).ok()?;
        let frr_state = frr["ipv4Unicast"]["peers"]["10.254.0.0"]["state"]
            .as_str()?
            .to_string();
        (bird.contains("Established") && frr_state == "Established").then_some(())
    });
    assert!(
        established.is_some(),
        "tor1/tor2 session not established: {:?} {:?}",
        lab.exec("tor1", "birdc show protocols all tor2"),
        lab.exec("tor2", "vtysh -c 'show bgp summary'")
    );

    // A host in rack 1 reaches a host in rack 2 through both ToRs (routes learned over BGP).
    let pinged = poll(Duration::from_secs(30), || {
        lab.exec("host1", "ping -c 1 -W 1 10.254.2.1")
            .0
            .then_some(())
    });
    assert!(
        pinged.is_some(),
        "host1 cannot reach host3: tor1 routes {:?}",
        lab.exec("tor1", "ip route")
    );
    // And over the management network, which lives in the lab's own namespace.
    assert!(lab.exec("host1", "ping -c 1 -W 1 172.20.20.10").0);

    // Deploying it again says it is up.
    let again = lab.deploy();
    assert!(!again.status.success());
    assert!(
        text(&again).contains("is already deployed"),
        "{}",
        text(&again)
    );

    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
    // Destroy is idempotent.
    let out = lab.destroy();
    assert!(
        out.status.success(),
        "second destroy failed: {}",
        text(&out)
    );
}

#[test]
fn a_daemon_failing_half_way_is_cleaned_up_by_destroy() {
    require_root_and_tools(TOOLS);
    let lab = TestLab::new("two-rack", "hf");
    let before = footprint(&lab.name);
    // A third router whose config BIRD rejects: it starts after tor1 (BIRD) and tor2 (FRR) are
    // running and every namespace and veth exists. Written in the native form (`kind: bird`
    // with a startup-config) to exercise that path too.
    std::fs::write(
        lab.path("broken.conf"),
        "router id 10.255.0.9;\nprotocol bgp {\n",
    )
    .unwrap();
    let text_before = std::fs::read_to_string(&lab.file).unwrap();
    let with_broken = text_before.replacen(
        "  links:\n",
        "    tor9:\n      kind: bird\n      image: ghcr.io/srl-labs/bird:2.13\n      startup-config: broken.conf\n  links:\n",
        1,
    );
    assert_ne!(text_before, with_broken);
    std::fs::write(&lab.file, with_broken).unwrap();

    let out = lab.deploy();
    assert!(!out.status.success(), "deploy should fail: {}", text(&out));
    let message = text(&out);
    assert!(
        message.contains("node tor9: bird exited while starting"),
        "{message}"
    );
    assert!(
        message.contains("lab destroy -t"),
        "must say how to clean up: {message}"
    );

    // Half-way: the other routers' daemons and the namespaces are there.
    let mid = footprint(&lab.name);
    assert_eq!(mid.namespaces.len(), 11, "{mid:?}");
    assert!(mid.processes.iter().any(|p| p.contains("bgpd")), "{mid:?}");
    assert!(
        mid.files.iter().any(|f| f.starts_with("/etc/frr/")),
        "{mid:?}"
    );

    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
}

#[test]
fn destroy_completes_after_a_killed_deploy_and_after_a_lost_state_file() {
    require_root_and_tools(TOOLS);
    let lab = TestLab::new("two-rack", "kl");
    let before = footprint(&lab.name);
    // Kill `lab deploy` (SIGKILL: no chance to tidy up) once it has started daemons.
    let mut deploy = std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["deploy", "-t", lab.file.to_str().unwrap(), "--skip-missing"])
        .env("LAB_BIN_DIR", &lab.bin_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state_file = format!("/run/lab/{}/state.json", lab.name);
    let started = poll(Duration::from_secs(20), || {
        let state = std::fs::read_to_string(&state_file).unwrap_or_default();
        state.contains("\"type\": \"process\"").then_some(())
    });
    deploy.kill().unwrap();
    deploy.wait().unwrap();
    assert!(started.is_some(), "deploy never started a daemon");
    assert!(!footprint(&lab.name).processes.is_empty());
    let out = lab.destroy();
    assert!(
        out.status.success(),
        "destroy after kill failed: {}",
        text(&out)
    );
    assert_no_leaks(&lab.name, &before);

    // A complete deployment whose state file is lost: destroy sweeps by the topology's names.
    let out = lab.deploy();
    assert!(out.status.success(), "deploy failed: {}", text(&out));
    std::fs::remove_file(&state_file).unwrap();
    let out = lab.destroy();
    assert!(
        out.status.success(),
        "destroy without state failed: {}",
        text(&out)
    );
    assert_no_leaks(&lab.name, &before);
}

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

    // Nothing of the lab is visible in the root namespace while it runs.
    common::assert_root_untouched(&before);

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

/// A stand-in agent: GoBGP in a host's namespace, peering with its ToR like netplugin will.
fn start_fake_agent(lab: &TestLab, host: &str, asn: u32, addr: &str, tor: &str, tor_as: u32) {
    let dir = format!("/run/lab/{}/{host}", lab.name);
    let config = format!(
        "[global.config]\n  as = {asn}\n  router-id = \"{addr}\"\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{tor}\"\n    peer-as = {tor_as}\n\
         \x20 [neighbors.timers.config]\n    connect-retry = 2\n    hold-time = 9\n    keepalive-interval = 3\n\
         \x20 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n"
    );
    std::fs::write(format!("{dir}/agent.toml"), config).unwrap();
    // Output to a file: a background process holding our pipe would keep `lab exec` waiting.
    let (ok, out) = lab.exec(
        host,
        &format!("gobgpd -f {dir}/agent.toml --api-hosts 127.0.0.1:50051 --pprof-disable >{dir}/agent.log 2>&1 </dev/null &"),
    );
    assert!(ok, "{host}: cannot start gobgpd: {out}");
    let up = poll(Duration::from_secs(15), || {
        lab.exec(host, "gobgp global").0.then_some(())
    });
    assert!(up.is_some(), "{host}: gobgpd API not up");
}

/// What a ToR has for a prefix, through its own CLI.
fn tor_has(lab: &TestLab, tor: &str, prefix: &str) -> bool {
    match tor {
        "tor1" => lab
            .exec(tor, &format!("birdc show route {prefix}"))
            .1
            .contains(prefix),
        _ => {
            let (_, json) = lab.exec(
                tor,
                &format!("vtysh -c 'show bgp ipv4 unicast {prefix} json'"),
            );
            serde_json::from_str::<serde_json::Value>(&json)
                .map(|v| v["prefix"] == prefix)
                .unwrap_or(false)
        }
    }
}

#[test]
fn tors_take_host_32s_over_ebgp_and_pass_them_across_racks() {
    require_root_and_tools(&[TOOLS, &[("gobgpd", "gobgpd"), ("gobgp", "gobgpd")]].concat());
    let lab = TestLab::new("two-rack", "ag");
    let before = footprint(&lab.name);
    let out = lab.deploy();
    assert!(out.status.success(), "deploy failed: {}", text(&out));

    // host1 (rack 1, AS 65211) and host3 (rack 2, AS 65213) each announce a container /32 and
    // a /24 the ToRs must refuse from a host.
    start_fake_agent(&lab, "host1", 65211, "10.254.1.1", "10.254.1.0", 65101);
    start_fake_agent(&lab, "host3", 65213, "10.254.2.1", "10.254.2.0", 65102);
    for (host, routes) in [
        ("host1", ["10.1.2.5/32", "10.99.1.0/24"]),
        ("host3", ["10.1.2.7/32", "10.99.3.0/24"]),
    ] {
        for r in routes {
            let (ok, out) = lab.exec(host, &format!("gobgp global rib add {r} -a ipv4"));
            assert!(ok, "{host}: {out}");
        }
    }
    let all_there = poll(Duration::from_secs(40), || {
        ["tor1", "tor2"]
            .iter()
            .all(|t| tor_has(&lab, t, "10.1.2.5/32") && tor_has(&lab, t, "10.1.2.7/32"))
            .then_some(())
    });
    assert!(
        all_there.is_some(),
        "container /32s not in both ToRs: tor1 {:?} tor2 {:?}",
        lab.exec("tor1", "birdc show route"),
        lab.exec("tor2", "vtysh -c 'show bgp ipv4 unicast'")
    );
    // Only host routes are accepted from hosts.
    for tor in ["tor1", "tor2"] {
        for net in ["10.99.1.0/24", "10.99.3.0/24"] {
            assert!(!tor_has(&lab, tor, net), "{tor} accepted {net} from a host");
        }
    }
    // The ToRs install the /32s in their kernels (forwarding across racks).
    assert!(lab
        .exec("tor1", "ip route show 10.1.2.7/32")
        .1
        .contains("via 10.254.0.1"));
    assert!(lab
        .exec("tor2", "ip route show 10.1.2.5/32")
        .1
        .contains("via 10.254.0.0"));

    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
}

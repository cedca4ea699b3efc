//! End-to-end: BIRD, FRR and GoBGP come up from their configs in the bgp-only topology, all
//! three sessions establish and every router learns the other two prefixes, checked through
//! each daemon's own CLI (birdc, vtysh json, gobgp -j). Also covers `lab save`, `lab graph`,
//! `lab inspect` and both `lab exec` spellings on a live lab. Needs root.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_no_leaks, footprint, poll, require_root_and_tools, text, TestLab};

const TOOLS: &[(&str, &str)] = &[
    ("bird", "bird2"),
    ("birdc", "bird2"),
    ("vtysh", "frr"),
    ("/usr/lib/frr/bgpd", "frr"),
    ("gobgpd", "gobgpd"),
    ("gobgp", "gobgpd"),
];

const PREFIXES: [&str; 3] = ["10.10.1.0/24", "10.10.2.0/24", "10.10.3.0/24"];

/// What each router sees: established peers and learned prefixes.
#[derive(Debug, Default)]
struct View {
    established: usize,
    prefixes: Vec<String>,
}

/// The test prefixes a router has, by a check on its own output.
fn learned(has: impl Fn(&str) -> bool) -> Vec<String> {
    PREFIXES
        .iter()
        .filter(|p| has(p))
        .map(|p| p.to_string())
        .collect()
}

fn bird_view(lab: &TestLab) -> View {
    let (_, protocols) = lab.exec("r1", "birdc show protocols");
    let (_, routes) = lab.exec("r1", "birdc show route");
    View {
        established: protocols
            .lines()
            .filter(|l| l.contains(" BGP ") && l.contains("Established"))
            .count(),
        prefixes: learned(|p| routes.contains(p)),
    }
}

fn frr_view(lab: &TestLab) -> View {
    let (_, summary) = lab.exec("r2", "vtysh -c 'show bgp summary json'");
    let (_, routes) = lab.exec("r2", "vtysh -c 'show bgp ipv4 unicast json'");
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap_or_default();
    let routes: serde_json::Value = serde_json::from_str(&routes).unwrap_or_default();
    let established = summary["ipv4Unicast"]["peers"]
        .as_object()
        .map(|peers| {
            peers
                .values()
                .filter(|p| p["state"] == "Established")
                .count()
        })
        .unwrap_or(0);
    View {
        established,
        prefixes: learned(|p| routes["routes"].get(p).is_some()),
    }
}

fn gobgp_view(lab: &TestLab) -> View {
    let (_, neighbors) = lab.exec("r3", "gobgp -j neighbor");
    let (_, rib) = lab.exec("r3", "gobgp -j global rib");
    let neighbors: serde_json::Value = serde_json::from_str(&neighbors).unwrap_or_default();
    let rib: serde_json::Value = serde_json::from_str(&rib).unwrap_or_default();
    // gobgp 3.x prints the session state as its enum number (6) or, in some builds, its name.
    let established = neighbors
        .as_array()
        .map(|ns| {
            ns.iter()
                .filter(|n| {
                    let s = &n["state"]["session_state"];
                    s == 6
                        || s.as_str()
                            .is_some_and(|v| v.eq_ignore_ascii_case("established"))
                })
                .count()
        })
        .unwrap_or(0);
    View {
        established,
        prefixes: learned(|p| rib.get(p).is_some()),
    }
}

#[test]
fn bird_frr_and_gobgp_peer_with_each_other() {
    require_root_and_tools(TOOLS);
    let lab = TestLab::new("bgp-only", "bo");
    let before = footprint(&lab.name);
    let out = lab.deploy();
    assert!(out.status.success(), "deploy failed: {}", text(&out));

    let converged = poll(Duration::from_secs(60), || {
        let views = [bird_view(&lab), frr_view(&lab), gobgp_view(&lab)];
        views
            .iter()
            .all(|v| v.established == 2 && v.prefixes.len() == 3)
            .then_some(())
    });
    assert!(
        converged.is_some(),
        "not converged: bird {:?} frr {:?} gobgp {:?}",
        bird_view(&lab),
        frr_view(&lab),
        gobgp_view(&lab)
    );

    // `lab exec <node> -- <cmd>` (the short form) reaches the node's own daemon. With -t: other
    // tests may have a bgp-only copy with an r1 up at the same time.
    let short = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "exec",
            "-t",
            lab.file.to_str().unwrap(),
            "r1",
            "--",
            "birdc",
            "show",
            "status",
        ])
        .output()
        .unwrap();
    assert!(short.status.success(), "{}", text(&short));
    assert!(String::from_utf8_lossy(&short.stdout).contains("Router ID is 10.255.1.1"));

    // inspect: every daemon running.
    let inspect = lab.inspect_json();
    for node in inspect.as_array().unwrap() {
        for p in node["processes"].as_array().unwrap() {
            assert_eq!(p["running"], true, "{node}");
        }
    }

    // save: each router's state from its own CLI.
    let save_dir = lab.path("saved");
    let out = lab.lab(&[
        "save",
        "-t",
        lab.file.to_str().unwrap(),
        "--out-dir",
        save_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "save failed: {}", text(&out));
    let read = |rel: &str| std::fs::read_to_string(save_dir.join(rel)).unwrap_or_default();
    assert!(read("r1/protocols.txt").contains("Established"));
    assert!(read("r2/running-config.conf").contains("router bgp 65002"));
    assert!(read("r3/rib.json").contains("10.10.1.0/24"));

    // graph: dot always, PNG when graphviz is there.
    let graph_dir = lab.path("graph");
    let out = lab.lab(&[
        "graph",
        "-t",
        lab.file.to_str().unwrap(),
        "--out-dir",
        graph_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "graph failed: {}", text(&out));
    let dot = std::fs::read_to_string(graph_dir.join(format!("{}.dot", lab.name))).unwrap();
    assert_eq!(dot.matches(" -- ").count(), 3);
    if lab::sys::which("dot").is_some() {
        let png = std::fs::read(graph_dir.join(format!("{}.png", lab.name))).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
    }

    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
}

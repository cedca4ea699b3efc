//! Parser and planner tests: pure, no root needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lab::plan::{plan, Action, PlanEnv};
use lab::topology::TopologyError;
use lab::{Kind, Topology};

fn parse(text: &str) -> Result<Topology, TopologyError> {
    Topology::parse(text, Path::new("test.clab.yml"), Path::new("/topo"))
}

fn error_of(text: &str) -> String {
    match parse(text) {
        Ok(t) => panic!("expected an error, parsed {t:?}"),
        Err(e) => e.to_string(),
    }
}

const FULL: &str = r#"
name: full
mgmt:
  network: fabric-mgmt
  bridge: br-fab
  ipv4-subnet: 10.99.0.0/24
  ipv4-gw: 10.99.0.254
topology:
  defaults:
    env:
      COMMON: "1"
    labels:
      team: net
  kinds:
    linux:
      image: alpine:3.20
      binds:
        - shared:/shared:ro
    bird:
      image: bird-image:2
  nodes:
    r1:
      kind: bird
      startup-config: r1/bird.conf
      labels:
        role: spine
    r2:
      kind: linux
      image: frr-image:8
      binds:
        - r2/frr.conf:/etc/frr/frr.conf
      labels:
        lab.kind: frr
    h1:
      kind: netplugin
      mgmt-ipv4: 10.99.0.50
      env:
        PORT: 80
        DEBUG: true
    c1:
      kind: container
      labels:
        lab.host: h1
    l1:
      kind: linux
      exec:
        - ip addr add 10.0.0.1/31 dev eth1
        - echo done
    e1:
      kind: etcd
    m1:
      kind: netmaster
      env:
        ETCD_ENDPOINTS: http://10.99.0.2:2379
    g1:
      kind: gobgp
      startup-config: g1/gobgp.toml
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
    - endpoints: ["l1:eth1", "h1:uplink0"]
"#;

#[test]
fn every_supported_key_is_read() {
    let t = parse(FULL).unwrap();
    assert_eq!(t.name, "full");
    assert_eq!(t.mgmt.network, "fabric-mgmt");
    assert_eq!(t.mgmt.bridge, "br-fab");
    assert_eq!(t.mgmt.subnet.to_string(), "10.99.0.0/24");
    assert_eq!(t.mgmt.gateway.to_string(), "10.99.0.254");
    assert_eq!(t.netns("r1"), "clab-full-r1");
    assert_eq!(t.mgmt_netns(), "clab-full-mgmt");

    let r1 = t.node("r1").unwrap();
    assert_eq!(r1.kind, Kind::Bird);
    assert_eq!(
        r1.image.as_deref(),
        Some("bird-image:2"),
        "image from topology.kinds"
    );
    assert_eq!(r1.startup_config, Some(PathBuf::from("/topo/r1/bird.conf")));
    assert_eq!(
        r1.labels.get("team").map(String::as_str),
        Some("net"),
        "labels from defaults"
    );
    assert_eq!(r1.labels.get("role").map(String::as_str), Some("spine"));
    assert_eq!(
        r1.env.get("COMMON").map(String::as_str),
        Some("1"),
        "env from defaults"
    );

    let r2 = t.node("r2").unwrap();
    assert_eq!(r2.kind, Kind::Frr, "lab.kind label on a linux node");
    assert_eq!(r2.clab_kind, "linux");
    assert_eq!(
        r2.image.as_deref(),
        Some("frr-image:8"),
        "node image overrides the kind's"
    );
    assert_eq!(r2.binds.len(), 2, "kind binds and node binds accumulate");
    assert!(r2
        .binds
        .iter()
        .any(|b| b.source == Path::new("/topo/shared") && b.read_only));
    assert!(r2
        .binds
        .iter()
        .any(|b| b.target == "/etc/frr/frr.conf" && !b.read_only));

    let h1 = t.node("h1").unwrap();
    assert_eq!(h1.kind, Kind::Netplugin);
    assert_eq!(h1.mgmt_ipv4.to_string(), "10.99.0.50");
    assert_eq!(h1.env.get("PORT").map(String::as_str), Some("80"));
    assert_eq!(h1.env.get("DEBUG").map(String::as_str), Some("true"));

    assert_eq!(t.node("c1").unwrap().host.as_deref(), Some("h1"));
    assert_eq!(t.node("l1").unwrap().exec.len(), 2);
    assert_eq!(t.node("e1").unwrap().kind, Kind::Etcd);
    assert_eq!(t.node("m1").unwrap().kind, Kind::Netmaster);
    assert_eq!(t.node("g1").unwrap().kind, Kind::Gobgp);

    // Management addresses: unique, in the subnet, never the gateway.
    let mut addrs: Vec<_> = t.nodes.iter().map(|n| n.mgmt_ipv4).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), t.nodes.len());
    assert!(addrs
        .iter()
        .all(|a| t.mgmt.subnet.contains(a) && *a != t.mgmt.gateway));

    assert_eq!(t.links.len(), 2);
    assert_eq!(t.links[1].b.node, "h1");
    assert_eq!(t.links[1].b.iface, "uplink0");
}

#[test]
fn defaults_apply_when_mgmt_is_absent() {
    let t =
        parse("name: d\ntopology:\n  defaults:\n    kind: linux\n  nodes:\n    a: {}\n    b: {}\n")
            .unwrap();
    assert_eq!(t.mgmt.subnet.to_string(), "172.20.20.0/24");
    assert_eq!(t.mgmt.gateway.to_string(), "172.20.20.1");
    assert_eq!(
        t.node("a").unwrap().kind,
        Kind::Linux,
        "kind from topology.defaults"
    );
    assert_eq!(t.node("a").unwrap().mgmt_ipv4.to_string(), "172.20.20.2");
    assert_eq!(t.node("b").unwrap().mgmt_ipv4.to_string(), "172.20.20.3");
}

#[test]
fn malformed_yaml_is_a_syntax_error_with_position() {
    let e = error_of("name: x\ntopology:\n  nodes:\n    r1: {kind: linux\n");
    assert!(e.contains("malformed topology file test.clab.yml"), "{e}");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn unknown_key_is_named_with_its_path() {
    let e =
        error_of("name: x\ntopology:\n  nodes:\n    r1:\n      kind: linux\n      ports: [80]\n");
    assert!(e.contains("topology.nodes.r1"), "{e}");
    assert!(e.contains("unknown field `ports`"), "{e}");
    let e = error_of(
        "name: x\nmgmt:\n  ipv6-subnet: fd00::/64\ntopology:\n  nodes:\n    r1: {kind: linux}\n",
    );
    assert!(e.contains("mgmt") && e.contains("ipv6-subnet"), "{e}");
}

#[test]
fn link_to_unknown_node_is_rejected() {
    let e = error_of(
        "name: x\ntopology:\n  nodes:\n    r1: {kind: linux}\n  links:\n    - endpoints: [\"r1:eth1\", \"r9:eth1\"]\n",
    );
    assert_eq!(e, "topology.links[0].endpoints[1]: no node named `r9`");
}

#[test]
fn duplicate_interface_is_rejected() {
    let e = error_of(
        "name: x\ntopology:\n  nodes:\n    r1: {kind: linux}\n    r2: {kind: linux}\n    r3: {kind: linux}\n  links:\n    - endpoints: [\"r1:eth1\", \"r2:eth1\"]\n    - endpoints: [\"r3:eth1\", \"r1:eth1\"]\n",
    );
    assert_eq!(
        e,
        "topology.links[1].endpoints[1]: interface r1:eth1 is already used by topology.links[0].endpoints[0]"
    );
}

#[test]
fn bad_links_are_rejected() {
    let base =
        "name: x\ntopology:\n  nodes:\n    r1: {kind: linux}\n    r2: {kind: linux}\n  links:\n";
    let cases = [
        ("    - endpoints: [\"r1:eth1\"]\n", "exactly two endpoints"),
        (
            "    - endpoints: [\"r1eth1\", \"r2:eth1\"]\n",
            "`node:interface`",
        ),
        ("    - endpoints: [\"r1:eth0\", \"r2:eth1\"]\n", "reserved"),
        (
            "    - endpoints: [\"r1:averyveryverylongname\", \"r2:eth1\"]\n",
            "15 characters",
        ),
    ];
    for (link, want) in cases {
        let e = error_of(&format!("{base}{link}"));
        assert!(e.starts_with("topology.links[0].endpoints"), "{e}");
        assert!(e.contains(want), "{e} should contain {want}");
    }
}

#[test]
fn unsupported_kinds_and_misplaced_keys_name_the_key() {
    let cases = [
        ("name: x\ntopology:\n  nodes:\n    r1: {kind: nokia_srlinux}\n", "topology.nodes.r1.kind: kind `nokia_srlinux` is not supported"),
        ("name: x\ntopology:\n  nodes:\n    r1: {image: alpine}\n", "topology.nodes.r1.kind: no kind given"),
        ("name: x\ntopology:\n  nodes:\n    r1: {kind: linux, labels: {lab.kind: junos}}\n", "topology.nodes.r1.labels.lab.kind"),
        ("name: x\ntopology:\n  nodes:\n    r1: {kind: bird}\n", "topology.nodes.r1.startup-config: kind bird needs a startup-config"),
        ("name: x\ntopology:\n  nodes:\n    r1: {kind: linux, startup-config: a.conf}\n", "topology.nodes.r1.startup-config: kind linux does not use"),
        ("name: x\ntopology:\n  kinds:\n    ceos: {image: x}\n  nodes:\n    r1: {kind: linux}\n", "topology.kinds.ceos"),
        ("name: x\ntopology:\n  nodes:\n    c1: {kind: container, labels: {lab.host: r1}}\n    r1: {kind: linux}\n", "topology.nodes.c1.labels.lab.host: `r1` is a linux node"),
        ("name: x\ntopology:\n  nodes:\n    r1: {kind: linux, mgmt-ipv4: 10.0.0.1}\n", "topology.nodes.r1.mgmt-ipv4: 10.0.0.1 is not a host address"),
        ("name: x\ntopology:\n  nodes:\n    r1: {kind: linux, mgmt-ipv4: 172.20.20.1}\n", "already used by mgmt.ipv4-gw"),
        ("name: x\nmgmt:\n  ipv4-subnet: 10.0.0.0/30\ntopology:\n  nodes:\n    r1: {kind: linux}\n", "mgmt.ipv4-subnet"),
        ("name: \"bad name\"\ntopology:\n  nodes:\n    r1: {kind: linux}\n", "name: `bad name` is not a valid name"),
        ("name: x\ntopology:\n  nodes:\n    r1: {kind: linux, binds: [\"onlysource\"]}\n", "topology.nodes.r1.binds[0]"),
        ("name: x\ntopology:\n  nodes: {}\n", "topology.nodes: the topology has no nodes"),
        ("name: x\ntopology:\n  nodes:\n    r1: {kind: linux, labels: {lab.nice: \"-30\"}}\n", "topology.nodes.r1.labels.lab.nice: `-30` is not a nice value"),
        ("name: x\ntopology:\n  nodes:\n    r1: {kind: linux, labels: {lab.nice: high}}\n", "topology.nodes.r1.labels.lab.nice: `high` is not a nice value"),
    ];
    for (text, want) in cases {
        let e = error_of(text);
        assert!(e.contains(want), "error `{e}` should contain `{want}`");
    }
}

fn topologies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies")
}

/// A shipped topology and its nodes' kinds by name.
fn shipped_kinds(file: &str) -> (Topology, BTreeMap<String, Kind>) {
    let t = Topology::load(&topologies_dir().join(file)).unwrap();
    let kinds = t.nodes.iter().map(|n| (n.name.clone(), n.kind)).collect();
    (t, kinds)
}

#[test]
fn shipped_topologies_load_and_stay_portable() {
    for file in [
        "two-rack.clab.yml",
        "bgp-only.clab.yml",
        "dual-homed.clab.yml",
        "flat.clab.yml",
    ] {
        let t = Topology::load(&topologies_dir().join(file)).unwrap();
        for node in &t.nodes {
            // containerlab only knows `linux`; our kinds travel in the lab.kind label.
            assert_eq!(node.clab_kind, "linux", "{file}: {}", node.name);
            assert!(
                node.image.is_some(),
                "{file}: {} needs an image for containerlab",
                node.name
            );
        }
    }
    let (two, kinds) = shipped_kinds("two-rack.clab.yml");
    assert_eq!(kinds["tor1"], Kind::Bird);
    assert_eq!(kinds["tor2"], Kind::Frr);
    assert_eq!(kinds["master1"], Kind::Netmaster);
    assert_eq!(
        two.nodes
            .iter()
            .filter(|n| n.kind == Kind::Netplugin)
            .count(),
        4
    );
    // dual-homed: host1 has a link to each ToR of rack 1 (BIRD and FRR).
    let (dual, kinds) = shipped_kinds("dual-homed.clab.yml");
    assert_eq!(kinds["tor1"], Kind::Bird);
    assert_eq!(kinds["tor2"], Kind::Frr);
    assert_eq!(kinds["tor3"], Kind::Bird);
    assert_eq!(kinds["host1"], Kind::Netplugin);
    let mut uplinks: Vec<String> = dual
        .links
        .iter()
        .filter_map(|l| match (l.a.node.as_str(), l.b.node.as_str()) {
            ("host1", other) | (other, "host1") => Some(other.to_string()),
            _ => None,
        })
        .collect();
    uplinks.sort();
    assert_eq!(uplinks, ["tor1", "tor2"]);
}

#[test]
fn missing_startup_config_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.clab.yml");
    std::fs::write(
        &file,
        "name: x\ntopology:\n  nodes:\n    r1: {kind: bird, startup-config: nope.conf}\n",
    )
    .unwrap();
    let e = Topology::load(&file).unwrap_err().to_string();
    assert!(
        e.starts_with("topology.nodes.r1.startup-config: file "),
        "{e}"
    );
    assert!(e.contains("does not exist"), "{e}");
}

fn fake_env(skip_missing: bool, ours: bool) -> PlanEnv {
    let mut programs = BTreeMap::new();
    for p in lab::programs::SYSTEM
        .iter()
        .chain(lab::programs::FRR_DAEMONS)
    {
        programs.insert(p.to_string(), PathBuf::from("/bin").join(p));
    }
    if ours {
        for p in ["netmaster", "netplugin"] {
            programs.insert(p.to_string(), PathBuf::from("/opt").join(p));
        }
    }
    PlanEnv {
        run_root: PathBuf::from("/run/lab"),
        programs,
        skip_missing,
    }
}

#[test]
fn a_nodes_nice_label_starts_its_daemons_at_that_priority() {
    let text = "name: x\ntopology:\n  nodes:\n    r1: {kind: bird, startup-config: r1.conf, labels: {lab.nice: \"-5\"}}\n    r2: {kind: bird, startup-config: r2.conf}\n";
    let t = parse(text).unwrap();
    let p = plan(&t, &fake_env(false, false)).unwrap();
    let argv = |node: &str| {
        p.actions
            .iter()
            .find_map(|a| match a {
                Action::Spawn(s) if s.node == node => Some(s.argv.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{node} spawns nothing"))
    };
    assert_eq!(argv("r1")[..4], ["nice", "-n", "-5", "/bin/bird"]);
    assert_eq!(argv("r2")[0], "/bin/bird");
}

#[test]
fn plan_for_two_rack_stays_inside_lab_namespaces() {
    let t = Topology::load(&topologies_dir().join("two-rack.clab.yml")).unwrap();
    let p = plan(&t, &fake_env(false, true)).unwrap();
    let ours = |ns: &str| ns.starts_with("clab-two-rack-");
    for a in &p.actions {
        match a {
            Action::AddNetns { name } => assert!(ours(name), "{name}"),
            Action::AddVeth {
                netns, peer_netns, ..
            } => assert!(ours(netns) && ours(peer_netns)),
            Action::AddAddress { netns, .. } | Action::LinkUp { netns, .. } => assert!(ours(netns)),
            Action::Spawn(s) => assert!(ours(&s.netns)),
            Action::Run { netns, .. } | Action::WaitReady { netns, .. } => assert!(ours(netns)),
            _ => {}
        }
    }
    // The management bridge lives in the lab's own namespace.
    assert!(p.actions.contains(&Action::AddBridge {
        netns: "clab-two-rack-mgmt".into(),
        name: "br-mgmt".into()
    }));
    // Every namespace exists before anything is put into it.
    let pos = |want: &Action| p.actions.iter().position(|a| a == want).unwrap();
    let tor1_ns = pos(&Action::AddNetns {
        name: "clab-two-rack-tor1".into(),
    });
    let tor1_link = p
        .actions
        .iter()
        .position(|a| matches!(a, Action::AddVeth { name, .. } if name == "eth1"))
        .unwrap();
    assert!(tor1_ns < tor1_link);
    // The master starts before the routers, the routers before the agents.
    let spawn_pos = |daemon: &str| {
        p.actions
            .iter()
            .position(|a| matches!(a, Action::Spawn(s) if s.name == daemon))
            .unwrap_or_else(|| panic!("no {daemon} spawned"))
    };
    assert!(spawn_pos("netmaster") < spawn_pos("bird"));
    assert!(spawn_pos("bird") < spawn_pos("netplugin"));
    // The netmaster gets its management address and a data dir; FRR gets its -N path space.
    let netmaster = p
        .actions
        .iter()
        .find_map(|a| match a {
            Action::Spawn(s) if s.name == "netmaster" => Some(s.argv.join(" ")),
            _ => None,
        })
        .unwrap();
    assert!(netmaster.starts_with("/opt/netmaster --listen-url 172.20.20.10:9999 --data-dir /run/lab/two-rack/master1/netmaster"), "{netmaster}");
    assert!(p
        .extra_dirs
        .contains(&PathBuf::from("/etc/frr/clab-two-rack-tor2")));
    assert!(p
        .extra_dirs
        .contains(&PathBuf::from("/var/run/frr/clab-two-rack-tor2")));
    let host1 = p.nodes.iter().find(|n| n.name == "host1").unwrap();
    assert_eq!(host1.env["OVS_RUNDIR"], "/run/lab/two-rack/host1/ovs");
}

/// The lab's master runs as the product does (TLS, `--auth on`) with a password and an agent
/// secret lab writes into its run dir; the agents get the secret and the certificate; commands
/// in the master node log in; several masters share the first one's password and secret.
#[test]
fn the_master_runs_with_auth_and_tls_and_agents_get_its_secret() {
    let text = r#"name: au
topology:
  nodes:
    master1:
      kind: netmaster
      mgmt-ipv4: 172.20.20.10
      env: {ETCD_ENDPOINTS: "http://172.20.20.9:2379"}
      exec:
        - netctl tenant ls
    master2:
      kind: netmaster
      mgmt-ipv4: 172.20.20.11
      env: {ETCD_ENDPOINTS: "http://172.20.20.9:2379"}
    host1:
      kind: netplugin
    host2:
      kind: netplugin
      env: {NETMASTER_URL: "https://master.example:9999"}
"#;
    let t = parse(text).unwrap();
    let p = plan(&t, &fake_env(false, true)).unwrap();
    let spawned = |node: &str, daemon: &str| {
        p.actions
            .iter()
            .find_map(|a| match a {
                Action::Spawn(s) if s.node == node && s.name == daemon => Some(s.argv.join(" ")),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{node} spawns no {daemon}"))
    };
    let m1 = "/run/lab/au/master1";
    assert_eq!(
        spawned("master1", "netmaster"),
        format!(
            "/opt/netmaster --listen-url 172.20.20.10:9999 --data-dir {m1}/netmaster \
             --api-hostname 172.20.20.11 \
             --etcd http://172.20.20.9:2379 --auth on --admin-password-file {m1}/admin-password \
             --agent-secret-file {m1}/agent-secret"
        )
    );
    // master2 shares master1's password and secret (one etcd, one set of users), and serves
    // master1's certificate, made for both addresses.
    assert_eq!(
        spawned("master2", "netmaster"),
        format!(
            "/opt/netmaster --listen-url 172.20.20.11:9999 --data-dir /run/lab/au/master2/netmaster \
             --tls-cert {m1}/netmaster/tls/cert.pem --tls-key {m1}/netmaster/tls/key.pem \
             --etcd http://172.20.20.9:2379 --auth on --admin-password-file {m1}/admin-password \
             --agent-secret-file {m1}/agent-secret"
        )
    );
    // Agents get both masters.
    assert_eq!(
        spawned("host1", "netplugin"),
        format!(
            "/opt/netplugin --host host1 --ovs-rundir /run/lab/au/host1/ovs \
             --socket /run/lab/au/host1/netplugin.sock \
             --netmaster https://172.20.20.10:9999,https://172.20.20.11:9999 \
             --master-secret-file {m1}/agent-secret --master-cacert {m1}/netmaster/tls/cert.pem"
        )
    );
    // A host pointed at another master gets none of this lab's credentials.
    assert!(spawned("host2", "netplugin").ends_with("--netmaster https://master.example:9999"));

    // The files are written (random, at deploy: the plan holds only their paths) before the
    // master starts; the login follows its readiness and precedes its exec lines.
    let pos = |f: &dyn Fn(&Action) -> bool| p.actions.iter().position(f).unwrap();
    let secret = pos(
        &|a| matches!(a, Action::WriteSecret { path } if path == std::path::Path::new(&format!("{m1}/agent-secret"))),
    );
    let password = pos(
        &|a| matches!(a, Action::WriteSecret { path } if path == std::path::Path::new(&format!("{m1}/admin-password"))),
    );
    let start =
        pos(&|a| matches!(a, Action::Spawn(s) if s.node == "master1" && s.name == "netmaster"));
    let ready = pos(&|a| matches!(a, Action::WaitReady { node, .. } if node == "master1"));
    let login = pos(&|a| matches!(a, Action::Login { node, .. } if node == "master1"));
    let exec = pos(&|a| matches!(a, Action::Run { node, .. } if node == "master1"));
    assert!(secret < start && password < start && start < ready && ready < login && login < exec);
    let expected = lab::auth::MasterLogin {
        url: "https://172.20.20.10:9999".into(),
        cacert: Some(format!("{m1}/netmaster/tls/cert.pem").into()),
        password_file: format!("{m1}/admin-password").into(),
        token_file: format!("{m1}/admin-token").into(),
    };
    assert!(matches!(&p.actions[login], Action::Login { login, .. } if *login == expected));
    assert!(matches!(&p.actions[exec], Action::Run { login: Some(l), .. } if *l == expected));

    // `lab exec` in the master node: netctl's URL and certificate, and the login for its token.
    let master1 = p.nodes.iter().find(|n| n.name == "master1").unwrap();
    assert_eq!(master1.env["NETMASTER"], "https://172.20.20.10:9999");
    assert_eq!(
        master1.env["NETCTL_CACERT"],
        format!("{m1}/netmaster/tls/cert.pem")
    );
    assert_eq!(master1.login.as_ref(), Some(&expected));
    let master2 = p.nodes.iter().find(|n| n.name == "master2").unwrap();
    assert_eq!(
        master2.login.as_ref().map(|l| l.token_file.clone()),
        Some("/run/lab/au/master2/admin-token".into())
    );
    assert_eq!(
        master2.login.as_ref().and_then(|l| l.cacert.clone()),
        Some(format!("{m1}/netmaster/tls/cert.pem").into()),
        "master2 serves master1's certificate"
    );
    let host1 = p.nodes.iter().find(|n| n.name == "host1").unwrap();
    assert!(host1.login.is_none() && !host1.env.contains_key("NETCTL_CACERT"));
}

#[test]
fn missing_agent_fails_clearly_unless_skipped() {
    let t = Topology::load(&topologies_dir().join("two-rack.clab.yml")).unwrap();
    let e = plan(&t, &fake_env(false, false)).unwrap_err().to_string();
    assert!(e.contains("topology.nodes."), "{e}");
    assert!(
        e.contains("netmaster binary not found") || e.contains("netplugin binary not found"),
        "{e}"
    );
    let mut env = fake_env(false, false);
    env.programs
        .insert("netmaster".into(), PathBuf::from("/opt/netmaster"));
    let e = plan(&t, &env).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "topology.nodes.host1: netplugin binary not found (the agent is not built yet)"
        ),
        "{e}"
    );

    let p = plan(&t, &fake_env(true, false)).unwrap();
    let host1 = p.nodes.iter().find(|n| n.name == "host1").unwrap();
    assert_eq!(host1.skipped, vec!["netplugin".to_string()]);
    assert!(p
        .actions
        .iter()
        .any(|a| matches!(a, Action::Spawn(s) if s.name == "ovs-vswitchd" && s.node == "host1")));
    assert!(!p
        .actions
        .iter()
        .any(|a| matches!(a, Action::Spawn(s) if s.name == "netplugin")));
}

#[test]
fn missing_router_daemon_names_its_package() {
    let t = Topology::load(&topologies_dir().join("bgp-only.clab.yml")).unwrap();
    let mut env = fake_env(false, true);
    env.programs.remove("gobgpd");
    let e = plan(&t, &env).unwrap_err().to_string();
    assert_eq!(
        e,
        "topology.nodes.r3: `gobgpd` is not installed (Debian package gobgpd)"
    );
}

#[test]
fn graph_has_every_node_and_link() {
    let t = Topology::load(&topologies_dir().join("bgp-only.clab.yml")).unwrap();
    let dot = lab::graph::to_dot(&t);
    assert!(dot.starts_with("graph \"bgp-only\" {"), "{dot}");
    assert!(
        dot.contains("\"r1\" [label=\"r1\\nbird\\n172.20.21.2\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"r1\" -- \"r2\" [taillabel=\"eth1\", headlabel=\"eth1\"];"),
        "{dot}"
    );
    assert_eq!(dot.matches(" -- ").count(), 3);
}

#[test]
fn frr_instance_names_must_fit_socket_paths() {
    let long = "l".repeat(64);
    let text = format!(
        "name: {long}\ntopology:\n  nodes:\n    router-with-a-long-name:\n      kind: frr\n      startup-config: frr.conf\n"
    );
    let t = parse(&text).unwrap();
    let e = plan(&t, &fake_env(false, true)).unwrap_err().to_string();
    assert!(
        e.starts_with("topology.nodes.router-with-a-long-name: FRR instance name"),
        "{e}"
    );
}

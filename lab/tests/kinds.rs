//! End-to-end for the kinds the shipped topologies do not cover: an etcd node serving on its
//! management address, `linux` exec lines, a `container` attached to a host, and a failing exec
//! line failing the deploy. Needs root.

mod common;

use std::time::Duration;

use common::{assert_no_leaks, footprint, poll, require_root_and_tools, text, TestLab};

const TOPOLOGY: &str = r#"name: NAME
mgmt:
  ipv4-subnet: 172.20.22.0/24
topology:
  nodes:
    store:
      kind: etcd
      mgmt-ipv4: 172.20.22.5
    client:
      kind: linux
      env:
        GREETING: hello
      exec:
        - ip addr add 10.9.0.1/31 dev eth1
        - echo "$GREETING from $LAB_NODE" > "$LAB_NODE_DIR/greeting"
    app:
      kind: container
      labels:
        lab.host: host
    host:
      kind: netplugin
  links:
    - endpoints: ["client:eth1", "host:eth1"]
"#;

/// The topology with `extra_exec` lines before the client's `echo`.
fn write_lab(tag: &str, extra_exec: &str) -> TestLab {
    let text = TOPOLOGY.replace("        - echo", &format!("{extra_exec}        - echo"));
    TestLab::from_text(tag, &text)
}

#[test]
fn etcd_linux_container_and_ovs_host_come_up() {
    require_root_and_tools(&[
        ("etcd", "etcd-server"),
        ("etcdctl", "etcd-client"),
        ("ovs-vswitchd", "openvswitch-switch"),
    ]);
    let lab = write_lab("kd", "");
    let before = footprint(&lab.name);
    let out = lab.deploy();
    assert!(out.status.success(), "deploy failed: {}", text(&out));

    // etcd answers on its management address from another node.
    let put = lab.exec(
        "client",
        "etcdctl --endpoints=http://172.20.22.5:2379 put lab-key works",
    );
    assert!(put.0, "etcd put failed: {put:?}");
    let got = poll(Duration::from_secs(10), || {
        let (ok, out) = lab.exec("store", "etcdctl get lab-key --print-value-only");
        (ok && out.trim() == "works").then_some(())
    });
    assert!(
        got.is_some(),
        "etcd get: {:?}",
        lab.exec("store", "etcdctl get lab-key")
    );

    // exec lines ran inside the node, with the node's env.
    let (_, addrs) = lab.exec("client", "ip -4 -o addr show dev eth1");
    assert!(addrs.contains("10.9.0.1/31"), "{addrs}");
    let greeting =
        std::fs::read_to_string(format!("/run/lab/{}/client/greeting", lab.name)).unwrap();
    assert_eq!(greeting.trim(), "hello from client");

    // The container knows its host.
    let (_, env) = lab.exec("app", "echo $LAB_HOST $LAB_HOST_NETNS");
    assert_eq!(env.trim(), format!("host {}", lab.netns("host")));

    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
}

#[test]
fn a_failing_exec_line_fails_the_deploy_and_destroy_cleans_up() {
    require_root_and_tools(&[
        ("etcd", "etcd-server"),
        ("ovs-vswitchd", "openvswitch-switch"),
    ]);
    let lab = write_lab("kx", "        - exit 3\n");
    let before = footprint(&lab.name);
    let out = lab.deploy();
    assert!(!out.status.success(), "deploy should fail: {}", text(&out));
    assert!(
        text(&out).contains("node client: `ip netns exec"),
        "{}",
        text(&out)
    );
    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
}

const FAKE_NETMASTER: &str = r#"#!/usr/bin/perl
# Stands in for netmaster: records its arguments, serves TCP on --listen-url.
use IO::Socket::INET;
my %flag = @ARGV;
open(my $out, '>', $ENV{FAKE_OUT}) or die "FAKE_OUT: $!";
print $out join(' ', @ARGV);
close $out;
my $s = IO::Socket::INET->new(LocalAddr => $flag{'--listen-url'}, Listen => 5, ReuseAddr => 1)
  or die "listen: $!";
while (my $c = $s->accept) { close $c; }
"#;

const FAKE_NETPLUGIN: &str = "#!/bin/bash\n# Stands in for netplugin: records its arguments, stays up.\necho \"$*\" > \"$FAKE_OUT\"\nexec -a \"fake-netplugin $*\" sleep 600\n";

/// lab's side of the netmaster/netplugin kinds, with stand-in binaries (the real ones are
/// tested with lab by the workspace's end-to-end tests): the flags they get, the master's
/// readiness through its TCP port, and the agent's own OVS.
#[test]
fn netmaster_and_netplugin_get_their_flags_and_are_stopped() {
    require_root_and_tools(&[
        ("perl", "perl-base"),
        ("ovs-vswitchd", "openvswitch-switch"),
    ]);
    let topology = r#"name: NAME
topology:
  nodes:
    master1:
      kind: netmaster
      mgmt-ipv4: 172.20.20.10
      env: {FAKE_OUT: "@OUT@/master.args"}
    host1:
      kind: netplugin
      env: {FAKE_OUT: "@OUT@/host1.args"}
"#;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().display().to_string();
    let lab = TestLab::from_text("nm", &topology.replace("@OUT@", &out_dir));
    for (name, script) in [("netmaster", FAKE_NETMASTER), ("netplugin", FAKE_NETPLUGIN)] {
        let path = lab.bin_dir.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let before = footprint(&lab.name);
    let out = lab.lab(&["deploy", "-t", lab.file.to_str().unwrap()]);
    assert!(out.status.success(), "deploy failed: {}", text(&out));

    let run = format!("/run/lab/{}", lab.name);
    let master = std::fs::read_to_string(dir.path().join("master.args")).unwrap();
    assert_eq!(
        master,
        format!(
            "--listen-url 172.20.20.10:9999 --data-dir {run}/master1/netmaster --insecure-http"
        )
    );
    let host = std::fs::read_to_string(dir.path().join("host1.args")).unwrap();
    assert_eq!(
        host.trim(),
        format!("--host host1 --ovs-rundir {run}/host1/ovs --socket {run}/host1/netplugin.sock --netmaster http://172.20.20.10:9999")
    );
    // The master answers on the management network from the host.
    assert!(
        lab.exec("host1", "bash -c 'exec 3<>/dev/tcp/172.20.20.10/9999'")
            .0
    );
    let inspect = lab.inspect_json();
    let running: Vec<String> = inspect
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["processes"].as_array().unwrap().clone())
        .filter(|p| p["running"] == true)
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    for daemon in ["netmaster", "netplugin", "ovsdb-server", "ovs-vswitchd"] {
        assert!(
            running.iter().any(|r| r == daemon),
            "{daemon} not running: {running:?}"
        );
    }

    let out = lab.destroy();
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert_no_leaks(&lab.name, &before);
}

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

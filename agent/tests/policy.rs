//! Group-based policy end to end on two-rack, with real agents, OVS, BIRD and FRR: Contiv's
//! tutorial policy (`db-policy` on `db-group`) is in place before a container's ADD returns,
//! is enforced at the destination's host for traffic from the other rack, `out` rules are
//! enforced at the source's host, rule changes reach running containers, and an agent killed
//! and restarted under policy installs exactly the same flows.

mod common;

use common::{config, poll, Fabric};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Echo servers inside a container's namespace, killed when the test ends.
struct Listeners(Vec<Child>);

impl Listeners {
    fn start(netns: &str, ports: &[u16]) -> Listeners {
        let children = ports
            .iter()
            .map(|port| {
                Command::new("ip")
                    .args(["netns", "exec", netns, "busybox", "nc", "-ll", "-p"])
                    .arg(port.to_string())
                    .args(["-e", "/bin/cat"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("busybox nc (Debian package busybox-static)")
            })
            .collect();
        Listeners(children)
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP connection from `netns` to `ip:port` that echoes a line back (1 s connect timeout).
fn tcp_ok(f: &Fabric, netns: &str, ip: &str, port: u16) -> bool {
    let (ok, out) = f.exec_ns(
        netns,
        &[
            "sh",
            "-c",
            &format!("echo policy-probe | timeout 3 busybox nc -w 1 {ip} {port}"),
        ],
    );
    ok && out.contains("policy-probe")
}

/// Polls until a probe gives `want` (rule changes take effect asynchronously).
fn becomes(f: &Fabric, netns: &str, ip: &str, port: u16, want: bool) -> bool {
    poll(Duration::from_secs(15), || {
        (tcp_ok(f, netns, ip, port) == want).then_some(())
    })
    .is_some()
}

/// ADD through contivk8s with Contiv's group label, as a runtime passes pod labels.
fn attach(f: &Fabric, host: &str, id: &str, netns: &str, group: &str) -> String {
    let out = f.cni_raw(
        "ADD",
        host,
        id,
        netns,
        config().to_string().as_bytes(),
        &[(
            "CNI_ARGS",
            &format!("IgnoreUnknown=1;K8S_POD_NAME={id};io.contiv.net-group={group}"),
        )],
    );
    assert!(out.ok, "ADD {id} on {host}: {}", out.raw);
    Fabric::address(&out)
}

#[test]
fn contiv_tutorial_policy_across_racks_with_live_rule_changes_and_restart() {
    let f = Fabric::up("p", "");
    // Intent first, as Contiv's tutorial does: the policy exists before any container.
    f.netctl(&["policy", "create", "db-policy"]);
    f.netctl(&[
        "policy",
        "rule-add",
        "db-policy",
        "1",
        "-direction=in",
        "-protocol=tcp",
        "-action=deny",
    ]);
    f.netctl(&[
        "policy",
        "rule-add",
        "db-policy",
        "2",
        "-direction=in",
        "-protocol=tcp",
        "-port=8888",
        "-action=allow",
        "-priority=10",
    ]);
    f.netctl(&["policy", "create", "web-policy"]);
    f.netctl(&[
        "group",
        "create",
        "default-net",
        "db-group",
        "-policy=db-policy",
    ]);
    f.netctl(&[
        "group",
        "create",
        "default-net",
        "web-group",
        "-policy=web-policy",
    ]);

    // A client on db's host and one in the other rack.
    let web3 = f.container_netns("web3");
    let web1 = f.container_netns("web1");
    attach(&f, "host3", "ctr-web3", &web3, "web-group");
    attach(&f, "host1", "ctr-web1", &web1, "web-group");

    // The runtime creates the namespace first; the service listens before the network exists.
    let db = f.container_netns("db1");
    let _servers = Listeners::start(&db, &[80, 8888]);
    let db_ip = attach(&f, "host3", "ctr-db1", &db, "db-group");

    // Covered from the moment ADD returns: the first connection to port 80, from a client on
    // the same host (no BGP involved), is already refused.
    assert!(
        !tcp_ok(&f, &web3, &db_ip, 80),
        "port 80 of db1 reachable right after ADD: db-policy was not in place"
    );
    assert!(
        becomes(&f, &web3, &db_ip, 8888, true),
        "db1:8888 unreachable from web3 (same host)"
    );
    assert!(!tcp_ok(&f, &web3, &db_ip, 80), "db1:80 reachable from web3");

    // From the other rack: through host1's kernel, tor1, tor2 and host3's kernel; the `in`
    // rules are enforced at db1's host.
    assert!(
        becomes(&f, &web1, &db_ip, 8888, true),
        "db1:8888 unreachable from web1 in the other rack"
    );
    assert!(
        !tcp_ok(&f, &web1, &db_ip, 80),
        "db1:80 reachable across racks"
    );

    // A rule added to a policy in use reaches the running container; removing it takes it back.
    f.netctl(&[
        "policy",
        "rule-add",
        "db-policy",
        "3",
        "-direction=in",
        "-protocol=tcp",
        "-port=80",
        "-action=allow",
        "-priority=10",
    ]);
    assert!(
        becomes(&f, &web1, &db_ip, 80, true),
        "allowing port 80 did not reach db1"
    );
    f.netctl(&["policy", "rule-rm", "db-policy", "3"]);
    assert!(
        becomes(&f, &web1, &db_ip, 80, false),
        "removing the port-80 rule did not reach db1"
    );

    // An `out` rule on the client's group is enforced at the client's host (host1), which
    // has to know that db1, on another host, is in db-group.
    f.netctl(&[
        "policy",
        "rule-add",
        "web-policy",
        "1",
        "-direction=out",
        "-protocol=tcp",
        "-port=8888",
        "-to-group=db-group",
        "-action=deny",
    ]);
    assert!(
        becomes(&f, &web1, &db_ip, 8888, false),
        "web-policy's out rule did not stop web1 -> db1:8888"
    );
    assert!(
        !tcp_ok(&f, &web3, &db_ip, 8888),
        "web-policy's out rule did not stop web3 -> db1:8888"
    );
    f.netctl(&["policy", "rule-rm", "web-policy", "1"]);
    assert!(
        becomes(&f, &web1, &db_ip, 8888, true),
        "removing web-policy's out rule did not restore web1 -> db1:8888"
    );

    // kill -9 of db1's agent under policy: the restarted agent installs exactly the same flows
    // and the policy still holds.
    let flows_before = f.flows("host3");
    assert!(!flows_before.is_empty(), "host3 has no flows");
    let (_restarted, log) = f.kill_and_restart_agent("host3", "netplugin-policy-restart.log");
    // Let the restarted agent reconcile, then compare: no flow lost, none added.
    std::thread::sleep(Duration::from_secs(3));
    let same = poll(Duration::from_secs(30), || {
        (f.flows("host3") == flows_before).then_some(())
    });
    assert!(
        same.is_some(),
        "host3's flows differ after the restart under policy:\nnow {:#?}\nbefore {flows_before:#?}\nlog:\n{}",
        f.flows("host3"),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        !tcp_ok(&f, &web1, &db_ip, 80),
        "db1:80 reachable after the restart"
    );
    assert!(
        tcp_ok(&f, &web1, &db_ip, 8888),
        "db1:8888 unreachable after the restart"
    );
}

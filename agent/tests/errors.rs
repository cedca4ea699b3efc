//! Failures get a clear CNI error and leave nothing behind (no address in the master, no OVS
//! port, veth, flow or route): a bad CNI config, an unknown network, an exhausted subnet, an
//! unreachable master.

mod common;

use common::{config, poll, Fabric};
use serde_json::json;
use std::time::Duration;

/// Everything an attach on `host` could leave behind.
fn footprint(
    f: &Fabric,
    host: &str,
) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>, usize) {
    (
        f.veths(host),
        f.ports(host),
        f.flows(host),
        f.routes(host),
        f.endpoints().len(),
    )
}

#[test]
fn failures_are_cni_errors_and_leave_nothing_behind() {
    let f = Fabric::up("e", "");
    let ns = f.container_netns("x1");
    let before = footprint(&f, "host1");
    let allocated = f.allocated("default:default-net");

    // Bad configs: the spec's codes, a message, nothing done.
    let cases: [(&[u8], u64); 4] = [
        (b"{not json", 6),
        (br#"{"name":"contiv","type":"contivk8s"}"#, 1),
        (br#"{"cniVersion":"1.0.0","type":"contivk8s"}"#, 7),
        (br#"{"cniVersion":"1.0.0","name":"c","mtu":"big"}"#, 7),
    ];
    for (stdin, code) in cases {
        let out = f.cni_raw("ADD", "host1", "bad", &ns, stdin, &[]);
        assert!(
            !out.ok,
            "ADD with {} succeeded",
            String::from_utf8_lossy(stdin)
        );
        assert_eq!(out.json["code"], code, "{}", out.raw);
        assert!(
            !out.json["msg"].as_str().unwrap_or("").is_empty(),
            "{}",
            out.raw
        );
    }
    let missing_env = f.cni_raw(
        "ADD",
        "host1",
        "",
        &ns,
        config().to_string().as_bytes(),
        &[],
    );
    assert_eq!(missing_env.json["code"], 4, "{}", missing_env.raw);

    // An unknown network: the master refuses, the plugin says so.
    let mut unknown = config();
    unknown["network"] = json!("no-such-net");
    let out = f.cni("ADD", "host1", "unknown", &ns, &unknown);
    assert!(!out.ok);
    assert_eq!(out.json["code"], 100, "{}", out.raw);
    assert!(
        out.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains("no-such-net"),
        "{}",
        out.raw
    );
    assert_eq!(footprint(&f, "host1"), before);

    // An exhausted subnet: /30 with the gateway holds one container.
    f.netctl(&[
        "net",
        "create",
        "--subnet",
        "10.9.9.0/30",
        "--gateway",
        "10.9.9.1",
        "tiny",
    ]);
    let mut tiny = config();
    tiny["network"] = json!("tiny");
    let first_ns = f.container_netns("t1");
    let first = f.cni("ADD", "host1", "tiny-1", &first_ns, &tiny);
    assert!(first.ok, "{}", first.raw);
    let with_one = footprint(&f, "host1");
    let second = f.cni("ADD", "host1", "tiny-2", &ns, &tiny);
    assert!(!second.ok);
    assert_eq!(second.json["code"], 100, "{}", second.raw);
    assert!(
        second.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains("no free address"),
        "{}",
        second.raw
    );
    assert_eq!(
        footprint(&f, "host1"),
        with_one,
        "a failed ADD left something"
    );
    assert_eq!(f.allocated("default:tiny"), 1);
    assert!(f.cni("DEL", "host1", "tiny-1", &first_ns, &tiny).ok);
    assert_eq!(f.allocated("default:tiny"), 0);
    // The network's own flows (tenant isolation drops its subnet for other tenants) stay
    // while it exists; they go with it.
    f.netctl(&["net", "rm", "tiny"]);
    let clean = poll(Duration::from_secs(20), || {
        (footprint(&f, "host1") == before).then_some(())
    });
    assert_eq!(
        clean.map(|()| before.clone()),
        Some(footprint(&f, "host1")),
        "tiny's attach left something"
    );

    // A network deleted while a host keeps a reserve of it: the reserve and the routes
    // prepared for it go too.
    f.netctl(&[
        "net",
        "create",
        "--subnet",
        "10.9.8.0/24",
        "--gateway",
        "10.9.8.1",
        "spare",
    ]);
    let mut spare = config();
    spare["network"] = json!("spare");
    let spare_ns = f.container_netns("s1");
    assert!(f.cni("ADD", "host1", "spare-1", &spare_ns, &spare).ok);
    assert!(f.cni("DEL", "host1", "spare-1", &spare_ns, &spare).ok);
    let in_spare = |r: &String| r.starts_with("10.9.8.");
    let prepared = poll(Duration::from_secs(10), || {
        let routes = f.all_routes("host1");
        (f.reserve_of("host1").iter().any(in_spare) && routes.iter().any(in_spare))
            .then_some(routes)
    })
    .expect("host1 keeps a reserve of spare, routed ahead");
    assert!(prepared
        .iter()
        .filter(|r| in_spare(r))
        .all(|r| r.contains("dev gw0")));
    f.netctl(&["net", "rm", "spare"]);
    let gone = poll(Duration::from_secs(20), || {
        let left: Vec<String> = f.all_routes("host1").into_iter().filter(in_spare).collect();
        left.is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "routes prepared for a deleted network stay: {:?}",
        f.all_routes("host1")
    );
    assert!(!f.reserve_of("host1").iter().any(in_spare));

    // An unreachable master: the agent answers "try again later" and does nothing.
    // STATUS (CNI 1.1) says so too.
    let v11 = serde_json::json!({"cniVersion": "1.1.0", "name": "contiv"});
    assert!(f.cni("STATUS", "host1", "", &ns, &v11).ok);
    assert!(f.exec("host1", &["ip", "link", "set", "eth0", "down"]).0);
    let out = f.cni("ADD", "host1", "nomaster", &ns, &config());
    let status = f.cni("STATUS", "host1", "", &ns, &v11);
    assert!(f.exec("host1", &["ip", "link", "set", "eth0", "up"]).0);
    assert!(!status.ok);
    assert_eq!(status.json["code"], 50, "{}", status.raw);
    assert!(!out.ok);
    assert_eq!(out.json["code"], 11, "{}", out.raw);
    assert!(
        out.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains("unreachable"),
        "{}",
        out.raw
    );
    assert_eq!(footprint(&f, "host1"), before);
    assert_eq!(f.allocated("default:default-net"), allocated);

    // The agent itself unreachable: a clear error too.
    let out = f.cni_raw(
        "ADD",
        "host1",
        "noagent",
        &ns,
        config().to_string().as_bytes(),
        &[("CONTIV_NETPLUGIN_SOCKET", "/nonexistent/netplugin.sock")],
    );
    assert_eq!(out.json["code"], 102, "{}", out.raw);

    // GC (CNI 1.1): attachments the runtime no longer lists are detached.
    let keep_ns = f.container_netns("g1");
    let drop_ns = f.container_netns("g2");
    assert!(f.cni("ADD", "host1", "keep", &keep_ns, &config()).ok);
    assert!(f.cni("ADD", "host1", "stale", &drop_ns, &config()).ok);
    assert_eq!(f.veths("host1").len(), 2);
    let gc = serde_json::json!({"cniVersion": "1.1.0", "name": "contiv",
        "cni.dev/valid-attachments": [{"containerID": "keep", "ifname": common::IFNAME}]});
    let out = f.cni("GC", "host1", "", &keep_ns, &gc);
    assert!(out.ok, "{}", out.raw);
    assert_eq!(f.veths("host1").len(), 1);
    let ids: Vec<String> = f
        .endpoints()
        .iter()
        .filter_map(|e| e["endpointID"].as_str().map(String::from))
        .collect();
    assert_eq!(ids, vec![format!("keep-{}", common::IFNAME)]);
    assert_eq!(f.allocated("default:default-net"), allocated + 1);
}

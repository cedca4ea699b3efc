//! Stateless restart: `kill -9` of an agent while a container on it is pinged from the other
//! rack every 10 ms loses only a handful of probes (OVS keeps forwarding, the kernel keeps its
//! routes, the ToRs keep ours through BGP graceful restart, checked while the agent is away);
//! after the restart the flows and routes are exactly what they were, and the agent still
//! knows its containers.

mod common;

use common::{config, poll, Fabric};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Probes sent (10 ms apart) and the most that may be lost.
const PROBES: u32 = 800;
const MAX_LOST: u32 = 5;

#[test]
fn kill_9_of_an_agent_keeps_traffic_and_restores_exactly() {
    let f = Fabric::up("r", "");
    let (app1, app3) = (f.netns("app1"), f.netns("app3"));
    let a1 = f.cni("ADD", "host1", "ctr-app1", &app1, &config());
    assert!(a1.ok, "{}", a1.raw);
    let a3 = f.cni("ADD", "host3", "ctr-app3", &app3, &config());
    assert!(a3.ok, "{}", a3.raw);
    let ip1 = Fabric::address(&a1);
    assert!(
        poll(Duration::from_secs(20), || f
            .ping(&app3, &ip1)
            .then_some(()))
        .is_some(),
        "app3 cannot reach app1 before the restart"
    );
    let flows_before = f.flows("host1");
    let routes_before = f.routes("host1");
    assert!(routes_before.len() >= 2, "{routes_before:?}");

    let pinger = Command::new("ip")
        .args([
            "netns", "exec", &app3, "ping", "-q", "-i", "0.01", "-W", "1",
        ])
        .args(["-c", &PROBES.to_string(), &ip1])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_secs(2));
    let argv = f.kill_agent("host1");
    // While the agent is away: tor1 has lost the session (the kernel closed its socket) and
    // keeps app1's /32 as stale under graceful restart, and tor2 still has it through tor1.
    let session_down = poll(Duration::from_secs(5), || {
        let state = f.birdc("tor1", &["show", "protocols", "host1"]);
        (!state.contains("Established")).then_some(state)
    });
    let held = (
        f.tor1_routes().contains_key(&format!("{ip1}/32")),
        f.tor2_routes().contains_key(&format!("{ip1}/32")),
    );
    let (_restarted, log) = f.start_agent("host1", &argv, "netplugin-restarted.log");
    let session_down =
        session_down.expect("tor1 still shows host1's session Established 5 s after kill -9");
    assert_eq!(
        held,
        (true, true),
        "graceful restart: app1's /32 in (tor1, tor2) while the agent was away; tor1's session: {session_down}"
    );
    let out = pinger.wait_with_output().expect("ping");
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    let received: u32 = summary
        .split(", ")
        .find(|p| p.ends_with("received"))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let lost = PROBES - received;
    eprintln!("kill -9 and restart of host1's agent: {lost} of {PROBES} probes lost");
    assert!(
        lost <= MAX_LOST,
        "{lost} of {PROBES} probes lost across the restart: {summary}"
    );

    // After the restart: exactly the same flows and routes (no duplicates).
    let same = poll(Duration::from_secs(30), || {
        (f.flows("host1") == flows_before && f.routes("host1") == routes_before).then_some(())
    });
    assert!(
        same.is_some(),
        "host1 differs after the restart:\nflows {:?}\nbefore {flows_before:?}\nroutes {:?}\nbefore {routes_before:?}\nlog:\n{}",
        f.flows("host1"),
        f.routes("host1"),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The restarted agent knows its container: DEL works and withdraws the /32.
    let del = poll(Duration::from_secs(10), || {
        let d = f.cni("DEL", "host1", "ctr-app1", &app1, &config());
        d.ok.then_some(d)
    });
    assert!(del.is_some(), "DEL after the restart failed");
    let gone = poll(Duration::from_secs(20), || {
        (!f.tor2_routes().contains_key(&format!("{ip1}/32"))).then_some(())
    });
    assert!(gone.is_some(), "{ip1}/32 still in tor2 after DEL");
    assert!(f.veths("host1").is_empty());
    assert_eq!(f.ports("host1"), vec!["gw0".to_string()]);
}

//! Stateless restart: `kill -9` of an agent while a container on it is pinged from the other
//! rack every 10 ms loses only a handful of probes (OVS keeps forwarding, the kernel keeps its
//! routes, the ToRs keep ours through BGP graceful restart, checked while the agent is away);
//! after the restart the flows and routes are exactly what they were, and the agent still
//! knows its containers. A second `kill -9` while a container on another host is deleted: the
//! learned /32 it leaves behind in host1's kernel goes as soon as the ToR has sent End-of-RIB
//! to the restarted agent (not after the 30 s stale timer), while the routes still advertised
//! stay installed all along.

mod common;

use common::{config, poll, Fabric};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Probes sent (10 ms apart) and the most that may be lost.
const PROBES: u32 = 800;
const MAX_LOST: u32 = 5;

/// How soon after the restart a learned route withdrawn while the agent was away must leave
/// the kernel: well under the stale timer (30 s), which alone would fail this.
const SWEPT_WITHIN: Duration = Duration::from_secs(15);

/// Whether `routes` (`ip route show proto 205` lines) hold a route for `ip`.
fn has_route(routes: &[String], ip: &str) -> bool {
    routes.iter().any(|r| r.starts_with(&format!("{ip} ")))
}

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

    // End-of-RIB sweeps the stale routes. A container on host3 whose /32 host1 has learned
    // is deleted while host1's agent is away: its route stays in host1's kernel (nobody
    // removes it), and goes once the restarted agent has tor1's End-of-RIB.
    let gone_ns = f.container_netns("gone");
    let gone = f.cni("ADD", "host3", "ctr-gone", &gone_ns, &config());
    assert!(gone.ok, "{}", gone.raw);
    let gone_ip = Fabric::address(&gone);
    let ip3 = Fabric::address(&a3);
    let learned = poll(Duration::from_secs(20), || {
        has_route(&f.routes("host1"), &gone_ip).then_some(())
    });
    assert!(
        learned.is_some(),
        "host1 never learned {gone_ip}/32: {:?}",
        f.routes("host1")
    );
    let argv = f.kill_agent("host1");
    let del = f.cni("DEL", "host3", "ctr-gone", &gone_ns, &config());
    assert!(del.ok, "{}", del.raw);
    let withdrawn = poll(Duration::from_secs(20), || {
        (!f.tor1_routes().contains_key(&format!("{gone_ip}/32"))).then_some(())
    });
    assert!(withdrawn.is_some(), "{gone_ip}/32 still in tor1 after DEL");
    let stale = f.routes("host1");
    assert!(
        has_route(&stale, &gone_ip) && has_route(&stale, &ip3),
        "host1's kernel while its agent is away should still hold {gone_ip} and {ip3}: {stale:?}"
    );
    let (_restarted_again, log) = f.start_agent("host1", &argv, "netplugin-restarted-2.log");
    let started = Instant::now();
    let mut dropped = None;
    let swept = poll(SWEPT_WITHIN, || {
        let routes = f.routes("host1");
        if dropped.is_none() && !(has_route(&routes, &ip3) && has_route(&routes, &ip1)) {
            dropped = Some(routes.clone());
        }
        (!has_route(&routes, &gone_ip)).then(|| started.elapsed())
    });
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let swept = swept.unwrap_or_else(|| {
        panic!(
            "{gone_ip}/32 still in host1's kernel {SWEPT_WITHIN:?} after the restart: {:?}\nlog:\n{}",
            f.routes("host1"),
            log_text()
        )
    });
    eprintln!("stale {gone_ip}/32 swept {swept:?} after the restart");
    // And for two seconds more: the sweep took nothing else along.
    for _ in 0..10 {
        let routes = f.routes("host1");
        if dropped.is_none() && !(has_route(&routes, &ip3) && has_route(&routes, &ip1)) {
            dropped = Some(routes);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        dropped.is_none(),
        "a route still advertised left host1's kernel after the restart: {dropped:?}\nlog:\n{}",
        log_text()
    );
    assert!(
        has_route(&f.routes("host1"), &ip3) && f.ping(&app3, &ip1),
        "app3 cannot reach app1 after the second restart: {:?}",
        f.routes("host1")
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

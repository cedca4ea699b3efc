//! Issue 5 end to end on lab's dual-homed topology: routes to the fabric come from BGP, ECMP
//! across two ToRs. host1 has one uplink to tor1 (BIRD) and one to tor2 (FRR), rack 1's ToR
//! pair, with an eBGP session to each (one Bgp object, two neighbours); host2 sits in rack 2
//! under tor3 (BIRD). With the real netmaster, agents, OVS and routers:
//! (a) host1's kernel holds app2's /32 with two next hops, one per ToR, `proto 205`;
//! (b) app1's /32 is announced over both sessions: tor1's and tor2's RIBs hold it from host1,
//!     and tor3 installs it with both ToRs as next hops;
//! (c) app1 keeps pinging app2 while first the ToR's end of the uplink the pings take and then
//!     host1's end of the other uplink go down and come back: each time the ToR that lost host1
//!     withdraws at once (tor3 keeps one next hop), host1's route falls back to the remaining
//!     ToR once BGP notices (hold time) and returns to two next hops when the link is back;
//! (d) host2's single uplink goes down and up: its learned routes, flushed by the kernel, come
//!     back with the BGP session.

mod common;

use common::{config, poll, Fabric, DUAL_HOMED};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// host1's two ToRs, as its next hops.
const TOR1: &str = "10.254.1.0";
const TOR2: &str = "10.254.3.0";
/// host1 as the ToRs see it: its address on each uplink.
const HOST1_ON_TOR1: &str = "10.254.1.1";
const HOST1_ON_TOR2: &str = "10.254.3.1";
/// tor1 and tor2 as tor3 sees them.
const TOR1_ON_TOR3: &str = "10.254.0.0";
const TOR2_ON_TOR3: &str = "10.254.0.2";
/// BGP notices a dead uplink within the hold time (9 s, the lab's ToRs and our agent), then
/// reconnects every second; generous bounds for a busy machine.
const FALLBACK: Duration = Duration::from_secs(25);
const RECOVER: Duration = Duration::from_secs(30);

/// A node's kernel route for `ip`/32: (next hops, protocol), from `ip -j route show exact`.
fn kernel_route(fabric: &Fabric, node: &str, ip: &str) -> Option<(BTreeSet<String>, String)> {
    let (_, out) = fabric.exec(
        node,
        &["ip", "-j", "route", "show", "exact", &format!("{ip}/32")],
    );
    let list: Value = serde_json::from_str(&out).ok()?;
    let route = list.as_array()?.first()?.clone();
    let mut hops: BTreeSet<String> = route["nexthops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["gateway"].as_str().map(String::from))
        .collect();
    if let Some(g) = route["gateway"].as_str() {
        hops.insert(g.to_string());
    }
    let protocol = route["protocol"].as_str().unwrap_or("").to_string();
    Some((hops, protocol))
}

fn set(hops: &[&str]) -> BTreeSet<String> {
    hops.iter().map(|h| h.to_string()).collect()
}

/// Waits until host1's route to `ip` has exactly `want` as next hops with our protocol; the
/// time it took.
fn wait_host1_route(fabric: &Fabric, ip: &str, want: &[&str], limit: Duration) -> Duration {
    let start = Instant::now();
    let want = set(want);
    let mut last = None;
    let ok = poll(limit, || {
        last = kernel_route(fabric, "host1", ip);
        (last.as_ref() == Some(&(want.clone(), "205".to_string()))).then_some(())
    });
    assert!(
        ok.is_some(),
        "host1's route to {ip}: want next hops {want:?} proto 205 within {limit:?}, last seen \
         {last:?}\nhost1's routes:\n{}\nBIRD tor1: {}\nFRR tor2: {}",
        fabric.exec("host1", &["ip", "route"]).1,
        fabric.birdc("tor1", &["show", "protocols"]),
        fabric.vtysh_on("tor2", "show bgp ipv4 unicast summary json")["peers"],
    );
    start.elapsed()
}

/// The next hop host1's kernel picks for packets from `src` (a local container, entering from
/// the gateway port) to `dst`.
fn uplink_of_flow(fabric: &Fabric, src: &str, dst: &str) -> String {
    let (ok, out) = fabric.exec(
        "host1",
        &["ip", "-j", "route", "get", dst, "from", src, "iif", "gw0"],
    );
    let route: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    let hop = route[0]["gateway"].as_str().unwrap_or("").to_string();
    assert!(
        ok && [TOR1, TOR2].contains(&hop.as_str()),
        "ip route get {dst} from {src} iif gw0 on host1: {out}"
    );
    hop
}

/// Pings from a namespace every 50 ms until stopped (at most 2,000 probes, 100 s); killed if
/// the test fails first.
struct PingStream(Option<Child>);

impl PingStream {
    fn start(netns: &str, ip: &str) -> PingStream {
        let child = Command::new("ip")
            .args([
                "netns", "exec", netns, "ping", "-n", "-i", "0.05", "-c", "2000",
            ])
            .args(["-W", "1", ip])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ping");
        PingStream(Some(child))
    }

    /// Stops the stream (SIGINT: ping prints its summary); (sent, received).
    fn stop(mut self) -> (u64, u64) {
        let Some(child) = self.0.take() else {
            return (0, 0);
        };
        // `ip netns exec` execs ping, so the child is ping itself.
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGINT);
        let out = child.wait_with_output().expect("ping output");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary in:\n{text}"));
        let number = |word: &str| -> u64 {
            let words: Vec<&str> = line.split_whitespace().collect();
            words
                .iter()
                .position(|w| w.trim_end_matches(',') == word)
                .and_then(|i| words.get(i.checked_sub(1)?))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (number("packets"), number("received"))
    }
}

impl Drop for PingStream {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `ip link set <dev> <state>` in a node's namespace.
fn link(fabric: &Fabric, node: &str, dev: &str, state: &str) {
    let (ok, out) = fabric.exec(node, &["ip", "link", "set", dev, state]);
    assert!(ok, "ip link set {dev} {state} on {node}: {out}");
}

#[test]
fn a_dual_homed_host_uses_both_tors_and_keeps_pinging_when_an_uplink_goes_down() {
    let started = Instant::now();
    let fabric = Fabric::up_on(&DUAL_HOMED, "d", "");
    let up = started.elapsed();
    let mut ips = Vec::new();
    for (app, host) in [("app1", "host1"), ("app2", "host2")] {
        let out = fabric.cni(
            "ADD",
            host,
            &format!("ctr-{app}"),
            &fabric.netns(app),
            &config(),
        );
        assert!(out.ok, "ADD {app} on {host} failed: {}", out.raw);
        ips.push(Fabric::address(&out));
    }
    let (app1, app2) = (ips[0].clone(), ips[1].clone());

    // (a) host1 reaches app2 (rack 2) through both ToRs: one kernel route, two next hops,
    // our protocol.
    wait_host1_route(&fabric, &app2, &[TOR1, TOR2], Duration::from_secs(20));

    // (b) app1 went out over both sessions: each ToR of the pair holds it from host1, and
    // tor3 installs it with both ToRs as next hops (the way back is ECMP too).
    let prefix = format!("{app1}/32");
    let pair_holds_app1 = || {
        let tor1 = fabric.bird_routes("tor1").get(&prefix).cloned();
        let tor2 = fabric.frr_routes("tor2").get(&prefix).cloned();
        tor1.is_some_and(|h| h == [HOST1_ON_TOR1]) && tor2.is_some_and(|h| h == [HOST1_ON_TOR2])
    };
    let held = poll(Duration::from_secs(20), || {
        let tor3 = kernel_route(&fabric, "tor3", &app1)?.0;
        (pair_holds_app1() && tor3 == set(&[TOR1_ON_TOR3, TOR2_ON_TOR3])).then_some(())
    });
    assert!(
        held.is_some(),
        "{prefix}: tor1 {:?}, tor2 {:?} (want host1's address on each link), tor3's kernel {:?} \
         (want both ToRs)",
        fabric.bird_routes("tor1").get(&prefix),
        fabric.frr_routes("tor2").get(&prefix),
        kernel_route(&fabric, "tor3", &app1),
    );
    assert!(
        fabric.ping(&fabric.netns("app1"), &app2),
        "app1 cannot reach app2"
    );
    assert!(
        fabric.ping(&fabric.netns("app2"), &app1),
        "app2 cannot reach app1"
    );

    // (c) One uplink at a time goes down and comes back while app1 pings app2 every 50 ms.
    // First the uplink the pings leave by (the kernel hashes the flow onto one next hop),
    // from the ToR's end: host1 sees only its link lose carrier. Then the other uplink, from
    // host1's end: that ToR sees the carrier loss.
    let used = uplink_of_flow(&fabric, &app1, &app2);
    // (node, its interface, the next hop host1 keeps, the one tor3 keeps)
    let cases = if used == TOR1 {
        [
            ("tor1", "eth2", TOR2, TOR2_ON_TOR3),
            ("host1", "eth2", TOR1, TOR1_ON_TOR3),
        ]
    } else {
        [
            ("tor2", "eth2", TOR1, TOR1_ON_TOR3),
            ("host1", "eth1", TOR2, TOR2_ON_TOR3),
        ]
    };
    let stream = PingStream::start(&fabric.netns("app1"), &app2);
    let mut timings = Vec::new();
    for (node, dev, left, left_on_tor3) in cases {
        link(&fabric, node, dev, "down");
        let down = Instant::now();
        // The way back: the ToR that lost host1 withdraws app1 and tor3 keeps the other.
        let tor3 = poll(FALLBACK, || {
            let hops = kernel_route(&fabric, "tor3", &app1)?.0;
            (hops == set(&[left_on_tor3])).then(|| down.elapsed())
        });
        let Some(tor3) = tor3 else {
            panic!(
                "tor3 still routes {app1} over {:?} with {node}'s {dev} down",
                kernel_route(&fabric, "tor3", &app1)
            );
        };
        wait_host1_route(&fabric, &app2, &[left], FALLBACK);
        let host1 = down.elapsed();
        assert!(
            fabric.ping(&fabric.netns("app1"), &app2),
            "app1 cannot reach app2 with {node}'s {dev} down"
        );
        link(&fabric, node, dev, "up");
        let back = wait_host1_route(&fabric, &app2, &[TOR1, TOR2], RECOVER);
        // Both ToRs have app1 from host1 again before the next link goes.
        let again = poll(Duration::from_secs(20), || pair_holds_app1().then_some(()));
        assert!(
            again.is_some(),
            "{prefix} not back on both ToRs after {node}'s {dev} came up"
        );
        timings.push(format!(
            "{node} {dev} down: tor3 one next hop after {tor3:.1?}, host1 after {host1:.1?}; \
             up: host1 two next hops after {back:.1?}"
        ));
    }
    let (sent, received) = stream.stop();

    // (d) host2 hangs off tor3 alone. Taking its uplink down flushes the kernel's routes
    // through it, ours included, and tor3 (BIRD) drops the session at once; when the link is
    // back the session returns and with it the routes, in the kernel again.
    let learned = || kernel_route(&fabric, "host2", &app1).filter(|(_, p)| p == "205");
    assert!(learned().is_some(), "host2 has no learned route to {app1}");
    link(&fabric, "host2", "eth1", "down");
    let flushed = poll(Duration::from_secs(5), || learned().is_none().then_some(()));
    assert!(
        flushed.is_some(),
        "the kernel kept host2's route to {app1} with its uplink down: {:?}",
        kernel_route(&fabric, "host2", &app1)
    );
    link(&fabric, "host2", "eth1", "up");
    let flapped = Instant::now();
    let back = poll(RECOVER, || learned().map(|_| flapped.elapsed()));
    assert!(
        back.is_some(),
        "host2's route to {app1} not back {RECOVER:?} after its uplink came up\nhost2's \
         routes:\n{}",
        fabric.exec("host2", &["ip", "route"]).1
    );
    let pings = poll(RECOVER, || {
        fabric.ping(&fabric.netns("app2"), &app1).then_some(())
    });
    assert!(
        pings.is_some(),
        "app2 cannot reach app1 after host2's uplink came back"
    );
    timings.push(format!(
        "host2 eth1 flap: route back after {:.1?}",
        back.unwrap_or_default()
    ));
    eprintln!(
        "deploy {up:.1?}; {timings:#?}; pings {received}/{sent}; total {:.1?}",
        started.elapsed()
    );
    assert!(sent > 100, "the ping stream sent only {sent} probes");
    // Traffic leaves through the other uplink at once (the agent has the kernel ignore a next
    // hop whose link is down) and the ToRs withdraw within a fraction of a second: at most 2 s
    // of probes may be lost (measured: up to 5, each time the way back switched over; without
    // the kernel ignoring the dead next hop, about 115, until BGP noticed).
    assert!(
        sent - received <= 40,
        "{} of {sent} pings lost while the uplinks went down and up",
        sent - received
    );
}

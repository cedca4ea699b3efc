//! Container-to-routable latency (a benchmark, not a test). On lab's two-rack fabric, N
//! containers (default 200) are attached 10 at a time through contivk8s on the two rack-1 hosts;
//! for each we measure the ADD itself, ADD → its /32 in tor1's RIB (BIRD, polled through its
//! control socket), and ADD → the first ping answered from app3 in the other rack (a probe
//! every 10 ms). Then the same for a Calico-style baseline on
//! host2: its agent is stopped, a shell script does the veth wiring (address /32, default via
//! 169.254.1.1 with proxy ARP, a host route) and BIRD on the host exports kernel routes to
//! tor1. Prints p50/p90/p99/max of both, the ratio, and where an ADD spends its time.
//!
//!     cargo build --release --workspace --bins
//!     sudo cargo bench -p netplugin --bench attach     # BENCH_N=200 BENCH_BATCH=10 BENCH_BASELINE=1

#[path = "../tests/common/mod.rs"]
mod common;

use common::{config, Fabric};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One attach: the ADD's duration, ADD → first ping, and its /32 with the ADD's start.
type Sample = (Duration, Option<Duration>, Option<(String, Instant)>);

/// tor1's RIB: prefix → when first seen.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Time from `start` to the first answered ping of `ip` from namespace `from` (None: 10 s).
/// ping exits at the first "unreachable" error (before the route exists), so it is restarted.
fn first_ping(from: &str, ip: &str, start: Instant) -> Option<Duration> {
    let deadline = start + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", from, "ping", "-n", "-i", "0.01", "-w", "10", ip,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut found = None;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.contains("bytes from") {
                    found = Some(start.elapsed());
                    break;
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        if found.is_some() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn percentile(v: &[Duration], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

fn report(name: &str, v: &[Duration]) {
    if v.is_empty() {
        println!("{name:<34} no samples");
        return;
    }
    println!(
        "{name:<34} p50 {:>8.1} ms  p90 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  (n={})",
        percentile(v, 0.5),
        percentile(v, 0.9),
        percentile(v, 0.99),
        percentile(v, 1.0),
        v.len()
    );
}

/// Polls tor1's RIB until `stop`.
fn watch_rib(f: &Fabric, seen: Seen, stop: Arc<AtomicBool>) {
    let bird_ctl = f.run_dir("tor1").join("bird.ctl").display().to_string();
    // birdc only needs BIRD's control socket: no `ip netns exec` (which remounts /sys and
    // costs tens of milliseconds) between two looks.
    while !stop.load(Ordering::Relaxed) {
        let out = Command::new("birdc")
            .args(["-s", &bird_ctl, "show", "route"])
            .output();
        let now = Instant::now();
        if let (Ok(out), Ok(mut map)) = (out, seen.lock()) {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some(p) = line
                    .split_whitespace()
                    .next()
                    .filter(|p| p.ends_with("/32"))
                {
                    map.entry(p.to_string()).or_insert(now);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Attaches every namespace, `batch` at a time, with `attach(index, netns) -> address`;
/// returns (ADD, ADD → RIB, ADD → ping) samples.
fn measure(
    f: &Fabric,
    namespaces: &[String],
    batch: usize,
    attach: &(dyn Fn(usize, &str) -> Option<String> + Sync),
) -> [Vec<Duration>; 3] {
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let app3 = f.netns("app3");
    std::thread::scope(|s| {
        let (seen_w, stop_w) = (seen.clone(), stop.clone());
        let watcher = s.spawn(move || watch_rib(f, seen_w, stop_w));
        let (mut add, mut rib, mut ping) = (Vec::new(), Vec::new(), Vec::new());
        for (b, list) in namespaces.chunks(batch).enumerate() {
            let results: Vec<Sample> = std::thread::scope(|s| {
                let handles: Vec<_> = list
                    .iter()
                    .enumerate()
                    .map(|(i, ns)| {
                        let app3 = &app3;
                        s.spawn(move || {
                            let t0 = Instant::now();
                            let ip = attach(b * batch + i, ns);
                            let took = t0.elapsed();
                            let Some(ip) = ip else {
                                return (took, None, None);
                            };
                            let p = first_ping(app3, &ip, t0);
                            (took, p, Some((format!("{ip}/32"), t0)))
                        })
                    })
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            });
            for (took, p, prefix) in results {
                add.push(took);
                ping.extend(p);
                let Some((prefix, t0)) = prefix else { continue };
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let at = seen.lock().ok().and_then(|m| m.get(&prefix).copied());
                    if let Some(at) = at {
                        rib.push(at.saturating_duration_since(t0));
                        break;
                    }
                    if Instant::now() > deadline {
                        eprintln!("{prefix} never reached tor1");
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        [add, rib, ping]
    })
}

/// Removes ANSI colour sequences (the agent's log is coloured).
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Per-step times of the agent's attaches, from its log.
fn steps(f: &Fabric, host: &str) -> BTreeMap<String, Vec<Duration>> {
    let log = std::fs::read_to_string(f.run_dir(host).join("netplugin.log")).unwrap_or_default();
    let mut per_step: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for line in log
        .lines()
        .map(strip_ansi)
        .filter(|l| l.contains(" attached"))
    {
        for part in line.split_whitespace().filter(|p| p.ends_with("ms")) {
            let Some((step, ms)) = part.trim_start_matches("steps=").split_once('=') else {
                continue;
            };
            if let Ok(ms) = ms.trim_end_matches("ms").parse::<u64>() {
                per_step
                    .entry(step.to_string())
                    .or_default()
                    .push(Duration::from_millis(ms));
            }
        }
    }
    per_step
}

/// The netplugin process of a host.
fn agent_pid(f: &Fabric, host: &str) -> Option<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", &f.netns(host)])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find_map(|p| {
            let pid: i32 = p.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "netplugin").then_some(pid)
        })
}

/// A daemon killed when the benchmark ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Host2 as a Calico-style host: its agent stopped, BIRD exporting kernel routes to tor1.
fn calico_host(f: &Fabric) -> Daemon {
    if let Some(pid) = agent_pid(f, "host2") {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
    // Proxy ARP answers for 169.254.1.1 only if the host routes it out of another interface
    // (a Calico host has a default route for that).
    let (ok, _) = f.exec(
        "host2",
        &["ip", "route", "replace", "169.254.1.1/32", "dev", "eth1"],
    );
    assert!(ok, "route for the proxy-ARP gateway");
    let dir = f.run_dir("host2");
    let conf = dir.join("baseline-bird.conf");
    std::fs::write(
        &conf,
        "router id 10.254.1.3;
protocol device { scan time 10; }
protocol kernel {
  learn;
  scan time 1;
  ipv4 { import where net.len = 32; export where source = RTS_BGP; };
}
protocol bgp tor1 {
  local 10.254.1.3 as 65212;
  neighbor 10.254.1.2 as 65101;
  ipv4 { import all; export where source = RTS_INHERIT; };
}
",
    )
    .expect("bird config");
    let sock = dir.join("baseline-bird.ctl");
    let child = Command::new("ip")
        .args(["netns", "exec", &f.netns("host2"), "bird", "-f", "-c"])
        .arg(&conf)
        .arg("-s")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bird on host2");
    let bird_ctl = f.run_dir("tor1").join("bird.ctl").display().to_string();
    let up = common::poll(Duration::from_secs(30), || {
        let (_, out) = f.exec(
            "tor1",
            &["birdc", "-s", &bird_ctl, "show", "protocols", "host2"],
        );
        out.contains("Established").then_some(())
    });
    assert!(up.is_some(), "host2's BIRD did not peer with tor1");
    Daemon(child)
}

/// The baseline's wiring of one container, as a script would do it (Calico's layout).
fn calico_attach(f: &Fabric, i: usize, ns: &str) -> Option<String> {
    let ip = format!("10.1.{}.{}", 100 + i / 250, 1 + i % 250);
    let veth = format!("bl{i}");
    let script = format!(
        "set -e
ip link add {veth} type veth peer name eth1 netns {ns}
ip -n {ns} addr add {ip}/32 dev eth1
ip -n {ns} link set eth1 up
ip -n {ns} route add 169.254.1.1 dev eth1 scope link
ip -n {ns} route add default via 169.254.1.1 dev eth1
echo 1 > /proc/sys/net/ipv4/conf/{veth}/proxy_arp
ip link set {veth} up
ip route add {ip}/32 dev {veth}"
    );
    let (ok, _) = f.exec("host2", &["sh", "-c", &script]);
    ok.then_some(ip)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test discovery
    }
    let n = env_usize("BENCH_N", 200);
    let batch = env_usize("BENCH_BATCH", 10).max(1);
    eprintln!("deploying two-rack...");
    let f = Fabric::up("bench", "");
    let app3 = f.netns("app3");
    let pinger = f.cni("ADD", "host3", "pinger", &app3, &config());
    assert!(pinger.ok, "pinger: {}", pinger.raw);

    let ours_ns: Vec<String> = (0..n)
        .map(|i| f.container_netns(&format!("b{i}")))
        .collect();
    let started = Instant::now();
    let ours = measure(&f, &ours_ns, batch, &|i, ns| {
        let host = if i % 2 == 0 { "host1" } else { "host2" };
        let out = f.cni("ADD", host, &format!("b{i}"), ns, &config());
        if !out.ok {
            eprintln!("ADD b{i} failed: {}", out.raw);
        }
        out.ok.then(|| Fabric::address(&out))
    });
    println!(
        "\nours: {n} containers, {batch} at a time, on host1/host2 in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    report("CNI ADD (plugin returns)", &ours[0]);
    report("ADD -> /32 in tor1 RIB", &ours[1]);
    report("ADD -> first ping from app3", &ours[2]);
    for (step, v) in steps(&f, "host1") {
        report(&format!("  step {step} (host1)"), &v);
    }

    if env_usize("BENCH_BASELINE", 1) == 0 {
        return;
    }
    let _bird = calico_host(&f);
    let base_ns: Vec<String> = (0..n)
        .map(|i| f.container_netns(&format!("k{i}")))
        .collect();
    let started = Instant::now();
    let base = measure(&f, &base_ns, batch, &|i, ns| calico_attach(&f, i, ns));
    println!(
        "\nbaseline (script + BIRD exporting kernel routes, scan time 1 s): {n} on host2 in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    report("script wiring", &base[0]);
    report("wiring -> /32 in tor1 RIB", &base[1]);
    report("wiring -> first ping from app3", &base[2]);
    println!();
    for (name, i) in [("RIB", 1), ("ping", 2)] {
        let (o, b) = (percentile(&ours[i], 0.5), percentile(&base[i], 0.5));
        println!(
            "p50 to {name}: ours {o:.1} ms, baseline {b:.1} ms, baseline/ours = {:.1}x",
            b / o
        );
    }
}

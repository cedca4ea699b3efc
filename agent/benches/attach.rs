//! Container-to-routable latency (a benchmark, not a test): on lab's two-rack fabric, 200
//! containers are attached 10 at a time through contivk8s on the two rack-1 hosts; for each we
//! measure the CNI ADD itself, ADD → its /32 in tor1's RIB (BIRD), and ADD → the first ping
//! answered from app3 in the other rack. Prints p50/p90/p99/max.
//!
//!     cargo build --release --workspace --bins
//!     sudo cargo bench -p netplugin --bench attach            # BENCH_N=200 BENCH_BATCH=10

#[path = "../tests/common/mod.rs"]
mod common;

use common::{config, Fabric};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One attach: the ADD's duration, ADD → first ping, and its /32 with the ADD's start.
type Sample = (Duration, Option<Duration>, Option<(String, Instant)>);

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
                "netns", "exec", from, "ping", "-n", "-i", "0.005", "-w", "10", ip,
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

fn percentiles(name: &str, mut v: Vec<Duration>) {
    if v.is_empty() {
        println!("{name:<28} no samples");
        return;
    }
    v.sort();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{name:<28} p50 {:>7.1} ms   p90 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   (n={})",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        v.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test discovery
    }
    let n = env_usize("BENCH_N", 200);
    let batch = env_usize("BENCH_BATCH", 10);
    eprintln!("deploying two-rack...");
    let f = Fabric::up("bench", "");
    let app3 = f.netns("app3");
    let pinger = f.cni("ADD", "host3", "pinger", &app3, &config());
    assert!(pinger.ok, "pinger: {}", pinger.raw);
    let namespaces: Vec<String> = (0..n)
        .map(|i| f.container_netns(&format!("b{i}")))
        .collect();

    // tor1's RIB, polled in the background: prefix → when first seen.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (seen, stop, f) = (seen.clone(), stop.clone(), &f);
        let bird_ctl = f.run_dir("tor1").join("bird.ctl").display().to_string();
        let tor1 = f.netns("tor1");
        std::thread::scope(|s| {
            let (seen_w, stop_w) = (seen.clone(), stop.clone());
            let h = s.spawn(move || {
                while !stop_w.load(std::sync::atomic::Ordering::Relaxed) {
                    let out = Command::new("ip")
                        .args([
                            "netns", "exec", &tor1, "birdc", "-s", &bird_ctl, "show", "route",
                        ])
                        .output();
                    let now = Instant::now();
                    if let Ok(out) = out {
                        let text = String::from_utf8_lossy(&out.stdout);
                        if let Ok(mut map) = seen_w.lock() {
                            for line in text.lines() {
                                if let Some(p) = line
                                    .split_whitespace()
                                    .next()
                                    .filter(|p| p.ends_with("/32"))
                                {
                                    map.entry(p.to_string()).or_insert(now);
                                }
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            let mut add = Vec::new();
            let mut rib = Vec::new();
            let mut ping = Vec::new();
            let started = Instant::now();
            for chunk in namespaces.chunks(batch).enumerate() {
                let (b, list) = chunk;
                let results: Vec<Sample> = std::thread::scope(|s| {
                    let handles: Vec<_> = list
                        .iter()
                        .enumerate()
                        .map(|(i, ns)| {
                            let host = if i % 2 == 0 { "host1" } else { "host2" };
                            let id = format!("b{}", b * batch + i);
                            let app3 = &app3;
                            s.spawn(move || {
                                let t0 = Instant::now();
                                let out = f.cni("ADD", host, &id, ns, &config());
                                let took = t0.elapsed();
                                if !out.ok {
                                    eprintln!("ADD {id} failed: {}", out.raw);
                                    return (took, None, None);
                                }
                                let ip = Fabric::address(&out);
                                let p = first_ping(app3, &ip, t0);
                                (took, p, Some((format!("{ip}/32"), t0)))
                            })
                        })
                        .collect();
                    handles.into_iter().filter_map(|h| h.join().ok()).collect()
                });
                for (took, p, prefix) in results {
                    add.push(took);
                    if let Some(p) = p {
                        ping.push(p);
                    }
                    if let Some((prefix, t0)) = prefix {
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
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = h.join();
            println!(
                "\n{n} containers attached {batch} at a time on host1/host2 in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            percentiles("CNI ADD (plugin returns)", add);
            percentiles("ADD -> /32 in tor1 RIB", rib);
            percentiles("ADD -> first ping from app3", ping);
            // Where an ADD spends its time, from the agent's log (per step, in order).
            let log = std::fs::read_to_string(f.run_dir("host1").join("netplugin.log"))
                .unwrap_or_default();
            let mut per_step: std::collections::BTreeMap<String, Vec<Duration>> =
                Default::default();
            for line in log.lines().filter(|l| l.contains(" attached")) {
                for part in line
                    .split_whitespace()
                    .filter(|p| p.ends_with("ms") && p.contains('='))
                {
                    let part = part.trim_start_matches("steps=");
                    if let Some((step, ms)) = part.split_once('=') {
                        if let Ok(ms) = ms.trim_end_matches("ms").parse::<u64>() {
                            per_step
                                .entry(step.to_string())
                                .or_default()
                                .push(Duration::from_millis(ms));
                        }
                    }
                }
            }
            for (step, v) in per_step {
                percentiles(&format!("  step {step} (host1)"), v);
            }
        })
    }
}

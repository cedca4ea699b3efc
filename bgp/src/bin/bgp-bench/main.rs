//! bgp-bench: our speaker against BIRD, side by side, receiving and sending N /32s.
//!
//! Receiving: a BIRD sender exports N static /32s to our speaker, then (a fresh sender) to a
//! BIRD receiver. The sender loads its routes with its session disabled and is then enabled;
//! we time each receiver from the session's Established until it holds all N, and read its
//! peak memory and CPU. Then the same with the BIRD sender's stream recorded once and replayed
//! at wire speed (`replay`), so that the receiver, not the sender, sets the pace.
//! Sending: our speaker, then BIRD, advertise the same N /32s to a fresh receiver (GoBGP, then
//! BIRD). Each sender first holds its routes, then gets its session; we time from Established
//! until the receiver holds all N and count UPDATE messages and bytes sent.
//! Everything runs in namespaces it creates and removes. Needs root, bird2 and gobgpd.
//!
//! `bgp-bench reflect` (`reflect.rs`) is the route-reflector comparison: many clients on
//! loopback, our reflector against BIRD's; it needs neither root nor namespaces.

mod clients;
mod daemons;
mod lab;
mod receive;
mod reflect;
mod replay;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use daemons::{Bird, BirdOpts, Fabric, GoBgp};
use lab::{poll, poll_every, Ns, Segment};
use receive::{Source, Summary};
use serde_json::json;

#[derive(Parser)]
#[command(
    about = "Benchmark the fabric BGP speaker against BIRD",
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Route counts to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    n: Vec<u64>,
    /// Longest wait for one transfer, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Run only the receiving comparison.
    #[arg(long, conflicts_with = "send_only")]
    receive_only: bool,
    /// Run only the sending comparison.
    #[arg(long)]
    send_only: bool,
    /// Receivers for the sending comparison, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "gobgp,bird")]
    send_to: Vec<Receiver>,
    /// Senders for the receiving comparison: `live` (a BIRD sender per run), `replay` (its
    /// recorded stream at wire speed), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "live,replay")]
    source: Vec<SourceKind>,
    /// Runs per receiver (receiving) and per sender (sending) and N, alternating ours and
    /// BIRD; medians are printed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    repeat: u32,
    /// Runs per receiver of the replay (a fraction of a second each): the machine's own
    /// variance, which moves both receivers' times by up to a half from one minute to the
    /// next, needs more runs than the live transfers can afford.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=100))]
    replay_repeat: u32,
}

/// Benchmarks other than the default receiving and sending comparison.
#[derive(clap::Subcommand)]
enum Command {
    /// Route-reflector convergence, ours against BIRD: clients on 127.0.1.x each announce
    /// /32s and must learn everyone else's through the reflector (no root needed).
    Reflect(reflect::ReflectArgs),
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum SourceKind {
    Live,
    Replay,
}

struct Names {
    base: String,
    next: u32,
}

impl Names {
    fn ns(&mut self) -> Result<Ns> {
        self.next += 1;
        Ns::create(format!("{}{}", self.base, self.next))
    }
}

/// Time from `start` until `count()` reaches `n`, and from the first route seen; `count` is
/// asked every `every`.
fn transfer(
    what: &str,
    n: u64,
    limit: Duration,
    every: Duration,
    start: Instant,
    mut count: impl FnMut() -> Option<u64>,
) -> Result<(f64, f64)> {
    let mut first: Option<Instant> = None;
    poll_every(what, limit, every, || {
        let c = count().unwrap_or(0);
        if c > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        (c >= n).then_some(())
    })?;
    let end = Instant::now();
    let first = first.unwrap_or(end);
    Ok(((end - start).as_secs_f64(), (end - first).as_secs_f64()))
}

/// How often the sending comparison asks a BIRD receiver how many routes it holds.
const TICK: Duration = Duration::from_millis(20);

/// The same for a GoBGP receiver: each ask runs the `gobgp` client, a process that costs
/// more CPU than BIRD's control socket, which on two cores slowed the very transfer timed;
/// its transfers take seconds, so 100 ms is still a fine resolution.
const GOBGP_TICK: Duration = Duration::from_millis(100);

/// Longest wait for a session to come up once enabled.
const SETUP_LIMIT: Duration = Duration::from_secs(60);

/// A BIRD sender (`id`, AS) of `n` static /32s to `peer` (address, AS), its session disabled
/// until [`open_bird_session`]; returns once its own table holds all `n`.
fn loaded_bird_sender(
    ns: &Ns,
    dir: &std::path::Path,
    (id, asn): (&str, u32),
    peer: (&str, u32),
    n: u64,
    limit: Duration,
) -> Result<Bird> {
    let sender = Bird::start(
        ns,
        dir,
        "send-bird",
        id,
        asn,
        &[peer],
        BirdOpts {
            routes: n,
            disabled: true,
            connect_delay: Some(1),
            ..BirdOpts::default()
        },
    )?;
    poll("the BIRD sender to load its static routes", limit, || {
        sender.imported("st").filter(|&c| c >= n)
    })?;
    Ok(sender)
}

/// Enables a loaded sender's session and waits (polling every millisecond) until it is
/// Established: the instant the clocks start.
fn open_bird_session(sender: &Bird) -> Result<()> {
    sender.enable("p0")?;
    poll_every(
        "the BIRD sender's session to be Established",
        SETUP_LIMIT,
        Duration::from_millis(1),
        || sender.established("p0")?.then_some(()),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        l if l % 2 == 1 => v[l / 2],
        l => (v[l / 2 - 1] + v[l / 2]) / 2.0,
    }
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Receiver {
    #[value(name = "gobgp")]
    GoBgp,
    Bird,
}

struct Sending {
    /// Seconds until the receiver held all N: from the sender's session Established, and from
    /// the first route the receiver was seen to hold.
    secs: (f64, f64),
    updates: Option<u64>,
    bytes: u64,
    /// Seconds the sender took to hold its N routes (before the session, not counted).
    load_secs: f64,
    /// Seconds from adding or enabling the session to Established (set-up, not counted).
    setup_secs: f64,
}

fn tx_bytes(ns: &Ns, ifname: &str) -> u64 {
    ns.run(&[
        "cat",
        &format!("/sys/class/net/{ifname}/statistics/tx_bytes"),
    ])
    .ok()
    .and_then(|s| s.trim().parse().ok())
    .unwrap_or(0)
}

fn sending(
    names: &mut Names,
    dir: &std::path::Path,
    n: u64,
    limit: Duration,
    receiver: Receiver,
    ours_sends: bool,
) -> Result<Sending> {
    let hub = names.ns()?;
    let sender_ns = names.ns()?;
    let mut seg = Segment::new(&hub, "10.0.0.1/24")?;
    let ifname = seg.attach(&sender_ns, "10.0.0.2/24")?;
    let sender_as = if ours_sends { 65020 } else { 65030 };
    let (gobgp, bird) = match receiver {
        Receiver::GoBgp => (
            Some(GoBgp::start(
                &hub,
                dir,
                65040,
                "10.0.0.1",
                &[("10.0.0.2", sender_as)],
            )?),
            None,
        ),
        Receiver::Bird => (
            None,
            Some(Bird::start(
                &hub,
                dir,
                "recv",
                "10.0.0.1",
                65040,
                &[("10.0.0.2", sender_as)],
                BirdOpts {
                    passive: true,
                    ..BirdOpts::default()
                },
            )?),
        ),
    };
    let count = || match (&gobgp, &bird) {
        (Some(g), _) => g.count(),
        (_, Some(b)) => b.count(),
        _ => None,
    };
    let tick = if receiver == Receiver::GoBgp {
        GOBGP_TICK
    } else {
        TICK
    };
    let load_start = Instant::now();
    let (secs, updates, load_secs, setup_secs, bytes_before) = if ours_sends {
        // No peer yet: the routes go into the RIB first, the session is added when they are in.
        let announce = json!([{"range": {"start": "10.64.0.0", "count": n, "prefix_len": 32}}]);
        let ours = Fabric::start(
            &sender_ns,
            dir,
            "send-ours",
            json!({"local_as": 65020, "router_id": "10.0.0.2", "connect_retry": 1, "peers": []}),
            announce,
        )?;
        poll("our sender to load its routes", limit, || {
            ours.count().filter(|&c| c >= n)
        })?;
        let load_secs = load_start.elapsed().as_secs_f64();
        let bytes_before = tx_bytes(&sender_ns, &ifname);
        let peer = json!({"address": "10.0.0.1", "peer_as": 65040, "families": ["Ipv4"]});
        ours.ctl(json!({"cmd": "add_peer", "peer": peer}))
            .context("adding the receiver to our sender")?;
        let enabled = Instant::now();
        poll_every(
            "our sender's session to be Established",
            SETUP_LIMIT,
            Duration::from_millis(1),
            || ours.established("10.0.0.1")?.then_some(()),
        )?;
        let start = Instant::now();
        let secs = transfer("receiver to hold our routes", n, limit, tick, start, count)?;
        let updates = match &gobgp {
            Some(g) => g.updates_from("10.0.0.2"),
            None => ours.updates_to("10.0.0.1"),
        };
        let setup = (start - enabled).as_secs_f64();
        (secs, updates, load_secs, setup, bytes_before)
    } else {
        let sender = loaded_bird_sender(
            &sender_ns,
            dir,
            ("10.0.0.2", 65030),
            ("10.0.0.1", 65040),
            n,
            limit,
        )?;
        let load_secs = load_start.elapsed().as_secs_f64();
        let bytes_before = tx_bytes(&sender_ns, &ifname);
        let enabled = Instant::now();
        open_bird_session(&sender)?;
        let start = Instant::now();
        // Kept awake as in receiving: an idle BIRD may hold its last UPDATEs for 3 s.
        let secs = transfer(
            "receiver to hold BIRD's routes",
            n,
            limit,
            tick,
            start,
            || {
                let _ = sender.cli("show status");
                count()
            },
        )?;
        let updates = gobgp.as_ref().and_then(|g| g.updates_from("10.0.0.2"));
        let setup = (start - enabled).as_secs_f64();
        (secs, updates, load_secs, setup, bytes_before)
    };
    Ok(Sending {
        secs,
        updates,
        bytes: tx_bytes(&sender_ns, &ifname).saturating_sub(bytes_before),
        load_secs,
        setup_secs,
    })
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "n/a".into()
    }
}

/// Shortest time (wall or CPU) a ratio is printed for where the clock ticks every 10 ms (CPU
/// time, and the polls of live transfers).
const MIN_SECS: f64 = 0.05;

/// `ratio` of two durations, or "n/a" if the second is too short to divide by.
fn secs_ratio(a: f64, b: f64) -> String {
    secs_ratio_above(a, b, MIN_SECS)
}

/// `ratio` of two durations, or "n/a" if the second is below `min` seconds.
fn secs_ratio_above(a: f64, b: f64, min: f64) -> String {
    if b < min {
        format!("n/a (< {min} s)")
    } else {
        ratio(a, b)
    }
}

/// The receiving comparison for one N: from a live BIRD sender, then from its recorded
/// stream replayed at wire speed; runs alternate between the receivers.
fn receive_side_by_side(
    names: &mut Names,
    dir: &std::path::Path,
    n: u64,
    limit: Duration,
    (repeat, replay_repeat): (u32, u32),
    kinds: &[SourceKind],
) -> Result<()> {
    let recording = if kinds.contains(&SourceKind::Replay) {
        Some(receive::record_bird(names, dir, n, limit)?)
    } else {
        None
    };
    let live = kinds.contains(&SourceKind::Live).then_some(Source::Bird);
    for source in live
        .into_iter()
        .chain(recording.as_ref().map(Source::Replay))
    {
        let repeat = match source {
            Source::Bird => repeat,
            Source::Replay(_) => replay_repeat,
        };
        let (mut ours, mut bird) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            ours.push(receive::receiving(names, dir, n, limit, true, source)?);
            bird.push(receive::receiving(names, dir, n, limit, false, source)?);
        }
        let ours = Summary::of(&ours, n);
        let bird = Summary::of(&bird, n);
        match source {
            Source::Bird => {
                println!("receiving from a BIRD sender that first loads its N static routes with its session disabled, then is enabled;");
                println!("  clock: from the sender's session Established to the receiver holding all N / from the first route the receiver holds to all N;");
                println!("  peak memory and CPU from enable to all N; sender load and enable-to-Established are not counted;");
            }
            Source::Replay(rec) => {
                println!(
                    "receiving BIRD's stream replayed at wire speed (its OPEN and {} UPDATEs, {} bytes, recorded once from a sender loaded as above);",
                    rec.messages,
                    rec.updates.len()
                );
                println!("  clock: from the replayed session's Established to the receiver holding all N / from the first route it holds; the receiver alone sets the pace;");
            }
        }
        println!("  medians of {repeat} runs per receiver, alternating, one at a time, each against a fresh sender:");
        for (name, r) in [("ours", &ours), ("BIRD", &bird)] {
            let runs: Vec<String> = r.runs.iter().map(|s| format!("{s:.3}")).collect();
            let sender_cpu = r
                .sender_cpu_secs
                .map_or("n/a".to_string(), |c| format!("{c:.2} s"));
            println!(
                "  {name} : {:8.3} s / {:8.3} s   peak {:8.0} KiB  ({:.0} B/route)   receiver CPU {:.2} s, sender CPU {sender_cpu}   [sender load {:.2} s, to Established {:.2} s; runs {} s]",
                r.secs,
                r.first_secs,
                r.peak_kib,
                r.bytes_per_route,
                r.cpu_secs,
                r.load_secs,
                r.setup_secs,
                runs.join(" ")
            );
        }
        // A time is divided by only when it spans five of the ticks it was measured in.
        let min_wall = source.tick().as_secs_f64() * 5.0;
        let target = match source {
            Source::Bird => {
                "the sender sets the pace here; the time target is judged on the replay"
            }
            Source::Replay(_) => "target: time <= 0.5, memory <= 1",
        };
        println!(
            "  ours/BIRD: time from Established {} (from first route {}), receiver CPU {}, memory per route {}   [{target}]",
            secs_ratio_above(ours.secs, bird.secs, min_wall),
            secs_ratio_above(ours.first_secs, bird.first_secs, min_wall),
            secs_ratio(ours.cpu_secs, bird.cpu_secs),
            ratio(ours.bytes_per_route, bird.bytes_per_route)
        );
        // Each of our runs is followed by one of BIRD's, so a pair shares the machine's state
        // of the moment: the median of the pairs' ratios leaves out most of what moves both.
        let mut paired: Vec<f64> = ours
            .runs
            .iter()
            .zip(&bird.runs)
            .filter(|(_, &b)| b >= min_wall)
            .map(|(&o, &b)| o / b)
            .collect();
        paired.sort_by(f64::total_cmp);
        if let (Some(first), Some(last)) = (paired.first(), paired.last()) {
            let quarter = paired.len() / 4;
            println!(
                "  ours/BIRD run by run (each of our runs over BIRD's next): median {:.2}, middle half {:.2}-{:.2}, all {first:.2}-{last:.2}",
                median(paired.clone()),
                paired[quarter],
                paired[paired.len() - 1 - quarter],
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Command::Reflect(reflect)) = args.command {
        return reflect::run(reflect);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bgp-bench needs root to create network namespaces");
    }
    let dir = std::env::temp_dir().join(format!("bgpb{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut names = Names {
        base: format!("bgpb{}", std::process::id()),
        next: 0,
    };
    let limit = Duration::from_secs(args.timeout);
    let result = (|| -> Result<()> {
        for &n in &args.n {
            println!("== N = {n} /32s ==");
            if !args.send_only {
                receive_side_by_side(
                    &mut names,
                    &dir,
                    n,
                    limit,
                    (args.repeat, args.replay_repeat),
                    &args.source,
                )?;
            }
            let receivers: &[Receiver] = if args.receive_only {
                &[]
            } else {
                &args.send_to
            };
            for &receiver in receivers {
                let rname = if receiver == Receiver::GoBgp {
                    "GoBGP"
                } else {
                    "BIRD"
                };
                let (mut ours, mut bird) = (Vec::new(), Vec::new());
                for _ in 0..args.repeat {
                    ours.push(sending(&mut names, &dir, n, limit, receiver, true)?);
                    bird.push(sending(&mut names, &dir, n, limit, receiver, false)?);
                }
                let show = |u: Option<u64>| u.map_or("n/a".to_string(), |u| u.to_string());
                println!("sending to {rname}: each sender first holds its N routes, then its session to the receiver is added (ours) or enabled (BIRD);");
                println!(
                    "  clock: from the session Established to the receiver holding all N / from the first route the receiver holds; medians of {} runs each, alternating; UPDATEs, bytes on the wire:",
                    args.repeat
                );
                let med = |runs: &[Sending], f: &dyn Fn(&Sending) -> f64| {
                    median(runs.iter().map(f).collect())
                };
                let mut secs = Vec::new();
                for (name, runs) in [("ours", &ours), ("BIRD", &bird)] {
                    let last = runs.last().context("no sending run")?;
                    let each: Vec<String> =
                        runs.iter().map(|r| format!("{:.2}", r.secs.0)).collect();
                    let (t, first) = (med(runs, &|r| r.secs.0), med(runs, &|r| r.secs.1));
                    println!(
                        "  {name} : {t:8.2} s / {first:8.2} s   {:>8} UPDATEs  {:>11} bytes   [load {:.2} s, to Established {:.2} s; runs {} s]",
                        show(last.updates),
                        last.bytes,
                        med(runs, &|r| r.load_secs),
                        med(runs, &|r| r.setup_secs),
                        each.join(" ")
                    );
                    secs.push((t, first, last.bytes));
                }
                println!(
                    "  ours/BIRD: time {} (from first route {}), bytes {}   [target: time <= 1; 4,096-byte packing needs {} UPDATEs]",
                    secs_ratio(secs[0].0, secs[1].0),
                    secs_ratio(secs[0].1, secs[1].1),
                    ratio(secs[0].2 as f64, secs[1].2 as f64),
                    n.div_ceil(810)
                );
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

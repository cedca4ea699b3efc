//! The receiving comparison: N /32s into our speaker and into BIRD, one receiver at a time,
//! from a live BIRD sender and from that sender's stream replayed at wire speed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use super::daemons::{Bird, BirdOpts, Fabric};
use super::lab::{poll, poll_every, Daemon, Ns, Segment};
use super::replay::{self, Recording};
use super::{loaded_bird_sender, median, open_bird_session, transfer, Names, SETUP_LIMIT};

/// How often the receiving comparison asks the receiver how many routes it holds (both
/// receivers answer from a counter, so asking costs them little), with a live sender.
const RECEIVE_TICK: Duration = Duration::from_millis(10);

/// The same with a replay, whose transfers are five to ten times shorter (tens of
/// milliseconds at 100,000 routes): asked five times as often, for both receivers alike.
const REPLAY_TICK: Duration = Duration::from_millis(2);

/// Where the routes come from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A fresh BIRD sender per run.
    Bird,
    /// A BIRD sender's recorded stream, replayed at wire speed.
    Replay(&'a Arc<Recording>),
}

impl Source<'_> {
    /// How often the receiver is asked for its count.
    pub fn tick(&self) -> Duration {
        match self {
            Source::Bird => RECEIVE_TICK,
            Source::Replay(_) => REPLAY_TICK,
        }
    }
}

/// One receiver's result.
pub struct Received {
    /// Seconds until the receiver held all N: from the sender's session Established, and from
    /// the first route the receiver was seen to hold.
    secs: (f64, f64),
    /// Seconds the sender took to load its N static routes (before the session, not counted).
    load_secs: f64,
    /// Seconds from `enable` (or the replay's connect) to Established (set-up, not counted).
    setup_secs: f64,
    peak_kib: u64,
    base_kib: u64,
    /// CPU the receiver spent from `enable` to holding all N: its own cost, whatever the
    /// sender's pace.
    cpu_secs: f64,
    /// CPU the sender spent over the same span: near the wall time, the sender set the pace
    /// (none for a replay: its writes cost the kernel's copy and nothing else).
    sender_cpu_secs: Option<f64>,
}

/// A receiver under test, passive, at 10.0.0.2 (AS 65020), expecting its sender at 10.0.0.1
/// (AS 65010).
enum Under {
    Ours(Fabric),
    Bird(Bird),
}

impl Under {
    fn start(ns: &Ns, dir: &std::path::Path, ours: bool) -> Result<Under> {
        if ours {
            return Ok(Under::Ours(Fabric::start(
                ns,
                dir,
                "recv-ours",
                json!({"local_as": 65020, "router_id": "10.0.0.2", "listen": "10.0.0.2:179", "connect_retry": 1,
                       "peers": [{"address": "10.0.0.1", "peer_as": 65010, "families": ["Ipv4"], "passive": true}]}),
                json!([]),
            )?));
        }
        let b = Bird::start(
            ns,
            dir,
            "recv-bird",
            "10.0.0.2",
            65020,
            &[("10.0.0.1", 65010)],
            BirdOpts {
                passive: true,
                ..BirdOpts::default()
            },
        )?;
        poll("the BIRD receiver's control socket", SETUP_LIMIT, || {
            b.cli("show status")
        })?;
        Ok(Under::Bird(b))
    }

    fn daemon(&self) -> &Daemon {
        match self {
            Under::Ours(f) => &f.daemon,
            Under::Bird(b) => &b.daemon,
        }
    }

    fn count(&self) -> Option<u64> {
        match self {
            Under::Ours(f) => f.count(),
            Under::Bird(b) => b.count(),
        }
    }

    /// Whether the receiver answers on its control socket.
    fn answers(&self) -> Option<()> {
        match self {
            Under::Ours(f) => f.count().map(|_| ()),
            Under::Bird(b) => b.cli("show status").map(|_| ()),
        }
    }

    /// BIRD is counted by its import counter: check its table itself holds them all.
    fn check_table(&self, n: u64) -> Result<()> {
        if let Under::Bird(b) = self {
            let held = b.table_count();
            if held != Some(n) {
                bail!("the BIRD receiver counted {n} routes imported but its table holds {held:?}");
            }
        }
        Ok(())
    }
}

/// N /32s from `source` into one receiver (ours or BIRD), timed from the session's Established
/// until the receiver holds all N.
///
/// A live BIRD sender starts with its BGP protocol disabled and first loads its N static
/// routes; only when its own table holds them all is the protocol enabled, so what is timed is
/// the sender dumping a ready table at its full rate and the receiver taking it in, not the
/// sender parsing its configuration. A replay writes the recorded UPDATEs as soon as the
/// session is up. Either way the receiver is passive and the sender connects, so neither
/// receiver waits on its own retry timer; the set-up is timed apart. Receivers run one after
/// the other, each with a fresh sender, so they never compete for the CPUs.
pub fn receiving(
    names: &mut Names,
    dir: &std::path::Path,
    n: u64,
    limit: Duration,
    ours: bool,
    source: Source,
) -> Result<Received> {
    let hub = names.ns()?;
    let recv_ns = names.ns()?;
    let mut seg = Segment::new(&hub, "10.0.0.1/24")?;
    seg.attach(&recv_ns, "10.0.0.2/24")?;
    let under = Under::start(&recv_ns, dir, ours)?;
    let load_start = Instant::now();
    let sender = match source {
        Source::Bird => Some(loaded_bird_sender(
            &hub,
            dir,
            ("10.0.0.1", 65010),
            ("10.0.0.2", 65020),
            n,
            limit,
        )?),
        Source::Replay(_) => None,
    };
    let load_secs = load_start.elapsed().as_secs_f64();
    // The baseline is taken once the receiver answers on its control socket, as it will on
    // every tick: a replay starts right after the receiver does, and the memory its first
    // answers touch (threads, buffers) is not the routes'.
    poll("the receiver to answer", SETUP_LIMIT, || under.answers())?;
    let base_kib = under.daemon().rss_kib().unwrap_or(0);
    let cpu_before = under.daemon().cpu_secs().unwrap_or(0.0);
    let sender_cpu_before = sender.as_ref().and_then(|s| s.daemon.cpu_secs());
    let enabled = Instant::now();
    let (start, replaying) = match (&sender, source) {
        (Some(s), _) => {
            open_bird_session(s)?;
            (Instant::now(), None)
        }
        (None, Source::Replay(rec)) => {
            let r = replay::replay(&hub, [10, 0, 0, 2].into(), rec.clone())?;
            (r.established, Some(r))
        }
        (None, Source::Bird) => bail!("no sender"),
    };
    // A BIRD sender may hold its last UPDATEs until its event loop wakes up, which it does on
    // its own only every 3 s when idle: asking it for its status on every tick keeps it awake,
    // so it sends at its full rate to the end, whichever the receiver.
    let secs = transfer(
        "the receiver to hold all routes",
        n,
        limit,
        source.tick(),
        start,
        || {
            if let Some(s) = &sender {
                let _ = s.cli("show status");
            }
            under.count()
        },
    )?;
    let peak_kib = under.daemon().peak_kib().unwrap_or(0);
    let cpu_secs = under.daemon().cpu_secs().unwrap_or(0.0) - cpu_before;
    let sender_cpu_secs = match (&sender, sender_cpu_before) {
        (Some(s), Some(before)) => s.daemon.cpu_secs().map(|c| c - before),
        _ => None,
    };
    // Checked while the session is still up: closing it withdraws everything.
    under.check_table(n)?;
    if let Some(r) = replaying {
        r.finish()?;
    }
    Ok(Received {
        secs,
        load_secs,
        setup_secs: (start - enabled).as_secs_f64(),
        peak_kib,
        base_kib,
        cpu_secs,
        sender_cpu_secs,
    })
}

/// Record what a BIRD sender, loaded as for [`receiving`], sends a receiver at 10.0.0.2.
pub fn record_bird(
    names: &mut Names,
    dir: &std::path::Path,
    n: u64,
    limit: Duration,
) -> Result<Arc<Recording>> {
    let hub = names.ns()?;
    let recv_ns = names.ns()?;
    let mut seg = Segment::new(&hub, "10.0.0.1/24")?;
    seg.attach(&recv_ns, "10.0.0.2/24")?;
    let recorder = replay::record(&recv_ns, [10, 0, 0, 2].into(), 65020, n)?;
    let sender = loaded_bird_sender(
        &hub,
        dir,
        ("10.0.0.1", 65010),
        ("10.0.0.2", 65020),
        n,
        limit,
    )?;
    open_bird_session(&sender)?;
    // Kept awake as in `receiving` until the recorder has everything.
    poll_every(
        "the recorder to hold the sender's table",
        limit,
        RECEIVE_TICK,
        || {
            let _ = sender.cli("show status");
            recorder.is_finished().then_some(())
        },
    )?;
    match recorder.join() {
        Ok(rec) => Ok(Arc::new(rec?)),
        Err(_) => bail!("the recorder thread panicked"),
    }
}

/// The median of each figure over one receiver's runs.
pub struct Summary {
    pub secs: f64,
    pub first_secs: f64,
    pub peak_kib: f64,
    pub bytes_per_route: f64,
    pub cpu_secs: f64,
    pub sender_cpu_secs: Option<f64>,
    pub load_secs: f64,
    pub setup_secs: f64,
    /// Each run's time from Established, in run order.
    pub runs: Vec<f64>,
}

impl Summary {
    pub fn of(runs: &[Received], n: u64) -> Summary {
        let m = |f: &dyn Fn(&Received) -> f64| median(runs.iter().map(f).collect());
        let sender_cpu: Vec<f64> = runs.iter().filter_map(|r| r.sender_cpu_secs).collect();
        Summary {
            secs: m(&|r| r.secs.0),
            first_secs: m(&|r| r.secs.1),
            peak_kib: m(&|r| r.peak_kib as f64),
            bytes_per_route: m(&|r| {
                (r.peak_kib.saturating_sub(r.base_kib) * 1024) as f64 / n.max(1) as f64
            }),
            cpu_secs: m(&|r| r.cpu_secs),
            sender_cpu_secs: (!sender_cpu.is_empty()).then(|| median(sender_cpu)),
            load_secs: m(&|r| r.load_secs),
            setup_secs: m(&|r| r.setup_secs),
            runs: runs.iter().map(|r| r.secs.0).collect(),
        }
    }
}

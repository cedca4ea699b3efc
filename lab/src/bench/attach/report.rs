//! The table `lab bench attach` prints: p50/p99 per measure for ours and the baseline, the
//! ratios baseline/ours, the total times, losses, and the targets checked.

use std::time::Duration;

use super::rib::Cost;
use super::stats::{ms, summarize, Sample, Summary};
use super::Side;

/// Picks one measure out of a sample.
type Measure = fn(&Sample) -> Option<Duration>;

pub struct Setup<'a> {
    pub n: usize,
    pub batch: usize,
    pub host: &'a str,
    /// All of ours ran before the baseline (else their batches alternated).
    pub sequential: bool,
    /// contivk8s runs without the dynamic loader.
    pub plugin_static: bool,
    pub poll_every: Duration,
    pub observer: Cost,
    pub ours: &'a Side,
    pub baseline: &'a Side,
}

fn cell(s: Option<Summary>) -> String {
    match s {
        Some(s) => format!("{:>8.1} {:>8.1}", ms(s.p50), ms(s.p99)),
        None => format!("{:>8} {:>8}", "-", "-"),
    }
}

fn ratio(base: Option<Summary>, ours: Option<Summary>) -> String {
    match (base, ours) {
        (Some(b), Some(o)) if !o.p50.is_zero() && !o.p99.is_zero() => format!(
            "{:>7.2}x {:>7.2}x",
            b.p50.as_secs_f64() / o.p50.as_secs_f64(),
            b.p99.as_secs_f64() / o.p99.as_secs_f64()
        ),
        _ => format!("{:>8} {:>8}", "-", "-"),
    }
}

fn lost(side: &Side, pick: Measure) -> usize {
    side.failures.len() + side.samples.iter().filter(|s| pick(s).is_none()).count()
}

pub fn print(s: &Setup) {
    let measures: [(&str, Measure); 3] = [
        ("attach call returns", |x| Some(x.call)),
        ("-> /32 in tor1's RIB", |x| x.rib),
        ("-> first ping, rack 2", |x| x.ping),
    ];
    println!(
        "\nlab bench attach: {} containers per side, {} at a time ({}); ours on {} (contivk8s \
         ADD, {} linked), baseline on host5 (ip script + BIRD kernel learn, scan time 2)",
        s.n,
        s.batch,
        if s.sequential {
            "ours first, then the baseline"
        } else {
            "the sides' batches in turn"
        },
        s.host,
        if s.plugin_static {
            "statically"
        } else {
            "dynamically"
        }
    );
    let rib = match s.observer {
        Cost::Polls { polls, mean } => format!(
            "tor1 (BIRD) polled over its control socket every {} ms ({polls} polls, {:.2} ms each)",
            s.poll_every.as_millis(),
            ms(mean)
        ),
        Cost::Notifications { routes } => format!(
            "tor1's kernel routes, which its BIRD installs from the RIB, watched over netlink \
             ({routes} route notifications)"
        ),
    };
    println!(
        "RIB: {rib}; ping: from a container on host3, `ping -c 1 -W 0.1` every 5 ms until \
         answered"
    );
    println!(
        "\n{:<24} {:>17}   {:>17}   {:>17}   {:>13}",
        "ms from the attach call", "ours", "baseline", "baseline/ours", "lost o / b"
    );
    println!(
        "{:<24} {:>8} {:>8}   {:>8} {:>8}   {:>8} {:>8}",
        "", "p50", "p99", "p50", "p99", "p50", "p99"
    );
    let mut ours_rib = None;
    let mut base_rib = None;
    for (name, pick) in measures {
        let o = summarize(s.ours.samples.iter().filter_map(pick));
        let b = summarize(s.baseline.samples.iter().filter_map(pick));
        if name.contains("RIB") {
            (ours_rib, base_rib) = (o, b);
        }
        println!(
            "{name:<24} {}   {}   {}   {:>6} / {}",
            cell(o),
            cell(b),
            ratio(b, o),
            lost(s.ours, pick),
            lost(s.baseline, pick)
        );
    }
    println!(
        "{:<24} {:>8.1} s {:>17.1} s",
        "total time",
        s.ours.total.as_secs_f64(),
        s.baseline.total.as_secs_f64()
    );
    for (side, f) in [
        ("ours", &s.ours.failures),
        ("baseline", &s.baseline.failures),
    ] {
        for e in f.iter().take(5) {
            println!("{side}: failed: {e}");
        }
    }
    if let Some(o) = ours_rib {
        let speedup = base_rib.map(|b| b.p50.as_secs_f64() / o.p50.as_secs_f64().max(1e-9));
        println!(
            "\ntargets (issue 5): RIB p50 < 50 ms: {} ({:.1}); RIB p99 < 250 ms: {} ({:.1}); \
             >= 10x the baseline at p50: {} ({})",
            yes(o.p50 < Duration::from_millis(50)),
            ms(o.p50),
            yes(o.p99 < Duration::from_millis(250)),
            ms(o.p99),
            yes(speedup.is_some_and(|x| x >= 10.0)),
            speedup.map_or("-".into(), |x| format!("{x:.2}x")),
        );
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "met"
    } else {
        "NOT met"
    }
}

//! Latency samples of `lab bench attach`: per-container results and their percentiles
//! (nearest rank), formatted in milliseconds.

use std::time::Duration;

/// One container's attach, measured from the start of the attach call.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Until the attach call (CNI ADD or the wiring script) returned.
    pub call: Duration,
    /// Until the /32 was seen in the ToR's RIB (None: not within the timeout).
    pub rib: Option<Duration>,
    /// Until the first answered ping from the other rack (None: not within the timeout).
    pub ping: Option<Duration>,
}

/// p50 and p99 of a set of durations.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50: Duration,
    pub p99: Duration,
}

/// The nearest-rank percentile `p` (0..=1) of sorted samples.
fn nearest_rank(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(samples: impl IntoIterator<Item = Duration>) -> Option<Summary> {
    let mut v: Vec<Duration> = samples.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort();
    Some(Summary {
        p50: nearest_rank(&v, 0.50),
        p99: nearest_rank(&v, 0.99),
    })
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let s = summarize((1..=200).map(Duration::from_millis)).expect("samples");
        assert_eq!(s.p50, Duration::from_millis(100));
        assert_eq!(s.p99, Duration::from_millis(198));
        let one = summarize([Duration::from_millis(7)]).expect("one sample");
        assert_eq!(
            (one.p50, one.p99),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
        assert!(summarize(Vec::new()).is_none());
    }
}

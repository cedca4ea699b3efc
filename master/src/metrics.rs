//! Prometheus metrics: requests and latencies by route and status code, accepted connections,
//! write conflicts, leadership.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub code: u16,
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: LatencyFamily,
    pub write_conflicts: Counter,
    /// TCP connections the REST listener accepted (HTTP/1.1 and HTTP/2 alike).
    pub connections: Counter,
    /// 1 while this master leads, else 0.
    pub leader: Gauge,
    /// Times this master became or stopped being the leader.
    pub leader_changes: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s: a write is about one fsync, a read far less.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.00005, 2.0, 16,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let write_conflicts = Counter::default();
        let connections = Counter::default();
        let leader = Gauge::default();
        let leader_changes = Counter::default();
        registry.register(
            "netmaster_http_requests",
            "HTTP requests by route and status code",
            requests.clone(),
        );
        registry.register(
            "netmaster_http_request_duration_seconds",
            "HTTP request latency by route and status code",
            latency.clone(),
        );
        registry.register(
            "netmaster_store_write_conflicts",
            "Writes re-planned because another writer changed a compared key",
            write_conflicts.clone(),
        );
        registry.register(
            "netmaster_http_connections",
            "TCP connections accepted by the REST listener",
            connections.clone(),
        );
        registry.register(
            "netmaster_leader",
            "1 while this master is the leader (runs the leader-only jobs), else 0",
            leader.clone(),
        );
        registry.register(
            "netmaster_leader_changes",
            "Times this master became or stopped being the leader",
            leader_changes.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            write_conflicts,
            connections,
            leader,
            leader_changes,
        }
    }
}

impl Metrics {
    pub fn observe(&self, labels: RequestLabels, seconds: f64) {
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "encoding metrics failed");
        }
        out
    }
}

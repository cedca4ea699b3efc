//! `/metrics` in Prometheus text format: after a known set of requests, request counts and
//! latency histograms labelled by method, route and status code match those requests exactly.

mod common;

use common::{Backend, Fixture};
use serde_json::json;
use std::collections::BTreeMap;

/// One sample line: metric name, its labels, its value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// Parses the text format's sample lines (`name{a="x",b="y"} value`); comments are skipped.
fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                let labels = inner
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair
                            .split_once('=')
                            .unwrap_or_else(|| panic!("bad label in {line:?}"));
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        out.insert((name, labels), value);
    }
    out
}

fn labels(method: &str, route: &str, code: u16) -> BTreeMap<String, String> {
    [
        ("method", method.to_string()),
        ("route", route.to_string()),
        ("code", code.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn value(samples: &Samples, name: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
    samples.get(&(name.to_string(), labels.clone())).copied()
}

const REQUESTS: &str = "netmaster_http_requests_total";
const LATENCY: &str = "netmaster_http_request_duration_seconds";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_and_latencies_by_route_and_code_match_the_requests_made() {
    let fixture = Fixture::new(Backend::Embedded);
    let m = fixture.master().await;
    // (method, route label, code) -> how many requests of that kind this test makes.
    let mut made: BTreeMap<(&str, &str, u16), u64> = BTreeMap::new();
    // The test master's own login, as the first admin.
    made.insert(("POST", "/api/v1/auth_proxy/login", 200), 1);
    for _ in 0..7 {
        assert_eq!(m.get("/api/v1/tenants/").await.0, 200);
    }
    made.insert(("GET", "/api/v1/{coll}", 200), 7);
    for i in 0..3 {
        assert_eq!(m.get(&format!("/api/v1/tenants/nope{i}/")).await.0, 404);
    }
    made.insert(("GET", "/api/v1/{coll}/{key}", 404), 3);
    for i in 0..4 {
        m.create(&format!("/api/v1/policys/default:p{i}/"), json!({}))
            .await;
    }
    made.insert(("POST", "/api/v1/{coll}/{key}", 200), 4);
    for _ in 0..2 {
        let (s, _) = m
            .post("/api/v1/networks/default:bad/", json!({"subnet": "x"}))
            .await;
        assert_eq!(s, 422);
    }
    made.insert(("POST", "/api/v1/{coll}/{key}", 422), 2);
    let (s, _) = m.delete("/api/v1/policys/default:p0/").await;
    assert_eq!(s, 200);
    made.insert(("DELETE", "/api/v1/{coll}/{key}", 200), 1);
    let (s, _) = m
        .post(
            "/api/v1/agent/allocate",
            json!({"network": "default:none", "owner": "o"}),
        )
        .await;
    assert_eq!(s, 404);
    made.insert(("POST", "/api/v1/agent/allocate", 404), 1);
    assert_eq!(m.get("/no/such/route").await.0, 404);
    made.insert(("GET", "unmatched", 404), 1);

    let (s, media, resp) = m.get_response("/metrics").await;
    assert_eq!(s, 200);
    let text = resp.text().await.expect("metrics text");
    assert!(media.starts_with("text/plain"), "{media}");
    let samples = parse(&text);
    assert!(
        text.contains(&format!("# TYPE {LATENCY} histogram")),
        "{text}"
    );

    for ((method, route, code), n) in &made {
        let l = labels(method, route, *code);
        let what = format!("{method} {route} {code}\n{text}");
        assert_eq!(
            value(&samples, REQUESTS, &l),
            Some(*n as f64),
            "count of {what}"
        );
        assert_eq!(
            value(&samples, &format!("{LATENCY}_count"), &l),
            Some(*n as f64),
            "histogram count of {what}"
        );
        let sum = value(&samples, &format!("{LATENCY}_sum"), &l).expect("a latency sum");
        assert!(
            sum > 0.0 && sum < *n as f64 * 10.0,
            "latency sum {sum} of {what}"
        );
        // Buckets are cumulative: never decreasing with `le`, ending at the count.
        let mut buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|((name, bl), _)| {
                name == &format!("{LATENCY}_bucket")
                    && bl.iter().filter(|(k, _)| *k != "le").eq(l.iter())
            })
            .map(|((_, bl), v)| {
                let le = bl.get("le").expect("le label");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le is a number")
                };
                (le, *v)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.len() > 5, "buckets of {what}");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "buckets decrease: {buckets:?}"
        );
        assert_eq!(
            buckets.last().map(|b| (b.0, b.1)),
            Some((f64::INFINITY, *n as f64))
        );
    }
    // No other request was counted: the totals add up to the requests made.
    let counted: f64 = samples
        .iter()
        .filter(|((name, _), _)| name == REQUESTS)
        .map(|(_, v)| v)
        .sum();
    assert_eq!(counted, made.values().sum::<u64>() as f64, "{text}");
    assert!(
        value(
            &samples,
            "netmaster_store_write_conflicts_total",
            &BTreeMap::new()
        )
        .is_some(),
        "{text}"
    );

    // The scrape itself is counted once it has been answered.
    let text = m.get("/metrics").await.1;
    let samples = parse(text.as_str().expect("text"));
    assert_eq!(
        value(&samples, REQUESTS, &labels("GET", "/metrics", 200)),
        Some(1.0)
    );
}

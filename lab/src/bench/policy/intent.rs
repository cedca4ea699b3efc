//! The intent `lab bench policy` writes: the network, G groups each with its own policy, and
//! R rules per policy mixing in/out, tcp/udp ports and from/to groups; written through the
//! master's REST API (TLS, as admin with the token lab got at deploy) from threads in the
//! master's namespace, either over one HTTP/2 connection with many requests in flight or over
//! several HTTP/1.1 keep-alive connections;
//! and the flow count a rules × endpoints expansion of it would need (pipeline-bench's formula).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use lab::auth::Access;

use crate::bench::attach::fabric::in_netns;
use crate::bench::h2::H2;

pub const NETWORK: &str = "default-net";
pub const SUBNET: &str = "10.1.0.0/20";
const GATEWAY: &str = "10.1.0.1";
/// The port the probe server listens on; no generated rule names it.
pub const PROBE_PORT: u16 = 9999;

pub fn group(g: usize) -> String {
    format!("g{g}")
}

fn policy(g: usize) -> String {
    format!("p{g}")
}

/// One REST write: the path below `/api/v1/` and the body.
pub struct Write {
    pub path: String,
    pub body: Value,
}

/// The network, then G policies, then G groups each bound to its policy.
pub fn setup(groups: usize) -> Vec<Write> {
    let mut writes = vec![Write {
        path: format!("networks/default:{NETWORK}"),
        body: json!({
            "nwType": "data",
            "encap": "vxlan",
            "subnet": SUBNET,
            "gateway": GATEWAY,
        }),
    }];
    writes.extend((0..groups).map(|g| Write {
        path: format!("policys/default:{}", policy(g)),
        body: json!({}),
    }));
    writes.extend((0..groups).map(|g| Write {
        path: format!("endpointGroups/default:{}", group(g)),
        body: json!({"networkName": NETWORK, "policies": [policy(g)]}),
    }));
    writes
}

/// The second tenant of the isolation comparison: its network (apart from default's, as
/// native L3 requires) and G groups each with an empty policy of its own.
pub const TENANT2: &str = "t2";
pub const NETWORK2: &str = "t2-net";

pub fn setup_tenant2(groups: usize) -> Vec<Write> {
    let mut writes = vec![
        Write {
            path: format!("tenants/{TENANT2}"),
            body: json!({}),
        },
        Write {
            path: format!("networks/{TENANT2}:{NETWORK2}"),
            body: json!({"subnet": "10.2.0.0/20", "gateway": "10.2.0.1"}),
        },
    ];
    writes.extend((0..groups).map(|g| Write {
        path: format!("policys/{TENANT2}:{}", policy(g)),
        body: json!({}),
    }));
    writes.extend((0..groups).map(|g| Write {
        path: format!("endpointGroups/{TENANT2}:{}", group(g)),
        body: json!({"networkName": NETWORK2, "policies": [policy(g)]}),
    }));
    writes
}

/// Rule `i` of group `g`'s policy: even ids `in`, odd `out`; every third udp, else tcp; a port
/// of its own (1000..); the first six name a peer group (from/to by direction); every fifth
/// denies. Priorities spread 1..=10. The port is never [`PROBE_PORT`].
pub struct RuleSpec {
    pub g: usize,
    pub peer: Option<usize>,
}

pub fn rule(g: usize, i: usize, groups: usize) -> (RuleSpec, Write) {
    let inbound = i.is_multiple_of(2);
    let peer = (i < 6).then_some((g + i + 1) % groups);
    let mut body = json!({
        "direction": if inbound { "in" } else { "out" },
        "protocol": if i % 3 == 2 { "udp" } else { "tcp" },
        "port": 1000 + (g * 10 + i) % 8000,
        "action": if i % 5 == 4 { "deny" } else { "allow" },
        "priority": 1 + i % 10,
    });
    if let (Some(p), Some(obj)) = (peer, body.as_object_mut()) {
        let field = if inbound {
            "fromEndpointGroup"
        } else {
            "toEndpointGroup"
        };
        obj.insert(field.into(), json!(group(p)));
    }
    let write = Write {
        path: format!("rules/default:{}:{}", policy(g), i + 1),
        body,
    };
    (RuleSpec { g, peer }, write)
}

/// Flows a per-endpoint expansion needs (pipeline-bench's formula): each rule × its group's
/// local endpoints × the peer group's endpoints (1 without a peer group).
pub fn expansion(rules: &[RuleSpec], members: impl Fn(usize) -> u64) -> u64 {
    rules
        .iter()
        .map(|r| members(r.g) * r.peer.map_or(1, &members))
        .sum()
}

/// The deny rule of the one-rule change: in, tcp, the probe port, on `g`'s policy.
pub fn probe_deny(g: usize) -> Write {
    Write {
        path: format!("rules/default:{}:probe-deny", policy(g)),
        body: json!({
            "direction": "in",
            "protocol": "tcp",
            "port": PROBE_PORT,
            "action": "deny",
            "priority": 100,
        }),
    }
}

fn check(path: &str, (status, text): (u16, String)) -> Result<()> {
    if !(200..300).contains(&status) {
        bail!("{path}: {status} {text}");
    }
    Ok(())
}

/// A keep-alive REST client living in the master's namespace's network (opened by a thread
/// that entered it: the socket stays there).
pub struct Client {
    agent: ureq::Agent,
    access: Access,
}

impl Client {
    pub fn new(access: &Access) -> Result<Client> {
        Ok(Client {
            agent: access.agent(Duration::from_secs(30))?,
            access: access.clone(),
        })
    }

    pub fn post(&self, w: &Write) -> Result<()> {
        let path = format!("/api/v1/{}/", w.path);
        let answer = self
            .access
            .request(&self.agent, "POST", &path, Some(&w.body.to_string()))
            .with_context(|| format!("POST {path}"))?;
        check(&w.path, answer)
    }

    pub fn delete(&self, path: &str) -> Result<()> {
        let url = format!("/api/v1/{path}/");
        let answer = self
            .access
            .request(&self.agent, "DELETE", &url, None)
            .with_context(|| format!("DELETE {url}"))?;
        check(path, answer)
    }

    /// A GET that opens the connection before a clock starts.
    pub fn warm(&self) -> Result<()> {
        let answer = self
            .access
            .request(&self.agent, "GET", "/api/v1/tenants/", None)
            .context("GET /api/v1/tenants/")?;
        check("tenants", answer)
    }
}

/// Writes `writes` over `conns` keep-alive connections (client c takes c, c + conns, ...),
/// each from a thread in the master's namespace; returns when all answered, with the instant
/// the first write started.
pub fn write_all(netns: &str, access: &Access, writes: &[Write], conns: usize) -> Result<Instant> {
    let conns = conns.max(1);
    let barrier = std::sync::Barrier::new(conns);
    let results: Vec<Result<Instant>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|c| {
                let barrier = &barrier;
                s.spawn(move || -> Result<Instant> {
                    in_netns(netns, || -> Result<Instant> {
                        let client = Client::new(access);
                        let warm = client.and_then(|c| c.warm().map(|()| c));
                        barrier.wait(); // also on failure: the others must not wait forever
                        let client = warm?;
                        let started = Instant::now();
                        for w in writes.iter().skip(c).step_by(conns) {
                            client.post(w)?;
                        }
                        Ok(started)
                    })?
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("a REST client panicked")))
            .collect()
    });
    let mut first: Option<Instant> = None;
    for r in results {
        let t = r?;
        first = Some(first.map_or(t, |f| f.min(t)));
    }
    first.context("no REST client ran")
}

/// Writes `writes` over one HTTP/2 connection (TLS with ALPN h2 to the lab's master) with
/// `streams` requests in flight (worker w takes w, w + streams, ...), all driven by one thread in the
/// master's namespace (a current-thread runtime: the socket is opened there and stays there);
/// returns when all answered, with the instant the first write started.
pub fn write_all_h2(
    netns: &str,
    access: &Access,
    writes: &[Write],
    streams: usize,
) -> Result<Instant> {
    let streams = streams.max(1);
    in_netns(netns, || -> Result<Instant> {
        crate::bench::runtime()?.block_on(async {
            let conn = H2::connect(access).await?;
            // The connection works before the clock starts.
            conn.get("/api/v1/tenants/").await?;
            let started = Instant::now();
            let workers = (0..streams).map(|w| {
                let conn = conn.clone();
                async move {
                    for write in writes.iter().skip(w).step_by(streams) {
                        let path = format!("/api/v1/{}/", write.path);
                        conn.post(&path, &write.body.to_string()).await?;
                    }
                    anyhow::Ok(())
                }
            });
            futures::future::try_join_all(workers).await?;
            Ok(started)
        })
    })?
}

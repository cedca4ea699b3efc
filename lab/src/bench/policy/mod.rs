//! `lab bench policy`: how fast group-based policy reaches a real host's OVS. On the
//! bench-policy lab (real netmaster, one real netplugin host with its OVS): G groups each with
//! its own policy, N endpoints attached through `contivk8s` with the group label, then R rules
//! per policy written through the REST API as admin over TLS, as the lab's master serves it
//! (one HTTP/2 connection with many requests in flight, or several HTTP/1.1 connections; every
//! request with the token lab got at deploy); the time from the first rule write to the last
//! flow installed (the policy tables' flow count polled over one OpenFlow connection until
//! stable),
//! the REST time alone, the flows installed and a rules × endpoints expansion's count. Then,
//! between a client and an echo server, a deny rule added and removed repeatedly: the time
//! until the probe's answer changes, p50/p99.

mod flows;
mod intent;
mod probe;

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use lab::auth::Access;

use super::attach::fabric::{in_netns, Fabric, Namespaces};
use super::attach::stats::{ms, summarize};
use super::attach::{check_stop, ours, preflight_for, run_batch, watch_signals};

const FILES: [(&str, &str); 1] = [(
    "bench-policy.clab.yml",
    include_str!("../../../topologies/bench-policy.clab.yml"),
)];
const LAB: &str = "bench-policy";
const HOST: &str = "host1";
/// Targets of issue 6.
const FULL_TARGET: Duration = Duration::from_secs(1);
const CHANGE_TARGET: Duration = Duration::from_millis(100);
/// Issue 15: tenant isolation may cost at most 10% of the time to enforce policy.
const ISOLATION_TARGET: f64 = 1.10;

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// Local endpoints on the host (spread over the groups round-robin).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(2..=2000))]
    pub endpoints: u16,
    /// Groups, each with its own policy.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(2..=500))]
    pub groups: u16,
    /// Rules per policy.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub rules: u16,
    /// Concurrent `contivk8s` ADDs.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub batch: u16,
    /// Requests in flight on the one HTTP/2 connection (TLS, ALPN h2) writing the rules (0: write
    /// them over HTTP/1.1 instead, on `--conns` connections).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(0..=256))]
    pub streams: u16,
    /// Keep-alive HTTP/1.1 connections writing the rules when `--streams 0`.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub conns: u16,
    /// Deny rule add/remove rounds of the one-rule change.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub changes: u16,
    /// Milliseconds the flow count must stay unchanged to count as installed.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=60000))]
    pub quiet_ms: u64,
    /// Endpoints of a second tenant (its own network and groups) attached after the first
    /// measurement, which is then repeated beside them: the cost of tenant isolation in the
    /// same run (0: no second measurement).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub tenant2_endpoints: u16,
    /// Milliseconds between a flow-count reply and the next aggregate request on the poller's
    /// OpenFlow connection (0: back to back).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub poll_ms: u64,
}

fn preflight() -> Result<std::path::PathBuf> {
    let [_, _, contivk8s] = preflight_for(
        "policy",
        "network namespaces, OVS",
        &[
            ("ip", "iproute2"),
            ("busybox", "busybox-static"),
            ("ovs-vswitchd", "openvswitch-switch"),
        ],
    )?;
    Ok(contivk8s)
}

fn say(m: &str) {
    eprintln!("lab bench policy: {m}");
}

pub fn run(args: &PolicyArgs) -> Result<i32> {
    let contivk8s = preflight()?;
    watch_signals()?;
    let (n, groups, per) = (
        usize::from(args.endpoints),
        usize::from(args.groups),
        usize::from(args.rules),
    );
    say(&format!("deploying {LAB}"));
    let fabric = Fabric::deploy_files(&FILES)?;
    let namespaces = Namespaces::default();
    let master = fabric.netns("master1");
    let access = fabric.admin_access()?;
    let mgmt = fabric.run_dir(HOST).join("ovs/br-int.mgmt");
    check_stop()?;
    intent::write_all(&master, &access, &intent::setup(groups), 1).context("writing groups")?;
    let cni = ours::Cni {
        plugin: contivk8s,
        socket: fabric.run_dir(HOST).join("netplugin.sock"),
    };

    say(&format!(
        "attaching {n} endpoints in {groups} groups, {} at a time",
        args.batch
    ));
    let t = Instant::now();
    attach_all(
        &cni,
        &namespaces,
        Tenant::Default,
        n,
        groups,
        usize::from(args.batch),
    )?;
    let attach_time = t.elapsed();
    let server_ns = namespaces.add(&format!("{LAB}-server"))?;
    let server_ip = cni.add_in_group("server", &server_ns, Some(&intent::group(0)))?;
    let client_ns = namespaces.add(&format!("{LAB}-client"))?;
    cni.add_in_group("client", &client_ns, Some(&intent::group(1)))?;
    let _server = probe::Server::start(&server_ns, intent::PROBE_PORT)?;
    let quiet = Duration::from_millis(args.quiet_ms);
    let poll_every = Duration::from_millis(args.poll_ms);
    // Rules only ever change the policy tables.
    let policy_tables = vec![
        pipeline::layout::table::EGRESS,
        pipeline::layout::table::INGRESS,
    ];
    let poller = flows::Poller::start(
        mgmt.clone(),
        policy_tables,
        poll_every,
        Duration::from_secs(900),
    )?;
    poller.settle(Instant::now(), quiet, Duration::from_secs(120))?;
    let flows_now = flows::count(&mgmt)?;
    say(&format!(
        "{} endpoints attached in {:.1} s; {flows_now} flows before the rules",
        n + 2,
        attach_time.as_secs_f64()
    ));

    let mut specs = Vec::new();
    let mut writes = Vec::new();
    for g in 0..groups {
        for i in 0..per {
            let (spec, write) = intent::rule(g, i, groups);
            specs.push(spec);
            writes.push(write);
        }
    }
    let writers = match args.streams {
        0 => Writers::Http1 { conns: args.conns },
        streams => Writers::Http2 { streams },
    };
    let probe = Probe {
        master: &master,
        access: &access,
        client_ns: &client_ns,
        server: server_ip,
        rounds: usize::from(args.changes),
    };
    let one = measure(&poller, &mgmt, &writes, writers, quiet, &probe)?;

    let two = if args.tenant2_endpoints > 0 {
        let m = usize::from(args.tenant2_endpoints);
        let groups2 = m.div_ceil(10).min(groups);
        say(&format!(
            "second tenant: removing the rules, then {m} endpoints of tenant {} in {groups2} \
             groups",
            intent::TENANT2
        ));
        remove_all(&master, &access, &writes)?;
        poller.settle(Instant::now(), quiet, Duration::from_secs(120))?;
        intent::write_all(&master, &access, &intent::setup_tenant2(groups2), 1)
            .context("writing the second tenant")?;
        attach_all(
            &cni,
            &namespaces,
            Tenant::Second,
            m,
            groups2,
            usize::from(args.batch),
        )?;
        poller.settle(Instant::now(), quiet, Duration::from_secs(120))?;
        Some(measure(&poller, &mgmt, &writes, writers, quiet, &probe)?)
    } else {
        None
    };
    let poll_cost = poller.stop()?;
    // Endpoints per group: round-robin, plus the server in g0 and the client in g1.
    let members = |g: usize| -> u64 {
        let base = n / groups + usize::from(g < n % groups);
        (base + usize::from(g < 2)) as u64
    };
    let expansion = intent::expansion(&specs, members);
    report(&Report {
        n,
        groups,
        rules: writes.len(),
        writers,
        poll_every,
        poll_cost,
        expansion,
        quiet,
        one: &one,
        two: two.as_ref(),
        tenant2_endpoints: usize::from(args.tenant2_endpoints),
    });
    Ok(0)
}

/// What the one-rule change needs: where to write, who probes whom, how often.
struct Probe<'a> {
    master: &'a str,
    access: &'a Access,
    client_ns: &'a str,
    server: Ipv4Addr,
    rounds: usize,
}

/// One measurement: the full program, then the one-rule change.
struct Measured {
    written: Duration,
    full: Duration,
    before: u64,
    after: u64,
    after_changes: u64,
    changes: Vec<Change>,
}

/// Writes every rule and times it to the last flow, then adds and removes the probe's deny
/// rule.
fn measure(
    poller: &flows::Poller,
    mgmt: &std::path::Path,
    writes: &[intent::Write],
    writers: Writers,
    quiet: Duration,
    probe: &Probe,
) -> Result<Measured> {
    let before = flows::count(mgmt)?;
    say(&format!(
        "{before} flows; writing {} rules {}",
        writes.len(),
        writers.describe()
    ));
    let first = match writers {
        Writers::Http1 { conns } => {
            intent::write_all(probe.master, probe.access, writes, usize::from(conns))?
        }
        Writers::Http2 { streams } => {
            intent::write_all_h2(probe.master, probe.access, writes, usize::from(streams))?
        }
    };
    let written = first.elapsed();
    let (last, _) = poller.settle(Instant::now(), quiet, Duration::from_secs(300))?;
    let after = flows::count(mgmt)?;
    say(&format!(
        "one-rule change: {} rounds of deny on {}:{} and its removal",
        probe.rounds,
        probe.server,
        intent::PROBE_PORT
    ));
    let changes = one_rule_changes(probe, probe.client_ns, probe.server, probe.rounds)?;
    Ok(Measured {
        written,
        full: last.saturating_duration_since(first),
        before,
        after,
        after_changes: flows::count(mgmt)?,
        changes,
    })
}

/// Deletes every rule of `writes`, one at a time, from the master's namespace.
fn remove_all(master: &str, access: &Access, writes: &[intent::Write]) -> Result<()> {
    in_netns(master, || -> Result<()> {
        let client = intent::Client::new(access)?;
        for w in writes {
            check_stop()?;
            client.delete(&w.path)?;
        }
        Ok(())
    })?
}

/// Whose endpoints an attach makes: the default tenant's (on its default network), or the
/// second tenant's on its own network.
#[derive(Clone, Copy)]
enum Tenant {
    Default,
    Second,
}

/// Attaches `n` endpoints of `tenant`, `batch` ADDs in flight, endpoint i in the tenant's group
/// i mod `groups`.
fn attach_all(
    cni: &ours::Cni,
    namespaces: &Namespaces,
    tenant: Tenant,
    n: usize,
    groups: usize,
    batch: usize,
) -> Result<()> {
    let prefix = match tenant {
        Tenant::Default => "e",
        Tenant::Second => "t",
    };
    let names: Vec<String> = (0..n)
        .map(|i| namespaces.add(&format!("{LAB}-{prefix}{i}")))
        .collect::<Result<_>>()?;
    for (b, chunk) in names.chunks(batch.max(1)).enumerate() {
        check_stop()?;
        let results = run_batch(chunk, b * batch, |i, ns| {
            let id = format!("{prefix}{i}");
            let group = intent::group(i % groups);
            match tenant {
                Tenant::Default => cni.add_in_group(&id, ns, Some(&group)),
                Tenant::Second => cni.add_labelled(
                    &id,
                    ns,
                    &[
                        ("io.contiv.tenant", intent::TENANT2),
                        ("io.contiv.network", intent::NETWORK2),
                        ("io.contiv.net-group", &group),
                    ],
                ),
            }
        });
        for r in results {
            r?;
        }
    }
    Ok(())
}

/// One round's times from the REST write's start until the probe's answer changed.
struct Change {
    deny: Option<Duration>,
    allow: Option<Duration>,
    rest: Duration,
}

/// Adds and removes the deny rule `rounds` times; a probe thread in the client's namespace
/// answers each "wait until answered == want" request with the instant its deciding probe
/// started.
fn one_rule_changes(
    to: &Probe,
    client_ns: &str,
    server: Ipv4Addr,
    rounds: usize,
) -> Result<Vec<Change>> {
    let port = intent::PROBE_PORT;
    let limit = Duration::from_secs(5);
    let (req_tx, req_rx) = mpsc::channel::<bool>();
    let (ans_tx, ans_rx) = mpsc::channel::<Option<Instant>>();
    std::thread::scope(|s| {
        let prober = s.spawn(move || {
            in_netns(client_ns, move || {
                while let Ok(want) = req_rx.recv() {
                    let seen = probe::until(server, port, want, Instant::now() + limit);
                    if ans_tx.send(seen).is_err() {
                        break;
                    }
                }
            })
        });
        // Owns the request sender: the probe thread ends when this closure does.
        let result = in_netns(to.master, move || -> Result<Vec<Change>> {
            let client = intent::Client::new(to.access)?;
            client.warm()?;
            let ask = |want: bool| -> Result<Option<Instant>> {
                req_tx.send(want).context("probe thread gone")?;
                ans_rx.recv().context("probe thread gone")
            };
            if ask(true)?.is_none() {
                bail!("the client never reached {server}:{port} before the deny rule");
            }
            let deny = intent::probe_deny(0);
            let mut out = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                check_stop()?;
                let t0 = Instant::now();
                client.post(&deny)?;
                let rest = t0.elapsed();
                let denied = ask(false)?.map(|at| at.saturating_duration_since(t0));
                let t1 = Instant::now();
                client.delete(&deny.path)?;
                let allowed = ask(true)?.map(|at| at.saturating_duration_since(t1));
                out.push(Change {
                    deny: denied,
                    allow: allowed,
                    rest,
                });
                if denied.is_none() || allowed.is_none() {
                    break; // the state is unknown; later rounds would measure nothing
                }
            }
            Ok(out)
        });
        let probed = prober
            .join()
            .unwrap_or_else(|_| bail!("the probe thread panicked"));
        let out = result??;
        probed?;
        Ok(out)
    })
}

/// How the rules of the full program are written.
#[derive(Clone, Copy, Debug)]
enum Writers {
    /// HTTP/1.1, one request at a time on each of `conns` keep-alive connections.
    Http1 { conns: u16 },
    /// One HTTP/2 connection (TLS, ALPN h2) with `streams` requests in flight.
    Http2 { streams: u16 },
}

impl Writers {
    fn describe(self) -> String {
        match self {
            Writers::Http1 { conns } => {
                format!("over {conns} HTTP/1.1 keep-alive connection(s)")
            }
            Writers::Http2 { streams } => {
                format!("over one HTTP/2 connection (TLS, h2), {streams} in flight")
            }
        }
    }
}

struct Report<'a> {
    n: usize,
    groups: usize,
    rules: usize,
    writers: Writers,
    poll_every: Duration,
    poll_cost: flows::PollCost,
    expansion: u64,
    quiet: Duration,
    one: &'a Measured,
    two: Option<&'a Measured>,
    tenant2_endpoints: usize,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets"
    } else {
        "misses"
    }
}

/// The one-rule change's p50/p99 (deny added, deny removed, REST write alone) and the rounds
/// not seen within 5 s.
type ChangeStats = [(&'static str, Option<super::attach::stats::Summary>); 3];

fn change_stats(changes: &[Change]) -> (ChangeStats, usize) {
    let lost = changes
        .iter()
        .filter(|c| c.deny.is_none() || c.allow.is_none())
        .count();
    (
        [
            (
                "deny rule added",
                summarize(changes.iter().filter_map(|c| c.deny)),
            ),
            (
                "deny rule removed",
                summarize(changes.iter().filter_map(|c| c.allow)),
            ),
            (
                "REST write alone",
                summarize(changes.iter().map(|c| c.rest)),
            ),
        ],
        lost,
    )
}

fn report_measured(r: &Report, m: &Measured) {
    println!("Full program (from the first rule write to the last flow installed):");
    println!(
        "  REST writes        {:>9.1} ms  ({} rules {}, {:.0} rules/s)",
        ms(m.written),
        r.rules,
        r.writers.describe(),
        r.rules as f64 / m.written.as_secs_f64().max(1e-9)
    );
    println!(
        "  last flow          {:>9.1} ms  target < {} ms: {}",
        ms(m.full),
        FULL_TARGET.as_millis(),
        verdict(m.full < FULL_TARGET)
    );
    println!(
        "  flows              {} before the rules, {} after ({:+}); last flow = the last change \
         of the policy tables' flow count before it stayed unchanged for {} ms",
        m.before,
        m.after,
        m.after as i64 - m.before as i64,
        r.quiet.as_millis()
    );
    let (stats, lost) = change_stats(&m.changes);
    println!(
        "One-rule change ({} rounds, {lost} not seen within 5 s; time from the REST write's start \
         to the start of the first probe with the new answer):",
        m.changes.len()
    );
    for (name, s) in &stats {
        match s {
            Some(s) => println!(
                "  {name:<18} p50 {:>7.1} ms  p99 {:>7.1} ms",
                ms(s.p50),
                ms(s.p99)
            ),
            None => println!("  {name:<18} no samples"),
        }
    }
    if let Some(d) = &stats[0].1 {
        println!(
            "  target p99 < {} ms (rule added): {}",
            CHANGE_TARGET.as_millis(),
            verdict(d.p99 < CHANGE_TARGET && lost == 0)
        );
    }
    println!("  flows after the changes: {}", m.after_changes);
}

fn report(r: &Report) {
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!(
        "lab bench policy: {} groups, {} local endpoints (+ client and server) on one host, \
         {} rules; {cores} CPU(s) visible",
        r.groups, r.n, r.rules
    );
    report_measured(r, r.one);
    let pace = if r.poll_every.is_zero() {
        "back to back, so the resolution is one poll".to_string()
    } else {
        format!(
            "{} ms after each reply, so the resolution is about {:.2} ms",
            r.poll_every.as_millis(),
            ms(r.poll_every + r.poll_cost.mean)
        )
    };
    println!(
        "  flow count poll    {:>9.2} ms  mean of {} polls (an aggregate request per policy \
         table) over one OpenFlow connection to br-int, {pace}",
        ms(r.poll_cost.mean),
        r.poll_cost.polls
    );
    println!(
        "  expansion          {} flows for rules x endpoints (pipeline-bench's formula)",
        r.expansion
    );
    let Some(two) = r.two else { return };
    println!(
        "With a second tenant ({} endpoints of tenant {} beside them, the same rules removed and \
         written again):",
        r.tenant2_endpoints,
        intent::TENANT2
    );
    report_measured(r, two);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let full = ratio(two.full, r.one.full);
    println!("Isolation cost (with the second tenant / without; target <= {ISOLATION_TARGET:.2}):");
    println!(
        "  last flow          {full:>9.2}x  {}",
        verdict(full <= ISOLATION_TARGET)
    );
    let (with, _) = change_stats(&two.changes);
    let (without, _) = change_stats(&r.one.changes);
    for ((name, w), (_, wo)) in with.iter().take(2).zip(without.iter()) {
        if let (Some(w), Some(wo)) = (w, wo) {
            let (p50, p99) = (ratio(w.p50, wo.p50), ratio(w.p99, wo.p99));
            println!(
                "  {name:<18} p50 {p50:>5.2}x  p99 {p99:>5.2}x  {}",
                verdict(p50 <= ISOLATION_TARGET)
            );
        }
    }
}

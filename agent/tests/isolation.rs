//! Tenant isolation (issue 15) while an agent is killed and restarted: on two-rack, a
//! container of the default tenant (d1) and one of t2 (e1) on host1, and one of each on host3
//! in the other rack (d3, e3). Every 10 ms, TCP connects, UDP echoes and pings go from t2's
//! containers to d1 and from d1 to t2's containers (cross-tenant), and within each tenant
//! (e1 ↔ e3, d1 ↔ d3) as a control that the probes work; meanwhile host1's agent is killed
//! with `kill -9`, stays away for a second (tor1 loses its session), and is started again.
//! Not one cross-tenant probe may get through (nor any packet of one reach the other end:
//! every container counts what arrives, by source, with raw sockets), before, during or after
//! the restart; nearly every same-tenant probe must.

mod common;
mod stream;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{config, poll, Fabric};
use stream::{Flow, Kind, Outcome, Sink};

const T2: &str = "t2";
const T2_NET: &str = "t2-net";
const T2_SUBNET: &str = "10.2.2.0/24";
/// The port the sinks serve (TCP and UDP).
const PORT: u16 = 8080;
const TICK: Duration = Duration::from_millis(10);
/// Bounds of the probing: probes per flow, and the time the restart may take.
const MAX_PROBES: usize = 4000;
const RESTART_WITHIN: Duration = Duration::from_secs(20);
/// Probing before the kill and after the restarted agent has synced its flows.
const BEFORE: Duration = Duration::from_millis(1500);
/// How long the agent stays away at least (tor1 must have lost the session by then).
const AWAY: Duration = Duration::from_secs(1);
const AFTER: Duration = Duration::from_millis(2500);
/// The share of each same-tenant flow's probes that must get through.
const MIN_THROUGH: f64 = 0.9;

/// Containers: name, host, tenant, network.
const CONTAINERS: [(&str, &str, &str, &str); 4] = [
    ("d1", "host1", "default", "default-net"),
    ("e1", "host1", T2, T2_NET),
    ("d3", "host3", "default", "default-net"),
    ("e3", "host3", T2, T2_NET),
];

/// Cross-tenant flows: from t2 to d1, and from d1 to t2 (the same host and the other rack).
const CROSS: [(&str, &str); 4] = [("e1", "d1"), ("e3", "d1"), ("d1", "e1"), ("d1", "e3")];
/// Same-tenant flows through host1 (the control).
const SAME: [(&str, &str); 4] = [("e3", "e1"), ("e1", "e3"), ("d3", "d1"), ("d1", "d3")];
const KINDS: [Kind; 3] = [Kind::Tcp(PORT), Kind::Udp(PORT), Kind::Ping];

struct Ctr {
    name: &'static str,
    tenant: &'static str,
    netns: String,
    ip: Ipv4Addr,
}

/// A container: its sink first (serving and counting before the container has a network, as
/// a service that starts first), then its ADD through contivk8s with Contiv's pod labels.
fn attach(
    f: &Fabric,
    (name, host, tenant, network): (&'static str, &str, &'static str, &str),
) -> (Ctr, Sink) {
    let netns = f.container_netns(name);
    let sink = Sink::start(&netns, PORT);
    let args = format!(
        "IgnoreUnknown=1;K8S_POD_NAME={name};io.contiv.tenant={tenant};io.contiv.network={network}"
    );
    let out = f.cni_raw(
        "ADD",
        host,
        &format!("ctr-{name}"),
        &netns,
        config().to_string().as_bytes(),
        &[("CNI_ARGS", &args)],
    );
    assert!(out.ok, "ADD {name} on {host}: {}", out.raw);
    let ip = Fabric::address(&out)
        .parse()
        .unwrap_or_else(|_| panic!("ADD {name}: no address in {}", out.raw));
    (
        Ctr {
            name,
            tenant,
            netns,
            ip,
        },
        sink,
    )
}

/// Whether the restarted agent's log shows its first flow sync.
fn synced(log: &std::path::Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|l| l.contains("flows synced"))
}

#[test]
fn cross_tenant_probes_never_get_through_while_an_agent_is_killed_and_restarted() {
    let f = Fabric::up("i", "");
    f.netctl(&["tenant", "create", T2]);
    f.netctl(&[
        "net",
        "create",
        "-t",
        T2,
        "--subnet",
        T2_SUBNET,
        "--gateway",
        "10.2.2.1",
        T2_NET,
    ]);
    // Declared after the fabric: the sinks stop before it is destroyed, also on a failure.
    let (ctrs, sinks): (Vec<Ctr>, Vec<Sink>) =
        CONTAINERS.into_iter().map(|spec| attach(&f, spec)).unzip();
    let by_name = |n: &str| ctrs.iter().position(|c| c.name == n).expect("container");
    for (s, d) in SAME {
        let (src, dst) = (&ctrs[by_name(s)], &ctrs[by_name(d)]);
        let ip = dst.ip.to_string();
        assert!(
            poll(Duration::from_secs(20), || f
                .ping(&src.netns, &ip)
                .then_some(()))
            .is_some(),
            "{s} cannot reach {d} ({ip}) before the restart"
        );
    }
    let flows_before = f.flows("host1");

    let pairs: Vec<(usize, usize, bool)> = CROSS
        .iter()
        .map(|p| (p, true))
        .chain(SAME.iter().map(|p| (p, false)))
        .map(|((s, d), cross)| (by_name(s), by_name(d), cross))
        .collect();
    let cells: Vec<(usize, usize, bool, Kind)> = pairs
        .iter()
        .flat_map(|&(s, d, cross)| KINDS.iter().map(move |k| (s, d, cross, *k)))
        .collect();
    let flows: Vec<Flow> = cells
        .iter()
        .map(|&(s, d, _, kind)| Flow {
            netns: ctrs[s].netns.clone(),
            dst: ctrs[d].ip,
            kind,
        })
        .collect();

    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let (outcomes, marks) = std::thread::scope(|s| {
        let probes = s.spawn(|| stream::run(&flows, start, TICK, MAX_PROBES, &stop));
        // Whatever happens below, the probes stop (the thread is joined by the scope).
        let marks = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::sleep(BEFORE);
            let killed = start.elapsed();
            let argv = f.kill_agent("host1");
            let away = poll(Duration::from_secs(5), || {
                let state = f.birdc("tor1", &["show", "protocols", "host1"]);
                (!state.contains("Established")).then_some(())
            });
            if let Some(rest) = (killed + AWAY).checked_sub(start.elapsed()) {
                std::thread::sleep(rest);
            }
            let (agent, log) = f.start_agent("host1", &argv, "netplugin-isolation.log");
            let restarted = start.elapsed();
            let back = poll(RESTART_WITHIN, || synced(&log).then(|| start.elapsed()));
            std::thread::sleep(AFTER);
            stop.store(true, Ordering::Relaxed);
            (killed, away.is_some(), restarted, back, agent, log)
        }));
        stop.store(true, Ordering::Relaxed);
        let outcomes = probes.join().expect("probes");
        (outcomes, marks)
    });
    let (killed, session_lost, restarted, back, _agent, log) =
        marks.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let end = start.elapsed();
    let back = back.unwrap_or_else(|| {
        panic!(
            "host1's restarted agent did not sync its flows within {RESTART_WITHIN:?}; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    assert!(
        session_lost,
        "tor1 kept host1's session Established 5 s after kill -9"
    );
    let syncs: Vec<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("flows synced"))
        .map(plain)
        .collect();
    eprintln!(
        "host1's agent killed at {:.2} s, started again at {:.2} s, flows synced by {:.2} s, \
         probes until {:.2} s; the restarted agent's syncs:\n{}",
        killed.as_secs_f64(),
        restarted.as_secs_f64(),
        back.as_secs_f64(),
        end.as_secs_f64(),
        syncs.join("\n")
    );

    // What arrived where, from the other tenant.
    let tenant_of = |ip: Ipv4Addr| ctrs.iter().find(|c| c.ip == ip).map(|c| c.tenant);
    let mut leaks = Vec::new();
    for (ctr, sink) in ctrs.iter().zip(&sinks) {
        let arrivals = sink.arrivals();
        for ((src, proto), n) in &arrivals {
            if tenant_of(*src).is_some_and(|t| t != ctr.tenant) {
                leaks.push(format!(
                    "{n} packets of IP protocol {proto} from {src} reached {} ({})",
                    ctr.name, ctr.ip
                ));
            }
        }
        // The counters work: the same-tenant flows' packets were counted, of each protocol.
        for (s, _) in SAME.iter().filter(|(_, d)| *d == ctr.name) {
            let src = ctrs[by_name(s)].ip;
            for proto in [1u8, 6, 17] {
                let n = arrivals.get(&(src, proto)).copied().unwrap_or(0);
                assert!(
                    n >= 100,
                    "{} counted {n} packets of IP protocol {proto} from {s} ({src}): {arrivals:?}",
                    ctr.name
                );
            }
        }
    }

    let phases = [
        ("before", Duration::ZERO, killed),
        // From the kill to the restarted agent's first flow sync.
        ("during", killed, back),
        ("after", back, end + Duration::from_secs(1)),
    ];
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (&(s, d, cross, kind), out) in cells.iter().zip(&outcomes) {
        let (src, dst) = (&ctrs[s], &ctrs[d]);
        let line = phases
            .iter()
            .map(|(name, from, to)| {
                let (sent, through) = out.between(*from, *to);
                format!("{name} {through}/{sent}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let (sent, through) = out.between(Duration::ZERO, end + Duration::from_secs(1));
        let row = format!(
            "{:<5} {} → {} {kind:<9} got through: {line}",
            if cross { "cross" } else { "same" },
            src.name,
            dst.name
        );
        report.push(row.clone());
        for (name, from, to) in &phases {
            let (sent, _) = out.between(*from, *to);
            assert!(
                sent > 0,
                "{row}: no probe sent {name} the restart (a flow that stalled tests nothing)"
            );
        }
        if cross && through > 0 {
            failures.push(format!("{row}: {}", first_through(out)));
        }
        if !cross && (through as f64) < MIN_THROUGH * sent as f64 {
            failures.push(format!(
                "{row}: fewer than {:.0} % of a same-tenant flow got through",
                MIN_THROUGH * 100.0
            ));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        failures.is_empty() && leaks.is_empty(),
        "tenant isolation across kill -9 of host1's agent:\n{}\n{}\nflows of host1 before:\n{}\n\
         now:\n{}\nlog of the restarted agent:\n{}",
        failures.join("\n"),
        leaks.join("\n"),
        flows_before.join("\n"),
        f.flows("host1").join("\n"),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The restarted agent came back to exactly the flows it had.
    let same = poll(Duration::from_secs(10), || {
        (f.flows("host1") == flows_before).then_some(())
    });
    assert!(
        same.is_some(),
        "host1's flows differ after the restart:\n{}\nbefore:\n{}",
        f.flows("host1").join("\n"),
        flows_before.join("\n")
    );
}

/// A log line without its terminal colours.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: up to and including the final letter.
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

/// When the first probe of a flow that got through was sent.
fn first_through(out: &Outcome) -> String {
    out.sent
        .iter()
        .zip(&out.through)
        .find(|(_, ok)| **ok)
        .map(|(t, _)| format!("the first sent at {:.2} s", t.as_secs_f64()))
        .unwrap_or_default()
}

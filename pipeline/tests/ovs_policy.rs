//! End to end with a real OVS (userspace datapath) and real traffic: the compiled pipeline
//! forwards, answers ARP and enforces policy exactly as the independent model of `common`
//! says, for containers on the bridge and for hosts reached through gw0. Needs root and
//! Open vSwitch; fails with a clear message otherwise.

mod common;
mod lab;

use std::net::Ipv4Addr;
use std::thread;

use common::*;
use fabric_model::Rule;
use lab::Lab;

/// The fixture's endpoints that exist in the lab, with their namespaces.
struct Fabric {
    lab: Lab,
    fx: Fixture,
    eps: Vec<(Ep, String)>,
}

fn gateway_of(ip: Ipv4Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 1)
}

/// At most this many probes run at once: the userspace datapath shares two cores with them,
/// and a probe that waits too long for its turn looks denied.
const PARALLEL_PROBES: usize = 100;

fn fabric() -> Fabric {
    let fx = Fixture::standard();
    let mut lab = Lab::new(GW_PORT, GW_MAC);
    let mut eps = Vec::new();
    for e in &fx.eps {
        let ns = match e.place {
            Place::Local(port) => lab.container(&e.name, port, e.mac(), e.ip, 24, gateway_of(e.ip)),
            // Behind the host kernel: a remote container of each tenant (ra: t1's group A, re:
            // t2's), an address of t2's network no endpoint has, and a host outside the fabric.
            Place::Remote if e.name == "ra" || e.name == "re" => lab.outside(&e.name, e.ip),
            Place::Outside => lab.outside(&e.name, e.ip),
            Place::Remote => continue,
        };
        lab.serve(&ns, &[80, 8888, 5001], &[53, 8888]);
        eps.push((e.clone(), ns));
    }
    lab.route_to_gw("10.1.0.0/16");
    lab.route_to_gw("10.2.0.0/16");
    Fabric { lab, fx, eps }
}

/// Runs `probe` from namespace `ns` to `ip`.
fn probe_ok(ns: &str, ip: Ipv4Addr, probe: Probe) -> bool {
    match probe {
        Probe::Tcp(p) => lab::tcp_ok(ns, ip, p),
        Probe::Udp(p) => lab::udp_ok(ns, ip, p),
        Probe::Ping => lab::ping_ok(ns, ip),
    }
}

/// Runs `jobs` (source namespace, destination address, probe), [`PARALLEL_PROBES`] at a
/// time; whether each got through, in order.
fn run_probes(jobs: Vec<(String, Ipv4Addr, Probe)>) -> Vec<bool> {
    let mut got = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(PARALLEL_PROBES) {
        let threads: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|(ns, ip, probe)| thread::spawn(move || probe_ok(&ns, ip, probe)))
            .collect();
        got.extend(threads.into_iter().map(|t| t.join().expect("probe thread")));
    }
    got
}

impl Fabric {
    fn apply(&self, rules: &[Rule]) {
        let compiled = pipeline::compile(&self.fx.input(rules)).expect("compile");
        self.lab.install(&compiled.flows);
    }

    fn ns(&self, name: &str) -> &str {
        &self
            .eps
            .iter()
            .find(|e| e.0.name == name)
            .expect("endpoint")
            .1
    }

    fn ep(&self, name: &str) -> &Ep {
        &self
            .eps
            .iter()
            .find(|e| e.0.name == name)
            .expect("endpoint")
            .0
    }

    /// Every source × destination pair of the lab that goes through this host's bridge.
    fn pairs(&self) -> Vec<(&Ep, &str, &Ep)> {
        let mut v = Vec::new();
        for (src, sns) in &self.eps {
            for (dst, _) in &self.eps {
                if src.name != dst.name && (src.is_local() || dst.is_local()) {
                    v.push((src, sns.as_str(), dst));
                }
            }
        }
        v
    }

    /// Probes every source × destination × probe this host routes; returns the
    /// disagreements with the model, how many probes were expected to be denied, and how many
    /// ran.
    fn probe_all(&self, rules: &[Rule]) -> (Vec<String>, usize, usize) {
        let mut jobs = Vec::new();
        let mut wants = Vec::new();
        for (src, sns, dst) in self.pairs() {
            for probe in PROBES {
                jobs.push((sns.to_string(), dst.ip, probe));
                wants.push((
                    src.name.clone(),
                    dst.name.clone(),
                    probe,
                    self.fx.allowed(rules, src, dst, probe),
                ));
            }
        }
        let total = jobs.len();
        let got = run_probes(jobs);
        let mut bad = Vec::new();
        let mut denied = 0;
        for ((src, dst, probe, want), got) in wants.into_iter().zip(got) {
            denied += usize::from(!want);
            if got != want {
                bad.push(format!(
                    "{src} -> {dst} {probe:?}: model {want}, network {got}"
                ));
            }
        }
        (bad, denied, total)
    }

    fn assert_model(&self, what: &str, rules: &[Rule]) {
        let (bad, denied, total) = self.probe_all(rules);
        assert!(
            bad.is_empty(),
            "{what}: {} of {total} probes disagree with the model:\n{}\nflows:\n{}",
            bad.len(),
            bad.join("\n"),
            self.lab.dump()
        );
        eprintln!("{what}: {total} probes agree with the model ({denied} denied)");
    }
}

/// Groups A, B, C; allow and deny at several priorities over TCP and UDP ports, ICMP,
/// networks and address ranges, in and out; then other rules, probed again.
#[test]
fn truth_table_then_rule_change() {
    let f = fabric();
    let first = vec![
        rule("pB", "1", "in", 1, "tcp", 0, "", "deny"),
        rule("pB", "2", "in", 10, "tcp", 8888, "", "allow"),
        rule("pB", "3", "in", 5, "udp", 0, "group:A", "deny"),
        rule("pA", "1", "out", 3, "icmp", 0, "net:n2", "deny"),
        rule("pA", "2", "out", 4, "udp", 8888, "ip:10.99.0.0/16", "deny"),
        rule("shared", "1", "in", 7, "tcp", 80, "ip:10.1.1.1-9", "deny"),
        rule("shared", "2", "in", 8, "tcp", 80, "group:B", "allow"),
        rule("pC", "1", "in", 2, "", 0, "ip:10.99.0.2", "deny"),
        rule("pC", "2", "in", 2, "icmp", 0, "group:A", "deny"),
    ];
    f.apply(&first);
    f.assert_model("first rules", &first);

    let second = vec![
        rule("pA", "1", "in", 1, "", 0, "", "deny"),
        rule("pA", "2", "in", 9, "tcp", 8888, "net:n1", "allow"),
        rule("pA", "3", "in", 9, "icmp", 0, "group:C", "allow"),
        rule("pB", "1", "out", 6, "tcp", 0, "group:C", "deny"),
        rule("pB", "2", "out", 6, "udp", 53, "ip:10.1.2.0/24", "deny"),
        rule("pC", "1", "out", 50, "tcp", 80, "", "deny"),
    ];
    f.apply(&second);
    f.assert_model("changed rules", &second);
}

impl Fabric {
    /// Probes `from` → `to` and `to` → `from` for every pair of names that goes through this
    /// host, every probe; returns those that got through.
    fn passing(&self, pairs: &[(&str, &str)]) -> Vec<String> {
        let mut jobs = Vec::new();
        let mut what = Vec::new();
        for (a, b) in pairs {
            for (s, d) in [(a, b), (b, a)] {
                if !self.ep(s).is_local() && !self.ep(d).is_local() {
                    continue;
                }
                for probe in PROBES {
                    jobs.push((self.ns(s).to_string(), self.ep(d).ip, probe));
                    what.push(format!("{s} -> {d} {probe:?}"));
                }
            }
        }
        let got = run_probes(jobs);
        what.into_iter()
            .zip(got)
            .filter_map(|(w, ok)| ok.then_some(w))
            .collect()
    }
}

/// Every pair of a t1 address and a t2 one (containers here, remote containers and an
/// address of t2's network behind the host kernel); `passing` skips those not through here.
fn cross_tenant_pairs() -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    for a in ["a1", "b1", "c1", "a2", "x1", "ra"] {
        for b in ["e1", "re", "u2"] {
            v.push((a, b));
        }
    }
    v
}

impl Fabric {
    /// Runs every cross-tenant probe in both directions; fails if one got through, or if any
    /// namespace received any IPv4 packet meanwhile. Only cross-tenant traffic runs then, so
    /// that catches one-way leaks too: a round trip fails when either host's check drops
    /// either direction, a packet that arrives shows the check that should have dropped it
    /// did not.
    fn assert_isolated(&self, what: &str) {
        let before: Vec<u64> = self
            .eps
            .iter()
            .map(|(_, ns)| self.lab.ip_received(ns))
            .collect();
        let leaks = self.passing(&cross_tenant_pairs());
        let arrived: Vec<String> = self
            .eps
            .iter()
            .zip(before)
            .filter_map(|((e, ns), n)| {
                let m = self.lab.ip_received(ns);
                (m != n).then(|| format!("{} received {} packets", e.name, m - n))
            })
            .collect();
        assert!(
            leaks.is_empty() && arrived.is_empty(),
            "{what}: cross-tenant probes got through:\n{}\n{}\nflows:\n{}",
            leaks.join("\n"),
            arrived.join("\n"),
            self.lab.dump()
        );
        eprintln!("{what}: cross-tenant probes all dropped, nothing arrived");
    }
}

/// Tenant t1 and tenant t2 cannot reach each other, in either direction and whichever host's
/// check is involved (containers on this bridge; a remote container's traffic arriving through
/// gw0; traffic to a remote container leaving through gw0; an address of t2's network no
/// endpoint has), over TCP, UDP and ping, with no rules and with rules in both tenants that
/// allow everything. Within each tenant and from outside the fabric, the model holds.
#[test]
fn tenants_isolated_end_to_end() {
    let f = fabric();
    f.apply(&[]);
    f.assert_isolated("no rules");

    let mut allow_all = Vec::new();
    for t in [TENANT, TENANT2] {
        for p in ["pA", "pB", "pC", "pD", "shared"] {
            allow_all.push(of_tenant(t, rule(p, "1", "in", 100, "", 0, "", "allow")));
            allow_all.push(of_tenant(t, rule(p, "2", "out", 100, "", 0, "", "allow")));
        }
    }
    f.apply(&allow_all);
    f.assert_isolated("allow everything in both tenants");
    let same = [
        ("a1", "ra"),
        ("e1", "re"),
        ("e1", "u2"),
        ("a1", "b1"),
        ("e1", "out"),
        ("a1", "out"),
    ];
    let open = f.passing(&same);
    assert_eq!(
        open.len(),
        2 * same.len() * PROBES.len(),
        "same tenant, allow everything: only {open:?}"
    );
    f.assert_model("allow everything in both tenants", &allow_all);
}

/// Contiv's tutorial: `db-policy` (deny tcp, allow tcp 8888 at priority 10) on the db group.
#[test]
fn contiv_tutorial_db_policy() {
    let f = fabric();
    let db_policy = vec![
        rule("pB", "1", "in", 1, "tcp", 0, "", "deny"),
        rule("pB", "2", "in", 10, "tcp", 8888, "", "allow"),
    ];
    f.apply(&db_policy);
    let b1 = f.ep("b1").ip;
    for client in ["a1", "c1", "out"] {
        assert!(
            lab::tcp_ok(f.ns(client), b1, 8888),
            "{client} -> db:8888 must pass"
        );
        assert!(
            !lab::tcp_ok(f.ns(client), b1, 80),
            "{client} -> db:80 must be denied"
        );
    }
    assert!(lab::ping_ok(f.ns("a1"), b1), "ping is not TCP: allowed");
}

/// An established stream keeps flowing when its reverse direction gets denied; a new
/// connection in that direction fails, one in the original direction still works.
#[test]
fn established_stream_survives_reverse_deny() {
    let f = fabric();
    f.apply(&[]);
    let (a1, b1) = (f.ep("a1").ip, f.ep("b1").ip);
    let mut stream = lab::tcp_connect(f.ns("a1"), b1, 5001).expect("a1 -> b1:5001 with no rules");
    assert!(lab::roundtrip(&mut stream));
    assert!(
        lab::tcp_ok(f.ns("b1"), a1, 5001),
        "b1 -> a1 before the deny"
    );
    // Deny B → A both at B's host (out) and at A's host (in).
    let deny = vec![
        rule("pB", "1", "out", 5, "tcp", 0, "group:A", "deny"),
        rule("pA", "1", "in", 5, "tcp", 0, "group:B", "deny"),
    ];
    f.apply(&deny);
    for i in 0..5 {
        assert!(
            lab::roundtrip(&mut stream),
            "the established stream stopped (round {i})"
        );
    }
    assert!(
        !lab::tcp_ok(f.ns("b1"), a1, 5001),
        "a new b1 -> a1 connection must fail"
    );
    assert!(
        lab::tcp_ok(f.ns("a1"), b1, 5001),
        "a new a1 -> b1 connection still works"
    );
    // Denying the original direction cuts the stream.
    f.apply(&[rule("pB", "1", "in", 5, "tcp", 0, "group:A", "deny")]);
    assert!(
        !lab::roundtrip(&mut stream),
        "a deny of the original direction must cut the stream"
    );
}

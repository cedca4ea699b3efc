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
    eps: Vec<(Ep, String)>,
}

fn gateway_of(ip: Ipv4Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 1)
}

fn fabric() -> Fabric {
    let mut lab = Lab::new(GW_PORT, GW_MAC);
    let mut eps = Vec::new();
    for e in common::eps() {
        let ns = match e.place {
            Place::Local(port) => lab.container(e.name, port, e.mac(), e.ip, 24, gateway_of(e.ip)),
            // One remote container (group A, behind the host kernel) and one outside host.
            Place::Remote if e.name == "ra" => lab.outside(e.name, e.ip),
            Place::Outside => lab.outside(e.name, e.ip),
            Place::Remote => continue,
        };
        lab.serve(&ns, &[80, 8888, 5001], &[53, 8888]);
        eps.push((e, ns));
    }
    lab.route_to_gw("10.1.0.0/16");
    Fabric { lab, eps }
}

impl Fabric {
    fn apply(&self, rules: &[Rule]) {
        let compiled = pipeline::compile(&input(rules)).expect("compile");
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

    fn ep(&self, name: &str) -> Ep {
        self.eps
            .iter()
            .find(|e| e.0.name == name)
            .expect("endpoint")
            .0
    }

    /// Probes every source × destination × probe this host routes, in parallel; returns the
    /// disagreements with the model and how many probes were expected to be denied.
    fn probe_all(&self, rules: &[Rule]) -> (Vec<String>, usize, usize) {
        let mut jobs = Vec::new();
        for (src, sns) in &self.eps {
            for (dst, _) in &self.eps {
                let through_host =
                    matches!(src.place, Place::Local(_)) || matches!(dst.place, Place::Local(_));
                if src.name == dst.name || !through_host {
                    continue;
                }
                for probe in PROBES {
                    let want = allowed(rules, src, dst, probe);
                    let (sns, src, dst) = (sns.clone(), *src, *dst);
                    jobs.push(thread::spawn(move || {
                        let got = match probe {
                            Probe::Tcp(p) => lab::tcp_ok(&sns, dst.ip, p),
                            Probe::Udp(p) => lab::udp_ok(&sns, dst.ip, p),
                            Probe::Ping => lab::ping_ok(&sns, dst.ip),
                        };
                        let err = (got != want).then(|| {
                            format!(
                                "{} -> {} {probe:?}: model {want}, network {got}",
                                src.name, dst.name
                            )
                        });
                        (err, want)
                    }));
                }
            }
        }
        let total = jobs.len();
        let mut bad = Vec::new();
        let mut denied = 0;
        for j in jobs {
            let (err, want) = j.join().expect("probe thread");
            denied += usize::from(!want);
            bad.extend(err);
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

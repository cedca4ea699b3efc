//! Issue 6's truth table, end to end on two-rack (real netmaster, agents, OVS, BIRD and FRR):
//! groups A, B and C on two networks, with members on several hosts of both racks and two
//! containers on every host; policies with allow and deny rules at several priorities, `in` and
//! `out`, over TCP and UDP ports (also by protocol number), ICMP and any protocol, matching
//! groups, networks, CIDRs, address ranges and single addresses, all created through netctl
//! before any container.
//! A second tenant, t2 (issue 15), with networks, groups, policies and rules of its own (some
//! named as the default tenant's are), has one container on every host: every cell between the
//! two tenants must be denied both ways, whatever the rules say, while t2's own cells follow
//! t2's rules.
//! Every source × destination × probe (TCP connect and echo, UDP echo, ping) is compared with
//! the independent model of `truth::model`. Then the rules change (rules above existing ones,
//! rules removed, a policy attached to a group and one detached, then rules of the default
//! tenant that allow everything at the highest priority), and after each change the table must
//! become true again within a bound; last, a new member of A on a host that had none joins the
//! table. Every disagreement is collected and printed as a table (with each host's policy
//! flows) before the test fails.

mod common;
mod truth;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{config, Fabric};
use truth::model::Dir::{In, Out};
use truth::model::Peer::{self, Group, Ip, Network};
use truth::model::{
    protocol, rule, tcp, udp, Ctr, Intent, Probe, Rule, Verdict, ALLOW, ANY, DEFAULT_TENANT, DENY,
    ICMP,
};
use truth::probe::{run_all, Job, Servers};

const DEFAULT: &str = DEFAULT_TENANT;
const T2: &str = "t2";
const NET: &str = "default-net";
/// A network name both tenants use, each for its own subnet.
const NET2: &str = "net2";
const T2_NET: &str = "t2-net";
/// A group name both tenants use, each on its own network.
const A: &str = "grp-a";
const B: &str = "grp-b";
const C: &str = "grp-c";
const T: &str = "grp-t";

/// Networks created with the intent (default-net comes with the fabric): tenant, name,
/// subnet, gateway. The tenants' subnets do not overlap (native L3 refuses that).
const NETWORKS: [(&str, &str, &str, &str); 3] = [
    (DEFAULT, NET2, "10.1.3.0/24", "10.1.3.1"),
    (T2, T2_NET, "10.2.2.0/24", "10.2.2.1"),
    (T2, NET2, "10.2.3.0/24", "10.2.3.1"),
];

/// Groups: tenant, name, network, address pool (A's pool makes address ranges over A
/// predictable, T's those over T).
const GROUPS: [(&str, &str, &str, &str); 5] = [
    (DEFAULT, A, NET, "10.1.2.10-10.1.2.19"),
    (DEFAULT, B, NET, "10.1.2.20-10.1.2.29"),
    (DEFAULT, C, NET2, ""),
    (T2, T, T2_NET, "10.2.2.10-10.2.2.19"),
    (T2, A, NET2, ""),
];

const POLICIES: [(&str, &str); 6] = [
    (DEFAULT, "pol-a"),
    (DEFAULT, "pol-b"),
    (DEFAULT, "pol-c"),
    (DEFAULT, "shared"),
    (T2, "pol-t"),
    (T2, "pol-a"),
];

/// Containers: name, host, tenant, network, group. A, B and C each have members in both racks;
/// every host has two containers of the default tenant (the same-host path) and one of t2
/// (u1-u4: the same host as other tenants' containers, and both racks); x1, x2 and u3 are in
/// no group.
const CONTAINERS: [Spec; 12] = [
    ("a1", "host1", DEFAULT, NET, Some(A)),
    ("b1", "host1", DEFAULT, NET, Some(B)),
    ("u1", "host1", T2, T2_NET, Some(T)),
    ("c1", "host2", DEFAULT, NET2, Some(C)),
    ("x1", "host2", DEFAULT, NET, None),
    ("u2", "host2", T2, NET2, Some(A)),
    ("a2", "host3", DEFAULT, NET, Some(A)),
    ("c2", "host3", DEFAULT, NET2, Some(C)),
    ("u3", "host3", T2, T2_NET, None),
    ("b2", "host4", DEFAULT, NET, Some(B)),
    ("x2", "host4", DEFAULT, NET2, None),
    ("u4", "host4", T2, NET2, Some(A)),
];

/// Attached after the rule changes, on a host with no member of its group so far (u2 there is
/// in t2's group of the same name).
const LATE: Spec = ("a3", "host2", DEFAULT, NET, Some(A));

const TCP_PORTS: [u16; 2] = [80, 8888];
const UDP_PORTS: [u16; 2] = [53, 8888];
const PROBES: [Probe; 5] = [
    Probe::Tcp(80),
    Probe::Tcp(8888),
    Probe::Udp(53),
    Probe::Udp(8888),
    Probe::Ping,
];

/// Probes in flight at once. Each mostly waits on the network, a denied one for its whole
/// timeout (about a second), and most of the cross-tenant half of the table is denied.
const WORKERS: usize = 96;
/// A rule change must show in the table within this, re-probing at most `MAX_PASSES` times.
const SETTLE: Duration = Duration::from_secs(15);
const MAX_PASSES: usize = 12;

/// The first rules. Comments say what each is for in the table.
fn first_intent() -> Intent {
    let mut i = Intent::default();
    i.attached.insert((DEFAULT, A), vec!["pol-a"]);
    i.attached.insert((DEFAULT, B), vec!["pol-b"]);
    i.attached.insert((DEFAULT, C), vec!["pol-c", "shared"]);
    i.attached.insert((T2, T), vec!["pol-t"]);
    i.attached.insert((T2, A), vec!["pol-a"]);
    // A's address pool, as a range of the last octet (Contiv ignores a length after a range).
    let a_range = || Ip("10.1.2.10-19/24".into());
    for r in [
        // A may not ping anything on net2 (C, x2), at A's hosts.
        rule("pol-a", "1", Out, 3, ICMP, Network(NET2), DENY),
        // A → B tcp/8888 stops at A's hosts, although B allows it.
        rule("pol-a", "2", Out, 4, tcp(8888), Group(B), DENY),
        // Nobody reaches A's port 80 but B (a higher priority allow).
        rule("pol-a", "3", In, 2, tcp(80), Peer::Any, DENY),
        rule("pol-a", "4", In, 6, tcp(80), Group(B), ALLOW),
        // Contiv's tutorial on B: TCP denied but 8888.
        rule("pol-b", "1", In, 1, tcp(0), Peer::Any, DENY),
        rule("pol-b", "2", In, 10, tcp(8888), Peer::Any, ALLOW),
        // A → B over UDP (protocol 17) denied; udp/53 allowed at the same priority: deny wins
        // the tie.
        rule("pol-b", "3", In, 5, protocol(17, 0), Group(A), DENY),
        rule("pol-b", "4", In, 5, udp(53), Group(A), ALLOW),
        // Nothing from default-net reaches C but tcp/8888 from A's address range; C sends no
        // UDP to default-net's CIDR (written from an address inside it).
        rule("pol-c", "1", In, 2, ANY, Network(NET), DENY),
        rule("pol-c", "2", In, 7, tcp(8888), a_range(), ALLOW),
        rule(
            "pol-c",
            "3",
            Out,
            4,
            udp(0),
            Ip("10.1.2.77/24".into()),
            DENY,
        ),
        // shared, on C: B may ping C; C may not reach A's 8888.
        rule("shared", "1", In, 9, ICMP, Group(B), ALLOW),
        rule("shared", "2", Out, 3, tcp(8888), Group(A), DENY),
        // t2: its grp-a reaches T over TCP on 8888 only (names are t2's: its grp-a is u2 and
        // u4, not a1 and a2).
        rule("pol-t", "1", In, 5, tcp(0), Group(A), DENY).of(T2),
        rule("pol-t", "2", In, 8, tcp(8888), Group(A), ALLOW).of(T2),
        // T may not ping t2's net2 (10.2.3.0/24, not the default tenant's net2).
        rule("pol-t", "3", Out, 3, ICMP, Network(NET2), DENY).of(T2),
        // t2's grp-a takes no UDP from t2-net's CIDR but udp/53 from T's address pool.
        rule("pol-a", "1", In, 4, udp(0), Ip("10.2.2.0/24".into()), DENY).of(T2),
        rule(
            "pol-a",
            "2",
            In,
            6,
            udp(53),
            Ip("10.2.2.10-19".into()),
            ALLOW,
        )
        .of(T2),
        // t2's grp-a sends its own group no tcp/80.
        rule("pol-a", "3", Out, 2, tcp(80), Group(A), DENY).of(T2),
    ] {
        i.put(r);
    }
    i
}

/// One part of the change to the rules.
type Step = (&'static str, Box<dyn Fn(&mut Intent)>);

/// The change, once addresses are known: rules above existing ones, a rule removed, a policy
/// attached to another group, and rules naming one address and an address range.
fn change_steps(ctrs: &[Ctr]) -> Vec<Step> {
    let ip = |name: &str| ctrs.iter().find(|c| c.name == name).expect("container").ip;
    let b2 = Ip(ip("b2").to_string());
    // From A's pool start to the lower of A's two members: the range covers exactly one.
    let lo = ip("a1").octets()[3].min(ip("a2").octets()[3]);
    let a_low = Ip(format!("10.1.2.10-{lo}"));
    vec![
        (
            "pol-b:5 above pol-b:2: net2 no longer reaches B's 8888",
            Box::new(|i: &mut Intent| {
                i.put(rule(
                    "pol-b",
                    "5",
                    In,
                    20,
                    protocol(6, 8888),
                    Network(NET2),
                    DENY,
                ))
            }),
        ),
        (
            "pol-c:1 removed: default-net reaches C again",
            Box::new(|i: &mut Intent| i.remove(DEFAULT, "pol-c", "1")),
        ),
        (
            "shared attached to A: A may not reach A's 8888",
            Box::new(|i: &mut Intent| {
                i.attached.insert((DEFAULT, A), vec!["pol-a", "shared"]);
            }),
        ),
        (
            "pol-a:5 above pol-a:2: A reaches b2's address (not b1's) on tcp/8888",
            Box::new(move |i: &mut Intent| {
                i.put(rule("pol-a", "5", Out, 8, tcp(0), b2.clone(), ALLOW))
            }),
        ),
        (
            "pol-c:4: the lower member of A sends C no UDP",
            Box::new(move |i: &mut Intent| {
                i.put(rule("pol-c", "4", In, 30, udp(0), a_low.clone(), DENY))
            }),
        ),
    ]
}

/// The second change: a rule removed, a policy detached from a group.
fn removal_steps() -> Vec<Step> {
    vec![
        (
            "shared detached from C: C reaches A's 8888 again",
            Box::new(|i: &mut Intent| {
                i.attached.insert((DEFAULT, C), vec!["pol-c"]);
            }),
        ),
        (
            "pol-b:3 removed: A reaches B over UDP again",
            Box::new(|i: &mut Intent| i.remove(DEFAULT, "pol-b", "3")),
        ),
    ]
}

/// The third change: rules of the default tenant that allow everything, at the highest
/// priority, from anywhere into C and from A to every address of both tenants. Within the
/// default tenant they open what was denied; t2 stays as far away as before.
fn allow_all_steps() -> Vec<Step> {
    vec![
        (
            "pol-c:9, in, p100: C takes anything from anyone",
            Box::new(|i: &mut Intent| i.put(rule("pol-c", "9", In, 100, ANY, Peer::Any, ALLOW))),
        ),
        (
            "pol-a:9, out, p100: A sends anything to 10.0.0.0/8 (both tenants' subnets)",
            Box::new(|i: &mut Intent| {
                i.put(rule(
                    "pol-a",
                    "9",
                    Out,
                    100,
                    ANY,
                    Ip("10.0.0.0/8".into()),
                    ALLOW,
                ))
            }),
        ),
    ]
}

/// Creates t2, the networks, the policies, the groups and the rules of `intent`.
fn create_intent(f: &Fabric, intent: &Intent) {
    f.netctl(&["tenant", "create", T2]);
    for (tenant, name, subnet, gateway) in NETWORKS {
        f.netctl(&[
            "net",
            "create",
            "-t",
            tenant,
            "--subnet",
            subnet,
            "--gateway",
            gateway,
            name,
        ]);
    }
    for (tenant, p) in POLICIES {
        f.netctl(&["policy", "create", "-t", tenant, p]);
    }
    for (tenant, group, _, _) in GROUPS {
        put_group(f, intent, tenant, group);
    }
    for r in &intent.rules {
        netctl(f, r.netctl_add());
    }
}

/// Creates or replaces a group with the policies `intent` attaches to it.
fn put_group(f: &Fabric, intent: &Intent, tenant: &'static str, group: &'static str) {
    let (_, _, network, pool) = GROUPS
        .iter()
        .find(|g| (g.0, g.1) == (tenant, group))
        .expect("group");
    let mut args = vec![
        "group".to_string(),
        "create".into(),
        "-t".into(),
        tenant.into(),
    ];
    if !pool.is_empty() {
        args.push(format!("-ip-pool={pool}"));
    }
    args.push(network.to_string());
    args.push(group.to_string());
    for p in intent.attached.get(&(tenant, group)).into_iter().flatten() {
        args.push(format!("-policy={p}"));
    }
    netctl(f, args);
}

/// Brings the fabric from `old` to `new` through netctl.
fn apply_change(f: &Fabric, old: &Intent, new: &Intent) {
    for r in &new.rules {
        if !old.rules.contains(r) {
            netctl(f, r.netctl_add());
        }
    }
    for r in &old.rules {
        if !new
            .rules
            .iter()
            .any(|n| (n.tenant, n.policy, n.id) == (r.tenant, r.policy, r.id))
        {
            netctl(f, r.netctl_rm());
        }
    }
    for (tenant, group, _, _) in GROUPS {
        let key = (tenant, group);
        if old.attached.get(&key) != new.attached.get(&key) {
            put_group(f, new, tenant, group);
        }
    }
}

fn netctl(f: &Fabric, args: Vec<String>) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    f.netctl(&args);
}

/// A container: name, host, tenant, network, group.
type Spec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

/// Whether `ip` lies in the pool `first-last`.
fn in_pool(ip: Ipv4Addr, pool: &str) -> bool {
    pool.split_once('-').is_some_and(|(lo, hi)| {
        lo.parse::<Ipv4Addr>().is_ok_and(|lo| lo <= ip)
            && hi.parse::<Ipv4Addr>().is_ok_and(|hi| ip <= hi)
    })
}

/// A container's namespace with echo servers already listening (services that start before
/// the network exists), then its ADD through contivk8s with Contiv's pod labels for the tenant,
/// the network and the group. A member of a group with an address pool must get an address
/// in it; any other container one outside every group's pool of its network (a pool is kept
/// for its group).
fn start(f: &Fabric, servers: &mut Servers, (name, host, tenant, network, group): Spec) -> Ctr {
    let netns = f.container_netns(name);
    servers.serve(&netns, &TCP_PORTS, &UDP_PORTS);
    let mut args = format!(
        "IgnoreUnknown=1;K8S_POD_NAME={name};io.contiv.tenant={tenant};io.contiv.network={network}"
    );
    if let Some(g) = group {
        args.push_str(&format!(";io.contiv.net-group={g}"));
    }
    let out = f.cni_raw(
        "ADD",
        host,
        &format!("ctr-{name}"),
        &netns,
        config().to_string().as_bytes(),
        &[("CNI_ARGS", &args)],
    );
    assert!(out.ok, "ADD {name} on {host}: {}", out.raw);
    let ip: Ipv4Addr = Fabric::address(&out)
        .parse()
        .unwrap_or_else(|_| panic!("ADD {name}: no address in {}", out.raw));
    let own_pool = GROUPS
        .iter()
        .find(|g| (g.0, Some(g.1)) == (tenant, group))
        .map(|g| g.3)
        .filter(|p| !p.is_empty());
    match own_pool {
        Some(pool) => assert!(
            in_pool(ip, pool),
            "{name} got {ip}, outside its group's pool {pool}"
        ),
        None => {
            for (_, other, _, pool) in GROUPS
                .iter()
                .filter(|g| (g.0, g.2) == (tenant, network) && !g.3.is_empty())
            {
                assert!(
                    !in_pool(ip, pool),
                    "{name} ({}) got {ip}, in the pool {pool} of group {other}",
                    group.unwrap_or("no group")
                );
            }
        }
    }
    Ctr {
        name,
        host,
        tenant,
        network,
        group,
        ip,
        netns,
    }
}

/// Every source × destination × probe, by index into the containers.
struct Table {
    ctrs: Vec<Ctr>,
    cells: Vec<(usize, usize, Probe)>,
}

impl Table {
    fn new(ctrs: Vec<Ctr>) -> Table {
        let n = ctrs.len();
        let cells = (0..n)
            .flat_map(|s| (0..n).filter(move |d| *d != s).map(move |d| (s, d)))
            .flat_map(|(s, d)| PROBES.iter().map(move |p| (s, d, *p)))
            .collect();
        Table { ctrs, cells }
    }

    fn verdicts(&self, intent: &Intent) -> Vec<Verdict> {
        self.cells
            .iter()
            .map(|(s, d, p)| intent.verdict(&self.ctrs[*s], &self.ctrs[*d], *p))
            .collect()
    }

    /// Probes the cells `which`; whether each got through.
    fn probe(&self, which: &[usize]) -> Vec<bool> {
        let jobs: Vec<Job> = which
            .iter()
            .map(|i| {
                let (s, d, probe) = self.cells[*i];
                Job {
                    netns: self.ctrs[s].netns.clone(),
                    dst: self.ctrs[d].ip,
                    probe,
                }
            })
            .collect();
        run_all(&jobs, WORKERS)
    }

    /// A test that can fail: the model must allow and deny some cells of every probe kind
    /// within a tenant (across tenants it denies every cell), and the rules alone must allow
    /// some cells of every kind across tenants, or isolation would go unseen.
    fn assert_both_outcomes(&self, verdicts: &[Verdict], what: &str) {
        for kind in PROBES {
            let of_kind = || {
                self.cells
                    .iter()
                    .zip(verdicts)
                    .filter(move |((_, _, p), v)| *p == kind && !v.cross_tenant)
            };
            let across = self
                .cells
                .iter()
                .zip(verdicts)
                .filter(|((_, _, p), v)| *p == kind && v.cross_tenant && v.rules_allow)
                .count();
            assert!(
                across > 0,
                "{what}: the rules alone deny every cross-tenant {kind} cell"
            );
            let allowed = of_kind().filter(|(_, v)| v.allowed).count();
            let denied = of_kind().filter(|(_, v)| !v.allowed).count();
            assert!(
                allowed > 0 && denied > 0,
                "{what}: the model allows {allowed} and denies {denied} same-tenant {kind} cells: \
                 the rules must give both"
            );
        }
    }

    /// No dead rule: removing each rule, or raising its priority by one (a rule that loses a
    /// tie), must change some cell.
    fn assert_every_rule_counts(&self, intent: &Intent, verdicts: &[Verdict]) {
        let flips = |other: &Intent| {
            self.verdicts(other)
                .iter()
                .zip(verdicts)
                .any(|(a, b)| a.allowed != b.allowed)
        };
        for r in &intent.rules {
            let mut without = intent.clone();
            without.remove(r.tenant, r.policy, r.id);
            let mut raised = intent.clone();
            raised.put(Rule {
                priority: r.priority + 1,
                ..r.clone()
            });
            assert!(
                flips(&without) || flips(&raised),
                "rule {r} decides no cell of the table"
            );
        }
    }

    /// The whole table against `intent`, re-probing what disagrees while it settles.
    fn check_whole(&self, f: &Fabric, intent: &Intent, what: &str) {
        let verdicts = self.verdicts(intent);
        self.assert_both_outcomes(&verdicts, what);
        let all: Vec<usize> = (0..self.cells.len()).collect();
        let wrong = self.converge(&verdicts, all, what);
        self.assert_agrees(f, &verdicts, &wrong, what);
    }

    /// Applies `steps` to `old` through netctl and checks the table becomes what the model
    /// says; each step, after the ones before it, must flip some cell or it tests nothing.
    fn change(&self, f: &Fabric, old: &Intent, steps: Vec<Step>, what: &str) -> Intent {
        let before = self.verdicts(old);
        let mut new = old.clone();
        for (step_what, step) in steps {
            let prior = self.verdicts(&new);
            step(&mut new);
            let flips = self
                .verdicts(&new)
                .iter()
                .zip(&prior)
                .filter(|(a, b)| a.allowed != b.allowed)
                .count();
            assert!(flips > 0, "{what}: \"{step_what}\" flips no cell");
        }
        let after = self.verdicts(&new);
        self.assert_both_outcomes(&after, what);
        let changed: Vec<usize> = (0..self.cells.len())
            .filter(|i| before[*i].allowed != after[*i].allowed)
            .collect();
        eprintln!("{what}: {} cells flip", changed.len());
        apply_change(f, old, &new);
        let wrong = self.converge(&after, changed, what);
        self.assert_agrees(f, &after, &wrong, what);
        new
    }

    /// Re-probes the cells `pending` until each gives what `verdicts` says (a rule change
    /// reaches the hosts asynchronously), within `SETTLE` and `MAX_PASSES`; then, unless the
    /// first pass was already the whole table and agreed, probes the whole table once more.
    /// Returns the disagreements of the last whole-table pass.
    fn converge(&self, verdicts: &[Verdict], mut pending: Vec<usize>, what: &str) -> Vec<String> {
        let start = Instant::now();
        let whole = pending.len() == self.cells.len();
        let mut left = Vec::new();
        let mut clean_whole = false;
        while !pending.is_empty() && left.len() < MAX_PASSES {
            let got = self.probe(&pending);
            pending = pending
                .into_iter()
                .zip(got)
                .filter(|(i, ok)| *ok != verdicts[*i].allowed)
                .map(|(i, _)| i)
                .collect();
            left.push(pending.len());
            clean_whole = whole && left.len() == 1 && pending.is_empty();
            if start.elapsed() > SETTLE {
                break;
            }
        }
        eprintln!(
            "{what}: cells left after each pass {left:?}, in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        if clean_whole {
            return Vec::new();
        }
        let all: Vec<usize> = (0..self.cells.len()).collect();
        let got = self.probe(&all);
        let mut wrong: Vec<usize> = all
            .into_iter()
            .filter(|i| got[*i] != verdicts[*i].allowed)
            .collect();
        // A probe that got through proves its cell allowed; one that did not may have lost a
        // packet on two busy cores: those are probed once more before they count.
        let lost: Vec<usize> = wrong
            .iter()
            .copied()
            .filter(|i| verdicts[*i].allowed)
            .collect();
        let again = self.probe(&lost);
        wrong.retain(|i| lost.iter().position(|l| l == i).is_none_or(|k| !again[k]));
        wrong
            .into_iter()
            .map(|i| self.row(i, &verdicts[i]))
            .collect()
    }

    fn row(&self, i: usize, v: &Verdict) -> String {
        let (s, d, p) = self.cells[i];
        let word = |ok: bool| if ok { "allow" } else { "deny" };
        format!(
            "{:<34} {:<34} {:<9} {:<6} {:<8} {v}",
            self.ctrs[s].to_string(),
            self.ctrs[d].to_string(),
            p.to_string(),
            word(v.allowed),
            word(!v.allowed)
        )
    }

    /// Fails with every disagreement, every host's policy tables and its isolation drops.
    fn assert_agrees(&self, f: &Fabric, verdicts: &[Verdict], wrong: &[String], what: &str) {
        if wrong.is_empty() {
            let denied = verdicts.iter().filter(|v| !v.allowed).count();
            let across: Vec<&Verdict> = verdicts.iter().filter(|v| v.cross_tenant).collect();
            let opened = across.iter().filter(|v| v.rules_allow).count();
            eprintln!(
                "{what}: all {} cells agree with the model ({denied} denied; {} cross-tenant, \
                 all denied, {opened} of them allowed by the rules alone)",
                self.cells.len(),
                across.len()
            );
            return;
        }
        let mut hosts: Vec<&str> = self.ctrs.iter().map(|c| c.host).collect();
        hosts.sort_unstable();
        hosts.dedup();
        let flows: String = hosts
            .iter()
            .map(|h| {
                let policy: Vec<String> = f
                    .flows(h)
                    .into_iter()
                    .filter(|l| {
                        l.contains("table=30")
                            || l.contains("table=40")
                            || ((l.contains("table=8,") || l.contains("table=20,"))
                                && l.contains("actions=drop"))
                    })
                    .collect();
                format!(
                    "--- {h} (the drops of tables 8 and 20, tables 30 and 40)\n{}\n",
                    policy.join("\n")
                )
            })
            .collect();
        panic!(
            "{what}: {} of {} cells disagree with the model:\n{:<34} {:<34} {:<9} {:<6} {:<8} deciding rules (model)\n{}\n\npolicy flows:\n{flows}",
            wrong.len(),
            self.cells.len(),
            "source",
            "destination",
            "probe",
            "model",
            "network",
            wrong.join("\n")
        );
    }
}

#[test]
fn truth_table_of_groups_networks_and_addresses_across_racks_then_changed_rules() {
    let start_time = Instant::now();
    let f = Fabric::up("t", "");
    let first = first_intent();
    // Intent first: every group, policy and rule exists before any container.
    create_intent(&f, &first);

    // Declared after the fabric, the servers stop before it is destroyed, also on a failure.
    let mut servers = Servers::default();
    let mut ctrs: Vec<Ctr> = CONTAINERS
        .into_iter()
        .map(|spec| start(&f, &mut servers, spec))
        .collect();
    let names: Vec<String> = ctrs.iter().map(Ctr::to_string).collect();
    eprintln!(
        "fabric up, intent created, {} containers attached in {:.1} s: {}",
        ctrs.len(),
        start_time.elapsed().as_secs_f64(),
        names.join(", ")
    );
    let table = Table::new(ctrs.clone());
    table.assert_every_rule_counts(&first, &table.verdicts(&first));
    table.check_whole(&f, &first, "first rules");

    let second = table.change(&f, &first, change_steps(&table.ctrs), "changed rules");
    let third = table.change(&f, &second, removal_steps(), "rules removed");
    // Everything allowed at the highest priority, in and out, in the default tenant: only
    // isolation keeps the cross-tenant cells (probed again in the whole table) closed.
    let fourth = table.change(&f, &third, allow_all_steps(), "default allows everything");

    // A gets a member on host2, which had none: its ADD brings A's rules (pol-a and shared)
    // to that host, and the whole table, one row and one column larger, must hold again.
    ctrs.push(start(&f, &mut servers, LATE));
    Table::new(ctrs).check_whole(&f, &fourth, "a new member of A");
    eprintln!("total {:.1} s", start_time.elapsed().as_secs_f64());
}

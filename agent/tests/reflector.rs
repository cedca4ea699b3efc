//! End to end on lab's flat fabric: four hosts on one L2 segment with no BGP top-of-rack
//! router, two masters on one etcd, each a route reflector. Every agent peers iBGP with both
//! and learns the other hosts' container /32s from them, next hop the owning host's segment
//! address. Shown here: every pair of containers pings; `kill -9` of either master while a
//! container is pinged every 10 ms loses no probe, and attaches keep working through the other
//! master; a deleted container's /32 leaves every host's kernel (both masters up: a dead
//! master's reflected paths stay at the agents as graceful-restart stale paths for up to the
//! reflector's 30 s restart time); a BGP session from an address
//! that is not a registered agent is refused and logged. A BIRD server admitted by its `Bgp`
//! object joins as a client of both reflectors and learns every container route.
//!
//! Scale rule (issue 16): every host gets each other host's reserve as a few aligned blocks
//! (plus a /32 for a container outside them: a host's first container, allocated by the
//! master before its reserve existed) instead of a /32 per address; a container inside a
//! block is reached through the block, one outside through its /32. The counts are printed.

mod common;

use common::{config, poll, Fabric, FLAT};
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

const EXTRA: &str = "    app2:
      kind: linux
      mgmt-ipv4: 172.20.20.32
      labels:
        lab.kind: container
        lab.host: host2
    app4:
      kind: linux
      mgmt-ipv4: 172.20.20.34
      labels:
        lab.kind: container
        lab.host: host4
";

const PLACEMENT: [(&str, &str); 4] = [
    ("app1", "host1"),
    ("app2", "host2"),
    ("app3", "host3"),
    ("app4", "host4"),
];

fn segment_address(host: &str) -> &'static str {
    match host {
        "host1" => "172.20.20.21",
        "host2" => "172.20.20.22",
        "host3" => "172.20.20.23",
        _ => "172.20.20.24",
    }
}

/// A kernel route line's destination and gateway (`10.1.2.8/29 via 172.20.20.22 dev ...`;
/// `ip route` writes a /32 without its length); None for a route without one gateway.
fn parse_route(line: &str) -> Option<(Ipv4Net, Ipv4Addr)> {
    let mut words = line.split_whitespace();
    let dst = words.next()?;
    let dst: Ipv4Net = if dst.contains('/') {
        dst.parse().ok()?
    } else {
        Ipv4Net::new(dst.parse().ok()?, 32).ok()?
    };
    (words.next()? == "via").then_some(())?;
    Some((dst, words.next()?.parse().ok()?))
}

/// The route `routes` would take to `ip` (longest match among routes with a gateway).
fn route_to(routes: &[String], ip: &str) -> Option<(Ipv4Net, Ipv4Addr)> {
    let ip: Ipv4Addr = ip.parse().ok()?;
    routes
        .iter()
        .filter_map(|r| parse_route(r))
        .filter(|(dst, _)| dst.contains(&ip))
        .max_by_key(|(dst, _)| dst.prefix_len())
}

/// Whether `routes` send `ip` via `owner`'s segment address.
fn routed_via(routes: &[String], ip: &str, owner: &str) -> bool {
    route_to(routes, ip).is_some_and(|(_, via)| via.to_string() == segment_address(owner))
}

/// Waits until every host routes every other host's containers via the owning host's
/// segment address (by its /32 or by a block holding it); the routes it found on failure.
fn wait_routes(fabric: &Fabric, ips: &BTreeMap<&str, String>) {
    let mut seen = BTreeMap::new();
    let ok = poll(Duration::from_secs(40), || {
        seen.clear();
        let mut all = true;
        for (_, host) in PLACEMENT {
            let routes = fabric.routes(host);
            for (app, owner) in PLACEMENT {
                if owner == host {
                    continue;
                }
                all &= routed_via(&routes, &ips[app], owner);
            }
            seen.insert(host, routes);
        }
        all.then_some(())
    });
    assert!(
        ok.is_some(),
        "not every host learned every container through the reflectors: {seen:#?}"
    );
}

/// Waits until every host routes all of every other host's reserve via that host, then
/// checks the scale rule and prints the counts: at each host, the routes via each other host
/// include a block and are fewer than the addresses they stand for (the owner's reserve and
/// containers), and at least one container is reached through its own /32 (outside every
/// block). Returns (routes learned, addresses they stand for) summed over all hosts.
fn check_blocks(fabric: &Fabric, ips: &BTreeMap<&str, String>) -> (usize, usize) {
    // Each host asked for its reserve after its first attach (which the master allocated).
    let mut reserves: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let filled = poll(Duration::from_secs(20), || {
        reserves = PLACEMENT
            .iter()
            .map(|(_, h)| (*h, fabric.reserve_of(h)))
            .collect();
        reserves.values().all(|r| r.len() >= 8).then_some(())
    });
    assert!(filled.is_some(), "a host has no reserve: {reserves:#?}");
    let mut seen = BTreeMap::new();
    let ok = poll(Duration::from_secs(40), || {
        seen.clear();
        let mut all = true;
        for (_, host) in PLACEMENT {
            let routes = fabric.routes(host);
            for (_, owner) in PLACEMENT {
                if owner != host {
                    all &= reserves[owner]
                        .iter()
                        .all(|ip| routed_via(&routes, ip, owner));
                }
            }
            seen.insert(host, routes);
        }
        all.then_some(())
    });
    assert!(
        ok.is_some(),
        "not every host routes every other host's reserve to it: {reserves:#?} {seen:#?}"
    );
    let (mut learned, mut addresses) = (0, 0);
    let mut through_own_host_route = Vec::new();
    for (_, host) in PLACEMENT {
        let routes = fabric.routes(host);
        for (app, owner) in PLACEMENT {
            if owner == host {
                continue;
            }
            let via: Vec<Ipv4Net> = routes
                .iter()
                .filter_map(|r| parse_route(r))
                .filter(|(_, gw)| gw.to_string() == segment_address(owner))
                .map(|(dst, _)| dst)
                .collect();
            let blocks = via.iter().filter(|d| d.prefix_len() < 32).count();
            let stands_for = reserves[owner].len() + 1;
            eprintln!(
                "{host}: {} routes via {owner} ({blocks} blocks: {via:?}) for {stands_for} \
                 addresses ({} reserved, its container {})",
                via.len(),
                reserves[owner].len(),
                ips[app]
            );
            assert!(blocks >= 1, "{host} has no block of {owner}: {via:?}");
            assert!(
                via.len() < stands_for,
                "{host} has {} routes via {owner} for {stands_for} addresses: {via:?}",
                via.len()
            );
            if route_to(&routes, &ips[app]).is_some_and(|(dst, _)| dst.prefix_len() == 32) {
                through_own_host_route.push(app);
            }
            learned += via.len();
            addresses += stands_for;
        }
    }
    assert!(
        !through_own_host_route.is_empty(),
        "no container is reached through its own /32 (a first attach is outside the blocks)"
    );
    eprintln!(
        "reached through their own /32: {through_own_host_route:?}; learned routes over all \
         hosts: {learned} for {addresses} addresses"
    );
    (learned, addresses)
}

/// bird1's routes to container addresses (10.1.x): prefix → next hop of each path.
fn bird_routes(fabric: &Fabric) -> BTreeMap<String, Vec<String>> {
    let out = fabric.birdc("bird1", &["show", "route"]);
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.starts_with("10.1.") && first.contains('/') {
            current = Some(first.to_string());
        } else if !line.starts_with(char::is_whitespace) && !first.is_empty() {
            current = None;
        }
        if let (Some(prefix), Some(via)) = (&current, line.split("via ").nth(1)) {
            let hop = via.split_whitespace().next().unwrap_or("").to_string();
            routes.entry(prefix.clone()).or_default().push(hop);
        }
    }
    routes
}

/// Whether `prefix` (a.b.c.d/len) contains `ip`.
fn contains(prefix: &str, ip: &str) -> bool {
    match (
        prefix.parse::<ipnet::Ipv4Net>(),
        ip.parse::<std::net::Ipv4Addr>(),
    ) {
        (Ok(net), Ok(ip)) => net.contains(&ip),
        _ => false,
    }
}

/// Pings `ip` from `netns` every 10 ms, `count` times; (sent, received).
fn ping_burst(fabric: &Fabric, netns: &str, ip: &str, count: u32) -> (u32, u32) {
    let (_, out) = fabric.exec_ns(
        netns,
        &[
            "ping",
            "-q",
            "-i",
            "0.01",
            "-W",
            "1",
            "-c",
            &count.to_string(),
            ip,
        ],
    );
    let line = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default()
        .to_string();
    let mut numbers = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|n| n.parse::<u32>().ok());
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// Which master says it leads (asked over each one's /info).
fn leader(fabric: &Fabric) -> Option<&'static str> {
    let cacert = fabric.cacert();
    let token = format!("X-Auth-Token: {}", fabric.token());
    [("master1", "172.20.20.10"), ("master2", "172.20.20.11")]
        .into_iter()
        .find(|(_, ip)| {
            let url = format!("https://{ip}:9999/info");
            let (_, out) = fabric.exec(
                "master1",
                &[
                    "curl", "-s", "-m", "2", "--cacert", &cacert, "-H", &token, &url,
                ],
            );
            serde_json::from_str::<serde_json::Value>(&out).is_ok_and(|v| v["leader"] == true)
        })
        .map(|(name, _)| name)
}

/// Kills `master` while app1 pings `to` every 10 ms for 8 s; asserts no probe was lost.
fn kill_master_under_ping(
    fabric: &Fabric,
    master: &str,
    to: &str,
    ips: &BTreeMap<&str, String>,
) -> Vec<String> {
    let netns = fabric.netns("app1");
    let target = ips[to].clone();
    let pinger = std::thread::scope(|scope| {
        let pinger = scope.spawn(|| ping_burst(fabric, &netns, &target, 800));
        std::thread::sleep(Duration::from_secs(2));
        let argv = fabric.kill_master(master);
        (pinger.join().unwrap_or((0, 0)), argv)
    });
    let ((sent, received), argv) = pinger;
    assert_eq!(sent, 800, "the ping did not run");
    assert_eq!(
        received, sent,
        "probes lost while {master} died: {received}/{sent}"
    );
    argv
}

#[test]
fn flat_fabric_through_two_reflectors_survives_either_master() {
    let fabric = Fabric::up_on(&FLAT, "fl", EXTRA);
    let mut ips = BTreeMap::new();
    for (app, host) in PLACEMENT {
        let out = fabric.cni(
            "ADD",
            host,
            &format!("ctr-{app}"),
            &fabric.netns(app),
            &config(),
        );
        assert!(out.ok, "ADD {app} failed: {}", out.raw);
        ips.insert(app, Fabric::address(&out));
    }
    wait_routes(&fabric, &ips);

    // BIRD joined as a client of both reflectors: it holds a route to every container (a
    // host's block or a /32) via the owning host, from each master.
    let covered = poll(Duration::from_secs(30), || {
        let routes = bird_routes(&fabric);
        PLACEMENT
            .iter()
            .all(|(app, host)| {
                routes.iter().any(|(prefix, hops)| {
                    contains(prefix, &ips[app])
                        && hops.len() == 2
                        && hops.iter().all(|h| h == segment_address(host))
                })
            })
            .then_some(())
    });
    assert!(
        covered.is_some(),
        "BIRD did not learn every container from both reflectors: {:#?}",
        bird_routes(&fabric)
    );
    let (learned, addresses) = check_blocks(&fabric, &ips);
    assert!(
        learned * 4 <= addresses,
        "{learned} routes for {addresses} addresses"
    );
    for (from, _) in PLACEMENT {
        for (to, _) in PLACEMENT {
            if from != to {
                assert!(
                    fabric.ping(&fabric.netns(from), &ips[to]),
                    "{from} cannot reach {to} ({})",
                    ips[to]
                );
            }
        }
    }

    // A BGP session from the segment but not from a registered agent (the etcd node) is
    // refused before its OPEN is answered, and the reflector says why.
    let probe = "import socket,struct,sys\n\
body=struct.pack('!BHHIB',4,65000,9,0xac141405,0)\n\
try:\n    s=socket.create_connection(('172.20.20.10',179),timeout=3)\n    \
s.sendall(b'\\xff'*16+struct.pack('!HB',19+len(body),1)+body)\n    d=s.recv(4096)\n\
except Exception:\n    d=b''\n\
sys.stdout.write('answered' if len(d)>=19 and d[18]==1 else 'refused')\n";
    let (_, answer) = fabric.exec("etcd", &["python3", "-c", probe]);
    assert_eq!(
        answer.trim(),
        "refused",
        "an unregistered peer got an OPEN back"
    );
    let log = std::fs::read_to_string(fabric.run_dir("master1").join("netmaster.log"))
        .unwrap_or_default();
    assert!(
        log.contains("not a registered host") && log.contains("172.20.20.5"),
        "the refusal is not logged with the address"
    );

    // Either master dies while traffic flows: nothing is lost, attaches go on. The leader
    // goes first; the other takes over within 10 s.
    let first = poll(Duration::from_secs(15), || leader(&fabric));
    let Some(first) = first else {
        panic!("no master says it leads");
    };
    let other = if first == "master1" {
        "master2"
    } else {
        "master1"
    };
    let argv1 = kill_master_under_ping(&fabric, first, "app3", &ips);
    let took_over = poll(Duration::from_secs(10), || {
        (leader(&fabric) == Some(other)).then_some(())
    });
    assert!(
        took_over.is_some(),
        "{other} did not take the lead within 10 s of {first}'s death"
    );
    let out = fabric.cni(
        "ADD",
        "host2",
        "ctr-late",
        &fabric.container_netns("late"),
        &config(),
    );
    assert!(
        out.ok,
        "ADD through the surviving master failed: {}",
        out.raw
    );
    let late = Fabric::address(&out);
    // Taken from host2's reserve, so inside one of its blocks: host4 reaches it through the
    // block, and no /32 of it goes to the reflectors.
    let reached = poll(Duration::from_secs(20), || {
        route_to(&fabric.routes("host4"), &late)
            .filter(|(_, via)| via.to_string() == "172.20.20.22")
    });
    let Some((block, _)) = reached else {
        panic!(
            "host4 does not route {late} to host2 through {other}: {:?}",
            fabric.routes("host4")
        );
    };
    assert!(
        block.prefix_len() < 32,
        "host4 reaches the reserved {late} by a /32, not host2's block: {:?}",
        fabric.routes("host4")
    );
    assert!(
        fabric.ping(&fabric.netns("app4"), &late),
        "app4 cannot reach {late} through host2's block {block}"
    );

    // The dead master back, then the other dies.
    let (_restarted, _) = fabric.start_agent(first, &argv1, "netmaster-restarted.log");
    let back = poll(Duration::from_secs(30), || {
        let (_, out) = fabric.exec(
            first,
            &["ss", "-Htn", "state", "established", "( sport = :179 )"],
        );
        (out.lines().count() >= 4).then_some(())
    });
    assert!(
        back.is_some(),
        "the agents did not come back to {first}'s reflector"
    );
    // A deleted container leaves every host's kernel.
    let out = fabric.cni("DEL", "host3", "ctr-app3", &fabric.netns("app3"), &config());
    assert!(out.ok, "DEL failed: {}", out.raw);
    let gone = poll(Duration::from_secs(20), || {
        PLACEMENT
            .iter()
            .all(|(_, h)| {
                !fabric
                    .routes(h)
                    .iter()
                    .any(|r| r.starts_with(&format!("{} ", ips["app3"])))
            })
            .then_some(())
    });
    assert!(gone.is_some(), "app3's /32 stayed in some host's kernel");

    // And the other dies too: its clients lose nothing while the restarted one reflects.
    kill_master_under_ping(&fabric, other, "app4", &ips);
}

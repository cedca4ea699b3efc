//! End to end on lab's flat fabric: four hosts on one L2 segment with no BGP top-of-rack
//! router, two masters on one etcd, each a route reflector. Every agent peers iBGP with both
//! and learns the other hosts' container /32s from them, next hop the owning host's segment
//! address. Shown here: every pair of containers pings; `kill -9` of either master while a
//! container is pinged every 10 ms loses no probe, and attaches keep working through the other
//! master; a deleted container's /32 leaves every host's kernel (both masters up: a dead
//! master's reflected paths stay at the agents as graceful-restart stale paths for up to the
//! reflector's 30 s restart time); a BGP session from an address
//! that is not a registered agent is refused and logged.

mod common;

use common::{config, poll, Fabric, FLAT};
use std::collections::BTreeMap;
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

/// Waits until every host routes every other host's containers via the owning host's
/// segment address; the routes it found on failure.
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
                let want = format!("{} via {} ", ips[app], segment_address(owner));
                all &= routes.iter().any(|r| r.starts_with(&want));
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
    let reached = poll(Duration::from_secs(20), || {
        fabric
            .routes("host4")
            .iter()
            .any(|r| r.starts_with(&format!("{late} via 172.20.20.22 ")))
            .then_some(())
    });
    assert!(
        reached.is_some(),
        "host4 did not learn {late} through {other}: {:?}",
        fabric.routes("host4")
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

//! Fifty containers attached at once on one host: distinct addresses, reachable from the other
//! rack; deleted at once, they leave no address, port, flow or route behind.

mod common;

use common::{config, poll, Fabric};
use std::collections::BTreeSet;
use std::time::Duration;

const N: usize = 50;

#[test]
fn fifty_containers_at_once_on_one_host() {
    let f = Fabric::up("s", "");
    // The pinger in the other rack first: its route and remote-endpoint flows are part of
    // host2's baseline.
    let app3 = f.netns("app3");
    let pinger = f.cni("ADD", "host3", "pinger", &app3, &config());
    assert!(pinger.ok, "{}", pinger.raw);
    let pinger_ip = Fabric::address(&pinger);
    let pinger_route = poll(Duration::from_secs(20), || {
        let routes = f.routes("host2");
        routes
            .iter()
            .any(|r| r.starts_with(&format!("{pinger_ip} via")))
            .then_some(())
    });
    assert!(
        pinger_route.is_some(),
        "host2 never learned the pinger's route"
    );
    let baseline = (
        f.veths("host2"),
        f.ports("host2"),
        f.flows("host2"),
        f.routes("host2"),
    );
    let namespaces: Vec<String> = (0..N)
        .map(|i| f.container_netns(&format!("c{i}")))
        .collect();

    let results: Vec<common::CniOutput> = std::thread::scope(|s| {
        let handles: Vec<_> = namespaces
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let f = &f;
                s.spawn(move || f.cni("ADD", "host2", &format!("c{i}"), ns, &config()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("ADD thread"))
            .collect()
    });
    for (i, r) in results.iter().enumerate() {
        assert!(r.ok, "ADD c{i} failed: {}", r.raw);
    }
    let ips: Vec<String> = results.iter().map(Fabric::address).collect();
    let distinct: BTreeSet<&String> = ips.iter().collect();
    assert_eq!(distinct.len(), N, "addresses are not distinct: {ips:?}");
    assert_eq!(f.ports("host2").len(), N + 1);
    // The first attaches had the master allocate while the agent asked for a reserve; later
    // ones took theirs from it, and it keeps some for the next containers.
    assert!(
        f.reserved("default:default-net") > 0,
        "host2 keeps addresses for its next containers"
    );
    // Each is routed to the gateway port ahead of its container, and announced to no one.
    let prepared = poll(Duration::from_secs(10), || {
        let reserve = f.reserve_of("host2");
        let all = f.all_routes("host2");
        let routed = reserve
            .iter()
            .all(|ip| all.iter().any(|r| r.starts_with(&format!("{ip} dev gw0"))));
        (!reserve.is_empty() && routed).then_some(reserve)
    })
    .expect("host2's reserved addresses are routed to gw0");
    let t1 = f.tor1_routes();
    assert!(
        prepared
            .iter()
            .all(|ip| !t1.contains_key(&format!("{ip}/32"))),
        "a reserved address is announced: {prepared:?}"
    );
    assert_eq!(f.allocated("default:default-net"), N as u64 + 1);

    // Every container answers from the other rack.
    let unreachable: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = ips
            .iter()
            .map(|ip| {
                let (f, app3) = (&f, &app3);
                s.spawn(move || {
                    poll(Duration::from_secs(20), || f.ping(app3, ip).then_some(()))
                        .is_none()
                        .then(|| ip.clone())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    assert!(
        unreachable.is_empty(),
        "not reachable from app3: {unreachable:?}"
    );

    // All deleted at once: nothing left.
    let dels: Vec<common::CniOutput> = std::thread::scope(|s| {
        let handles: Vec<_> = namespaces
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let f = &f;
                s.spawn(move || f.cni("DEL", "host2", &format!("c{i}"), ns, &config()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("DEL thread"))
            .collect()
    });
    for (i, d) in dels.iter().enumerate() {
        assert!(d.ok, "DEL c{i} failed: {}", d.raw);
    }
    assert_eq!(
        (
            f.veths("host2"),
            f.ports("host2"),
            f.flows("host2"),
            f.routes("host2")
        ),
        baseline,
        "the host is not back to its state before the attaches"
    );
    assert_eq!(
        f.allocated("default:default-net"),
        1,
        "only the pinger's address stays"
    );
    assert_eq!(f.endpoints().len(), 1);
    let gone = poll(Duration::from_secs(20), || {
        let t1 = f.tor1_routes();
        ips.iter()
            .all(|ip| !t1.contains_key(&format!("{ip}/32")))
            .then_some(())
    });
    assert!(gone.is_some(), "tor1 still holds some of the deleted /32s");
}

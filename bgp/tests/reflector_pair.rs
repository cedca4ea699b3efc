//! Two route reflectors in one cluster (RFC 4456 §7, cluster-id 1.1.1.1): ours and FRR's
//! bgpd serve the same clients (BIRD and GoBGP, each peering with both) and peer with each
//! other as non-clients. Root needed (network namespaces).
//!
//! - A route one reflector reflects carries the shared cluster id, so the other drops it
//!   (our CLUSTER_LIST loop check, and FRR's); each reflector still gets the other's own
//!   routes and reflects them to its clients with the cluster id added.
//! - Every client gets every other route from both reflectors, with ORIGINATOR_ID and
//!   CLUSTER_LIST set, and never its own back.
//! - A client route that already names our cluster in CLUSTER_LIST is dropped by us.

mod common;

use std::collections::BTreeMap;

use common::peers::{parse_bird_routes, Bird, Frr, GoBgp};
use common::{bridge, bridge_port, require, wait_for, Bgpd, Dir, Netns};
use serde_json::{json, Value};

const AS: u32 = 65100;
const CLUSTER_ID: &str = "1.1.1.1";
const OURS: &str = "10.0.0.1";
const BIRD: &str = "10.0.0.2";
const GOBGP: &str = "10.0.0.3";
const FRR: &str = "10.0.0.5";

const P_OURS: &str = "192.168.20.0/24";
const P_BIRD: &str = "192.168.21.0/24";
const P_GOBGP: &str = "192.168.22.0/24";
const P_FRR: &str = "192.168.25.0/24";
/// Sent by BIRD to our reflector with CLUSTER_LIST [1.1.1.1] already (and plainly to FRR).
const P_LOOPED: &str = "192.168.31.0/24";

/// BIRD with one session to each reflector: `fab` to ours, `fab2` to FRR's.
fn bird_conf(dir: &Dir) -> String {
    format!(
        r#"router id {BIRD};
log "{log}" all;
protocol device {{}}
protocol static st {{
  ipv4;
  route {P_BIRD} blackhole;
  route {P_LOOPED} blackhole;
}}
filter to_ours {{
  if net = {P_LOOPED} then bgp_cluster_list.add({CLUSTER_ID});
  accept;
}}
protocol bgp fab {{
  local {BIRD} as {AS};
  neighbor {OURS} as {AS};
  direct;
  ipv4 {{ import all; export filter to_ours; next hop self; gateway direct; }};
}}
protocol bgp fab2 {{
  local {BIRD} as {AS};
  neighbor {FRR} as {AS};
  direct;
  ipv4 {{ import all; export all; next hop self; gateway direct; }};
}}
"#,
        log = dir.path("bird.log").display(),
    )
}

fn gobgp_conf() -> String {
    let neighbor = |addr: &str| {
        format!(
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{addr}\"\n    peer-as = {AS}\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n"
        )
    };
    format!(
        "[global.config]\n  as = {AS}\n  router-id = \"{GOBGP}\"\n  port = 179\n\n{}{}",
        neighbor(OURS),
        neighbor(FRR)
    )
}

fn frr_conf() -> String {
    format!(
        "router bgp {AS}\n bgp router-id {FRR}\n bgp cluster-id {CLUSTER_ID}\n no bgp ebgp-requires-policy\n no bgp network import-check\n neighbor {OURS} remote-as {AS}\n neighbor {BIRD} remote-as {AS}\n neighbor {GOBGP} remote-as {AS}\n address-family ipv4 unicast\n  network {P_FRR}\n  neighbor {BIRD} route-reflector-client\n  neighbor {GOBGP} route-reflector-client\n exit-address-family\n!\n"
    )
}

/// One path as a client or reflector holds it: who sent it, ORIGINATOR_ID, CLUSTER_LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reflected {
    from: String,
    originator: Option<String>,
    clusters: Vec<String>,
}

/// GoBGP's paths for every prefix learned over BGP.
fn gobgp_paths(g: &GoBgp) -> BTreeMap<String, Vec<Reflected>> {
    let text = g.gobgp(&["-j", "global", "rib"]).unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mut out: BTreeMap<String, Vec<Reflected>> = BTreeMap::new();
    for (prefix, paths) in v.as_object().into_iter().flatten() {
        for path in paths.as_array().into_iter().flatten() {
            let Some(from) = path["neighbor-ip"].as_str().filter(|s| s.contains('.')) else {
                continue; // its own route
            };
            let mut r = Reflected {
                from: from.to_string(),
                originator: None,
                clusters: Vec::new(),
            };
            for attr in path["attrs"].as_array().into_iter().flatten() {
                match attr["type"].as_u64() {
                    Some(9) => r.originator = attr["value"].as_str().map(String::from),
                    Some(10) => {
                        r.clusters = attr["value"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|c| c.as_str().map(String::from))
                            .collect()
                    }
                    _ => {}
                }
            }
            out.entry(prefix.clone()).or_default().push(r);
        }
    }
    out
}

/// FRR's paths for one prefix (who sent each).
fn frr_paths(frr: &Frr, prefix: &str) -> Vec<Reflected> {
    let text = frr
        .vtysh(&format!("show bgp ipv4 unicast {prefix} json"))
        .unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    v["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Reflected {
            from: p["peer"]["peerId"]
                .as_str()
                .unwrap_or("(local)")
                .to_string(),
            originator: p["originatorId"].as_str().map(String::from),
            clusters: p["clusterList"]["list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(String::from))
                .collect(),
        })
        .collect()
}

/// BIRD's routes per session: (via our reflector, via FRR's).
fn bird_routes(bird: &Bird) -> (Vec<String>, Vec<String>) {
    let via = |proto: &str| {
        parse_bird_routes(
            &bird.birdc(&["show", "route", "protocol", proto, "all"]),
            proto,
        )
        .into_keys()
        .collect()
    };
    (via("fab"), via("fab2"))
}

fn reflected(from: &str, originator: &str) -> Reflected {
    Reflected {
        from: from.into(),
        originator: Some(originator.into()),
        clusters: vec![CLUSTER_ID.into()],
    }
}

#[test]
fn two_reflectors_in_one_cluster_with_frr() {
    require(&[
        "ip",
        "bird",
        "birdc",
        "/usr/lib/frr/bgpd",
        "vtysh",
        "gobgpd",
        "gobgp",
    ]);
    let lan = Netns::new();
    let br = bridge(&lan, "10.0.0.254/24");
    let (r1, r2, c1, c2) = (Netns::new(), Netns::new(), Netns::new(), Netns::new());
    bridge_port(&lan, &br, &r1, &format!("{OURS}/24"));
    bridge_port(&lan, &br, &c1, &format!("{BIRD}/24"));
    bridge_port(&lan, &br, &c2, &format!("{GOBGP}/24"));
    bridge_port(&lan, &br, &r2, &format!("{FRR}/24"));
    let (d_ours, d_bird, d_gobgp) = (Dir::new(), Dir::new(), Dir::new());

    let ours = Bgpd::start(
        &r1,
        &d_ours,
        "reflector",
        json!({
            "local_as": AS,
            "router_id": OURS,
            "listen": format!("{OURS}:179"),
            "cluster_id": CLUSTER_ID,
            "connect_retry": 1,
            // The other reflector: a configured non-client iBGP peer inside the prefix.
            "peers": [{"address": FRR, "peer_as": AS, "families": ["Ipv4"]}],
            "dynamic_neighbors": [{"prefix": "10.0.0.0/24", "peer_as": AS, "rr_client": true, "families": ["Ipv4"]}],
        }),
        json!([{"range": {"start": "192.168.20.0", "count": 1, "prefix_len": 24}}]),
    );
    let frr = Frr::start_raw(&r2, &frr_conf());
    let bird = Bird::start_raw(&c1, &d_bird, &bird_conf(&d_bird));
    let gobgp = GoBgp::start_raw(&c2, &d_gobgp, &gobgp_conf(), &[P_GOBGP.to_string()]);

    // GoBGP gets every other route from both reflectors.
    let want_at_gobgp: BTreeMap<&str, Vec<Reflected>> = BTreeMap::from([
        (P_BIRD, vec![reflected(OURS, BIRD), reflected(FRR, BIRD)]),
        (
            P_OURS,
            vec![
                Reflected {
                    from: OURS.into(),
                    originator: None,
                    clusters: vec![],
                },
                reflected(FRR, OURS),
            ],
        ),
        (
            P_FRR,
            vec![
                reflected(OURS, FRR),
                Reflected {
                    from: FRR.into(),
                    originator: None,
                    clusters: vec![],
                },
            ],
        ),
    ]);
    let at_gobgp = wait_for("GoBGP to hold every route from both reflectors", 60, || {
        let paths = gobgp_paths(&gobgp);
        want_at_gobgp
            .iter()
            .all(|(p, want)| paths.get(*p).is_some_and(|have| have.len() >= want.len()))
            .then_some(paths)
    });
    for (prefix, want) in &want_at_gobgp {
        let mut have = at_gobgp[*prefix].clone();
        have.sort_by(|a, b| a.from.cmp(&b.from));
        assert_eq!(&have, want, "GoBGP's paths for {prefix}");
    }
    assert!(
        !at_gobgp.contains_key(P_GOBGP),
        "GoBGP got its own route back: {:?}",
        at_gobgp.get(P_GOBGP)
    );
    // The route BIRD sent us with our cluster id already listed comes only through FRR.
    wait_for("GoBGP to get the looped route through FRR", 30, || {
        gobgp_paths(&gobgp).contains_key(P_LOOPED).then_some(())
    });
    let looped = &gobgp_paths(&gobgp)[P_LOOPED];
    assert_eq!(
        looped,
        &vec![reflected(FRR, BIRD)],
        "our reflector must not pass on a route naming its own cluster"
    );

    // BIRD gets the others from both sessions and never its own routes.
    let (via_ours, via_frr) = wait_for("BIRD to hold the others' routes twice", 30, || {
        let (a, b) = bird_routes(&bird);
        let want = [P_GOBGP, P_OURS, P_FRR];
        want.iter()
            .all(|p| a.iter().any(|x| x == p) && b.iter().any(|x| x == p))
            .then_some((a, b))
    });
    for own in [P_BIRD, P_LOOPED] {
        assert!(
            !via_ours.iter().chain(&via_frr).any(|p| p == own),
            "BIRD got its own {own} back: {via_ours:?} {via_frr:?}"
        );
    }

    // Our reflector: the looped route is nowhere in our Loc-RIB (dropped from BIRD directly
    // and from FRR's reflection), the clients' routes come from the clients themselves, and
    // of what FRR sent us only its own route passed the CLUSTER_LIST check.
    let rib = ours.ctl(json!({"cmd": "rib"}));
    let from: BTreeMap<String, String> = rib
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["prefix"].as_str().unwrap_or_default().to_string(),
                r["from"].as_str().unwrap_or("local").to_string(),
            )
        })
        .collect();
    assert!(
        !from.contains_key(P_LOOPED),
        "looped route installed: {from:?}"
    );
    assert_eq!(from.get(P_BIRD).map(String::as_str), Some(BIRD));
    assert_eq!(from.get(P_GOBGP).map(String::as_str), Some(GOBGP));
    assert_eq!(from.get(P_FRR).map(String::as_str), Some(FRR));
    assert_eq!(from.get(P_OURS).map(String::as_str), Some("local"));
    let frr_peer = ours.peer(FRR);
    assert_eq!(frr_peer["state"], "Established", "{frr_peer}");
    assert_eq!(
        frr_peer["received_prefixes"], 1,
        "only FRR's own route is accepted from it: {frr_peer}"
    );

    // FRR: the client routes it holds come from the clients only (ours, reflected with the
    // shared cluster id, were dropped), and our own route straight from us.
    for (prefix, client) in [(P_BIRD, BIRD), (P_GOBGP, GOBGP)] {
        let paths = frr_paths(&frr, prefix);
        assert!(
            !paths.is_empty() && paths.iter().all(|p| p.from == client),
            "FRR's paths for {prefix}: {paths:?}"
        );
    }
    let paths = frr_paths(&frr, P_OURS);
    assert_eq!(
        paths.iter().map(|p| p.from.as_str()).collect::<Vec<_>>(),
        vec![OURS],
        "FRR's paths for our route"
    );
}

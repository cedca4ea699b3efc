//! EVPN interop (root): our speaker, in its own namespace, reflects L2VPN/EVPN routes between
//! two route-reflector clients: GoBGP (routes injected with `gobgp global rib -a evpn add`)
//! and FRR as a VXLAN VTEP (a kernel vxlan device for VNI 100 and `advertise-all-vni`, so it
//! originates its own type 3). Checked:
//! - GoBGP and FRR decode our type 2 and type 3 (RD, route target, VNI, MAC, IP, PMSI tunnel,
//!   next hop, our endpoint-group community passed through);
//! - we decode what GoBGP announces (macadv, multicast, prefix) and FRR's type 3;
//! - type 5 both ways with GoBGP (prefix, gateway, label, router's MAC), and FRR holds both;
//! - each client gets the other's routes unchanged but for ORIGINATOR_ID and CLUSTER_LIST
//!   (next hop, RD, labels, route targets as sent), and never its own back.
//!
//! Our speaker runs in-process (the control socket has no EVPN commands): a thread enters the
//! namespace and builds the tokio runtime there, so every socket of the speaker is inside it.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use common::peers::{Frr, GoBgp};
use common::{bridge, bridge_port, require, wait_for, Dir, Netns};
use fabric_bgp::packet::evpn::{
    Esi, EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute, RouteDistinguisher,
};
use fabric_bgp::packet::{Afi, ExtCommunity, PathAttrs, PmsiTunnel};
use fabric_bgp::{EvpnRibRoute, PeerConfig, Speaker, SpeakerConfig};
use serde_json::Value;

const AS: u32 = 65100;
const CLUSTER_ID: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);
const VNI: u32 = 100;
const OUR_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xaa, 0x00, 0x01];
const GROUP: u32 = 4242;

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

/// Move the calling thread into `ns` (network namespace only).
fn enter(ns: &Netns) {
    let f = std::fs::File::open(format!("/run/netns/{}", ns.name)).expect("netns file");
    // SAFETY: setns on a valid namespace fd; it only changes this thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

fn our_routes() -> (Vec<EvpnRoute>, PathAttrs) {
    let rd = RouteDistinguisher::Ip {
        ip: Ipv4Addr::new(10, 0, 0, 1),
        number: 100,
    };
    let routes = vec![
        EvpnRoute::MacIp(MacIpRoute {
            rd,
            esi: Esi::default(),
            ethernet_tag: 0,
            mac: OUR_MAC,
            ip: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 100, 1))),
            label1: VNI,
            label2: None,
        }),
        EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
            rd,
            ethernet_tag: 0,
            originator: ip(1),
        }),
    ];
    let attrs = PathAttrs {
        next_hop: Some(ip(1)),
        ext_communities: vec![
            ExtCommunity::RouteTargetAs2 {
                asn: AS as u16,
                number: VNI,
            },
            ExtCommunity::Encapsulation { tunnel_type: 8 },
            ExtCommunity::GroupId(GROUP),
        ],
        pmsi_tunnel: Some(PmsiTunnel::ingress_replication(VNI, ip(1))),
        ..PathAttrs::default()
    };
    (routes, attrs)
}

const GOBGP_CONF: &str = r#"[global.config]
  as = 65100
  router-id = "10.0.0.2"
  port = 179

[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.0.0.1"
    peer-as = 65100
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
"#;

const FRR_ROUTER: &str = "router bgp 65100
 bgp router-id 10.0.0.3
 no bgp default ipv4-unicast
 neighbor 10.0.0.1 remote-as 65100
 address-family l2vpn evpn
  neighbor 10.0.0.1 activate
  advertise-all-vni
 exit-address-family
!
";

/// GoBGP's EVPN table as JSON values, one per path.
fn gobgp_paths(g: &GoBgp) -> Vec<Value> {
    let text = g
        .gobgp(&["-j", "global", "rib", "-a", "evpn"])
        .unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    v.as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|paths| paths.as_array().cloned().unwrap_or_default())
        .collect()
}

/// FRR's EVPN table: (RD, route key as FRR prints it, path JSON).
fn frr_paths(f: &Frr) -> Vec<(String, String, Value)> {
    let text = f.vtysh("show bgp l2vpn evpn json").unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mut out = Vec::new();
    for (rd, body) in v.as_object().into_iter().flatten() {
        for (key, route) in body.as_object().into_iter().flatten() {
            for path in route["paths"].as_array().into_iter().flatten() {
                // FRR lists each path as an array of one object.
                let path = path.as_array().and_then(|a| a.first()).unwrap_or(path);
                out.push((rd.clone(), key.clone(), path.clone()));
            }
        }
    }
    out
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn gobgp_and_frr_exchange_evpn_routes_through_our_reflector() {
    require(&["ip", "/usr/lib/frr/bgpd", "vtysh", "gobgpd", "gobgp"]);
    let r = Netns::new();
    let br = bridge(&r, "10.0.0.1/24");
    let (ng, nf) = (Netns::new(), Netns::new());
    bridge_port(&r, &br, &ng, "10.0.0.2/24");
    bridge_port(&r, &br, &nf, "10.0.0.3/24");
    // FRR's VTEP for VNI 100 (LAB-RECIPES: "FRR as an EVPN VTEP").
    for cmd in [
        "ip link add vxlan100 type vxlan id 100 local 10.0.0.3 dstport 4789 nolearning",
        "ip link add br100 type bridge",
        "ip link set vxlan100 master br100",
        "bridge link set dev vxlan100 learning off",
        "ip link set br100 up",
        "ip link set vxlan100 up",
    ] {
        nf.exec(&cmd.split(' ').collect::<Vec<_>>());
    }
    let dg = Dir::new();
    let gobgp = GoBgp::start_raw(&ng, &dg, GOBGP_CONF, &[]);
    let frr = Frr::start_raw(&nf, FRR_ROUTER);

    std::thread::scope(|s| {
        s.spawn(|| {
            enter(&r);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let mut cfg = SpeakerConfig::new(AS, Ipv4Addr::new(10, 0, 0, 1));
            cfg.listen = Some("10.0.0.1:179".parse().unwrap());
            cfg.cluster_id = Some(CLUSTER_ID);
            cfg.connect_retry = 1;
            for n in [2, 3] {
                let mut p = PeerConfig::new(ip(n), Some(AS));
                p.rr_client = true;
                p.families = vec![Afi::L2vpnEvpn];
                cfg.peers.push(p);
            }
            let speaker = rt.block_on(Speaker::new(cfg)).expect("our speaker");
            let (routes, attrs) = our_routes();
            speaker.announce_evpn(routes, attrs).unwrap();
            body(&rt, &speaker, &gobgp, &frr, &nf);
            rt.block_on(speaker.shutdown());
        });
    });
}

/// The attribute of `code` in a GoBGP path's JSON.
fn gobgp_attr(path: &Value, code: u64) -> Option<&Value> {
    path["attrs"]
        .as_array()?
        .iter()
        .find(|a| a["type"].as_u64() == Some(code))
}

fn gobgp_next_hop(path: &Value) -> Option<&str> {
    gobgp_attr(path, 14)?["nexthop"].as_str()
}

/// The route target and VXLAN encapsulation communities are in a GoBGP path.
fn gobgp_has_rt_and_vxlan(path: &Value) -> bool {
    let ecs = gobgp_attr(path, 16)
        .and_then(|a| a["value"].as_array().cloned())
        .unwrap_or_default();
    let rt = ecs
        .iter()
        .any(|c| c["type"] == 0 && c["subtype"] == 2 && c["value"] == "65100:100");
    let vxlan = ecs
        .iter()
        .any(|c| c["type"] == 3 && c["subtype"] == 12 && c["tunnel_type"] == 8);
    rt && vxlan
}

fn body(rt: &tokio::runtime::Runtime, speaker: &Speaker, gobgp: &GoBgp, frr: &Frr, frr_ns: &Netns) {
    let our_rib = || rt.block_on(speaker.evpn_rib()).unwrap();

    // GoBGP injects a MAC/IP route and an inclusive multicast route for its VTEP 10.0.0.2.
    gobgp
        .gobgp(&[
            "global",
            "rib",
            "-a",
            "evpn",
            "add",
            "macadv",
            "52:54:00:bb:00:02",
            "192.168.100.2",
            "etag",
            "0",
            "label",
            "100",
            "rd",
            "10.0.0.2:100",
            "rt",
            "65100:100",
            "encap",
            "vxlan",
            "nexthop",
            "10.0.0.2",
        ])
        .expect("gobgp macadv");
    gobgp
        .gobgp(&[
            "global",
            "rib",
            "-a",
            "evpn",
            "add",
            "multicast",
            "10.0.0.2",
            "etag",
            "0",
            "rd",
            "10.0.0.2:100",
            "rt",
            "65100:100",
            "encap",
            "vxlan",
            "pmsi",
            "ingress-repl",
            "100",
            "10.0.0.2",
            "nexthop",
            "10.0.0.2",
        ])
        .expect("gobgp multicast");

    // 1. GoBGP decodes ours: RD 10.0.0.1:100, MAC, IP, VNI 100 as the label, route target,
    // VXLAN, our group-id community passed on as an unknown one, PMSI, next hop 10.0.0.1.
    let paths = wait_for(
        "GoBGP to hold our two EVPN routes and FRR's type 3",
        40,
        || {
            let paths = gobgp_paths(gobgp);
            let learned = |nh: &str| {
                paths
                    .iter()
                    .filter(|p| gobgp_next_hop(p) == Some(nh) && p["neighbor-ip"] == "10.0.0.1")
                    .count()
            };
            (learned("10.0.0.1") == 2 && learned("10.0.0.3") == 1).then_some(paths)
        },
    );
    let ours: Vec<&Value> = paths
        .iter()
        .filter(|p| gobgp_next_hop(p) == Some("10.0.0.1"))
        .collect();
    let t2 = ours
        .iter()
        .find(|p| p["nlri"]["type"] == 2)
        .expect("our type 2 at GoBGP");
    let v = &t2["nlri"]["value"];
    assert_eq!(v["rd"]["admin"], "10.0.0.1", "{t2}");
    assert_eq!(v["rd"]["assigned"], 100);
    assert_eq!(v["mac"], "52:54:00:aa:00:01");
    assert_eq!(v["ip"], "192.168.100.1");
    assert_eq!(v["labels"], serde_json::json!([VNI]));
    assert!(gobgp_has_rt_and_vxlan(t2), "{t2}");
    let ecs = gobgp_attr(t2, 16).unwrap()["value"].as_array().unwrap();
    assert!(
        ecs.iter().any(|c| c["type"] == 0x83 && c["subtype"] == 1),
        "group id community passed on: {t2}"
    );
    let t3 = ours
        .iter()
        .find(|p| p["nlri"]["type"] == 3)
        .expect("our type 3 at GoBGP");
    assert_eq!(t3["nlri"]["value"]["ip"], "10.0.0.1");
    assert!(gobgp_has_rt_and_vxlan(t3), "{t3}");
    let pmsi = gobgp_attr(t3, 22).expect("PMSI tunnel at GoBGP");
    assert_eq!(pmsi["tunnel-type"], 6);
    assert_eq!(pmsi["label"], VNI);
    assert_eq!(pmsi["tunnel-id"], "10.0.0.1");

    // FRR's type 3, reflected to GoBGP: next hop, RD and PMSI as FRR sent them, with
    // ORIGINATOR_ID and our CLUSTER_LIST.
    let frr_t3 = paths
        .iter()
        .find(|p| gobgp_next_hop(p) == Some("10.0.0.3"))
        .unwrap();
    assert_eq!(frr_t3["nlri"]["type"], 3);
    assert_eq!(frr_t3["nlri"]["value"]["rd"]["admin"], "10.0.0.3");
    assert_eq!(gobgp_attr(frr_t3, 9).unwrap()["value"], "10.0.0.3");
    assert_eq!(
        gobgp_attr(frr_t3, 10).unwrap()["value"],
        serde_json::json!([CLUSTER_ID.to_string()])
    );
    assert_eq!(gobgp_attr(frr_t3, 22).unwrap()["tunnel-id"], "10.0.0.3");
    assert!(gobgp_has_rt_and_vxlan(frr_t3), "{frr_t3}");
    // Nothing of GoBGP's own came back.
    assert!(
        !paths
            .iter()
            .any(|p| gobgp_next_hop(p) == Some("10.0.0.2") && p["neighbor-ip"] == "10.0.0.1"),
        "GoBGP got its own routes back"
    );

    // 2. FRR learns ours and GoBGP's (reflected) in its BGP table.
    let frr_learned = wait_for(
        "FRR to hold our two and GoBGP's two EVPN routes",
        40,
        || {
            let paths = frr_paths(frr);
            let from_us = |rd: &str| {
                paths
                    .iter()
                    .filter(|(r, _, p)| r == rd && p["peerId"] == "10.0.0.1")
                    .count()
            };
            (from_us("10.0.0.1:100") == 2 && from_us("10.0.0.2:100") == 2).then_some(paths)
        },
    );
    for (rd, key, path) in &frr_learned {
        if path["peerId"] != "10.0.0.1" {
            // FRR's own type 3 never came back from us.
            assert_eq!(path["peerId"], "(unspec)", "{rd} {key}: {path}");
            continue;
        }
        let vtep = if rd == "10.0.0.1:100" {
            "10.0.0.1"
        } else {
            "10.0.0.2"
        };
        assert_eq!(path["nexthops"][0]["ip"], vtep, "{rd} {key}");
        let ec = path["extendedCommunity"]["string"].as_str().unwrap_or("");
        assert!(
            ec.contains("RT:65100:100") && ec.contains("ET:8"),
            "{key}: {ec}"
        );
    }
    let keys: Vec<&str> = frr_learned.iter().map(|(_, k, _)| k.as_str()).collect();
    assert!(keys.contains(&"[2]:[0]:[48]:[52:54:00:aa:00:01]:[32]:[192.168.100.1]"));
    assert!(keys.contains(&"[3]:[0]:[32]:[10.0.0.1]"));
    assert!(keys.contains(&"[2]:[0]:[48]:[52:54:00:bb:00:02]:[32]:[192.168.100.2]"));
    // Reflected with ORIGINATOR_ID and CLUSTER_LIST.
    let detail = frr
        .vtysh("show bgp l2vpn evpn route rd 10.0.0.2:100 json")
        .unwrap_or_default();
    let detail: Value = serde_json::from_str(&detail).expect("FRR route detail JSON");
    let mut reflected = 0;
    for (key, route) in detail["10.0.0.2:100"].as_object().into_iter().flatten() {
        for path in route["paths"].as_array().into_iter().flatten() {
            let path = path.as_array().and_then(|a| a.first()).unwrap_or(path);
            assert_eq!(path["originatorId"], "10.0.0.2", "{key}: {path}");
            assert_eq!(
                path["clusterList"]["list"],
                serde_json::json!([CLUSTER_ID.to_string()]),
                "{key}: {path}"
            );
            reflected += 1;
        }
    }
    assert_eq!(reflected, 2, "{detail}");
    // FRR has VNI 100 with route target 65100:100, so it also imports the routes into the
    // VNI: our MAC and both remote VTEPs land in the kernel's forwarding database.
    let fdb = wait_for("FRR to install our MAC in vxlan100's fdb", 20, || {
        let fdb = frr_ns.exec(&["bridge", "fdb", "show", "dev", "vxlan100"]);
        (fdb.contains("52:54:00:aa:00:01 dst 10.0.0.1")
            && fdb.contains("52:54:00:bb:00:02 dst 10.0.0.2"))
        .then_some(fdb)
    });
    assert!(
        fdb.contains("00:00:00:00:00:00 dst 10.0.0.1"),
        "our type 3 in the flood list: {fdb}"
    );

    // 3. We decode GoBGP's and FRR's routes.
    let rib = wait_for("our RIB to hold GoBGP's two and FRR's type 3", 40, || {
        let rib = our_rib();
        let from = |n: u8| rib.iter().filter(|r| r.from == Some(ip(n))).count();
        (from(2) == 2 && from(3) == 1).then_some(rib)
    });
    let rt_vxlan = |r: &EvpnRibRoute| {
        r.ext_communities.contains(&ExtCommunity::RouteTargetAs2 {
            asn: 65100,
            number: 100,
        }) && r
            .ext_communities
            .contains(&ExtCommunity::Encapsulation { tunnel_type: 8 })
    };
    let gobgp_mac = rib
        .iter()
        .find_map(|r| match &r.route {
            EvpnRoute::MacIp(m) if r.from == Some(ip(2)) => Some((r, m)),
            _ => None,
        })
        .expect("GoBGP's type 2 in our RIB");
    assert_eq!(
        gobgp_mac.1.rd,
        RouteDistinguisher::Ip {
            ip: Ipv4Addr::new(10, 0, 0, 2),
            number: 100
        }
    );
    assert_eq!(mac_str(&gobgp_mac.1.mac), "52:54:00:bb:00:02");
    assert_eq!(gobgp_mac.1.ip, Some("192.168.100.2".parse().unwrap()));
    assert_eq!(
        gobgp_mac.1.label1, VNI,
        "GoBGP writes the VNI as the whole label"
    );
    assert_eq!(gobgp_mac.0.next_hops, vec![Some(ip(2))]);
    assert!(rt_vxlan(gobgp_mac.0));
    for (n, rd_ip) in [(2u8, ip(2)), (3, ip(3))] {
        let t3 = rib
            .iter()
            .find(|r| r.from == Some(ip(n)) && matches!(r.route, EvpnRoute::InclusiveMulticast(_)))
            .unwrap_or_else(|| panic!("10.0.0.{n}'s type 3 in our RIB"));
        let EvpnRoute::InclusiveMulticast(m) = &t3.route else {
            unreachable!()
        };
        assert_eq!(m.originator, rd_ip);
        assert!(matches!(m.rd, RouteDistinguisher::Ip { ip, .. } if IpAddr::V4(ip) == rd_ip));
        assert_eq!(
            t3.pmsi_tunnel,
            Some(PmsiTunnel::ingress_replication(VNI, rd_ip)),
            "PMSI of 10.0.0.{n}"
        );
        assert_eq!(t3.next_hops, vec![Some(rd_ip)]);
        assert!(rt_vxlan(t3), "{t3:?}");
    }

    // 5. Type 5 (RFC 9136) both ways with GoBGP.
    type5(rt, speaker, gobgp, frr);

    // 4. GoBGP withdraws its type 2: gone from our RIB and, through us, from FRR's table.
    gobgp
        .gobgp(&[
            "global",
            "rib",
            "-a",
            "evpn",
            "del",
            "macadv",
            "52:54:00:bb:00:02",
            "192.168.100.2",
            "etag",
            "0",
            "label",
            "100",
            "rd",
            "10.0.0.2:100",
        ])
        .expect("gobgp del macadv");
    wait_for("GoBGP's type 2 to leave our RIB and FRR's", 20, || {
        let ours = our_rib()
            .iter()
            .any(|r| r.from == Some(ip(2)) && matches!(r.route, EvpnRoute::MacIp(_)));
        let frrs = frr_paths(frr)
            .iter()
            .any(|(rd, key, _)| rd == "10.0.0.2:100" && key.starts_with("[2]"));
        (!ours && !frrs).then_some(())
    });
}

/// Type 5 both ways: GoBGP's IP prefix route (gateway, label, router's MAC) decoded by us and
/// reflected to FRR; ours decoded by GoBGP.
fn type5(rt: &tokio::runtime::Runtime, speaker: &Speaker, gobgp: &GoBgp, frr: &Frr) {
    let ours = EvpnRoute::IpPrefix(IpPrefixRoute {
        rd: RouteDistinguisher::Ip {
            ip: Ipv4Addr::new(10, 0, 0, 1),
            number: 66,
        },
        esi: Esi::default(),
        ethernet_tag: 0,
        prefix: "10.66.0.0/16".parse().unwrap(),
        gateway: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        label: 6000,
    });
    let attrs = PathAttrs {
        next_hop: Some(ip(1)),
        ext_communities: vec![
            ExtCommunity::RouteTargetAs2 {
                asn: AS as u16,
                number: 66,
            },
            ExtCommunity::Encapsulation { tunnel_type: 8 },
            ExtCommunity::RouterMac(OUR_MAC),
        ],
        ..PathAttrs::default()
    };
    speaker.announce_evpn(vec![ours], attrs).unwrap();
    gobgp
        .gobgp(&[
            "global",
            "rib",
            "-a",
            "evpn",
            "add",
            "prefix",
            "10.55.0.0/16",
            "gw",
            "10.0.0.2",
            "etag",
            "0",
            "label",
            "5000",
            "rd",
            "10.0.0.2:55",
            "rt",
            "65100:55",
            "encap",
            "vxlan",
            "router-mac",
            "02:00:00:00:00:02",
            "nexthop",
            "10.0.0.2",
        ])
        .expect("gobgp prefix");

    let at_gobgp = wait_for("GoBGP to hold our type 5", 20, || {
        gobgp_paths(gobgp)
            .into_iter()
            .find(|p| p["nlri"]["type"] == 5 && gobgp_next_hop(p) == Some("10.0.0.1"))
    });
    let v = &at_gobgp["nlri"]["value"];
    assert_eq!(v["rd"]["admin"], "10.0.0.1", "{at_gobgp}");
    assert_eq!(v["rd"]["assigned"], 66);
    assert_eq!(v["prefix"], "10.66.0.0/16", "{at_gobgp}");
    assert_eq!(v["label"], 6000, "{at_gobgp}");
    let ecs = gobgp_attr(&at_gobgp, 16).unwrap()["value"]
        .as_array()
        .unwrap();
    assert!(
        ecs.iter()
            .any(|c| c["type"] == 6 && c["subtype"] == 3 && c["mac"] == "52:54:00:aa:00:01"),
        "router's MAC at GoBGP: {at_gobgp}"
    );

    let theirs = wait_for("GoBGP's type 5 in our RIB", 20, || {
        rt.block_on(speaker.evpn_rib())
            .unwrap()
            .into_iter()
            .find(|r| matches!(r.route, EvpnRoute::IpPrefix(_)) && r.from == Some(ip(2)))
    });
    let EvpnRoute::IpPrefix(p) = &theirs.route else {
        unreachable!()
    };
    assert_eq!(p.prefix, "10.55.0.0/16".parse::<ipnet::IpNet>().unwrap());
    assert_eq!(p.gateway, ip(2));
    assert_eq!(p.label, 5000);
    assert_eq!(
        p.rd,
        RouteDistinguisher::Ip {
            ip: Ipv4Addr::new(10, 0, 0, 2),
            number: 55
        }
    );
    assert!(theirs
        .ext_communities
        .contains(&ExtCommunity::RouterMac([2, 0, 0, 0, 0, 2])));
    assert_eq!(theirs.next_hops, vec![Some(ip(2))]);
    // FRR (no VRF here, so it only holds them) has both in its BGP table.
    wait_for("FRR to hold both type 5 routes", 20, || {
        let paths = frr_paths(frr);
        let has = |rd: &str| {
            paths
                .iter()
                .any(|(r, key, p)| r == rd && key.starts_with("[5]") && p["peerId"] == "10.0.0.1")
        };
        (has("10.0.0.1:66") && has("10.0.0.2:55")).then_some(())
    });
}

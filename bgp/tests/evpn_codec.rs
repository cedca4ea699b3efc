//! The EVPN codec (RFC 7432, RFC 8365, RFC 9136): byte-exact fixtures for each route type,
//! the extended communities and the PMSI tunnel attribute; property tests that everything we
//! write decodes to what was written; the RFC 7606 handling of malformed EVPN NLRI (session
//! reset), unknown route types (kept opaque), malformed extended communities and PMSI tunnel
//! attributes (treat-as-withdraw); the family in OPEN and in the configuration; and that no
//! byte string makes the decoders panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fabric_bgp::packet::encode::{EncodeCtx, Packer};
use fabric_bgp::packet::evpn::{
    self, Esi, EvpnReach, EvpnRoute, EvpnUnreach, InclusiveMulticastRoute, IpPrefixRoute,
    MacIpRoute, RouteDistinguisher,
};
use fabric_bgp::packet::ext_community::{self, ExtCommunity};
use fabric_bgp::packet::frame::split_message;
use fabric_bgp::packet::pmsi::{PmsiTunnel, TunnelId};
use fabric_bgp::packet::update::decode_update;
use fabric_bgp::packet::{
    decode_message, Afi, AsPath, DecodeCtx, Message, Origin, PathAttrs, Update, WireError,
};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

fn mac_ip() -> EvpnRoute {
    EvpnRoute::MacIp(MacIpRoute {
        rd: RouteDistinguisher::Ip {
            ip: Ipv4Addr::new(10, 0, 0, 1),
            number: 100,
        },
        esi: Esi::default(),
        ethernet_tag: 0,
        mac: MAC,
        ip: Some(v4(192, 168, 10, 5)),
        label1: 10100,
        label2: None,
    })
}

fn multicast() -> EvpnRoute {
    EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
        rd: RouteDistinguisher::As2 {
            asn: 65000,
            number: 100,
        },
        ethernet_tag: 0,
        originator: v4(10, 0, 0, 1),
    })
}

fn ip_prefix() -> EvpnRoute {
    EvpnRoute::IpPrefix(IpPrefixRoute {
        rd: RouteDistinguisher::As4 {
            asn: 4_200_000_000,
            number: 7,
        },
        esi: Esi::default(),
        ethernet_tag: 0,
        prefix: "10.1.0.0/16".parse().unwrap(),
        gateway: v4(0, 0, 0, 0),
        label: 50000,
    })
}

fn encode_routes(routes: &[EvpnRoute]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in routes {
        r.encode(&mut out);
    }
    out
}

// ---- byte-exact fixtures, laid out field by field from the RFCs' formats ----

#[test]
fn mac_ip_route_fixture() {
    // RFC 7432 §7.2: type 2, length 37 = RD 8 + ESI 10 + tag 4 + MAC len 1 + MAC 6 +
    // IP len 1 + IPv4 4 + label 3. RD type 1 (10.0.0.1:100), VNI 10100 (0x002774) as the whole
    // label field (RFC 8365 §5.1.3).
    let want = hex("02 25
         0001 0a000001 0064
         00000000000000000000
         00000000
         30 525400123456
         20 c0a80a05
         002774");
    assert_eq!(encode_routes(&[mac_ip()]), want);
    assert_eq!(evpn::decode_routes(&want, "t").unwrap(), vec![mac_ip()]);
}

#[test]
fn mac_only_and_ipv6_with_label2_fixtures() {
    let EvpnRoute::MacIp(mut r) = mac_ip() else {
        unreachable!()
    };
    r.ip = None;
    let mac_only =
        hex("02 21 0001 0a000001 0064 00000000000000000000 00000000 30 525400123456 00 002774");
    assert_eq!(encode_routes(&[EvpnRoute::MacIp(r.clone())]), mac_only);
    r.ip = Some(IpAddr::V6("2001:db8::5".parse().unwrap()));
    r.label2 = Some(5000);
    let v6 = hex(
        "02 34 0001 0a000001 0064 00000000000000000000 00000000 30 525400123456
         80 20010db8000000000000000000000005 002774 001388",
    );
    assert_eq!(encode_routes(&[EvpnRoute::MacIp(r.clone())]), v6);
    assert_eq!(
        evpn::decode_routes(&v6, "t").unwrap(),
        vec![EvpnRoute::MacIp(r)]
    );
}

#[test]
fn inclusive_multicast_route_fixture() {
    // RFC 7432 §7.3: type 3, length 17 = RD 8 + tag 4 + IP len 1 + IPv4 4. RD type 0.
    let want = hex("03 11 0000 fde8 00000064 00000000 20 0a000001");
    assert_eq!(encode_routes(&[multicast()]), want);
    assert_eq!(evpn::decode_routes(&want, "t").unwrap(), vec![multicast()]);
}

#[test]
fn ip_prefix_route_fixture() {
    // RFC 9136 §3.1: type 5, length 34 = RD 8 + ESI 10 + tag 4 + prefix len 1 + prefix 4 +
    // gateway 4 + label 3. RD type 2 (4200000000:7).
    let want =
        hex("05 22 0002 fa56ea00 0007 00000000000000000000 00000000 10 0a010000 00000000 00c350");
    assert_eq!(encode_routes(&[ip_prefix()]), want);
    assert_eq!(evpn::decode_routes(&want, "t").unwrap(), vec![ip_prefix()]);
}

#[test]
fn extended_community_fixtures() {
    let cases = [
        (
            ExtCommunity::RouteTargetAs2 {
                asn: 65000,
                number: 10100,
            },
            "0002 fde8 00002774",
        ),
        (
            ExtCommunity::RouteTargetIp {
                ip: Ipv4Addr::new(10, 0, 0, 1),
                number: 5,
            },
            "0102 0a000001 0005",
        ),
        (
            ExtCommunity::RouteTargetAs4 {
                asn: 4_200_000_000,
                number: 9,
            },
            "0202 fa56ea00 0009",
        ),
        (
            ExtCommunity::Encapsulation { tunnel_type: 8 },
            "030c 00000000 0008",
        ),
        (
            ExtCommunity::MacMobility {
                sticky: true,
                sequence: 3,
            },
            "0600 01 00 00000003",
        ),
        (ExtCommunity::RouterMac(MAC), "0603 525400123456"),
        (ExtCommunity::GroupId(0xdead_beef), "8301 0000 deadbeef"),
        (
            ExtCommunity::Other([0x80, 0x06, 0, 0, 0, 0, 0, 0]),
            "8006 0000 00000000",
        ),
    ];
    for (c, bytes) in cases {
        let b = hex(bytes);
        assert_eq!(c.to_bytes().to_vec(), b, "{c:?}");
        assert_eq!(ext_community::decode(&b).unwrap(), vec![c]);
    }
    // Reserved bytes that are not zero: kept verbatim, never reinterpreted.
    let odd = hex("030c 00000001 0008");
    assert!(matches!(
        ext_community::decode(&odd).unwrap()[0],
        ExtCommunity::Other(_)
    ));
}

#[test]
fn pmsi_tunnel_fixture() {
    // RFC 6514 §5: flags 0, type 6 (ingress replication), label = VNI 10100, tunnel id.
    let p = PmsiTunnel::ingress_replication(10100, v4(10, 0, 0, 1));
    let want = hex("00 06 002774 0a000001");
    assert_eq!(p.encode(), want);
    assert_eq!(PmsiTunnel::decode(&want).unwrap(), p);
}

/// A whole UPDATE as FRR and GoBGP send a type 3: ORIGIN, AS_PATH, MP_REACH (EVPN, next hop
/// 10.0.0.1), EXTENDED_COMMUNITIES (RT 65000:10100, VXLAN), PMSI_TUNNEL.
#[test]
fn type3_update_fixture() {
    let attrs = PathAttrs {
        origin: Origin::Igp,
        as_path: AsPath::default(),
        local_pref: Some(100),
        ext_communities: vec![
            ExtCommunity::RouteTargetAs2 {
                asn: 65000,
                number: 10100,
            },
            ExtCommunity::Encapsulation { tunnel_type: 8 },
        ],
        pmsi_tunnel: Some(PmsiTunnel::ingress_replication(10100, v4(10, 0, 0, 1))),
        ..PathAttrs::default()
    };
    let update = Update {
        attrs: Some(attrs.clone()),
        evpn_reach: Some(EvpnReach {
            next_hop: v4(10, 0, 0, 1),
            routes: vec![multicast()],
        }),
        ..Update::default()
    };
    let bytes = Message::Update(Box::new(update.clone())).to_bytes(EncodeCtx::default());
    let want = hex("ffffffffffffffffffffffffffffffff 0064 02
         0000 004d
         90 0e 001c 0019 46 04 0a000001 00 03 11 0000fde800000064 00000000 20 0a000001
         40 01 01 00
         40 02 00
         40 05 04 00000064
         c0 10 10 0002fde800002774 030c000000000008
         c0 16 09 0006002774 0a000001");
    assert_eq!(bytes, want);
    let ctx = DecodeCtx {
        four_octet_as: true,
        ibgp: true,
    };
    let Message::Update(got) = decode_message(&bytes, 4096, ctx).unwrap() else {
        panic!("not an UPDATE")
    };
    assert_eq!(*got, update);
}

/// The family in OPEN: multiprotocol (AFI 25, SAFI 70) and graceful restart, both ways; the
/// configuration's JSON name.
#[test]
fn l2vpn_evpn_family_in_open_and_config() {
    let open = fabric_bgp::packet::Open::new(
        65000,
        90,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            fabric_bgp::packet::Capability::Multiprotocol {
                afi: Afi::L2vpnEvpn.code(),
                safi: Afi::L2vpnEvpn.safi(),
            },
            fabric_bgp::packet::Capability::GracefulRestart(fabric_bgp::packet::GracefulRestart {
                restarting: false,
                restart_time: 120,
                families: vec![(Afi::L2vpnEvpn, true)],
            }),
        ],
    );
    let bytes = Message::Open(open.clone()).to_bytes(EncodeCtx::default());
    let hex_of: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Multiprotocol: code 1, length 4, AFI 25, reserved, SAFI 70; graceful restart: code 64,
    // length 6, time 120, AFI 25, SAFI 70, forwarding bit.
    assert!(hex_of.contains("010400190046"), "{hex_of}");
    assert!(hex_of.contains("4006007800194680"), "{hex_of}");
    let Message::Open(back) = decode_message(&bytes, 4096, DecodeCtx::default()).unwrap() else {
        panic!()
    };
    assert_eq!(back, open);
    assert_eq!(back.families(), vec![Afi::L2vpnEvpn]);
    assert_eq!(
        back.graceful_restart().unwrap().families,
        vec![(Afi::L2vpnEvpn, true)]
    );
    // AFI 25 with a SAFI other than 70 is not ours.
    assert_eq!(Afi::from_afi_safi(25, 65), None);

    let cfg: fabric_bgp::SpeakerConfig = serde_json::from_str(
        r#"{"local_as": 65000, "router_id": "10.0.0.1",
            "peers": [{"address": "10.0.0.2", "peer_as": 65000, "families": ["Ipv4", "L2vpnEvpn"]}],
            "dynamic_neighbors": [{"prefix": "10.1.0.0/16", "families": ["L2vpnEvpn"]}]}"#,
    )
    .unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.peers[0].families, vec![Afi::Ipv4, Afi::L2vpnEvpn]);
    assert_eq!(cfg.dynamic_neighbors[0].families, vec![Afi::L2vpnEvpn]);
    assert_eq!(
        serde_json::to_string(&Afi::L2vpnEvpn).unwrap(),
        "\"L2vpnEvpn\""
    );
}

// ---- RFC 7606 / RFC 7432 error handling ----

fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags | 0x10, code];
    v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn mp_reach(nlri: &[u8]) -> Vec<u8> {
    let mut v = hex("0019 46 04 0a000001 00");
    v.extend_from_slice(nlri);
    attr(0x80, 14, &v)
}

fn body(attrs: &[Vec<u8>]) -> Vec<u8> {
    let all: Vec<u8> = attrs.concat();
    let mut b = vec![0, 0];
    b.extend_from_slice(&(all.len() as u16).to_be_bytes());
    b.extend_from_slice(&all);
    b
}

fn wellknown() -> Vec<Vec<u8>> {
    vec![hex("40 01 01 00"), hex("40 02 00")]
}

fn decode(b: &[u8]) -> Result<Update, WireError> {
    decode_update(b, DecodeCtx::default())
}

fn is_reset(r: Result<Update, WireError>) {
    let e = r.expect_err("expected a session reset");
    assert_eq!((e.code, e.subcode), (3, 9), "{e}");
}

#[test]
fn truncated_or_inconsistent_evpn_routes_reset_the_session() {
    let good = encode_routes(&[mac_ip()]);
    // A route overrunning the attribute.
    let mut a = wellknown();
    a.push(mp_reach(&good[..good.len() - 1]));
    is_reset(decode(&body(&a)));
    // A type 2 whose MAC length is not 48.
    let mut bad = good.clone();
    bad[2 + 22] = 47;
    let mut a = wellknown();
    a.push(mp_reach(&bad));
    is_reset(decode(&body(&a)));
    // A type 2 with 2 bytes after label 1.
    let mut bad = good.clone();
    bad[1] += 2;
    bad.extend_from_slice(&[0, 0]);
    let mut a = wellknown();
    a.push(mp_reach(&bad));
    is_reset(decode(&body(&a)));
    // A type 5 of 35 bytes, an IPv4 type 5 of prefix length 33, a type 3 with IP length 24.
    let mut t5 = encode_routes(&[ip_prefix()]);
    t5[1] = 35;
    t5.push(0);
    let mut t5_len = encode_routes(&[ip_prefix()]);
    t5_len[2 + 22] = 33;
    let mut t3 = encode_routes(&[multicast()]);
    t3[2 + 12] = 24;
    for nlri in [t5, t5_len, t3] {
        let mut a = wellknown();
        a.push(mp_reach(&nlri));
        is_reset(decode(&body(&a)));
    }
    // In MP_UNREACH too.
    let mut un = hex("0019 46");
    un.extend_from_slice(&good[..10]);
    is_reset(decode(&body(&[attr(0x80, 15, &un)])));
    // A bad next-hop length.
    let mut v = hex("0019 46 05 0a00000100 00");
    v.extend_from_slice(&good);
    let mut a = wellknown();
    a.push(attr(0x80, 14, &v));
    is_reset(decode(&body(&a)));
}

#[test]
fn unknown_route_types_are_kept_opaque_not_errors() {
    // Type 1 (Ethernet A-D, not interpreted) and a type 42, between two routes we know.
    let mut nlri = encode_routes(&[mac_ip()]);
    nlri.extend_from_slice(&hex("01 03 aabbcc"));
    nlri.extend_from_slice(&hex("2a 00"));
    nlri.extend(encode_routes(&[multicast()]));
    let mut a = wellknown();
    a.push(mp_reach(&nlri));
    let u = decode(&body(&a)).unwrap();
    let routes = u.evpn_reach.unwrap().routes;
    assert_eq!(routes.len(), 4);
    assert_eq!(
        routes[1],
        EvpnRoute::Opaque {
            route_type: 1,
            value: vec![0xaa, 0xbb, 0xcc]
        }
    );
    assert_eq!(routes[3], multicast());
    // And they are written back as they came.
    assert_eq!(encode_routes(&routes), nlri);
}

#[test]
fn malformed_extended_communities_withdraw_the_evpn_routes() {
    for flags in [0xc0u8, 0x80] {
        let value: &[u8] = if flags == 0xc0 { &[0; 7] } else { &[0; 8] };
        let mut a = wellknown();
        a.push(mp_reach(&encode_routes(&[mac_ip()])));
        a.push(attr(flags, 16, value));
        let u = decode(&body(&a)).unwrap();
        assert!(u.treat_as_withdraw.is_some(), "flags {flags:#x}");
        assert!(u.evpn_reach.is_none());
        assert_eq!(u.end_of_rib(), None);
        assert_eq!(u.evpn_unreach.unwrap().routes, vec![mac_ip()]);
    }
}

#[test]
fn malformed_pmsi_tunnel_withdraws() {
    // Under 5 bytes, and ingress replication whose tunnel id is 3 bytes.
    for value in [hex("0006 0027"), hex("00 06 002774 0a0000")] {
        let mut a = wellknown();
        a.push(mp_reach(&encode_routes(&[multicast()])));
        a.push(attr(0xc0, 22, &value));
        let u = decode(&body(&a)).unwrap();
        assert!(u.treat_as_withdraw.is_some());
        assert_eq!(u.evpn_unreach.unwrap().routes, vec![multicast()]);
    }
    // An unknown tunnel type is kept, opaque.
    let mut a = wellknown();
    a.push(mp_reach(&encode_routes(&[multicast()])));
    a.push(attr(0xc0, 22, &hex("00 07 000000 01020304050607")));
    let u = decode(&body(&a)).unwrap();
    assert_eq!(
        u.attrs.unwrap().pmsi_tunnel.unwrap().tunnel_id,
        TunnelId::Other(vec![1, 2, 3, 4, 5, 6, 7])
    );
}

#[test]
fn evpn_end_of_rib_is_recognised() {
    let b = body(&[attr(0x80, 15, &hex("0019 46"))]);
    let u = decode(&b).unwrap();
    assert_eq!(u.evpn_unreach, Some(EvpnUnreach::default()));
    assert_eq!(u.end_of_rib(), Some(Afi::L2vpnEvpn));
    // What our packer writes for it decodes as one.
    let mut out = Vec::new();
    Packer::new(EncodeCtx::default()).end_of_rib(Afi::L2vpnEvpn, &mut out);
    let Message::Update(u) = decode_message(&out, 4096, DecodeCtx::default()).unwrap() else {
        panic!()
    };
    assert_eq!(u.end_of_rib(), Some(Afi::L2vpnEvpn));
}

#[test]
fn missing_well_known_attributes_withdraw_evpn_routes() {
    let u = decode(&body(&[mp_reach(&encode_routes(&[mac_ip()]))])).unwrap();
    assert!(u.treat_as_withdraw.is_some());
    assert_eq!(u.evpn_unreach.unwrap().routes, vec![mac_ip()]);
}

#[test]
fn packer_splits_many_evpn_routes_and_they_all_decode() {
    let routes: Vec<EvpnRoute> = (0..500u32)
        .map(|i| {
            let EvpnRoute::MacIp(mut r) = mac_ip() else {
                unreachable!()
            };
            r.mac[4] = (i >> 8) as u8;
            r.mac[5] = i as u8;
            EvpnRoute::MacIp(r)
        })
        .collect();
    let attrs = PathAttrs {
        next_hop: Some(v4(10, 0, 0, 1)),
        ext_communities: vec![ExtCommunity::Encapsulation { tunnel_type: 8 }],
        ..PathAttrs::default()
    };
    let mut packer = Packer::new(EncodeCtx::default());
    let mut out = Vec::new();
    packer.announce_evpn(&attrs, &routes, &mut out);
    packer.withdraw_evpn(&routes, &mut out);
    let (mut got, mut gone) = (Vec::new(), Vec::new());
    let mut rest = &out[..];
    while let Some((h, _)) = split_message(rest, 4096).unwrap() {
        let Message::Update(u) =
            decode_message(&rest[..h.len], 4096, DecodeCtx::default()).unwrap()
        else {
            panic!()
        };
        assert!(u.treat_as_withdraw.is_none());
        if let Some(r) = u.evpn_reach {
            assert_eq!(r.next_hop, v4(10, 0, 0, 1));
            got.extend(r.routes);
        }
        if let Some(w) = u.evpn_unreach {
            gone.extend(w.routes);
        }
        rest = &rest[h.len..];
    }
    assert_eq!(got, routes);
    assert_eq!(gone, routes);
    assert!(packer.messages >= 10, "{} UPDATEs", packer.messages);
}

// ---- properties ----

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
    ]
}

fn arb_rd() -> impl Strategy<Value = RouteDistinguisher> {
    any::<[u8; 8]>().prop_map(RouteDistinguisher::from_bytes)
}

fn label() -> impl Strategy<Value = u32> {
    0..=evpn::MAX_LABEL
}

fn arb_route() -> impl Strategy<Value = EvpnRoute> {
    prop_oneof![
        (
            arb_rd(),
            any::<[u8; 10]>(),
            any::<u32>(),
            any::<[u8; 6]>(),
            proptest::option::of(arb_ip()),
            label(),
            proptest::option::of(label()),
        )
            .prop_map(|(rd, esi, tag, mac, ip, l1, l2)| {
                EvpnRoute::MacIp(MacIpRoute {
                    rd,
                    esi: Esi(esi),
                    ethernet_tag: tag,
                    mac,
                    ip,
                    label1: l1,
                    label2: l2,
                })
            }),
        (arb_rd(), any::<u32>(), arb_ip()).prop_map(|(rd, tag, originator)| {
            EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
                rd,
                ethernet_tag: tag,
                originator,
            })
        }),
        (
            arb_rd(),
            any::<[u8; 10]>(),
            any::<u32>(),
            arb_ip(),
            any::<u8>(),
            any::<bool>(),
            label()
        )
            .prop_map(|(rd, esi, tag, addr, len, zero_gw, l)| {
                let prefix = match addr {
                    IpAddr::V4(a) => {
                        ipnet::IpNet::V4(ipnet::Ipv4Net::new(a, len % 33).unwrap().trunc())
                    }
                    IpAddr::V6(a) => {
                        ipnet::IpNet::V6(ipnet::Ipv6Net::new(a, len % 129).unwrap().trunc())
                    }
                };
                let gateway = match (addr, zero_gw) {
                    (IpAddr::V4(_), true) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    (IpAddr::V6(_), true) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    _ => addr,
                };
                EvpnRoute::IpPrefix(IpPrefixRoute {
                    rd,
                    esi: Esi(esi),
                    ethernet_tag: tag,
                    prefix,
                    gateway,
                    label: l,
                })
            }),
        (
            (0u8..=255).prop_filter("interpreted", |t| ![2, 3, 5].contains(t)),
            proptest::collection::vec(any::<u8>(), 0..60)
        )
            .prop_map(|(route_type, value)| EvpnRoute::Opaque { route_type, value }),
    ]
}

fn arb_attrs() -> impl Strategy<Value = PathAttrs> {
    (
        proptest::collection::vec(any::<[u8; 8]>(), 0..6),
        proptest::option::of((label(), arb_ip())),
        proptest::collection::vec(1u32..4_000_000_000, 0..4),
    )
        .prop_map(|(ecs, pmsi, path)| PathAttrs {
            as_path: AsPath::sequence(path),
            local_pref: Some(100),
            ext_communities: ecs.into_iter().map(ExtCommunity::from_bytes).collect(),
            pmsi_tunnel: pmsi.map(|(l, ip)| PmsiTunnel::ingress_replication(l, ip)),
            ..PathAttrs::default()
        })
}

proptest! {
    #[test]
    fn routes_round_trip(routes in proptest::collection::vec(arb_route(), 0..20)) {
        let bytes = encode_routes(&routes);
        prop_assert_eq!(
            bytes.len(),
            routes.iter().map(EvpnRoute::encoded_len).sum::<usize>()
        );
        let back = evpn::decode_routes(&bytes, "t").unwrap();
        prop_assert_eq!(&back, &routes);
        // Keys equal exactly when the key fields are.
        for (a, b) in back.iter().zip(&routes) {
            prop_assert_eq!(a.key(), b.key());
        }
    }

    #[test]
    fn extended_communities_round_trip(raw in proptest::collection::vec(any::<[u8; 8]>(), 1..20)) {
        let bytes: Vec<u8> = raw.concat();
        let decoded = ext_community::decode(&bytes).unwrap();
        prop_assert_eq!(ext_community::encode(&decoded), bytes);
    }

    #[test]
    fn updates_round_trip(
        routes in proptest::collection::vec(arb_route(), 1..10),
        withdrawn in proptest::collection::vec(arb_route(), 0..10),
        attrs in arb_attrs(),
        nh in arb_ip(),
    ) {
        let update = Update {
            attrs: Some(attrs),
            evpn_reach: Some(EvpnReach { next_hop: nh, routes }),
            evpn_unreach: Some(EvpnUnreach { routes: withdrawn }),
            ..Update::default()
        };
        let bytes = Message::Update(Box::new(update.clone())).to_bytes(EncodeCtx {
            four_octet_as: true,
            max_len: 65535,
        });
        let ctx = DecodeCtx { four_octet_as: true, ibgp: true };
        let Message::Update(got) = decode_message(&bytes, 65535, ctx).unwrap() else {
            panic!()
        };
        prop_assert_eq!(*got, update);
    }

    #[test]
    fn any_bytes_in_evpn_attributes_never_panic(
        nlri in proptest::collection::vec(any::<u8>(), 0..200),
        ec in proptest::collection::vec(any::<u8>(), 0..40),
        pmsi in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let _ = evpn::decode_routes(&nlri, "t");
        let _ = ext_community::decode(&ec);
        let _ = PmsiTunnel::decode(&pmsi);
        let mut a = wellknown();
        a.push(mp_reach(&nlri));
        a.push(attr(0xc0, 16, &ec));
        a.push(attr(0xc0, 22, &pmsi));
        let mut un = hex("0019 46");
        un.extend_from_slice(&nlri);
        a.push(attr(0x80, 15, &un));
        let _ = decode(&body(&a));
    }
}

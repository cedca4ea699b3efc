//! Byte fixtures for every message and attribute we send or accept: each fixture decodes to
//! the expected value and that value encodes back to the same bytes. zettabgp, an independent
//! decoder, is used as a cross-check on the UPDATEs we produce.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fabric_bgp::packet::attrs::{AsSegment, RawAttr, SegmentKind};
use fabric_bgp::packet::encode::{EncodeCtx, Packer};
use fabric_bgp::packet::frame::MAX_LEN;
use fabric_bgp::packet::{
    decode_message, Afi, AsPath, Capability, DecodeCtx, GracefulRestart, Message, MpReach,
    MpUnreach, Notification, Open, Origin, PathAttrs, RouteRefresh, Update,
};

fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).expect("fixture hex"))
        .collect()
}

const MARKER: &str = "ffffffffffffffffffffffffffffffff";

fn ibgp4() -> DecodeCtx {
    DecodeCtx {
        four_octet_as: true,
        ibgp: true,
    }
}

/// Decode the fixture, compare, encode, compare bytes.
fn round_trip(bytes_hex: &str, ctx: DecodeCtx, expected: Message) {
    let bytes = hex(bytes_hex);
    let decoded = decode_message(&bytes, MAX_LEN, ctx).expect("fixture decodes");
    assert_eq!(decoded, expected, "decoded fixture");
    let enc = EncodeCtx {
        four_octet_as: ctx.four_octet_as,
        max_len: MAX_LEN,
    };
    assert_eq!(
        hex_of(&expected.to_bytes(enc)),
        hex_of(&bytes),
        "re-encoded fixture"
    );
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

#[test]
fn keepalive() {
    round_trip(
        &format!("{MARKER} 0013 04"),
        DecodeCtx::default(),
        Message::Keepalive,
    );
}

#[test]
fn notification_cease_admin_shutdown() {
    round_trip(
        &format!("{MARKER} 0015 03 06 02"),
        DecodeCtx::default(),
        Message::Notification(Notification {
            code: 6,
            subcode: 2,
            data: vec![],
        }),
    );
}

#[test]
fn notification_with_data() {
    round_trip(
        &format!("{MARKER} 0017 03 01 02 1000"),
        DecodeCtx::default(),
        Message::Notification(Notification {
            code: 1,
            subcode: 2,
            data: vec![0x10, 0x00],
        }),
    );
}

#[test]
fn route_refresh_ipv4_unicast() {
    round_trip(
        &format!("{MARKER} 0017 05 0001 00 01"),
        DecodeCtx::default(),
        Message::RouteRefresh(RouteRefresh { afi: 1, safi: 1 }),
    );
}

#[test]
fn open_with_every_capability_we_send() {
    // version 4, AS 65001, hold 90, id 10.0.0.1, one capabilities parameter of 30 bytes:
    // MP ipv4/unicast, MP ipv6/unicast, route refresh, extended message, 4-octet AS 65001,
    // graceful restart (R bit, 120 s, ipv4 with F bit).
    let fixture = format!(
        "{MARKER} 003d 01 04 fde9 005a 0a000001 20 02 1e
         01 04 0001 00 01  01 04 0002 00 01  02 00  06 00  41 04 0000fde9  40 06 8078 0001 01 80"
    );
    let open = Open {
        my_as: 65001,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::Multiprotocol { afi: 2, safi: 1 },
            Capability::RouteRefresh,
            Capability::ExtendedMessage,
            Capability::FourOctetAs(65001),
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                restart_time: 120,
                families: vec![(Afi::Ipv4, true)],
            }),
        ],
    };
    round_trip(&fixture, DecodeCtx::default(), Message::Open(open.clone()));
    assert_eq!(open.asn(), 65001);
    assert_eq!(open.families(), vec![Afi::Ipv4, Afi::Ipv6]);
}

#[test]
fn open_four_byte_asn_uses_as_trans() {
    let open = Open::new(
        4_200_000_000,
        90,
        Ipv4Addr::new(1, 1, 1, 1),
        vec![Capability::FourOctetAs(4_200_000_000)],
    );
    assert_eq!(open.my_as, 23456);
    let bytes = Message::Open(open.clone()).to_bytes(EncodeCtx::default());
    assert_eq!(
        hex_of(&bytes),
        hex_of(&hex(&format!(
            "{MARKER} 0025 01 04 5ba0 005a 01010101 08 02 06 41 04 fa56ea00"
        )))
    );
    let Message::Open(back) = decode_message(&bytes, MAX_LEN, DecodeCtx::default()).unwrap() else {
        panic!("not an OPEN")
    };
    assert_eq!(back.asn(), 4_200_000_000);
}

#[test]
fn open_unknown_capability_is_kept() {
    let bytes = hex(&format!(
        "{MARKER} 0021 01 04 fde9 005a 0a000001 04 02 02 46 00"
    ));
    let Message::Open(open) = decode_message(&bytes, MAX_LEN, DecodeCtx::default()).unwrap() else {
        panic!("not an OPEN")
    };
    assert_eq!(
        open.capabilities,
        vec![Capability::Unknown {
            code: 70,
            value: vec![]
        }]
    );
}

fn all_attrs() -> PathAttrs {
    PathAttrs {
        origin: Origin::Igp,
        as_path: AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![65001, 65002],
                },
                AsSegment {
                    kind: SegmentKind::Set,
                    asns: vec![65003],
                },
            ],
        },
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
        link_local_next_hop: None,
        med: Some(100),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some((65001, Ipv4Addr::new(10, 0, 0, 1))),
        communities: vec![0xfde9_0001, 0xfde9_0002],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 3)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 4), Ipv4Addr::new(10, 0, 0, 5)],
        ext_communities: vec![],
        pmsi_tunnel: None,
        other: vec![],
    }
}

#[test]
fn update_ipv4_with_every_attribute() {
    let fixture = format!(
        "{MARKER} 0077 02 0000 0057
         40 01 01 00
         40 02 10 02 02 0000fde9 0000fdea 01 01 0000fdeb
         40 03 04 0a000002
         80 04 04 00000064
         40 05 04 000000c8
         40 06 00
         c0 07 08 0000fde9 0a000001
         c0 08 08 fde90001 fde90002
         80 09 04 0a000003
         80 0a 08 0a000004 0a000005
         18 0a6400  20 0a640101"
    );
    let update = Update {
        attrs: Some(all_attrs()),
        nlri: vec![net("10.100.0.0/24"), net("10.100.1.1/32")],
        ..Update::default()
    };
    round_trip(&fixture, ibgp4(), Message::Update(Box::new(update)));
}

#[test]
fn update_ipv4_withdrawals() {
    let update = Update {
        withdrawn: vec![net("10.100.0.0/24"), net("10.0.0.0/8")],
        ..Update::default()
    };
    round_trip(
        &format!("{MARKER} 001d 02 0006 18 0a6400 08 0a 0000"),
        ibgp4(),
        Message::Update(Box::new(update)),
    );
}

fn v6_attrs() -> PathAttrs {
    PathAttrs {
        as_path: AsPath::sequence(vec![65001]),
        ..PathAttrs::default()
    }
}

#[test]
fn update_mp_reach_ipv6() {
    let fixture = format!(
        "{MARKER} 0055 02 0000 003e
         90 0e 002d 0002 01 10 20010db8000000000000000000000001 00
            30 20010db80001  80 20010db8000200000000000000000001
         40 01 01 00
         40 02 06 02 01 0000fde9"
    );
    let update = Update {
        attrs: Some(v6_attrs()),
        mp_reach: Some(MpReach {
            afi: Afi::Ipv6,
            next_hop: IpAddr::V6("2001:db8::1".parse().unwrap()),
            link_local: None,
            nlri: vec![net("2001:db8:1::/48"), net("2001:db8:2::1/128")],
        }),
        ..Update::default()
    };
    round_trip(&fixture, ibgp4(), Message::Update(Box::new(update)));
}

#[test]
fn update_mp_reach_ipv6_with_link_local_next_hop() {
    let fixture = format!(
        "{MARKER} 0054 02 0000 003d
         90 0e 002c 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00
            30 20010db80001
         40 01 01 00
         40 02 06 02 01 0000fde9"
    );
    let update = Update {
        attrs: Some(v6_attrs()),
        mp_reach: Some(MpReach {
            afi: Afi::Ipv6,
            next_hop: IpAddr::V6("2001:db8::1".parse().unwrap()),
            link_local: Some("fe80::1".parse::<Ipv6Addr>().unwrap()),
            nlri: vec![net("2001:db8:1::/48")],
        }),
        ..Update::default()
    };
    round_trip(&fixture, ibgp4(), Message::Update(Box::new(update)));
}

#[test]
fn update_mp_unreach_ipv6() {
    let update = Update {
        mp_unreach: Some(MpUnreach {
            afi: Afi::Ipv6,
            withdrawn: vec![net("2001:db8:1::/48")],
        }),
        ..Update::default()
    };
    round_trip(
        &format!("{MARKER} 0025 02 0000 000e 90 0f 000a 0002 01 30 20010db80001"),
        ibgp4(),
        Message::Update(Box::new(update)),
    );
}

#[test]
fn end_of_rib_markers() {
    let mut packer = Packer::new(EncodeCtx::default());
    let mut v4 = Vec::new();
    packer.end_of_rib(Afi::Ipv4, &mut v4);
    assert_eq!(
        hex_of(&v4),
        hex_of(&hex(&format!("{MARKER} 0017 02 0000 0000")))
    );
    let mut v6 = Vec::new();
    packer.end_of_rib(Afi::Ipv6, &mut v6);
    assert_eq!(
        hex_of(&v6),
        hex_of(&hex(&format!(
            "{MARKER} 001e 02 0000 0007 90 0f 0003 0002 01"
        )))
    );
    for (bytes, afi) in [(v4, Afi::Ipv4), (v6, Afi::Ipv6)] {
        let Message::Update(u) = decode_message(&bytes, MAX_LEN, ibgp4()).unwrap() else {
            panic!("not an UPDATE")
        };
        assert_eq!(u.end_of_rib(), Some(afi));
    }
}

#[test]
fn two_byte_session_carries_as4_path() {
    // AS_PATH 65001 AS_TRANS, AS4_PATH 65001 4200000000 (RFC 6793 §4.2.2).
    let fixture = format!(
        "{MARKER} 003c 02 0000 0021
         40 01 01 00
         40 02 06 02 02 fde9 5ba0
         40 03 04 0a000002
         c0 11 0a 02 02 0000fde9 fa56ea00
         18 0a6400"
    );
    let attrs = PathAttrs {
        as_path: AsPath::sequence(vec![65001, 4_200_000_000]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
        ..PathAttrs::default()
    };
    let update = Update {
        attrs: Some(attrs),
        nlri: vec![net("10.100.0.0/24")],
        ..Update::default()
    };
    let ctx = DecodeCtx {
        four_octet_as: false,
        ibgp: false,
    };
    round_trip(&fixture, ctx, Message::Update(Box::new(update)));
}

#[test]
fn unknown_optional_transitive_attribute_passes_with_partial_bit() {
    let bytes = hex(&format!(
        "{MARKER} 002b 02 0000 0013 40 01 01 00 40 02 00 40 03 04 0a000002 c0 63 02 abcd 00"
    ));
    let Message::Update(u) = decode_message(&bytes, MAX_LEN, ibgp4()).unwrap() else {
        panic!("not an UPDATE")
    };
    let attrs = u.attrs.clone().unwrap();
    assert_eq!(
        attrs.other,
        vec![RawAttr {
            flags: 0xc0,
            kind: 99,
            value: vec![0xab, 0xcd]
        }]
    );
    let mut out = Vec::new();
    attrs.encode(true, false, &mut out);
    assert!(
        hex_of(&out).ends_with("e06302abcd"),
        "passed on with Partial: {}",
        hex_of(&out)
    );
}

/// zettabgp decodes what our packer writes to the same prefixes and attributes.
#[test]
fn zettabgp_agrees_with_our_packed_updates() {
    use zettabgp::prelude::*;
    let attrs = PathAttrs {
        as_path: AsPath::sequence(vec![65001, 65002]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
        med: Some(7),
        communities: vec![0xfde9_0001],
        ..PathAttrs::default()
    };
    let prefixes: Vec<ipnet::IpNet> = (0..2000u32)
        .map(|i| {
            ipnet::IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a64_0000 + i), 32).unwrap())
        })
        .collect();
    let mut packer = Packer::new(EncodeCtx::default());
    let mut out = Vec::new();
    packer.announce(Afi::Ipv4, &attrs, &prefixes, &mut out);
    // 2,000 /32s at 5 bytes each: 4,096-byte messages hold about 810, so three messages.
    assert_eq!(packer.messages, 3);
    let params = BgpSessionParams::new(
        65001,
        90,
        BgpTransportMode::IPv4,
        std::net::Ipv4Addr::new(10, 0, 0, 1),
        vec![BgpCapability::SafiIPv4u, BgpCapability::CapASN32(65001)],
    );
    let mut seen = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        assert!(len <= MAX_LEN);
        let mut upd = BgpUpdateMessage::new();
        upd.decode_from(&params, &rest[19..len])
            .expect("zettabgp decodes our UPDATE");
        if let BgpAddrs::IPV4U(addrs) = &upd.updates {
            seen.extend(addrs.iter().map(|a| a.to_string()));
        } else {
            panic!("zettabgp saw no IPv4 NLRI: {:?}", upd.updates);
        }
        let path = upd.get_attr_aspath().expect("AS_PATH present");
        assert_eq!(path.to_string(), "65001,65002");
        rest = &rest[len..];
    }
    let want: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
    assert_eq!(seen, want);
}

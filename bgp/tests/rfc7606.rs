//! One test per RFC 7606 (and RFC 4271 §6) error case we handle: which errors withdraw the
//! routes of the UPDATE, which discard one attribute, and which reset the session.

use fabric_bgp::packet::frame::{check_header, EXTENDED_MAX_LEN, MAX_LEN};
use fabric_bgp::packet::update::decode_update;
use fabric_bgp::packet::{DecodeCtx, Update, WireError};

const EBGP: DecodeCtx = DecodeCtx {
    four_octet_as: true,
    ibgp: false,
};
const IBGP: DecodeCtx = DecodeCtx {
    four_octet_as: true,
    ibgp: true,
};

fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, code, value.len() as u8];
    v.extend_from_slice(value);
    v
}

fn origin() -> Vec<u8> {
    attr(0x40, 1, &[0])
}
fn as_path() -> Vec<u8> {
    attr(0x40, 2, &[2, 1, 0, 0, 0xfd, 0xea])
}
fn next_hop() -> Vec<u8> {
    attr(0x40, 3, &[10, 0, 0, 2])
}

/// UPDATE body: no withdrawals, these attributes, NLRI 10.100.0.0/24.
fn body(attrs: &[Vec<u8>]) -> Vec<u8> {
    let a: Vec<u8> = attrs.concat();
    let mut b = vec![0, 0];
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(&[24, 10, 100, 0]);
    b
}

fn mandatory_with(extra: Vec<u8>) -> Vec<u8> {
    body(&[origin(), as_path(), next_hop(), extra])
}

fn withdrawn(u: &Update) {
    assert!(
        u.treat_as_withdraw.is_some(),
        "expected treat-as-withdraw, got {u:?}"
    );
    assert!(
        u.nlri.is_empty() && u.attrs.is_none(),
        "routes must not be installed: {u:?}"
    );
    assert_eq!(
        u.withdrawn,
        vec!["10.100.0.0/24".parse::<ipnet::IpNet>().unwrap()]
    );
}

fn kept(u: &Update) {
    assert!(
        u.treat_as_withdraw.is_none(),
        "unexpected treat-as-withdraw: {u:?}"
    );
    assert_eq!(u.nlri.len(), 1);
}

fn reset(r: Result<Update, WireError>, code: u8, subcode: u8) {
    let e = r.expect_err("expected a session reset");
    assert_eq!((e.code, e.subcode), (code, subcode), "{e}");
}

#[test]
fn well_formed_update_is_accepted() {
    let u = decode_update(&mandatory_with(vec![]), EBGP).unwrap();
    kept(&u);
    assert!(u.discarded.is_empty());
}

#[test]
fn origin_bad_length_withdraws() {
    withdrawn(
        &decode_update(
            &body(&[attr(0x40, 1, &[0, 0]), as_path(), next_hop()]),
            EBGP,
        )
        .unwrap(),
    );
}

#[test]
fn origin_undefined_value_withdraws() {
    withdrawn(&decode_update(&body(&[attr(0x40, 1, &[3]), as_path(), next_hop()]), EBGP).unwrap());
}

#[test]
fn as_path_truncated_segment_withdraws_without_looping() {
    // The zettabgp 0.6 hang: a segment that claims 3 ASNs but carries one and a half.
    let bad = attr(0x40, 2, &[2, 3, 0, 0, 0xfd, 0xea, 0, 0]);
    withdrawn(&decode_update(&body(&[origin(), bad, next_hop()]), EBGP).unwrap());
}

#[test]
fn as_path_segment_header_truncated_withdraws() {
    let bad = attr(0x40, 2, &[2, 1, 0, 0, 0xfd, 0xea, 2]);
    withdrawn(&decode_update(&body(&[origin(), bad, next_hop()]), EBGP).unwrap());
}

#[test]
fn as_path_unknown_segment_type_withdraws() {
    let bad = attr(0x40, 2, &[9, 1, 0, 0, 0xfd, 0xea]);
    withdrawn(&decode_update(&body(&[origin(), bad, next_hop()]), EBGP).unwrap());
}

#[test]
fn as_path_empty_segment_withdraws() {
    let bad = attr(0x40, 2, &[2, 0]);
    withdrawn(&decode_update(&body(&[origin(), bad, next_hop()]), EBGP).unwrap());
}

#[test]
fn as_path_confederation_segment_from_ebgp_withdraws() {
    let bad = attr(0x40, 2, &[3, 1, 0, 0, 0xfd, 0xea]);
    withdrawn(&decode_update(&body(&[origin(), bad, next_hop()]), EBGP).unwrap());
}

#[test]
fn next_hop_bad_length_withdraws() {
    withdrawn(
        &decode_update(
            &body(&[origin(), as_path(), attr(0x40, 3, &[10, 0, 0])]),
            EBGP,
        )
        .unwrap(),
    );
}

#[test]
fn next_hop_unspecified_or_multicast_withdraws() {
    for nh in [[0, 0, 0, 0], [224, 0, 0, 1], [255, 255, 255, 255]] {
        withdrawn(&decode_update(&body(&[origin(), as_path(), attr(0x40, 3, &nh)]), EBGP).unwrap());
    }
}

#[test]
fn missing_well_known_attribute_withdraws() {
    withdrawn(&decode_update(&body(&[origin(), as_path()]), EBGP).unwrap());
    withdrawn(&decode_update(&body(&[as_path(), next_hop()]), EBGP).unwrap());
    withdrawn(&decode_update(&body(&[origin(), next_hop()]), EBGP).unwrap());
}

#[test]
fn med_bad_length_withdraws() {
    withdrawn(&decode_update(&mandatory_with(attr(0x80, 4, &[0, 0, 1])), EBGP).unwrap());
}

#[test]
fn local_pref_bad_length_withdraws_on_ibgp() {
    withdrawn(&decode_update(&mandatory_with(attr(0x40, 5, &[0, 0, 1])), IBGP).unwrap());
}

#[test]
fn local_pref_from_ebgp_is_discarded() {
    let u = decode_update(&mandatory_with(attr(0x40, 5, &[0, 0, 0, 200])), EBGP).unwrap();
    kept(&u);
    assert_eq!(u.attrs.unwrap().local_pref, None);
    assert_eq!(u.discarded.len(), 1);
}

#[test]
fn atomic_aggregate_bad_length_is_discarded() {
    let u = decode_update(&mandatory_with(attr(0x40, 6, &[1])), EBGP).unwrap();
    kept(&u);
    assert!(!u.attrs.unwrap().atomic_aggregate);
    assert_eq!(u.discarded.len(), 1);
}

#[test]
fn aggregator_bad_length_is_discarded() {
    let u = decode_update(
        &mandatory_with(attr(0xc0, 7, &[0, 0, 0xfd, 0xe9, 10, 0])),
        EBGP,
    )
    .unwrap();
    kept(&u);
    assert_eq!(u.attrs.unwrap().aggregator, None);
}

#[test]
fn communities_bad_length_withdraws() {
    withdrawn(&decode_update(&mandatory_with(attr(0xc0, 8, &[0, 0, 1])), EBGP).unwrap());
    withdrawn(&decode_update(&mandatory_with(attr(0xc0, 8, &[])), EBGP).unwrap());
}

#[test]
fn originator_id_bad_length_withdraws() {
    withdrawn(&decode_update(&mandatory_with(attr(0x80, 9, &[1, 2, 3])), IBGP).unwrap());
}

#[test]
fn cluster_list_bad_length_withdraws() {
    withdrawn(&decode_update(&mandatory_with(attr(0x80, 10, &[1, 2, 3, 4, 5])), IBGP).unwrap());
}

#[test]
fn reflection_attributes_from_ebgp_are_discarded() {
    let u = decode_update(&mandatory_with(attr(0x80, 9, &[1, 2, 3, 4])), EBGP).unwrap();
    kept(&u);
    assert_eq!(u.attrs.unwrap().originator_id, None);
}

#[test]
fn attribute_flags_conflict_withdraws() {
    // ORIGIN marked optional.
    withdrawn(&decode_update(&body(&[attr(0xc0, 1, &[0]), as_path(), next_hop()]), EBGP).unwrap());
    // MED marked transitive.
    withdrawn(&decode_update(&mandatory_with(attr(0xc0, 4, &[0, 0, 0, 1])), EBGP).unwrap());
}

#[test]
fn duplicate_attribute_keeps_the_first() {
    let u = decode_update(
        &body(&[origin(), as_path(), next_hop(), attr(0x40, 1, &[2])]),
        EBGP,
    )
    .unwrap();
    kept(&u);
    assert_eq!(u.attrs.unwrap().origin, fabric_bgp::packet::Origin::Igp);
    assert_eq!(u.discarded.len(), 1);
}

fn mp_reach_v6() -> Vec<u8> {
    let mut v = vec![0, 2, 1, 16];
    v.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    v.push(0);
    v.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    attr(0x80, 14, &v)
}

#[test]
fn duplicate_mp_reach_resets_the_session() {
    reset(
        decode_update(
            &body(&[
                mp_reach_v6(),
                mp_reach_v6(),
                origin(),
                as_path(),
                next_hop(),
            ]),
            EBGP,
        ),
        3,
        1,
    );
}

#[test]
fn mp_reach_bad_next_hop_length_resets_the_session() {
    let mut v = vec![0, 2, 1, 5, 1, 2, 3, 4, 5, 0];
    v.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    reset(
        decode_update(
            &body(&[attr(0x80, 14, &v), origin(), as_path(), next_hop()]),
            EBGP,
        ),
        3,
        9,
    );
}

#[test]
fn mp_reach_bad_nlri_resets_the_session() {
    let mut v = vec![0, 2, 1, 16];
    v.extend_from_slice(&[0; 16]);
    v.push(0);
    v.extend_from_slice(&[129, 1, 2]);
    reset(
        decode_update(
            &body(&[attr(0x80, 14, &v), origin(), as_path(), next_hop()]),
            EBGP,
        ),
        3,
        9,
    );
}

#[test]
fn mp_reach_flags_conflict_resets_the_session() {
    let mut bad = mp_reach_v6();
    bad[0] = 0xc0;
    reset(
        decode_update(&body(&[bad, origin(), as_path(), next_hop()]), EBGP),
        3,
        4,
    );
}

#[test]
fn malformed_ipv6_route_withdraws_the_mp_nlri_too() {
    let u = decode_update(
        &body(&[mp_reach_v6(), attr(0x40, 1, &[7]), as_path(), next_hop()]),
        EBGP,
    )
    .unwrap();
    assert!(u.treat_as_withdraw.is_some());
    assert!(u.mp_reach.is_none());
    assert_eq!(
        u.mp_unreach.unwrap().withdrawn,
        vec!["2001:db8:1::/48".parse::<ipnet::IpNet>().unwrap()]
    );
}

#[test]
fn attribute_overrunning_the_attribute_field_withdraws() {
    let mut b = body(&[origin(), as_path(), next_hop()]);
    // Make the last attribute (NEXT_HOP) claim 9 bytes: it overruns into nothing.
    let nh_len_at = 4 + 4 + 9 + 2;
    b[nh_len_at] = 9;
    let u = decode_update(&b, EBGP).unwrap();
    assert!(u.treat_as_withdraw.is_some(), "{u:?}");
}

#[test]
fn unrecognized_well_known_attribute_resets_the_session() {
    reset(
        decode_update(&mandatory_with(attr(0x40, 99, &[1])), EBGP),
        3,
        2,
    );
}

#[test]
fn unknown_optional_non_transitive_is_ignored() {
    let u = decode_update(&mandatory_with(attr(0x80, 99, &[1])), EBGP).unwrap();
    kept(&u);
    assert!(u.attrs.unwrap().other.is_empty());
}

#[test]
fn withdrawn_length_overrun_resets_the_session() {
    reset(decode_update(&[0, 50, 0, 0], EBGP), 3, 1);
}

#[test]
fn total_attribute_length_overrun_resets_the_session() {
    reset(decode_update(&[0, 0, 0, 50, 0x40, 1, 1, 0], EBGP), 3, 1);
}

#[test]
fn nlri_prefix_too_long_resets_the_session() {
    let mut b = mandatory_with(vec![]);
    let n = b.len();
    b[n - 4] = 33;
    reset(decode_update(&b, EBGP), 3, 10);
}

#[test]
fn nlri_truncated_resets_the_session() {
    let mut b = mandatory_with(vec![]);
    b.truncate(b.len() - 1);
    reset(decode_update(&b, EBGP), 3, 10);
}

fn header(len: u16, kind: u8) -> [u8; 19] {
    let mut h = [0xff; 19];
    h[16..18].copy_from_slice(&len.to_be_bytes());
    h[18] = kind;
    h
}

#[test]
fn header_errors() {
    let mut bad_marker = header(19, 4);
    bad_marker[3] = 0;
    let e = check_header(&bad_marker, MAX_LEN).unwrap_err();
    assert_eq!((e.code, e.subcode), (1, 1));
    for (len, kind) in [
        (18, 4),
        (4097, 2),
        (20, 4),
        (22, 5),
        (24, 5),
        (28, 1),
        (20, 3),
        (22, 2),
    ] {
        let e = check_header(&header(len, kind), MAX_LEN).unwrap_err();
        assert_eq!((e.code, e.subcode), (1, 2), "length {len} type {kind}");
        assert_eq!(
            e.data,
            len.to_be_bytes().to_vec(),
            "data carries the bad length"
        );
    }
    let e = check_header(&header(19, 9), MAX_LEN).unwrap_err();
    assert_eq!((e.code, e.subcode, e.data.clone()), (1, 3, vec![9]));
}

#[test]
fn extended_messages_only_once_negotiated() {
    assert!(check_header(&header(5000, 2), MAX_LEN).is_err());
    assert!(check_header(&header(5000, 2), EXTENDED_MAX_LEN).is_ok());
    // OPEN and KEEPALIVE stay limited to 4,096 bytes (RFC 8654 §4).
    assert!(check_header(&header(5000, 1), EXTENDED_MAX_LEN).is_err());
}

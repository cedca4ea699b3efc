//! Parsing the CNI environment and config, and the result shape.

use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

const ADD: [(&str, &str); 4] = [
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "c1"),
    ("CNI_NETNS", "/run/netns/c1"),
    ("CNI_IFNAME", "eth0"),
];

#[test]
fn defaults_then_config_then_labels() {
    let conf = br#"{"cniVersion":"1.0.0","name":"contiv","type":"contivk8s","socket":"/s"}"#;
    let inv = parse_invocation(&env(&ADD), conf).unwrap();
    assert_eq!(inv.socket, "/s");
    let a = inv.request.attach.unwrap();
    assert_eq!(
        (a.tenant.as_str(), a.network.as_str()),
        ("default", "default-net")
    );

    let conf = br#"{"cniVersion":"1.0.0","name":"n","tenant":"t1","network":"net1","args":{"io.contiv.net-group":"g1"}}"#;
    let a = parse_invocation(&env(&ADD), conf)
        .unwrap()
        .request
        .attach
        .unwrap();
    assert_eq!(a.network_key(), "t1:net1");
    assert_eq!(a.group_key(), "t1:g1");

    let mut e = ADD.to_vec();
    e.push((
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_NAMESPACE=ns;io.contiv.network=net2",
    ));
    let a = parse_invocation(&env(&e), conf)
        .unwrap()
        .request
        .attach
        .unwrap();
    assert_eq!(a.network, "net2");
    assert_eq!(a.container_name, "ns/web");
}

#[test]
fn bad_input_gets_the_spec_codes() {
    let ok = br#"{"cniVersion":"1.0.0","name":"n"}"#;
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a [u8], u32);
    let cases: Vec<Case> = vec![
        (vec![], ok, code::INVALID_ENV),
        (vec![("CNI_COMMAND", "FROB")], ok, code::INVALID_ENV),
        (ADD.to_vec(), b"{not json", code::DECODE_FAILURE),
        (ADD.to_vec(), b"[1]", code::DECODE_FAILURE),
        (
            ADD.to_vec(),
            br#"{"cniVersion":"0.1.0","name":"n"}"#,
            code::INCOMPATIBLE_VERSION,
        ),
        (
            ADD.to_vec(),
            br#"{"cniVersion":"1.0.0"}"#,
            code::INVALID_CONFIG,
        ),
        (
            ADD.to_vec(),
            br#"{"cniVersion":"1.0.0","name":"n","mtu":"big"}"#,
            code::INVALID_CONFIG,
        ),
        (
            ADD.to_vec(),
            br#"{"cniVersion":"1.0.0","name":"n","network":"a:b"}"#,
            code::INVALID_CONFIG,
        ),
        (ADD[..3].to_vec(), ok, code::INVALID_ENV),
        (
            vec![
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "reserved:host1"),
                ("CNI_NETNS", "/run/netns/x"),
                ("CNI_IFNAME", "eth0"),
            ],
            ok,
            code::INVALID_ENV,
        ),
        (
            vec![
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "-c1"),
                ("CNI_NETNS", "/run/netns/x"),
                ("CNI_IFNAME", "eth0"),
            ],
            ok,
            code::INVALID_ENV,
        ),
        (
            vec![
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_IFNAME", "eth0"),
            ],
            ok,
            code::INVALID_ENV,
        ),
    ];
    for (e, conf, expected) in cases {
        let err = parse_invocation(&env(&e), conf).unwrap_err();
        assert_eq!(
            err.code,
            expected,
            "{e:?} {}",
            String::from_utf8_lossy(conf)
        );
    }
}

#[test]
fn del_needs_no_netns_and_gc_reads_valid_attachments() {
    let ok = br#"{"cniVersion":"1.1.0","name":"n"}"#;
    let e = [
        ("CNI_COMMAND", "DEL"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_IFNAME", "eth0"),
    ];
    assert!(parse_invocation(&env(&e), ok).is_ok());
    let gc = br#"{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#;
    let inv = parse_invocation(&env(&[("CNI_COMMAND", "GC")]), gc).unwrap();
    assert_eq!(inv.request.valid, vec!["c1-eth0".to_string()]);
}

#[test]
fn results_follow_the_schema() {
    use fabric_actors::types::mac_for;
    let ip = "10.1.2.5".parse().unwrap();
    let ep = Endpoint {
        id: "c1-eth0".into(),
        container_id: "c1".into(),
        netns: "/run/netns/c1".into(),
        if_name: "eth0".into(),
        tenant: "default".into(),
        network: "default:net".into(),
        group: String::new(),
        group_id: 0,
        ip,
        prefix_len: 24,
        gateway: Some("10.1.2.1".parse().unwrap()),
        mac: mac_for(ip),
        host_if: "cv0".into(),
        ofport: 3,
        mtu: 1500,
        container_name: String::new(),
    };
    let r = add_result("1.0.0", &ep, None);
    assert_eq!(r["ips"][0]["address"], "10.1.2.5/24");
    assert_eq!(r["ips"][0]["gateway"], "10.1.2.1");
    assert_eq!(r["ips"][0]["interface"], 1);
    assert_eq!(r["interfaces"][1]["sandbox"], "/run/netns/c1");
    assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
    let err = CniError::new(code::TRY_AGAIN_LATER, "m", "d").to_json("1.0.0");
    assert_eq!(err["code"], 11);
    assert_eq!(version_result("")["supportedVersions"][1], "1.1.0");
}

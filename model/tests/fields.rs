//! Each object's own field rules, through JSON as the REST API receives it.

use fabric_model::*;
use serde_json::json;

fn field_error<O: Object>(value: serde_json::Value) -> String {
    let mut o: O = serde_json::from_value(value).expect("decodes");
    o.apply_defaults();
    o.validate().expect_err("should be rejected").field
}

fn ok<O: Object>(value: serde_json::Value) -> O {
    let mut o: O = serde_json::from_value(value).expect("decodes");
    o.apply_defaults();
    o.validate().unwrap_or_else(|e| panic!("rejected: {e}"));
    o
}

#[test]
fn network_fields() {
    let n: Network = ok(
        json!({"tenantName":"blue","networkName":"contiv-net","subnet":"10.1.1.0/24","gateway":"10.1.1.254"}),
    );
    assert_eq!((n.encap.as_str(), n.nw_type.as_str()), ("vxlan", "data"));
    ok::<Network>(
        json!({"tenantName":"t","networkName":"v","encap":"vlan","pktTag":112,"subnet":"10.1.3.0/24"}),
    );
    ok::<Network>(
        json!({"tenantName":"t","networkName":"v6","subnet":"10.1.3.0/24","ipv6Subnet":"2001:db8::/64","ipv6Gateway":"2001:db8::1"}),
    );
    let cases = [
        (json!({"tenantName":"t","networkName":"n"}), "subnet"),
        (
            json!({"tenantName":"t","networkName":"n_x","subnet":"10.1.1.0/24"}),
            "networkName",
        ),
        (
            json!({"tenantName":"t","networkName":"n","subnet":"10.1.1.0/24","gateway":"10.1.2.1"}),
            "gateway",
        ),
        (
            json!({"tenantName":"t","networkName":"n","subnet":"10.1.1.0/24","gateway":"10.1.1.255"}),
            "gateway",
        ),
        (
            json!({"tenantName":"t","networkName":"n","subnet":"10.1.1.0/24","encap":"gre"}),
            "encap",
        ),
        (
            json!({"tenantName":"t","networkName":"n","subnet":"10.1.1.0/24","encap":"vlan","pktTag":4095}),
            "pktTag",
        ),
        (
            json!({"tenantName":"t","networkName":"n","subnet":"10.1.1.0/24","pktTag":16777216}),
            "pktTag",
        ),
        (
            json!({"tenantName":"t","networkName":"n","subnet":"10.1.1.0/24","nwType":"x"}),
            "nwType",
        ),
        (
            json!({"tenantName":"t","networkName":"n","subnet":"10.1.1.0/24","ipv6Subnet":"2001:db8::/0"}),
            "ipv6Subnet",
        ),
        (
            json!({"tenantName":"t","networkName":"n","subnet":"10.1.1.0/24","ipv6Subnet":"2001:db8::/64","ipv6Gateway":"2001:db9::1"}),
            "ipv6Gateway",
        ),
    ];
    for (value, field) in cases {
        assert_eq!(field_error::<Network>(value.clone()), field, "{value}");
    }
}

#[test]
fn global_defaults_and_ranges() {
    let g: Global = ok(json!({"name":"global"}));
    assert_eq!(
        (g.vlans.as_str(), g.vxlans.as_str(), g.arp_mode.as_str()),
        ("1-4094", "1-10000", "proxy")
    );
    assert_eq!(field_error::<Global>(json!({"name":"other"})), "name");
    assert_eq!(
        field_error::<Global>(json!({"name":"global","vlans":"0-10"})),
        "vlans"
    );
    assert_eq!(
        field_error::<Global>(json!({"name":"global","vxlans":"1-16777216"})),
        "vxlans"
    );
    assert_eq!(
        field_error::<Global>(json!({"name":"global","fwdMode":"switching"})),
        "fwdMode"
    );
    assert_eq!(
        field_error::<Global>(json!({"name":"global","arpMode":"x"})),
        "arpMode"
    );
    assert_eq!(
        field_error::<Global>(json!({"name":"global","pvtSubnet":"172.19.0.0/24"})),
        "pvtSubnet"
    );
    assert_eq!(
        field_error::<Global>(json!({"name":"global","networkInfraType":"x"})),
        "networkInfraType"
    );
}

#[test]
fn other_objects() {
    ok::<Tenant>(json!({"tenantName":"blue"}));
    assert_eq!(
        field_error::<Tenant>(json!({"tenantName":""})),
        "tenantName"
    );
    assert_eq!(
        field_error::<Tenant>(json!({"tenantName":"a".repeat(65)})),
        "tenantName"
    );
    ok::<EndpointGroup>(
        json!({"tenantName":"t","groupName":"g","networkName":"n","ipPool":"10.1.1.1-10.1.1.9"}),
    );
    assert_eq!(
        field_error::<EndpointGroup>(json!({"tenantName":"t","groupName":"g"})),
        "networkName"
    );
    assert_eq!(
        field_error::<EndpointGroup>(
            json!({"tenantName":"t","groupName":"g","networkName":"n","ipPool":"10.1.1.9-10.1.1.1"})
        ),
        "ipPool"
    );
    ok::<Netprofile>(
        json!({"tenantName":"t","profileName":"p","bandwidth":"10Mbps","DSCP":10,"burst":100}),
    );
    assert_eq!(
        field_error::<Netprofile>(json!({"tenantName":"t","profileName":"p","DSCP":64})),
        "DSCP"
    );
    assert_eq!(
        field_error::<Netprofile>(json!({"tenantName":"t","profileName":"p","burst":10487})),
        "burst"
    );
    assert_eq!(
        field_error::<Netprofile>(json!({"tenantName":"t","profileName":"p","bandwidth":"fast"})),
        "bandwidth"
    );
    ok::<ServiceLb>(
        json!({"tenantName":"t","serviceName":"s","networkName":"n","selectors":["tier=web"],"ports":["8080:80:TCP"]}),
    );
    assert_eq!(
        field_error::<ServiceLb>(
            json!({"tenantName":"t","serviceName":"s","networkName":"n","selectors":["tier"],"ports":["8080:80:TCP"]})
        ),
        "selectors"
    );
    assert_eq!(
        field_error::<ServiceLb>(
            json!({"tenantName":"t","serviceName":"s","networkName":"n","selectors":["a=b"],"ports":["8080:80:SCTP"]})
        ),
        "ports"
    );
    assert_eq!(
        field_error::<ServiceLb>(
            json!({"tenantName":"t","serviceName":"s","networkName":"n","selectors":["a=b"],"ports":["0:80:TCP"]})
        ),
        "ports"
    );
    ok::<AppProfile>(json!({"tenantName":"t","appProfileName":"a","endpointGroups":["g"]}));
    ok::<ExtContractsGroup>(
        json!({"tenantName":"t","contractsGroupName":"c","contractsType":"provided","contracts":["uni/tn-common/brc-default"]}),
    );
    assert_eq!(
        field_error::<ExtContractsGroup>(
            json!({"tenantName":"t","contractsGroupName":"c","contractsType":"both"})
        ),
        "contractsType"
    );
    ok::<AciGw>(json!({"name":"aciGw","enforcePolicies":"yes"}));
    assert_eq!(
        field_error::<AciGw>(json!({"name":"aciGw","enforcePolicies":"maybe"})),
        "enforcePolicies"
    );
    ok::<Endpoint>(
        json!({"endpointID":"c1-eth0","network":"default:net","ipAddress":["10.1.1.2"]}),
    );
    assert_eq!(
        field_error::<Endpoint>(json!({"endpointID":"c1","network":"net"})),
        "network"
    );
}

#[test]
fn errors_name_object_field_and_reason() {
    let r: Rule = serde_json::from_value(json!({"tenantName":"default","policyName":"p","ruleId":"1","direction":"in","action":"allow","priority":500})).unwrap();
    let e = r.validate().unwrap_err();
    assert_eq!(e.object, "rules/default:p:1");
    assert_eq!(e.field, "priority");
    assert!(e.reason.contains("1-100"));
    assert_eq!(
        e.to_string(),
        "rules/default:p:1: field 'priority': 500 is outside 1-100"
    );
}

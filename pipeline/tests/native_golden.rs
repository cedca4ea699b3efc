//! Native L3 output is byte-for-byte what it was before the VXLAN variant existed: the
//! standard fixture with rules of several kinds, rendered as `ovs-ofctl` flows, against a copy
//! taken from the compiler before the variant was added (`golden/native_standard.flows`).

mod common;

use common::*;

#[test]
fn native_l3_flows_unchanged() {
    let rules = vec![
        rule("pA", "1", "out", 5, "tcp", 0, "group:B", "deny"),
        rule("pA", "2", "out", 6, "tcp", 8888, "group:B", "allow"),
        rule("pA", "3", "out", 3, "udp", 0, "net:n2", "deny"),
        rule("shared", "1", "in", 9, "", 0, "ip:10.1.1.1-19", "deny"),
        rule("pB", "1", "in", 4, "udp", 53, "group:A", "deny"),
    ];
    let input = Fixture::standard().input(&rules);
    assert!(input.vxlan.is_none(), "native input by default");
    let c = pipeline::compile(&input).unwrap();
    let text: String = c.flows.iter().map(|f| format!("{f}\n")).collect();
    assert_eq!(text, include_str!("golden/native_standard.flows"));
    // And compiling the same input again gives the same flows.
    assert_eq!(pipeline::compile(&input).unwrap(), c);
}

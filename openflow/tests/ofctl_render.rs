//! Our `ovs-ofctl` rendering against a real switch: every representative flow, installed with
//! `ovs-ofctl --bundle add-flows`, dumps back as the same flow (after normalisation).

mod common;

use common::{flows::representative, Ovs};
use openflow::ofctl::normalize_all;

#[test]
fn rendered_flows_install_and_dump_back_identically() {
    let ovs = Ovs::start();
    let flows = representative(0x10);
    let lines: Vec<String> = flows.iter().map(ToString::to_string).collect();
    ovs.add_flows(&lines);
    let dump = ovs.dump_flows(Some("cookie=0x10/-1"));
    let got = normalize_all([dump.as_str()]);
    let want = normalize_all(lines.iter().map(String::as_str));
    if got != want {
        let missing: Vec<_> = want.iter().filter(|l| !got.contains(l)).collect();
        let extra: Vec<_> = got.iter().filter(|l| !want.contains(l)).collect();
        panic!(
            "switch holds other flows than rendered\nmissing: {missing:#?}\nunexpected: {extra:#?}"
        );
    }
    assert_eq!(got.len(), flows.len());
}

//! The VXLAN variant's flows against a real OVS (userspace datapath): a flow-based VXLAN port
//! on `br-int`, and every compiled flow accepted by `ovs-ofctl replace-flows` (tunnel key and
//! destination set per flow, `tun_id` matches, ingress replication in one flow). Behaviour is
//! tested in the simulator (`tests/vxlan.rs`); this shows the flows are OVS's. Needs root and
//! Open vSwitch; fails with a clear message otherwise.

mod lab;

use fabric_model::Rule;
use lab::Lab;
use pipeline::{
    FloodList, GatewayPort, GroupInput, HostInput, LocalEndpoint, NetworkInput, NetworkVni,
    TenantInput, VxlanInput, VxlanRemote,
};

const GW_PORT: u32 = 100;
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const VX_PORT: u32 = 50;

fn input() -> HostInput {
    let mut i = HostInput::new(
        [0x02, 0, 0, 0, 0, 1],
        GatewayPort {
            ofport: GW_PORT,
            mac: GW_MAC,
        },
    );
    let mut vnis = Vec::new();
    for (t, vrf, vni) in [("t1", 1, 5001), ("t2", 2, 5002)] {
        i.tenants.push(TenantInput {
            name: t.into(),
            vrf,
            zone: vrf as u16,
        });
        i.networks.push(NetworkInput {
            tenant: t.into(),
            name: "net".into(),
            subnet: "10.1.1.0/24".parse().unwrap(),
            gateway: Some("10.1.1.1".parse().unwrap()),
        });
        vnis.push(NetworkVni {
            tenant: t.into(),
            network: "net".into(),
            vni: Some(vni),
        });
        i.groups.push(GroupInput {
            tenant: t.into(),
            name: "A".into(),
            id: vrf * 10,
            policies: vec!["p".into()],
        });
        i.local_endpoints.push(LocalEndpoint {
            ofport: vrf,
            mac: [0x02, 0xaa, 0, 0, vrf as u8, 2],
            ipv4: "10.1.1.2".parse().unwrap(),
            tenant: t.into(),
            group: vrf * 10,
        });
    }
    i.rules.push(Rule {
        tenant_name: "t1".into(),
        policy_name: "p".into(),
        rule_id: "1".into(),
        direction: "in".into(),
        priority: 5,
        protocol: "tcp".into(),
        from_endpoint_group: "A".into(),
        action: "deny".into(),
        ..Rule::default()
    });
    i.vxlan = Some(VxlanInput {
        ofport: VX_PORT,
        local_vtep: Some("192.168.0.1".parse().unwrap()),
        vnis,
        remote_endpoints: vec![VxlanRemote {
            vni: 5001,
            mac: [0x02, 0xbb, 0, 0, 0, 4],
            ipv4: "10.1.1.4".parse().unwrap(),
            vtep: Some("192.168.0.2".parse().unwrap()),
            group: 10,
        }],
        flood_lists: vec![FloodList {
            vni: 5001,
            vteps: vec![
                "192.168.0.2".parse().unwrap(),
                "192.168.0.3".parse().unwrap(),
            ],
        }],
    });
    i
}

#[test]
fn vxlan_flows_install_on_a_flow_based_vxlan_port() {
    let lab = Lab::new(GW_PORT, GW_MAC);
    lab.vsctl(&[
        "add-port",
        "br-int",
        "vx0",
        "--",
        "set",
        "interface",
        "vx0",
        "type=vxlan",
        "options:remote_ip=flow",
        "options:key=flow",
        &format!("ofport_request={VX_PORT}"),
    ]);
    let compiled = pipeline::compile(&input()).unwrap();
    assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    lab.install(&compiled.flows);
    let dump = lab.dump();
    let installed = dump.lines().filter(|l| l.contains("cookie=")).count();
    assert_eq!(installed, compiled.flows.len(), "{dump}");
    for want in [
        "set_field:192.168.0.2->tun_dst",
        "set_field:192.168.0.3->tun_dst",
        "tun_id=0x1389",
        &format!("output:{VX_PORT}"),
    ] {
        assert!(dump.contains(want), "{want} not in\n{dump}");
    }
}

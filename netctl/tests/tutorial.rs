//! End to end: Contiv's tutorial command lines, run verbatim through `sh -c` with the real
//! `netctl` binary against a real `netmaster` (embedded store in a temp dir, loopback port,
//! served as the binary serves by default: see `common`), then checked through the REST API;
//! plus `ls`/`inspect`/`rm` output and error cases.
//!
//! The netmaster binary must be built first (`cargo build -p netmaster`); the test says so
//! when it is missing rather than passing.

mod common;

use common::{free_loopback_port, Netmaster};
use serde_json::Value;
use std::process::Command;

#[test]
fn tutorial_sequence_leaves_the_expected_objects() {
    let master = Netmaster::start();
    master.run_tutorial();

    let global = master.get("/api/v1/globals/global/");
    assert_eq!(global["fwdMode"], "routing");
    assert_eq!(
        global["vlans"], "1-4094",
        "global set changes only --fwd-mode"
    );

    let blue = master.get("/api/v1/tenants/blue/");
    assert_eq!(blue["tenantName"], "blue");
    let blue_net = master.get("/api/v1/networks/blue:contiv-net/");
    assert_eq!(blue_net["tenantName"], "blue");
    assert_eq!(blue_net["subnet"], "10.1.2.0/24");
    assert_eq!(blue_net["gateway"], "10.1.2.254");
    assert_eq!(blue_net["encap"], "vxlan");
    let inspect = master.get("/api/v1/inspect/tenants/blue/");
    assert_eq!(inspect["Config"]["tenantName"], "blue");

    let net = master.get("/api/v1/networks/default:contiv-net/");
    assert_eq!(net["subnet"], "10.1.1.0/24");
    assert_eq!(net["nwType"], "data");

    let rule1 = master.get("/api/v1/rules/default:db-policy:1/");
    assert_eq!(rule1["direction"], "in");
    assert_eq!(rule1["protocol"], "tcp");
    assert_eq!(rule1["action"], "deny");
    assert_eq!(rule1["priority"], 1);
    let rule2 = master.get("/api/v1/rules/default:db-policy:2/");
    assert_eq!(rule2["port"], 8888);
    assert_eq!(rule2["priority"], 10);
    assert_eq!(rule2["action"], "allow");
    assert_eq!(rule2["protocol"], "tcp");

    let group = master.get("/api/v1/endpointGroups/default:db-group/");
    assert_eq!(group["networkName"], "contiv-net");
    assert_eq!(group["policies"], serde_json::json!(["db-policy"]));

    let vlan = master.get("/api/v1/networks/default:contiv-vlan/");
    assert_eq!(vlan["encap"], "vlan");
    assert_eq!(vlan["pktTag"], 112);
    assert_eq!(vlan["subnet"], "10.1.3.0/24");

    let svc = master.get("/api/v1/serviceLBs/default:app-svc/");
    assert_eq!(svc["networkName"], "contiv-net");
    assert_eq!(svc["selectors"], serde_json::json!(["tier=web"]));
    assert_eq!(svc["ports"], serde_json::json!(["8080:80:TCP"]));

    let bgp = master.get("/api/v1/Bgps/host1/");
    assert_eq!(bgp["routerip"], "50.1.1.1/24");
    assert_eq!(bgp["as"], "65002");
    assert_eq!(bgp["neighbor-as"], "500");
    assert_eq!(bgp["neighbor"], "50.1.1.2");
}

#[test]
fn ls_inspect_and_rm_print_like_contiv() {
    let master = Netmaster::start();
    master.run_tutorial();

    let tenants = master.ok("netctl tenant ls");
    let lines: Vec<&str> = tenants.lines().map(str::trim_end).collect();
    assert_eq!(lines[..2], ["Name", "------"], "{tenants}");
    assert!(
        lines.contains(&"blue") && lines.contains(&"default"),
        "{tenants}"
    );
    assert_eq!(master.ok("netctl tenant ls -q"), "blue\ndefault\n");

    let nets = master.ok("netctl net ls -t blue");
    let lines: Vec<&str> = nets.lines().collect();
    assert!(
        lines[0].starts_with("Tenant  Network     Nw Type  Encap type  Packet tag  Subnet"),
        "{nets}"
    );
    assert!(
        lines[2].starts_with("blue    contiv-net  data     vxlan "),
        "{nets}"
    );
    assert!(lines[2].contains("10.1.2.0/24  10.1.2.254"), "{nets}");
    assert_eq!(lines.len(), 3, "{nets}");
    assert_eq!(
        master.ok("netctl network list -q"),
        "contiv-net\ncontiv-vlan\n"
    );
    let all: Value = serde_json::from_str(&master.ok("netctl net ls -a -j")).expect("JSON list");
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");

    let rules = master.ok("netctl policy rule-ls db-policy");
    let lines: Vec<&str> = rules.lines().collect();
    assert_eq!(lines[0], "Incoming Rules:", "{rules}");
    assert!(lines[3].starts_with("1     1   "), "{rules}");
    assert!(
        lines[3].trim_end().ends_with("tcp       0     deny"),
        "{rules}"
    );
    assert!(
        lines[4].trim_end().ends_with("tcp       8888  allow"),
        "{rules}"
    );
    assert_eq!(lines[5], "Outgoing Rules:", "{rules}");
    assert_eq!(master.ok("netctl policy rule-ls -q db-policy"), "1\n2\n");

    let groups = master.ok("netctl group ls");
    assert!(
        groups.lines().nth(2).is_some_and(
            |l| l.starts_with("default  db-group  contiv-net") && l.contains("db-policy")
        ),
        "{groups}"
    );

    let inspect: Value =
        serde_json::from_str(&master.ok("netctl group inspect db-group")).expect("inspect JSON");
    assert_eq!(inspect["Config"]["groupName"], "db-group");
    assert_eq!(
        inspect["Config"]["policies"],
        serde_json::json!(["db-policy"])
    );
    let inspect: Value =
        serde_json::from_str(&master.ok("netctl net inspect contiv-vlan")).expect("inspect JSON");
    assert_eq!(inspect["Config"]["pktTag"], 112);

    let global = master.ok("netctl global info");
    assert!(global.contains("Forward mode: routing\n"), "{global}");
    let bgp = master.ok("netctl bgp ls");
    assert!(
        bgp.lines()
            .nth(2)
            .is_some_and(|l| l.starts_with("host1      50.1.1.1/24  65002")),
        "{bgp}"
    );
    let svc = master.ok("netctl service ls");
    assert!(svc.contains("[tier=web]"), "{svc}");
    assert!(master.ok("netctl version").contains("Server Version:\n"));

    assert_eq!(master.ok("netctl policy rule-rm db-policy 1"), "");
    assert_eq!(master.status("/api/v1/rules/default:db-policy:1/"), 404);
    assert_eq!(master.ok("netctl group rm db-group"), "");
    assert_eq!(
        master.status("/api/v1/endpointGroups/default:db-group/"),
        404
    );
    assert_eq!(
        master.ok("netctl net delete -t blue contiv-net"),
        "Deleting network blue:contiv-net\n"
    );
    assert_eq!(master.status("/api/v1/networks/blue:contiv-net/"), 404);
    assert_eq!(
        master.ok("netctl bgp rm host1"),
        "Deleting Bgp router config: host1\n"
    );
    assert_eq!(master.status("/api/v1/Bgps/host1/"), 404);
}

#[test]
fn overlapping_subnets_of_two_tenants_are_refused_in_native_l3() {
    let master = Netmaster::start();
    master.ok("netctl global set --fwd-mode routing");
    master.ok("netctl net create -s 10.1.1.0/24 -g 10.1.1.254 contiv-net");
    master.ok("netctl tenant create blue");
    let err = master.fails("netctl net create -t blue -s 10.1.1.0/24 -g 10.1.1.254 contiv-net");
    assert!(err.starts_with("ERRO[0000] "), "{err}");
    for named in [
        "networks/blue:contiv-net",
        "networks/default:contiv-net",
        "native L3",
    ] {
        assert!(err.contains(named), "the error names {named}: {err}");
    }
    assert_eq!(master.status("/api/v1/networks/blue:contiv-net/"), 404);
    // The mode does not change while networks exist (Contiv's rule)...
    let err = master.fails("netctl global set --fwd-mode bridge");
    assert!(
        err.contains("fwdMode") && err.contains("delete them first"),
        "{err}"
    );
    // ...the overlay modes allow the overlap; switching back to native L3 over it is refused.
    master.ok("netctl net delete contiv-net");
    master.ok("netctl global set --fwd-mode bridge");
    master.ok("netctl net create -s 10.1.1.0/24 -g 10.1.1.254 contiv-net");
    master.ok("netctl net create -t blue -s 10.1.1.0/24 -g 10.1.1.254 contiv-net");
    let err = master.fails("netctl global set --fwd-mode routing");
    assert!(err.contains("fwdMode"), "{err}");
    assert_eq!(master.get("/api/v1/globals/global/")["fwdMode"], "bridge");
}

#[test]
fn bad_input_fails_with_the_field_named() {
    let master = Netmaster::start();
    let err = master.fails("netctl net create -s 10.1.1.0/33 x");
    assert!(err.starts_with("ERRO[0000] "), "{err}");
    assert!(err.contains("subnet"), "{err}");
    assert_eq!(master.status("/api/v1/networks/default:x/"), 404);

    let err = master.fails("netctl net create -s 10.9.0.0/24 -g 10.8.0.1 y");
    assert!(err.contains("gateway"), "{err}");

    let err = master.fails("netctl policy rule-add nope 1 -direction=sideways");
    assert!(err.contains("direction") || err.contains("policy"), "{err}");

    let err = master.fails("netctl net ls -t no-such-tenant");
    assert!(err.contains("no-such-tenant"), "{err}");

    master.ok("netctl net create -s 10.1.1.0/24 busy");
    master.ok("netctl group create busy g");
    let err = master.fails("netctl net rm busy");
    assert!(err.starts_with("ERRO[0000] "), "{err}");
    assert_eq!(master.status("/api/v1/networks/default:busy/"), 200);
}

#[test]
fn unreachable_netmaster_is_a_clear_error() {
    // No master listens on this freshly released port.
    let port = free_loopback_port();
    let out = Command::new(env!("CARGO_BIN_EXE_netctl"))
        .args([
            "--netmaster",
            &format!("http://127.0.0.1:{port}"),
            "tenant",
            "ls",
        ])
        .output()
        .expect("running netctl");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the netmaster"), "{err}");
}

#[test]
fn every_object_family_round_trips() {
    let master = Netmaster::start();
    master.ok("netctl tenant create red");

    assert_eq!(
        master.ok("netctl netprofile create -t red -b 100mbps -d 5 -s 200 gold"),
        "Creating netprofile red:gold\n"
    );
    let profile = master.get("/api/v1/netprofiles/red:gold/");
    assert_eq!(
        (profile["DSCP"].as_i64(), profile["burst"].as_i64()),
        (Some(5), Some(200))
    );
    let profiles = master.ok("netctl netprofile ls -t red");
    assert!(
        profiles
            .lines()
            .nth(2)
            .is_some_and(|l| l.starts_with("gold    red     100Mbps")),
        "{profiles}"
    );
    let inspect: Value =
        serde_json::from_str(&master.ok("netctl netprofile inspect -t red gold")).expect("JSON");
    assert_eq!(inspect["Config"]["bandwidth"], "100mbps");

    master.ok("netctl net create -t red -s 10.2.0.0/24 rnet");
    master.ok("netctl group create -t red -networkprofile=gold rnet web");
    master.ok("netctl group create -t red rnet db");
    assert_eq!(
        master.get("/api/v1/endpointGroups/red:web/")["netProfile"],
        "gold"
    );
    assert_eq!(
        master.ok("netctl app-profile create -t red -g web,db shop"),
        "Creating AppProfile red:shop\n"
    );
    assert_eq!(
        master.get("/api/v1/appProfiles/red:shop/")["endpointGroups"],
        serde_json::json!(["web", "db"])
    );
    assert_eq!(
        master.ok("netctl app-profile group-ls -t red shop"),
        "web,db\n"
    );
    master.ok("netctl app-profile update -t red -g web shop");
    let apps = master.ok("netctl app-profile ls -t red");
    assert!(
        apps.lines()
            .nth(2)
            .is_some_and(|l| l.trim_end() == "red     shop        web"),
        "{apps}"
    );
    master.ok("netctl app-profile rm -t red shop");
    assert_eq!(master.status("/api/v1/appProfiles/red:shop/"), 404);

    master.ok("netctl external-contracts create -t red -p -a uni/tn-common/brc-x ext");
    assert_eq!(
        master.get("/api/v1/extContractsGroups/red:ext/")["contractsType"],
        "provided"
    );
    assert_eq!(master.ok("netctl external-contracts ls -t red -q"), "ext\n");
    master.ok("netctl external-contracts rm -t red ext");
    assert_eq!(master.status("/api/v1/extContractsGroups/red:ext/"), 404);
    let err = master.fails("netctl external-contracts create -t red -a x ext2");
    assert!(err.contains("provided or consumed"), "{err}");

    master.ok("netctl aci-gw set -d containerDom");
    let gw = master.get("/api/v1/aciGws/aciGw/");
    assert_eq!(gw["physicalDomain"], "containerDom");
    assert_eq!(gw["enforcePolicies"], "yes");
    assert!(master
        .ok("netctl aci-gw info")
        .contains("Physical domain: containerDom\n"));

    master.ok(
        "netctl service create -t red -s rnet -l app=web -p 80:8080:TCP -ip 10.2.0.100 web-svc",
    );
    assert_eq!(
        master.get("/api/v1/serviceLBs/red:web-svc/")["ipAddress"],
        "10.2.0.100"
    );
    let inspect: Value =
        serde_json::from_str(&master.ok("netctl service inspect -t red web-svc")).expect("JSON");
    assert_eq!(inspect["Config"]["serviceName"], "web-svc");
    master.ok("netctl service rm -t red web-svc");
    assert_eq!(master.status("/api/v1/serviceLBs/red:web-svc/"), 404);

    master.ok("netctl policy create -t red p1");
    let inspect: Value =
        serde_json::from_str(&master.ok("netctl policy inspect -t red p1")).expect("JSON");
    assert_eq!(inspect["Config"]["policyName"], "p1");
    assert_eq!(master.ok("netctl policy ls -t red -q"), "p1\n");
    assert_eq!(
        master.ok("netctl policy rm -t red p1"),
        "Deleting policy red:p1\n"
    );
    assert_eq!(master.status("/api/v1/policys/red:p1/"), 404);

    let err = master.fails("netctl endpoint inspect no-such-endpoint");
    assert!(err.contains("no-such-endpoint"), "{err}");

    master.ok("netctl group rm -t red web");
    master.ok("netctl group rm -t red db");
    master.ok("netctl netprofile rm -t red gold");
    assert_eq!(master.status("/api/v1/netprofiles/red:gold/"), 404);
    master.ok("netctl net rm -t red rnet");
    let inspect: Value =
        serde_json::from_str(&master.ok("netctl tenant inspect red")).expect("JSON");
    assert_eq!(inspect["Config"]["tenantName"], "red");
    assert_eq!(master.ok("netctl tenant rm red"), "Deleting tenant red\n");
    assert_eq!(master.status("/api/v1/tenants/red/"), 404);
}

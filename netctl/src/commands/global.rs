//! `netctl global info|inspect|set`: the fabric-wide settings (one object, key `global`).

use super::{emit, inspect, to_json};
use crate::cli::{GlobalCmd, GlobalSet};
use crate::client::{Client, Write};
use fabric_model::Global;

/// The key of the one global object.
const GLOBAL_NAME: &str = "global";

pub fn run(client: &Client, cmd: GlobalCmd) -> anyhow::Result<()> {
    match cmd {
        GlobalCmd::Info(args) => {
            let globals: Vec<Global> = client.list()?;
            if args.json {
                emit(&to_json(&globals)?)
            } else {
                emit(&globals.iter().map(info).collect::<String>())
            }
        }
        GlobalCmd::Inspect => inspect::<Global>(client, GLOBAL_NAME),
        GlobalCmd::Set(args) => {
            let current: Global = client.get(GLOBAL_NAME)?;
            client.post(&set(current, &args))?;
            Ok(())
        }
    }
}

/// Contiv's `global set` reads the current settings and changes only the flags given.
pub fn set(mut global: Global, args: &GlobalSet) -> Write {
    let changes = [
        (&mut global.network_infra_type, &args.fabric_mode),
        (&mut global.vlans, &args.vlan_range),
        (&mut global.vxlans, &args.vxlan_range),
        (&mut global.fwd_mode, &args.fwd_mode),
        (&mut global.arp_mode, &args.arp_mode),
        (&mut global.pvt_subnet, &args.private_subnet),
        (&mut global.fabric_as, &args.fabric_as),
    ];
    for (field, flag) in changes {
        if let Some(value) = flag.as_ref().filter(|v| !v.is_empty()) {
            field.clone_from(value);
        }
    }
    Write::of(&global)
}

/// Contiv's lines exactly (scripts parse them); the fabric AS shows in `global inspect`.
fn info(g: &Global) -> String {
    format!(
        "Fabric mode: {}\nForward mode: {}\nARP mode: {}\nVlan Range: {}\nVxlan range: {}\nPrivate subnet: {}\n",
        g.network_infra_type, g.fwd_mode, g.arp_mode, g.vlans, g.vxlans, g.pvt_subnet
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::parse;
    use fabric_model::Collection;

    fn set_of(line: &str) -> Write {
        match parse(line) {
            Command::Global(GlobalCmd::Set(args)) => set(Global::default(), &args),
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    #[test]
    fn fabric_as_is_set_and_kept() {
        let w = set_of("global set --fabric-as 64512");
        assert_eq!(w.body["fabricAs"], "64512", "{:?}", w.body);
        let w = set_of("global set --fwd-mode routing");
        assert_eq!(w.body["fabricAs"], "65000", "unchanged when not given");
    }

    #[test]
    fn tutorial_fwd_mode_keeps_the_rest() {
        let w = set_of("global set --fwd-mode routing");
        assert_eq!(
            (w.collection, w.key.as_str()),
            (Collection::Globals, "global")
        );
        assert_eq!(w.body["fwdMode"], "routing");
        assert_eq!(w.body["vlans"], "1-4094");
        assert_eq!(w.body["arpMode"], "proxy");
        assert_eq!(w.body["pvtSubnet"], "172.19.0.0/16");
    }

    #[test]
    fn every_flag() {
        let w = set_of(
            "global set -fabric-mode=aci -vlan-range=100-200 -vxlan-range=1-500 -fwd-mode=bridge \
             -arp-mode=flood -private-subnet=172.20.0.0/16",
        );
        assert_eq!(w.body["networkInfraType"], "aci");
        assert_eq!(w.body["vlans"], "100-200");
        assert_eq!(w.body["vxlans"], "1-500");
        assert_eq!(w.body["fwdMode"], "bridge");
        assert_eq!(w.body["arpMode"], "flood");
        assert_eq!(w.body["pvtSubnet"], "172.20.0.0/16");
        let w = set_of("global set -f default -v 1-10 -x 5-6 -b routing -a proxy -s 172.21.0.0/16");
        assert_eq!(w.body["vxlans"], "5-6");
        assert_eq!(w.body["pvtSubnet"], "172.21.0.0/16");
    }

    #[test]
    fn info_lines() {
        assert_eq!(
            info(&Global::default()),
            "Fabric mode: default\nForward mode: routing\nARP mode: proxy\nVlan Range: 1-4094\n\
             Vxlan range: 1-10000\nPrivate subnet: 172.19.0.0/16\n"
        );
    }
}

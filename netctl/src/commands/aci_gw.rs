//! `netctl aci-gw info|inspect|set`: the ACI gateway settings (one object, key `aciGw`).

use super::{emit, inspect, to_json};
use crate::cli::{AciGwCmd, AciGwSet};
use crate::client::{Client, Write};
use fabric_model::AciGw;

/// The key of the one ACI gateway object.
const ACI_GW_NAME: &str = "aciGw";

pub fn run(client: &Client, cmd: AciGwCmd) -> anyhow::Result<()> {
    match cmd {
        AciGwCmd::Info(args) => {
            let gateways: Vec<AciGw> = client.list()?;
            if args.json {
                emit(&to_json(&gateways)?)
            } else {
                emit(&gateways.iter().map(info).collect::<String>())
            }
        }
        AciGwCmd::Inspect => inspect::<AciGw>(client, ACI_GW_NAME),
        AciGwCmd::Set(args) => {
            let current = client.get_optional::<AciGw>(ACI_GW_NAME)?;
            client.post(&set(current, &args))?;
            Ok(())
        }
    }
}

/// As in Contiv, every flag is written (unset ones with their defaults), over the current object.
pub fn set(current: Option<AciGw>, args: &AciGwSet) -> Write {
    let mut gw = current.unwrap_or_else(|| AciGw {
        name: ACI_GW_NAME.to_string(),
        ..AciGw::default()
    });
    gw.path_bindings.clone_from(&args.path_bindings);
    gw.node_bindings.clone_from(&args.node_bindings);
    gw.physical_domain.clone_from(&args.phys_dom);
    gw.enforce_policies.clone_from(&args.enforce_policies);
    gw.include_common_tenant
        .clone_from(&args.include_common_tenant);
    Write::of(&gw)
}

fn info(gw: &AciGw) -> String {
    format!(
        "Path bindings: {}\nNode bindings: {}\nPhysical domain: {}\nEnforce policies: {}\nInclude Common-Tenant: {}\n",
        gw.path_bindings, gw.node_bindings, gw.physical_domain, gw.enforce_policies, gw.include_common_tenant
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::parse;
    use fabric_model::Collection;

    fn args_of(line: &str) -> AciGwSet {
        match parse(line) {
            Command::AciGw(AciGwCmd::Set(args)) => args,
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_and_flags() {
        let w = set(None, &args_of("aci-gw set -d containerDom"));
        assert_eq!(
            (w.collection, w.key.as_str()),
            (Collection::AciGws, "aciGw")
        );
        assert_eq!(w.body["physicalDomain"], "containerDom");
        assert_eq!(w.body["enforcePolicies"], "yes");
        assert_eq!(w.body["includeCommonTenant"], "no");
        let w = set(
            None,
            &args_of(
                "aci-gw set -path-bindings=topology/pod-1/paths-101/pathep-[eth1/14] \
                 -node-bindings=topology/pod-1/node-101 -enforce-policies=no -include-common-tenant=yes",
            ),
        );
        assert_eq!(
            w.body["pathBindings"],
            "topology/pod-1/paths-101/pathep-[eth1/14]"
        );
        assert_eq!(w.body["nodeBindings"], "topology/pod-1/node-101");
        assert_eq!(w.body["enforcePolicies"], "no");
        assert_eq!(w.body["includeCommonTenant"], "yes");
    }

    #[test]
    fn info_lines() {
        let gw = AciGw {
            physical_domain: "d".into(),
            enforce_policies: "yes".into(),
            include_common_tenant: "no".into(),
            ..AciGw::default()
        };
        assert_eq!(
            info(&gw),
            "Path bindings: \nNode bindings: \nPhysical domain: d\nEnforce policies: yes\nInclude Common-Tenant: no\n"
        );
    }
}

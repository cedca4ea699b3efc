//! `netctl group create|rm|ls|inspect`: endpoint groups.

use super::{emit, inspect, ls, TenantListed};
use crate::cli::{GroupCmd, GroupCreate};
use crate::client::{Client, Write};
use crate::table::Table;
use fabric_model::object::join_key;
use fabric_model::{EndpointGroup, Object};

pub fn run(client: &Client, cmd: GroupCmd) -> anyhow::Result<()> {
    match cmd {
        GroupCmd::Create(args) => {
            client.post(&create(&args))?;
            emit(&format!(
                "Creating EndpointGroup {}:{}\n",
                args.tenant.tenant, args.group
            ))
        }
        GroupCmd::Rm(args) => {
            let key = join_key(&[&args.tenant.tenant, &args.name]);
            client.delete(EndpointGroup::COLLECTION, &key)?;
            Ok(())
        }
        GroupCmd::Inspect(args) => {
            inspect::<EndpointGroup>(client, &join_key(&[&args.tenant.tenant, &args.name]))
        }
        GroupCmd::Ls(args) => ls::<EndpointGroup>(client, &args),
    }
}

pub fn create(args: &GroupCreate) -> Write {
    Write::of(&EndpointGroup {
        tenant_name: args.tenant.tenant.clone(),
        group_name: args.group.clone(),
        network_name: args.network.clone(),
        ip_pool: args.ip_pool.clone().unwrap_or_default(),
        policies: args.policy.clone(),
        ext_contracts_grps: args.external_contract.clone(),
        net_profile: args.networkprofile.clone().unwrap_or_default(),
        cfgd_tag: args.epg_tag.clone().unwrap_or_default(),
        ..EndpointGroup::default()
    })
}

impl TenantListed for EndpointGroup {
    fn tenant(&self) -> &str {
        &self.tenant_name
    }

    fn name(&self) -> &str {
        &self.group_name
    }

    fn table(groups: &[Self]) -> String {
        let mut t = Table::new(
            "Tenant\tGroup\tNetwork\tIP Pool\tCfgdTag\tPolicies\tNetwork profile",
            "------\t-----\t-------\t-------\t-------\t--------\t---------------",
        );
        for g in groups {
            t.row(&[
                g.tenant_name.as_str(),
                &g.group_name,
                &g.network_name,
                &g.ip_pool,
                &g.cfgd_tag,
                &g.policies.join(","),
                &g.net_profile,
            ]);
        }
        t.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::parse;
    use fabric_model::Collection;

    fn create_of(line: &str) -> Write {
        match parse(line) {
            Command::Group(GroupCmd::Create(args)) => create(&args),
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    #[test]
    fn tutorial_group_with_one_dash_policy() {
        let w = create_of("group create contiv-net db-group -policy=db-policy");
        assert_eq!(w.collection, Collection::EndpointGroups);
        assert_eq!(w.key, "default:db-group");
        assert_eq!(w.body["networkName"], "contiv-net");
        assert_eq!(w.body["policies"], serde_json::json!(["db-policy"]));
    }

    #[test]
    fn all_flags() {
        let w = create_of(
            "group create -t blue -p a -p b -n prof -e c1 --external-contract c2 \
             -r 10.1.1.10-10.1.1.20 -tag gold net g",
        );
        assert_eq!(w.key, "blue:g");
        assert_eq!(w.body["policies"], serde_json::json!(["a", "b"]));
        assert_eq!(w.body["extContractsGrps"], serde_json::json!(["c1", "c2"]));
        assert_eq!(w.body["netProfile"], "prof");
        assert_eq!(w.body["ipPool"], "10.1.1.10-10.1.1.20");
        assert_eq!(w.body["cfgdTag"], "gold");
        let w =
            create_of("group create -networkprofile=p2 -ip-pool=10.0.0.1-10.0.0.2 -epg-tag=t n g");
        assert_eq!(w.body["netProfile"], "p2");
        assert_eq!(w.body["ipPool"], "10.0.0.1-10.0.0.2");
        assert_eq!(w.body["cfgdTag"], "t");
    }

    #[test]
    fn table_joins_policies() {
        let g: EndpointGroup =
            serde_json::from_value(create_of("group create -p a -p b net web").body).unwrap();
        assert_eq!(
            TenantListed::table(&[g]),
            "Tenant   Group  Network  IP Pool  CfgdTag  Policies  Network profile\n\
             ------   -----  -------  -------  -------  --------  ---------------\n\
             default  web    net                        a,b       \n"
        );
    }
}

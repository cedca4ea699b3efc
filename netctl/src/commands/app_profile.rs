//! `netctl app-profile create|update|rm|ls|group-ls`.

use super::{emit, ls, to_json, TenantListed};
use crate::cli::{AppProfileCmd, AppProfileGroupLs, AppProfileWrite};
use crate::client::{Client, Write};
use crate::table::Table;
use fabric_model::object::join_key;
use fabric_model::{AppProfile, Object};

pub fn run(client: &Client, cmd: AppProfileCmd) -> anyhow::Result<()> {
    match cmd {
        AppProfileCmd::Create(args) => {
            client.post(&write(&args))?;
            emit(&format!(
                "Creating AppProfile {}:{}\n",
                args.tenant.tenant, args.name
            ))
        }
        AppProfileCmd::Update(args) => {
            client.post(&write(&args))?;
            Ok(())
        }
        AppProfileCmd::Rm(args) => {
            let key = join_key(&[&args.tenant.tenant, &args.name]);
            client.delete(AppProfile::COLLECTION, &key)?;
            Ok(())
        }
        AppProfileCmd::Ls(args) => ls::<AppProfile>(client, &args),
        AppProfileCmd::GroupLs(args) => group_ls(client, &args),
    }
}

/// Create and update send the same object; `-g` is a comma-separated group list.
pub fn write(args: &AppProfileWrite) -> Write {
    let groups = args
        .group
        .split(',')
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect();
    Write::of(&AppProfile {
        tenant_name: args.tenant.tenant.clone(),
        app_profile_name: args.name.clone(),
        endpoint_groups: groups,
        ..AppProfile::default()
    })
}

impl TenantListed for AppProfile {
    fn tenant(&self) -> &str {
        &self.tenant_name
    }

    fn name(&self) -> &str {
        &self.app_profile_name
    }

    fn table(profiles: &[Self]) -> String {
        let mut t = Table::new("Tenant\tAppProfile\tGroups", "------\t----------\t------");
        for p in profiles {
            t.row(&[
                &p.tenant_name,
                &p.app_profile_name,
                &p.endpoint_groups.join(","),
            ]);
        }
        t.render()
    }
}

fn group_ls(client: &Client, args: &AppProfileGroupLs) -> anyhow::Result<()> {
    let key = join_key(&[&args.list.tenant.tenant, &args.name]);
    let profile: AppProfile = client.get(&key)?;
    if args.list.format.json {
        emit(&to_json(&profile)?)
    } else {
        emit(&format!("{}\n", profile.endpoint_groups.join(",")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::parse;
    use fabric_model::Collection;

    #[test]
    fn groups_are_comma_separated() {
        let Command::AppProfile(AppProfileCmd::Create(args)) =
            parse("app-profile create -t blue -g web,db prof")
        else {
            panic!("wrong command");
        };
        let w = write(&args);
        assert_eq!(
            (w.collection, w.key.as_str()),
            (Collection::AppProfiles, "blue:prof")
        );
        assert_eq!(w.body["endpointGroups"], serde_json::json!(["web", "db"]));
        let Command::AppProfile(AppProfileCmd::Update(args)) = parse("app-profile update prof")
        else {
            panic!("wrong command");
        };
        assert_eq!(write(&args).body["endpointGroups"], serde_json::json!([]));
    }

    #[test]
    fn aliases_and_table() {
        assert!(matches!(
            parse("app-profile group-list prof"),
            Command::AppProfile(AppProfileCmd::GroupLs(_))
        ));
        let p = AppProfile {
            tenant_name: "default".into(),
            app_profile_name: "prof".into(),
            endpoint_groups: vec!["web".into(), "db".into()],
            ..AppProfile::default()
        };
        assert_eq!(
            TenantListed::table(&[p]),
            "Tenant   AppProfile  Groups\n------   ----------  ------\ndefault  prof        web,db\n"
        );
    }
}

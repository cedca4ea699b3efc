//! `netctl external-contracts create|rm|ls`: groups of ACI contracts.

use super::{emit, go_list, ls, TenantListed};
use crate::cli::{ExtContractsCmd, ExtContractsCreate};
use crate::client::{Client, Write};
use crate::table::Table;
use anyhow::bail;
use fabric_model::object::join_key;
use fabric_model::{ExtContractsGroup, Object};

pub fn run(client: &Client, cmd: ExtContractsCmd) -> anyhow::Result<()> {
    match cmd {
        ExtContractsCmd::Create(args) => {
            client.post(&create(&args)?)?;
            emit(&format!(
                "Creating ExternalContracts {}:{}\n",
                args.tenant.tenant, args.name
            ))
        }
        ExtContractsCmd::Rm(args) => {
            let tenant = &args.tenant.tenant;
            emit(&format!(
                "Deleting external contracts group {} in tenant {tenant}\n",
                args.name
            ))?;
            client.delete(
                ExtContractsGroup::COLLECTION,
                &join_key(&[tenant, &args.name]),
            )?;
            Ok(())
        }
        ExtContractsCmd::Ls(args) => ls::<ExtContractsGroup>(client, &args),
    }
}

/// Contiv's checks: exactly one of provided/consumed, and at least one contract.
pub fn create(args: &ExtContractsCreate) -> anyhow::Result<Write> {
    let contracts_type = match (args.provided, args.consumed) {
        (true, true) => bail!("Cannot use both provided and consumed"),
        (true, false) => "provided",
        (false, true) => "consumed",
        (false, false) => bail!("Either provided or consumed must be specified"),
    };
    if args.contract.is_empty() {
        bail!("Contracts not provided");
    }
    Ok(Write::of(&ExtContractsGroup {
        tenant_name: args.tenant.tenant.clone(),
        contracts_group_name: args.name.clone(),
        contracts_type: contracts_type.to_string(),
        contracts: args.contract.clone(),
        ..ExtContractsGroup::default()
    }))
}

impl TenantListed for ExtContractsGroup {
    fn tenant(&self) -> &str {
        &self.tenant_name
    }

    fn name(&self) -> &str {
        &self.contracts_group_name
    }

    fn table(groups: &[Self]) -> String {
        let mut t = Table::new(
            "Tenant\tName\t\tType\t\tContracts",
            "------\t------\t\t------\t\t-------",
        );
        for g in groups {
            t.row(&[
                g.tenant_name.as_str(),
                &g.contracts_group_name,
                "",
                &g.contracts_type,
                "",
                &go_list(&g.contracts),
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

    fn create_of(line: &str) -> anyhow::Result<Write> {
        match parse(line) {
            Command::ExternalContracts(ExtContractsCmd::Create(args)) => create(&args),
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    #[test]
    fn provided_contracts() {
        let w = create_of(
            "external-contracts create -p -a uni/tn-common/brc-a -a uni/tn-common/brc-b ext",
        )
        .unwrap();
        assert_eq!(
            (w.collection, w.key.as_str()),
            (Collection::ExtContractsGroups, "default:ext")
        );
        assert_eq!(w.body["contractsType"], "provided");
        assert_eq!(
            w.body["contracts"],
            serde_json::json!(["uni/tn-common/brc-a", "uni/tn-common/brc-b"])
        );
        let w = create_of("external-contracts create -consumed -contract=c ext").unwrap();
        assert_eq!(w.body["contractsType"], "consumed");
    }

    #[test]
    fn contiv_checks() {
        let e = create_of("external-contracts create -p -c -a x ext").unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");
        let e = create_of("external-contracts create -a x ext").unwrap_err();
        assert!(e.to_string().contains("Either"), "{e}");
        let e = create_of("external-contracts create -p ext").unwrap_err();
        assert!(e.to_string().contains("Contracts not provided"), "{e}");
    }

    #[test]
    fn table_row() {
        let g: ExtContractsGroup = serde_json::from_value(
            create_of("external-contracts create -p -a c1 ext")
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(
            TenantListed::table(&[g]).lines().nth(2),
            Some("default  ext       provided    [c1]")
        );
    }
}

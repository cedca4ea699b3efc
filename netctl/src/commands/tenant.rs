//! `netctl tenant create|rm|ls|inspect`.

use super::{emit, inspect, render_list};
use crate::cli::TenantCmd;
use crate::client::{Client, Write};
use crate::table::Table;
use fabric_model::{Object, Tenant};

pub fn run(client: &Client, cmd: TenantCmd) -> anyhow::Result<()> {
    match cmd {
        TenantCmd::Create(args) => {
            client.post(&create(&args.name))?;
            emit(&format!("Creating tenant: {}\n", args.name))
        }
        TenantCmd::Rm(args) => {
            emit(&format!("Deleting tenant {}\n", args.name))?;
            client.delete(Tenant::COLLECTION, &args.name)?;
            Ok(())
        }
        TenantCmd::Inspect(args) => inspect::<Tenant>(client, &args.name),
        TenantCmd::Ls(format) => {
            let tenants: Vec<Tenant> = client.list()?;
            emit(&render_list(&tenants, format, |t| &t.tenant_name, table)?)
        }
    }
}

pub fn create(name: &str) -> Write {
    Write::of(&Tenant {
        tenant_name: name.to_string(),
        ..Tenant::default()
    })
}

fn table(tenants: &[Tenant]) -> String {
    let mut t = Table::new("Name\t", "------\t");
    for tenant in tenants {
        t.row(&[tenant.tenant_name.as_str(), ""]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::commands::test_support::parse;
    use fabric_model::Collection;

    #[test]
    fn create_writes_the_tenant() {
        let Command::Tenant(TenantCmd::Create(args)) = parse("tenant create blue") else {
            panic!("wrong command");
        };
        let w = create(&args.name);
        assert_eq!(
            (w.collection, w.key.as_str()),
            (Collection::Tenants, "blue")
        );
        assert_eq!(w.body["tenantName"], "blue");
    }

    #[test]
    fn aliases() {
        assert!(matches!(
            parse("tenant delete blue"),
            Command::Tenant(TenantCmd::Rm(_))
        ));
        assert!(matches!(parse("tenant list -q"), Command::Tenant(TenantCmd::Ls(f)) if f.quiet));
    }

    #[test]
    fn table_like_contiv() {
        let tenants = [create("default"), create("blue")]
            .map(|w| serde_json::from_value::<Tenant>(w.body).unwrap());
        assert_eq!(
            table(&tenants),
            "Name     \n------   \ndefault  \nblue     \n"
        );
    }
}

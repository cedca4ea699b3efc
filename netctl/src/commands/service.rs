//! `netctl service create|rm|ls|inspect`: load-balanced services (serviceLB).

use super::{emit, go_list, inspect, ls, TenantListed};
use crate::cli::{ServiceCmd, ServiceCreate};
use crate::client::{Client, Write};
use crate::table::Table;
use fabric_model::object::join_key;
use fabric_model::{Object, ServiceLb};

pub fn run(client: &Client, cmd: ServiceCmd) -> anyhow::Result<()> {
    match cmd {
        ServiceCmd::Create(args) => {
            client.post(&create(&args))?;
            emit(&format!(
                "Creating ServiceLB {}:{}\n",
                args.tenant.tenant, args.name
            ))
        }
        ServiceCmd::Rm(args) => {
            let tenant = &args.tenant.tenant;
            emit(&format!("Deleting Service  {},{tenant}\n", args.name))?;
            client.delete(ServiceLb::COLLECTION, &join_key(&[tenant, &args.name]))?;
            Ok(())
        }
        ServiceCmd::Inspect(args) => {
            inspect::<ServiceLb>(client, &join_key(&[&args.tenant.tenant, &args.name]))
        }
        ServiceCmd::Ls(args) => ls::<ServiceLb>(client, &args),
    }
}

pub fn create(args: &ServiceCreate) -> Write {
    Write::of(&ServiceLb {
        tenant_name: args.tenant.tenant.clone(),
        service_name: args.name.clone(),
        network_name: args.network.clone(),
        ip_address: args.preferred_ip.clone(),
        selectors: args.selector.clone(),
        ports: args.port.clone(),
        ..ServiceLb::default()
    })
}

impl TenantListed for ServiceLb {
    fn tenant(&self) -> &str {
        &self.tenant_name
    }

    fn name(&self) -> &str {
        &self.service_name
    }

    fn table(services: &[Self]) -> String {
        let mut t = Table::new(
            "ServiceName\tTenant\tNetwork\tSelectors",
            "---------\t--------\t-------\t-------",
        );
        for s in services {
            t.row(&[
                s.service_name.as_str(),
                &s.tenant_name,
                &s.network_name,
                &go_list(&s.selectors),
                "",
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
            Command::Service(ServiceCmd::Create(args)) => create(&args),
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    #[test]
    fn tutorial_service() {
        let w = create_of(
            "service create app-svc --network contiv-net --selector=tier=web --port 8080:80:TCP",
        );
        assert_eq!(w.collection, Collection::ServiceLbs);
        assert_eq!(w.key, "default:app-svc");
        assert_eq!(w.body["networkName"], "contiv-net");
        assert_eq!(w.body["selectors"], serde_json::json!(["tier=web"]));
        assert_eq!(w.body["ports"], serde_json::json!(["8080:80:TCP"]));
        assert_eq!(w.body["ipAddress"], "");
    }

    #[test]
    fn repeated_and_short_flags() {
        let w = create_of(
            "service create -t blue -s net -l a=1 -l b=2 -p 1:2:UDP -p 3:4:TCP -ip 10.1.1.9 svc",
        );
        assert_eq!(w.key, "blue:svc");
        assert_eq!(w.body["selectors"], serde_json::json!(["a=1", "b=2"]));
        assert_eq!(w.body["ports"], serde_json::json!(["1:2:UDP", "3:4:TCP"]));
        assert_eq!(w.body["ipAddress"], "10.1.1.9");
        let w = create_of("service create --preferred-ip=10.1.1.8 --network n svc");
        assert_eq!(w.body["ipAddress"], "10.1.1.8");
    }

    #[test]
    fn table_prints_selectors_like_go() {
        let s: ServiceLb =
            serde_json::from_value(create_of("service create --network n -l a=1 -l b=2 svc").body)
                .unwrap();
        let text = TenantListed::table(&[s]);
        assert_eq!(
            text.lines().nth(2),
            Some("svc          default   n        [a=1 b=2]  ")
        );
    }
}

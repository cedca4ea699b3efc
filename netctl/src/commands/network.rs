//! `netctl network|net create|rm|ls|inspect`.

use super::{emit, inspect, ls, TenantListed};
use crate::cli::{NetworkCmd, NetworkCreate};
use crate::client::{Client, Write};
use crate::table::Table;
use fabric_model::object::join_key;
use fabric_model::{Network, Object};

pub fn run(client: &Client, cmd: NetworkCmd) -> anyhow::Result<()> {
    match cmd {
        NetworkCmd::Create(args) => {
            client.post(&create(&args))?;
            emit(&format!(
                "Creating network {}:{}\n",
                args.tenant.tenant, args.name
            ))
        }
        NetworkCmd::Rm(args) => {
            let tenant = &args.tenant.tenant;
            emit(&format!("Deleting network {tenant}:{}\n", args.name))?;
            client.delete(Network::COLLECTION, &join_key(&[tenant, &args.name]))?;
            Ok(())
        }
        NetworkCmd::Inspect(args) => {
            inspect::<Network>(client, &join_key(&[&args.tenant.tenant, &args.name]))
        }
        NetworkCmd::Ls(args) => ls::<Network>(client, &args),
    }
}

pub fn create(args: &NetworkCreate) -> Write {
    Write::of(&Network {
        tenant_name: args.tenant.tenant.clone(),
        network_name: args.name.clone(),
        nw_type: args.nw_type.clone(),
        encap: args.encap.clone(),
        pkt_tag: args.pkt_tag,
        subnet: args.subnet.clone().unwrap_or_default(),
        gateway: args.gateway.clone().unwrap_or_default(),
        ipv6_subnet: args.subnetv6.clone().unwrap_or_default(),
        ipv6_gateway: args.gatewayv6.clone().unwrap_or_default(),
        cfgd_tag: args.nw_tag.clone().unwrap_or_default(),
        ..Network::default()
    })
}

impl TenantListed for Network {
    fn tenant(&self) -> &str {
        &self.tenant_name
    }

    fn name(&self) -> &str {
        &self.network_name
    }

    fn table(networks: &[Self]) -> String {
        let mut t = Table::new(
            "Tenant\tNetwork\tNw Type\tEncap type\tPacket tag\tSubnet\tGateway\tIPv6Subnet\tIPv6Gateway\tCfgd Tag ",
            "------\t-------\t-------\t----------\t----------\t-------\t------\t----------\t-----------\t---------",
        );
        for n in networks {
            t.row(&[
                n.tenant_name.as_str(),
                &n.network_name,
                &n.nw_type,
                &n.encap,
                &n.pkt_tag.to_string(),
                &n.subnet,
                &n.gateway,
                &n.ipv6_subnet,
                &n.ipv6_gateway,
                &n.cfgd_tag,
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
            Command::Network(NetworkCmd::Create(args)) => create(&args),
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    #[test]
    fn tutorial_network_in_tenant_blue() {
        let w = create_of("net create -t blue -s 10.1.1.0/24 -g 10.1.1.254 contiv-net");
        assert_eq!(w.collection, Collection::Networks);
        assert_eq!(w.key, "blue:contiv-net");
        assert_eq!(w.body["subnet"], "10.1.1.0/24");
        assert_eq!(w.body["gateway"], "10.1.1.254");
        assert_eq!(w.body["encap"], "vxlan");
        assert_eq!(w.body["nwType"], "data");
        assert_eq!(w.body["pktTag"], 0);
    }

    #[test]
    fn vlan_network_with_pkt_tag() {
        let w = create_of("network create -p 112 -e vlan -s 10.1.3.0/24 contiv-vlan");
        assert_eq!(w.key, "default:contiv-vlan");
        assert_eq!(w.body["pktTag"], 112);
        assert_eq!(w.body["encap"], "vlan");
        assert_eq!(w.body["gateway"], "");
    }

    #[test]
    fn long_and_contiv_short_names() {
        let w = create_of(
            "net create --tenant t --nw-type infra --encap vlan --pkt-tag 5 --subnet 10.0.0.0/24 \
             -s6 2001:db8::/64 -g6 2001:db8::1 -tag red n",
        );
        assert_eq!(w.key, "t:n");
        assert_eq!(w.body["nwType"], "infra");
        assert_eq!(w.body["pktTag"], 5);
        assert_eq!(w.body["ipv6Subnet"], "2001:db8::/64");
        assert_eq!(w.body["ipv6Gateway"], "2001:db8::1");
        assert_eq!(w.body["cfgdTag"], "red");
        let w = create_of("net create -subnetv6=2001:db8::/64 -nw-tag=x -s 10.0.0.0/24 n");
        assert_eq!(w.body["ipv6Subnet"], "2001:db8::/64");
        assert_eq!(w.body["cfgdTag"], "x");
    }

    #[test]
    fn table_columns() {
        let net: Network =
            serde_json::from_value(create_of("net create -s 10.1.1.0/24 -g 10.1.1.254 n").body)
                .unwrap();
        let text = TenantListed::table(&[net]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("Tenant   Network  Nw Type  Encap type  Packet tag  Subnet       Gateway     IPv6Subnet  IPv6Gateway  Cfgd Tag "), "{text}");
        assert!(
            lines[2].starts_with(
                "default  n        data     vxlan       0           10.1.1.0/24  10.1.1.254"
            ),
            "{text}"
        );
    }
}

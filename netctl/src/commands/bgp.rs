//! `netctl bgp create|rm|ls|inspect`: a host's BGP settings.

use super::{emit, inspect, render_list};
use crate::cli::{BgpCmd, BgpCreate};
use crate::client::{Client, Write};
use crate::table::Table;
use fabric_model::{Bgp, Object};

pub fn run(client: &Client, cmd: BgpCmd) -> anyhow::Result<()> {
    match cmd {
        BgpCmd::Create(args) => {
            client.post(&create(&args))?;
            Ok(())
        }
        BgpCmd::Rm(args) => {
            emit(&format!("Deleting Bgp router config: {}\n", args.name))?;
            client.delete(Bgp::COLLECTION, &args.name)?;
            Ok(())
        }
        BgpCmd::Inspect(args) => inspect::<Bgp>(client, &args.name),
        BgpCmd::Ls(format) => {
            let hosts: Vec<Bgp> = client.list()?;
            emit(&render_list(&hosts, format, |b| &b.hostname, table)?)
        }
    }
}

pub fn create(args: &BgpCreate) -> Write {
    Write::of(&Bgp {
        hostname: args.hostname.clone(),
        routerip: args.router_ip.clone(),
        as_number: args.as_number.clone(),
        neighbor_as: args.neighbor_as.clone(),
        neighbor: args.neighbor.clone(),
        ..Bgp::default()
    })
}

fn table(hosts: &[Bgp]) -> String {
    let mut t = Table::new(
        "HostName\tRouterIP\tAS\tNeighbor\tNeighborAS",
        "---------\t--------\t-------\t--------\t-------",
    );
    for b in hosts {
        t.row(&[
            &b.hostname,
            &b.routerip,
            &b.as_number,
            &b.neighbor,
            &b.neighbor_as,
        ]);
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
    fn tutorial_bgp() {
        // The shell has removed the quotes of -router-ip="50.1.1.1/24" --as="65002".
        let Command::Bgp(BgpCmd::Create(args)) = parse(
            "bgp create host1 -router-ip=50.1.1.1/24 --as=65002 --neighbor-as=500 --neighbor=50.1.1.2",
        ) else {
            panic!("wrong command");
        };
        let w = create(&args);
        assert_eq!((w.collection, w.key.as_str()), (Collection::Bgps, "host1"));
        assert_eq!(w.body["routerip"], "50.1.1.1/24");
        assert_eq!(w.body["as"], "65002");
        assert_eq!(w.body["neighbor-as"], "500");
        assert_eq!(w.body["neighbor"], "50.1.1.2");
        let b: Bgp = serde_json::from_value(w.body).unwrap();
        assert_eq!(
            table(&[b]),
            "HostName   RouterIP     AS       Neighbor  NeighborAS\n\
             ---------  --------     -------  --------  -------\n\
             host1      50.1.1.1/24  65002    50.1.1.2  500\n"
        );
    }
}

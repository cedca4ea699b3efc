//! `netctl netprofile create|rm|ls|inspect`: bandwidth and DSCP profiles.

use super::{emit, inspect, ls, TenantListed};
use crate::cli::{NetprofileCmd, NetprofileCreate};
use crate::client::{Client, Write};
use crate::table::Table;
use fabric_model::object::join_key;
use fabric_model::{Netprofile, Object};

pub fn run(client: &Client, cmd: NetprofileCmd) -> anyhow::Result<()> {
    match cmd {
        NetprofileCmd::Create(args) => {
            client.post(&create(&args))?;
            emit(&format!(
                "Creating netprofile {}:{}\n",
                args.tenant.tenant, args.name
            ))
        }
        NetprofileCmd::Rm(args) => {
            let key = join_key(&[&args.tenant.tenant, &args.name]);
            client.delete(Netprofile::COLLECTION, &key)?;
            Ok(())
        }
        NetprofileCmd::Inspect(args) => {
            inspect::<Netprofile>(client, &join_key(&[&args.tenant.tenant, &args.name]))
        }
        NetprofileCmd::Ls(args) => ls::<Netprofile>(client, &args),
    }
}

pub fn create(args: &NetprofileCreate) -> Write {
    Write::of(&Netprofile {
        tenant_name: args.tenant.tenant.clone(),
        profile_name: args.name.clone(),
        bandwidth: args.bandwidth.clone().unwrap_or_default(),
        dscp: args.dscp,
        burst: args.burst,
        ..Netprofile::default()
    })
}

/// Contiv shows bandwidth as its leading number and a unit: `100 mbps` → `100Mbps`.
fn bandwidth_cell(bandwidth: &str) -> String {
    let digits: String = bandwidth
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    let lower = bandwidth.to_ascii_lowercase();
    let unit = if lower.contains('g') {
        "Gbps"
    } else if lower.contains('m') {
        "Mbps"
    } else if lower.contains('k') {
        "Kbps"
    } else {
        ""
    };
    format!("{digits}{unit}")
}

impl TenantListed for Netprofile {
    fn tenant(&self) -> &str {
        &self.tenant_name
    }

    fn name(&self) -> &str {
        &self.profile_name
    }

    fn table(profiles: &[Self]) -> String {
        let mut t = Table::new(
            "Name\tTenant\tBandwidth\tDSCP\tburst size",
            "------\t------\t---------\t--------\t----------",
        );
        for p in profiles {
            t.row(&[
                p.profile_name.clone(),
                p.tenant_name.clone(),
                if p.bandwidth.is_empty() {
                    String::new()
                } else {
                    bandwidth_cell(&p.bandwidth)
                },
                p.dscp.to_string(),
                p.burst.to_string(),
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
            Command::Netprofile(NetprofileCmd::Create(args)) => create(&args),
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    #[test]
    fn flags() {
        let w = create_of("netprofile create -t blue -b 10mbps -d 5 -s 100 gold");
        assert_eq!(
            (w.collection, w.key.as_str()),
            (Collection::Netprofiles, "blue:gold")
        );
        assert_eq!(w.body["bandwidth"], "10mbps");
        assert_eq!(w.body["DSCP"], 5);
        assert_eq!(w.body["burst"], 100);
        let w = create_of("netprofile create -bandwidth=1gbps -dscp=3 -burst=7 p");
        assert_eq!(
            (w.body["DSCP"].as_i64(), w.body["burst"].as_i64()),
            (Some(3), Some(7))
        );
    }

    #[test]
    fn bandwidth_like_contiv() {
        assert_eq!(bandwidth_cell("100 mbps"), "100Mbps");
        assert_eq!(bandwidth_cell("1gbps"), "1Gbps");
        assert_eq!(bandwidth_cell("10 Kbps"), "10Kbps");
        let p: Netprofile =
            serde_json::from_value(create_of("netprofile create -b 10mbps -d 2 -s 3 gold").body)
                .unwrap();
        assert_eq!(
            TenantListed::table(&[p]).lines().nth(2),
            Some("gold    default  10Mbps     2         3")
        );
    }
}

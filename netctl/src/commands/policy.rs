//! `netctl policy create|rm|ls|inspect|rule-add|rule-rm|rule-ls`.

use super::{emit, ensure_tenant, inspect, ls, to_json, TenantListed};
use crate::cli::{PolicyCmd, RuleAdd, RuleLs};
use crate::client::{Client, Write};
use crate::table::Table;
use fabric_model::object::join_key;
use fabric_model::{Object, Policy, Rule};

pub fn run(client: &Client, cmd: PolicyCmd) -> anyhow::Result<()> {
    match cmd {
        PolicyCmd::Create(args) => {
            let tenant = &args.tenant.tenant;
            client.post(&create(tenant, &args.name))?;
            emit(&format!("Creating policy {tenant}:{}\n", args.name))
        }
        PolicyCmd::Rm(args) => {
            let tenant = &args.tenant.tenant;
            emit(&format!("Deleting policy {tenant}:{}\n", args.name))?;
            client.delete(Policy::COLLECTION, &join_key(&[tenant, &args.name]))?;
            Ok(())
        }
        PolicyCmd::Inspect(args) => {
            inspect::<Policy>(client, &join_key(&[&args.tenant.tenant, &args.name]))
        }
        PolicyCmd::Ls(args) => ls::<Policy>(client, &args),
        PolicyCmd::RuleAdd(args) => {
            client.post(&rule_add(&args))?;
            Ok(())
        }
        PolicyCmd::RuleRm(args) => {
            let key = join_key(&[&args.tenant.tenant, &args.policy, &args.rule_id]);
            client.delete(Rule::COLLECTION, &key)?;
            Ok(())
        }
        PolicyCmd::RuleLs(args) => rule_ls(client, &args),
    }
}

pub fn create(tenant: &str, name: &str) -> Write {
    Write::of(&Policy {
        tenant_name: tenant.to_string(),
        policy_name: name.to_string(),
        ..Policy::default()
    })
}

/// The rule as Contiv's netctl sends it; the master checks directions and combinations.
pub fn rule_add(args: &RuleAdd) -> Write {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    Write::of(&Rule {
        tenant_name: args.tenant.tenant.clone(),
        policy_name: args.policy.clone(),
        rule_id: args.rule_id.clone(),
        direction: args.direction.clone(),
        priority: args.priority,
        from_endpoint_group: text(&args.from_group),
        to_endpoint_group: text(&args.to_group),
        from_network: text(&args.from_network),
        to_network: text(&args.to_network),
        from_ip_address: text(&args.from_ip_address),
        to_ip_address: text(&args.to_ip_address),
        protocol: text(&args.protocol),
        port: args.port,
        action: args.action.clone(),
        ..Rule::default()
    })
}

impl TenantListed for Policy {
    fn tenant(&self) -> &str {
        &self.tenant_name
    }

    fn name(&self) -> &str {
        &self.policy_name
    }

    fn table(policies: &[Self]) -> String {
        let mut t = Table::new("Tenant\tPolicy", "------\t------");
        for p in policies {
            t.row(&[&p.tenant_name, &p.policy_name]);
        }
        t.render()
    }
}

fn rule_ls(client: &Client, args: &RuleLs) -> anyhow::Result<()> {
    let tenant = &args.tenant.tenant;
    ensure_tenant(client, tenant)?;
    client.get::<Policy>(&join_key(&[tenant, &args.policy]))?;
    let rules = rules_of(client.list()?, tenant, &args.policy);
    let text = if args.format.json {
        to_json(&rules)?
    } else if args.format.quiet {
        rules.iter().map(|r| format!("{}\n", r.rule_id)).collect()
    } else {
        rules_table(&rules)
    };
    emit(&text)
}

/// The policy's rules by ascending priority, keeping the server's order within a priority.
pub fn rules_of(mut rules: Vec<Rule>, tenant: &str, policy: &str) -> Vec<Rule> {
    rules.retain(|r| r.tenant_name == tenant && r.policy_name == policy);
    rules.sort_by_key(|r| r.priority);
    rules
}

fn rules_table(rules: &[Rule]) -> String {
    let mut t = Table::empty();
    t.line("Incoming Rules:");
    t.line("Rule\tPriority\tFrom EndpointGroup\tFrom Network\tFrom IpAddress\tTo IpAddress\tProtocol\tPort\tAction");
    t.line("----\t--------\t------------------\t------------\t---------\t------------\t--------\t----\t------");
    for r in rules.iter().filter(|r| r.direction == "in") {
        t.row(&[
            r.rule_id.as_str(),
            &r.priority.to_string(),
            &r.from_endpoint_group,
            &r.from_network,
            &r.from_ip_address,
            &r.to_ip_address,
            &r.protocol,
            &r.port.to_string(),
            &r.action,
        ]);
    }
    t.line("Outgoing Rules:");
    t.line("Rule\tPriority\tTo EndpointGroup\tTo Network\tTo IpAddress\tProtocol\tPort\tAction");
    t.line("----\t--------\t----------------\t----------\t---------\t--------\t----\t------");
    for r in rules.iter().filter(|r| r.direction == "out") {
        t.row(&[
            r.rule_id.as_str(),
            &r.priority.to_string(),
            &r.to_endpoint_group,
            &r.to_network,
            &r.to_ip_address,
            &r.protocol,
            &r.port.to_string(),
            &r.action,
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

    fn rule_of(line: &str) -> Write {
        match parse(line) {
            Command::Policy(PolicyCmd::RuleAdd(args)) => rule_add(&args),
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    fn rule(w: Write) -> Rule {
        serde_json::from_value(w.body).unwrap()
    }

    #[test]
    fn tutorial_rules() {
        let w = rule_of("policy rule-add db-policy 1 -direction=in -protocol=tcp -action=deny");
        assert_eq!(w.collection, Collection::Rules);
        assert_eq!(w.key, "default:db-policy:1");
        let r = rule(w);
        assert_eq!((r.direction.as_str(), r.protocol.as_str()), ("in", "tcp"));
        assert_eq!((r.action.as_str(), r.priority, r.port), ("deny", 1, 0));

        let w = rule_of(
            "policy rule-add db-policy 2 -direction=in -protocol=tcp -port=8888 -action=allow -priority=10",
        );
        assert_eq!(w.key, "default:db-policy:2");
        let r = rule(w);
        assert_eq!((r.port, r.priority, r.action.as_str()), (8888, 10, "allow"));
    }

    #[test]
    fn defaults_are_contivs() {
        let r = rule(rule_of("policy rule-add p 3"));
        assert_eq!(r.direction, "in");
        assert_eq!(r.action, "allow");
        assert_eq!(r.priority, 1);
    }

    #[test]
    fn short_flags_of_rule_add() {
        let r = rule(rule_of(
            "policy rule-add -t blue -d out -p 5 -e web -l udp -P 53 -j deny p 4",
        ));
        assert_eq!(r.tenant_name, "blue");
        assert_eq!((r.direction.as_str(), r.priority), ("out", 5));
        assert_eq!(r.to_endpoint_group, "web");
        assert_eq!((r.protocol.as_str(), r.port), ("udp", 53));
        assert_eq!(r.action, "deny");
        let r = rule(rule_of(
            "policy rule-add -g g1 -n n1 -i 10.0.0.0/8 -o n2 -s 10.1.0.0/16 p 5",
        ));
        assert_eq!(r.from_endpoint_group, "g1");
        assert_eq!(r.from_network, "n1");
        assert_eq!(r.from_ip_address, "10.0.0.0/8");
        assert_eq!(r.to_network, "n2");
        assert_eq!(r.to_ip_address, "10.1.0.0/16");
        let r = rule(rule_of(
            "policy rule-add -from-group=a -to-group=b -from-network=c -to-network=d \
             -from-ip-address=1.2.3.4 -to-ip-address=5.6.7.8 p 6",
        ));
        assert_eq!(
            [
                r.from_endpoint_group,
                r.to_endpoint_group,
                r.from_network,
                r.to_network
            ],
            ["a", "b", "c", "d"]
        );
        assert_eq!([r.from_ip_address, r.to_ip_address], ["1.2.3.4", "5.6.7.8"]);
    }

    #[test]
    fn policy_create_key() {
        let Command::Policy(PolicyCmd::Create(args)) = parse("policy create -t blue db-policy")
        else {
            panic!("wrong command");
        };
        let w = create(&args.tenant.tenant, &args.name);
        assert_eq!(
            (w.collection, w.key.as_str()),
            (Collection::Policies, "blue:db-policy")
        );
    }

    #[test]
    fn rules_sorted_by_priority_and_split_by_direction() {
        let mk = |id: &str, prio: i64, dir: &str| Rule {
            tenant_name: "default".into(),
            policy_name: "p".into(),
            rule_id: id.into(),
            priority: prio,
            direction: dir.into(),
            protocol: "tcp".into(),
            action: "allow".into(),
            ..Rule::default()
        };
        let mut other = mk("9", 1, "in");
        other.policy_name = "q".into();
        let rules = rules_of(
            vec![
                mk("2", 10, "in"),
                mk("1", 1, "in"),
                mk("3", 5, "out"),
                other,
            ],
            "default",
            "p",
        );
        let ids: Vec<&str> = rules.iter().map(|r| r.rule_id.as_str()).collect();
        assert_eq!(ids, ["1", "3", "2"]);
        let text = rules_table(&rules);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Incoming Rules:");
        assert!(
            lines[1].starts_with("Rule  Priority  From EndpointGroup"),
            "{text}"
        );
        assert!(lines[3].starts_with("1     1  "), "{text}");
        assert!(lines[4].starts_with("2     10 "), "{text}");
        assert_eq!(lines[5], "Outgoing Rules:");
        assert!(lines[8].starts_with("3     5 "), "{text}");
        assert_eq!(lines.len(), 9);
    }
}

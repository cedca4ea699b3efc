//! `rule`: one match-and-action entry of a policy.
//!
//! An `in` rule matches traffic arriving at the group's containers, so only `from*` fields make
//! sense; an `out` rule matches traffic they send, so only `to*` fields. Within a direction a
//! rule matches by group, network or address: at most one of them.

use super::NAME_LEN;
use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::{join_key, Object, Reference};
use serde::{Deserialize, Serialize};

fn default_priority() -> i64 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Rule {
    pub key: String,
    pub tenant_name: String,
    pub policy_name: String,
    pub rule_id: String,
    pub direction: String,
    #[serde(default = "default_priority")]
    pub priority: i64,
    pub from_endpoint_group: String,
    pub to_endpoint_group: String,
    pub from_network: String,
    pub to_network: String,
    pub from_ip_address: String,
    pub to_ip_address: String,
    /// `tcp`, `udp`, `icmp`, an IP protocol number, or empty for any.
    pub protocol: String,
    pub port: i64,
    pub action: String,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            key: String::new(),
            tenant_name: String::new(),
            policy_name: String::new(),
            rule_id: String::new(),
            direction: String::new(),
            priority: default_priority(),
            from_endpoint_group: String::new(),
            to_endpoint_group: String::new(),
            from_network: String::new(),
            to_network: String::new(),
            from_ip_address: String::new(),
            to_ip_address: String::new(),
            protocol: String::new(),
            port: 0,
            action: String::new(),
        }
    }
}

impl Rule {
    pub fn policy_key(&self) -> String {
        join_key(&[&self.tenant_name, &self.policy_name])
    }

    /// The IP protocol number this rule matches, if any.
    pub fn protocol_number(&self) -> Option<u8> {
        match self.protocol.as_str() {
            "" => None,
            "tcp" => Some(6),
            "udp" => Some(17),
            "icmp" => Some(1),
            n => n.parse().ok(),
        }
    }

    fn check_direction_fields(&self) -> Result<(), FieldError> {
        let (wrong, wrong_dir) = match self.direction.as_str() {
            "in" => (
                [
                    ("toEndpointGroup", &self.to_endpoint_group),
                    ("toNetwork", &self.to_network),
                    ("toIpAddress", &self.to_ip_address),
                ],
                "in",
            ),
            _ => (
                [
                    ("fromEndpointGroup", &self.from_endpoint_group),
                    ("fromNetwork", &self.from_network),
                    ("fromIpAddress", &self.from_ip_address),
                ],
                "out",
            ),
        };
        for (field, value) in wrong {
            if !value.is_empty() {
                let hint = if wrong_dir == "in" { "from" } else { "to" };
                return Err(FieldError::new(
                    field,
                    format!("is not allowed in a '{wrong_dir}' rule: use the {hint}* fields"),
                ));
            }
        }
        let matches = [
            (
                "EndpointGroup",
                !self.from_endpoint_group.is_empty() || !self.to_endpoint_group.is_empty(),
            ),
            (
                "Network",
                !self.from_network.is_empty() || !self.to_network.is_empty(),
            ),
            (
                "IpAddress",
                !self.from_ip_address.is_empty() || !self.to_ip_address.is_empty(),
            ),
        ];
        let set: Vec<&str> = matches
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect();
        if set.len() > 1 {
            let prefix = if self.direction == "in" { "from" } else { "to" };
            return Err(FieldError::new(
                match set[1] {
                    "Network" => if prefix == "from" { "fromNetwork" } else { "toNetwork" },
                    _ => if prefix == "from" { "fromIpAddress" } else { "toIpAddress" },
                },
                format!("{prefix}{} and {prefix}{} cannot be used together: a rule matches by group, network or address", set[0], set[1]),
            ));
        }
        Ok(())
    }
}

impl Object for Rule {
    const COLLECTION: Collection = Collection::Rules;

    fn key(&self) -> String {
        join_key(&[&self.tenant_name, &self.policy_name, &self.rule_id])
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("tenantName", &self.tenant_name, NAME_LEN)?;
        fields::name("policyName", &self.policy_name, NAME_LEN)?;
        fields::name("ruleId", &self.rule_id, NAME_LEN)?;
        if self.direction.is_empty() {
            return Err(FieldError::new("direction", "is required: in or out"));
        }
        fields::one_of("direction", &self.direction, &["in", "out"])?;
        fields::int_range("priority", self.priority, 1, 100)?;
        for (field, value) in [
            ("fromEndpointGroup", &self.from_endpoint_group),
            ("toEndpointGroup", &self.to_endpoint_group),
            ("fromNetwork", &self.from_network),
            ("toNetwork", &self.to_network),
        ] {
            fields::optional_name(field, value, NAME_LEN)?;
        }
        for (field, value) in [
            ("fromIpAddress", &self.from_ip_address),
            ("toIpAddress", &self.to_ip_address),
        ] {
            if !value.is_empty() {
                fields::rule_ip(field, value)?;
            }
        }
        match self.protocol.as_str() {
            "" | "tcp" | "udp" | "icmp" => {}
            n => {
                let num: u16 = n.parse().map_err(|_| {
                    FieldError::new(
                        "protocol",
                        format!("'{n}' is not tcp, udp, icmp or a protocol number 0-255"),
                    )
                })?;
                if num > 255 {
                    return Err(FieldError::new(
                        "protocol",
                        format!("{num} is outside 0-255"),
                    ));
                }
            }
        }
        fields::int_range("port", self.port, 0, 65535)?;
        if self.port != 0 && !matches!(self.protocol_number(), Some(6) | Some(17)) {
            return Err(FieldError::new("port", "needs protocol tcp or udp"));
        }
        if self.action.is_empty() {
            return Err(FieldError::new("action", "is required: allow or deny"));
        }
        fields::one_of("action", &self.action, &["allow", "deny"])?;
        self.check_direction_fields()
    }

    fn references(&self) -> Vec<Reference> {
        let t = &self.tenant_name;
        let mut refs = vec![Reference {
            field: "policyName",
            collection: Collection::Policies,
            key: self.policy_key(),
        }];
        for (field, value, collection) in [
            (
                "fromEndpointGroup",
                &self.from_endpoint_group,
                Collection::EndpointGroups,
            ),
            (
                "toEndpointGroup",
                &self.to_endpoint_group,
                Collection::EndpointGroups,
            ),
            ("fromNetwork", &self.from_network, Collection::Networks),
            ("toNetwork", &self.to_network, Collection::Networks),
        ] {
            if !value.is_empty() {
                refs.push(Reference {
                    field,
                    collection,
                    key: join_key(&[t, value]),
                });
            }
        }
        refs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(direction: &str) -> Rule {
        Rule {
            tenant_name: "default".into(),
            policy_name: "db-policy".into(),
            rule_id: "1".into(),
            direction: direction.into(),
            action: "allow".into(),
            ..Rule::default()
        }
    }

    #[test]
    fn direction_fields() {
        let mut r = rule("in");
        r.from_endpoint_group = "web".into();
        assert!(r.check_fields().is_ok());
        r.to_endpoint_group = "db".into();
        assert_eq!(r.check_fields().unwrap_err().field, "toEndpointGroup");
        let mut r = rule("out");
        r.from_network = "n".into();
        assert_eq!(r.check_fields().unwrap_err().field, "fromNetwork");
    }

    #[test]
    fn exclusive_matches() {
        let mut r = rule("in");
        r.from_endpoint_group = "web".into();
        r.from_ip_address = "10.1.1.1".into();
        let e = r.check_fields().unwrap_err();
        assert_eq!(e.field, "fromIpAddress");
        assert!(e.reason.contains("cannot be used together"), "{e:?}");
    }

    #[test]
    fn ranges_and_formats() {
        let mut r = rule("in");
        r.priority = 0;
        assert_eq!(r.check_fields().unwrap_err().field, "priority");
        r.priority = 101;
        assert_eq!(r.check_fields().unwrap_err().field, "priority");
        let mut r = rule("in");
        r.port = 80;
        assert_eq!(r.check_fields().unwrap_err().field, "port");
        r.protocol = "tcp".into();
        assert!(r.check_fields().is_ok());
        r.port = 70000;
        assert_eq!(r.check_fields().unwrap_err().field, "port");
        let mut r = rule("in");
        r.protocol = "256".into();
        assert_eq!(r.check_fields().unwrap_err().field, "protocol");
        r.protocol = "47".into();
        assert!(r.check_fields().is_ok());
        r.action = "drop".into();
        assert_eq!(r.check_fields().unwrap_err().field, "action");
        let mut r = rule("sideways");
        assert_eq!(r.check_fields().unwrap_err().field, "direction");
        r.direction = String::new();
        assert_eq!(r.check_fields().unwrap_err().field, "direction");
    }

    #[test]
    fn default_priority_is_one() {
        let r: Rule =
            serde_json::from_str(r#"{"tenantName":"t","policyName":"p","ruleId":"1"}"#).unwrap();
        assert_eq!(r.priority, 1);
    }
}

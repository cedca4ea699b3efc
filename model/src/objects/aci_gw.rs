//! `aciGw`: settings for the Cisco ACI gateway mode (one object, key `aciGw`).

use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::Object;
use serde::{Deserialize, Serialize};

pub const ACI_GW_NAME: &str = "aciGw";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AciGw {
    pub key: String,
    pub name: String,
    /// `topology/pod-1/paths-101/pathep-[eth1/1]`, comma-separated.
    pub path_bindings: String,
    /// `topology/pod-1/node-101`, comma-separated.
    pub node_bindings: String,
    pub physical_domain: String,
    pub enforce_policies: String,
    pub include_common_tenant: String,
}

fn number(part: &str, prefix: &str, max_digits: usize) -> bool {
    part.strip_prefix(prefix).is_some_and(|n| {
        !n.is_empty() && n.len() <= max_digits && n.chars().all(|c| c.is_ascii_digit())
    })
}

fn check_binding(field: &'static str, value: &str, path: bool) -> Result<(), FieldError> {
    for item in value.split(',').filter(|_| !value.is_empty()) {
        let parts: Vec<&str> = item.split('/').collect();
        let ok = if path {
            // topology/pod-N/paths-N/pathep-[ethA/B]
            parts.len() == 5
                && parts[0] == "topology"
                && number(parts[1], "pod-", 4)
                && number(parts[2], "paths-", 4)
                && number(parts[3], "pathep-[eth", 2)
                && parts[4].strip_suffix(']').is_some_and(|n| {
                    !n.is_empty() && n.len() <= 2 && n.chars().all(|c| c.is_ascii_digit())
                })
        } else {
            parts.len() == 3
                && parts[0] == "topology"
                && number(parts[1], "pod-", 4)
                && number(parts[2], "node-", 4)
        };
        if !ok {
            let example = if path {
                "topology/pod-1/paths-101/pathep-[eth1/1]"
            } else {
                "topology/pod-1/node-101"
            };
            return Err(FieldError::new(
                field,
                format!("'{item}' is not like {example}"),
            ));
        }
    }
    fields::max_len(field, value, 2048)
}

impl Object for AciGw {
    const COLLECTION: Collection = Collection::AciGws;

    fn key(&self) -> String {
        self.name.clone()
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn apply_defaults(&mut self) {
        for f in [&mut self.enforce_policies, &mut self.include_common_tenant] {
            if f.is_empty() {
                *f = "no".into();
            }
        }
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        if self.name != ACI_GW_NAME {
            return Err(FieldError::new(
                "name",
                format!("must be '{ACI_GW_NAME}', not '{}'", self.name),
            ));
        }
        check_binding("pathBindings", &self.path_bindings, true)?;
        check_binding("nodeBindings", &self.node_bindings, false)?;
        fields::optional_name("physicalDomain", &self.physical_domain, 128)?;
        fields::one_of("enforcePolicies", &self.enforce_policies, &["yes", "no"])?;
        fields::one_of(
            "includeCommonTenant",
            &self.include_common_tenant,
            &["yes", "no"],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings() {
        assert!(check_binding("p", "topology/pod-1/paths-101/pathep-[eth1/1]", true).is_ok());
        assert!(check_binding(
            "p",
            "topology/pod-1/paths-101/pathep-[eth1/1],topology/pod-1/paths-102/pathep-[eth1/2]",
            true
        )
        .is_ok());
        assert!(check_binding("p", "topology/pod-1/paths-101/pathep-eth1/1", true).is_err());
        assert!(check_binding("n", "topology/pod-1/node-101", false).is_ok());
        assert!(check_binding("n", "topology/pod-x/node-101", false).is_err());
        assert!(check_binding("n", "", false).is_ok());
    }
}

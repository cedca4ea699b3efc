//! `extContractsGroup`: ACI contracts a group provides or consumes.

use super::NAME_LEN;
use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::{join_key, Object, Reference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExtContractsGroup {
    pub key: String,
    pub tenant_name: String,
    pub contracts_group_name: String,
    /// `provided` or `consumed`.
    pub contracts_type: String,
    pub contracts: Vec<String>,
}

impl Object for ExtContractsGroup {
    const COLLECTION: Collection = Collection::ExtContractsGroups;

    fn key(&self) -> String {
        join_key(&[&self.tenant_name, &self.contracts_group_name])
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("contractsGroupName", &self.contracts_group_name, NAME_LEN)?;
        fields::name("tenantName", &self.tenant_name, NAME_LEN)?;
        fields::one_of(
            "contractsType",
            &self.contracts_type,
            &["provided", "consumed"],
        )?;
        for c in &self.contracts {
            if c.is_empty() || c.len() > 256 {
                return Err(FieldError::new(
                    "contracts",
                    format!("'{c}' must be 1-256 characters (a contract DN)"),
                ));
            }
        }
        Ok(())
    }

    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            field: "tenantName",
            collection: Collection::Tenants,
            key: self.tenant_name.clone(),
        }]
    }

    fn immutable_fields() -> &'static [&'static str] {
        &["contractsType"]
    }
}

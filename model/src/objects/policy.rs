//! `policy`: a named set of rules that groups attach.

use super::NAME_LEN;
use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::{join_key, Object, Reference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Policy {
    pub key: String,
    pub tenant_name: String,
    pub policy_name: String,
}

impl Object for Policy {
    const COLLECTION: Collection = Collection::Policies;

    fn key(&self) -> String {
        join_key(&[&self.tenant_name, &self.policy_name])
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("policyName", &self.policy_name, NAME_LEN)?;
        fields::name("tenantName", &self.tenant_name, NAME_LEN)
    }

    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            field: "tenantName",
            collection: Collection::Tenants,
            key: self.tenant_name.clone(),
        }]
    }
}

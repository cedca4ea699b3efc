//! `tenant`: the unit of isolation; its networks may reuse other tenants' subnets.

use super::NAME_LEN;
use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::{join_key, Object, Reference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Tenant {
    pub key: String,
    pub tenant_name: String,
    pub default_network: String,
}

impl Object for Tenant {
    const COLLECTION: Collection = Collection::Tenants;

    fn key(&self) -> String {
        self.tenant_name.clone()
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("tenantName", &self.tenant_name, NAME_LEN)?;
        fields::optional_name("defaultNetwork", &self.default_network, NAME_LEN)
    }

    fn references(&self) -> Vec<Reference> {
        if self.default_network.is_empty() {
            return Vec::new();
        }
        vec![Reference {
            field: "defaultNetwork",
            collection: Collection::Networks,
            key: join_key(&[&self.tenant_name, &self.default_network]),
        }]
    }
}

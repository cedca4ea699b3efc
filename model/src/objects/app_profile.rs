//! `appProfile`: a named collection of endpoint groups (an application), as in Contiv/ACI.

use super::NAME_LEN;
use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::{join_key, Object, Reference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AppProfile {
    pub key: String,
    pub tenant_name: String,
    pub app_profile_name: String,
    pub endpoint_groups: Vec<String>,
}

impl Object for AppProfile {
    const COLLECTION: Collection = Collection::AppProfiles;

    fn key(&self) -> String {
        join_key(&[&self.tenant_name, &self.app_profile_name])
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("appProfileName", &self.app_profile_name, NAME_LEN)?;
        fields::name("tenantName", &self.tenant_name, NAME_LEN)?;
        for g in &self.endpoint_groups {
            fields::name("endpointGroups", g, NAME_LEN)?;
        }
        Ok(())
    }

    fn references(&self) -> Vec<Reference> {
        let mut refs = vec![Reference {
            field: "tenantName",
            collection: Collection::Tenants,
            key: self.tenant_name.clone(),
        }];
        refs.extend(self.endpoint_groups.iter().map(|g| Reference {
            field: "endpointGroups",
            collection: Collection::EndpointGroups,
            key: join_key(&[&self.tenant_name, g]),
        }));
        refs
    }
}

//! `netprofile`: bandwidth, burst and DSCP marking for the groups that use it.

use super::NAME_LEN;
use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::{join_key, Object, Reference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Netprofile {
    pub key: String,
    #[serde(rename = "tenantName")]
    pub tenant_name: String,
    #[serde(rename = "profileName")]
    pub profile_name: String,
    pub bandwidth: String,
    #[serde(rename = "DSCP")]
    pub dscp: i64,
    pub burst: i64,
}

impl Object for Netprofile {
    const COLLECTION: Collection = Collection::Netprofiles;

    fn key(&self) -> String {
        join_key(&[&self.tenant_name, &self.profile_name])
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("profileName", &self.profile_name, NAME_LEN)?;
        fields::name("tenantName", &self.tenant_name, NAME_LEN)?;
        fields::max_len("bandwidth", &self.bandwidth, 64)?;
        fields::bandwidth("bandwidth", &self.bandwidth)?;
        fields::int_range("DSCP", self.dscp, 0, 63)?;
        fields::int_range("burst", self.burst, 0, 10486)
    }

    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            field: "tenantName",
            collection: Collection::Tenants,
            key: self.tenant_name.clone(),
        }]
    }
}

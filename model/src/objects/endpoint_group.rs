//! `endpointGroup`: a set of containers on one network that share policies.

use super::NAME_LEN;
use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::integrity::Catalog;
use crate::object::{join_key, Object, Reference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EndpointGroup {
    pub key: String,
    pub tenant_name: String,
    pub group_name: String,
    pub network_name: String,
    /// A sub-pool of the network's subnet, `a.b.c.d-e.f.g.h`, for this group's containers.
    pub ip_pool: String,
    pub policies: Vec<String>,
    pub ext_contracts_grps: Vec<String>,
    pub net_profile: String,
    pub cfgd_tag: String,
}

impl EndpointGroup {
    pub fn network_key(&self) -> String {
        join_key(&[&self.tenant_name, &self.network_name])
    }
}

impl Object for EndpointGroup {
    const COLLECTION: Collection = Collection::EndpointGroups;

    fn key(&self) -> String {
        join_key(&[&self.tenant_name, &self.group_name])
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("groupName", &self.group_name, NAME_LEN)?;
        fields::name("tenantName", &self.tenant_name, NAME_LEN)?;
        fields::name("networkName", &self.network_name, NAME_LEN)?;
        if !self.ip_pool.is_empty() {
            fields::ipv4_range("ipPool", &self.ip_pool)?;
        }
        for p in &self.policies {
            fields::name("policies", p, NAME_LEN)?;
        }
        for c in &self.ext_contracts_grps {
            fields::name("extContractsGrps", c, NAME_LEN)?;
        }
        fields::optional_name("netProfile", &self.net_profile, NAME_LEN)?;
        fields::optional_name("cfgdTag", &self.cfgd_tag, 128)
    }

    fn references(&self) -> Vec<Reference> {
        let t = &self.tenant_name;
        let mut refs = vec![
            Reference {
                field: "tenantName",
                collection: Collection::Tenants,
                key: t.clone(),
            },
            Reference {
                field: "networkName",
                collection: Collection::Networks,
                key: self.network_key(),
            },
        ];
        refs.extend(self.policies.iter().map(|p| Reference {
            field: "policies",
            collection: Collection::Policies,
            key: join_key(&[t, p]),
        }));
        refs.extend(self.ext_contracts_grps.iter().map(|c| Reference {
            field: "extContractsGrps",
            collection: Collection::ExtContractsGroups,
            key: join_key(&[t, c]),
        }));
        if !self.net_profile.is_empty() {
            refs.push(Reference {
                field: "netProfile",
                collection: Collection::Netprofiles,
                key: join_key(&[t, &self.net_profile]),
            });
        }
        refs
    }

    fn check_against(&self, catalog: &dyn Catalog) -> Result<(), FieldError> {
        if self.ip_pool.is_empty() {
            return Ok(());
        }
        let pool = fields::ipv4_range("ipPool", &self.ip_pool)?;
        let Some(net) = catalog.network(&self.network_key()) else {
            return Ok(());
        };
        let spec = net.subnet_spec()?;
        if !spec.pool.contains(pool.first) || !spec.pool.contains(pool.last) {
            return Err(FieldError::new(
                "ipPool",
                format!(
                    "{} is not inside network '{}' usable range {}-{}",
                    self.ip_pool, net.network_name, spec.pool.first, spec.pool.last
                ),
            ));
        }
        Ok(())
    }

    fn immutable_fields() -> &'static [&'static str] {
        &["networkName", "ipPool"]
    }
}

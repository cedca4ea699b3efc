//! `network`: a subnet of a tenant with its encapsulation and packet tag.

use super::NAME_LEN;
use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields::{self, SubnetSpec};
use crate::integrity::Catalog;
use crate::object::{join_key, Object, Reference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Network {
    pub key: String,
    pub tenant_name: String,
    pub network_name: String,
    /// `data` (default) or `infra`.
    pub nw_type: String,
    /// `vxlan` (default, as netctl) or `vlan`.
    pub encap: String,
    /// Requested VLAN/VNI; 0 lets the master allocate one from the global ranges.
    pub pkt_tag: i64,
    pub subnet: String,
    pub gateway: String,
    pub ipv6_subnet: String,
    pub ipv6_gateway: String,
    pub cfgd_tag: String,
}

impl Network {
    /// The parsed subnet; only valid after [`Object::check_fields`] passed.
    pub fn subnet_spec(&self) -> Result<SubnetSpec, FieldError> {
        fields::subnet("subnet", &self.subnet)
    }

    pub fn tenant_key(&self) -> String {
        self.tenant_name.clone()
    }

    /// Where this network's addresses overlap `other`'s (the IPv4 subnet first, then the IPv6
    /// one); None when they share none. Unparsable subnets overlap nothing.
    pub fn overlap_with(&self, other: &Network) -> Option<Overlap> {
        if let (Ok(mine), Ok(theirs)) = (self.subnet_spec(), other.subnet_spec()) {
            if mine.net.contains(&theirs.net.network()) || theirs.net.contains(&mine.net.network())
            {
                return Some(Overlap {
                    field: "subnet",
                    mine: mine.net.to_string(),
                    theirs: theirs.net.to_string(),
                });
            }
        }
        let v6 = |n: &Network| fields::ipv6_subnet("ipv6Subnet", &n.ipv6_subnet).ok();
        let (mine, theirs) = (v6(self)?, v6(other)?);
        (mine.contains(&theirs.network()) || theirs.contains(&mine.network())).then(|| Overlap {
            field: "ipv6Subnet",
            mine: mine.to_string(),
            theirs: theirs.to_string(),
        })
    }
}

/// Two networks' subnets that share addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// `subnet` or `ipv6Subnet`.
    pub field: &'static str,
    pub mine: String,
    pub theirs: String,
}

impl Object for Network {
    const COLLECTION: Collection = Collection::Networks;

    fn key(&self) -> String {
        join_key(&[&self.tenant_name, &self.network_name])
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn apply_defaults(&mut self) {
        if self.nw_type.is_empty() {
            self.nw_type = "data".into();
        }
        if self.encap.is_empty() {
            self.encap = "vxlan".into();
        }
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("networkName", &self.network_name, NAME_LEN)?;
        fields::name("tenantName", &self.tenant_name, NAME_LEN)?;
        fields::one_of("nwType", &self.nw_type, &["data", "infra"])?;
        fields::one_of("encap", &self.encap, &["vlan", "vxlan"])?;
        match self.encap.as_str() {
            "vlan" if self.pkt_tag != 0 => fields::int_range("pktTag", self.pkt_tag, 1, 4094)?,
            _ if self.pkt_tag != 0 => fields::int_range("pktTag", self.pkt_tag, 1, 16_777_215)?,
            _ => {}
        }
        if self.subnet.is_empty() {
            return Err(FieldError::new("subnet", "is required"));
        }
        let spec = self.subnet_spec()?;
        if !self.gateway.is_empty() {
            let gw = fields::ipv4("gateway", &self.gateway)?;
            if !spec.net.contains(&gw) {
                return Err(FieldError::new(
                    "gateway",
                    format!("{gw} is outside the subnet {}", spec.net),
                ));
            }
            if gw == spec.net.network()
                || (spec.net.prefix_len() < 31 && gw == spec.net.broadcast())
            {
                return Err(FieldError::new(
                    "gateway",
                    format!("{gw} is the subnet's network or broadcast address"),
                ));
            }
        }
        if !self.ipv6_subnet.is_empty() {
            let net6 = fields::ipv6_subnet("ipv6Subnet", &self.ipv6_subnet)?;
            if !self.ipv6_gateway.is_empty() {
                let gw6 = fields::ipv6("ipv6Gateway", &self.ipv6_gateway)?;
                if !net6.contains(&gw6) {
                    return Err(FieldError::new(
                        "ipv6Gateway",
                        format!("{gw6} is outside {net6}"),
                    ));
                }
            }
        } else if !self.ipv6_gateway.is_empty() {
            return Err(FieldError::new("ipv6Gateway", "needs ipv6Subnet"));
        }
        fields::optional_name("cfgdTag", &self.cfgd_tag, 128)
    }

    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            field: "tenantName",
            collection: Collection::Tenants,
            key: self.tenant_name.clone(),
        }]
    }

    fn check_against(&self, catalog: &dyn Catalog) -> Result<(), FieldError> {
        for other in catalog.networks_of_tenant(&self.tenant_name) {
            if other.network_name == self.network_name {
                continue;
            }
            if let Some(o) = self.overlap_with(&other) {
                return Err(FieldError::new(
                    o.field,
                    format!(
                        "{} overlaps network '{}' ({}) of tenant '{}'",
                        o.mine, other.network_name, o.theirs, self.tenant_name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn immutable_fields() -> &'static [&'static str] {
        &["encap", "subnet", "ipv6Subnet", "nwType", "pktTag"]
    }
}

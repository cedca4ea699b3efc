//! `serviceLB`: a virtual IP whose traffic is spread over the containers matching selectors.

use super::NAME_LEN;
use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::{join_key, Object, Reference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceLb {
    pub key: String,
    pub tenant_name: String,
    pub service_name: String,
    pub network_name: String,
    /// The VIP; empty lets the master allocate one from the network.
    pub ip_address: String,
    /// `key=value` labels a provider container must carry.
    pub selectors: Vec<String>,
    /// `servicePort:providerPort:protocol`, e.g. `8080:80:TCP`.
    pub ports: Vec<String>,
}

/// One parsed entry of [`ServiceLb::ports`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePort {
    pub service_port: u16,
    pub provider_port: u16,
    pub protocol: u8,
}

impl ServiceLb {
    pub fn network_key(&self) -> String {
        join_key(&[&self.tenant_name, &self.network_name])
    }

    pub fn parse_port(value: &str) -> Result<ServicePort, FieldError> {
        let bad = || {
            FieldError::new(
                "ports",
                format!("'{value}' is not servicePort:providerPort:protocol, e.g. 8080:80:TCP"),
            )
        };
        let parts: Vec<&str> = value.split(':').collect();
        let [svc, prov, proto] = parts.as_slice() else {
            return Err(bad());
        };
        let port = |p: &str| -> Result<u16, FieldError> {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(FieldError::new(
                    "ports",
                    format!("port '{p}' in '{value}' is outside 1-65535"),
                )),
            }
        };
        let protocol = match proto.to_ascii_uppercase().as_str() {
            "TCP" => 6,
            "UDP" => 17,
            _ => {
                return Err(FieldError::new(
                    "ports",
                    format!("protocol '{proto}' in '{value}' is not TCP or UDP"),
                ))
            }
        };
        Ok(ServicePort {
            service_port: port(svc)?,
            provider_port: port(prov)?,
            protocol,
        })
    }
}

impl Object for ServiceLb {
    const COLLECTION: Collection = Collection::ServiceLbs;

    fn key(&self) -> String {
        join_key(&[&self.tenant_name, &self.service_name])
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        fields::name("serviceName", &self.service_name, 256)?;
        fields::name("tenantName", &self.tenant_name, NAME_LEN)?;
        fields::name("networkName", &self.network_name, NAME_LEN)?;
        if !self.ip_address.is_empty() {
            fields::ipv4("ipAddress", &self.ip_address)?;
        }
        if self.selectors.is_empty() {
            return Err(FieldError::new(
                "selectors",
                "needs at least one key=value label",
            ));
        }
        for s in &self.selectors {
            fields::max_len("selectors", s, 512)?;
            match s.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => {}
                _ => {
                    return Err(FieldError::new(
                        "selectors",
                        format!("'{s}' is not key=value"),
                    ))
                }
            }
        }
        if self.ports.is_empty() {
            return Err(FieldError::new(
                "ports",
                "needs at least one servicePort:providerPort:protocol",
            ));
        }
        for p in &self.ports {
            Self::parse_port(p)?;
        }
        Ok(())
    }

    fn references(&self) -> Vec<Reference> {
        vec![
            Reference {
                field: "tenantName",
                collection: Collection::Tenants,
                key: self.tenant_name.clone(),
            },
            Reference {
                field: "networkName",
                collection: Collection::Networks,
                key: self.network_key(),
            },
        ]
    }

    fn immutable_fields() -> &'static [&'static str] {
        &["networkName"]
    }
}

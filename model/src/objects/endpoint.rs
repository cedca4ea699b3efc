//! `endpoint`: a container's attachment, written by agents through the master, read-only to users.

use crate::collection::Collection;
use crate::error::FieldError;
use crate::fields;
use crate::object::{Object, Reference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Endpoint {
    pub key: String,
    /// Unique id chosen by the agent (container id plus interface).
    #[serde(rename = "endpointID")]
    pub endpoint_id: String,
    /// The network's key, `tenant:network`.
    pub network: String,
    /// The group's key, `tenant:group`, or empty.
    pub endpoint_group_key: String,
    pub endpoint_group_id: i64,
    pub ip_address: Vec<String>,
    pub mac_address: String,
    pub homing_host: String,
    pub intf_name: String,
    #[serde(rename = "vtepIP")]
    pub vtep_ip: String,
    pub labels: String,
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub container_name: String,
    pub virtual_port: String,
    pub service_name: String,
}

impl Object for Endpoint {
    const COLLECTION: Collection = Collection::Endpoints;

    fn key(&self) -> String {
        self.endpoint_id.clone()
    }

    fn set_key(&mut self) {
        self.key = self.key();
    }

    fn check_fields(&self) -> Result<(), FieldError> {
        if self.endpoint_id.is_empty()
            || self.endpoint_id.len() > 256
            || self.endpoint_id.contains('/')
        {
            return Err(FieldError::new(
                "endpointID",
                "must be 1-256 characters without '/'",
            ));
        }
        if self.network.split(':').count() != 2 {
            return Err(FieldError::new(
                "network",
                format!("'{}' is not a network key tenant:network", self.network),
            ));
        }
        for ip in &self.ip_address {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(FieldError::new(
                    "ipAddress",
                    format!("'{ip}' is not an IP address"),
                ));
            }
        }
        fields::max_len("homingHost", &self.homing_host, 256)
    }

    fn references(&self) -> Vec<Reference> {
        let mut refs = vec![Reference {
            field: "network",
            collection: Collection::Networks,
            key: self.network.clone(),
        }];
        if !self.endpoint_group_key.is_empty() {
            refs.push(Reference {
                field: "endpointGroupKey",
                collection: Collection::EndpointGroups,
                key: self.endpoint_group_key.clone(),
            });
        }
        refs
    }
}

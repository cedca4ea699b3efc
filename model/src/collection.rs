//! The REST collections, with Contiv's spelling (`policys`, `Bgps`, `serviceLBs` included).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Collection {
    Tenants,
    Networks,
    EndpointGroups,
    Policies,
    Rules,
    AppProfiles,
    ServiceLbs,
    Netprofiles,
    Globals,
    Bgps,
    AciGws,
    ExtContractsGroups,
    /// Read-only: written by agents through the master's endpoint calls, never by users.
    Endpoints,
}

impl Collection {
    pub const ALL: [Collection; 13] = [
        Collection::Tenants,
        Collection::Networks,
        Collection::EndpointGroups,
        Collection::Policies,
        Collection::Rules,
        Collection::AppProfiles,
        Collection::ServiceLbs,
        Collection::Netprofiles,
        Collection::Globals,
        Collection::Bgps,
        Collection::AciGws,
        Collection::ExtContractsGroups,
        Collection::Endpoints,
    ];

    /// The path segment in `/api/v1/<collection>/`.
    pub fn rest_name(self) -> &'static str {
        match self {
            Collection::Tenants => "tenants",
            Collection::Networks => "networks",
            Collection::EndpointGroups => "endpointGroups",
            Collection::Policies => "policys",
            Collection::Rules => "rules",
            Collection::AppProfiles => "appProfiles",
            Collection::ServiceLbs => "serviceLBs",
            Collection::Netprofiles => "netprofiles",
            Collection::Globals => "globals",
            Collection::Bgps => "Bgps",
            Collection::AciGws => "aciGws",
            Collection::ExtContractsGroups => "extContractsGroups",
            Collection::Endpoints => "endpoints",
        }
    }

    /// The object's name in Contiv's schema (used in error messages and the OpenAPI document).
    pub fn object_name(self) -> &'static str {
        match self {
            Collection::Tenants => "tenant",
            Collection::Networks => "network",
            Collection::EndpointGroups => "endpointGroup",
            Collection::Policies => "policy",
            Collection::Rules => "rule",
            Collection::AppProfiles => "appProfile",
            Collection::ServiceLbs => "serviceLB",
            Collection::Netprofiles => "netprofile",
            Collection::Globals => "global",
            Collection::Bgps => "Bgp",
            Collection::AciGws => "aciGw",
            Collection::ExtContractsGroups => "extContractsGroup",
            Collection::Endpoints => "endpoint",
        }
    }

    /// Accepts the REST name, and case-insensitively the object name, so `policies` works too.
    pub fn from_rest_name(name: &str) -> Option<Collection> {
        Collection::ALL
            .into_iter()
            .find(|c| c.rest_name() == name)
            .or_else(|| {
                Collection::ALL
                    .into_iter()
                    .find(|c| c.rest_name().eq_ignore_ascii_case(name))
            })
            .or_else(|| (name == "policies").then_some(Collection::Policies))
    }

    /// The JSON fields whose values, joined with ':', make the key.
    pub fn key_fields(self) -> &'static [&'static str] {
        match self {
            Collection::Tenants => &["tenantName"],
            Collection::Networks => &["tenantName", "networkName"],
            Collection::EndpointGroups => &["tenantName", "groupName"],
            Collection::Policies => &["tenantName", "policyName"],
            Collection::Rules => &["tenantName", "policyName", "ruleId"],
            Collection::AppProfiles => &["tenantName", "appProfileName"],
            Collection::ServiceLbs => &["tenantName", "serviceName"],
            Collection::Netprofiles => &["tenantName", "profileName"],
            Collection::Globals | Collection::AciGws => &["name"],
            Collection::Bgps => &["hostname"],
            Collection::ExtContractsGroups => &["tenantName", "contractsGroupName"],
            Collection::Endpoints => &["endpointID"],
        }
    }

    /// Users may write this collection through the REST API.
    pub fn is_config(self) -> bool {
        self != Collection::Endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_names_round_trip() {
        for c in Collection::ALL {
            assert_eq!(Collection::from_rest_name(c.rest_name()), Some(c));
        }
        assert_eq!(
            Collection::from_rest_name("policies"),
            Some(Collection::Policies)
        );
        assert_eq!(Collection::from_rest_name("bgps"), Some(Collection::Bgps));
        assert_eq!(Collection::from_rest_name("nope"), None);
    }
}

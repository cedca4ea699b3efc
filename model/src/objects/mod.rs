//! One file per Contiv object type.

mod aci_gw;
mod app_profile;
mod bgp;
mod endpoint;
mod endpoint_group;
mod ext_contracts_group;
mod global;
mod netprofile;
mod network;
mod policy;
mod rule;
mod service_lb;
mod tenant;

pub use aci_gw::AciGw;
pub use app_profile::AppProfile;
pub use bgp::Bgp;
pub use endpoint::Endpoint;
pub use endpoint_group::EndpointGroup;
pub use ext_contracts_group::ExtContractsGroup;
pub use global::{Global, DEFAULT_FABRIC_AS, FWD_MODE_ROUTING, GLOBAL_NAME};
pub use netprofile::Netprofile;
pub use network::{Network, Overlap};
pub use policy::Policy;
pub use rule::Rule;
pub use service_lb::ServiceLb;
pub use tenant::Tenant;

/// Longest name Contiv allows for most objects.
pub(crate) const NAME_LEN: usize = 64;

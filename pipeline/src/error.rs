//! Errors (input the compiler cannot turn into flows) and warnings (input it compiled around).

use thiserror::Error;

/// Input that makes the whole flow set meaningless; the agent keeps the flows it has.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompileError {
    #[error("rule {key}: {reason}")]
    Rule { key: String, reason: String },
    #[error("network {key}: {reason}")]
    Network { key: String, reason: String },
    #[error("endpoint on ofport {ofport}: {reason}")]
    Endpoint { ofport: u32, reason: String },
    #[error("tenant {name}: {reason}")]
    Tenant { name: String, reason: String },
    #[error("group {key}: {reason}")]
    Group { key: String, reason: String },
    #[error("network {network}: VXLAN encap without a VNI (no pkt-tag and none allocated yet)")]
    NetworkWithoutVni { network: String },
    #[error("network {network}: VNI {vni} {reason}")]
    BadVni {
        network: String,
        vni: u32,
        reason: String,
    },
    #[error("remote endpoint {ip} ({mac}) in VNI {vni}: its route names no VTEP")]
    RemoteWithoutVtep {
        ip: std::net::Ipv4Addr,
        mac: String,
        vni: u32,
    },
    #[error("VXLAN port {ofport}: {reason}")]
    VxlanPort { ofport: u32, reason: String },
}

/// Something the compiler left out, with the reason; the rest of the flow set is sound.
/// These arise while the master's objects arrive out of order (a rule naming a group not seen
/// yet), so they are reported, not fatal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Error)]
pub enum Warning {
    #[error("rule {rule}: {what} '{name}' is unknown; the rule matches nothing until it exists")]
    UnknownReference {
        rule: String,
        what: &'static str,
        name: String,
    },
    #[error("{ip} belongs to local endpoints of several tenants; traffic from the gateway port to it is dropped")]
    AmbiguousGatewayDestination { ip: std::net::Ipv4Addr },
    #[error("remote endpoint {ip}: tenant '{tenant}' is unknown; left out (traffic between it and this host's endpoints is dropped as another tenant's)")]
    UnknownRemoteTenant {
        ip: std::net::Ipv4Addr,
        tenant: String,
    },
    #[error("network {network}: tenant '{tenant}' is unknown; its subnet is dropped as another tenant's until the tenant exists")]
    UnknownNetworkTenant { network: String, tenant: String },
    #[error("networks {a} and {b} of two tenants overlap (legacy state); addresses in the overlap that are not known endpoints are dropped for both tenants")]
    OverlappingTenantNetworks { a: String, b: String },
    #[error("{ip} is an endpoint address of several tenants; traffic through the gateway port from it, and from this host to a remote one, is dropped")]
    SharedEndpointAddress { ip: std::net::Ipv4Addr },
    #[error("VXLAN {what}: VNI {vni} is no network's here; left out until the network arrives")]
    UnknownVni { what: String, vni: u32 },
    #[error("endpoint {ip} of tenant '{tenant}' is in none of its tenant's networks; other tenants' traffic with it is dropped by its address")]
    EndpointOutsideNetworks {
        ip: std::net::Ipv4Addr,
        tenant: String,
    },
}

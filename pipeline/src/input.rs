//! What the compiler is given: the host's ports and addresses, its local endpoints, the fabric's
//! remote endpoints, and the tenants' networks, groups and rules.
//!
//! Plain data the agent fills from the master's objects and its own state; the compiler reads it
//! and does no I/O. Group ids come from the master (one per endpoint group, 32-bit, 0 means
//! "no group"); VRF ids and conntrack zones are the agent's, one per tenant.

use fabric_model::{EndpointGroup, Network, Rule};
use ipnet::Ipv4Net;
use openflow::MacAddr;
use std::net::Ipv4Addr;

use crate::error::CompileError;
use crate::layout::DEFAULT_COOKIE;

/// Everything a host's pipeline depends on.
#[derive(Clone, Debug)]
pub struct HostInput {
    /// The router MAC the gateway address answers with; the same on every host.
    pub router_mac: MacAddr,
    /// The OVS internal port towards the host kernel (`gw0`).
    pub gateway: GatewayPort,
    /// Cookie every flow is tagged with ([`DEFAULT_COOKIE`] unless the agent wants another).
    pub cookie: u64,
    pub tenants: Vec<TenantInput>,
    pub networks: Vec<NetworkInput>,
    pub groups: Vec<GroupInput>,
    /// The rules of every policy (Contiv's `rule` objects, keyed `tenant:policy:ruleId`).
    pub rules: Vec<Rule>,
    pub local_endpoints: Vec<LocalEndpoint>,
    pub remote_endpoints: Vec<RemoteEndpoint>,
    /// `Some`: compile the VXLAN variant (every network an overlay network with its VNI,
    /// remote endpoints and flood lists from EVPN) instead of native L3. `None` (the default)
    /// leaves native L3 exactly as it is.
    pub vxlan: Option<VxlanInput>,
}

impl HostInput {
    /// An input with no tenants, networks, groups, rules or endpoints yet.
    pub fn new(router_mac: MacAddr, gateway: GatewayPort) -> Self {
        HostInput {
            router_mac,
            gateway,
            cookie: DEFAULT_COOKIE,
            tenants: Vec::new(),
            networks: Vec::new(),
            groups: Vec::new(),
            rules: Vec::new(),
            local_endpoints: Vec::new(),
            remote_endpoints: Vec::new(),
            vxlan: None,
        }
    }
}

/// The gateway port: an OVS internal port whose kernel side is the host's route to the fabric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayPort {
    pub ofport: u32,
    /// The MAC of the kernel side of the port (where packets for the fabric are sent).
    pub mac: MacAddr,
}

/// A tenant: its VRF id (register value) and its conntrack zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantInput {
    pub name: String,
    pub vrf: u32,
    pub zone: u16,
}

/// A network: what `fromNetwork`/`toNetwork` rules match (its subnet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkInput {
    pub tenant: String,
    pub name: String,
    pub subnet: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
}

impl NetworkInput {
    /// From Contiv's `network` object (its `subnet` may carry a pool, `10.1.1.0/24` or
    /// `10.1.1.10-10.1.1.100/24`).
    pub fn from_model(net: &Network) -> Result<Self, CompileError> {
        let spec = net.subnet_spec().map_err(|e| CompileError::Network {
            key: format!("{}:{}", net.tenant_name, net.network_name),
            reason: format!("{}: {}", e.field, e.reason),
        })?;
        Ok(NetworkInput {
            tenant: net.tenant_name.clone(),
            name: net.network_name.clone(),
            subnet: spec.net,
            gateway: net.gateway.parse().ok(),
        })
    }
}

/// An endpoint group: its master-allocated id and the policies attached to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInput {
    pub tenant: String,
    pub name: String,
    /// The group id (non-zero).
    pub id: u32,
    /// Names of policies of the same tenant.
    pub policies: Vec<String>,
}

impl GroupInput {
    /// From Contiv's `endpointGroup` object and the id the master allocated for it.
    pub fn from_model(group: &EndpointGroup, id: u32) -> Self {
        GroupInput {
            tenant: group.tenant_name.clone(),
            name: group.group_name.clone(),
            id,
            policies: group.policies.clone(),
        }
    }
}

/// A container attached to this host's bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalEndpoint {
    pub ofport: u32,
    pub mac: MacAddr,
    pub ipv4: Ipv4Addr,
    pub tenant: String,
    /// The group id, 0 for a container in no group.
    pub group: u32,
}

/// A container on another host (or anything the fabric knows by address): lets `in` rules with
/// `fromEndpointGroup` recognise traffic that arrives through the gateway port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEndpoint {
    pub ipv4: Ipv4Addr,
    pub tenant: String,
    pub group: u32,
}

/// The VXLAN variant's input: the host's tunnel port, each network's VNI, and what EVPN
/// brought (type-2 MAC/IP routes as [`VxlanRemote`], type-3 routes as [`FloodList`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VxlanInput {
    /// The OpenFlow port number of the host's one flow-based VXLAN port
    /// (`options:remote_ip=flow, options:key=flow`).
    pub ofport: u32,
    /// This host's VTEP address: left out of flood lists, so BUM never loops back to us.
    pub local_vtep: Option<Ipv4Addr>,
    /// The VNI of every network of [`HostInput::networks`] (its pkt-tag, or the allocated one).
    pub vnis: Vec<NetworkVni>,
    /// Endpoints on other hosts, one per EVPN type-2 route.
    pub remote_endpoints: Vec<VxlanRemote>,
    /// Per VNI, the VTEPs that host it (EVPN type-3 routes).
    pub flood_lists: Vec<FloodList>,
}

/// A network's VNI; `None` while the master has not allocated one (an error: the network
/// cannot be compiled without it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkVni {
    pub tenant: String,
    pub network: String,
    pub vni: Option<u32>,
}

/// A remote endpoint as an EVPN type-2 route gives it: VNI, MAC, IP, the VTEP (next hop) and
/// the 32-bit group id (extended community type 0x83 subtype 0x01; 0 for none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanRemote {
    pub vni: u32,
    pub mac: MacAddr,
    pub ipv4: Ipv4Addr,
    /// `None` when the route carried no usable next hop (an error).
    pub vtep: Option<Ipv4Addr>,
    pub group: u32,
}

/// The VTEPs of one VNI (the type-3 routes of that VNI), where its BUM traffic goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloodList {
    pub vni: u32,
    pub vteps: Vec<Ipv4Addr>,
}

//! Checks the VXLAN part of the input and indexes it: VNI per network, the network (VNI) of
//! each local endpoint, remote endpoints with their tenant, flood lists.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use openflow::MacAddr;

use crate::error::{CompileError, Warning};
use crate::input::{NetworkInput, TenantInput, VxlanInput};
use crate::resolve::Resolved;

/// A network of the overlay.
pub struct Net<'a> {
    pub tenant: &'a TenantInput,
    pub net: &'a NetworkInput,
}

/// A remote endpoint, checked.
pub struct Remote {
    pub vrf: u32,
    pub vni: u32,
    pub vtep: Ipv4Addr,
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    pub group: u32,
}

/// The overlay, checked and indexed.
pub struct Overlay<'a> {
    pub vx: &'a VxlanInput,
    /// VNI → its network (networks of unknown tenants are left out, with a warning).
    pub nets: BTreeMap<u32, Net<'a>>,
    /// The VNI of each local endpoint, in `local_endpoints` order.
    pub local_vni: Vec<u32>,
    /// Remote endpoints, one per (VRF, address) and per (VNI, MAC): the first listed.
    pub remotes: Vec<Remote>,
    /// VNI → the VTEPs of its flood list, without this host's.
    pub flood: BTreeMap<u32, BTreeSet<Ipv4Addr>>,
}

/// The largest VNI (24 bits).
const VNI_MAX: u32 = 0x00ff_ffff;

fn mac_text(m: MacAddr) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl<'a> Overlay<'a> {
    pub fn new(r: &mut Resolved<'a>) -> Result<Self, CompileError> {
        let input = r.input;
        // `compile` only calls this with a VXLAN input; an empty one is harmless otherwise.
        static EMPTY: VxlanInput = VxlanInput {
            ofport: 0,
            local_vtep: None,
            vnis: Vec::new(),
            remote_endpoints: Vec::new(),
            flood_lists: Vec::new(),
        };
        let vx = input.vxlan.as_ref().unwrap_or(&EMPTY);
        let port_err = |reason: &str| CompileError::VxlanPort {
            ofport: vx.ofport,
            reason: reason.into(),
        };
        if vx.ofport == 0 || vx.ofport >= 0xffff_ff00 {
            return Err(port_err("not a physical port number"));
        }
        if vx.ofport == input.gateway.ofport {
            return Err(port_err("is the gateway port"));
        }
        if input.local_endpoints.iter().any(|e| e.ofport == vx.ofport) {
            return Err(port_err("is a local endpoint's port"));
        }
        let given: BTreeMap<(&str, &str), Option<u32>> = vx
            .vnis
            .iter()
            .map(|v| ((v.tenant.as_str(), v.network.as_str()), v.vni))
            .collect();
        let mut nets: BTreeMap<u32, Net> = BTreeMap::new();
        let mut vni_of: BTreeMap<(&str, &str), u32> = BTreeMap::new();
        for n in &input.networks {
            let key = format!("{}:{}", n.tenant, n.name);
            let Some(&Some(vni)) = given.get(&(n.tenant.as_str(), n.name.as_str())) else {
                return Err(CompileError::NetworkWithoutVni { network: key });
            };
            let bad = |reason: String| CompileError::BadVni {
                network: key.clone(),
                vni,
                reason,
            };
            if vni == 0 || vni > VNI_MAX {
                return Err(bad("is outside 1-16777215".into()));
            }
            if let Some(other) = nets.get(&vni) {
                return Err(bad(format!(
                    "is also network {}:{}'s",
                    other.net.tenant, other.net.name
                )));
            }
            vni_of.insert((n.tenant.as_str(), n.name.as_str()), vni);
            // A network whose tenant is not known here has no VRF: nothing can be classified
            // into it, so it is left out (native L3 warns the same way).
            match r.tenants.get(n.tenant.as_str()) {
                Some(t) => {
                    nets.insert(vni, Net { tenant: t, net: n });
                }
                None => r.warnings.push(Warning::UnknownNetworkTenant {
                    network: key,
                    tenant: n.tenant.clone(),
                }),
            }
        }
        let mut local_vni = Vec::new();
        for ep in &input.local_endpoints {
            // A tenant's networks do not overlap, so the subnet says which one it is.
            let vni = nets
                .iter()
                .find(|(_, n)| n.net.tenant == ep.tenant && n.net.subnet.contains(&ep.ipv4))
                .map(|(vni, _)| *vni)
                .ok_or_else(|| CompileError::Endpoint {
                    ofport: ep.ofport,
                    reason: format!("{} is in no network of tenant {}", ep.ipv4, ep.tenant),
                })?;
            local_vni.push(vni);
        }
        let mut remotes = Vec::new();
        let mut seen_ip = BTreeSet::new();
        let mut seen_mac = BTreeSet::new();
        for rep in &vx.remote_endpoints {
            let Some(vtep) = rep.vtep else {
                return Err(CompileError::RemoteWithoutVtep {
                    ip: rep.ipv4,
                    mac: mac_text(rep.mac),
                    vni: rep.vni,
                });
            };
            let Some(n) = nets.get(&rep.vni) else {
                r.warnings.push(Warning::UnknownVni {
                    what: format!("remote endpoint {}", rep.ipv4),
                    vni: rep.vni,
                });
                continue;
            };
            // Our own routes reflected back, and multicast MACs (never an endpoint's).
            if Some(vtep) == vx.local_vtep || rep.mac[0] & 1 == 1 {
                continue;
            }
            let vrf = n.tenant.vrf;
            if seen_ip.insert((vrf, rep.ipv4)) && seen_mac.insert((rep.vni, rep.mac)) {
                remotes.push(Remote {
                    vrf,
                    vni: rep.vni,
                    vtep,
                    mac: rep.mac,
                    ip: rep.ipv4,
                    group: rep.group,
                });
            }
        }
        let mut flood: BTreeMap<u32, BTreeSet<Ipv4Addr>> = BTreeMap::new();
        for fl in &vx.flood_lists {
            if !nets.contains_key(&fl.vni) {
                r.warnings.push(Warning::UnknownVni {
                    what: "flood list".into(),
                    vni: fl.vni,
                });
                continue;
            }
            flood.entry(fl.vni).or_default().extend(
                fl.vteps
                    .iter()
                    .copied()
                    .filter(|v| Some(*v) != vx.local_vtep),
            );
        }
        Ok(Overlay {
            vx,
            nets,
            local_vni,
            remotes,
            flood,
        })
    }
}

//! The VXLAN variant of the pipeline, beside native L3 (issue 17): every network is an overlay
//! network with its VNI; remote endpoints and flood lists come from EVPN routes.
//!
//! What differs from native L3, and why:
//! - Tenant from the tunnel key: a packet from the host's one flow-based VXLAN port takes its
//!   tenant (VRF, conntrack zone) from `tun_id`, the VNI of a network of exactly one tenant. A
//!   local packet takes it from its port, as in native L3. Every later lookup (ARP, source and
//!   destination classification, L2) is scoped by the VRF register or the VNI in `tun_id`,
//!   never by address alone, so tenants may reuse subnets and addresses. Isolation needs no
//!   per-address drops (native L3's `isolation` module): no table can reach another tenant's
//!   endpoint from a packet of this one.
//! - The source group at the destination host comes from the EVPN type-2 route of the source
//!   endpoint (its 32-bit group id travels in an extended community), looked up by (VRF, source
//!   address) in `SRC_REMOTE` as native L3 does for traffic from gw0. Not VXLAN-GBP
//!   (`tun_gbp_id`): it carries 16 bits where group ids are 32; FRR's kernel VTEPs and
//!   hardware VTEPs do not send it, and our OpenFlow codec does not have the field. The route
//!   is what the destination has for every source anyway (it must know the endpoint to answer
//!   ARP for it), so `in` policy runs at the destination exactly as in native L3.
//! - Asymmetric IRB: the sending host routes between networks of a tenant (anycast gateway,
//!   router MAC, TTL decremented) and tunnels with the *destination's* VNI; the receiving host
//!   only delivers. No type-5 routes and no L3 VNI: each host needs the type-2 routes of the
//!   networks its endpoints talk to, which the route targets of the tenant's networks give.
//! - Frames between endpoints of one network are bridged (MACs kept, TTL unchanged); the
//!   destination MAC is still set from the endpoint table, so a stale ARP cache cannot misdeliver.
//! - ARP: the host answers for the gateway (router MAC) and for every known endpoint of the
//!   requester's VNI, local or remote (its MAC); other ARP (requests for unknown addresses,
//!   replies) is switched by (VNI, MAC) in `L2`, broadcast going to the VNI's local ports and
//!   its flood list (ingress replication: one `set_field tun_dst, output` pair per VTEP in one
//!   flow). Frames from the tunnel never go back into it (split horizon).
//!
//! Conntrack, `EGRESS`, `INGRESS` and `COMMIT` are the native tables, unchanged.

mod classify;
mod forward;
mod resolve;

use crate::build::Flows;
use crate::error::{CompileError, Warning};
use crate::resolve::Resolved;

pub use resolve::Overlay;

/// The VXLAN variant's tables (all but policy, which the caller compiles as for native L3).
pub fn compile(r: &mut Resolved, f: &mut Flows) -> Result<(), CompileError> {
    // Native L3 cannot tell two tenants' endpoints at one address apart through gw0; the
    // overlay can (tun_id), so that warning does not apply here.
    r.warnings
        .retain(|w| !matches!(w, Warning::SharedEndpointAddress { .. }));
    let o = Overlay::new(r)?;
    classify::compile(r, &o, f);
    crate::forward::conntrack(f);
    forward::compile(r, &o, f);
    crate::forward::commit(f);
    Ok(())
}

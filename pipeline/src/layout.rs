//! The pipeline's fixed layout: table numbers, register assignments and flow priorities.
//!
//! Everything that two parts of the compiler (or the agent, or a test) must agree on lives here;
//! `README.md` of this crate walks through the same tables with what each flow does.

/// Table numbers, in the order a packet visits them.
pub mod table {
    /// Port classification and spoof guard: in_port (+ source MAC/IP) → VRF, source group, zone.
    pub const CLASSIFY: u8 = 0;
    /// Proxy ARP responder: every ARP request is answered with the router MAC.
    pub const ARP: u8 = 5;
    /// Source group of traffic entering from the gateway port, from the remote endpoints.
    pub const SRC_REMOTE: u8 = 8;
    /// Conntrack lookup in the tenant's zone; recirculates to [`CT_STATE`].
    pub const CT: u8 = 10;
    /// Drops invalid connections.
    pub const CT_STATE: u8 = 11;
    /// Destination classification: destination group and output port.
    pub const DST_CLASSIFY: u8 = 20;
    /// `out` rules of the source group, for local sources only.
    pub const EGRESS: u8 = 30;
    /// `in` rules of the destination group, for local destinations only.
    pub const INGRESS: u8 = 40;
    /// Commits new connections that the policy let through.
    pub const COMMIT: u8 = 50;
    /// L3 forwarding: MAC rewrite, TTL decrement, output.
    pub const FORWARD: u8 = 60;
    /// VXLAN variant only: non-IP frames (ARP not answered here) by (VNI in `tun_id`, MAC),
    /// and broadcast to the VNI's local ports and flood list.
    pub const L2: u8 = 70;
}

/// Register numbers (Nicira reg0..reg7, 32 bits each).
pub mod reg {
    /// The tenant's VRF id.
    pub const VRF: u8 = 0;
    /// The source's group id (0: no group, or a source unknown to the fabric).
    pub const SRC_GROUP: u8 = 1;
    /// The destination's group id (0: no group, or unknown).
    pub const DST_GROUP: u8 = 2;
    /// The output port (an ofport: a container's or the gateway's).
    pub const OUT_PORT: u8 = 3;
    /// The tenant's conntrack zone, in the low 16 bits.
    pub const CT_ZONE: u8 = 4;
    /// 1 when the source is a local endpoint (egress policy applies).
    pub const SRC_LOCAL: u8 = 5;
    /// 1 when the destination is a local endpoint (ingress policy applies).
    pub const DST_LOCAL: u8 = 6;
    /// Scratch: the ARP responder swaps addresses through it.
    pub const SCRATCH: u8 = 7;
    /// VXLAN variant, IP path: 1 when the frame was sent to the router MAC (routed: source MAC
    /// rewritten, TTL decremented), 0 when bridged. The ARP path's [`SCRATCH`] is the same
    /// register; the two paths never meet.
    pub const ROUTED: u8 = 7;
}

/// Flow priorities.
pub mod prio {
    /// Table-miss flows.
    pub const MISS: u16 = 0;
    /// Per-port catch-all of the spoof guard (drop what the port may not send).
    pub const PORT_GUARD: u16 = 100;
    /// Exact classification flows.
    pub const EXACT: u16 = 200;
    /// Remote-endpoint classification (below local endpoints).
    pub const REMOTE: u16 = 150;
    /// Tenant isolation, fail-closed part: drops addresses whose tenant cannot be told from the
    /// address (overlapping networks of two tenants, an endpoint address of two tenants, an
    /// endpoint outside its tenant's networks). Below the exact endpoint flows, so a tenant's
    /// own known endpoints there keep working; above [`TENANT_OWN`], which would let them in.
    pub const TENANT_AMBIGUOUS: u16 = 130;
    /// Tenant isolation: an address in a network of the packet's own tenant (reg0) that is not
    /// known as an endpoint (yet) continues as the table's miss would.
    pub const TENANT_OWN: u16 = 120;
    /// Tenant isolation: an address in any tenant's network that [`TENANT_OWN`] did not take is
    /// another tenant's: dropped. Addresses in no network fall through to the miss (outside the
    /// fabric, unchanged).
    pub const TENANT_FOREIGN: u16 = 110;
    /// A container's ARP request for its own address (not answered).
    pub const ARP_SELF: u16 = 300;
    /// VXLAN: a local frame to the router MAC (above [`EXACT`], same match plus `eth_dst`).
    pub const ROUTED: u16 = 201;
    /// VXLAN: the anycast gateway's ARP answer, above any endpoint's.
    pub const GATEWAY_ARP: u16 = 250;
    /// Policy-table bypass flows (replies, related, not-local).
    pub const BYPASS: u16 = 1000;
    /// Lowest rule flow priority; see [`rule`].
    pub const RULE_BASE: u16 = 100;

    /// The OpenFlow priority of a rule: higher rule priority wins, and at the same rule priority
    /// a deny wins over an allow. Rule priorities are 1..=100, so this stays in 102..=301.
    pub fn rule(priority: u8, deny: bool) -> u16 {
        RULE_BASE + u16::from(priority) * 2 + u16::from(deny)
    }
}

/// The cookie the compiler tags its flows with unless the input names another one.
pub const DEFAULT_COOKIE: u64 = 0x00fa_b000_0000_0001;

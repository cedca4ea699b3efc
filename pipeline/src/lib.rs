//! The host pipeline compiler: intent (tenants, networks, groups, rules) plus local state
//! (this host's endpoints, ports and the fabric's remote endpoints) → the host's desired
//! OpenFlow flow set. Pure: no I/O, no clock; the same input always gives the same flows, so a
//! restarted agent installs exactly what it had. The flow-writer installs the difference.
//!
//! ```text
//! let out = pipeline::compile(&input)?;   // Compiled { flows: BTreeSet<Flow>, warnings }
//! writer.sync(&out.flows)?;
//! ```
//!
//! The tables and registers are in [`layout`] and this crate's `README.md`.
//!
//! Forwarding is native L3 unless the input carries a [`VxlanInput`]: then the [`vxlan`]
//! variant replaces native L3's classification, isolation and forwarding tables whole, and
//! shares conntrack, policy and commit with it.
//!
//! # Policy semantics (Contiv's, made stateful)
//!
//! A *policy* is a set of *rules*; an *endpoint group* lists policies; a container belongs to
//! at most one group. A rule has a `direction`:
//! - `in`: traffic **arriving at** the group's containers, optionally from a peer given by
//!   `fromEndpointGroup`, `fromNetwork` (its subnet) or `fromIpAddress`; enforced on the host
//!   of the destination container, whoever sent it (another host, a host without our agent,
//!   outside the fabric through the gateway).
//! - `out`: traffic the group's containers **send**, optionally to `toEndpointGroup`,
//!   `toNetwork` or `toIpAddress`; enforced on the host of the source container.
//!
//! A rule also matches `protocol` (`tcp`, `udp`, `icmp`, a number, or empty for any IP) and
//! `port` (the destination port, TCP or UDP only; 0 for any). An address is `a.b.c.d`,
//! `a.b.c.d/len`, or a last-octet range `a.b.c.d-e` (inclusive; a `/len` after a range is
//! ignored).
//!
//! A new connection from S to D is allowed when both checks allow it:
//! 1. if S is local: among the `out` rules of S's group that match the packet, the one with the
//!    highest `priority` decides (`allow` or `deny`); at equal priority `deny` wins; with no
//!    matching rule the packet is allowed;
//! 2. if D is local: the same over the `in` rules of D's group.
//!
//! Replies of an allowed connection, and related packets (ICMP errors), pass whatever the
//! rules say of the reverse direction: connections are tracked, one conntrack zone per tenant.
//!
//! Examples (Contiv's tutorial): `db-policy` holds `1: in tcp deny` (priority 1) and
//! `2: in tcp port 8888 allow priority 10`, attached to group `db`:
//! - any client → db:8888/tcp: rule 2 (priority 10) beats rule 1 → allowed;
//! - any client → db:80/tcp: only rule 1 matches → denied;
//! - any client → db, ping or UDP: no rule matches → allowed (Contiv's default);
//! - db → anything: no `out` rule → allowed, and the replies of that connection pass although
//!   rule 1 denies TCP towards db.
//!
//! With `web-policy` on `web` holding `out tcp toEndpointGroup db deny` at priority 5 and
//! `out tcp 8888 toEndpointGroup db allow` at priority 5: a web container reaching db:8888
//! matches both at equal priority, deny wins, denied at web's host before db's host sees it.
//!
//! # Rule changes and established connections
//!
//! Every packet of a connection in its original direction goes through policy again; only
//! replies and related packets skip it. So a rule change never cuts an established connection
//! unless the new rules deny its original direction: adding `deny` for A → B stops existing
//! A → B connections at once (their packets drop; the conntrack entry times out), while
//! denying B → A leaves existing A → B connections, replies included, untouched and only stops
//! new B → A connections. Chosen because a deny an operator adds (an incident, a mistake being
//! corrected) takes effect immediately, with no conntrack flush and no generation numbers in
//! `ct_mark` that every rule change would have to bump and reinstall; the cost, a policy lookup
//! per packet, is what OVS's megaflow cache absorbs.

//!
//! # Tenant isolation
//!
//! Tenants are isolated: a packet between endpoints of two different tenants is dropped, on
//! the source's host and on the destination's host, whatever the rules of either tenant say
//! (an allow-everything rule included). Seen from a host, the tenant of the other end of a
//! packet is:
//! - for a local endpoint, its tenant (its port says which);
//! - otherwise, the tenant of the endpoint the fabric knows at that address;
//! - otherwise, the tenant one of whose networks holds the address, so that an address not
//!   known as an endpoint (yet) is still its network's tenant's;
//! - otherwise none: the address is outside the fabric and only the rules apply to it, as
//!   before isolation.
//!
//! An address these steps cannot decide is fail-closed, treated as another tenant's by every
//! tenant: an address that is an endpoint of two tenants, and an address not known as an
//! endpoint that lies in networks of two tenants. Only legacy state holds these (the master
//! refuses overlapping subnets of two tenants in native L3); the compiler warns. How the flows
//! implement this is in [`isolation`].

pub mod build;
pub mod classify;
pub mod error;
pub mod forward;
pub mod input;
pub mod isolation;
pub mod layout;
pub mod policy;
pub mod resolve;
pub mod sim;
pub mod vxlan;

use std::collections::BTreeSet;

use openflow::Flow;

pub use error::{CompileError, Warning};
pub use input::{
    FloodList, GatewayPort, GroupInput, HostInput, LocalEndpoint, NetworkInput, NetworkVni,
    RemoteEndpoint, TenantInput, VxlanInput, VxlanRemote,
};

/// The compiled pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// Every flow of the host's bridge, each tagged with the input's cookie.
    pub flows: BTreeSet<Flow>,
    /// What was left out and why (references to objects not known yet).
    pub warnings: Vec<Warning>,
}

/// Compiles a host's whole pipeline.
pub fn compile(input: &HostInput) -> Result<Compiled, CompileError> {
    let mut r = resolve::Resolved::new(input)?;
    let mut f = build::Flows::new(input.cookie);
    // Forwarding is one variant or the other, whole: native L3 is compiled exactly as it
    // was, and the VXLAN variant shares only conntrack, policy and commit with it.
    if input.vxlan.is_some() {
        vxlan::compile(&mut r, &mut f)?;
    } else {
        classify::compile(&mut r, &mut f);
        forward::compile(&r, &mut f);
        isolation::compile(&mut r, &mut f);
    }
    policy::compile(&mut r, &mut f)?;
    let mut warnings = r.warnings;
    warnings.sort();
    warnings.dedup();
    // Sorted in place first: `BTreeSet::from_iter` sorts stably, which on sorted input is one
    // pass; an unstable sort of ten thousand flows is the cheaper of the two sorts.
    let mut flows = f.out;
    flows.sort_unstable();
    flows.dedup();
    Ok(Compiled {
        flows: flows.into_iter().collect(),
        warnings,
    })
}

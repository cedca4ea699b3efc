//! The agent's actors. Each is a thin actix shell over a plain struct that holds the logic and
//! is unit-tested without the actor system:
//!
//! - [`endpoint`]: attach/detach as a sequence of undoable steps ([`endpoint::Saga`]).
//! - [`flows`]: the flow-writer: compile the host's desired flows, sync them, coalescing bursts.
//! - [`routes`]: kernel routes (our own route protocol number) and BGP announcements; routes
//!   learned from the ToRs go into the kernel, ECMP where there are several next hops.
//! - [`bgp_settings`]: the master's `Bgp` object for this host turned into speaker changes.
//! - [`reflector_peers`]: the peer set (ToRs and the masters' route reflectors) and its live
//!   changes; the rule for fabrics with both (the ToR path preferred, the reflected one a
//!   fallback, a host exports only its own routes).
//! - [`announce_blocks`]: what the host announces to whom: its address blocks (containers and
//!   reserve) to the reflectors, its containers' /32s to its ToRs.
//! - [`next_hops`]: learned next hops a kernel route can use (those on a connected subnet).
//! - [`master_link`]: registration with a lease, heartbeats (whose answers name the reflectors
//!   and the masters), the watch stream resumed from its last revision.
//!
//! Mailboxes are bounded (actix's default capacity, set explicitly) and callers use
//! `send().await` or `try_send`.

pub mod announce_blocks;
pub mod bgp_settings;
pub mod endpoint;
pub mod flows;
pub mod intent;
pub mod master_link;
pub mod next_hops;
pub mod reflector_peers;
pub mod routes;
pub mod types;

/// Mailbox capacity of every actor: senders wait (`send().await`) or fail fast (`try_send`)
/// when an actor falls this far behind.
pub const MAILBOX: usize = 256;

/// How long an actor that could not rebuild its state waits before its supervisor restarts it.
pub const RESTORE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

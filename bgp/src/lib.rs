//! fabric-bgp: the fabric's BGP speaker.
//!
//! - [`packet`]: framing, validation (RFC 7606) and our codec.
//! - [`fsm`]: the sans-IO session state machine (RFC 4271 §8).
//! - [`rib`]: Adj-RIB-In, Loc-RIB with the decision process, Adj-RIB-Out and packing.
//! - [`session`]: the tokio driver, one task per peer.
//! - [`speaker`]: the public API used by the agent and the master.

pub mod config;
pub mod control;
pub mod fsm;
pub mod packet;
pub mod policy;
pub mod rib;
pub mod session;
pub mod speaker;

pub use config::{PeerConfig, SpeakerConfig};
pub use speaker::{
    DynamicStats, EvpnEvent, EvpnRibRoute, PeerState, RibEvent, RibRoute, Speaker, SpeakerError,
};

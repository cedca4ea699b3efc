//! OpenFlow 1.3 for the agent's data plane: the flow model every producer of flows (the
//! forwarding pipeline, the policy compiler) writes in, and the codec, connection and
//! flow-writer that put those flows into Open vSwitch.
//!
//! The flow model is plain data with a total order, so a desired flow set is a `BTreeSet` and
//! "what to install" is a set difference computed without a switch.

pub mod codec;
pub mod conn;
mod display;
pub mod flow;
mod normalize;
pub mod ofctl;
pub mod writer;

pub use codec::{FlowMod, FlowModCommand};
pub use conn::{ConnError, Connection, FlowModFailure};
pub use flow::{Action, CtAction, CtZone, Field, Flow, FlowKey, MacAddr, Masked, Match};
pub use writer::{diff, Atomicity, FlowWriter, SyncStats, WriterError};

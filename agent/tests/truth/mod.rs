//! Support of the truth-table test: the rules and their independent model, and the traffic.

pub mod model;
pub mod probe;

//! `lab`: containerlab topology files realised as network namespaces on one machine, with real
//! daemons (BIRD, FRR, GoBGP, etcd, OVS, our netmaster/netplugin) inside them.
//!
//! Pipeline: [`topology`] parses and validates the file, [`plan`] turns it into actions (pure),
//! [`deploy`] executes them recording each resource in [`state`] first, [`destroy`] undoes
//! whatever the state file (and the topology's names) say exists.

pub mod auth;
pub mod deploy;
pub mod destroy;
pub mod error;
pub mod exec;
pub mod graph;
pub mod inspect;
pub mod kind;
pub mod links;
pub mod netns;
pub mod nodes;
pub mod plan;
pub mod process;
pub mod programs;
pub mod save;
pub mod state;
pub mod sys;
pub mod topology;

pub use error::LabError;
pub use kind::Kind;
pub use topology::Topology;

//! netmaster: the fabric's control plane. It validates intent against Contiv's object model,
//! keeps it in a durable store (embedded or etcd), allocates addresses and tags with
//! compare-and-swap transactions, and streams every change to agents.

pub mod alloc;
pub mod api;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod error;
pub mod facts;
pub mod fleet;
pub mod inspect;
pub mod intent;
pub mod ipam;
pub mod keys;
pub mod leader;
pub mod listen;
pub mod master;
pub mod metrics;
pub mod proposals;
pub mod reads;
pub mod reflector;
pub mod reserve;
pub mod tenancy;
pub mod tls;

pub use master::{Master, Settings};

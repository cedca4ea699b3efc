//! netplugin, the fabric's agent: data-plane drivers (OVSDB, netlink, ethtool; flows from the
//! pipeline compiler through openflow's writer), the master client, the attach steps, the CNI socket and the CNI types
//! shared with the `contivk8s` plugin binary. `main.rs` wires the actors.

pub mod cni;
pub mod credential;
pub mod ethtool;
pub mod flows;
pub mod kernel;
pub mod master_client;
pub mod netlink;
pub mod netns;
pub mod ops;
pub mod ovsdb;
pub mod pool;
pub mod reserve;
pub mod server;
pub mod tls;

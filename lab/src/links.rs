//! Links and addresses inside lab namespaces through netlink (the rtnetlink crate): bridges,
//! veth pairs whose ends land directly in two namespaces, addresses, link state.
//!
//! A netlink socket belongs to the namespace it was created in, so each operation runs on a
//! short-lived thread that first enters the target namespace (`setns` affects only that
//! thread) and opens its socket there. Namespaces themselves are created and deleted with
//! `ip netns` (see `netns.rs`): that is a bind mount of a new namespace, not a netlink call.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use nix::sched::{setns, CloneFlags};
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth};

use crate::error::LabError;
use crate::netns::netns_path;

/// One change to the links of a namespace.
#[derive(Debug)]
pub enum LinkOp {
    Bridge {
        name: String,
    },
    /// `name` in this namespace, `peer` created directly in `peer_netns`.
    Veth {
        name: String,
        peer: String,
        peer_netns: String,
    },
    Up {
        dev: String,
    },
    Master {
        dev: String,
        master: String,
    },
    Address {
        dev: String,
        addr: Ipv4Net,
    },
    Delete {
        dev: String,
    },
}

/// Applies `op` in namespace `netns`.
pub fn apply(netns: &str, op: LinkOp) -> Result<(), LabError> {
    let fail = |message: String| LabError::Netlink {
        netns: netns.to_string(),
        op: format!("{op:?}"),
        message,
    };
    let ns =
        File::open(netns_path(netns)).map_err(|e| fail(format!("cannot open namespace: {e}")))?;
    let peer_ns = match &op {
        LinkOp::Veth { peer_netns, .. } => Some(
            File::open(netns_path(peer_netns))
                .map_err(|e| fail(format!("cannot open namespace {peer_netns}: {e}")))?,
        ),
        _ => None,
    };
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<(), String> {
                setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(|e| format!("tokio runtime: {e}"))?;
                runtime.block_on(async {
                    let (connection, handle, _) =
                        rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
                    tokio::spawn(connection);
                    execute(&handle, &op, peer_ns.as_ref()).await
                })
            })
            .join()
            .unwrap_or_else(|_| Err("netlink thread panicked".to_string()))
    });
    result.map_err(fail)
}

async fn index_of(handle: &Handle, name: &str) -> Result<u32, String> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) | Err(_) => Err(format!("no interface named {name}")),
    }
}

async fn execute(handle: &Handle, op: &LinkOp, peer_ns: Option<&File>) -> Result<(), String> {
    let text = |e: rtnetlink::Error| e.to_string();
    match op {
        LinkOp::Bridge { name } => {
            let msg = LinkBridge::new(name).build();
            handle.link().add(msg).execute().await.map_err(text)
        }
        LinkOp::Veth { name, peer, .. } => {
            let mut peer_msg = LinkUnspec::new_with_name(peer);
            if let Some(ns) = peer_ns {
                peer_msg = peer_msg.setns_by_fd(ns.as_raw_fd());
            }
            let msg = LinkVeth::new(name, peer)
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
                .build();
            handle.link().add(msg).execute().await.map_err(text)
        }
        LinkOp::Up { dev } => {
            let msg = LinkUnspec::new_with_index(index_of(handle, dev).await?)
                .up()
                .build();
            handle.link().set(msg).execute().await.map_err(text)
        }
        LinkOp::Master { dev, master } => {
            let master = index_of(handle, master).await?;
            let msg = LinkUnspec::new_with_index(index_of(handle, dev).await?)
                .controller(master)
                .build();
            handle.link().set(msg).execute().await.map_err(text)
        }
        LinkOp::Address { dev, addr } => {
            let index = index_of(handle, dev).await?;
            let ip = IpAddr::V4(addr.addr());
            handle
                .address()
                .add(index, ip, addr.prefix_len())
                .execute()
                .await
                .map_err(text)
        }
        LinkOp::Delete { dev } => {
            let index = index_of(handle, dev).await?;
            handle.link().del(index).execute().await.map_err(text)
        }
    }
}

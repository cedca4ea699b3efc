//! Container wiring through rtnetlink: the veth pair (host end in the agent's namespace,
//! container end created directly in the container's namespace), the container side's MAC,
//! MTU, address and default route, its offloads off, removal, and the CHECK probe.

use crate::ethtool::offloads_off;
use crate::netns::{enter, run_in, NsResult};
use fabric_actors::types::Endpoint;
use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

/// The interface index of `name`, None if there is none.
pub async fn index_of(handle: &Handle, name: &str) -> NsResult<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        // ENODEV: no such interface.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(format!("look up {name}: {e}")),
    }
}

/// Creates the veth pair: the host end up, the container end made in `netns` with its
/// offloads off, and the namespace's loopback up. A host end left by an attach that died
/// half-way is replaced. Fails if the container already has an interface named `if_name`.
/// Needs no address, so it runs while the master allocates one (or the reserve has one).
pub async fn prewire(host_if: &str, if_name: &str, netns: &str, mtu: u32) -> NsResult<()> {
    let ns_file =
        std::fs::File::open(netns).map_err(|e| format!("network namespace {netns}: {e}"))?;
    let (host_if, if_name) = (host_if.to_string(), if_name.to_string());
    run_in(None, move |handle| async move {
        remove_link(&handle, &host_if).await?;
        // The host end is created up. The container end cannot be: the kernel configures it
        // before the pair is linked, and a veth without its peer refuses to come up.
        let peer = LinkUnspec::new_with_name(&if_name)
            .setns_by_fd(ns_file.as_raw_fd())
            .mtu(mtu)
            .build();
        let msg = LinkVeth::new(&host_if, &if_name)
            .mtu(mtu)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| format!("create veth {host_if}/{if_name}: {e}"))?;
        // Only the container end's offloads matter: it is what hands the userspace datapath
        // oversized or unchecksummed segments. OVS writes to the host end with a packet
        // socket, whose frames the offloads never touch (fabric.rs's bulk TCP shows both).
        // The container side on the same thread: one thread hand-off, not two.
        let handle = enter(&ns_file)?;
        loopback_up(&handle).await;
        offloads_off(&if_name)
    })
    .await
}

/// Deletes a link by name; absent is fine.
async fn remove_link(handle: &Handle, name: &str) -> NsResult<()> {
    let Some(index) = index_of(handle, name).await? else {
        return Ok(());
    };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(()),
        Err(e) => Err(format!("delete {name}: {e}")),
    }
}

/// Brings the loopback of the namespace `handle` is in up (best effort: a runtime usually has).
async fn loopback_up(handle: &Handle) {
    if let Ok(Some(lo)) = index_of(handle, "lo").await {
        let _ = handle
            .link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await;
    }
}

/// Configures the container end made by [`prewire`] (made here if it is missing): MAC, up,
/// address, default route via the gateway.
pub async fn wire(ep: &Endpoint) -> NsResult<()> {
    if !configure(ep).await? {
        prewire(&ep.host_if, &ep.if_name, &ep.netns, ep.mtu).await?;
        if !configure(ep).await? {
            return Err(format!("container interface {} is missing", ep.if_name));
        }
    }
    Ok(())
}

/// The container end's MAC, up, address and default route; false if it is not there.
async fn configure(ep: &Endpoint) -> NsResult<bool> {
    let (if_name, mac) = (ep.if_name.clone(), ep.mac);
    let (ip, prefix_len, gateway) = (ep.ip, ep.prefix_len, ep.gateway);
    run_in(Some(&ep.netns), move |handle| async move {
        let Some(index) = index_of(&handle, &if_name).await? else {
            return Ok(false);
        };
        handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .address(mac.to_vec())
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| format!("set {if_name}'s MAC and up: {e}"))?;
        handle
            .address()
            .add(index, IpAddr::V4(ip), prefix_len)
            .execute()
            .await
            .map_err(|e| format!("address {ip}/{prefix_len} on {if_name}: {e}"))?;
        if let Some(gw) = gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build();
            handle
                .route()
                .add(route)
                .replace()
                .execute()
                .await
                .map_err(|e| format!("default route via {gw}: {e}"))?;
        }
        Ok(true)
    })
    .await
}

/// Deletes the veth pair by its host end (the container end goes with it). Absent is fine.
pub async fn unwire(host_if: &str) -> NsResult<()> {
    let host_if = host_if.to_string();
    run_in(None, move |handle| async move {
        remove_link(&handle, &host_if).await
    })
    .await
}

/// Whether the host end exists.
pub async fn host_if_exists(host_if: &str) -> NsResult<bool> {
    let host_if = host_if.to_string();
    run_in(None, move |handle| async move {
        Ok(index_of(&handle, &host_if).await?.is_some())
    })
    .await
}

/// CHECK: the container end exists, is up, has the MAC and the address.
pub async fn check(ep: &Endpoint) -> NsResult<()> {
    if !host_if_exists(&ep.host_if).await? {
        return Err(format!("host interface {} is missing", ep.host_if));
    }
    let (if_name, ip, mac) = (ep.if_name.clone(), ep.ip, ep.mac);
    run_in(Some(&ep.netns), move |handle| async move {
        let mut links = handle.link().get().match_name(if_name.clone()).execute();
        let link = match links.try_next().await {
            Ok(Some(link)) => link,
            _ => return Err(format!("container interface {if_name} is missing")),
        };
        let has_mac = link
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Address(m) if m[..] == mac[..]));
        if !has_mac {
            return Err(format!("container interface {if_name} has another MAC"));
        }
        let mut addrs = handle
            .address()
            .get()
            .set_link_index_filter(link.header.index)
            .execute();
        while let Some(addr) = addrs.try_next().await.map_err(|e| e.to_string())? {
            if addr
                .attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Address(IpAddr::V4(a)) if *a == ip))
            {
                return Ok(());
            }
        }
        Err(format!("container interface {if_name} lacks address {ip}"))
    })
    .await
}

//! The host's kernel routes through rtnetlink, tagged with our route protocol number: local
//! containers (`/32 dev gw0` plus a permanent neighbour entry with the router MAC, so the
//! kernel never ARPs for a container) and routes learned over BGP (ECMP multipath). The
//! connected subnets (link-scope routes of the main table without a gateway, ours excepted)
//! say which learned next hops can be gateways: Linux refuses any other ("Nexthop has invalid
//! gateway"), so the route actor leaves them out instead of failing the route.

use crate::netlink::index_of;
use crate::netns::run_in;
use async_trait::async_trait;
use fabric_actors::routes::{Kernel, KernelRoute};
use fabric_actors::types::ROUTER_MAC;
use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::neighbour::NeighbourState;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{Handle, RouteMessageBuilder, RouteNextHopBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// Our route protocol number (`ip route show proto 205`).
pub const ROUTE_PROTO: u8 = 205;

/// The kernel of the agent's namespace; local routes point at `gw_if`.
pub struct NetlinkKernel {
    pub gw_if: String,
}

fn is_gone(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m)
        if m.raw_code() == -libc::ESRCH || m.raw_code() == -libc::ENOENT || m.raw_code() == -libc::ENODEV)
}

fn message(prefix: Ipv4Net, route: &KernelRoute, gw_index: u32) -> Result<RouteMessage, String> {
    let base = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(prefix.addr(), prefix.prefix_len())
        .protocol(RouteProtocol::Other(ROUTE_PROTO));
    Ok(match route {
        KernelRoute::Local => base
            .output_interface(gw_index)
            .scope(RouteScope::Link)
            .build(),
        KernelRoute::Via(hops) if hops.len() == 1 => {
            let hop = hops.iter().next().copied().unwrap_or(Ipv4Addr::UNSPECIFIED);
            base.gateway(hop).build()
        }
        KernelRoute::Via(hops) => {
            let mut next_hops = Vec::new();
            for hop in hops {
                let nh = RouteNextHopBuilder::new_ipv4()
                    .via(IpAddr::V4(*hop))
                    .map_err(|e| format!("next hop {hop}: {e:?}"))?
                    .build();
                next_hops.push(nh);
            }
            base.multipath(next_hops).build()
        }
    })
}

async fn neighbour(handle: &Handle, gw_index: u32, ip: Ipv4Addr, add: bool) -> Result<(), String> {
    if add {
        handle
            .neighbours()
            .add(gw_index, IpAddr::V4(ip))
            .link_layer_address(&ROUTER_MAC)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| format!("neighbour {ip}: {e}"))
    } else {
        let mut list = handle.neighbours().get().execute();
        while let Some(n) = list.try_next().await.map_err(|e| e.to_string())? {
            let matches = n.header.ifindex == gw_index
                && n.attributes.iter().any(|a| {
                    matches!(a, rtnetlink::packet_route::neighbour::NeighbourAttribute::Destination(
                        rtnetlink::packet_route::neighbour::NeighbourAddress::Inet(d)) if *d == ip)
                });
            if matches {
                return match handle.neighbours().del(n).execute().await {
                    Ok(()) => Ok(()),
                    Err(e) if is_gone(&e) => Ok(()),
                    Err(e) => Err(format!("delete neighbour {ip}: {e}")),
                };
            }
        }
        Ok(())
    }
}

fn parse(route: &RouteMessage) -> Option<(Ipv4Net, KernelRoute)> {
    if route.header.protocol != RouteProtocol::Other(ROUTE_PROTO) {
        return None;
    }
    let mut dst = None;
    let mut hops = BTreeSet::new();
    for attr in &route.attributes {
        match attr {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(*d),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                hops.insert(*g);
            }
            RouteAttribute::MultiPath(list) => {
                for nh in list {
                    for a in &nh.attributes {
                        if let RouteAttribute::Gateway(RouteAddress::Inet(g)) = a {
                            hops.insert(*g);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let prefix = Ipv4Net::new(
        dst.unwrap_or(Ipv4Addr::UNSPECIFIED),
        route.header.destination_prefix_length,
    )
    .ok()?;
    let kind = if hops.is_empty() {
        KernelRoute::Local
    } else {
        KernelRoute::Via(hops)
    };
    Some((prefix, kind))
}

/// The subnet of a connected route: link scope, unicast, main table, no gateway, not ours (our
/// container /32s are link-scope routes too, but a next hop there is no neighbour to route
/// through).
fn connected_subnet(route: &RouteMessage) -> Option<Ipv4Net> {
    let header = &route.header;
    if header.protocol == RouteProtocol::Other(ROUTE_PROTO)
        || header.scope != RouteScope::Link
        || header.kind != RouteType::Unicast
    {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    for attr in &route.attributes {
        match attr {
            RouteAttribute::Gateway(_) | RouteAttribute::MultiPath(_) => return None,
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    Ipv4Net::new(dst, header.destination_prefix_length).ok()
}

/// Every IPv4 route of the agent's namespace, as the kernel dumps them.
async fn dump_routes() -> Result<Vec<RouteMessage>, String> {
    run_in(None, |handle| async move {
        handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(|e| format!("route dump: {e}"))
    })
    .await
}

#[async_trait]
impl Kernel for NetlinkKernel {
    async fn list(&self) -> Result<BTreeMap<Ipv4Net, KernelRoute>, String> {
        let routes = dump_routes().await?;
        Ok(routes.iter().filter_map(parse).collect())
    }

    async fn connected(&self) -> Result<Option<Vec<Ipv4Net>>, String> {
        let routes = dump_routes().await?;
        Ok(Some(routes.iter().filter_map(connected_subnet).collect()))
    }

    async fn replace(&self, prefix: Ipv4Net, route: &KernelRoute) -> Result<(), String> {
        let gw_if = self.gw_if.clone();
        let route = route.clone();
        run_in(None, move |handle| async move {
            let gw_index = index_of(&handle, &gw_if)
                .await?
                .ok_or_else(|| format!("gateway port {gw_if} is missing"))?;
            if route == KernelRoute::Local {
                neighbour(&handle, gw_index, prefix.addr(), true).await?;
            }
            let msg = message(prefix, &route, gw_index)?;
            handle
                .route()
                .add(msg)
                .replace()
                .execute()
                .await
                .map_err(|e| format!("route {prefix}: {e}"))
        })
        .await
    }

    async fn delete(&self, prefix: Ipv4Net, route: &KernelRoute) -> Result<(), String> {
        let gw_if = self.gw_if.clone();
        let route = route.clone();
        run_in(None, move |handle| async move {
            let gw_index = index_of(&handle, &gw_if).await?.unwrap_or(0);
            // Scope "nowhere" matches a route of any scope, as `ip route del` does.
            let msg = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(prefix.addr(), prefix.prefix_len())
                .protocol(RouteProtocol::Other(ROUTE_PROTO))
                .scope(RouteScope::NoWhere)
                .build();
            match handle.route().del(msg).execute().await {
                Ok(()) => {}
                Err(e) if is_gone(&e) => {}
                Err(e) => return Err(format!("delete route {prefix}: {e}")),
            }
            if route == KernelRoute::Local && gw_index != 0 {
                neighbour(&handle, gw_index, prefix.addr(), false).await?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, len: u8, scope: RouteScope, protocol: RouteProtocol) -> RouteMessage {
        RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst.parse().unwrap(), len)
            .output_interface(2)
            .scope(scope)
            .protocol(protocol)
            .build()
    }

    #[test]
    fn connected_subnets_are_link_routes_of_the_main_table_without_gateway() {
        let link = route("10.0.0.0", 24, RouteScope::Link, RouteProtocol::Kernel);
        assert_eq!(
            connected_subnet(&link),
            Some("10.0.0.0/24".parse().unwrap())
        );
        // Our container /32s, a route through a gateway, a default route: not connected.
        let ours = route(
            "10.1.2.5",
            32,
            RouteScope::Link,
            RouteProtocol::Other(ROUTE_PROTO),
        );
        assert_eq!(connected_subnet(&ours), None);
        let mut via = route("10.9.0.0", 16, RouteScope::Universe, RouteProtocol::Static);
        via.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(
                "10.0.0.1".parse().unwrap(),
            )));
        assert_eq!(connected_subnet(&via), None);
        let mut gateway_link = route("10.9.0.0", 16, RouteScope::Link, RouteProtocol::Static);
        gateway_link
            .attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(
                "10.0.0.1".parse().unwrap(),
            )));
        assert_eq!(connected_subnet(&gateway_link), None);
        // The local table (the host's own addresses, scope host) is not a subnet to route on.
        let mut local = route("10.0.0.21", 32, RouteScope::Host, RouteProtocol::Kernel);
        local.header.table = 255;
        local.header.kind = RouteType::Local;
        assert_eq!(connected_subnet(&local), None);
        let mut other_table = link.clone();
        other_table.attributes.push(RouteAttribute::Table(100));
        assert_eq!(connected_subnet(&other_table), None);
    }
}

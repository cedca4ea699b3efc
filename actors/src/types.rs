//! Values shared by the actors: a local endpoint (one container attachment) and what the
//! runtime asks for.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Where an actor (re)builds its state from after a start or a supervisor restart: this host's
/// endpoints as the master records them, with their OVS port numbers.
#[async_trait]
pub trait StateSource: Send + Sync + 'static {
    async fn endpoints(&self) -> Result<Vec<Endpoint>, String>;

    /// The master's intent the pipeline needs (none by default).
    async fn intent(&self) -> Result<std::sync::Arc<crate::intent::Intent>, String> {
        Ok(std::sync::Arc::default())
    }
}

/// An Ethernet address.
pub type Mac = [u8; 6];

/// The router MAC every host's gateway answers with (locally administered, the same on every
/// host so a container never sees it change).
pub const ROUTER_MAC: Mac = [0x02, 0x00, 0x0c, 0x0f, 0xab, 0x01];

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in mac.iter_mut() {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// A container's MAC, derived from its address (Contiv's scheme: 02:02 then the IPv4 octets),
/// so a restarted agent finds the same MAC without storing it.
pub fn mac_for(ip: Ipv4Addr) -> Mac {
    let o = ip.octets();
    [0x02, 0x02, o[0], o[1], o[2], o[3]]
}

/// What the runtime asks for: one interface of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachRequest {
    pub container_id: String,
    /// The container's network namespace (a path).
    pub netns: String,
    pub if_name: String,
    pub tenant: String,
    pub network: String,
    /// Empty when the container joins no group.
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Shown in the master's endpoint record.
    #[serde(default)]
    pub container_name: String,
}

impl AttachRequest {
    /// The endpoint id: unique per container interface, no '/'.
    pub fn endpoint_id(&self) -> String {
        endpoint_id(&self.container_id, &self.if_name)
    }

    /// The network's key, `tenant:network`.
    pub fn network_key(&self) -> String {
        format!("{}:{}", self.tenant, self.network)
    }

    /// The group's key, `tenant:group`, or empty.
    pub fn group_key(&self) -> String {
        if self.group.is_empty() {
            String::new()
        } else {
            format!("{}:{}", self.tenant, self.group)
        }
    }
}

/// The endpoint id of a container interface.
pub fn endpoint_id(container_id: &str, if_name: &str) -> String {
    format!("{container_id}-{if_name}").replace('/', "_")
}

/// The host end of a container's veth: a stable name derived from the endpoint id (at most 15
/// characters), so a restarted agent or a DEL without any record still finds it.
pub fn host_if_name(endpoint_id: &str) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in endpoint_id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("cv{:012x}", h & 0xffff_ffff_ffff)
}

/// A container attachment on this host, complete once attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub id: String,
    pub container_id: String,
    pub netns: String,
    pub if_name: String,
    pub tenant: String,
    /// `tenant:network`.
    pub network: String,
    /// `tenant:group` or empty.
    pub group: String,
    pub group_id: u32,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mac: Mac,
    pub host_if: String,
    /// The OVS port number of `host_if`; 0 until the port exists.
    pub ofport: u32,
    pub mtu: u32,
    pub container_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_short() {
        let a = host_if_name("abc-eth0");
        assert_eq!(a, host_if_name("abc-eth0"));
        assert_ne!(a, host_if_name("abd-eth0"));
        assert!(a.len() <= 15);
        assert_eq!(endpoint_id("c/1", "eth0"), "c_1-eth0");
    }

    #[test]
    fn macs_round_trip() {
        let mac = mac_for(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(mac_string(&mac), "02:02:0a:01:02:03");
        assert_eq!(parse_mac("02:02:0a:01:02:03"), Some(mac));
        assert_eq!(parse_mac("02:02:0a:01:02"), None);
        assert_eq!(parse_mac("zz:02:0a:01:02:03"), None);
    }
}

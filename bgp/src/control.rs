//! The daemon's control channel: JSON lines on a unix socket (announce/withdraw prefixes,
//! dump the Loc-RIB, peer status). Used by the interop tests and the benchmark.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::PeerConfig;
use crate::packet::{AsPath, Origin, PathAttrs, Prefix};
use crate::speaker::Speaker;

/// Attributes for routes we originate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAttrs {
    /// Unset: our address on each session.
    #[serde(default)]
    pub next_hop: Option<IpAddr>,
    #[serde(default)]
    pub as_path: Vec<u32>,
    #[serde(default)]
    pub origin: Option<Origin>,
    #[serde(default)]
    pub local_pref: Option<u32>,
    #[serde(default)]
    pub med: Option<u32>,
    #[serde(default)]
    pub communities: Vec<u32>,
}

impl RouteAttrs {
    pub fn to_path_attrs(&self) -> PathAttrs {
        PathAttrs {
            origin: self.origin.unwrap_or(Origin::Igp),
            as_path: AsPath::sequence(self.as_path.clone()),
            next_hop: self.next_hop,
            local_pref: self.local_pref,
            med: self.med,
            communities: self.communities.clone(),
            ..PathAttrs::default()
        }
    }
}

/// `count` consecutive prefixes of length `prefix_len` starting at `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixRange {
    pub start: IpAddr,
    pub count: u64,
    pub prefix_len: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("prefix range: prefix_len {0} is too long for the address family")]
    PrefixLen(u8),
    #[error("prefix range: {count} prefixes from {start} overflow the address space")]
    Overflow { start: IpAddr, count: u64 },
}

impl PrefixRange {
    pub fn prefixes(&self) -> Result<Vec<Prefix>, RangeError> {
        let mut out = Vec::with_capacity(self.count.min(1 << 24) as usize);
        match self.start {
            IpAddr::V4(a) => {
                if self.prefix_len > 32 {
                    return Err(RangeError::PrefixLen(self.prefix_len));
                }
                let step = 1u64 << (32 - u32::from(self.prefix_len));
                let base = u64::from(u32::from(a));
                if base + step * self.count > 1u64 << 32 {
                    return Err(RangeError::Overflow {
                        start: self.start,
                        count: self.count,
                    });
                }
                for i in 0..self.count {
                    let addr = std::net::Ipv4Addr::from((base + i * step) as u32);
                    let net = ipnet::Ipv4Net::new(addr, self.prefix_len)
                        .map_err(|_| RangeError::PrefixLen(self.prefix_len))?;
                    out.push(IpNet::V4(net.trunc()));
                }
            }
            IpAddr::V6(a) => {
                if self.prefix_len > 128 {
                    return Err(RangeError::PrefixLen(self.prefix_len));
                }
                let step = 1u128
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                let base = u128::from(a);
                for i in 0..u128::from(self.count) {
                    let v = base.checked_add(i * step).ok_or(RangeError::Overflow {
                        start: self.start,
                        count: self.count,
                    })?;
                    let net = ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(v), self.prefix_len)
                        .map_err(|_| RangeError::PrefixLen(self.prefix_len))?;
                    out.push(IpNet::V6(net.trunc()));
                }
            }
        }
        Ok(out)
    }
}

/// One control request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Announce {
        #[serde(default)]
        prefixes: Vec<Prefix>,
        #[serde(default)]
        range: Option<PrefixRange>,
        #[serde(default)]
        attrs: RouteAttrs,
    },
    Withdraw {
        #[serde(default)]
        prefixes: Vec<Prefix>,
        #[serde(default)]
        range: Option<PrefixRange>,
    },
    Peers,
    Rib,
    RibCount,
    Refresh {
        peer: IpAddr,
    },
    AddPeer {
        peer: PeerConfig,
    },
    RemovePeer {
        address: IpAddr,
    },
}

/// The answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Response {
    fn ok(data: Option<serde_json::Value>) -> Response {
        Response {
            ok: true,
            error: None,
            data,
        }
    }

    fn err(e: impl std::fmt::Display) -> Response {
        Response {
            ok: false,
            error: Some(e.to_string()),
            data: None,
        }
    }
}

fn collect(prefixes: Vec<Prefix>, range: Option<PrefixRange>) -> Result<Vec<Prefix>, RangeError> {
    let mut all: Vec<Prefix> = prefixes.into_iter().map(|p| p.trunc()).collect();
    if let Some(r) = range {
        all.extend(r.prefixes()?);
    }
    Ok(all)
}

/// Execute one request line against a speaker.
pub async fn execute(speaker: &Speaker, line: &str) -> Response {
    let request: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return Response::err(format!("request: {e}")),
    };
    let result: Result<Option<serde_json::Value>, String> = async {
        match request {
            Request::Announce {
                prefixes,
                range,
                attrs,
            } => {
                let all = collect(prefixes, range).map_err(|e| e.to_string())?;
                let n = all.len();
                speaker
                    .announce(all, attrs.to_path_attrs())
                    .map_err(|e| e.to_string())?;
                Ok(Some(serde_json::json!({ "announced": n })))
            }
            Request::Withdraw { prefixes, range } => {
                let all = collect(prefixes, range).map_err(|e| e.to_string())?;
                let n = all.len();
                speaker.withdraw(all).map_err(|e| e.to_string())?;
                Ok(Some(serde_json::json!({ "withdrawn": n })))
            }
            Request::Peers => {
                let states = speaker.peer_states().await.map_err(|e| e.to_string())?;
                serde_json::to_value(states)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            Request::Rib => {
                let rib = speaker.loc_rib().await.map_err(|e| e.to_string())?;
                serde_json::to_value(rib)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            Request::RibCount => {
                let n = speaker.loc_rib_len().await.map_err(|e| e.to_string())?;
                Ok(Some(serde_json::json!({ "count": n })))
            }
            Request::Refresh { peer } => {
                speaker.route_refresh(peer).map_err(|e| e.to_string())?;
                Ok(None)
            }
            Request::AddPeer { peer } => {
                speaker.add_peer(peer).await.map_err(|e| e.to_string())?;
                Ok(None)
            }
            Request::RemovePeer { address } => {
                let found = speaker
                    .remove_peer(address)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Some(serde_json::json!({ "removed": found })))
            }
        }
    }
    .await;
    match result {
        Ok(data) => Response::ok(data),
        Err(e) => Response::err(e),
    }
}

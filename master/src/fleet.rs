//! The fleet: the agents that registered (with the address they reach the masters from) and
//! the masters themselves (with their REST URL and route reflector), as records in the store,
//! so that every master knows all of them. The reflectors admit BGP sessions only from
//! registered agents, and any master tells an agent every master and reflector there is.
//!
//! Records are rewritten when what they say changes and otherwise every [`REFRESH_SECS`], so
//! a heartbeat every few seconds from thousands of agents does not become a store write each;
//! the leader sweeps records nobody refreshed for a long while.

use crate::error::ApiError;
use crate::keys;
use crate::master::Master;
use fabric_store::{Op, Txn};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

/// A live record is rewritten at least this often (seconds), so `seen` stays fresh enough for
/// the leader's sweep (which forgets records unseen for much longer).
pub const REFRESH_SECS: u64 = 60;

/// `/contiv/agents/<host>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub host: String,
    /// Where the agent's requests come from: its BGP sessions to the reflectors come from there
    /// too (the masters are one network away, whichever master it talks to).
    pub address: IpAddr,
    /// Unix seconds of the last write.
    pub seen: u64,
}

/// `/contiv/masters/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterRecord {
    pub id: String,
    /// The REST URL agents and netctl reach this master at.
    pub url: String,
    /// Where its route reflector accepts agents' sessions; none when it runs no reflector.
    #[serde(default)]
    pub reflector: Option<SocketAddr>,
    pub seen: u64,
}

/// The records, as the cache holds them.
#[derive(Debug, Default)]
pub struct Fleet {
    pub agents: BTreeMap<String, AgentRecord>,
    pub masters: BTreeMap<String, MasterRecord>,
}

impl Fleet {
    pub fn apply_agent(&mut self, host: &str, value: Option<&[u8]>) {
        match value.map(serde_json::from_slice::<AgentRecord>) {
            Some(Ok(record)) => {
                self.agents.insert(host.to_string(), record);
            }
            Some(Err(error)) => {
                tracing::warn!(%host, %error, "unreadable agent record; ignoring it");
                self.agents.remove(host);
            }
            None => {
                self.agents.remove(host);
            }
        }
    }

    pub fn apply_master(&mut self, id: &str, value: Option<&[u8]>) {
        match value.map(serde_json::from_slice::<MasterRecord>) {
            Some(Ok(record)) => {
                self.masters.insert(id.to_string(), record);
            }
            Some(Err(error)) => {
                tracing::warn!(%id, %error, "unreadable master record; ignoring it");
                self.masters.remove(id);
            }
            None => {
                self.masters.remove(id);
            }
        }
    }
}

/// Whether an agent's record must be (re)written.
pub fn agent_needs_write(old: Option<&AgentRecord>, address: IpAddr, now: u64) -> bool {
    match old {
        None => true,
        Some(r) => r.address != address || now.saturating_sub(r.seen) >= REFRESH_SECS,
    }
}

/// What an agent learns from any master: the fabric AS, every reflector, every master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetView {
    pub fabric_as: u32,
    pub reflectors: Vec<ReflectorAddr>,
    pub masters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReflectorAddr {
    pub address: IpAddr,
    pub port: u16,
}

impl Master {
    /// Records that `host`'s agent is registered and reaches us from `address` (a store write
    /// only when the record is missing, moved or due for a refresh).
    pub async fn record_agent(&self, host: &str, address: IpAddr) -> Result<(), ApiError> {
        let now = crate::auth::caller::now_secs();
        if !agent_needs_write(self.cache().fleet.agents.get(host), address, now) {
            return Ok(());
        }
        let record = AgentRecord {
            host: host.to_string(),
            address,
            seen: now,
        };
        self.put_record(keys::agent(host), &record).await
    }

    /// Publishes this master's own record (at start and then every [`REFRESH_SECS`]).
    pub async fn publish_master(&self, record: &MasterRecord) -> Result<(), ApiError> {
        self.put_record(keys::master(&record.id), record).await
    }

    async fn put_record<T: Serialize>(&self, key: String, record: &T) -> Result<(), ApiError> {
        let value = serde_json::to_vec(record)
            .map_err(|e| ApiError::new(500, None, None, e.to_string()))?;
        let ops = vec![Op::Put { key, value }];
        let txn = Txn {
            success: ops.clone(),
            ..Txn::default()
        };
        let outcome = self.store.txn(txn).await?;
        self.apply_local(outcome.revision, &ops);
        Ok(())
    }

    /// The fabric AS, every master's reflector and URL, for agents.
    pub fn fleet_view(&self) -> FleetView {
        let cache = self.cache();
        let fabric_as = cache
            .objects
            .get_typed::<fabric_model::objects::Global>(fabric_model::objects::GLOBAL_NAME)
            .and_then(|g| g.fabric_asn())
            .or_else(|| fabric_model::objects::Global::default().fabric_asn())
            .unwrap_or(65000);
        let masters = &cache.fleet.masters;
        FleetView {
            fabric_as,
            reflectors: masters
                .values()
                .filter_map(|m| m.reflector)
                .map(|r| ReflectorAddr {
                    address: r.ip(),
                    port: r.port(),
                })
                .collect(),
            masters: masters.values().map(|m| m.url.clone()).collect(),
        }
    }

    /// The addresses a reflector admits sessions from: every registered agent's, and the
    /// router address of every `Bgp` object (an agent's sessions may come from there when the
    /// reflector is on the fabric's own segment; for a router or a bare-metal server without
    /// an agent, its `Bgp` object is the administrator's word that it belongs to the fabric).
    pub fn admitted_peers(&self) -> BTreeSet<IpAddr> {
        let cache = self.cache();
        let mut admitted: BTreeSet<IpAddr> =
            cache.fleet.agents.values().map(|r| r.address).collect();
        admitted.extend(
            cache
                .objects
                .list_typed::<fabric_model::objects::Bgp>()
                .iter()
                .filter_map(|b| b.router_ip())
                .map(|net| IpAddr::V4(net.addr())),
        );
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_records_are_written_when_new_moved_or_old() {
        let a: IpAddr = "10.0.0.21".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "10.0.0.22".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let r = AgentRecord {
            host: "h".into(),
            address: a,
            seen: 1000,
        };
        assert!(agent_needs_write(None, a, 1000));
        assert!(!agent_needs_write(Some(&r), a, 1000 + REFRESH_SECS - 1));
        assert!(agent_needs_write(Some(&r), a, 1000 + REFRESH_SECS));
        assert!(agent_needs_write(Some(&r), b, 1001));
    }

    #[test]
    fn unreadable_records_are_dropped() {
        let mut f = Fleet::default();
        f.apply_agent("h", Some(br#"{"host":"h","address":"10.0.0.21","seen":5}"#));
        assert_eq!(f.agents.len(), 1);
        f.apply_agent("h", Some(b"not json"));
        assert!(f.agents.is_empty());
        f.apply_master(
            "m1",
            Some(br#"{"id":"m1","url":"https://10.0.0.10:9999","reflector":"10.0.0.10:179","seen":5}"#),
        );
        assert_eq!(
            f.masters.get("m1").and_then(|m| m.reflector),
            Some(
                "10.0.0.10:179"
                    .parse()
                    .unwrap_or(SocketAddr::from(([0; 4], 0)))
            )
        );
        f.apply_master("m1", None);
        assert!(f.masters.is_empty());
    }
}

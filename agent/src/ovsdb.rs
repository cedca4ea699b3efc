//! A small OVSDB client (RFC 7047 JSON-RPC over the unix socket `<ovs-rundir>/db.sock`):
//! add and remove bridge ports carrying our external_ids, create the gateway internal port,
//! read OpenFlow port numbers and MACs. One connection per call keeps it simple and lets
//! concurrent attaches run in parallel; ports added at the same time share one transaction.

use serde_json::{json, Value};
mod port_numbers;

use port_numbers::PortNumbers;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

const DB: &str = "Open_vSwitch";
/// How long to wait for ovs-vswitchd to give a new port its number.
const OFPORT_WAIT: Duration = Duration::from_secs(10);
/// external_ids key marking a port as ours, holding the endpoint id.
pub const EXT_ENDPOINT: &str = "contiv-endpoint";

#[derive(Debug, thiserror::Error)]
pub enum OvsdbError {
    #[error("ovsdb {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("ovsdb answered badly: {0}")]
    Protocol(String),
    #[error("ovsdb transaction failed: {0}")]
    Failed(String),
    #[error("port {0}: {1}")]
    Port(String, String),
}

/// A port of ours as OVSDB shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OvsPort {
    pub name: String,
    pub ofport: i64,
    pub external_ids: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Ovsdb {
    socket: PathBuf,
    bridge: String,
    batch: Arc<Mutex<Batch>>,
    numbers: Arc<Mutex<PortNumbers>>,
}

/// A port waiting to be added.
#[derive(Debug)]
struct PendingPort {
    name: String,
    kind: String,
    external_ids: Value,
    ofport_request: u32,
    done: oneshot::Sender<Result<(), String>>,
}

/// Ports added by concurrent attaches go to OVSDB together: one transaction, so ovs-vswitchd
/// reconfigures the bridge once for the whole burst instead of once per port.
#[derive(Debug, Default)]
struct Batch {
    pending: Vec<PendingPort>,
    /// A caller is draining `pending` (it transacts until it finds it empty).
    draining: bool,
}

fn map(pairs: &BTreeMap<String, String>) -> Value {
    json!([
        "map",
        pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}

fn read_map(value: &Value) -> BTreeMap<String, String> {
    value[1]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| Some((kv[0].as_str()?.to_string(), kv[1].as_str()?.to_string())))
        .collect()
}

impl Ovsdb {
    pub fn new(socket: PathBuf, bridge: &str) -> Ovsdb {
        Ovsdb {
            socket,
            bridge: bridge.to_string(),
            batch: Arc::default(),
            numbers: Arc::default(),
        }
    }

    fn io(&self, source: std::io::Error) -> OvsdbError {
        OvsdbError::Io {
            path: self.socket.display().to_string(),
            source,
        }
    }

    /// One transaction; returns the per-operation results, failing on any operation error.
    pub async fn transact(&self, ops: Vec<Value>) -> Result<Vec<Value>, OvsdbError> {
        let mut params = vec![json!(DB)];
        params.extend(ops);
        let request = json!({"method": "transact", "params": params, "id": 1});
        let mut stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.io(e))?;
        stream
            .write_all(request.to_string().as_bytes())
            .await
            .map_err(|e| self.io(e))?;
        let mut buf = Vec::new();
        let reply = loop {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.map_err(|e| self.io(e))?;
            if n == 0 {
                return Err(OvsdbError::Protocol("connection closed".into()));
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut values = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            match values.next() {
                Some(Ok(v)) if v["id"] == 1 => break v,
                Some(Ok(_)) => {
                    // A notification or echo: drop it and keep reading.
                    let used = values.byte_offset();
                    buf.drain(..used);
                }
                Some(Err(e)) if e.is_eof() => continue,
                Some(Err(e)) => return Err(OvsdbError::Protocol(e.to_string())),
                None => continue,
            }
        };
        if !reply["error"].is_null() {
            return Err(OvsdbError::Failed(reply["error"].to_string()));
        }
        let results = reply["result"]
            .as_array()
            .cloned()
            .ok_or_else(|| OvsdbError::Protocol(format!("no result in {reply}")))?;
        if let Some(err) = results.iter().find(|r| !r["error"].is_null()) {
            return Err(OvsdbError::Failed(err.to_string()));
        }
        Ok(results)
    }

    async fn select_interface(&self, name: &str) -> Result<Option<Value>, OvsdbError> {
        let results = self
            .transact(vec![json!({"op": "select", "table": "Interface",
                "where": [["name", "==", name]], "columns": ["ofport", "error", "mac_in_use", "external_ids"]})])
            .await?;
        Ok(results
            .first()
            .and_then(|r| r["rows"].as_array())
            .and_then(|rows| rows.first())
            .cloned())
    }

    /// Adds port `name` (type "" for a veth, "internal" for the gateway) with `external_ids`,
    /// unless it exists; returns its OpenFlow port number once ovs-vswitchd assigned it.
    pub async fn add_port(
        &self,
        name: &str,
        kind: &str,
        external_ids: &BTreeMap<String, String>,
    ) -> Result<u32, OvsdbError> {
        let n = self.insert_port(name, kind, external_ids).await?;
        self.confirm(name, n).await
    }

    /// Adds port `name` as [`add_port`](Self::add_port) does, asking OVS for a number of our
    /// choosing, and returns that number as soon as the transaction commits, before
    /// ovs-vswitchd has added the port; [`confirm`](Self::confirm) waits for that. A port that
    /// exists already gives its assigned number.
    pub async fn insert_port(
        &self,
        name: &str,
        kind: &str,
        external_ids: &BTreeMap<String, String>,
    ) -> Result<u32, OvsdbError> {
        if self.select_interface(name).await?.is_some() {
            return self.ofport(name).await;
        }
        let ofport_request = self.reserve(name).await?;
        let (done, added) = oneshot::channel();
        let lead = {
            let mut batch = self
                .batch
                .lock()
                .map_err(|_| OvsdbError::Protocol("batch lock".into()))?;
            batch.pending.push(PendingPort {
                name: name.to_string(),
                kind: kind.to_string(),
                external_ids: map(external_ids),
                ofport_request,
                done,
            });
            !std::mem::replace(&mut batch.draining, true)
        };
        if lead {
            self.drain().await;
        }
        let added = added
            .await
            .map_err(|_| OvsdbError::Port(name.into(), "the batch was dropped".into()))
            .and_then(|r| r.map_err(|e| OvsdbError::Port(name.into(), e)));
        if added.is_err() {
            self.release(name);
        }
        added.map(|()| ofport_request)
    }

    /// Waits until ovs-vswitchd has added port `name` with number `expected`.
    pub async fn confirm(&self, name: &str, expected: u32) -> Result<u32, OvsdbError> {
        let got = self.ofport(name).await?;
        if got != expected {
            return Err(OvsdbError::Port(
                name.into(),
                format!("ovs-vswitchd gave it port {got}, not the {expected} requested"),
            ));
        }
        Ok(got)
    }

    /// A free OpenFlow port number for `name` (every number OVS has is read once first).
    async fn reserve(&self, name: &str) -> Result<u32, OvsdbError> {
        let loaded = self.lock_numbers()?.loaded();
        if !loaded {
            let results = self
                .transact(vec![
                    json!({"op": "select", "table": "Interface", "where": [],
                    "columns": ["name", "ofport", "ofport_request"]}),
                ])
                .await?;
            let rows: Vec<(String, Vec<u32>)> = results
                .first()
                .and_then(|r| r["rows"].as_array())
                .into_iter()
                .flatten()
                .map(|row| {
                    let name = row["name"].as_str().unwrap_or_default().to_string();
                    let numbers = [&row["ofport"], &row["ofport_request"]]
                        .into_iter()
                        .filter_map(|v| v.as_i64())
                        .filter_map(|n| u32::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .collect();
                    (name, numbers)
                })
                .collect();
            self.lock_numbers()?.load(rows);
        }
        self.lock_numbers()?
            .take(name)
            .ok_or_else(|| OvsdbError::Port(name.into(), "no free OpenFlow port number".into()))
    }

    fn release(&self, name: &str) {
        if let Ok(mut numbers) = self.numbers.lock() {
            numbers.free(name);
        }
    }

    fn lock_numbers(&self) -> Result<std::sync::MutexGuard<'_, PortNumbers>, OvsdbError> {
        self.numbers
            .lock()
            .map_err(|_| OvsdbError::Protocol("port number lock".into()))
    }

    /// Transacts pending ports until there are none (only one caller drains at a time).
    async fn drain(&self) {
        loop {
            let ports = match self.batch.lock() {
                Ok(mut batch) => {
                    if batch.pending.is_empty() {
                        batch.draining = false;
                        return;
                    }
                    std::mem::take(&mut batch.pending)
                }
                Err(_) => return,
            };
            let mut ops = Vec::new();
            let mut refs = Vec::new();
            for (i, p) in ports.iter().enumerate() {
                ops.push(
                    json!({"op": "insert", "table": "Interface", "uuid-name": format!("i{i}"),
                    "row": {"name": p.name, "type": p.kind, "external_ids": p.external_ids,
                            "ofport_request": p.ofport_request}}),
                );
                ops.push(json!({"op": "insert", "table": "Port", "uuid-name": format!("p{i}"),
                    "row": {"name": p.name, "interfaces": ["named-uuid", format!("i{i}")], "external_ids": p.external_ids}}));
                refs.push(json!(["named-uuid", format!("p{i}")]));
            }
            ops.push(
                json!({"op": "mutate", "table": "Bridge", "where": [["name", "==", self.bridge]],
                "mutations": [["ports", "insert", ["set", refs]]]}),
            );
            let result = self.transact(ops).await;
            tracing::debug!(
                ports = ports.len(),
                ok = result.is_ok(),
                "ports added in one transaction"
            );
            match result {
                Ok(_) => {
                    for p in ports {
                        let _ = p.done.send(Ok(()));
                    }
                }
                // One bad port fails the whole transaction: add them one by one instead.
                Err(_) if ports.len() > 1 => {
                    for p in ports {
                        let one = self.add_one(&p).await.map_err(|e| e.to_string());
                        let _ = p.done.send(one);
                    }
                }
                Err(e) => {
                    for p in ports {
                        let _ = p.done.send(Err(e.to_string()));
                    }
                }
            }
        }
    }

    async fn add_one(&self, p: &PendingPort) -> Result<(), OvsdbError> {
        if self.select_interface(&p.name).await?.is_some() {
            return Ok(());
        }
        self.transact(vec![
            json!({"op": "insert", "table": "Interface", "uuid-name": "iface",
                   "row": {"name": p.name, "type": p.kind, "external_ids": p.external_ids,
                           "ofport_request": p.ofport_request}}),
            json!({"op": "insert", "table": "Port", "uuid-name": "port",
                   "row": {"name": p.name, "interfaces": ["named-uuid", "iface"], "external_ids": p.external_ids}}),
            json!({"op": "mutate", "table": "Bridge", "where": [["name", "==", self.bridge]],
                   "mutations": [["ports", "insert", ["set", [["named-uuid", "port"]]]]]}),
        ])
        .await
        .map(drop)
    }

    /// Waits for the port's OpenFlow number.
    pub async fn ofport(&self, name: &str) -> Result<u32, OvsdbError> {
        let deadline = Instant::now() + OFPORT_WAIT;
        loop {
            let row = self.select_interface(name).await?;
            let Some(row) = row else {
                return Err(OvsdbError::Port(name.into(), "no such interface".into()));
            };
            match row["ofport"].as_i64() {
                Some(n) if n > 0 => {
                    return u32::try_from(n)
                        .map_err(|_| OvsdbError::Port(name.into(), format!("ofport {n}")))
                }
                Some(-1) => {
                    return Err(OvsdbError::Port(
                        name.into(),
                        format!("ovs-vswitchd could not add it: {}", row["error"]),
                    ))
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(OvsdbError::Port(
                    name.into(),
                    "ovs-vswitchd gave it no port number".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The MAC OVS uses for an interface (the gateway port's).
    pub async fn mac_in_use(&self, name: &str) -> Result<Option<String>, OvsdbError> {
        Ok(self
            .select_interface(name)
            .await?
            .and_then(|row| row["mac_in_use"].as_str().map(String::from)))
    }

    /// Removes port `name` from the bridge; absent is fine.
    pub async fn del_port(&self, name: &str) -> Result<(), OvsdbError> {
        let results = self
            .transact(vec![json!({"op": "select", "table": "Port",
                "where": [["name", "==", name]], "columns": ["_uuid"]})])
            .await?;
        let uuids: Vec<Value> = results
            .first()
            .and_then(|r| r["rows"].as_array())
            .into_iter()
            .flatten()
            .map(|row| row["_uuid"].clone())
            .collect();
        if uuids.is_empty() {
            self.release(name);
            return Ok(());
        }
        self.transact(vec![json!({"op": "mutate", "table": "Bridge",
            "where": [["name", "==", self.bridge]],
            "mutations": [["ports", "delete", ["set", uuids]]]})])
            .await?;
        self.release(name);
        Ok(())
    }

    /// Every interface carrying external_ids key `key`.
    pub async fn ports_with(&self, key: &str) -> Result<Vec<OvsPort>, OvsdbError> {
        let results = self
            .transact(vec![
                json!({"op": "select", "table": "Interface", "where": [],
                "columns": ["name", "ofport", "external_ids"]}),
            ])
            .await?;
        Ok(results
            .first()
            .and_then(|r| r["rows"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|row| {
                let external_ids = read_map(&row["external_ids"]);
                external_ids.contains_key(key).then(|| OvsPort {
                    name: row["name"].as_str().unwrap_or_default().to_string(),
                    ofport: row["ofport"].as_i64().unwrap_or(-1),
                    external_ids,
                })
            })
            .collect())
    }
}

//! The attach steps as this agent implements them: addresses from this host's reserve (or the
//! master's IPAM), endpoint records in the master, veth wiring through netlink, the OVS port
//! through OVSDB, flows through the flow-writer actor, routes through the route actor.

use crate::flows::PipelineCompiler;
use crate::master_client::MasterClient;
use crate::netlink;
use crate::ovsdb::{Ovsdb, EXT_ENDPOINT};
use crate::reserve::Reserve;
use actix::Addr;
use async_trait::async_trait;
use fabric_actors::endpoint::{AttachOps, ErrorKind, StepError};
use fabric_actors::flows::{FlowWriter, Remove, Upsert};
use fabric_actors::routes::{AddLocal, RemoveLocal, RouteActor};
use fabric_actors::types::{
    host_if_name, mac_for, mac_string, AttachRequest, Endpoint, StateSource,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// The MTU of a container interface when the CNI config sets none.
pub const DEFAULT_MTU: u32 = 1500;
/// external_ids keys on our OVS ports besides the endpoint id.
const EXT_IP: &str = "contiv-ip";

pub struct AgentOps {
    pub host: String,
    pub master: MasterClient,
    pub ovs: Ovsdb,
    pub flows: Addr<FlowWriter<PipelineCompiler>>,
    pub routes: Addr<RouteActor>,
    /// Addresses the master keeps for this host's next containers.
    pub reserve: Arc<Reserve>,
}

impl AgentOps {
    fn source(&self) -> Desired {
        Desired {
            host: self.host.clone(),
            master: self.master.clone(),
            ovs: self.ovs.clone(),
        }
    }
}

/// A namespace path that is not there is the request's fault, not the data plane's.
fn netns_exists(netns: &str) -> Result<(), StepError> {
    if std::path::Path::new(netns).exists() {
        return Ok(());
    }
    Err(StepError::new(
        ErrorKind::Invalid,
        format!("network namespace {netns} does not exist"),
    ))
}

fn dataplane(e: impl std::fmt::Display) -> StepError {
    StepError::new(ErrorKind::Dataplane, e.to_string())
}

fn mailbox(e: impl std::fmt::Display) -> StepError {
    StepError::new(ErrorKind::Dataplane, format!("actor mailbox: {e}"))
}

/// Rebuilds an endpoint from the master's record and its network (subnet length, gateway).
pub fn endpoint_from_record(record: &Value, networks: &HashMap<String, Value>) -> Option<Endpoint> {
    let id = record["endpointID"].as_str()?.to_string();
    let network = record["network"].as_str()?.to_string();
    let ip: Ipv4Addr = record["ipAddress"][0].as_str()?.parse().ok()?;
    let net = networks.get(&network)?;
    let prefix_len = net["subnet"]
        .as_str()
        .and_then(|s| s.split('/').nth(1))
        .and_then(|l| l.parse().ok())?;
    let gateway = net["gateway"].as_str().and_then(|g| g.parse().ok());
    let labels: Value = record["labels"]
        .as_str()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    Some(Endpoint {
        host_if: host_if_name(&id),
        id,
        container_id: record["containerID"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        netns: labels["netns"].as_str().unwrap_or_default().to_string(),
        if_name: record["intfName"].as_str().unwrap_or("eth0").to_string(),
        tenant: network.split(':').next().unwrap_or_default().to_string(),
        group: record["endpointGroupKey"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        group_id: record["endpointGroupId"].as_u64().unwrap_or(0) as u32,
        network,
        ip,
        prefix_len,
        gateway,
        mac: mac_for(ip),
        ofport: 0,
        mtu: labels["mtu"].as_u64().map_or(DEFAULT_MTU, |m| m as u32),
        container_name: record["containerName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

/// This host's desired state: the master's endpoint records, with OVS port numbers. What the
/// agent reconciles on start and what its actors rebuild from after a restart.
#[derive(Clone)]
pub struct Desired {
    pub host: String,
    pub master: MasterClient,
    pub ovs: Ovsdb,
}

#[async_trait]
impl StateSource for Desired {
    async fn endpoints(&self) -> Result<Vec<Endpoint>, String> {
        self.desired().await.map_err(|e| e.message)
    }

    async fn intent(&self) -> Result<std::sync::Arc<fabric_actors::intent::Intent>, String> {
        let state = self.master.get_state().await.map_err(|e| e.message)?;
        let mut view = fabric_actors::intent::IntentView::new(&self.host);
        view.snapshot(&state);
        Ok(view.intent())
    }
}

impl Desired {
    /// Networks by key, from a state snapshot.
    fn networks(state: &Value) -> HashMap<String, Value> {
        state["objects"]["networks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| Some((n["key"].as_str()?.to_string(), n.clone())))
            .collect()
    }

    /// This host's endpoints as the master records them, with their OVS port numbers.
    pub async fn desired(&self) -> Result<Vec<Endpoint>, StepError> {
        let state = self.master.get_state().await?;
        let networks = Self::networks(&state);
        let ports: HashMap<String, i64> = self
            .ovs
            .ports_with(EXT_ENDPOINT)
            .await
            .map_err(dataplane)?
            .into_iter()
            .map(|p| (p.name, p.ofport))
            .collect();
        Ok(state["objects"]["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["homingHost"] == self.host.as_str())
            .filter_map(|r| endpoint_from_record(r, &networks))
            .map(|mut ep| {
                ep.ofport = ports
                    .get(&ep.host_if)
                    .copied()
                    .filter(|p| *p > 0)
                    .unwrap_or(0) as u32;
                ep
            })
            .collect())
    }

    /// Removes OVS ports and veths of ours that no recorded endpoint owns (an ADD that died
    /// half-way while the agent was killed).
    pub async fn sweep_orphans(&self, keep: &[Endpoint]) -> Result<usize, StepError> {
        let mut removed = 0;
        for port in self.ovs.ports_with(EXT_ENDPOINT).await.map_err(dataplane)? {
            if keep.iter().any(|e| e.host_if == port.name) {
                continue;
            }
            tracing::info!(port = %port.name, "removing an orphaned port");
            self.ovs.del_port(&port.name).await.map_err(dataplane)?;
            netlink::unwire(&port.name).await.map_err(dataplane)?;
            if let (Some(network), Some(ip)) = (
                port.external_ids.get("contiv-network"),
                port.external_ids
                    .get(EXT_IP)
                    .and_then(|i| i.parse::<IpAddr>().ok()),
            ) {
                let owner = port
                    .external_ids
                    .get(EXT_ENDPOINT)
                    .map_or("", String::as_str);
                self.master.release(network, ip, owner, &self.host).await?;
            }
            removed += 1;
        }
        Ok(removed)
    }
}

#[async_trait]
impl AttachOps for AgentOps {
    async fn allocate(&self, req: &AttachRequest) -> Result<Endpoint, StepError> {
        let id = req.endpoint_id();
        let network = req.network_key();
        let group_id = match req.group_key() {
            g if g.is_empty() => 0,
            g => self.master.group_id(&g).await?,
        };
        let (ip, prefix_len, gateway) = match self.reserve.take(&network, &req.group_key()) {
            Some(r) => (r.ip, r.prefix_len, r.gateway),
            None => {
                let a = self
                    .master
                    .allocate(&network, &req.group_key(), &id)
                    .await?;
                let ip: Ipv4Addr = a["ipAddress"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        StepError::new(
                            ErrorKind::MasterRefused,
                            format!("netmaster gave no IPv4 address: {a}"),
                        )
                    })?;
                let gateway = a["gateway"].as_str().and_then(|g| g.parse().ok());
                (ip, a["prefixLen"].as_u64().unwrap_or(32) as u8, gateway)
            }
        };
        Ok(Endpoint {
            host_if: host_if_name(&id),
            id,
            container_id: req.container_id.clone(),
            netns: req.netns.clone(),
            if_name: req.if_name.clone(),
            tenant: req.tenant.clone(),
            network,
            group: req.group_key(),
            group_id,
            ip,
            prefix_len,
            gateway,
            mac: mac_for(ip),
            ofport: 0,
            mtu: req.mtu.unwrap_or(DEFAULT_MTU),
            container_name: req.container_name.clone(),
        })
    }

    async fn release(&self, ep: &Endpoint) -> Result<(), StepError> {
        self.master
            .release(&ep.network, IpAddr::V4(ep.ip), &ep.id, &self.host)
            .await
    }

    async fn prewire(&self, req: &AttachRequest) -> Result<(), StepError> {
        netns_exists(&req.netns)?;
        let host_if = host_if_name(&req.endpoint_id());
        let mtu = req.mtu.unwrap_or(DEFAULT_MTU);
        netlink::prewire(&host_if, &req.if_name, &req.netns, mtu)
            .await
            .map_err(dataplane)
    }

    async fn wire(&self, ep: &Endpoint) -> Result<(), StepError> {
        netns_exists(&ep.netns)?;
        netlink::wire(ep).await.map_err(dataplane)
    }

    async fn unwire(&self, ep: &Endpoint) -> Result<(), StepError> {
        netlink::unwire(&ep.host_if).await.map_err(dataplane)
    }

    async fn add_port(&self, ep: &Endpoint) -> Result<u32, StepError> {
        let ids = BTreeMap::from([
            (EXT_ENDPOINT.to_string(), ep.id.clone()),
            (EXT_IP.to_string(), ep.ip.to_string()),
            ("contiv-network".to_string(), ep.network.clone()),
            ("attached-mac".to_string(), mac_string(&ep.mac)),
        ]);
        // The number is ours as soon as OVSDB commits; ovs-vswitchd adds the port while the
        // flows go in, and `add_flows` confirms the number.
        self.ovs
            .insert_port(&ep.host_if, "", &ids)
            .await
            .map_err(dataplane)
    }

    async fn del_port(&self, ep: &Endpoint) -> Result<(), StepError> {
        self.ovs.del_port(&ep.host_if).await.map_err(dataplane)
    }

    async fn add_flows(&self, ep: &Endpoint) -> Result<(), StepError> {
        let flows = async {
            self.flows
                .send(Upsert(ep.clone()))
                .await
                .map_err(mailbox)?
                .map_err(dataplane)
        };
        let port = async {
            self.ovs
                .confirm(&ep.host_if, ep.ofport)
                .await
                .map_err(dataplane)
        };
        let (flows, port) = futures::join!(flows, port);
        port?;
        flows
    }

    async fn del_flows(&self, ep: &Endpoint) -> Result<(), StepError> {
        self.flows
            .send(Remove(ep.id.clone()))
            .await
            .map_err(mailbox)?
            .map_err(dataplane)
    }

    async fn add_route(&self, ep: &Endpoint) -> Result<(), StepError> {
        self.routes
            .send(AddLocal(ep.ip))
            .await
            .map_err(mailbox)?
            .map_err(dataplane)
    }

    async fn del_route(&self, ep: &Endpoint) -> Result<(), StepError> {
        self.routes
            .send(RemoveLocal(ep.ip))
            .await
            .map_err(mailbox)?
            .map_err(dataplane)
    }

    async fn record(&self, ep: &Endpoint) -> Result<(), StepError> {
        let labels = json!({"netns": ep.netns, "mtu": ep.mtu}).to_string();
        let body = json!({
            "endpointID": ep.id,
            "network": ep.network,
            "endpointGroupKey": ep.group,
            "endpointGroupId": ep.group_id,
            "ipAddress": [ep.ip.to_string()],
            "macAddress": mac_string(&ep.mac),
            "homingHost": self.host,
            "intfName": ep.if_name,
            "virtualPort": ep.host_if,
            "containerID": ep.container_id,
            "containerName": ep.container_name,
            "labels": labels,
        });
        let recorded = self.master.record(&ep.id, body).await;
        if let Err(e) = &recorded {
            if e.message.contains("no longer reserved") {
                self.reserve.forget(&ep.network);
            }
        }
        recorded
    }

    async fn unrecord(&self, ep: &Endpoint) -> Result<(), StepError> {
        self.master.unrecord(&ep.id).await
    }

    async fn check(&self, ep: &Endpoint) -> Result<(), StepError> {
        netlink::check(ep).await.map_err(dataplane)?;
        let port = self.ovs.ofport(&ep.host_if).await.map_err(dataplane)?;
        if port != ep.ofport {
            return Err(dataplane(format!(
                "OVS port {} has number {port}, expected {}",
                ep.host_if, ep.ofport
            )));
        }
        Ok(())
    }

    async fn lookup(&self, id: &str) -> Result<Option<Endpoint>, StepError> {
        let Some(record) = self.master.endpoint(id).await? else {
            return Ok(None);
        };
        if record["homingHost"] != self.host.as_str() {
            return Ok(None);
        }
        let state = self.master.get_state().await?;
        Ok(endpoint_from_record(&record, &Desired::networks(&state)))
    }

    async fn sweep(&self, id: &str) -> Result<(), StepError> {
        let host_if = host_if_name(id);
        self.ovs.del_port(&host_if).await.map_err(dataplane)?;
        netlink::unwire(&host_if).await.map_err(dataplane)
    }

    async fn restore(&self) -> Result<Vec<Endpoint>, StepError> {
        self.source().desired().await
    }
}

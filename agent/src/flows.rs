//! The host's flows: the `pipeline` crate compiles them from the local endpoints and the
//! master's intent ([`PipelineCompiler`]), and `openflow::FlowWriter` installs the difference
//! under our cookie in one atomic bundle ([`OpenFlowSink`]).

use async_trait::async_trait;
use fabric_actors::flows::{Compiler, FlowSink, HostInput};
use openflow::{Connection, Flow, FlowWriter};
use pipeline::{GatewayPort, GroupInput, LocalEndpoint, NetworkInput, RemoteEndpoint, TenantInput};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The cookie on every flow we install (the writer owns exactly this cookie).
pub const COOKIE: u64 = pipeline::layout::DEFAULT_COOKIE;

/// FNV-1a, 32 bits: stable ids from names across restarts and hosts.
fn fnv32(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A tenant's VRF id and conntrack zone: derived from its name, so every host and every
/// restart gives the same ones without coordination.
pub fn tenant_input(name: &str) -> TenantInput {
    let h = fnv32(name);
    TenantInput {
        name: name.to_string(),
        vrf: h.max(1),
        zone: (h % 65_535) as u16 + 1,
    }
}

/// Builds the pipeline's input and compiles it.
pub struct PipelineCompiler;

impl PipelineCompiler {
    pub fn input(host: &HostInput) -> pipeline::HostInput {
        let mut input = pipeline::HostInput::new(
            host.router_mac,
            GatewayPort {
                ofport: host.gw_port,
                mac: host.gw_mac,
            },
        );
        input.cookie = COOKIE;
        let intent = &host.intent;
        let mut tenants: BTreeSet<&str> = intent.tenants.iter().map(String::as_str).collect();
        tenants.extend(host.endpoints.values().map(|e| e.tenant.as_str()));
        tenants.extend(intent.remote.values().map(|(t, _)| t.as_str()));
        input.tenants = tenants.into_iter().map(tenant_input).collect();
        input.networks = intent
            .networks
            .values()
            .filter_map(|n| match NetworkInput::from_model(n) {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!(error = %e, "network left out of the pipeline");
                    None
                }
            })
            .collect();
        input.groups = intent
            .groups
            .values()
            .map(|(g, id)| GroupInput::from_model(g, *id))
            .collect();
        input.rules = intent.rules.values().cloned().collect();
        // One local endpoint per address (a second one with the same address would be refused).
        let mut local: BTreeMap<(String, std::net::Ipv4Addr), LocalEndpoint> = BTreeMap::new();
        for ep in host.endpoints.values().filter(|e| e.ofport != 0) {
            local.insert(
                (ep.tenant.clone(), ep.ip),
                LocalEndpoint {
                    ofport: ep.ofport,
                    mac: ep.mac,
                    ipv4: ep.ip,
                    tenant: ep.tenant.clone(),
                    group: ep.group_id,
                },
            );
        }
        // Every endpoint of this host, with a port or not yet, is not remote.
        let on_host: BTreeSet<(&str, std::net::Ipv4Addr)> = host
            .endpoints
            .values()
            .map(|e| (e.tenant.as_str(), e.ip))
            .collect();
        input.remote_endpoints = intent
            .remote
            .iter()
            .filter(|(ip, (t, _))| !on_host.contains(&(t.as_str(), **ip)))
            .map(|(ip, (tenant, group))| RemoteEndpoint {
                ipv4: *ip,
                tenant: tenant.clone(),
                group: *group,
            })
            .collect();
        input.local_endpoints = local.into_values().collect();
        input
    }
}

impl Compiler for PipelineCompiler {
    type Flow = Flow;

    fn compile(&self, host: &HostInput) -> Result<BTreeSet<Flow>, String> {
        let compiled = pipeline::compile(&Self::input(host)).map_err(|e| e.to_string())?;
        for w in &compiled.warnings {
            tracing::debug!(warning = %w, "pipeline");
        }
        Ok(compiled.flows)
    }
}

/// Installs flow sets through `openflow::FlowWriter` on the bridge's management socket,
/// connecting on first use and again after a failure. It keeps the last set installed and
/// hands the writer only the difference to the next one.
pub struct OpenFlowSink {
    target: PathBuf,
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    writer: Option<FlowWriter>,
    /// The last desired set the switch took, while the writer knows what is installed.
    last: Option<BTreeSet<Flow>>,
}

impl OpenFlowSink {
    pub fn new(target: PathBuf) -> OpenFlowSink {
        OpenFlowSink {
            target,
            state: Mutex::default(),
        }
    }
}

#[async_trait]
impl FlowSink<Flow> for OpenFlowSink {
    async fn sync(&self, desired: BTreeSet<Flow>) -> Result<usize, String> {
        let mut state = self.state.lock().await;
        if state.writer.is_none() {
            let conn = Connection::connect(&self.target)
                .await
                .map_err(|e| format!("openflow {}: {e}", self.target.display()))?;
            let writer = FlowWriter::new(Arc::new(conn), COOKIE, u64::MAX)
                .await
                .map_err(|e| format!("flow-writer: {e}"))?;
            state.writer = Some(writer);
            state.last = None;
        }
        let last = state.last.take();
        let Some(writer) = state.writer.as_mut() else {
            return Err("no flow-writer".into());
        };
        let result = match &last {
            Some(last) => {
                let added = desired.difference(last).cloned();
                let removed = last.difference(&desired).cloned();
                writer.apply(added, removed).await
            }
            None => writer.sync(desired.iter().cloned()).await,
        };
        match result {
            Ok(stats) => {
                state.last = Some(desired);
                Ok(stats.total())
            }
            Err(e) => {
                // Reconnect next time; the writer reads the switch again then.
                state.writer = None;
                Err(format!("flow sync: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_stable_and_nonzero() {
        let a = tenant_input("default");
        assert_eq!(a, tenant_input("default"));
        assert_ne!(a.vrf, tenant_input("blue").vrf);
        assert!(a.vrf != 0 && a.zone != 0);
    }
}

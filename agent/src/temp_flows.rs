//! TEMPORARY minimal pipeline, until the `pipeline` crate (classification, spoof guard, policy,
//! conntrack, per-tenant VRFs) lands: native L3 forwarding only, as `openflow` flows that the
//! real flow-writer ([`OpenFlowSink`] over `openflow::FlowWriter`) installs by difference,
//! under our cookie, in one atomic bundle.
//!
//! - table 0: ARP from a container for any address is answered with the router MAC (only for
//!   the container's own source address); IPv4 from a container with its own source, and
//!   IPv4 from the gateway port, go to table 10; everything else drops.
//! - table 10: a local destination goes to its port with the router MAC as source; anything
//!   else goes to the gateway port towards the host kernel.

use async_trait::async_trait;
use fabric_actors::flows::{Compiler, FlowSink, HostInput};
use fabric_actors::types::Mac;
use openflow::flow::{port, proto};
use openflow::{Action, Connection, Field, Flow, FlowWriter, Masked, Match};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The cookie on every flow we install (the writer owns exactly this cookie).
pub const COOKIE: u64 = 0x5c0f_0001;
const FORWARD: u8 = 10;

pub struct TempPipeline;

fn mac(m: &Mac) -> u64 {
    m.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

fn flow(table: u8, priority: u16, matches: Match, actions: Vec<Action>, goto: Option<u8>) -> Flow {
    Flow {
        table,
        priority,
        matches,
        actions,
        goto_table: goto,
        cookie: COOKIE,
    }
}

fn mv(src: Field, dst: Field, n_bits: u16) -> Action {
    Action::Move {
        src,
        src_ofs: 0,
        dst,
        dst_ofs: 0,
        n_bits,
    }
}

fn set(field: Field, value: u64) -> Action {
    Action::SetField { field, value }
}

impl Compiler for TempPipeline {
    type Flow = Flow;

    fn compile(&self, input: &HostInput) -> BTreeSet<Flow> {
        let rmac = mac(&input.router_mac);
        let gw = input.gw_port;
        let ip = || Match {
            eth_type: Some(proto::ETH_IPV4),
            ..Match::default()
        };
        let mut flows = BTreeSet::new();
        flows.insert(flow(0, 0, Match::default(), vec![], None));
        flows.insert(flow(FORWARD, 0, Match::default(), vec![], None));
        if gw != 0 {
            flows.insert(flow(
                0,
                100,
                Match {
                    in_port: Some(gw),
                    ..ip()
                },
                vec![],
                Some(FORWARD),
            ));
            flows.insert(flow(
                FORWARD,
                10,
                ip(),
                vec![
                    set(Field::EthSrc, rmac),
                    set(Field::EthDst, mac(&input.gw_mac)),
                    Action::Output(gw),
                ],
                None,
            ));
        }
        for ep in input.endpoints.values().filter(|e| e.ofport != 0) {
            let p = ep.ofport;
            let arp = Match {
                in_port: Some(p),
                eth_type: Some(proto::ETH_ARP),
                arp_op: Some(1),
                arp_spa: Some(Masked::exact(ep.ip)),
                ..Match::default()
            };
            flows.insert(flow(
                0,
                200,
                arp,
                vec![
                    mv(Field::EthSrc, Field::EthDst, 48),
                    set(Field::EthSrc, rmac),
                    set(Field::ArpOp, 2),
                    mv(Field::ArpSha, Field::ArpTha, 48),
                    set(Field::ArpSha, rmac),
                    mv(Field::ArpTpa, Field::Reg(0), 32),
                    mv(Field::ArpSpa, Field::ArpTpa, 32),
                    mv(Field::Reg(0), Field::ArpSpa, 32),
                    Action::Output(port::IN_PORT),
                ],
                None,
            ));
            let from = Match {
                in_port: Some(p),
                ipv4_src: Some(Masked::exact(ep.ip)),
                ..ip()
            };
            flows.insert(flow(0, 100, from, vec![], Some(FORWARD)));
            let to = Match {
                ipv4_dst: Some(Masked::exact(ep.ip)),
                ..ip()
            };
            flows.insert(flow(
                FORWARD,
                100,
                to,
                vec![
                    set(Field::EthSrc, rmac),
                    set(Field::EthDst, mac(&ep.mac)),
                    Action::Output(p),
                ],
                None,
            ));
        }
        flows
    }
}

/// Installs flow sets through `openflow::FlowWriter` on the bridge's management socket,
/// connecting on first use and again after a failure.
pub struct OpenFlowSink {
    target: PathBuf,
    writer: Mutex<Option<FlowWriter>>,
}

impl OpenFlowSink {
    pub fn new(target: PathBuf) -> OpenFlowSink {
        OpenFlowSink {
            target,
            writer: Mutex::new(None),
        }
    }
}

#[async_trait]
impl FlowSink<Flow> for OpenFlowSink {
    async fn sync(&self, desired: &BTreeSet<Flow>) -> Result<usize, String> {
        let mut slot = self.writer.lock().await;
        if slot.is_none() {
            let conn = Connection::connect(&self.target)
                .await
                .map_err(|e| format!("openflow {}: {e}", self.target.display()))?;
            let writer = FlowWriter::new(Arc::new(conn), COOKIE, u64::MAX)
                .await
                .map_err(|e| format!("flow-writer: {e}"))?;
            *slot = Some(writer);
        }
        let Some(writer) = slot.as_mut() else {
            return Err("no flow-writer".into());
        };
        match writer.sync(desired.iter().cloned()).await {
            Ok(stats) => Ok(stats.total()),
            Err(e) => {
                // Reconnect next time; the writer reads the switch again then.
                *slot = None;
                Err(format!("flow sync: {e}"))
            }
        }
    }
}

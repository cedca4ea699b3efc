//! TEMPORARY minimal flow set, until the `pipeline` crate (the real multi-table pipeline with
//! classification, policy and conntrack) and `openflow`'s `FlowWriter` land: flows written in
//! ovs-ofctl syntax and installed with `ovs-ofctl replace-flows` (which changes only what
//! differs). Native L3 only, no tenant separation or policy:
//!
//! - table 0: ARP from a container for any address is answered with the router MAC (spoof
//!   guard: only for the container's own source address); IPv4 from a container with its own
//!   source, and IPv4 from the gateway port, go to table 10; everything else drops.
//! - table 10: a local destination goes to its port with the router MAC as source; anything
//!   else goes to the gateway port towards the host kernel.

use async_trait::async_trait;
use fabric_actors::flows::{Compiler, FlowSink, HostInput};
use fabric_actors::types::mac_string;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// The cookie on every flow we install.
pub const COOKIE: u64 = 0x5c0f_0001;

pub struct TempPipeline;

impl Compiler for TempPipeline {
    type Flow = String;

    fn compile(&self, input: &HostInput) -> BTreeSet<String> {
        let rmac = mac_string(&input.router_mac);
        let gw_mac = mac_string(&input.gw_mac);
        let gw = input.gw_port;
        let c = format!("cookie={COOKIE:#x},");
        let mut flows = BTreeSet::new();
        flows.insert(format!("{c}table=0,priority=0 actions=drop"));
        flows.insert(format!("{c}table=10,priority=0 actions=drop"));
        if gw != 0 {
            flows.insert(format!(
                "{c}table=0,priority=100,ip,in_port={gw} actions=goto_table:10"
            ));
            flows.insert(format!(
                "{c}table=10,priority=10,ip actions=set_field:{rmac}->eth_src,set_field:{gw_mac}->eth_dst,output:{gw}"
            ));
        }
        for ep in input.endpoints.values().filter(|e| e.ofport != 0) {
            let (p, ip, mac) = (ep.ofport, ep.ip, mac_string(&ep.mac));
            flows.insert(format!(
                "{c}table=0,priority=200,arp,in_port={p},arp_op=1,arp_spa={ip} actions=\
                 move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{rmac}->eth_src,\
                 set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],\
                 set_field:{rmac}->arp_sha,move:NXM_OF_ARP_TPA[]->NXM_NX_REG0[],\
                 move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_NX_REG0[]->NXM_OF_ARP_SPA[],\
                 IN_PORT"
            ));
            flows.insert(format!(
                "{c}table=0,priority=100,ip,in_port={p},nw_src={ip} actions=goto_table:10"
            ));
            flows.insert(format!(
                "{c}table=10,priority=100,ip,nw_dst={ip} actions=set_field:{rmac}->eth_src,set_field:{mac}->eth_dst,output:{p}"
            ));
        }
        flows
    }
}

/// Installs a flow set with `ovs-ofctl replace-flows` on the bridge's management socket.
pub struct OfctlSink {
    pub target: PathBuf,
}

#[async_trait]
impl FlowSink<String> for OfctlSink {
    async fn sync(&self, desired: &BTreeSet<String>) -> Result<usize, String> {
        let mut child = tokio::process::Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "replace-flows"])
            .arg(format!("unix:{}", self.target.display()))
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("ovs-ofctl: {e}"))?;
        let mut text = String::new();
        for flow in desired {
            text.push_str(flow);
            text.push('\n');
        }
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|e| format!("ovs-ofctl stdin: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| format!("ovs-ofctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ovs-ofctl replace-flows: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(desired.len())
    }
}

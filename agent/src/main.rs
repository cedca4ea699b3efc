//! `netplugin`: the fabric's agent. Wires the actors (endpoint, flow-writer, route + BGP,
//! master link) over the drivers, reconciles the host with the master's desired state on
//! start (stateless restart), then serves the CNI socket.

use anyhow::{bail, Context as _};
use clap::Parser;
use fabric_actors::endpoint::EndpointActor;
use fabric_actors::flows::{FlowWriter, HostInput};
use fabric_actors::master_link::{MasterLink, Targets};
use fabric_actors::routes::RouteActor;
use fabric_actors::types::{parse_mac, StateSource, ROUTER_MAC};
use netplugin::flows::{OpenFlowSink, PipelineCompiler};
use netplugin::kernel::NetlinkKernel;
use netplugin::master_client::MasterClient;
use netplugin::ops::{AgentOps, Desired};
use netplugin::ovsdb::Ovsdb;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The gateway internal port towards the host kernel.
const GW_PORT: &str = "gw0";

#[derive(Parser, Debug)]
#[command(name = "netplugin", version, about = "The fabric's agent")]
struct Args {
    /// This host's name (the key of its Bgp object and of its endpoints' homingHost).
    #[arg(long, env = "NETPLUGIN_HOST")]
    host: Option<String>,
    /// OVS run directory: OVSDB at <dir>/db.sock, OpenFlow at <dir>/<bridge>.mgmt.
    #[arg(long, default_value = "/var/run/openvswitch")]
    ovs_rundir: PathBuf,
    #[arg(long, default_value = "br-int")]
    bridge: String,
    /// The master's URL.
    #[arg(long, default_value = "http://127.0.0.1:9999")]
    netmaster: String,
    /// The CNI socket the contivk8s plugin talks to.
    #[arg(long, default_value = netplugin::cni::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Contiv's network mode; `routing` is native L3 over BGP (the default).
    #[arg(long, default_value = "routing")]
    fwdmode: String,
    /// Contiv's state-store mode flag, accepted for compatibility.
    #[arg(long, default_value = "")]
    netmode: String,
    #[arg(long, default_value = "info")]
    log_level: String,
    #[arg(long)]
    json_log: bool,
}

fn init_logging(args: &Args) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.json_log {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(&args);
    if args.fwdmode != "routing" {
        bail!(
            "--fwdmode {}: only `routing` (native L3 over BGP) is implemented",
            args.fwdmode
        );
    }
    let host = match &args.host {
        Some(h) => h.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("no --host and no hostname")?
            .trim()
            .to_string(),
    };
    let system = actix::System::new();
    system.block_on(run(args, host))
}

async fn run(args: Args, host: String) -> anyhow::Result<()> {
    // Forwarding; and a next hop whose uplink has lost its link is skipped at once (ECMP over
    // two ToRs: traffic moves to the other uplink before BGP notices, within the hold time).
    for sysctl in ["ip_forward", "conf/all/ignore_routes_with_linkdown"] {
        if let Err(e) = std::fs::write(format!("/proc/sys/net/ipv4/{sysctl}"), "1") {
            tracing::warn!(error = %e, "cannot set net.ipv4.{sysctl}");
        }
    }
    let ovs = Ovsdb::new(args.ovs_rundir.join("db.sock"), &args.bridge);
    let gw_port = ovs
        .add_port(
            GW_PORT,
            "internal",
            &BTreeMap::from([("contiv-gateway".to_string(), "true".to_string())]),
        )
        .await
        .context("creating the gateway port")?;
    let gw_mac = ovs
        .mac_in_use(GW_PORT)
        .await?
        .and_then(|m| parse_mac(&m))
        .context("the gateway port has no MAC")?;
    gateway_up().await?;
    tracing::info!(%host, gw_port, "gateway port ready");

    let master = MasterClient::new(&args.netmaster)?;
    let desired = Desired {
        host: host.clone(),
        master: master.clone(),
        ovs: ovs.clone(),
    };
    // Stateless restart: the desired state from the master; leftovers of an ADD that died
    // with the previous agent go first. The actors then rebuild from the same source (also
    // after a supervisor restart) and reconcile OVS flows, kernel routes and BGP.
    let loaded = loop {
        match desired.desired().await {
            Ok(d) => break d,
            Err(e) => {
                tracing::warn!(error = %e, "waiting for the master");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    };
    tracing::info!(endpoints = loaded.len(), "desired state loaded");
    if let Err(e) = desired.sweep_orphans(&loaded).await {
        tracing::warn!(error = %e, "orphan sweep failed");
    }
    // Addresses kept for the previous agent's next containers: this one starts its own.
    match master.unreserve_all(&host).await {
        Ok(released) => tracing::info!(released, "reserved addresses given back"),
        Err(e) => tracing::warn!(error = %e, "giving back reserved addresses failed"),
    }
    let source: Arc<dyn StateSource> = Arc::new(desired);

    let kernel = Arc::new(NetlinkKernel {
        gw_if: GW_PORT.into(),
    });
    let routes = {
        let source = source.clone();
        actix::Supervisor::start(move |_| {
            RouteActor::new(kernel.clone()).with_source(source.clone())
        })
    };
    let base = HostInput {
        router_mac: ROUTER_MAC,
        gw_port,
        gw_mac,
        endpoints: Default::default(),
        intent: Default::default(),
    };
    let target = args.ovs_rundir.join(format!("{}.mgmt", args.bridge));
    let flows = {
        let source = source.clone();
        actix::Supervisor::start(move |_| {
            FlowWriter::new(
                Arc::new(PipelineCompiler),
                Arc::new(OpenFlowSink::new(target.clone())),
                base.clone(),
            )
            .with_source(source.clone())
        })
    };
    let ops = Arc::new(AgentOps {
        host: host.clone(),
        master: master.clone(),
        ovs,
        flows: flows.clone(),
        routes: routes.clone(),
        reserve: netplugin::reserve::Reserve::new(&host, master.clone(), routes.clone()),
    });

    ops.reserve.audit();
    let link_ops: Arc<dyn fabric_actors::endpoint::AttachOps> = ops.clone();
    let endpoints = actix::Supervisor::start(move |_| EndpointActor::new(link_ops.clone()));
    let api: Arc<dyn fabric_actors::master_link::MasterApi> = Arc::new(master.clone());
    let targets = Targets {
        bgp: routes.clone().recipient(),
        intent: Some(flows.clone().recipient()),
    };
    let link_host = host.clone();
    let _link = actix::Supervisor::start(move |_| {
        MasterLink::new(&link_host, api.clone(), targets.clone())
    });

    netplugin::server::serve(&args.socket, endpoints, master)
        .await
        .with_context(|| format!("CNI socket {}", args.socket.display()))
}

/// Brings the gateway port up (and its offloads off) in the agent's namespace.
async fn gateway_up() -> anyhow::Result<()> {
    netplugin::netns::run_in(None, |handle| async move {
        let index = netplugin::netlink::index_of(&handle, GW_PORT)
            .await?
            .ok_or_else(|| format!("{GW_PORT} is missing"))?;
        handle
            .link()
            .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| format!("set {GW_PORT} up: {e}"))?;
        if let Err(e) = netplugin::ethtool::offloads_off(GW_PORT) {
            tracing::warn!(error = %e, "gateway offloads");
        }
        Ok(())
    })
    .await
    .map_err(anyhow::Error::msg)
}

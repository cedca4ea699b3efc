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
use netplugin::credential::read_secret;
use netplugin::flows::{OpenFlowSink, PipelineCompiler};
use netplugin::kernel::NetlinkKernel;
use netplugin::master_client::{ClientOptions, MasterClient, RegisterError};
use netplugin::ops::{AgentOps, Desired};
use netplugin::ovsdb::Ovsdb;
use netplugin::tls::Trust;
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
    /// The master's URL (`https://...` for a master serving TLS); several, comma-separated, for
    /// masters of one control plane: a request that fails at one goes to the next, and masters
    /// named by heartbeat answers are added.
    #[arg(
        long,
        visible_alias = "master",
        default_value = "http://127.0.0.1:9999"
    )]
    netmaster: String,
    /// File holding the master's bootstrap secret for agents (its `--agent-secret-file`, by
    /// default `<data-dir>/agent-secret`): the agent registers as --host with it and sends
    /// the token it gets on every request. Without it no credential is sent (a master with
    /// authentication off).
    #[arg(long, env = "NETPLUGIN_MASTER_SECRET_FILE", value_name = "PATH")]
    master_secret_file: Option<PathBuf>,
    /// PEM file of the master's certificate (its self-signed `<data-dir>/tls/cert.pem`) or of
    /// the CA that signed it, trusted instead of the system's roots for an https:// master.
    /// With several masters, a bundle of their certificates: each one is trusted.
    #[arg(long, env = "NETPLUGIN_MASTER_CACERT", value_name = "PEM")]
    master_cacert: Option<PathBuf>,
    /// Do not check the master's certificate, and allow the secret and tokens over plain
    /// HTTP to a master on another host. Anyone on the path can then read or forge them.
    #[arg(long, env = "NETPLUGIN_MASTER_INSECURE")]
    master_insecure: bool,
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
    let master = master_client(&args, &host)?;
    let system = actix::System::new();
    system.block_on(run(args, host, master))
}

/// The master client the flags ask for; a secret file that cannot be read, or credentials
/// that would go over plain HTTP to another host, stop the agent here.
fn master_client(args: &Args, host: &str) -> anyhow::Result<MasterClient> {
    let https = args
        .netmaster
        .split(',')
        .any(|url| url.trim().starts_with("https://"));
    let trust = match (&args.master_cacert, args.master_insecure) {
        (_, true) => Trust::Anyone,
        (Some(pem), false) => Trust::CaFile(pem.clone()),
        (None, false) => Trust::System,
    };
    if args.master_insecure {
        tracing::warn!(
            master = %args.netmaster,
            "--master-insecure: the master's certificate is not checked and credentials may go \
             over plain HTTP; anyone on the path can read or forge them"
        );
    }
    if !https && args.master_cacert.is_some() {
        tracing::warn!(master = %args.netmaster, "--master-cacert is unused: no master's URL is https://");
    }
    let credential = match &args.master_secret_file {
        Some(path) => Some((host.to_string(), read_secret(path)?)),
        None => {
            tracing::warn!("no --master-secret-file: requests carry no credential (a master with authentication off)");
            None
        }
    };
    let options = ClientOptions {
        credential,
        trust,
        insecure: args.master_insecure,
    };
    Ok(MasterClient::with_options(&args.netmaster, options)?)
}

/// Registers with the master before anything else: a refusal (wrong secret, a master without
/// one) ends the agent with the master's reason; an absent or throttling master is waited for.
async fn register(master: &MasterClient) -> anyhow::Result<()> {
    loop {
        match master.register().await {
            Ok(()) => return Ok(()),
            Err(RegisterError::Refused(reason)) => bail!("{reason}"),
            Err(RegisterError::Throttled(wait)) => {
                tracing::warn!(secs = wait.as_secs(), "registration throttled; waiting");
                tokio::time::sleep(wait).await;
            }
            Err(e @ RegisterError::Unreachable(_)) => {
                tracing::warn!(error = %e, "waiting for the master to register");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

async fn run(args: Args, host: String, master: MasterClient) -> anyhow::Result<()> {
    if master.authenticates() {
        register(&master).await?;
    }
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
        reflectors: Some(routes.clone().recipient()),
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

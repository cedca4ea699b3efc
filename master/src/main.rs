//! The `netmaster` binary: Contiv's flags, the store, the REST server.

use anyhow::Context;
use clap::Parser;
use netmaster::{Master, Settings};
use std::path::PathBuf;

/// Contiv's netmaster flags, so it drops into existing deployments.
#[derive(Parser, Debug)]
#[command(
    name = "netmaster",
    version,
    about = "The fabric's master: REST API, allocation, store"
)]
struct Args {
    /// etcd client URLs (comma-separated or repeated); absent means the embedded store.
    #[arg(
        long = "etcd",
        visible_alias = "etcd-endpoints",
        env = "NETMASTER_ETCD",
        value_delimiter = ','
    )]
    etcd: Vec<String>,
    /// PEM CA certificate that verifies etcd's server certificate (https:// endpoints);
    /// without it the system's trusted roots do.
    #[arg(
        long = "etcd-cacert",
        env = "NETMASTER_ETCD_CACERT",
        value_name = "PEM"
    )]
    etcd_cacert: Option<PathBuf>,
    /// PEM client certificate for an etcd with --client-cert-auth (needs --etcd-key).
    #[arg(
        long = "etcd-cert",
        env = "NETMASTER_ETCD_CERT",
        value_name = "PEM",
        requires = "etcd_key"
    )]
    etcd_cert: Option<PathBuf>,
    /// PEM private key of --etcd-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long = "etcd-key",
        env = "NETMASTER_ETCD_KEY",
        value_name = "PEM",
        requires = "etcd_cert"
    )]
    etcd_key: Option<PathBuf>,
    /// Address the REST API listens on (`host:port` or `:port`).
    #[arg(long, default_value = "0.0.0.0:9999")]
    listen_url: String,
    /// Address agents use to reach this master (advertised; defaults to listen-url).
    #[arg(long, default_value = "")]
    control_url: String,
    /// Forwarding mode for a new fabric: bridge or routing.
    #[arg(long = "fwdmode", default_value = "")]
    fwd_mode: String,
    /// Network mode: vlan, vxlan or routing (native L3).
    #[arg(long = "netmode", default_value = "vxlan")]
    net_mode: String,
    /// Cluster mode: docker, kubernetes, swarm-mode, nomad, mesos, test.
    #[arg(long = "mode", default_value = "docker")]
    mode: String,
    /// Infrastructure: default, aci or aci-opflex.
    #[arg(long, default_value = "")]
    infra: String,
    #[arg(long, default_value = "info")]
    log_level: String,
    #[arg(long)]
    json_log: bool,
    /// Directory of the embedded store's file.
    #[arg(long, default_value = "/var/lib/netmaster")]
    data_dir: PathBuf,
    /// Seconds of the leader's lease (2-60): a leader that stops renewing it (crash,
    /// partition) is replaced within about this long.
    #[arg(long = "leader-lease", value_name = "SECS", default_value = "5", value_parser = netmaster::leader::parse_lease)]
    leader_lease: std::time::Duration,
    #[command(flatten)]
    listen: netmaster::listen::ListenArgs,
    #[command(flatten)]
    auth: netmaster::auth::cli::AuthArgs,
    #[command(flatten)]
    cluster: netmaster::cluster::ClusterArgs,
}

fn listen_addr(url: &str) -> String {
    let url = url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    if url.starts_with(':') {
        format!("0.0.0.0{url}")
    } else {
        url.to_string()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level).context("--log-level")?;
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter);
    if args.json_log {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    let etcd: Vec<String> = args
        .etcd
        .iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    let etcd_tls = fabric_store::EtcdTls {
        ca_cert: args.etcd_cacert.clone(),
        client_cert: args.etcd_cert.clone(),
        client_key: args.etcd_key.clone(),
    };
    let store = fabric_store::open_with(
        (!etcd.is_empty()).then_some(etcd.as_slice()),
        &args.data_dir,
        &etcd_tls,
    )
    .await
    .context("opening the store")?;
    let auth = args
        .auth
        .prepare(&args.data_dir)
        .context("authentication settings")?;
    let settings = Settings {
        auth: auth.settings.clone(),
        fwd_mode: args.fwd_mode,
        net_mode: args.net_mode,
        cluster_mode: args.mode,
        infra: args.infra,
        backend: if etcd.is_empty() { "embedded" } else { "etcd" },
    };
    let master = Master::start(store, settings)
        .await
        .context("loading state from the store")?;
    master
        .ensure_defaults()
        .await
        .context("creating the default tenant and global settings")?;
    let admin_password = master
        .ensure_auth(auth.admin_password.clone())
        .await
        .context("setting up authentication")?;
    netmaster::auth::cli::announce(&auth, admin_password.as_deref());
    let addr = listen_addr(&args.listen_url);
    let serving = args
        .listen
        .prepare(&args.data_dir, &addr)
        .context("setting up TLS")?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let bound = listener
        .local_addr()
        .context("the REST listener's address")?;
    let url = if args.control_url.is_empty() {
        format!("{}://{bound}", serving.scheme())
    } else {
        args.control_url.clone()
    };
    let _cluster = args
        .cluster
        .start(&master, &bound, url)
        .await
        .context("starting the route reflector")?;
    // Campaigns for leadership; the leader runs the sweeps and the tenancy audit.
    let leader = netmaster::leader::LeaderSettings {
        id: args.cluster.id(&bound),
        lease: args.leader_lease,
    };
    netmaster::leader::start(&master, leader).context("campaigning for leadership")?;
    let resign = master.clone();
    tracing::info!(%addr, scheme = serving.scheme(), backend = master.settings.backend, control_url = %args.control_url, "netmaster serving");
    serving.serve(listener, master, async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    })
    .await?;
    // Hand the leadership over at once instead of after the lease.
    resign.leader.stop(netmaster::leader::Stop::Resign).await;
    Ok(())
}

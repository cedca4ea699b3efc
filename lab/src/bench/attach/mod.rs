//! `lab bench attach`: container-to-routable latency, ours against a Calico-style baseline in
//! one run on the bench-attach lab. Ours: `contivk8s` ADD on a rack-1 host's agent; baseline:
//! a script of `ip` commands on host5 with BIRD exporting kernel routes. For each container:
//! from the attach call's start to its /32 in tor1's RIB and to the first ping answered from a
//! container on host3 (the other rack); p50/p99 of both, the ratios and the total time.

mod baseline;
pub(super) mod fabric;
pub(super) mod ours;
mod probe;
mod report;
mod rib;
pub(super) mod stats;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use ipnet::Ipv4Net;

use fabric::{Fabric, Namespaces, BASELINE_SUBNET, OURS_SUBNET};
use stats::Sample;

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Containers attached per side (at most 200: the subnets are /24s).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub n: u16,
    /// Attaches in flight at once (a batch; the next starts when the batch is reachable).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub concurrency: u16,
    /// The rack-1 agent host our containers are attached on.
    #[arg(long, default_value = "host1", value_parser = ["host1", "host2"])]
    pub host: String,
    /// How the /32s are seen in tor1's RIB: `kernel` watches tor1's kernel routes, which its
    /// BIRD installs from the RIB as it changes (netlink notifications, no polling); `birdc`
    /// polls BIRD's control socket every --poll-ms.
    #[arg(long, default_value = "kernel", value_parser = ["kernel", "birdc"])]
    pub observer: String,
    /// Milliseconds between two polls of tor1's RIB (`--observer birdc`).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub poll_ms: u64,
    /// Milliseconds of rest after every batch, so one batch's background work (OVS
    /// revalidation, a reserve refill, the other hosts learning the routes) does not run into
    /// the next batch's, whichever side it belongs to.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=5000))]
    pub settle_ms: u64,
    /// All of ours first, then all of the baseline's (by default their batches alternate).
    #[arg(long)]
    pub sequential: bool,
    /// Seconds a container may take to reach the RIB and answer pings before it counts as lost.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub timeout: u64,
}

static STOP: AtomicBool = AtomicBool::new(false);

/// True once SIGINT or SIGTERM arrived: every loop of the bench ends and cleanup runs.
pub fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Turns SIGINT/SIGTERM into [`stopping`] instead of death, so the guards clean up.
pub(super) fn watch_signals() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                let _ = ready_tx.send(false);
                return;
            };
            let _ = ready_tx.send(true);
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!("lab bench attach: interrupted, cleaning up");
            STOP.store(true, Ordering::Relaxed);
        })
    });
    match ready_rx.recv_timeout(Duration::from_secs(5)) {
        Ok(true) => Ok(()),
        _ => bail!("cannot install the SIGINT/SIGTERM handlers"),
    }
}

fn preflight() -> Result<[std::path::PathBuf; 3]> {
    preflight_for(
        "attach",
        "network namespaces, OVS, BGP routers",
        &[
            ("ip", "iproute2"),
            ("ping", "iputils-ping"),
            ("bird", "bird2"),
            ("vtysh", "frr"),
            ("ovs-vswitchd", "openvswitch-switch"),
        ],
    )
}

/// Root, the system `tools` (program, Debian package) and our netmaster, netplugin and
/// contivk8s binaries, or an error naming what is missing; `lab bench <bench>` needs root for
/// `why`.
pub(super) fn preflight_for(
    bench: &str,
    why: &str,
    tools: &[(&str, &str)],
) -> Result<[std::path::PathBuf; 3]> {
    if !nix::unistd::geteuid().is_root() {
        bail!("lab bench {bench} needs root ({why})");
    }
    for &(tool, package) in tools {
        super::system_program(tool, package)?;
    }
    let find = |name: &str| {
        super::own_binary(name).with_context(|| {
            format!(
                "{name} not found next to lab or on PATH: cargo build --release --workspace --bins"
            )
        })
    };
    Ok([find("netmaster")?, find("netplugin")?, find("contivk8s")?])
}

pub fn run(args: &AttachArgs) -> Result<i32> {
    let [_, _, contivk8s] = preflight()?;
    let plugin_static = ours::linked_statically(&contivk8s)?;
    if !plugin_static {
        eprintln!(
            "lab bench attach: {} is linked dynamically; scripts/build-release.sh links it \
             statically, as it ships",
            contivk8s.display()
        );
    }
    watch_signals()?;
    let (n, batch) = (usize::from(args.n), usize::from(args.concurrency));
    let timeout = Duration::from_secs(args.timeout);
    eprintln!("lab bench attach: deploying {}", fabric::LAB);
    let fabric = Fabric::deploy()?;
    let namespaces = Namespaces::default();
    check_stop()?;
    fabric.configure()?;
    fabric.wait_sessions(Duration::from_secs(60))?;

    // The observer in the other rack: a container on host3, attached through our agent.
    let cni = |host: &str| ours::Cni {
        plugin: contivk8s.clone(),
        socket: fabric.run_dir(host).join("netplugin.sock"),
    };
    let pinger = namespaces.add(&format!("{}-pinger", fabric::LAB))?;
    let pinger_ip = cni("host3").add("pinger", &pinger)?;
    eprintln!("lab bench attach: pinger {pinger_ip} on host3");

    let subnets: Vec<Ipv4Net> = [OURS_SUBNET, BASELINE_SUBNET]
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let observer = match args.observer.as_str() {
        "birdc" => rib::RibObserver::birdc(
            &fabric.bird_ctl("tor1"),
            &subnets,
            Duration::from_millis(args.poll_ms),
        )?,
        _ => rib::RibObserver::kernel(&fabric.netns("tor1"), &subnets)?,
    };
    let ctx = Ctx {
        rib: &observer,
        pinger: &pinger,
        namespaces: &namespaces,
        timeout,
        settle: Duration::from_millis(args.settle_ms),
    };

    let host_cni = cni(&args.host);
    let ours_attach = |id: &str, ns: &str, _: usize| host_cni.add(id, ns);
    let host5 = fabric.netns("host5");
    let pool = subnets[1];
    let base_attach = |_: &str, ns: &str, i: usize| {
        let ip = baseline_ip(pool, i)?;
        baseline::attach(&host5, ns, i, ip)?;
        Ok(ip)
    };
    let (ours, base) = if args.sequential {
        eprintln!(
            "lab bench attach: ours: {n} containers on {}, {batch} at a time",
            args.host
        );
        let [ours] = ctx.sides(n, batch, &[("o", &ours_attach)])?;
        eprintln!("lab bench attach: baseline: {n} containers on host5, {batch} at a time");
        let [base] = ctx.sides(n, batch, &[("b", &base_attach)])?;
        (ours, base)
    } else {
        eprintln!(
            "lab bench attach: {n} containers per side, {batch} at a time, a batch of ours on \
             {} then one of the baseline's on host5, in turn",
            args.host
        );
        let [ours, base] = ctx.sides(n, batch, &[("o", &ours_attach), ("b", &base_attach)])?;
        (ours, base)
    };
    let cost = observer.stop()?;
    report::print(&report::Setup {
        n,
        batch,
        host: &args.host,
        plugin_static,
        sequential: args.sequential,
        poll_every: Duration::from_millis(args.poll_ms),
        observer: cost,
        ours: &ours,
        baseline: &base,
    });
    Ok(0)
}

pub(super) fn check_stop() -> Result<()> {
    if stopping() {
        bail!("interrupted");
    }
    Ok(())
}

/// The baseline's i-th address: from .10 on in its pool.
fn baseline_ip(pool: Ipv4Net, i: usize) -> Result<Ipv4Addr> {
    let offset = u32::try_from(i + 10)?;
    let ip = Ipv4Addr::from(u32::from(pool.network()) + offset);
    if !pool.contains(&ip) || ip == pool.broadcast() {
        bail!("the baseline pool {pool} has no address number {offset}");
    }
    Ok(ip)
}

/// Runs `f(index, netns)` for each namespace of `chunk` on its own thread (indices from
/// `first`); the results in order.
pub(super) fn run_batch<T: Send>(
    chunk: &[String],
    first: usize,
    f: impl Fn(usize, &str) -> Result<T> + Sync,
) -> Vec<Result<T>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(j, ns)| {
                let f = &f;
                s.spawn(move || f(first + j, ns))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("attach thread panicked")))
            .collect()
    })
}

/// One side's results and its wall time (the sum of its batches').
#[derive(Default)]
pub struct Side {
    pub samples: Vec<Sample>,
    pub failures: Vec<String>,
    pub total: Duration,
}

/// One side's attach: `(container id, namespace, index)` to the container's address.
type Attach<'a> = dyn Fn(&str, &str, usize) -> Result<Ipv4Addr> + Sync + 'a;

struct Ctx<'a> {
    rib: &'a rib::RibObserver,
    pinger: &'a str,
    namespaces: &'a Namespaces,
    timeout: Duration,
    settle: Duration,
}

impl Ctx<'_> {
    /// Attaches `n` containers per side, `batch` at a time with each side's
    /// `attach(id, netns, index)`, taking the sides' batches in turn: the machine's load drifts
    /// over a run's minutes, and alternating batches lets it weigh on both sides alike. Each
    /// container is measured from the call's start to its /32 in the RIB and to its first
    /// answered ping. Returns the sides in the order given.
    fn sides<const S: usize>(
        &self,
        n: usize,
        batch: usize,
        sides: &[(&str, &Attach); S],
    ) -> Result<[Side; S]> {
        let mut names = Vec::new();
        for (tag, _) in sides {
            let side: Vec<String> = (0..n)
                .map(|i| self.namespaces.add(&format!("{}-{tag}{i}", fabric::LAB)))
                .collect::<Result<_>>()?;
            names.push(side);
        }
        let mut out: [Side; S] = std::array::from_fn(|_| Side::default());
        for first in (0..n).step_by(batch.max(1)) {
            for (((tag, attach), names), side) in sides.iter().zip(&names).zip(out.iter_mut()) {
                check_stop()?;
                let chunk = &names[first..(first + batch).min(n)];
                let started = Instant::now();
                let results = run_batch(chunk, first, |i, ns| {
                    self.one(&format!("{tag}{i}"), ns, i, attach)
                });
                side.total += started.elapsed();
                for r in results {
                    match r {
                        Ok(s) => side.samples.push(s),
                        Err(e) => side.failures.push(format!("{e:#}")),
                    }
                }
                std::thread::sleep(self.settle);
            }
        }
        check_stop()?;
        Ok(out)
    }

    fn one(&self, id: &str, ns: &str, i: usize, attach: &Attach) -> Result<Sample> {
        let t0 = Instant::now();
        let ip = attach(id, ns, i)?;
        let call = t0.elapsed();
        let deadline = t0 + self.timeout;
        let ping = probe::first_ping(self.pinger, ip, deadline)?.map(|at| at - t0);
        let rib = self
            .rib
            .wait_for(ip, deadline)
            .map(|at| at.saturating_duration_since(t0));
        Ok(Sample { call, rib, ping })
    }
}

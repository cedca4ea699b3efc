//! `lab bench`: the benchmarks. `rest` times netmaster's REST API on both stores side by side;
//! `bgp` runs the BGP speaker's benchmark against BIRD (`bgp-bench`) with the arguments given;
//! `attach` times container-to-routable latency, our agent against a Calico-style baseline;
//! `policy` times group-based policy from the REST API to a real host's OVS flows; `failover`
//! times a new leader among two masters after the leader's kill -9.

mod attach;
mod daemon;
mod failover;
mod h2;
mod policy;
mod rest;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use lab::{programs, sys};

/// A current-thread tokio runtime for the calling thread: a bench drives its async clients
/// (HTTP/2, OpenFlow) from the thread that entered the namespace they must live in.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a tokio runtime")
}

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Create N policy+rule pairs through netmaster's REST API, embedded store and etcd side by
    /// side, over one keep-alive HTTP/1.1 connection, over several, and over one HTTP/2
    /// connection with many requests in flight; prints objects/s and the ratio.
    Rest(rest::RestArgs),
    /// Container-to-routable latency on a lab (two-rack plus a baseline host): N containers
    /// attached 10 at a time through our CNI plugin and through a Calico-style script with
    /// BIRD; ADD -> /32 in the ToR's RIB and -> first ping from the other rack, p50/p99, ratio.
    /// Needs root, bird2, frr, openvswitch-switch and the release binaries next to lab.
    Attach(attach::AttachArgs),
    /// Policy to flows on a real host: G groups with a policy each, N endpoints attached
    /// through contivk8s, R rules per policy written through the REST API; first write -> last
    /// flow installed, then a deny rule added/removed between two containers: p50/p99 until a
    /// TCP probe's answer changes. Needs root, openvswitch-switch, busybox and the release
    /// binaries next to lab.
    Policy(policy::PolicyArgs),
    /// Master failover: two netmasters on one etcd on loopback; each run SIGKILLs the leader
    /// and times the kill -> the other's term start and first leader-only jobs (a fenced sweep
    /// of a stale record), then restarts the killed one; p50 and max over --runs (default 10).
    /// Needs etcd (etcd-server) and the release netmaster next to lab.
    Failover(failover::FailoverArgs),
    /// Run `bgp-bench` (our BGP speaker against BIRD), passing every argument through,
    /// e.g. `lab bench bgp --n 100000`; `--help` is bgp-bench's. Needs root, bird2 and gobgpd.
    #[command(disable_help_flag = true)]
    Bgp {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

pub fn run(cmd: BenchCmd) -> Result<i32> {
    match cmd {
        BenchCmd::Rest(args) => rest::run(&args),
        BenchCmd::Attach(args) => attach::run(&args),
        BenchCmd::Policy(args) => policy::run(&args),
        BenchCmd::Failover(args) => failover::run(&args),
        BenchCmd::Bgp { args } => {
            let bin = own_binary("bgp-bench").context(
                "bgp-bench not found next to lab or on PATH: cargo build --release -p fabric-bgp --bins",
            )?;
            let status = std::process::Command::new(&bin)
                .args(&args)
                .status()
                .with_context(|| format!("running {}", bin.display()))?;
            Ok(status.code().unwrap_or(1))
        }
    }
}

/// One of our binaries, looked for as lab looks for netmaster: next to `lab` (or only in
/// `LAB_BIN_DIR` when set), then on PATH.
pub fn own_binary(name: &str) -> Option<PathBuf> {
    if let Some(path) = programs::own_bin_dir()
        .map(|d| d.join(name))
        .filter(|p| sys::is_executable(p))
    {
        return Some(path);
    }
    if std::env::var_os("LAB_BIN_DIR").is_some() {
        return None;
    }
    sys::which(name)
}

/// A system program on PATH, with the Debian package that has it.
pub fn system_program(name: &str, package: &str) -> Result<PathBuf> {
    match sys::which(name) {
        Some(path) => Ok(path),
        None => bail!("{name} not found on PATH (Debian package {package})"),
    }
}

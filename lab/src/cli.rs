//! The command line, in containerlab's spelling: deploy, destroy, inspect, exec, graph, save;
//! plus `bench`, the benchmarks.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use lab::state::{all_states, state_path, State};
use lab::{deploy, destroy, exec, graph, inspect, plan, programs, save, Topology};

#[derive(Parser, Debug)]
#[command(
    name = "lab",
    version,
    about = "containerlab topologies as network namespaces on this machine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create the namespaces, links and daemons of a topology.
    Deploy {
        #[arg(short = 't', long)]
        topo: PathBuf,
        /// Destroy the lab first if it is already deployed.
        #[arg(long)]
        reconfigure: bool,
        /// Bring netplugin/netmaster nodes up without their binary when it is not built
        /// (netplugin hosts then run OVS only).
        #[arg(long, env = "LAB_SKIP_MISSING")]
        skip_missing: bool,
    },
    /// Remove everything a topology's deployment created (also after a crash).
    Destroy {
        #[arg(short = 't', long, required_unless_present = "all")]
        topo: Option<PathBuf>,
        /// Destroy every deployed lab.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Show the nodes of a deployed lab (all labs without -t).
    Inspect {
        #[arg(short = 't', long)]
        topo: Option<PathBuf>,
        #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Run a command in nodes: `--label clab-node-name=tor1 --cmd '...'` or `<node> -- <cmd>`.
    Exec {
        #[arg(short = 't', long)]
        topo: Option<PathBuf>,
        /// Label filter key=value (clab-node-name, clab-node-kind, or a label from the file).
        #[arg(long)]
        label: Vec<String>,
        /// The command, run by `sh -c` in each node.
        #[arg(long)]
        cmd: Option<String>,
        /// A node name (with the command after `--`).
        node: Option<String>,
        #[arg(last = true)]
        argv: Vec<String>,
    },
    /// Write the topology as Graphviz dot (and a PNG when `dot` is installed).
    Graph {
        #[arg(short = 't', long)]
        topo: PathBuf,
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Save the routers' running state into `<out-dir>/<node>/`.
    Save {
        #[arg(short = 't', long)]
        topo: PathBuf,
        /// Default: clab-<lab> in the current directory.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Benchmarks: `rest` (netmaster's REST API on both stores), `bgp` (our speaker vs BIRD),
    /// `attach` (container-to-routable latency, ours vs a Calico-style baseline), `policy`
    /// (policy from the REST API to a real host's flows).
    Bench {
        #[command(subcommand)]
        what: crate::bench::BenchCmd,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

fn progress(message: &str) {
    eprintln!("lab: {message}");
}

fn load_state(topo: &Topology) -> Result<State> {
    let path = state_path(&plan::lab_dir(&programs::run_root(), &topo.name));
    if !path.exists() {
        bail!("lab {} is not deployed (no {})", topo.name, path.display());
    }
    Ok(State::load(&path)?)
}

fn load(topo: &Path) -> Result<Topology> {
    Topology::load(topo).map_err(anyhow::Error::from)
}

pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::Deploy {
            topo: file,
            reconfigure,
            skip_missing,
        } => {
            let topo = load(&file)?;
            let run_root = programs::run_root();
            if reconfigure {
                destroy::destroy(&run_root, &topo.name, Some(&topo), &mut |m| progress(m))?;
            }
            let env = programs::discover(skip_missing);
            let started = std::time::Instant::now();
            match deploy::deploy(&topo, &file, &env, &mut |m| progress(m)) {
                Ok(state) => {
                    progress(&format!(
                        "lab {} is up ({} nodes, {:.1}s)",
                        topo.name,
                        state.nodes.len(),
                        started.elapsed().as_secs_f64()
                    ));
                    print!("{}", inspect::table(&inspect::status(&state)));
                    for node in state.nodes.iter().filter(|n| !n.skipped.is_empty()) {
                        progress(&format!(
                            "note: {} runs without {} (not built)",
                            node.name,
                            node.skipped.join(", ")
                        ));
                    }
                    Ok(0)
                }
                Err(e @ lab::LabError::AlreadyDeployed { .. }) => Err(e.into()),
                Err(e) => Err(anyhow::Error::from(e).context(format!(
                    "deploying lab {} failed; what was created is recorded, remove it with `lab destroy -t {}`",
                    topo.name,
                    file.display()
                ))),
            }
        }
        Cmd::Destroy { topo, all } => {
            let run_root = programs::run_root();
            let mut targets: Vec<(String, Option<Topology>)> = Vec::new();
            if let Some(file) = topo {
                let t = load(&file)?;
                targets.push((t.name.clone(), Some(t)));
            }
            if all {
                for s in all_states(&run_root) {
                    let t = Topology::load(&s.topology_file).ok();
                    targets.push((s.lab.clone(), t));
                }
            }
            for (name, t) in targets {
                let done = destroy::destroy(&run_root, &name, t.as_ref(), &mut |m| progress(m))?;
                progress(&format!(
                    "lab {name} destroyed ({} processes, {} namespaces, {} directories removed)",
                    done.processes, done.namespaces, done.dirs
                ));
            }
            Ok(0)
        }
        Cmd::Inspect { topo, format } => {
            let states = match topo {
                Some(file) => vec![load_state(&load(&file)?)?],
                None => all_states(&programs::run_root()),
            };
            let rows: Vec<_> = states.iter().flat_map(inspect::status).collect();
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                Format::Table if rows.is_empty() => println!("no lab is deployed"),
                Format::Table => print!("{}", inspect::table(&rows)),
            }
            Ok(0)
        }
        Cmd::Exec {
            topo,
            label,
            cmd,
            node,
            argv,
        } => {
            let states = match topo {
                Some(file) => vec![load_state(&load(&file)?)?],
                None => all_states(&programs::run_root()),
            };
            let argv = match (cmd, argv.is_empty()) {
                (Some(line), true) => vec!["sh".to_string(), "-c".to_string(), line],
                (None, false) => argv,
                _ => bail!("give the command either with --cmd '<cmd>' or after `--`"),
            };
            let targets = exec::select(&states, node.as_deref(), &label)?;
            let several = targets.len() > 1;
            let mut code = 0;
            for (_, node) in targets {
                if several {
                    println!("--- {} ---", node.name);
                }
                let status = exec::run_in(node, &argv)?;
                if !status.success() {
                    code = status.code().unwrap_or(1);
                }
            }
            Ok(code)
        }
        Cmd::Graph { topo, out_dir } => {
            let topo = load(&topo)?;
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("cannot create {}", out_dir.display()))?;
            let dot_file = out_dir.join(format!("{}.dot", topo.name));
            std::fs::write(&dot_file, graph::to_dot(&topo))
                .with_context(|| format!("cannot write {}", dot_file.display()))?;
            println!("{}", dot_file.display());
            if lab::sys::which("dot").is_some() {
                let png = out_dir.join(format!("{}.png", topo.name));
                lab::sys::run(
                    std::process::Command::new("dot")
                        .arg("-Tpng")
                        .arg(&dot_file)
                        .arg("-o")
                        .arg(&png),
                )?;
                println!("{}", png.display());
            } else {
                progress("graphviz `dot` is not installed: no PNG (apt-get install graphviz)");
            }
            Ok(0)
        }
        Cmd::Save { topo, out_dir } => {
            let topo = load(&topo)?;
            let state = load_state(&topo)?;
            let out = out_dir.unwrap_or_else(|| PathBuf::from(format!("clab-{}", topo.name)));
            for path in save::save(&state, &out)? {
                println!("{}", path.display());
            }
            Ok(0)
        }
        Cmd::Bench { what } => crate::bench::run(what),
    }
}

//! Tears a lab down from its state file and, as a sweep, from the names the topology implies:
//! kills the processes we started (checked by pid and start time) and anything else left in
//! the lab's namespaces, deletes the namespaces (their veths go with them), removes the run and
//! FRR instance directories. Idempotent: running it twice, or on a lab never deployed, is fine.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::kind::Kind;
use crate::nodes::frr;
use crate::plan::lab_dir;
use crate::state::{state_path, Resource, State};
use crate::topology::Topology;

/// What destroy removed.
#[derive(Debug, Default)]
pub struct Destroyed {
    pub processes: usize,
    pub namespaces: usize,
    pub dirs: usize,
}

/// Namespaces and directories a topology owns, derived from names alone, so a lab can be swept
/// even when its state file is gone.
pub fn owned_names(topo: &Topology, run_root: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let mut namespaces = vec![topo.mgmt_netns()];
    let mut dirs = vec![lab_dir(run_root, &topo.name)];
    for node in &topo.nodes {
        let netns = topo.netns(&node.name);
        if node.kind == Kind::Frr {
            dirs.push(frr::etc_dir(&netns));
            dirs.push(frr::run_dir(&netns));
        }
        namespaces.push(netns);
    }
    (namespaces, dirs)
}

/// Destroys lab `lab`; `topo` (when given) widens the sweep to every name it implies.
pub fn destroy(
    run_root: &Path,
    lab: &str,
    topo: Option<&Topology>,
    progress: &mut dyn FnMut(&str),
) -> Result<Destroyed, LabError> {
    let path = state_path(&lab_dir(run_root, lab));
    let state = if path.exists() {
        Some(State::load(&path)?)
    } else {
        None
    };
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut done = Destroyed::default();
    if let Some(state) = &state {
        for r in state.resources.iter().rev() {
            match r {
                Resource::Process {
                    node,
                    name,
                    pid,
                    start_time,
                    ..
                } => {
                    if crate::process::alive(*pid)
                        && crate::process::start_time(*pid) == Some(*start_time)
                    {
                        progress(&format!("stopping {name} of {node} (pid {pid})"));
                        crate::process::terminate(*pid);
                        done.processes += 1;
                    }
                }
                Resource::Netns { name } => {
                    namespaces.insert(name.clone());
                }
                Resource::Dir { path } => dirs.push(path.clone()),
                Resource::Link { .. } => {}
            }
        }
        namespaces.extend(state.namespaces.iter().cloned());
        dirs.extend(state.extra_dirs.iter().cloned());
    }
    if let Some(topo) = topo {
        let (ns, d) = owned_names(topo, run_root);
        namespaces.extend(ns);
        dirs.extend(d);
    }
    dirs.push(lab_dir(run_root, lab));
    for ns in &namespaces {
        if !crate::netns::netns_exists(ns) {
            continue;
        }
        // Whatever still runs there is ours: it can only have been started in our namespace.
        for pid in crate::netns::netns_pids(ns) {
            if crate::process::alive(pid) {
                crate::process::terminate(pid);
                done.processes += 1;
            }
        }
        progress(&format!("deleting namespace {ns}"));
        crate::netns::ip(&["netns", "delete", ns])?;
        done.namespaces += 1;
    }
    // Links live in the namespaces just deleted; one whose namespace survived is removed here.
    if let Some(state) = &state {
        for r in &state.resources {
            if let Resource::Link { netns, name } = r {
                if crate::netns::netns_exists(netns) {
                    let _ = crate::links::apply(
                        netns,
                        crate::links::LinkOp::Delete { dev: name.clone() },
                    );
                }
            }
        }
    }
    for dir in dirs {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| LabError::io("cannot remove", &dir, e))?;
            done.dirs += 1;
        }
    }
    Ok(done)
}

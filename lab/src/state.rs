//! The state file of a deployed lab (`/run/lab/<lab>/state.json`). Each resource is recorded
//! BEFORE it is created, and the file is rewritten atomically each time, so `destroy` can undo a
//! deployment that crashed or failed half-way.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::plan::NodeInfo;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    Dir {
        path: PathBuf,
    },
    Netns {
        name: String,
    },
    /// A veth or bridge, named inside a namespace.
    Link {
        netns: String,
        name: String,
    },
    Process {
        node: String,
        name: String,
        netns: String,
        pid: i32,
        /// From /proc/<pid>/stat; with the pid it identifies the process we started.
        start_time: u64,
        log: PathBuf,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub lab: String,
    pub topology_file: PathBuf,
    pub lab_dir: PathBuf,
    pub nodes: Vec<NodeInfo>,
    /// Every namespace the lab owns, also those not created yet (for the destroy sweep).
    pub namespaces: Vec<String>,
    /// Directories outside `lab_dir` the lab owns.
    pub extra_dirs: Vec<PathBuf>,
    pub resources: Vec<Resource>,
    /// True once the deployment finished.
    pub complete: bool,
    /// Why the deployment failed, if it did.
    pub error: Option<String>,
}

pub fn state_path(lab_dir: &Path) -> PathBuf {
    lab_dir.join("state.json")
}

impl State {
    pub fn path(&self) -> PathBuf {
        state_path(&self.lab_dir)
    }

    pub fn load(path: &Path) -> Result<State, LabError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LabError::io("cannot read state file", path, e))?;
        serde_json::from_str(&text).map_err(|source| LabError::State {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes to a temporary file and renames it over the old one, so a crash never leaves a
    /// torn state file.
    pub fn save(&self) -> Result<(), LabError> {
        let path = self.path();
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|source| LabError::State {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, text).map_err(|e| LabError::io("cannot write state file", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LabError::io("cannot write state file", &path, e))
    }

    /// Records a resource about to be created.
    pub fn record(&mut self, resource: Resource) -> Result<(), LabError> {
        self.resources.push(resource);
        self.save()
    }

    pub fn processes(&self) -> impl Iterator<Item = &Resource> {
        self.resources
            .iter()
            .filter(|r| matches!(r, Resource::Process { .. }))
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// All state files under the run root (one per deployed lab).
pub fn all_states(run_root: &Path) -> Vec<State> {
    let Ok(entries) = std::fs::read_dir(run_root) else {
        return Vec::new();
    };
    let mut states: Vec<State> = entries
        .flatten()
        .filter_map(|e| State::load(&state_path(&e.path())).ok())
        .collect();
    states.sort_by(|a, b| a.lab.cmp(&b.lab));
    states
}

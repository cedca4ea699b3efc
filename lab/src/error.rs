//! The library's error type: every failure names what it was doing and, for daemons, shows the
//! end of the daemon's log, since that is where the reason is.

use std::path::PathBuf;

use crate::plan::PlanError;
use crate::topology::TopologyError;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("node {node}: {what} not ready after {secs}s (last probe: {probe}){log}")]
    NotReady {
        node: String,
        what: String,
        secs: u64,
        probe: String,
        log: String,
    },
    #[error("node {node}: {daemon} exited while starting{log}")]
    DaemonDied {
        node: String,
        daemon: String,
        log: String,
    },
    #[error("lab {lab} is already deployed (state in {}); destroy it first or deploy with --reconfigure", state.display())]
    AlreadyDeployed { lab: String, state: PathBuf },
    #[error("lab {lab} is not deployed (no state file {})", state.display())]
    NotDeployed { lab: String, state: PathBuf },
    #[error("state file {}: {source}", path.display())]
    State {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("netlink in namespace {netns}: {op} failed: {message}")]
    Netlink {
        netns: String,
        op: String,
        message: String,
    },
    #[error("node {node}: {inner}")]
    InNode { node: String, inner: Box<LabError> },
}

impl LabError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> LabError {
        LabError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

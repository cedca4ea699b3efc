//! Test fixtures (feature `test-support`): real etcd processes on free loopback ports with
//! temporary data directories, killed and cleaned up on drop. Used by this crate's tests and
//! by the master's.

mod member;
mod tls;

use std::path::Path;
use std::time::Duration;

use member::Member;
pub use tls::{ServerTls, TlsFiles};

/// Where Debian's `etcd-server` package installs etcd.
pub const ETCD_BINARY: &str = "/usr/bin/etcd";
/// How long a member may take to report healthy (the CI machine is small and busy).
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Attempts with fresh ports when a port picked as free got taken meanwhile.
const START_ATTEMPTS: usize = 3;

#[derive(thiserror::Error, Debug)]
pub enum FixtureError {
    #[error(
        "etcd binary {ETCD_BINARY} not found: the etcd tests need the Debian package etcd-server"
    )]
    EtcdMissing,
    #[error("etcd fixture i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("etcd member {name} did not become healthy: {reason}; log tail:\n{log}")]
    NotHealthy {
        name: String,
        reason: String,
        log: String,
    },
    #[error("etcd cluster size must be at least 1")]
    EmptyCluster,
    #[error("no etcd member {0}")]
    NoSuchMember(usize),
    #[error("etcd fixture task failed: {0}")]
    Task(String),
    #[error("etcd fixture certificates: {0}")]
    Certificate(#[from] rcgen::Error),
}

async fn blocking<T: Send + 'static>(
    start: impl FnOnce() -> Result<T, FixtureError> + Send + 'static,
) -> Result<T, FixtureError> {
    tokio::task::spawn_blocking(start)
        .await
        .map_err(|e| FixtureError::Task(e.to_string()))?
}

/// A single-member etcd on loopback.
pub struct EtcdProcess {
    cluster: EtcdCluster,
}

impl EtcdProcess {
    /// Starts etcd and waits (bounded) until it answers its health check.
    pub fn start() -> Result<Self, FixtureError> {
        Ok(Self {
            cluster: EtcdCluster::start(1)?,
        })
    }

    /// [`EtcdProcess::start`] off the async runtime's threads.
    pub async fn start_async() -> Result<Self, FixtureError> {
        blocking(Self::start).await
    }

    /// An etcd serving clients only over TLS (`https://` endpoints) and only to clients with
    /// a certificate signed by its CA; the certificates are generated ([`Self::tls_files`]).
    pub fn start_tls() -> Result<Self, FixtureError> {
        Ok(Self {
            cluster: EtcdCluster::start_with(1, true)?,
        })
    }

    /// [`EtcdProcess::start_tls`] off the async runtime's threads.
    pub async fn start_tls_async() -> Result<Self, FixtureError> {
        blocking(Self::start_tls).await
    }

    /// The certificates of a TLS etcd (none for a plain one).
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.cluster.tls_files.as_ref()
    }

    /// Client URLs, e.g. `["http://127.0.0.1:40123"]`.
    pub fn endpoints(&self) -> Vec<String> {
        self.cluster.endpoints()
    }

    /// SIGKILLs etcd (data directory kept), as a crash or power loss would stop it.
    pub fn kill(&mut self) -> Result<(), FixtureError> {
        self.cluster.kill_member(0)
    }

    /// Starts etcd again on the same ports and data directory and waits until healthy.
    pub fn restart(&mut self) -> Result<(), FixtureError> {
        self.cluster.restart_member(0)
    }

    pub fn data_dir(&self) -> &Path {
        self.cluster.members[0].data_dir()
    }
}

/// An etcd cluster of several members, all on loopback with distinct ports.
pub struct EtcdCluster {
    members: Vec<Member>,
    tls_files: Option<TlsFiles>,
    // Dropped after the members (fields drop in order), so processes die before files go.
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    pub fn start(size: usize) -> Result<Self, FixtureError> {
        Self::start_with(size, false)
    }

    /// `tls`: clients over TLS only, with client certificates (see [`EtcdProcess::start_tls`]).
    pub fn start_with(size: usize, tls: bool) -> Result<Self, FixtureError> {
        if size == 0 {
            return Err(FixtureError::EmptyCluster);
        }
        if !Path::new(ETCD_BINARY).exists() {
            return Err(FixtureError::EtcdMissing);
        }
        let mut attempt = 1;
        loop {
            match Self::try_start(size, tls) {
                Ok(cluster) => return Ok(cluster),
                Err(error) if attempt < START_ATTEMPTS => {
                    tracing::warn!(%error, attempt, "etcd fixture start failed, retrying");
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// [`EtcdCluster::start`] off the async runtime's threads.
    pub async fn start_async(size: usize) -> Result<Self, FixtureError> {
        blocking(move || Self::start(size)).await
    }

    fn try_start(size: usize, tls: bool) -> Result<Self, FixtureError> {
        let dir = tempfile::Builder::new()
            .prefix("fabric-store-etcd-")
            .tempdir()?;
        let token = format!(
            "fabric-store-{}-{}",
            std::process::id(),
            dir.path().display()
        );
        let tls_files = match tls {
            true => Some(TlsFiles::generate(&dir.path().join("tls"))?),
            false => None,
        };
        let server = tls_files.as_ref().map(TlsFiles::server);
        let mut members = Member::plan(size, dir.path(), &token, server.as_ref())?;
        for member in &mut members {
            member.spawn(true)?;
        }
        for member in &mut members {
            member.wait_healthy(START_DEADLINE)?;
        }
        Ok(Self {
            members,
            tls_files,
            _dir: dir,
        })
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// SIGKILLs one member; its data directory stays for a restart.
    pub fn kill_member(&mut self, index: usize) -> Result<(), FixtureError> {
        self.member(index)?.kill();
        Ok(())
    }

    /// Restarts a killed member on its ports and data directory; waits until it is healthy.
    pub fn restart_member(&mut self, index: usize) -> Result<(), FixtureError> {
        let member = self.member(index)?;
        member.kill();
        member.spawn(false)?;
        member.wait_healthy(START_DEADLINE)
    }

    fn member(&mut self, index: usize) -> Result<&mut Member, FixtureError> {
        self.members
            .get_mut(index)
            .ok_or(FixtureError::NoSuchMember(index))
    }
}

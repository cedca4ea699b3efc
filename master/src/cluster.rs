//! This master's place among several: its id, the record that tells agents where its REST API
//! and its route reflector are (refreshed while it runs), and the reflector itself. The flags
//! live here so `main` only hands them over.

use crate::fleet::{MasterRecord, REFRESH_SECS};
use crate::master::Master;
use crate::reflector::{Reflector, ReflectorSettings};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// This master's name among several on one store (default: the machine's host name and
    /// the REST listen address).
    #[arg(long = "master-id", env = "NETMASTER_ID", value_parser = parse_id)]
    pub master_id: Option<String>,
    /// Where the BGP route reflector accepts agents (`ip:port`); default: the REST listen
    /// address's IP, port 179. `off` runs no reflector.
    #[arg(long = "reflector-listen", value_name = "ADDR|off")]
    pub reflector_listen: Option<String>,
    /// The reflector's BGP identifier (and cluster id unless --cluster-id); default: its
    /// listen address when that is a specific IPv4 address.
    #[arg(long = "router-id")]
    pub router_id: Option<Ipv4Addr>,
    /// RFC 4456 cluster id of this reflector (default: its router id, so two masters are two
    /// clusters and reflect to each other's clients independently).
    #[arg(long = "cluster-id")]
    pub cluster_id: Option<Ipv4Addr>,
    /// File holding the TCP MD5 key (RFC 2385) every agent session must carry.
    #[arg(long = "reflector-md5-password-file", value_name = "FILE")]
    pub md5_password_file: Option<PathBuf>,
}

fn parse_id(text: &str) -> Result<String, String> {
    fabric_model::fields::name("master-id", text, 128)
        .map(|_| text.to_string())
        .map_err(|e| e.reason)
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("--reflector-listen '{0}': not ip:port or off")]
    ReflectorListen(String),
    #[error("--router-id is needed: the reflector listens on {0}, which names no IPv4 address")]
    NoRouterId(SocketAddr),
    #[error("--reflector-md5-password-file {0}: {1}")]
    Md5File(PathBuf, String),
    #[error(transparent)]
    Reflector(#[from] crate::reflector::ReflectorError),
}

/// What keeps running for the cluster: dropping it stops the reflector and the record's
/// refresh.
pub struct ClusterHandle {
    _reflector: Option<Reflector>,
    refresh: tokio::task::JoinHandle<()>,
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        self.refresh.abort();
    }
}

impl ClusterArgs {
    /// The master's id: the flag, or host name and listen address.
    pub fn id(&self, rest_listen: &SocketAddr) -> String {
        self.master_id.clone().unwrap_or_else(|| {
            let host = crate::tls::hostname().unwrap_or_else(|| "netmaster".into());
            format!("{host}-{}-{}", rest_listen.ip(), rest_listen.port())
                .replace([':', '[', ']'], "-")
        })
    }

    /// The reflector's listen address, none when it is off.
    pub fn reflector_listen(
        &self,
        rest_listen: &SocketAddr,
    ) -> Result<Option<SocketAddr>, ClusterError> {
        match self.reflector_listen.as_deref().map(str::trim) {
            Some("off") => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| ClusterError::ReflectorListen(text.to_string())),
            None => Ok(Some(SocketAddr::new(rest_listen.ip(), 179))),
        }
    }

    fn settings(&self, listen: SocketAddr) -> Result<ReflectorSettings, ClusterError> {
        let router_id = match (self.router_id, listen.ip()) {
            (Some(id), _) => id,
            (None, IpAddr::V4(v4)) if !v4.is_unspecified() => v4,
            _ => return Err(ClusterError::NoRouterId(listen)),
        };
        let md5_password = match &self.md5_password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| ClusterError::Md5File(path.clone(), e.to_string()))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        Ok(ReflectorSettings {
            listen,
            router_id,
            cluster_id: self.cluster_id,
            md5_password,
            hold_time: 9,
        })
    }

    /// Starts the reflector (unless off) and publishes this master's record, refreshed every
    /// [`REFRESH_SECS`]. `url` is where agents and netctl reach this master's REST API.
    pub async fn start(
        &self,
        master: &Arc<Master>,
        rest_listen: &SocketAddr,
        url: String,
    ) -> Result<ClusterHandle, ClusterError> {
        let mut listen = self.reflector_listen(rest_listen)?;
        let reflector = match listen {
            Some(at) => match Reflector::start(master, self.settings(at)?).await {
                Ok(r) => Some(r),
                // Asked for explicitly: a reflector that cannot run stops the master.
                Err(e) if self.reflector_listen.is_some() => return Err(e.into()),
                // The default port may be taken (a BGP daemon on the machine, another master
                // on loopback): serve the API without a reflector, and say so.
                Err(error) => {
                    tracing::error!(%error, listen = %at, "no route reflector on this master (give --reflector-listen to choose another address, or off)");
                    listen = None;
                    None
                }
            },
            None => None,
        };
        // An unspecified listen address says nothing agents could connect to.
        let advertised = listen.filter(|l| !l.ip().is_unspecified());
        if listen.is_some() && advertised.is_none() {
            tracing::warn!("the reflector listens on an unspecified address: agents are not told about it (give --reflector-listen ip:port)");
        }
        let record = MasterRecord {
            id: self.id(rest_listen),
            url,
            reflector: advertised,
            seen: 0,
        };
        let refresh = tokio::spawn(keep_record(Arc::downgrade(master), record));
        Ok(ClusterHandle {
            _reflector: reflector,
            refresh,
        })
    }
}

/// Publishes the record now and every [`REFRESH_SECS`] while the master lives.
async fn keep_record(master: Weak<Master>, mut record: MasterRecord) {
    let mut tick = tokio::time::interval(Duration::from_secs(REFRESH_SECS));
    loop {
        tick.tick().await;
        let Some(m) = master.upgrade() else { return };
        record.seen = crate::auth::caller::now_secs();
        if let Err(error) = m.publish_master(&record).await {
            tracing::warn!(%error, id = %record.id, "cannot publish this master's record; retrying");
            drop(m);
            tokio::time::sleep(Duration::from_secs(1)).await;
            tick.reset_immediately();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        c: ClusterArgs,
    }

    fn args(argv: &[&str]) -> ClusterArgs {
        let mut v = vec!["t"];
        v.extend_from_slice(argv);
        T::try_parse_from(v)
            .map(|t| t.c)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn reflector_listens_beside_the_api_unless_told() {
        let rest: SocketAddr = SocketAddr::from(([10, 0, 0, 10], 9999));
        let a = args(&[]);
        assert_eq!(
            a.reflector_listen(&rest).ok().flatten(),
            Some(SocketAddr::from(([10, 0, 0, 10], 179)))
        );
        assert_eq!(
            args(&["--reflector-listen", "off"])
                .reflector_listen(&rest)
                .ok(),
            Some(None)
        );
        assert!(matches!(
            args(&["--reflector-listen", "nowhere"]).reflector_listen(&rest),
            Err(ClusterError::ReflectorListen(_))
        ));
        let s = a.settings(SocketAddr::from(([10, 0, 0, 10], 179)));
        assert_eq!(
            s.ok().map(|s| s.router_id),
            Some(Ipv4Addr::new(10, 0, 0, 10))
        );
        assert!(matches!(
            a.settings(SocketAddr::from(([0, 0, 0, 0], 179))),
            Err(ClusterError::NoRouterId(_))
        ));
        assert!(T::try_parse_from(["t", "--master-id", "bad id"]).is_err());
    }
}

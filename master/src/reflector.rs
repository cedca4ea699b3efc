//! The master's BGP route reflector (RFC 4456): the `fabric-bgp` speaker with a cluster id,
//! accepting iBGP sessions from agents as route-reflector clients. Agents announce their
//! containers' /32s to every master; each master reflects them, next hop unchanged, to every
//! other agent. It is control plane only: nothing it learns goes into any kernel.
//!
//! Admission: sessions are dynamic neighbours from any address, narrowed once a second to the
//! addresses of registered agents (see `fleet`), so nobody else gets a session, and MD5 where
//! a password is set. The fabric AS comes from the `global` object; when it changes, the
//! speaker restarts with the new one.

use crate::master::Master;
use fabric_bgp::config::DynamicNeighbors;
use fabric_bgp::packet::Afi;
use fabric_bgp::{Speaker, SpeakerConfig};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How the reflector runs (from the master's flags).
#[derive(Debug, Clone)]
pub struct ReflectorSettings {
    /// Where it accepts sessions.
    pub listen: SocketAddr,
    /// The BGP identifier; also the cluster id unless one is given.
    pub router_id: Ipv4Addr,
    pub cluster_id: Option<Ipv4Addr>,
    /// TCP MD5 key every agent session must carry.
    pub md5_password: Option<String>,
    /// Hold time offered to agents (seconds).
    pub hold_time: u16,
}

/// Graceful restart time offered to agents: a master that restarts (a second or two) keeps its
/// clients' routes in their RIBs meanwhile, which matters with one master. Short, because a
/// dead master's paths stay that long: a route withdrawn through the other reflector meanwhile
/// lingers at the agents until then.
const RESTART_TIME: u16 = 30;

/// How often the admitted addresses and the fabric AS are re-read.
const REFRESH: Duration = Duration::from_secs(1);

impl ReflectorSettings {
    /// The speaker's configuration for `fabric_as`.
    pub fn speaker_config(&self, fabric_as: u32) -> SpeakerConfig {
        let mut config = SpeakerConfig::new(fabric_as, self.router_id);
        config.listen = Some(self.listen);
        config.hold_time = self.hold_time;
        config.connect_retry = 1;
        config.cluster_id = Some(self.cluster_id.unwrap_or(self.router_id));
        config.graceful_restart = Some(RESTART_TIME);
        config.restarting = true;
        config.dynamic_neighbors = ["0.0.0.0/0", "::/0"]
            .iter()
            .filter_map(|p| p.parse().ok())
            .map(|prefix| DynamicNeighbors {
                prefix,
                peer_as: Some(fabric_as),
                rr_client: true,
                max_prefix: None,
                families: vec![Afi::Ipv4, Afi::Ipv6],
                md5_password: self.md5_password.clone(),
            })
            .collect();
        config
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReflectorError {
    #[error("route reflector: {0}")]
    Speaker(#[from] fabric_bgp::SpeakerError),
}

/// A running reflector; dropping it stops the speaker.
pub struct Reflector {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Reflector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reflector {
    /// Starts the speaker (its listener is bound when this returns) and the loop that keeps
    /// its admission list and AS in step with the store.
    pub async fn start(
        master: &Arc<Master>,
        settings: ReflectorSettings,
    ) -> Result<Reflector, ReflectorError> {
        let fabric_as = master.fleet_view().fabric_as;
        let speaker = start_speaker(&settings, fabric_as).await?;
        let admitted = master.admitted_peers();
        speaker.set_dynamic_allowed(Some(admitted.clone()));
        tracing::info!(listen = %settings.listen, fabric_as, router_id = %settings.router_id, "route reflector started");
        let task = tokio::spawn(keep_in_step(
            Arc::downgrade(master),
            settings,
            speaker,
            fabric_as,
            admitted,
        ));
        Ok(Reflector { task })
    }
}

async fn start_speaker(
    settings: &ReflectorSettings,
    fabric_as: u32,
) -> Result<Speaker, ReflectorError> {
    Ok(Speaker::new(settings.speaker_config(fabric_as)).await?)
}

/// Re-reads the admitted addresses and the fabric AS every [`REFRESH`] for as long as the
/// master lives.
async fn keep_in_step(
    master: Weak<Master>,
    settings: ReflectorSettings,
    mut speaker: Speaker,
    mut fabric_as: u32,
    mut admitted: BTreeSet<IpAddr>,
) {
    let mut tick = tokio::time::interval(REFRESH);
    loop {
        tick.tick().await;
        let Some(m) = master.upgrade() else { break };
        let wanted_as = m.fleet_view().fabric_as;
        let now_admitted = m.admitted_peers();
        drop(m);
        if wanted_as != fabric_as {
            tracing::info!(
                from = fabric_as,
                to = wanted_as,
                "fabric AS changed: restarting the route reflector"
            );
            speaker.shutdown().await;
            speaker = loop {
                match start_speaker(&settings, wanted_as).await {
                    Ok(s) => break s,
                    Err(error) => {
                        tracing::error!(%error, "route reflector restart failed; retrying");
                        tokio::time::sleep(REFRESH).await;
                    }
                }
            };
            fabric_as = wanted_as;
            speaker.set_dynamic_allowed(Some(now_admitted.clone()));
            admitted = now_admitted;
            continue;
        }
        if now_admitted != admitted {
            tracing::debug!(
                admitted = now_admitted.len(),
                "route reflector admits a new set of agents"
            );
            speaker.set_dynamic_allowed(Some(now_admitted.clone()));
            admitted = now_admitted;
        }
    }
    speaker.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_ibgp_route_reflector_clients_of_both_families() {
        let s = ReflectorSettings {
            listen: SocketAddr::from(([10, 0, 0, 10], 179)),
            router_id: Ipv4Addr::new(10, 0, 0, 10),
            cluster_id: None,
            md5_password: Some("k".into()),
            hold_time: 9,
        };
        let c = s.speaker_config(65000);
        assert_eq!(c.local_as, 65000);
        assert_eq!(
            c.cluster_id,
            Some(s.router_id),
            "cluster id defaults to router id"
        );
        assert_eq!(c.dynamic_neighbors.len(), 2);
        for d in &c.dynamic_neighbors {
            assert!(d.rr_client);
            assert_eq!(d.peer_as, Some(65000), "iBGP only");
            assert_eq!(d.families, vec![Afi::Ipv4, Afi::Ipv6]);
            assert_eq!(d.md5_password.as_deref(), Some("k"));
        }
        assert!(c.validate().is_ok());
    }
}

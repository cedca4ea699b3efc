//! Dynamic neighbours (a reflector's agents): admission of connections from the configured
//! prefixes (the admission list, the session cap), and forgetting a neighbour when its
//! session ends, so thousands of hosts coming and going leave nothing behind.
//!
//! A neighbour whose session ended gracefully (RFC 4724 negotiated) leaves stale routes
//! that the helper rules keep until End-of-RIB or the restart timer. Its peer entry and task
//! go at once; only its RIB slot, holding those routes, stays as an "orphan" until the timer
//! purges them (then the slot is freed) or the neighbour comes back and takes it again.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap;
use tokio::net::TcpStream;

use super::core::Core;
use super::DynamicStats;
use crate::config::PeerConfig;
use crate::packet::error::cease;
use crate::rib::PeerId;
use crate::session::socket;
use crate::session::SessionCmd;

/// The core's state for dynamic neighbours.
#[derive(Debug, Default)]
pub(super) struct Dynamic {
    /// Admission list (`Speaker::set_dynamic_allowed`); None admits any address.
    allowed: Option<BTreeSet<IpAddr>>,
    /// Dynamic neighbours with a peer entry.
    pub(super) active: usize,
    /// RIB slots of gone neighbours that still hold stale routes, by address.
    pub(super) orphans: FxHashMap<IpAddr, PeerId>,
    /// Counters (`active` and `retained` are filled in when asked).
    pub(super) stats: DynamicStats,
}

impl Dynamic {
    fn admitted(&self, ip: &IpAddr) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|allowed| allowed.contains(ip))
    }

    /// The RIB slot a returning neighbour left its stale routes in.
    pub(super) fn adopt(&mut self, address: IpAddr) -> Option<PeerId> {
        self.orphans.remove(&address)
    }

    /// The orphan holding RIB slot `peer`, no longer kept; None when the slot is not an
    /// orphan's (a live peer's timer).
    pub(super) fn release_orphan(&mut self, peer: PeerId) -> Option<IpAddr> {
        let address = self
            .orphans
            .iter()
            .find(|(_, id)| **id == peer)
            .map(|(a, _)| *a)?;
        self.orphans.remove(&address);
        Some(address)
    }

    pub(super) fn stats(&self) -> DynamicStats {
        DynamicStats {
            active: self.active,
            retained: self.orphans.len(),
            ..self.stats
        }
    }
}

impl Core {
    /// A new admission list: dynamic neighbours it leaves out are closed with Cease/3.
    pub(super) fn set_dynamic_allowed(&mut self, allowed: Option<BTreeSet<IpAddr>>) {
        self.dynamic.allowed = allowed;
        let doomed: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(ip, e)| e.dynamic && !self.dynamic.admitted(ip))
            .map(|(ip, _)| *ip)
            .collect();
        for ip in doomed {
            tracing::info!(peer = %ip, "dynamic neighbour no longer registered: session closed");
            // De-configured, not restarting: its routes go now, stale or not.
            self.remove_peer_with(ip, Some(SessionCmd::Cease(cease::PEER_DECONFIGURED)), false);
        }
        // A neighbour gone before and now unregistered will not be back for its routes.
        let unregistered: Vec<(IpAddr, PeerId)> = self
            .dynamic
            .orphans
            .iter()
            .filter(|(ip, _)| !self.dynamic.admitted(ip))
            .map(|(ip, id)| (*ip, *id))
            .collect();
        for (ip, id) in unregistered {
            self.dynamic.orphans.remove(&ip);
            self.free_rib_slot(id);
        }
    }

    /// The session of a dynamic neighbour ended and its task has no connection left: forget
    /// it, keeping stale routes under the graceful-restart rules.
    pub(super) fn retire_dynamic(&mut self, address: IpAddr) {
        tracing::debug!(peer = %address, "dynamic neighbour gone: state dropped");
        self.remove_peer_with(address, None, true);
    }

    /// A connection on the listener: to a configured peer's task, to a dynamic neighbour's
    /// (a new one if admitted), or closed.
    pub(super) fn accepted(&mut self, stream: TcpStream, remote: SocketAddr) {
        let ip = remote.ip();
        let dynamic = self.peers.get(&ip).is_none_or(|e| e.dynamic);
        if dynamic && !self.dynamic.admitted(&ip) {
            // Dropping the stream closes it: nothing of the peer is read.
            tracing::warn!(peer = %ip, "dynamic neighbour refused: not a registered host");
            self.dynamic.stats.refused_not_allowed += 1;
            return;
        }
        if !self.peers.contains_key(&ip) {
            let Some(range) = self
                .config
                .dynamic_neighbors
                .iter()
                .find(|d| d.prefix.contains(&ip))
                .cloned()
            else {
                tracing::info!(%remote, "connection from an unknown address refused");
                return;
            };
            if self.dynamic.active >= self.config.max_dynamic_peers {
                tracing::warn!(
                    peer = %ip,
                    limit = self.config.max_dynamic_peers,
                    "dynamic neighbour refused: too many dynamic sessions"
                );
                self.dynamic.stats.refused_limit += 1;
                return;
            }
            let mut cfg = PeerConfig::new(ip, range.peer_as);
            cfg.passive = true;
            cfg.rr_client = range.rr_client;
            cfg.max_prefix = range.max_prefix;
            cfg.families = range.families;
            cfg.port = remote.port();
            if let Err(e) = self.add_peer(cfg, true) {
                tracing::warn!(%remote, error = %e, "dynamic neighbour refused");
                return;
            }
            tracing::info!(%remote, "dynamic neighbour accepted");
            self.dynamic.stats.accepted += 1;
        }
        let Some(entry) = self.peers.get_mut(&ip) else {
            return;
        };
        if let Some(hops) = entry.config.ttl_security {
            if let Err(e) = socket::set_ttl_security(&stream, ip.is_ipv6(), hops) {
                tracing::warn!(%remote, error = %e, "TTL security not applied; connection refused");
                return;
            }
        }
        entry.inbound_sent += 1;
        let _ = entry.cmd.send(SessionCmd::Inbound(stream));
    }
}

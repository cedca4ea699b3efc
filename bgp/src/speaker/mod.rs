//! The public API: a speaker with its peers, RIBs and listener, run by one core task that owns
//! the RIB and talks to one session task per peer.
//!
//! - `core.rs`: the core task (peer table, session events, flushes);
//! - `dynamic.rs`: dynamic neighbours (admission, cap, forgetting them when they go);
//! - `evpn.rs`: EVPN routes (origination, Loc-RIB, their own subscribers);
//! - `queries.rs`: API commands and the read-only queries.

mod core;
mod dynamic;
mod evpn;
mod queries;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use self::core::Core;
pub use self::evpn::{EvpnEvent, EvpnRibRoute};
use crate::config::{ConfigError, PeerConfig, SpeakerConfig};
use crate::packet::{Afi, EvpnKey, EvpnRoute, Origin, PathAttrs, Prefix};
use crate::policy::Policy;
use crate::rib::{BestChange, PeerId, Rib, RibConfig};
use crate::session::socket;
use crate::session::SessionStatus;

/// Errors of the speaker API.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("peer {0} already exists")]
    PeerExists(IpAddr),
    #[error("md5 key for peer {peer}: {source}")]
    Md5 {
        peer: IpAddr,
        source: std::io::Error,
    },
    #[error("md5 key for dynamic neighbours {prefix}: {source}")]
    DynamicMd5 {
        prefix: ipnet::IpNet,
        source: std::io::Error,
    },
    #[error("the speaker has stopped")]
    Stopped,
}

/// One peer as `inspect` and metrics see it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerState {
    #[serde(flatten)]
    pub session: SessionStatus,
    pub received_prefixes: u64,
    pub advertised_prefixes: u64,
    pub dynamic: bool,
}

/// Aggregate counters of dynamic-neighbour sessions (their per-peer state goes with them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DynamicStats {
    /// Dynamic neighbours with a peer entry now.
    pub active: usize,
    /// Connections that created a dynamic neighbour.
    pub accepted: u64,
    /// Connections refused because the address is not in the admission list
    /// (`set_dynamic_allowed`).
    pub refused_not_allowed: u64,
    /// Connections refused because `max_dynamic_peers` sessions were already there.
    pub refused_limit: u64,
    /// Dynamic neighbours whose session ended and whose state was dropped, or that were
    /// closed when the admission list lost them.
    pub ended: u64,
    /// Gone dynamic neighbours whose stale routes are still kept (graceful restart: until
    /// they come back and send End-of-RIB, or their restart timer runs out).
    pub retained: usize,
}

/// What a subscriber receives, in the order it happened.
#[derive(Debug, Clone)]
pub enum RibEvent {
    /// Best-path changes, in a batch; the first event is the whole Loc-RIB.
    Changes(Vec<BestChange>),
    /// `peer` has sent End-of-RIB for `afi` in its current session (RFC 4724 §2): the routes
    /// of its initial update are in the Loc-RIB and its stale paths from an earlier session
    /// are gone, and every best-path change that follows from them came in a `Changes` before
    /// this event. Sent once per session and family; a subscriber that joins later gets it
    /// right after its snapshot.
    EndOfRib { peer: IpAddr, afi: Afi },
}

/// One Loc-RIB entry as shown to operators and tests.
#[derive(Debug, Clone, Serialize)]
pub struct RibRoute {
    pub prefix: Prefix,
    /// Next hops of the best path and its ECMP siblings.
    pub next_hops: Vec<Option<IpAddr>>,
    pub as_path: Vec<u32>,
    pub origin: Origin,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub communities: Vec<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Where the best path came from; None for our own routes.
    pub from: Option<IpAddr>,
    pub stale: bool,
}

enum CoreMsg {
    Accepted(TcpStream, SocketAddr),
    AddPeer(PeerConfig, oneshot::Sender<Result<(), SpeakerError>>),
    RemovePeer(IpAddr, oneshot::Sender<bool>),
    Announce(Vec<Prefix>, PathAttrs),
    Withdraw(Vec<Prefix>),
    AnnounceEvpn(Vec<EvpnRoute>, PathAttrs),
    WithdrawEvpn(Vec<EvpnKey>),
    SubscribeEvpn(mpsc::UnboundedSender<EvpnEvent>),
    EvpnRib(oneshot::Sender<Vec<EvpnRibRoute>>),
    Subscribe(mpsc::UnboundedSender<RibEvent>),
    PeerStates(oneshot::Sender<Vec<PeerState>>),
    LocRib(oneshot::Sender<Vec<RibRoute>>),
    RibSize(oneshot::Sender<usize>),
    Refresh(IpAddr),
    SetDynamicAllowed(Option<BTreeSet<IpAddr>>),
    DynamicStats(oneshot::Sender<DynamicStats>),
    StaleTimer { peer: PeerId, generation: u64 },
    Shutdown(oneshot::Sender<()>),
}

/// A running BGP speaker. Dropping it stops the core and every session.
pub struct Speaker {
    tx: mpsc::UnboundedSender<CoreMsg>,
    listen_addr: Option<SocketAddr>,
}

impl Speaker {
    /// Validate the configuration, bind the listener and start the configured peers.
    pub async fn new(config: SpeakerConfig) -> Result<Speaker, SpeakerError> {
        Self::with_policy(config, Arc::new(crate::policy::AcceptAll)).await
    }

    pub async fn with_policy(
        config: SpeakerConfig,
        policy: Arc<dyn Policy>,
    ) -> Result<Speaker, SpeakerError> {
        config.validate()?;
        let listener = match config.listen {
            Some(addr) => Some(Arc::new(
                socket::listen(addr).map_err(|source| SpeakerError::Listen { addr, source })?,
            )),
            None => None,
        };
        if let Some(l) = &listener {
            for d in &config.dynamic_neighbors {
                if let Some(key) = &d.md5_password {
                    socket::set_md5_prefix(&**l, d.prefix, key).map_err(|source| {
                        SpeakerError::DynamicMd5 {
                            prefix: d.prefix,
                            source,
                        }
                    })?;
                }
            }
        }
        let listen_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let (tx, rx) = mpsc::unbounded_channel();
        let (session_tx, session_rx) = mpsc::unbounded_channel();
        let mut rib = Rib::new(RibConfig {
            local_as: config.local_as,
            router_id: config.router_id,
            cluster_id: config.cluster_id,
            max_paths: config.max_paths,
            track_changes: false,
            export_local_only: config.export_local_only,
        });
        rib.set_policy(policy);
        if let Some(l) = &listener {
            tokio::spawn(accept_loop(l.clone(), tx.clone()));
        }
        let mut core = Core::new(config.clone(), rib, session_tx, tx.downgrade(), listener);
        for peer in config.peers.clone() {
            core.add_peer(peer, false)?;
        }
        tokio::spawn(core.run(rx, session_rx));
        Ok(Speaker { tx, listen_addr })
    }

    /// Where the listener is bound (useful with port 0).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    fn send(&self, msg: CoreMsg) -> Result<(), SpeakerError> {
        self.tx.send(msg).map_err(|_| SpeakerError::Stopped)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> CoreMsg,
    ) -> Result<T, SpeakerError> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply))?;
        rx.await.map_err(|_| SpeakerError::Stopped)
    }

    pub async fn add_peer(&self, peer: PeerConfig) -> Result<(), SpeakerError> {
        self.ask(|r| CoreMsg::AddPeer(peer, r)).await?
    }

    /// Remove a peer (its session ends with Cease, its routes are withdrawn). False if unknown.
    pub async fn remove_peer(&self, address: IpAddr) -> Result<bool, SpeakerError> {
        self.ask(|r| CoreMsg::RemovePeer(address, r)).await
    }

    /// Originate `prefixes` with `attrs` (next hop unset = our session address).
    pub fn announce(&self, prefixes: Vec<Prefix>, attrs: PathAttrs) -> Result<(), SpeakerError> {
        self.send(CoreMsg::Announce(prefixes, attrs))
    }

    pub fn withdraw(&self, prefixes: Vec<Prefix>) -> Result<(), SpeakerError> {
        self.send(CoreMsg::Withdraw(prefixes))
    }

    /// Originate EVPN routes (L2VPN/EVPN, RFC 7432) with `attrs`: `next_hop` is the VTEP
    /// (unset: the session's configured next hop or local address), `ext_communities` the
    /// route targets, encapsulation and the like, `pmsi_tunnel` a type 3's flooding tunnel.
    /// They go to peers that negotiated the family. A route replaces ours of the same key.
    pub fn announce_evpn(
        &self,
        routes: Vec<EvpnRoute>,
        attrs: PathAttrs,
    ) -> Result<(), SpeakerError> {
        self.send(CoreMsg::AnnounceEvpn(routes, attrs))
    }

    /// Stop originating the EVPN routes of these keys (`EvpnRoute::key`).
    pub fn withdraw_evpn(&self, keys: Vec<EvpnKey>) -> Result<(), SpeakerError> {
        self.send(CoreMsg::WithdrawEvpn(keys))
    }

    /// EVPN best-path changes and the family's End-of-RIBs (see `EvpnEvent`); the first event
    /// is the current EVPN Loc-RIB.
    pub fn subscribe_evpn(&self) -> Result<mpsc::UnboundedReceiver<EvpnEvent>, SpeakerError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(CoreMsg::SubscribeEvpn(tx))?;
        Ok(rx)
    }

    /// The EVPN Loc-RIB: the best path of every EVPN route.
    pub async fn evpn_rib(&self) -> Result<Vec<EvpnRibRoute>, SpeakerError> {
        self.ask(CoreMsg::EvpnRib).await
    }

    /// Best-path changes, in batches (the first is the current Loc-RIB, followed by the
    /// End-of-RIB of every peer whose session has already sent one), and each peer's
    /// End-of-RIB after the changes its initial update caused.
    pub fn subscribe(&self) -> Result<mpsc::UnboundedReceiver<RibEvent>, SpeakerError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(CoreMsg::Subscribe(tx))?;
        Ok(rx)
    }

    pub async fn peer_states(&self) -> Result<Vec<PeerState>, SpeakerError> {
        self.ask(CoreMsg::PeerStates).await
    }

    pub async fn loc_rib(&self) -> Result<Vec<RibRoute>, SpeakerError> {
        self.ask(CoreMsg::LocRib).await
    }

    pub async fn loc_rib_len(&self) -> Result<usize, SpeakerError> {
        self.ask(CoreMsg::RibSize).await
    }

    /// Send ROUTE-REFRESH to a peer.
    pub fn route_refresh(&self, peer: IpAddr) -> Result<(), SpeakerError> {
        self.send(CoreMsg::Refresh(peer))
    }

    /// Which addresses of the dynamic-neighbour prefixes may connect: None (the default) any,
    /// Some(set) only these. Any other connection from a dynamic prefix is closed before its
    /// OPEN is read (and counted in `dynamic_stats().refused_not_allowed`); sessions of
    /// dynamic neighbours the new set leaves out end with Cease/3 (peer de-configured).
    /// Configured peers are not affected. Meant to be called again whenever the set changes.
    pub fn set_dynamic_allowed(&self, allowed: Option<BTreeSet<IpAddr>>) {
        // A stopped speaker admits nobody anyway.
        let _ = self.send(CoreMsg::SetDynamicAllowed(allowed));
    }

    /// Aggregate counters of dynamic-neighbour sessions.
    pub async fn dynamic_stats(&self) -> Result<DynamicStats, SpeakerError> {
        self.ask(CoreMsg::DynamicStats).await
    }

    /// Stop every session (Cease/admin shutdown) and the core.
    pub async fn shutdown(self) {
        let _ = self.ask(CoreMsg::Shutdown).await;
    }
}

async fn accept_loop(listener: Arc<TcpListener>, tx: mpsc::UnboundedSender<CoreMsg>) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                if tx.send(CoreMsg::Accepted(stream, remote)).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

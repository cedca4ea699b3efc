//! The public API: a speaker with its peers, RIBs and listener, run by one core task that owns
//! the RIB and talks to one session task per peer.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::config::{ConfigError, PeerConfig, SpeakerConfig};
use crate::fsm::{Fsm, FsmConfig};
use crate::packet::error::cease;
use crate::packet::{Afi, Origin, PathAttrs, Prefix};
use crate::policy::Policy;
use crate::rib::{BestChange, PeerId, PeerInfo, Rib, RibConfig, LOCAL_PEER};
use crate::session::driver::{self, SessionSetup};
use crate::session::socket::{self, SocketOptions};
use crate::session::{SessionCmd, SessionEvent, SessionKey, SessionStatus};

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
        let mut core = Core {
            config: config.clone(),
            rib,
            peers: FxHashMap::default(),
            by_id: FxHashMap::default(),
            by_session: FxHashMap::default(),
            next_session: 1,
            dynamic_allowed: None,
            dynamic_stats: DynamicStats::default(),
            subscribers: Vec::new(),
            session_tx,
            tx: tx.downgrade(),
            listener,
        };
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

struct PeerEntry {
    id: PeerId,
    session: SessionKey,
    config: PeerConfig,
    cmd: mpsc::UnboundedSender<SessionCmd>,
    status: Arc<Mutex<SessionStatus>>,
    epoch: u64,
    dynamic: bool,
    stale_generation: u64,
    /// Families the current session has sent End-of-RIB for.
    end_of_rib: Vec<Afi>,
}

struct Core {
    config: SpeakerConfig,
    rib: Rib,
    peers: FxHashMap<IpAddr, PeerEntry>,
    by_id: FxHashMap<PeerId, IpAddr>,
    /// The running session tasks, by the key their events carry.
    by_session: FxHashMap<SessionKey, IpAddr>,
    next_session: SessionKey,
    /// Admission list of dynamic neighbours (`Speaker::set_dynamic_allowed`).
    dynamic_allowed: Option<BTreeSet<IpAddr>>,
    dynamic_stats: DynamicStats,
    subscribers: Vec<mpsc::UnboundedSender<RibEvent>>,
    session_tx: mpsc::UnboundedSender<SessionEvent>,
    tx: mpsc::WeakUnboundedSender<CoreMsg>,
    listener: Option<Arc<TcpListener>>,
}

/// Session events (UPDATEs for a batch of them) handled between two flushes, so UPDATE
/// packing sees large batches while commands (a count, an announcement) still get in often.
const BATCH: usize = 64;

impl Core {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<CoreMsg>,
        mut sessions: mpsc::UnboundedReceiver<SessionEvent>,
    ) {
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(CoreMsg::Shutdown(reply)) => {
                        self.stop_all();
                        let _ = reply.send(());
                        return;
                    }
                    Some(msg) => self.handle(msg),
                    None => {
                        self.stop_all();
                        return;
                    }
                },
                Some(ev) = sessions.recv() => self.session_event(ev),
            }
            // Counted in UPDATEs, not events: an event can carry a whole read's worth.
            let mut budget = BATCH;
            while budget > 0 {
                match sessions.try_recv() {
                    Ok(ev) => {
                        budget = budget.saturating_sub(ev.weight());
                        self.session_event(ev);
                    }
                    Err(_) => break,
                }
            }
            for _ in 0..BATCH {
                match rx.try_recv() {
                    Ok(CoreMsg::Shutdown(reply)) => {
                        self.stop_all();
                        let _ = reply.send(());
                        return;
                    }
                    Ok(msg) => self.handle(msg),
                    Err(_) => break,
                }
            }
            self.flush();
        }
    }

    fn stop_all(&mut self) {
        for entry in self.peers.values() {
            let _ = entry.cmd.send(SessionCmd::Stop);
        }
        self.peers.clear();
    }

    fn flush(&mut self) {
        for flush in self.rib.flush() {
            let Some(entry) = self.by_id.get(&flush.peer).and_then(|a| self.peers.get(a)) else {
                continue;
            };
            tracing::debug!(peer = %entry.config.address, messages = flush.messages, announced = flush.announced, withdrawn = flush.withdrawn, "sending updates");
            let _ = entry.cmd.send(SessionCmd::Send {
                epoch: entry.epoch,
                bytes: flush.bytes,
                messages: flush.messages,
            });
        }
        self.publish_changes();
    }

    /// Hands the best-path changes so far to the subscribers.
    fn publish_changes(&mut self) {
        if self.subscribers.is_empty() {
            return;
        }
        let changes = self.rib.take_changes();
        if !changes.is_empty() {
            self.publish(RibEvent::Changes(changes));
        }
    }

    fn publish(&mut self, event: RibEvent) {
        self.subscribers.retain(|s| s.send(event.clone()).is_ok());
        if self.subscribers.is_empty() {
            self.rib.config.track_changes = false;
        }
    }

    /// Our AS on a peer's sessions.
    fn local_as(&self, cfg: &PeerConfig) -> u32 {
        cfg.local_as.unwrap_or(self.config.local_as)
    }

    fn peer_info(&self, cfg: &PeerConfig) -> PeerInfo {
        let local_as = self.local_as(cfg);
        PeerInfo {
            address: cfg.address,
            router_id: Ipv4Addr::UNSPECIFIED,
            asn: cfg.peer_as.unwrap_or(0),
            local_as,
            ibgp: cfg.peer_as == Some(local_as),
            rr_client: cfg.rr_client,
            local_address: cfg
                .local_address
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            local_v6_next_hop: cfg.local_v6_next_hop,
            next_hop: cfg.next_hop,
            next_hop_self: cfg.next_hop_self,
            max_prefix: cfg.max_prefix,
            families: cfg.families.clone(),
            import_local_pref: cfg.import_local_pref,
            enforce_first_as: cfg.enforce_first_as,
        }
    }

    fn add_peer(&mut self, cfg: PeerConfig, dynamic: bool) -> Result<PeerId, SpeakerError> {
        if self.peers.contains_key(&cfg.address) {
            return Err(SpeakerError::PeerExists(cfg.address));
        }
        if let (Some(key), Some(listener)) = (&cfg.md5_password, &self.listener) {
            socket::set_md5(&**listener, cfg.address, key).map_err(|source| SpeakerError::Md5 {
                peer: cfg.address,
                source,
            })?;
        }
        let id = self.rib.add_peer(self.peer_info(&cfg));
        let fsm = Fsm::new(FsmConfig {
            local_as: self.local_as(&cfg),
            local_id: self.config.router_id,
            peer_as: cfg.peer_as,
            hold_time: self.config.hold_time,
            connect_retry: self.config.connect_retry,
            passive: cfg.passive,
            families: cfg.families.clone(),
            graceful_restart: self.config.graceful_restart,
            restarting: self.config.restarting,
        });
        let status = Arc::new(Mutex::new(SessionStatus::new(cfg.address)));
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let session = self.next_session;
        self.next_session += 1;
        let setup = SessionSetup {
            session,
            remote: SocketAddr::new(cfg.address, cfg.port),
            fsm,
            socket: SocketOptions {
                local_address: cfg.local_address,
                md5_password: cfg.md5_password.clone(),
                ttl_security: cfg.ttl_security,
            },
            core: self.session_tx.clone(),
            status: status.clone(),
        };
        tokio::spawn(driver::run(setup, cmd_rx));
        let _ = cmd.send(SessionCmd::Start);
        self.by_id.insert(id, cfg.address);
        self.by_session.insert(session, cfg.address);
        self.peers.insert(
            cfg.address,
            PeerEntry {
                id,
                session,
                config: cfg,
                cmd,
                status,
                epoch: 0,
                dynamic,
                stale_generation: 0,
                end_of_rib: Vec::new(),
            },
        );
        Ok(id)
    }

    fn remove_peer(&mut self, address: IpAddr) -> bool {
        self.remove_peer_with(address, SessionCmd::Stop)
    }

    /// Remove a peer, ending its session with `last` (Stop: Cease/2; or another Cease). Its
    /// task ends once it has carried that out, as its command channel is gone.
    fn remove_peer_with(&mut self, address: IpAddr, last: SessionCmd) -> bool {
        let Some(entry) = self.peers.remove(&address) else {
            return false;
        };
        let _ = entry.cmd.send(last);
        self.by_id.remove(&entry.id);
        self.by_session.remove(&entry.session);
        self.rib.remove_peer(entry.id);
        if let (Some(_), Some(listener)) = (&entry.config.md5_password, &self.listener) {
            let _ = socket::set_md5(&**listener, address, "");
        }
        true
    }

    /// Whether a dynamic neighbour's address is in the admission list.
    fn dynamic_admitted(&self, ip: &IpAddr) -> bool {
        self.dynamic_allowed
            .as_ref()
            .is_none_or(|allowed| allowed.contains(ip))
    }

    fn dynamic_count(&self) -> usize {
        self.peers.values().filter(|e| e.dynamic).count()
    }

    /// A new admission list: dynamic neighbours it leaves out are closed with Cease/3.
    fn set_dynamic_allowed(&mut self, allowed: Option<BTreeSet<IpAddr>>) {
        self.dynamic_allowed = allowed;
        let doomed: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(ip, e)| e.dynamic && !self.dynamic_admitted(ip))
            .map(|(ip, _)| *ip)
            .collect();
        for ip in doomed {
            tracing::info!(peer = %ip, "dynamic neighbour no longer registered: session closed");
            self.remove_peer_with(ip, SessionCmd::Cease(cease::PEER_DECONFIGURED));
            self.dynamic_stats.ended += 1;
        }
    }

    fn accepted(&mut self, stream: TcpStream, remote: SocketAddr) {
        let ip = remote.ip();
        let dynamic = self.peers.get(&ip).is_none_or(|e| e.dynamic);
        if dynamic && !self.dynamic_admitted(&ip) {
            // Dropping the stream closes it: nothing of the peer is read.
            tracing::warn!(peer = %ip, "dynamic neighbour refused: not a registered host");
            self.dynamic_stats.refused_not_allowed += 1;
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
            if self.dynamic_count() >= self.config.max_dynamic_peers {
                tracing::warn!(
                    peer = %ip,
                    limit = self.config.max_dynamic_peers,
                    "dynamic neighbour refused: too many dynamic sessions"
                );
                self.dynamic_stats.refused_limit += 1;
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
            self.dynamic_stats.accepted += 1;
        }
        let Some(entry) = self.peers.get(&ip) else {
            return;
        };
        if let Some(hops) = entry.config.ttl_security {
            if let Err(e) = socket::set_ttl_security(&stream, ip.is_ipv6(), hops) {
                tracing::warn!(%remote, error = %e, "TTL security not applied; connection refused");
                return;
            }
        }
        let _ = entry.cmd.send(SessionCmd::Inbound(stream));
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Accepted(stream, remote) => self.accepted(stream, remote),
            CoreMsg::AddPeer(cfg, reply) => {
                let _ = reply.send(self.add_peer(cfg, false).map(|_| ()));
            }
            CoreMsg::RemovePeer(addr, reply) => {
                let _ = reply.send(self.remove_peer(addr));
            }
            CoreMsg::Announce(prefixes, attrs) => self.rib.announce_local(&prefixes, attrs),
            CoreMsg::Withdraw(prefixes) => self.rib.withdraw_local(&prefixes),
            CoreMsg::Subscribe(tx) => {
                let snapshot: Vec<BestChange> = self
                    .rib
                    .iter_best()
                    .map(|(prefix, paths)| BestChange {
                        prefix,
                        paths: paths.iter().map(|p| p.attrs.clone()).collect(),
                    })
                    .collect();
                let synced = self.peers.iter().flat_map(|(peer, e)| {
                    e.end_of_rib.iter().map(|afi| RibEvent::EndOfRib {
                        peer: *peer,
                        afi: *afi,
                    })
                });
                let sent = std::iter::once(RibEvent::Changes(snapshot))
                    .chain(synced)
                    .all(|event| tx.send(event).is_ok());
                if sent {
                    self.subscribers.push(tx);
                    self.rib.config.track_changes = true;
                }
            }
            CoreMsg::PeerStates(reply) => {
                let states = self
                    .peers
                    .values()
                    .map(|e| PeerState {
                        session: e.status.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                        received_prefixes: self.rib.received_count(e.id),
                        advertised_prefixes: self.rib.advertised_count(e.id),
                        dynamic: e.dynamic,
                    })
                    .collect();
                let _ = reply.send(states);
            }
            CoreMsg::LocRib(reply) => {
                let routes = self
                    .rib
                    .iter_best()
                    .filter_map(|(prefix, paths)| {
                        let best = paths.first()?;
                        let a = &best.attrs;
                        Some(RibRoute {
                            prefix,
                            next_hops: paths.iter().map(|p| p.attrs.next_hop).collect(),
                            as_path: a
                                .as_path
                                .segments
                                .iter()
                                .flat_map(|s| s.asns.iter().copied())
                                .collect(),
                            origin: a.origin,
                            local_pref: a.local_pref,
                            med: a.med,
                            communities: a.communities.clone(),
                            originator_id: a.originator_id,
                            cluster_list: a.cluster_list.clone(),
                            from: (best.peer != LOCAL_PEER)
                                .then(|| self.rib.peer_info(best.peer).map(|i| i.address))
                                .flatten(),
                            stale: best.stale,
                        })
                    })
                    .collect();
                let _ = reply.send(routes);
            }
            CoreMsg::RibSize(reply) => {
                let _ = reply.send(self.rib.len());
            }
            CoreMsg::SetDynamicAllowed(allowed) => self.set_dynamic_allowed(allowed),
            CoreMsg::DynamicStats(reply) => {
                let stats = DynamicStats {
                    active: self.dynamic_count(),
                    ..self.dynamic_stats
                };
                let _ = reply.send(stats);
            }
            CoreMsg::Refresh(addr) => {
                if let Some(e) = self.peers.get(&addr) {
                    let _ = e.cmd.send(SessionCmd::RequestRefresh);
                }
            }
            CoreMsg::StaleTimer { peer, generation } => {
                let current = self
                    .by_id
                    .get(&peer)
                    .and_then(|a| self.peers.get(a))
                    .map(|e| e.stale_generation);
                if current == Some(generation) {
                    tracing::info!(peer, "graceful-restart timer expired: stale routes removed");
                    self.rib.purge_stale(peer, None);
                }
            }
            CoreMsg::Shutdown(_) => {}
        }
    }

    fn start_stale_timer(&mut self, peer: PeerId, secs: u16) {
        let Some(entry) = self.by_id.get(&peer).and_then(|a| self.peers.get_mut(a)) else {
            return;
        };
        entry.stale_generation += 1;
        let generation = entry.stale_generation;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(secs))).await;
            if let Some(tx) = tx.upgrade() {
                let _ = tx.send(CoreMsg::StaleTimer { peer, generation });
            }
        });
    }

    /// Records a peer's End-of-RIB and tells the subscribers, after the best-path changes so
    /// far (those of this UPDATE and of every one before it).
    fn end_of_rib(&mut self, peer: PeerId, afi: Afi) {
        let Some((address, entry)) = self
            .by_id
            .get(&peer)
            .copied()
            .and_then(|a| self.peers.get_mut(&a).map(|e| (a, e)))
        else {
            return;
        };
        if entry.end_of_rib.contains(&afi) {
            return;
        }
        entry.end_of_rib.push(afi);
        tracing::debug!(peer = %address, ?afi, "end-of-rib received");
        self.publish_changes();
        self.publish(RibEvent::EndOfRib { peer: address, afi });
    }

    fn session_event(&mut self, ev: SessionEvent) {
        let key = match &ev {
            SessionEvent::Up { session, .. }
            | SessionEvent::Down { session, .. }
            | SessionEvent::Updates { session, .. }
            | SessionEvent::RefreshRequested { session, .. } => *session,
        };
        // A removed peer's task reports until it has closed its connection; its RIB slot may
        // already be another peer's.
        let Some(peer) = self
            .by_session
            .get(&key)
            .and_then(|a| self.peers.get(a))
            .map(|e| e.id)
        else {
            return;
        };
        match ev {
            SessionEvent::Up {
                session: _,
                epoch,
                negotiated,
                local,
                remote: _,
            } => {
                let Some(entry) = self.by_id.get(&peer).and_then(|a| self.peers.get_mut(a)) else {
                    return;
                };
                entry.epoch = epoch;
                entry.end_of_rib.clear();
                let cfg = entry.config.clone();
                let mut info = self.peer_info(&cfg);
                info.router_id = negotiated.peer_id;
                info.asn = negotiated.peer_as;
                info.ibgp = negotiated.ibgp;
                info.local_address = cfg.local_address.unwrap_or(local.ip());
                info.families = negotiated.families.clone();
                self.rib.set_peer_info(peer, info);
                self.rib.set_encode_ctx(
                    peer,
                    crate::packet::encode::EncodeCtx {
                        four_octet_as: negotiated.four_octet_as,
                        max_len: if negotiated.extended_message {
                            crate::packet::frame::EXTENDED_MAX_LEN
                        } else {
                            crate::packet::frame::MAX_LEN
                        },
                    },
                );
                self.rib.peer_up(peer);
                // Stale routes kept from before the restart go if the peer never sends End-of-RIB.
                if let Some(gr) = &negotiated.peer_graceful_restart {
                    self.start_stale_timer(peer, gr.restart_time.max(1) * 2);
                }
            }
            SessionEvent::Down {
                session: _,
                graceful,
                restart_time,
            } => {
                if let Some(entry) = self.by_id.get(&peer).and_then(|a| self.peers.get_mut(a)) {
                    entry.end_of_rib.clear();
                }
                self.rib.peer_down(peer, graceful);
                if graceful {
                    self.start_stale_timer(peer, restart_time.max(1));
                }
            }
            SessionEvent::Updates {
                session: _,
                epoch,
                updates,
                credit: _credit,
            } => {
                let Some(entry) = self.by_id.get(&peer).and_then(|a| self.peers.get(a)) else {
                    return;
                };
                if entry.epoch != epoch {
                    return;
                }
                for update in updates {
                    match self.rib.import_update(peer, update) {
                        Ok(result) => {
                            if let Some(afi) = result.end_of_rib {
                                self.rib.purge_stale(peer, Some(afi));
                                self.end_of_rib(peer, afi);
                            }
                        }
                        Err(e) => {
                            if let Some(entry) =
                                self.by_id.get(&peer).and_then(|a| self.peers.get(a))
                            {
                                tracing::warn!(peer = %entry.config.address, error = %e, "max-prefix exceeded");
                                let _ = entry.cmd.send(SessionCmd::Cease(cease::MAX_PREFIXES));
                            }
                            break;
                        }
                    }
                }
            }
            SessionEvent::RefreshRequested { session: _, epoch } => {
                if self
                    .by_id
                    .get(&peer)
                    .and_then(|a| self.peers.get(a))
                    .is_some_and(|e| e.epoch == epoch)
                {
                    self.rib.refresh(peer);
                }
            }
        }
    }
}

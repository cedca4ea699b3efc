//! The speaker's core task: owns the RIB and the peer table, takes the API's commands and the
//! sessions' events, and after each batch flushes what changed to the sessions and the
//! subscribers. Dynamic neighbours are in `dynamic.rs`, the read-only queries in `queries.rs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::dynamic::Dynamic;
use super::{CoreMsg, EvpnEvent, RibEvent, SpeakerError};
use crate::config::{PeerConfig, SpeakerConfig};
use crate::fsm::{Fsm, FsmConfig};
use crate::packet::error::cease;
use crate::packet::Afi;
use crate::rib::{PeerId, PeerInfo, Rib};
use crate::session::driver::{self, SessionSetup};
use crate::session::socket::{self, SocketOptions};
use crate::session::{SessionCmd, SessionEvent, SessionKey, SessionStatus};

pub(super) struct PeerEntry {
    pub(super) id: PeerId,
    pub(super) session: SessionKey,
    pub(super) config: PeerConfig,
    pub(super) cmd: mpsc::UnboundedSender<SessionCmd>,
    pub(super) status: Arc<Mutex<SessionStatus>>,
    pub(super) epoch: u64,
    pub(super) dynamic: bool,
    /// Connections handed to the session task; its `Closed` event says how many it had taken,
    /// so a task that closed while another connection waited in its queue is not retired.
    pub(super) inbound_sent: u64,
    /// Families the current session has sent End-of-RIB for.
    pub(super) end_of_rib: Vec<Afi>,
}

pub(super) struct Core {
    pub(super) config: SpeakerConfig,
    pub(super) rib: Rib,
    pub(super) peers: FxHashMap<IpAddr, PeerEntry>,
    pub(super) by_id: FxHashMap<PeerId, IpAddr>,
    /// The running session tasks, by the key their events carry.
    pub(super) by_session: FxHashMap<SessionKey, IpAddr>,
    next_session: SessionKey,
    pub(super) dynamic: Dynamic,
    /// The generation of each RIB peer's graceful-restart timer (by RIB slot: a dynamic
    /// neighbour's stale routes outlive its peer entry). Generations come from one counter, so
    /// a timer of a slot's earlier owner never matches.
    stale_timers: FxHashMap<PeerId, u64>,
    next_generation: u64,
    pub(super) subscribers: Vec<mpsc::UnboundedSender<RibEvent>>,
    pub(super) evpn_subscribers: Vec<mpsc::UnboundedSender<EvpnEvent>>,
    session_tx: mpsc::UnboundedSender<SessionEvent>,
    tx: mpsc::WeakUnboundedSender<CoreMsg>,
    pub(super) listener: Option<Arc<TcpListener>>,
}

/// Session events (UPDATEs for a batch of them) handled between two flushes, so UPDATE
/// packing sees large batches while commands (a count, an announcement) still get in often.
const BATCH: usize = 64;

impl Core {
    pub(super) fn new(
        config: SpeakerConfig,
        rib: Rib,
        session_tx: mpsc::UnboundedSender<SessionEvent>,
        tx: mpsc::WeakUnboundedSender<CoreMsg>,
        listener: Option<Arc<TcpListener>>,
    ) -> Core {
        Core {
            config,
            rib,
            peers: FxHashMap::default(),
            by_id: FxHashMap::default(),
            by_session: FxHashMap::default(),
            next_session: 1,
            dynamic: Dynamic::default(),
            stale_timers: FxHashMap::default(),
            next_generation: 1,
            subscribers: Vec::new(),
            evpn_subscribers: Vec::new(),
            session_tx,
            tx,
            listener,
        }
    }

    pub(super) async fn run(
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
        for flush in self.rib.flush_shared() {
            let Some(entry) = self.by_id.get(&flush.peer).and_then(|a| self.peers.get(a)) else {
                continue;
            };
            tracing::debug!(peer = %entry.config.address, messages = flush.messages, announced = flush.announced, withdrawn = flush.withdrawn, "sending updates");
            let _ = entry.cmd.send(SessionCmd::Send {
                epoch: entry.epoch,
                parts: flush.parts,
                messages: flush.messages,
            });
        }
        self.publish_changes();
    }

    /// Hands the best-path changes so far to the subscribers.
    fn publish_changes(&mut self) {
        self.publish_evpn_changes();
        // Taken even without unicast subscribers: an EVPN subscriber alone keeps tracking on.
        let changes = self.rib.take_changes();
        if self.subscribers.is_empty() {
            return;
        }
        if !changes.is_empty() {
            self.publish(RibEvent::Changes(changes));
        }
    }

    fn publish(&mut self, event: RibEvent) {
        self.subscribers.retain(|s| s.send(event.clone()).is_ok());
        self.evpn_subscribers.retain(|s| !s.is_closed());
        if self.subscribers.is_empty() && self.evpn_subscribers.is_empty() {
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
            export_deny_communities: cfg.export_deny_communities.clone(),
            export_strip_communities: cfg.export_strip_communities.clone(),
        }
    }

    pub(super) fn add_peer(
        &mut self,
        cfg: PeerConfig,
        dynamic: bool,
    ) -> Result<PeerId, SpeakerError> {
        if self.peers.contains_key(&cfg.address) {
            return Err(SpeakerError::PeerExists(cfg.address));
        }
        if let (Some(key), Some(listener)) = (&cfg.md5_password, &self.listener) {
            socket::set_md5(&**listener, cfg.address, key).map_err(|source| SpeakerError::Md5 {
                peer: cfg.address,
                source,
            })?;
        }
        let info = self.peer_info(&cfg);
        // A neighbour that comes back while its stale routes are kept takes its RIB slot
        // again, so its End-of-RIB purges what it did not resend (RFC 4724 §4.2).
        let id = match self.dynamic.adopt(cfg.address) {
            Some(id) => {
                self.rib.set_peer_info(id, info);
                id
            }
            None => self.rib.add_peer(info),
        };
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
            report_closed: dynamic,
        };
        tokio::spawn(driver::run(setup, cmd_rx));
        let _ = cmd.send(SessionCmd::Start);
        self.by_id.insert(id, cfg.address);
        self.by_session.insert(session, cfg.address);
        if dynamic {
            self.dynamic.active += 1;
        }
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
                inbound_sent: 0,
                end_of_rib: Vec::new(),
            },
        );
        Ok(id)
    }

    pub(super) fn remove_peer(&mut self, address: IpAddr) -> bool {
        self.remove_peer_with(address, Some(SessionCmd::Stop), false)
    }

    /// Forget a peer: its entry, its task (which ends after carrying out `last`, if any, since
    /// its command channel goes) and, unless `keep_stale` and it has stale routes, its RIB
    /// slot with every route and its Adj-RIB-Out. Kept stale routes wait for the peer's
    /// restart timer (see `dynamic.rs`).
    pub(super) fn remove_peer_with(
        &mut self,
        address: IpAddr,
        last: Option<SessionCmd>,
        keep_stale: bool,
    ) -> bool {
        let Some(entry) = self.peers.remove(&address) else {
            return false;
        };
        if let Some(cmd) = last {
            let _ = entry.cmd.send(cmd);
        }
        self.by_id.remove(&entry.id);
        self.by_session.remove(&entry.session);
        if entry.dynamic {
            self.dynamic.active = self.dynamic.active.saturating_sub(1);
            self.dynamic.stats.ended += 1;
        }
        if keep_stale && self.rib.has_stale(entry.id) {
            self.dynamic.orphans.insert(address, entry.id);
        } else {
            self.free_rib_slot(entry.id);
        }
        if let (Some(_), Some(listener)) = (&entry.config.md5_password, &self.listener) {
            let _ = socket::set_md5(&**listener, address, "");
        }
        true
    }

    /// Drop a RIB peer (routes, Adj-RIB-Out, counters) and its pending restart timer, so a
    /// later owner of the slot is not touched by that timer.
    pub(super) fn free_rib_slot(&mut self, peer: PeerId) {
        self.rib.remove_peer(peer);
        self.stale_timers.remove(&peer);
    }

    fn start_stale_timer(&mut self, peer: PeerId, secs: u16) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.stale_timers.insert(peer, generation);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(secs))).await;
            if let Some(tx) = tx.upgrade() {
                let _ = tx.send(CoreMsg::StaleTimer { peer, generation });
            }
        });
    }

    /// A graceful-restart timer fired: the peer's stale routes go, and with them the RIB slot
    /// of a dynamic neighbour that has not come back.
    pub(super) fn stale_timer(&mut self, peer: PeerId, generation: u64) {
        if self.stale_timers.get(&peer) != Some(&generation) {
            return;
        }
        self.stale_timers.remove(&peer);
        tracing::info!(peer, "graceful-restart timer expired: stale routes removed");
        self.rib.purge_stale(peer, None);
        if let Some(address) = self.dynamic.release_orphan(peer) {
            tracing::debug!(peer = %address, "dynamic neighbour's kept routes and RIB slot released");
            self.free_rib_slot(peer);
        }
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
        if afi == Afi::L2vpnEvpn {
            self.publish_evpn(EvpnEvent::EndOfRib { peer: address });
        }
        self.publish(RibEvent::EndOfRib { peer: address, afi });
    }

    pub(super) fn session_event(&mut self, ev: SessionEvent) {
        // A removed peer's task reports until it has closed its connection; its RIB slot may
        // already be another peer's, so its events are recognised by its key and dropped.
        let Some(address) = self.by_session.get(&ev.session()).copied() else {
            return;
        };
        let Some(entry) = self.peers.get_mut(&address) else {
            return;
        };
        let peer = entry.id;
        match ev {
            SessionEvent::Up {
                epoch,
                negotiated,
                local,
                ..
            } => {
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
                graceful,
                restart_time,
                ..
            } => {
                entry.end_of_rib.clear();
                self.rib.peer_down(peer, graceful);
                if graceful {
                    self.start_stale_timer(peer, restart_time.max(1));
                }
            }
            SessionEvent::Closed { inbound, .. } => {
                if entry.dynamic && entry.inbound_sent == inbound {
                    self.retire_dynamic(address);
                }
            }
            SessionEvent::Updates { epoch, updates, .. } => {
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
                            if let Some(entry) = self.peers.get(&address) {
                                tracing::warn!(peer = %address, error = %e, "max-prefix exceeded");
                                let _ = entry.cmd.send(SessionCmd::Cease(cease::MAX_PREFIXES));
                            }
                            break;
                        }
                    }
                }
            }
            SessionEvent::RefreshRequested { epoch, .. } => {
                if entry.epoch == epoch {
                    self.rib.refresh(peer);
                }
            }
        }
    }
}

//! One task per peer: feeds socket, timer and core events to the pure FSM and carries out the
//! actions it returns. Also resolves connection collisions (RFC 4271 §6.8).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::io::{read_loop, write_loop, Incoming};
use super::socket::{connect, SocketOptions};
use super::{SessionCmd, SessionEvent, SessionKey, SessionStatus};
use crate::fsm::{collision_winner, Action, Event, Fsm, Initiator, State, Timer};
use crate::packet::encode::EncodeCtx;
use crate::packet::error::cease;
use crate::packet::{Message, Notification};

type ConnectFuture = Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>>;

/// A live TCP connection.
struct Conn {
    writer: mpsc::UnboundedSender<Bytes>,
    incoming: mpsc::Receiver<Incoming>,
    reader: JoinHandle<()>,
    writer_task: JoinHandle<()>,
    local: SocketAddr,
    remote: SocketAddr,
    outbound: bool,
}

impl Conn {
    fn new(stream: TcpStream, local_as: u32, outbound: bool) -> std::io::Result<Conn> {
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let (tx, incoming) = mpsc::channel(64);
        let (writer, wrx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(rd, local_as, tx));
        let writer_task = tokio::spawn(write_loop(wr, wrx));
        Ok(Conn {
            writer,
            incoming,
            reader,
            writer_task,
            local,
            remote,
            outbound,
        })
    }

    fn send(&self, bytes: impl Into<Bytes>) {
        // A closed writer means the connection is gone; the reader reports that.
        let _ = self.writer.send(bytes.into());
    }
}

/// How long a closed connection's writer may take to flush what was queued (a last
/// NOTIFICATION, say) before it is stopped.
const WRITER_GRACE: Duration = Duration::from_secs(5);

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
        // The writer flushes and shuts the socket down by itself once its queue closes, but a
        // peer that stopped reading would keep it (and the socket, and every queued UPDATE)
        // until TCP gives up, many minutes later: a host gone for good must leave nothing.
        let writer = self.writer_task.abort_handle();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(WRITER_GRACE).await;
                writer.abort();
            });
        }
    }
}

/// Static inputs of a session task.
pub struct SessionSetup {
    pub session: SessionKey,
    pub remote: SocketAddr,
    pub fsm: Fsm,
    pub socket: SocketOptions,
    pub core: mpsc::UnboundedSender<SessionEvent>,
    pub status: Arc<Mutex<SessionStatus>>,
    /// Report `SessionEvent::Closed` whenever the task is left without a connection.
    pub report_closed: bool,
}

struct Session {
    setup: SessionSetup,
    fsm: Fsm,
    conn: Option<Conn>,
    /// A second connection (collision) that runs its own OPEN exchange until the first OPEN
    /// tells us the peer's BGP identifier and so which connection survives.
    pending: Option<Conn>,
    connecting: Option<ConnectFuture>,
    timers: [Option<Instant>; 4],
    epoch: u64,
    encode: EncodeCtx,
    /// The peer's graceful-restart time from the last established session.
    peer_restart_time: u16,
    /// Accepted connections taken (`SessionCmd::Inbound`), and how many of them the last
    /// `Closed` report covered.
    inbound_seen: u64,
    inbound_reported: u64,
    /// Whether the task had a connection (or one under way) after the last step.
    was_connected: bool,
}

fn timer_index(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
        Timer::IdleHold => 3,
    }
}

const TIMER_EVENTS: [Event; 4] = [
    Event::ConnectRetryTimerExpires,
    Event::HoldTimerExpires,
    Event::KeepaliveTimerExpires,
    Event::IdleHoldTimerExpires,
];

/// Run a session until its command channel closes.
pub async fn run(setup: SessionSetup, mut cmds: mpsc::UnboundedReceiver<SessionCmd>) {
    let fsm = setup.fsm.clone();
    let mut s = Session {
        setup,
        fsm,
        conn: None,
        pending: None,
        connecting: None,
        timers: [None; 4],
        epoch: 0,
        encode: EncodeCtx::default(),
        peer_restart_time: 0,
        inbound_seen: 0,
        inbound_reported: 0,
        was_connected: false,
    };
    loop {
        let next_timer = s.timers.iter().flatten().min().copied();
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(cmd) => s.command(cmd),
                None => {
                    s.feed(Event::ManualStop);
                    return;
                }
            },
            incoming = recv_incoming(&mut s.conn) => s.incoming(incoming),
            incoming = recv_incoming(&mut s.pending) => s.pending_incoming(incoming),
            result = connecting(&mut s.connecting) => {
                s.connecting = None;
                match result {
                    Ok(stream) => match Conn::new(stream, s.fsm.config.local_as, true) {
                        Ok(conn) => {
                            s.conn = Some(conn);
                            s.feed(Event::TcpCrAcked);
                        }
                        Err(e) => s.connect_failed(e),
                    },
                    Err(e) => s.connect_failed(e),
                }
            }
            _ = sleep_until(next_timer) => s.fire_timers(),
        }
        s.report_closed();
    }
}

async fn recv_incoming(conn: &mut Option<Conn>) -> Incoming {
    match conn {
        Some(c) => c
            .incoming
            .recv()
            .await
            .unwrap_or(Incoming::Closed("reader ended".into())),
        None => std::future::pending().await,
    }
}

async fn connecting(fut: &mut Option<ConnectFuture>) -> std::io::Result<TcpStream> {
    match fut {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Session {
    fn status(&self) -> std::sync::MutexGuard<'_, SessionStatus> {
        // A poisoned lock only means a panic elsewhere; the counters are still usable.
        self.setup.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tell the core when the task is left without any connection, after a step that closed
    /// the last one or took an accepted one it could not use.
    fn report_closed(&mut self) {
        if !self.setup.report_closed {
            return;
        }
        let connected = self.conn.is_some() || self.pending.is_some() || self.connecting.is_some();
        let took_inbound = self.inbound_seen != self.inbound_reported;
        if !connected && (self.was_connected || took_inbound) {
            self.inbound_reported = self.inbound_seen;
            let _ = self.setup.core.send(SessionEvent::Closed {
                session: self.setup.session,
                inbound: self.inbound_seen,
            });
        }
        self.was_connected = connected;
    }

    fn connect_failed(&mut self, e: std::io::Error) {
        tracing::debug!(peer = %self.setup.remote, error = %e, "connect failed");
        self.status().last_error = Some(format!("connect: {e}"));
        self.feed(Event::TcpConnectionFails);
    }

    fn command(&mut self, cmd: SessionCmd) {
        match cmd {
            SessionCmd::Start => self.feed(Event::ManualStart),
            SessionCmd::Stop => self.feed(Event::ManualStop),
            SessionCmd::Inbound(stream) => {
                self.inbound_seen += 1;
                self.inbound(stream)
            }
            SessionCmd::Send {
                epoch,
                parts,
                messages,
            } => {
                if epoch == self.epoch && self.fsm.state() == State::Established {
                    if let Some(conn) = &self.conn {
                        for bytes in parts {
                            conn.send(bytes);
                        }
                        let mut st = self.status();
                        st.messages_out += messages;
                        st.updates_out += messages;
                    }
                }
            }
            SessionCmd::RequestRefresh => {
                let refresh = self
                    .fsm
                    .negotiated()
                    .map(|n| (n.route_refresh, n.families.clone()));
                if let (Some((true, families)), Some(conn)) = (refresh, &self.conn) {
                    for afi in families {
                        let msg = Message::RouteRefresh(crate::packet::RouteRefresh {
                            afi: afi.code(),
                            safi: afi.safi(),
                        });
                        conn.send(msg.to_bytes(self.encode));
                    }
                }
            }
            SessionCmd::Cease(subcode) => self.feed(Event::Cease(subcode)),
        }
    }

    /// An accepted connection from this peer, checked against the one we may already have.
    fn inbound(&mut self, stream: TcpStream) {
        match self.fsm.state() {
            State::Idle | State::Connect | State::Active => {
                self.connecting = None;
                self.conn = None;
                match Conn::new(stream, self.fsm.config.local_as, false) {
                    Ok(conn) => {
                        self.conn = Some(conn);
                        self.feed(Event::TcpConnectionConfirmed);
                    }
                    Err(e) => tracing::debug!(error = %e, "inbound connection unusable"),
                }
            }
            State::OpenSent => match Conn::new(stream, self.fsm.config.local_as, false) {
                Ok(conn) => {
                    // Treat it as a session attempt of its own: the peer sends its OPEN on it.
                    conn.send(Message::Open(self.fsm.our_open()).to_bytes(EncodeCtx::default()));
                    self.pending = Some(conn);
                }
                Err(e) => tracing::debug!(error = %e, "inbound connection unusable"),
            },
            State::OpenConfirm => {
                let Some(peer_id) = self.fsm.negotiated().map(|n| n.peer_id) else {
                    return;
                };
                if self.keep_current(peer_id) {
                    reject(stream, cease::COLLISION_RESOLUTION);
                } else {
                    tracing::info!(peer = %self.setup.remote, "collision: keeping the peer's connection");
                    self.feed(Event::Cease(cease::COLLISION_RESOLUTION));
                    self.inbound(stream);
                }
            }
            State::Established => {
                let graceful = self
                    .fsm
                    .negotiated()
                    .is_some_and(|n| n.peer_graceful_restart.is_some());
                if graceful {
                    // RFC 4724 §4.2: a new connection from a peer that restarted ends the old one.
                    self.feed(Event::TcpConnectionFails);
                    self.inbound(stream);
                } else {
                    reject(stream, cease::COLLISION_RESOLUTION);
                }
            }
        }
    }

    /// Two connections: keep the one opened by the side with the higher BGP identifier.
    fn keep_current(&self, peer_id: std::net::Ipv4Addr) -> bool {
        let current_outbound = self.conn.as_ref().is_some_and(|c| c.outbound);
        match collision_winner(self.fsm.config.local_id, peer_id) {
            Initiator::Local => current_outbound,
            Initiator::Remote => !current_outbound,
        }
    }

    /// End a losing connection with Cease/collision resolution.
    fn close_with_cease(conn: Conn) {
        let n = Message::Notification(Notification {
            code: crate::packet::error::code::CEASE,
            subcode: cease::COLLISION_RESOLUTION,
            data: Vec::new(),
        });
        conn.send(n.to_bytes(EncodeCtx::default()));
        // Dropping the queue lets the writer flush and shut down.
    }

    /// The first OPEN on either connection names the peer: resolve the collision. Returns
    /// false when the OPEN came on the connection that lost (so it must not reach the FSM).
    fn resolve_on_open(&mut self, peer_id: std::net::Ipv4Addr, on_pending: bool) -> bool {
        let keep_current = self.keep_current(peer_id);
        tracing::info!(peer = %self.setup.remote, keep_current, "collision resolved");
        if keep_current {
            if let Some(p) = self.pending.take() {
                Self::close_with_cease(p);
            }
            !on_pending
        } else {
            if let (Some(old), Some(new)) = (self.conn.take(), self.pending.take()) {
                Self::close_with_cease(old);
                self.conn = Some(new);
            }
            on_pending
        }
    }

    /// A message on the second connection of a collision.
    fn pending_incoming(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Message(Message::Open(open)) if self.fsm.state() == State::OpenSent => {
                if self.resolve_on_open(open.bgp_id, true) {
                    self.status().messages_in += 1;
                    self.feed(Event::OpenReceived(open));
                }
            }
            _ => self.pending = None,
        }
    }

    fn incoming(&mut self, incoming: Incoming) {
        let event = match incoming {
            Incoming::Updates(updates, credit) => {
                {
                    let mut status = self.status();
                    status.messages_in += updates.len() as u64;
                    status.updates_in += updates.len() as u64;
                }
                if self.fsm.state() == State::Established {
                    for reason in updates.iter().filter_map(|u| u.treat_as_withdraw.as_ref()) {
                        tracing::warn!(peer = %self.setup.remote, reason, "UPDATE treated as withdraw (RFC 7606)");
                    }
                    let _ = self.setup.core.send(SessionEvent::Updates {
                        session: self.setup.session,
                        epoch: self.epoch,
                        updates,
                        credit,
                    });
                }
                Event::UpdateReceived
            }
            Incoming::Message(msg) => {
                self.status().messages_in += 1;
                match msg {
                    Message::Open(open) => {
                        if self.pending.is_some()
                            && self.fsm.state() == State::OpenSent
                            && !self.resolve_on_open(open.bgp_id, false)
                        {
                            // Our connection lost; the peer's OPEN on the survivor follows.
                            return;
                        }
                        Event::OpenReceived(open)
                    }
                    Message::Keepalive => Event::KeepaliveReceived,
                    Message::Notification(n) => {
                        tracing::warn!(peer = %self.setup.remote, code = n.code, subcode = n.subcode, "NOTIFICATION received");
                        self.status().last_error = Some(format!("received {n}"));
                        Event::NotificationReceived(n)
                    }
                    Message::RouteRefresh(_) => {
                        if self.fsm.state() == State::Established {
                            let _ = self.setup.core.send(SessionEvent::RefreshRequested {
                                session: self.setup.session,
                                epoch: self.epoch,
                            });
                        }
                        Event::RouteRefreshReceived
                    }
                    // The reader hands UPDATEs on as `Incoming::Updates`.
                    Message::Update(_) => Event::UpdateReceived,
                }
            }
            Incoming::Error(e) => {
                tracing::warn!(peer = %self.setup.remote, error = %e, "invalid message");
                self.status().last_error = Some(e.to_string());
                Event::MessageError(e)
            }
            Incoming::Closed(why) => {
                tracing::info!(peer = %self.setup.remote, why, "connection closed");
                Event::TcpConnectionFails
            }
        };
        self.feed(event);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        for (i, event) in TIMER_EVENTS.iter().enumerate() {
            if self.timers[i].is_some_and(|at| at <= now) {
                self.timers[i] = None;
                self.feed(event.clone());
            }
        }
    }

    fn feed(&mut self, event: Event) {
        let actions = self.fsm.handle(event);
        for action in actions {
            self.act(action);
        }
        let state = self.fsm.state();
        self.status().state = state;
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Connect => {
                if self.conn.is_none() && self.connecting.is_none() {
                    let remote = self.setup.remote;
                    let opts = self.setup.socket.clone();
                    let limit =
                        Duration::from_secs(u64::from(self.fsm.config.connect_retry.max(1)));
                    self.connecting = Some(Box::pin(async move {
                        tokio::time::timeout(limit, connect(remote, &opts))
                            .await
                            .unwrap_or_else(|_| {
                                Err(std::io::Error::new(
                                    std::io::ErrorKind::TimedOut,
                                    "connect timed out",
                                ))
                            })
                    }));
                }
            }
            Action::CloseConnection => {
                self.connecting = None;
                self.conn = None;
                self.pending = None;
                self.encode = EncodeCtx::default();
            }
            Action::Send(msg) => {
                if let Some(conn) = &self.conn {
                    conn.send(msg.to_bytes(self.encode));
                    self.status().messages_out += 1;
                    if let Message::Notification(n) = &msg {
                        tracing::warn!(peer = %self.setup.remote, code = n.code, subcode = n.subcode, "NOTIFICATION sent");
                        self.status().last_error = Some(format!("sent {n}"));
                    }
                }
            }
            Action::StartTimer(t, secs) => {
                self.timers[timer_index(t)] =
                    Some(Instant::now() + Duration::from_secs(u64::from(secs)))
            }
            Action::StopTimer(t) => self.timers[timer_index(t)] = None,
            Action::SessionUp(neg) => {
                self.epoch += 1;
                self.encode = EncodeCtx {
                    four_octet_as: neg.four_octet_as,
                    max_len: if neg.extended_message {
                        crate::packet::frame::EXTENDED_MAX_LEN
                    } else {
                        crate::packet::frame::MAX_LEN
                    },
                };
                self.peer_restart_time = neg
                    .peer_graceful_restart
                    .as_ref()
                    .map_or(0, |gr| gr.restart_time);
                let Some(conn) = &self.conn else { return };
                tracing::info!(peer = %self.setup.remote, peer_as = neg.peer_as, "session established");
                {
                    let mut st = self.status();
                    st.peer_as = Some(neg.peer_as);
                    st.peer_id = Some(neg.peer_id);
                    st.hold_time = Some(neg.hold_time);
                    st.families = neg.families.clone();
                    st.established_since = Some(SystemTime::now());
                }
                let _ = self.setup.core.send(SessionEvent::Up {
                    session: self.setup.session,
                    epoch: self.epoch,
                    negotiated: neg,
                    local: conn.local,
                    remote: conn.remote,
                });
            }
            Action::SessionDown { reason, graceful } => {
                tracing::info!(peer = %self.setup.remote, reason, graceful, "session down");
                let restart_time = self.peer_restart_time;
                {
                    let mut st = self.status();
                    st.flaps += 1;
                    st.established_since = None;
                }
                self.epoch += 1;
                let _ = self.setup.core.send(SessionEvent::Down {
                    session: self.setup.session,
                    graceful,
                    restart_time,
                });
            }
        }
    }
}

/// Refuse a connection with a Cease NOTIFICATION.
fn reject(stream: TcpStream, subcode: u8) {
    let bytes = Message::Notification(Notification {
        code: crate::packet::error::code::CEASE,
        subcode,
        data: Vec::new(),
    })
    .to_bytes(EncodeCtx::default());
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut stream = stream;
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&bytes)).await;
        let _ = stream.shutdown().await;
    });
}

//! The tokio side of a peering: one task per peer drives the pure FSM with real sockets and
//! timers (`driver`), reads and writes bytes (`io`), and sets up sockets (`socket`).

pub mod driver;
pub mod io;
pub mod socket;

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use serde::Serialize;
use tokio::net::TcpStream;

use crate::fsm::{Negotiated, State};
use crate::packet::{Afi, Update};

/// Names one session task for its lifetime, never reused: events of a task whose peer was
/// removed (and whose RIB slot may already belong to a new peer) are then recognised and
/// dropped.
pub type SessionKey = u64;

/// Commands from the speaker core to a session task.
#[derive(Debug)]
pub enum SessionCmd {
    Start,
    Stop,
    /// An accepted connection from this peer.
    Inbound(TcpStream),
    /// UPDATE bytes for the session of this epoch (dropped if the session changed since), in
    /// order: buffers shared with the other members of the peer's update group, which the
    /// writer's queue holds by reference.
    Send {
        epoch: u64,
        parts: Vec<bytes::Bytes>,
        messages: u64,
    },
    /// Ask the peer to resend its routes (RFC 2918).
    RequestRefresh,
    /// End the session with this Cease subcode (max-prefix...).
    Cease(u8),
}

/// Reports from a session task to the speaker core.
#[derive(Debug)]
pub enum SessionEvent {
    Up {
        session: SessionKey,
        epoch: u64,
        negotiated: Negotiated,
        local: SocketAddr,
        remote: SocketAddr,
    },
    Down {
        session: SessionKey,
        graceful: bool,
        restart_time: u16,
    },
    /// UPDATEs in the order received.
    Updates {
        session: SessionKey,
        epoch: u64,
        updates: Vec<Update>,
        /// Returned (dropped) once the UPDATEs are imported, see [`io::Credit`].
        credit: io::Credit,
    },
    RefreshRequested {
        session: SessionKey,
        epoch: u64,
    },
    /// The task has no connection left (sent only when asked for, for dynamic neighbours,
    /// which are forgotten then). `inbound`: how many accepted connections it has taken.
    Closed {
        session: SessionKey,
        inbound: u64,
    },
}

impl SessionEvent {
    /// The task that sent the event.
    pub fn session(&self) -> SessionKey {
        match self {
            SessionEvent::Up { session, .. }
            | SessionEvent::Down { session, .. }
            | SessionEvent::Updates { session, .. }
            | SessionEvent::RefreshRequested { session, .. }
            | SessionEvent::Closed { session, .. } => *session,
        }
    }

    /// How much work the event is for the core: its UPDATEs, or one.
    pub fn weight(&self) -> usize {
        match self {
            SessionEvent::Updates { updates, .. } => updates.len().max(1),
            _ => 1,
        }
    }
}

/// Counters and state of one session, for `inspect` and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct SessionStatus {
    pub address: IpAddr,
    pub state: State,
    pub peer_as: Option<u32>,
    pub peer_id: Option<std::net::Ipv4Addr>,
    pub hold_time: Option<u16>,
    pub families: Vec<Afi>,
    pub established_since: Option<SystemTime>,
    pub flaps: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub updates_in: u64,
    pub updates_out: u64,
    pub last_error: Option<String>,
}

impl SessionStatus {
    pub fn new(address: IpAddr) -> SessionStatus {
        SessionStatus {
            address,
            state: State::Idle,
            peer_as: None,
            peer_id: None,
            hold_time: None,
            families: Vec::new(),
            established_since: None,
            flaps: 0,
            messages_in: 0,
            messages_out: 0,
            updates_in: 0,
            updates_out: 0,
            last_error: None,
        }
    }
}

//! The BGP session state machine of RFC 4271 §8, sans-IO: events in, actions out. It owns no
//! socket and no clock; the driver turns actions into I/O and timer expiries into events.
//! It never panics, whatever the event sequence (see the proptest in `tests/fsm_props.rs`).

use std::net::Ipv4Addr;

use crate::packet::error::{cease, code, open as open_err};
use crate::packet::{Afi, Capability, GracefulRestart, Message, Notification, Open, WireError};

/// Session states (RFC 4271 §8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// The timers the driver runs for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    /// Back-off before an automatic restart after the session fell to Idle (§8.1.1 IdleHoldTimer).
    IdleHold,
}

/// Inputs (RFC 4271 §8.1, the ones we act on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ManualStart,
    ManualStop,
    AutomaticStart,
    ConnectRetryTimerExpires,
    HoldTimerExpires,
    KeepaliveTimerExpires,
    IdleHoldTimerExpires,
    /// Our outgoing connection completed (TcpCRAcked).
    TcpCrAcked,
    /// An incoming connection was accepted for this session (TcpConnectionConfirmed).
    TcpConnectionConfirmed,
    TcpConnectionFails,
    OpenReceived(Open),
    KeepaliveReceived,
    UpdateReceived,
    RouteRefreshReceived,
    NotificationReceived(Notification),
    /// A received message failed validation (BGPHeaderErr, BGPOpenMsgErr, UpdateMsgErr).
    MessageError(WireError),
    /// Administrative end with a Cease subcode (max-prefix, deconfigured, collision).
    Cease(u8),
}

/// Outputs for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Connect,
    CloseConnection,
    Send(Message),
    StartTimer(Timer, u32),
    StopTimer(Timer),
    /// The session reached Established with these negotiated parameters.
    SessionUp(Negotiated),
    /// The session left Established. `graceful`: the peer may be restarting (RFC 4724), so
    /// its routes are kept as stale instead of withdrawn.
    SessionDown {
        reason: String,
        graceful: bool,
    },
}

/// What both OPENs agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    pub hold_time: u16,
    pub keepalive: u16,
    pub four_octet_as: bool,
    pub extended_message: bool,
    pub route_refresh: bool,
    pub families: Vec<Afi>,
    pub peer_graceful_restart: Option<GracefulRestart>,
    pub ibgp: bool,
}

/// Static session parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    pub local_as: u32,
    pub local_id: Ipv4Addr,
    /// None accepts any AS (dynamic neighbours).
    pub peer_as: Option<u32>,
    pub hold_time: u16,
    pub connect_retry: u32,
    pub passive: bool,
    pub families: Vec<Afi>,
    /// Offer graceful restart with this restart time; `restarting` sets the R bit.
    pub graceful_restart: Option<u16>,
    pub restarting: bool,
}

/// Longest back-off between automatic restarts.
const MAX_IDLE_HOLD: u32 = 120;
/// Hold timer while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
const LARGE_HOLD: u32 = 240;

/// The state machine of one session.
#[derive(Debug, Clone)]
pub struct Fsm {
    pub config: FsmConfig,
    state: State,
    connect_retry_counter: u32,
    negotiated: Option<Negotiated>,
    idle_hold: u32,
    stopped: bool,
}

impl Fsm {
    pub fn new(config: FsmConfig) -> Fsm {
        Fsm {
            config,
            state: State::Idle,
            connect_retry_counter: 0,
            negotiated: None,
            idle_hold: 1,
            stopped: true,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// Our OPEN for this session.
    pub fn our_open(&self) -> Open {
        let c = &self.config;
        let mut caps: Vec<Capability> = c
            .families
            .iter()
            .map(|afi| Capability::Multiprotocol {
                afi: afi.code(),
                safi: afi.safi(),
            })
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::ExtendedMessage);
        caps.push(Capability::FourOctetAs(c.local_as));
        if let Some(restart_time) = c.graceful_restart {
            caps.push(Capability::GracefulRestart(GracefulRestart {
                restarting: c.restarting,
                restart_time,
                families: c.families.iter().map(|afi| (*afi, c.restarting)).collect(),
            }));
        }
        Open::new(c.local_as, c.hold_time, c.local_id, caps)
    }

    /// Feed one event; returns what the driver must do, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.step(event, &mut out);
        out
    }

    fn step(&mut self, event: Event, out: &mut Vec<Action>) {
        use Event as E;
        use State as S;
        match (self.state, event) {
            (S::Idle, E::ManualStart) => {
                self.stopped = false;
                self.idle_hold = 1;
                self.start(out);
            }
            (S::Idle, E::AutomaticStart | E::IdleHoldTimerExpires) if !self.stopped => {
                self.start(out)
            }
            (S::Idle, E::TcpConnectionConfirmed | E::TcpCrAcked) => {
                out.push(Action::CloseConnection)
            }
            (S::Idle, _) => {}

            (_, E::ManualStop) => {
                if matches!(self.state, S::OpenSent | S::OpenConfirm | S::Established) {
                    out.push(send_notification(code::CEASE, cease::ADMIN_SHUTDOWN));
                }
                self.stopped = true;
                self.connect_retry_counter = 0;
                self.go_idle("administrative stop", false, out);
                out.push(Action::StopTimer(Timer::IdleHold));
            }
            (_, E::Cease(subcode)) => {
                if matches!(self.state, S::OpenSent | S::OpenConfirm | S::Established) {
                    out.push(send_notification(code::CEASE, subcode));
                }
                self.connect_retry_counter += 1;
                self.go_idle(&format!("cease subcode {subcode}"), false, out);
                self.schedule_restart(out);
            }

            (S::Connect | S::Active, E::ConnectRetryTimerExpires) => {
                out.push(Action::CloseConnection);
                out.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
                if self.config.passive {
                    self.state = S::Active;
                } else {
                    out.push(Action::Connect);
                    self.state = S::Connect;
                }
            }
            (S::Connect | S::Active, E::TcpCrAcked | E::TcpConnectionConfirmed) => {
                out.push(Action::StopTimer(Timer::ConnectRetry));
                out.push(Action::Send(Message::Open(self.our_open())));
                out.push(Action::StartTimer(Timer::Hold, LARGE_HOLD));
                self.state = S::OpenSent;
            }
            (S::Connect, E::TcpConnectionFails) => {
                out.push(Action::CloseConnection);
                out.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
                self.state = S::Active;
            }
            (S::Connect | S::Active, _) => self.fsm_error(0, out),

            (S::OpenSent, E::TcpConnectionFails) => {
                out.push(Action::CloseConnection);
                out.push(Action::StopTimer(Timer::Hold));
                out.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
                self.state = S::Active;
            }
            (S::OpenSent, E::OpenReceived(open)) => match self.check_open(&open) {
                Ok(neg) => {
                    out.push(Action::StopTimer(Timer::ConnectRetry));
                    out.push(Action::Send(Message::Keepalive));
                    if neg.hold_time > 0 {
                        out.push(Action::StartTimer(
                            Timer::Keepalive,
                            u32::from(neg.keepalive),
                        ));
                        out.push(Action::StartTimer(Timer::Hold, u32::from(neg.hold_time)));
                    } else {
                        out.push(Action::StopTimer(Timer::Hold));
                    }
                    self.negotiated = Some(neg);
                    self.state = S::OpenConfirm;
                }
                Err(err) => self.error_with_notification(&err, out),
            },
            (S::OpenConfirm, E::KeepaliveTimerExpires)
            | (S::Established, E::KeepaliveTimerExpires) => {
                out.push(Action::Send(Message::Keepalive));
                if let Some(neg) = &self.negotiated {
                    out.push(Action::StartTimer(
                        Timer::Keepalive,
                        u32::from(neg.keepalive),
                    ));
                }
            }
            (S::OpenConfirm, E::KeepaliveReceived) => {
                self.restart_hold(out);
                if let Some(neg) = self.negotiated.clone() {
                    self.idle_hold = 1;
                    self.state = S::Established;
                    out.push(Action::SessionUp(neg));
                }
            }
            (
                S::Established,
                E::KeepaliveReceived | E::UpdateReceived | E::RouteRefreshReceived,
            ) => self.restart_hold(out),
            (S::OpenSent | S::OpenConfirm | S::Established, E::HoldTimerExpires) => {
                out.push(send_notification(code::HOLD_TIMER, 0));
                self.connect_retry_counter += 1;
                self.go_idle("hold timer expired", false, out);
                self.schedule_restart(out);
            }
            (S::OpenConfirm | S::Established, E::TcpConnectionFails) => {
                self.connect_retry_counter += 1;
                let graceful = self.graceful_possible();
                self.go_idle("connection lost", graceful, out);
                self.schedule_restart(out);
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::NotificationReceived(n)) => {
                self.connect_retry_counter += 1;
                self.go_idle(&format!("peer sent {n}"), false, out);
                self.schedule_restart(out);
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::MessageError(err)) => {
                self.error_with_notification(&err, out)
            }
            (S::OpenSent, _) => self.fsm_error(1, out),
            (S::OpenConfirm, _) => self.fsm_error(2, out),
            (S::Established, _) => self.fsm_error(3, out),
        }
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        self.connect_retry_counter = 0;
        out.push(Action::StartTimer(
            Timer::ConnectRetry,
            self.config.connect_retry,
        ));
        if self.config.passive {
            self.state = State::Active;
        } else {
            out.push(Action::Connect);
            self.state = State::Connect;
        }
    }

    fn restart_hold(&self, out: &mut Vec<Action>) {
        if let Some(neg) = &self.negotiated {
            if neg.hold_time > 0 {
                out.push(Action::StartTimer(Timer::Hold, u32::from(neg.hold_time)));
            }
        }
    }

    fn graceful_possible(&self) -> bool {
        self.state == State::Established
            && self.config.graceful_restart.is_some()
            && self
                .negotiated
                .as_ref()
                .is_some_and(|n| n.peer_graceful_restart.is_some())
    }

    /// Leave for Idle: stop every timer, drop the connection, report a session loss.
    fn go_idle(&mut self, reason: &str, graceful: bool, out: &mut Vec<Action>) {
        out.push(Action::StopTimer(Timer::ConnectRetry));
        out.push(Action::StopTimer(Timer::Hold));
        out.push(Action::StopTimer(Timer::Keepalive));
        out.push(Action::CloseConnection);
        if self.state == State::Established {
            out.push(Action::SessionDown {
                reason: reason.to_string(),
                graceful,
            });
        }
        self.negotiated = None;
        self.state = State::Idle;
    }

    /// Automatic restart after a back-off that doubles with each failure (reconnect back-off).
    fn schedule_restart(&mut self, out: &mut Vec<Action>) {
        if self.stopped {
            return;
        }
        out.push(Action::StartTimer(Timer::IdleHold, self.idle_hold));
        self.idle_hold = (self.idle_hold * 2).min(MAX_IDLE_HOLD);
    }

    fn fsm_error(&mut self, subcode: u8, out: &mut Vec<Action>) {
        if matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            out.push(send_notification(code::FSM, subcode));
        }
        self.connect_retry_counter += 1;
        self.go_idle("finite state machine error", false, out);
        self.schedule_restart(out);
    }

    fn error_with_notification(&mut self, err: &WireError, out: &mut Vec<Action>) {
        out.push(Action::Send(Message::Notification(err.notification())));
        self.connect_retry_counter += 1;
        self.go_idle(&err.reason, false, out);
        self.schedule_restart(out);
    }

    /// Check the peer's OPEN against our configuration (RFC 4271 §6.2) and negotiate.
    pub fn check_open(&self, open: &Open) -> Result<Negotiated, WireError> {
        // RFC 7607: AS 0 is reserved; in either AS field of an OPEN it is a Bad Peer AS,
        // whatever AS we expect (also for dynamic neighbours, which accept any AS).
        let four_octet_zero = open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(0)));
        if open.my_as == 0 || four_octet_zero {
            return Err(WireError::open(
                open_err::BAD_PEER_AS,
                "OPEN: peer AS 0 is reserved (RFC 7607)",
            ));
        }
        let peer_as = open.asn();
        if let Some(want) = self.config.peer_as {
            if peer_as != want {
                return Err(WireError::open(
                    open_err::BAD_PEER_AS,
                    format!("OPEN: peer AS {peer_as} is not the configured {want}"),
                ));
            }
        }
        if open.bgp_id == self.config.local_id && peer_as == self.config.local_as {
            return Err(WireError::open(
                open_err::BAD_BGP_ID,
                format!("OPEN: BGP identifier {} is our own", open.bgp_id),
            ));
        }
        let hold_time = open.hold_time.min(self.config.hold_time);
        let ours = self.our_open();
        let peer_families = open.families();
        Ok(Negotiated {
            peer_as,
            peer_id: open.bgp_id,
            hold_time,
            keepalive: hold_time / 3,
            four_octet_as: open
                .capabilities
                .iter()
                .any(|c| matches!(c, Capability::FourOctetAs(_))),
            extended_message: open.has(&Capability::ExtendedMessage)
                && ours.has(&Capability::ExtendedMessage),
            route_refresh: open.has(&Capability::RouteRefresh),
            families: self
                .config
                .families
                .iter()
                .copied()
                .filter(|f| peer_families.contains(f))
                .collect(),
            peer_graceful_restart: open.graceful_restart().cloned(),
            ibgp: peer_as == self.config.local_as,
        })
    }
}

fn send_notification(code: u8, subcode: u8) -> Action {
    Action::Send(Message::Notification(Notification {
        code,
        subcode,
        data: Vec::new(),
    }))
}

/// Which connection survives a collision (RFC 4271 §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    Local,
    Remote,
}

/// The connection to keep when two exist for one peer: the one initiated by the side with the
/// higher BGP identifier.
pub fn collision_winner(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> Initiator {
    if u32::from(local_id) < u32::from(remote_id) {
        Initiator::Remote
    } else {
        Initiator::Local
    }
}

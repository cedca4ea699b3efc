//! The session FSM without sockets or clocks: scripted transitions, and a property test that
//! no sequence of events panics or breaks the invariants.

use std::net::Ipv4Addr;

use fabric_bgp::fsm::{collision_winner, Action, Event, Fsm, FsmConfig, Initiator, State, Timer};
use fabric_bgp::packet::{Afi, Capability, Message, Notification, Open, WireError};
use proptest::prelude::*;

fn config(passive: bool) -> FsmConfig {
    FsmConfig {
        local_as: 65001,
        local_id: Ipv4Addr::new(10, 0, 0, 1),
        peer_as: Some(65002),
        hold_time: 90,
        connect_retry: 5,
        passive,
        families: vec![Afi::Ipv4],
        graceful_restart: Some(120),
        restarting: false,
    }
}

fn peer_open(asn: u32, hold: u16) -> Open {
    Open::new(
        asn,
        hold,
        Ipv4Addr::new(10, 0, 0, 2),
        vec![Capability::FourOctetAs(asn), Capability::RouteRefresh],
    )
}

fn sends_notification(actions: &[Action], code: u8) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Send(Message::Notification(n)) if n.code == code))
}

fn establish(fsm: &mut Fsm) -> Vec<Action> {
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpCrAcked);
    fsm.handle(Event::OpenReceived(peer_open(65002, 30)));
    fsm.handle(Event::KeepaliveReceived)
}

#[test]
fn active_open_reaches_established() {
    let mut fsm = Fsm::new(config(false));
    let a = fsm.handle(Event::ManualStart);
    assert!(a.contains(&Action::Connect));
    assert_eq!(fsm.state(), State::Connect);
    let a = fsm.handle(Event::TcpCrAcked);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Send(Message::Open(_)))));
    assert_eq!(fsm.state(), State::OpenSent);
    let a = fsm.handle(Event::OpenReceived(peer_open(65002, 30)));
    assert!(a.contains(&Action::Send(Message::Keepalive)));
    // Hold time is the smaller of both (30), keepalive a third of it.
    assert!(a.contains(&Action::StartTimer(Timer::Hold, 30)));
    assert!(a.contains(&Action::StartTimer(Timer::Keepalive, 10)));
    assert_eq!(fsm.state(), State::OpenConfirm);
    let a = fsm.handle(Event::KeepaliveReceived);
    assert_eq!(fsm.state(), State::Established);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::SessionUp(n) if n.peer_as == 65002 && !n.ibgp)));
}

#[test]
fn passive_waits_for_the_peer() {
    let mut fsm = Fsm::new(config(true));
    let a = fsm.handle(Event::ManualStart);
    assert!(!a.contains(&Action::Connect));
    assert_eq!(fsm.state(), State::Active);
    fsm.handle(Event::TcpConnectionConfirmed);
    assert_eq!(fsm.state(), State::OpenSent);
}

#[test]
fn wrong_peer_as_is_refused_with_bad_peer_as() {
    let mut fsm = Fsm::new(config(false));
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpCrAcked);
    let a = fsm.handle(Event::OpenReceived(peer_open(65099, 90)));
    assert!(a.iter().any(
        |x| matches!(x, Action::Send(Message::Notification(n)) if (n.code, n.subcode) == (2, 2))
    ));
    assert_eq!(fsm.state(), State::Idle);
    // It retries by itself after a back-off.
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::StartTimer(Timer::IdleHold, _))));
}

#[test]
fn hold_timer_expiry_sends_notification_and_reports_down() {
    let mut fsm = Fsm::new(config(false));
    establish(&mut fsm);
    let a = fsm.handle(Event::HoldTimerExpires);
    assert!(sends_notification(&a, 4));
    assert!(a.iter().any(|x| matches!(
        x,
        Action::SessionDown {
            graceful: false,
            ..
        }
    )));
    assert_eq!(fsm.state(), State::Idle);
}

#[test]
fn connection_loss_is_graceful_when_both_sides_do_graceful_restart() {
    let mut fsm = Fsm::new(config(false));
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpCrAcked);
    let mut open = peer_open(65002, 90);
    open.capabilities.push(Capability::GracefulRestart(
        fabric_bgp::packet::GracefulRestart {
            restarting: false,
            restart_time: 120,
            families: vec![(Afi::Ipv4, true)],
        },
    ));
    fsm.handle(Event::OpenReceived(open));
    fsm.handle(Event::KeepaliveReceived);
    let a = fsm.handle(Event::TcpConnectionFails);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::SessionDown { graceful: true, .. })));
}

#[test]
fn update_before_established_is_an_fsm_error() {
    let mut fsm = Fsm::new(config(false));
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpCrAcked);
    let a = fsm.handle(Event::UpdateReceived);
    assert!(sends_notification(&a, 5));
    assert_eq!(fsm.state(), State::Idle);
}

#[test]
fn manual_stop_sends_cease() {
    let mut fsm = Fsm::new(config(false));
    establish(&mut fsm);
    let a = fsm.handle(Event::ManualStop);
    assert!(sends_notification(&a, 6));
    assert_eq!(fsm.state(), State::Idle);
    // Stopped stays stopped: no automatic restart.
    assert!(fsm.handle(Event::IdleHoldTimerExpires).is_empty());
}

#[test]
fn collision_keeps_the_higher_identifiers_connection() {
    let low = Ipv4Addr::new(10, 0, 0, 1);
    let high = Ipv4Addr::new(10, 0, 0, 2);
    assert_eq!(collision_winner(low, high), Initiator::Remote);
    assert_eq!(collision_winner(high, low), Initiator::Local);
}

fn event_strategy() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::ManualStart),
        Just(Event::ManualStop),
        Just(Event::AutomaticStart),
        Just(Event::ConnectRetryTimerExpires),
        Just(Event::HoldTimerExpires),
        Just(Event::KeepaliveTimerExpires),
        Just(Event::IdleHoldTimerExpires),
        Just(Event::TcpCrAcked),
        Just(Event::TcpConnectionConfirmed),
        Just(Event::TcpConnectionFails),
        (any::<u32>(), any::<u16>())
            .prop_map(|(asn, hold)| Event::OpenReceived(peer_open(asn % 4 + 65000, hold))),
        Just(Event::KeepaliveReceived),
        Just(Event::UpdateReceived),
        Just(Event::RouteRefreshReceived),
        (any::<u8>(), any::<u8>()).prop_map(|(code, subcode)| Event::NotificationReceived(
            Notification {
                code,
                subcode,
                data: vec![]
            }
        )),
        Just(Event::MessageError(WireError::update(1, "malformed"))),
        any::<u8>().prop_map(Event::Cease),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No event sequence panics; SessionUp only on entering Established, SessionDown only on
    /// leaving it; Connect never while a connection is already up.
    #[test]
    fn no_event_sequence_panics(passive in any::<bool>(), events in proptest::collection::vec(event_strategy(), 0..60)) {
        let mut fsm = Fsm::new(config(passive));
        for event in events {
            let before = fsm.state();
            let actions = fsm.handle(event);
            let after = fsm.state();
            let ups = actions.iter().filter(|a| matches!(a, Action::SessionUp(_))).count();
            let downs = actions.iter().filter(|a| matches!(a, Action::SessionDown { .. })).count();
            prop_assert_eq!(ups, usize::from(before != State::Established && after == State::Established));
            prop_assert_eq!(downs, usize::from(before == State::Established && after != State::Established));
            if actions.contains(&Action::Connect) {
                prop_assert!(matches!(before, State::Idle | State::Connect | State::Active));
            }
            if after == State::Established {
                prop_assert!(fsm.negotiated().is_some());
            }
        }
    }
}

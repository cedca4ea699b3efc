//! Hold and keepalive timers against a real peer: with a 3 s hold time the session stays up
//! on keepalives alone, and when BIRD freezes (SIGSTOP) our hold timer ends the session with a
//! Hold Timer Expired NOTIFICATION; after BIRD resumes, we reconnect by ourselves.

mod common;

use common::peers::{Bird, PeerDaemon, PeerSpec};
use common::{require, run, veth, wait_for, Bgpd, Dir, Netns};
use serde_json::json;

#[test]
fn hold_timer_expires_when_the_peer_freezes_and_we_reconnect() {
    require(&["ip", "bird", "birdc", "kill"]);
    let ours_ns = Netns::new();
    let theirs = Netns::new();
    veth(&ours_ns, "10.0.0.1/24", &theirs, "10.0.0.2/24");
    let dir = Dir::new();
    let bird = Bird::start(
        &theirs,
        &dir,
        &PeerSpec {
            asn: 65002,
            router_id: "10.0.0.2".into(),
            address: "10.0.0.2".into(),
            our_address: "10.0.0.1".into(),
            our_as: 65001,
            originate: vec![],
            graceful_restart: false,
            // BIRD otherwise sits out 60 s after a session error before talking again.
            extra: "error wait time 1, 5;".into(),
        },
    );
    let ours = Bgpd::start(
        &ours_ns,
        &dir,
        "timers",
        json!({"local_as": 65001, "router_id": "10.0.0.1", "listen": "10.0.0.1:179", "hold_time": 3,
               "connect_retry": 1, "peers": [{"address": "10.0.0.2", "peer_as": 65002, "families": ["Ipv4"]}]}),
        json!([]),
    );
    ours.wait_established("10.0.0.2");
    assert_eq!(ours.peer("10.0.0.2")["hold_time"], 3);
    // Keepalives every second keep a 3 s hold timer from expiring.
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(ours.peer("10.0.0.2")["state"], "Established");
    assert_eq!(ours.peer("10.0.0.2")["flaps"], 0);

    let pid = std::fs::read_to_string(dir.path("bird.pid")).expect("bird pid file");
    let pid = pid.trim();
    run(&["kill", "-STOP", pid]);
    let err = wait_for("our hold timer to expire", 15, || {
        let p = ours.peer("10.0.0.2");
        (p["state"] != "Established")
            .then(|| p["last_error"].as_str().unwrap_or_default().to_string())
    });
    run(&["kill", "-CONT", pid]);
    assert!(
        err.contains("NOTIFICATION 4/0"),
        "expected a Hold Timer Expired NOTIFICATION, got {err}"
    );
    ours.wait_established("10.0.0.2");
    wait_for("BIRD to see the new session", 30, || {
        bird.established().then_some(())
    });
}

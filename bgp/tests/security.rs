//! Session protection with a real BIRD peer: TCP MD5 signatures (RFC 2385), GTSM/TTL security
//! (RFC 5082) and max-prefix (Cease NOTIFICATION, RFC 4486).

mod common;

use common::peers::{Bird, PeerDaemon, PeerSpec};
use common::{require, veth, wait_for, Bgpd, Dir, Netns};
use serde_json::{json, Value};

fn spec(extra: &str) -> PeerSpec {
    PeerSpec {
        asn: 65002,
        router_id: "10.0.0.2".into(),
        address: "10.0.0.2".into(),
        our_address: "10.0.0.1".into(),
        our_as: 65001,
        originate: vec!["192.168.100.0/24".into(), "192.168.101.0/24".into()],
        graceful_restart: false,
        extra: extra.into(),
    }
}

fn speaker(peer: Value) -> Value {
    json!({"local_as": 65001, "router_id": "10.0.0.1", "listen": "10.0.0.1:179", "connect_retry": 1, "peers": [peer]})
}

fn lab() -> (Netns, Netns, Dir) {
    require(&["ip", "bird", "birdc"]);
    let ours = Netns::new();
    let theirs = Netns::new();
    veth(&ours, "10.0.0.1/24", &theirs, "10.0.0.2/24");
    (ours, theirs, Dir::new())
}

#[test]
fn md5_and_ttl_security_session_establishes_and_wrong_key_does_not() {
    let (ours_ns, theirs, dir) = lab();
    let bird = Bird::start(
        &theirs,
        &dir,
        &spec("password \"fabric-secret\"; ttl security on;"),
    );
    let ours = Bgpd::start(
        &ours_ns,
        &dir,
        "good",
        speaker(
            json!({"address": "10.0.0.2", "peer_as": 65002, "families": ["Ipv4"],
                       "md5_password": "fabric-secret", "ttl_security": 1}),
        ),
        json!([]),
    );
    ours.wait_established("10.0.0.2");
    wait_for("BIRD to see the signed session", 20, || {
        bird.established().then_some(())
    });
    drop(ours);

    wait_for("BIRD to notice we left", 30, || {
        (!bird.established()).then_some(())
    });
    let wrong = Bgpd::start(
        &ours_ns,
        &dir,
        "wrong",
        speaker(
            json!({"address": "10.0.0.2", "peer_as": 65002, "families": ["Ipv4"],
                       "md5_password": "not-the-key", "ttl_security": 1}),
        ),
        json!([]),
    );
    // Segments signed with the wrong key are dropped by the kernel: no session for 8 seconds.
    for _ in 0..40 {
        assert_ne!(
            wrong.peer("10.0.0.2")["state"],
            "Established",
            "session came up with a wrong MD5 key"
        );
        assert!(!bird.established(), "BIRD accepted a wrong MD5 key");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn max_prefix_ends_the_session_with_cease() {
    let (ours_ns, theirs, dir) = lab();
    let bird = Bird::start(&theirs, &dir, &spec(""));
    let ours = Bgpd::start(
        &ours_ns,
        &dir,
        "limited",
        speaker(
            json!({"address": "10.0.0.2", "peer_as": 65002, "families": ["Ipv4"], "max_prefix": 1}),
        ),
        json!([]),
    );
    wait_for("a Cease/max-prefix NOTIFICATION to the peer", 30, || {
        let p = ours.peer("10.0.0.2");
        p["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("NOTIFICATION 6/1"))
            .then_some(())
    });
    let shown = bird.birdc(&["show", "protocols", "all", "fab"]);
    assert!(
        shown.contains("Maximum number of prefixes reached") || shown.contains("Cease"),
        "BIRD does not report our Cease: {shown}"
    );
}

//! Issue 18 with the real parts (two-rack, the real netmaster with TLS and `--auth on`, the
//! real agents): an agent with a wrong secret cannot register; host1's credential, got the
//! way host1's agent gets it, cannot release, record over or delete host3's endpoint, nor
//! beat or drop host3's reservations; nothing changes and traffic keeps flowing; a revoked
//! host1 credential is replaced by its agent, whose next attach succeeds.

mod common;

use common::{config, poll, text, Fabric, MASTER_URL};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

#[test]
fn agents_need_the_secret_and_touch_only_their_own_host() {
    let f = Fabric::up("au", "");
    let ns1 = f.container_netns("a1");
    let ns3 = f.container_netns("a3");
    let app1 = f.cni("ADD", "host1", "au-1", &ns1, &config());
    assert!(app1.ok, "{}", app1.raw);
    let app3 = f.cni("ADD", "host3", "au-3", &ns3, &config());
    assert!(app3.ok, "{}", app3.raw);
    let ip3 = Fabric::address(&app3);
    let ep3_id = format!("au-3-{}", common::IFNAME);
    assert!(
        poll(Duration::from_secs(20), || f.ping(&ns1, &ip3).then_some(())).is_some(),
        "app1 cannot reach app3"
    );
    let ep3 = f.get(&format!("/api/v1/endpoints/{ep3_id}/"));
    assert_eq!(ep3["homingHost"], "host3", "{ep3}");
    let network = ep3["network"].as_str().unwrap_or_default().to_string();
    let allocated = f.allocated("default:default-net");

    // A wrong secret: the real agent stops at registration, saying why, before touching OVS,
    // and shows neither secret; the master refuses the same request from anyone.
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = "0123456789abcdef-not-the-secret";
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{wrong}\n")).expect("write the secret");
    let out = Command::new("timeout")
        .arg("20")
        .args(["ip", "netns", "exec", &f.netns("host1")])
        .arg(common::bin_dir().join("netplugin"))
        .args(["--host", "host1", "--netmaster", MASTER_URL])
        .arg("--master-secret-file")
        .arg(&secret_file)
        .args(["--master-cacert", &f.cacert()])
        .arg("--ovs-rundir")
        .arg(dir.path().join("no-ovs"))
        .arg("--socket")
        .arg(dir.path().join("netplugin.sock"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run netplugin");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("wrong bootstrap secret"), "{shown}");
    assert!(shown.contains("--master-secret-file"), "{shown}");
    assert!(
        !shown.contains(wrong) && !shown.contains(&f.agent_secret()),
        "{shown}"
    );
    assert!(!shown.contains("ovsdb"), "it went on to OVS: {shown}");
    let (status, body) = f.call(
        "POST",
        "/api/v1/agent/register",
        Some(&json!({"host": "host1", "secret": wrong})),
        None,
    );
    assert_eq!(status, 401, "{body}");

    // host1's credential, as its agent gets it: registering with the secret.
    let (status, body) = f.call(
        "POST",
        "/api/v1/agent/register",
        Some(&json!({"host": "host1", "secret": f.agent_secret()})),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let host1: Value = serde_json::from_str(&body).expect("JSON");
    let host1 = host1["token"].as_str().expect("a token").to_string();
    let as_host1 =
        |method: &str, path: &str, body: Option<&Value>| f.call(method, path, body, Some(&host1));
    // Its own host: allowed.
    let (status, body) = as_host1("GET", "/api/v1/agent/hosts/host1/reservations", None);
    assert_eq!(status, 200, "{body}");
    // host3's endpoint and host: refused, every way.
    let mut over = ep3.clone();
    over["homingHost"] = json!("host1");
    let release =
        |host: &str| json!({"network": network, "ipAddress": ip3, "owner": ep3_id, "host": host});
    let attempts: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/api/v1/agent/release".into(),
            Some(release("host1")),
        ),
        (
            "POST",
            "/api/v1/agent/release".into(),
            Some(release("host3")),
        ),
        (
            "PUT",
            format!("/api/v1/agent/endpoints/{ep3_id}?reserved=true"),
            Some(ep3.clone()),
        ),
        (
            "PUT",
            format!("/api/v1/agent/endpoints/{ep3_id}?reserved=true"),
            Some(over),
        ),
        ("DELETE", format!("/api/v1/agent/endpoints/{ep3_id}"), None),
        (
            "PUT",
            "/api/v1/agent/hosts/host3".into(),
            Some(json!({"leaseSecs": 15})),
        ),
        (
            "DELETE",
            "/api/v1/agent/hosts/host3/reservations".into(),
            None,
        ),
    ];
    for (method, path, body) in &attempts {
        let (status, answer) = as_host1(method, path, body.as_ref());
        assert_eq!(status, 403, "{method} {path} as host1: {answer}");
    }
    // Without a token nothing gets that far.
    let (status, answer) = f.call(
        "POST",
        "/api/v1/agent/release",
        Some(&release("host3")),
        None,
    );
    assert_eq!(status, 401, "{answer}");
    // Nothing changed: the record, the addresses, the traffic.
    assert_eq!(f.get(&format!("/api/v1/endpoints/{ep3_id}/")), ep3);
    assert_eq!(f.allocated("default:default-net"), allocated);
    assert!(f.ping(&ns1, &ip3), "app1 no longer reaches app3");

    // An admin revokes host1's credential: the test's copy is dead at once; host1's agent
    // meets a 401 on its next request, registers again and repeats it, so an attach works.
    let admin = f.token();
    let (status, body) = f.call(
        "DELETE",
        "/api/v1/agent/hosts/host1/credential",
        None,
        Some(&admin),
    );
    assert_eq!(status, 200, "{body}");
    let revoked: Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        revoked["revoked"].as_u64().unwrap_or(0) >= 2,
        "the agent's and the test's sessions: {body}"
    );
    let (status, body) = as_host1("GET", "/api/v1/agent/hosts/host1/reservations", None);
    assert_eq!(status, 401, "{body}");
    let ns1b = f.container_netns("a1b");
    let app1b = f.cni("ADD", "host1", "au-1b", &ns1b, &config());
    assert!(app1b.ok, "an attach after the revocation: {}", app1b.raw);
    let ip1b = Fabric::address(&app1b);
    let ns3_ping = poll(Duration::from_secs(20), || {
        f.ping(&ns3, &ip1b).then_some(())
    });
    assert!(ns3_ping.is_some(), "app3 cannot reach the new container");
    let log = std::fs::read_to_string(f.run_dir("host1").join("netplugin.log")).unwrap_or_default();
    assert!(
        log.contains("registered with the netmaster again"),
        "host1's agent did not register again:\n{log}"
    );
    assert!(!log.contains(&f.agent_secret()), "the secret is in the log");
    assert!(f.cni("DEL", "host1", "au-1b", &ns1b, &config()).ok);
}

//! Authentication flows against a real master with `--auth on`, on both stores: Contiv's
//! login requests, logout, a deleted user or a removed authorization refused at once (also on
//! a second master on the same etcd), wrong passwords throttled without locking others out
//! and without a timing oracle, hosts kept to their own endpoints and addresses, and a
//! revocation racing writes.

mod common;
#[path = "auth_support/mod.rs"]
mod support;

use common::Fixture;
use serde_json::json;
use std::time::{Duration, Instant};
use support::AuthMaster;

both_backends! {
    contiv_login_flow => contiv_login_flow;
    revocation_takes_effect_at_once => revocation_takes_effect_at_once;
    wrong_passwords_are_throttled => wrong_passwords_are_throttled;
    an_address_spraying_usernames_is_throttled => an_address_spraying_usernames_is_throttled;
    hosts_touch_only_their_own => hosts_touch_only_their_own;
    revocation_racing_writes => revocation_racing_writes;
}

async fn contiv_login_flow(f: &Fixture) {
    let m = support::start(f).await;
    // Contiv's exact request: POST /api/v1/auth_proxy/login/ with username and password.
    let (s, v) = m
        .call(
            "POST",
            "/api/v1/auth_proxy/login/",
            None,
            Some(json!({"username": "admin", "password": support::ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().expect("{\"token\": ...}").to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    // X-Auth-Token, Contiv's header; and Authorization: Bearer.
    let (s, v) = m.call("GET", "/api/v1/networks/", Some(&token), None).await;
    assert_eq!((s, v.is_array()), (200, true), "{v}");
    let resp = m
        .client
        .get(format!("{}/api/v1/tenants/", m.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    // Without a token, or with a bad one: 401 with a JSON error.
    for bad in [None, Some("garbage"), Some("a.b.c")] {
        let (s, v) = m.call("GET", "/api/v1/networks/", bad, None).await;
        assert_eq!(s, 401, "{bad:?}: {v}");
        assert!(v["message"].is_string(), "{v}");
    }
    // Contiv's user and authorization routes and shapes.
    let (s, v) = m
        .call(
            "POST",
            "/api/v1/auth_proxy/local_users/",
            Some(&token),
            Some(json!({"username": "alice", "password": "alice-password", "first_name": "Alice", "last_name": "L", "disable": false})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v,
        json!({"username": "alice", "first_name": "Alice", "last_name": "L", "disable": false})
    );
    let id = m.grant(&token, "alice", "ops", "default").await;
    let (s, v) = m
        .call(
            "GET",
            &format!("/api/v1/auth_proxy/authorizations/{id}/"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"AuthzUUID": id, "PrincipalName": "alice", "Local": true, "Role": "ops", "TenantName": "default"})
    );
    let (s, v) = m
        .call("GET", "/api/v1/auth_proxy/local_users/", Some(&token), None)
        .await;
    assert_eq!(s, 200);
    assert!(
        !v.to_string().contains("argon2"),
        "hashes are never shown: {v}"
    );
    // A user changes their own password and stays logged in; the old password stops working.
    let alice = m.login("alice", "alice-password").await;
    let (s, v) = m
        .call(
            "PATCH",
            "/api/v1/auth_proxy/local_users/alice/",
            Some(&alice),
            Some(json!({"password": "alice-new-password"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = m
        .call(
            "GET",
            "/api/v1/auth_proxy/local_users/alice/",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 200, "the session that changed the password goes on");
    let (s, _) = m
        .call(
            "POST",
            "/api/v1/auth_proxy/login/",
            None,
            Some(json!({"username": "alice", "password": "alice-password"})),
        )
        .await;
    assert_eq!(s, 401);
    m.login("alice", "alice-new-password").await;
    // Logout revokes the presented token.
    let (s, _) = m
        .call("POST", "/api/v1/auth_proxy/logout/", Some(&alice), None)
        .await;
    assert_eq!(s, 200);
    let (s, v) = m.call("GET", "/api/v1/tenants/", Some(&alice), None).await;
    assert_eq!(s, 401, "{v}");
    // The last administrator cannot be removed.
    let (s, v) = m
        .call(
            "DELETE",
            "/api/v1/auth_proxy/local_users/admin/",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 409, "{v}");
    // Short passwords are refused.
    let (s, v) = m
        .call(
            "POST",
            "/api/v1/auth_proxy/local_users/",
            Some(&token),
            Some(json!({"username": "bob", "password": "short"})),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("password")), "{v}");
}

/// Polls `path` with `token` until it answers `want` (a second master sees a change when its
/// watch delivers it, in milliseconds).
async fn eventually(m: &AuthMaster, token: &str, path: &str, want: u16) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, v) = m.call("GET", path, Some(token), None).await;
        if s == want {
            return;
        }
        assert!(
            Instant::now() < until,
            "{path} still answers {s} {v}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn revocation_takes_effect_at_once(f: &Fixture) {
    let a = support::start(f).await;
    let b = match f.etcd {
        Some(_) => Some(support::start(f).await),
        None => None,
    };
    let admin = a.admin().await;
    a.ops_user(&admin, "carol", "carol-password", &[]).await;
    let grant = a.grant(&admin, "carol", "ops", "default").await;
    let carol = a.login("carol", "carol-password").await;
    let path = "/api/v1/tenants/default/";
    let (s, _) = a.call("GET", path, Some(&carol), None).await;
    assert_eq!(s, 200);
    if let Some(b) = &b {
        // A token from master A works on master B (same etcd, same signing key).
        eventually(b, &carol, path, 200).await;
    }
    // The authorization removed: the next request is 403, on both masters.
    let (s, v) = a
        .call(
            "DELETE",
            &format!("/api/v1/auth_proxy/authorizations/{grant}/"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = a.call("GET", path, Some(&carol), None).await;
    assert_eq!(s, 403, "at once on the master that removed it: {v}");
    if let Some(b) = &b {
        eventually(b, &carol, path, 403).await;
    }
    // The user deleted: 401 on both.
    let (s, _) = a
        .call(
            "DELETE",
            "/api/v1/auth_proxy/local_users/carol/",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = a.call("GET", path, Some(&carol), None).await;
    assert_eq!(s, 401);
    if let Some(b) = &b {
        eventually(b, &carol, path, 401).await;
    }
    // Re-created with the same name, the old token stays dead.
    a.ops_user(&admin, "carol", "carol-password", &["default"])
        .await;
    let (s, _) = a.call("GET", path, Some(&carol), None).await;
    assert_eq!(s, 401);
    // An agent's credential revoked by an admin.
    let agent = a.register("h7").await;
    let (s, _) = a.call("GET", "/api/v1/state", Some(&agent), None).await;
    assert_eq!(s, 200);
    let (s, v) = a
        .call(
            "DELETE",
            "/api/v1/agent/hosts/h7/credential",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s, v["revoked"].as_u64()), (200, Some(1)), "{v}");
    let (s, _) = a.call("GET", "/api/v1/state", Some(&agent), None).await;
    assert_eq!(s, 401);
    // An expired session is refused, and swept from the store.
    let short = support::start_with(f, Duration::from_secs(1)).await;
    let t = short.admin().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (s, v) = short.call("GET", "/api/v1/tenants/", Some(&t), None).await;
    assert_eq!(s, 401, "{v}");
    // Sweeping is the leader's (every 30 s): sweep now, fenced by whichever master of this
    // store leads (on etcd, any of the three; an embedded store has its one master).
    let mut masters = vec![&short.master];
    if f.etcd.is_some() {
        masters.push(&a.master);
        masters.extend(b.as_ref().map(|b| &b.master));
    }
    let fence = leading_fence(&masters).await;
    assert!(short.master.sweep_sessions(&fence).await.expect("sweep") >= 1);
}

/// The fence of whichever of `masters` leads (bounded wait).
async fn leading_fence(masters: &[&std::sync::Arc<netmaster::Master>]) -> fabric_store::Fence {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(fence) = masters.iter().find_map(|m| m.leader.fence()) {
            return fence;
        }
        assert!(Instant::now() < until, "no master leads");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wrong_passwords_are_throttled(f: &Fixture) {
    let m = support::start(f).await;
    let admin = m.admin().await;
    m.ops_user(&admin, "dave", "dave-password", &[]).await;
    m.ops_user(&admin, "erin", "erin-password", &[]).await;
    let attempt = |user: &'static str, pw: &'static str| {
        let m = &m;
        async move {
            let started = Instant::now();
            let (s, v) = m
                .call(
                    "POST",
                    "/api/v1/auth_proxy/login/",
                    None,
                    Some(json!({"username": user, "password": pw})),
                )
                .await;
            (s, v, started.elapsed())
        }
    };
    // No timing oracle: an unknown user takes as long to refuse as a wrong password.
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for _ in 0..4 {
        let (s, _, t) = attempt("nobody-here", "whatever-pass").await;
        assert_eq!(s, 401);
        unknown.push(t);
        let (s, v, t) = attempt("erin", "wrong-password").await;
        assert_eq!(s, 401);
        assert_eq!(v["message"], "invalid username or password");
        wrong.push(t);
    }
    unknown.sort();
    wrong.sort();
    let (u, w) = (unknown[2].as_secs_f64(), wrong[2].as_secs_f64());
    assert!(
        u > w / 3.0 && u < w * 3.0,
        "unknown {unknown:?} vs wrong password {wrong:?}"
    );
    // dave: 5 failures, then 429 with Retry-After, even with the right password.
    for _ in 0..5 {
        let (s, _, _) = attempt("dave", "wrong-password").await;
        assert_eq!(s, 401);
    }
    let resp = m
        .client
        .post(format!("{}/api/v1/auth_proxy/login/", m.base))
        .header("content-type", "application/json")
        .body(json!({"username": "dave", "password": "dave-password"}).to_string())
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse().ok())
        .expect("Retry-After");
    assert!((1..=300).contains(&retry), "{retry}");
    // Nobody else is locked out.
    m.login("erin", "erin-password").await;
    // After the wait, dave's right password works.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    m.login("dave", "dave-password").await;
}

/// One address trying many usernames is held back by its own count (the server records each
/// connection's peer address), though no single username failed often.
async fn an_address_spraying_usernames_is_throttled(f: &Fixture) {
    let m = support::start(f).await;
    let mut statuses = Vec::new();
    for i in 0..24 {
        let (s, _) = m
            .call(
                "POST",
                "/api/v1/auth_proxy/login/",
                None,
                Some(json!({"username": format!("guess{i}"), "password": "wrong-password"})),
            )
            .await;
        statuses.push(s);
    }
    assert!(
        statuses[..20].iter().all(|s| *s == 401),
        "twenty free failures per address: {statuses:?}"
    );
    assert!(
        statuses[20..].iter().all(|s| *s == 429),
        "then the address waits: {statuses:?}"
    );
}

async fn hosts_touch_only_their_own(f: &Fixture) {
    let m = support::start(f).await;
    let admin = m.admin().await;
    m.create(
        &admin,
        "/api/v1/networks/default:n/",
        json!({"subnet": "10.9.1.0/24", "gateway": "10.9.1.254"}),
    )
    .await;
    let h1 = m.register("h1").await;
    let h2 = m.register("h2").await;
    // h2 allocates and records an endpoint, and reserves an address.
    let (s, alloc) = m
        .call(
            "POST",
            "/api/v1/agent/allocate",
            Some(&h2),
            Some(json!({"network": "default:n", "owner": "ep2"})),
        )
        .await;
    assert_eq!(s, 200, "{alloc}");
    let ip = alloc["ipAddress"].as_str().expect("an address").to_string();
    let ep2 = json!({"network": "default:n", "ipAddress": [ip], "homingHost": "h2"});
    let (s, v) = m
        .call(
            "PUT",
            "/api/v1/agent/endpoints/ep2",
            Some(&h2),
            Some(ep2.clone()),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, res) = m
        .call(
            "POST",
            "/api/v1/agent/reserve",
            Some(&h2),
            Some(json!({"network": "default:n", "host": "h2", "count": 1})),
        )
        .await;
    assert_eq!(s, 200, "{res}");
    let kept = res["addresses"][0]
        .as_str()
        .expect("a reserved address")
        .to_string();
    let before = m.master.store.revision().await.expect("revision");
    // h1 may not release h2's endpoint's address (the duplicate-IP attack), nor its reserve.
    for body in [
        json!({"network": "default:n", "ipAddress": ip, "owner": "ep2"}),
        json!({"network": "default:n", "ipAddress": ip, "owner": "ep2", "host": "h2"}),
        json!({"network": "default:n", "ipAddress": kept, "owner": "", "host": "h2"}),
    ] {
        let (s, v) = m
            .call(
                "POST",
                "/api/v1/agent/release",
                Some(&h1),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, 403, "{body}: {v}");
    }
    let (s, v) = m
        .call(
            "POST",
            "/api/v1/agent/release",
            Some(&h1),
            Some(json!({"network": "default:n", "ipAddress": ip})),
        )
        .await;
    assert_eq!(s, 400, "no owner: {v}");
    // Nor take over, record for, or remove h2's endpoint.
    let (s, _) = m
        .call(
            "PUT",
            "/api/v1/agent/endpoints/ep2",
            Some(&h1),
            Some(json!({"network": "default:n", "ipAddress": [ip], "homingHost": "h1"})),
        )
        .await;
    assert_eq!(s, 403, "take-over");
    let (s, _) = m
        .call(
            "PUT",
            "/api/v1/agent/endpoints/ep9",
            Some(&h1),
            Some(json!({"network": "default:n", "ipAddress": ["10.9.1.77"], "homingHost": "h2"})),
        )
        .await;
    assert_eq!(s, 403, "recording for another host");
    let (s, _) = m
        .call("DELETE", "/api/v1/agent/endpoints/ep2", Some(&h1), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = m
        .call(
            "DELETE",
            "/api/v1/agent/hosts/h2/reservations",
            Some(&h1),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = m
        .call(
            "PUT",
            "/api/v1/agent/hosts/h2",
            Some(&h1),
            Some(json!({"leaseSecs": 10})),
        )
        .await;
    assert_eq!(s, 403, "a heartbeat for another host");
    assert_eq!(
        m.master.store.revision().await.expect("revision"),
        before,
        "nothing changed"
    );
    // h2 itself may.
    let (s, _) = m
        .call("DELETE", "/api/v1/agent/endpoints/ep2", Some(&h2), None)
        .await;
    assert_eq!(s, 200);
    let (s, v) = m
        .call(
            "POST",
            "/api/v1/agent/release",
            Some(&h2),
            Some(json!({"network": "default:n", "ipAddress": ip, "owner": "ep2"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = m
        .call(
            "DELETE",
            "/api/v1/agent/hosts/h2/reservations",
            Some(&h2),
            None,
        )
        .await;
    assert_eq!((s, v["released"].as_u64()), (200, Some(1)), "{v}");
    // Registration: a wrong secret is refused; host names are validated.
    let (s, _) = m
        .call(
            "POST",
            "/api/v1/agent/register",
            None,
            Some(json!({"host": "h3", "secret": "wrong"})),
        )
        .await;
    assert_eq!(s, 401);
    let (s, v) = m
        .call(
            "POST",
            "/api/v1/agent/register",
            None,
            Some(json!({"host": "../etc", "secret": support::AGENT_SECRET})),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (400, Some("host")), "{v}");
}

/// Writes by an ops user race the removal of its authorization: every write that succeeds
/// committed before the removal (its transaction compared the grant), and every write sent
/// after the removal answered is refused. On etcd the writes go to a second master.
async fn revocation_racing_writes(f: &Fixture) {
    let a = support::start(f).await;
    let second = match f.etcd {
        Some(_) => Some(support::start(f).await),
        None => None,
    };
    let b = second.as_ref().unwrap_or(&a);
    let admin = a.admin().await;
    a.ops_user(&admin, "frank", "frank-password", &[]).await;
    let grant = a.grant(&admin, "frank", "ops", "default").await;
    let frank = b.login("frank", "frank-password").await;
    let start = a.master.store.revision().await.expect("revision");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (base, token, stop) = (b.base.clone(), frank.clone(), stop.clone());
        // The master's client: it trusts the master's certificate.
        let client = b.client.clone();
        writers.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            let mut refused_after_stop = 0;
            for i in 0.. {
                let stopping = stop.load(std::sync::atomic::Ordering::SeqCst);
                let key = format!("default:race-{w}-{i}");
                let resp = client
                    .post(format!("{base}/api/v1/policys/{key}/"))
                    .header("X-Auth-Token", &token)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .expect("request");
                match resp.status().as_u16() {
                    200 => {
                        assert!(
                            !stopping,
                            "a write sent after the revocation answered succeeded: {key}"
                        );
                        ok.push(key);
                    }
                    403 => {
                        if stopping {
                            refused_after_stop += 1;
                            if refused_after_stop >= 3 {
                                break;
                            }
                        }
                    }
                    other => panic!("{key}: {other}"),
                }
            }
            ok
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, v) = a
        .call(
            "DELETE",
            &format!("/api/v1/auth_proxy/authorizations/{grant}/"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    // Master B applies the removal when its watch delivers it; from then on nothing passes.
    eventually(b, &frank, "/api/v1/tenants/default/", 403).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.expect("writer"));
    }
    assert!(
        !written.is_empty(),
        "some writes went through before the revocation"
    );
    // The revision of the removal, from the store's own history.
    let mut events = a
        .master
        .store
        .watch("/contiv/auth/authorizations/", start)
        .await
        .expect("watch");
    let revoked_at = loop {
        use futures::StreamExt;
        let e = events.next().await.expect("an event").expect("no error");
        if e.value.is_none() && e.key.ends_with(&grant) {
            break e.revision;
        }
    };
    for key in &written {
        let kv = a
            .master
            .store
            .get(&format!("/contiv/config/policys/{key}"))
            .await
            .expect("store")
            .expect("the acknowledged write is stored");
        assert!(
            kv.mod_revision < revoked_at,
            "{key} committed at {} after the revocation at {revoked_at}",
            kv.mod_revision
        );
    }
}

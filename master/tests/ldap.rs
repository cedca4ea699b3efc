//! LDAP against a real slapd (issue 18), through the real netmaster in-process with
//! `--auth on`: Contiv's `ldap_configuration` route (admin only, the service account's
//! password never shown, bad input naming the field and changing nothing), LDAP users logging
//! in with Contiv's request and getting the roles their groups (direct, nested, `memberOf`,
//! `uniqueMember`) are granted, a user in no granted group refused on objects, wrong passwords
//! refused like unknown users and throttled, group changes applying at the next login, a
//! dead or silent LDAP server failing logins quickly while local users still log in, and
//! StartTLS through rustls.

mod common;
#[path = "ldap_support/mod.rs"]
mod slapd;
#[path = "auth_support/mod.rs"]
mod support;

use common::{Backend, Fixture};
use netmaster::auth::AuthSettings;
use serde_json::{json, Value};
use slapd::{Slapd, TlsFiles};
use std::time::{Duration, Instant};
use support::AuthMaster;

const ROUTE: &str = "/api/v1/auth_proxy/ldap_configuration/";

both_backends! {
    ldap_configuration_route => ldap_configuration_route;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_users_get_the_roles_of_their_groups() {
    users_and_groups(&Fixture::new(Backend::Embedded)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_down_fails_logins_quickly_and_local_users_still_log_in() {
    ldap_down(&Fixture::new(Backend::Embedded)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_tls_through_rustls() {
    start_tls(&Fixture::new(Backend::Embedded)).await;
}

/// Contiv's configuration body for the test directory at `port`.
fn config(port: u16) -> Value {
    json!({
        "server": "127.0.0.1",
        "port": port,
        "base_dn": slapd::SUFFIX,
        "service_account_dn": slapd::SERVICE_DN,
        "service_account_password": slapd::SERVICE_PW,
        "start_tls": false,
        "insecure_skip_verify": false,
        "tls_cert_issued_to": "",
    })
}

async fn configure(m: &AuthMaster, admin: &str, body: Value) -> Value {
    let (s, v) = m.call("PUT", ROUTE, Some(admin), Some(body)).await;
    assert_eq!(s, 200, "PUT {ROUTE}: {v}");
    v
}

async fn patch(m: &AuthMaster, admin: &str, body: Value) -> Value {
    let (s, v) = m.call("PATCH", ROUTE, Some(admin), Some(body)).await;
    assert_eq!(s, 200, "PATCH {ROUTE}: {v}");
    v
}

/// Grants ops of `tenant` to an LDAP group (`local: false`); returns the reply.
async fn grant_group(m: &AuthMaster, admin: &str, dn: &str, tenant: &str) -> Value {
    let (s, v) = m
        .call(
            "POST",
            "/api/v1/auth_proxy/authorizations/",
            Some(admin),
            Some(json!({"principalName": dn, "local": false, "role": "ops", "tenantName": tenant})),
        )
        .await;
    assert_eq!(s, 201, "grant ops {tenant} to {dn}: {v}");
    v
}

/// Contiv's login request; the status, the answer and how long it took.
async fn try_login(m: &AuthMaster, user: &str, pw: &str) -> (u16, Value, Duration) {
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

async fn network(m: &AuthMaster, token: &str, tenant: &str, name: &str, octet: u8) -> u16 {
    let (s, _) = m
        .call(
            "POST",
            &format!("/api/v1/networks/{tenant}:{name}/"),
            Some(token),
            Some(json!({"subnet": format!("10.{octet}.0.0/24")})),
        )
        .await;
    s
}

async fn ldap_configuration_route(f: &Fixture) {
    let m = support::start(f).await;
    let admin = m.admin().await;
    let (s, _) = m.call("GET", ROUTE, Some(&admin), None).await;
    assert_eq!(s, 404, "no configuration yet");
    let (s, _) = m
        .call("PATCH", ROUTE, Some(&admin), Some(json!({"port": 389})))
        .await;
    assert_eq!(s, 404, "PATCH needs a configuration");

    // PUT answers Contiv's shape without the password; GET the same.
    let set = configure(&m, &admin, config(389)).await;
    let mut want = config(389);
    want.as_object_mut()
        .expect("object")
        .remove("service_account_password");
    assert_eq!(set, want);
    let (s, got) = m.call("GET", ROUTE, Some(&admin), None).await;
    assert_eq!((s, &got), (200, &want));
    let text = m
        .client
        .get(format!("{}{ROUTE}", m.base))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert!(
        !text.contains(slapd::SERVICE_PW),
        "the password is never shown: {text}"
    );

    // Bad input names the field and changes nothing.
    let with = |field: &str, value: Value| {
        let mut c = config(389);
        c[field] = value;
        c
    };
    let mut no_password = config(389);
    no_password
        .as_object_mut()
        .expect("object")
        .remove("service_account_password");
    let mut tls_to_an_address = config(389);
    tls_to_an_address["start_tls"] = json!(true);
    let bad = [
        (with("port", json!(0)), "port"),
        (with("port", json!(70000)), "port"),
        (with("port", json!("389")), "port"),
        (with("server", json!("")), "server"),
        (with("server", json!("ldap://h:389")), "server"),
        (with("base_dn", json!("")), "base_dn"),
        (with("base_dn", json!("example")), "base_dn"),
        (with("service_account_dn", json!("")), "service_account_dn"),
        (no_password, "service_account_password"),
        (with("start_tls", json!("yes")), "start_tls"),
        (tls_to_an_address, "tls_cert_issued_to"),
    ];
    for (body, field) in bad {
        let (s, v) = m.call("PUT", ROUTE, Some(&admin), Some(body.clone())).await;
        assert_eq!((s, v["field"].as_str()), (400, Some(field)), "{body}: {v}");
        let (_, now) = m.call("GET", ROUTE, Some(&admin), None).await;
        assert_eq!(now, want, "a refused PUT changed nothing");
    }
    for (body, field) in [
        (json!({"port": 0}), "port"),
        (json!({"base_dn": "nope"}), "base_dn"),
        (json!({"tls_cert_issued_to": 5}), "tls_cert_issued_to"),
    ] {
        let (s, v) = m
            .call("PATCH", ROUTE, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!((s, v["field"].as_str()), (400, Some(field)), "{body}: {v}");
        let (_, now) = m.call("GET", ROUTE, Some(&admin), None).await;
        assert_eq!(now, want, "a refused PATCH changed nothing");
    }

    // PATCH changes what it carries; with StartTLS and no name, the certificate must be
    // issued to the server (Contiv's rule). The password is kept, not shown.
    let v = patch(
        &m,
        &admin,
        json!({"server": "ldap.example.org", "port": 1389, "start_tls": true}),
    )
    .await;
    assert_eq!(v["port"], 1389);
    assert_eq!(v["base_dn"], slapd::SUFFIX);
    assert_eq!(v["tls_cert_issued_to"], "ldap.example.org");
    assert!(v.get("service_account_password").is_none(), "{v}");
    let kv = m
        .master
        .store
        .get(netmaster::keys::LDAP_CONFIG)
        .await
        .expect("store")
        .expect("stored");
    let stored: Value = serde_json::from_slice(&kv.value).expect("JSON");
    assert_eq!(stored["service_account_password"], slapd::SERVICE_PW);

    // Admins only.
    m.ops_user(&admin, "olga", "olga-password", &["default"])
        .await;
    let olga = m.login("olga", "olga-password").await;
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        let body = (method == "PUT" || method == "PATCH").then(|| config(389));
        let (s, v) = m.call(method, ROUTE, Some(&olga), body.clone()).await;
        assert_eq!(s, 403, "{method} as ops: {v}");
        let (s, v) = m.call(method, ROUTE, None, body).await;
        assert_eq!(s, 401, "{method} without a token: {v}");
    }
    // Contiv's DELETE: 204, then 404.
    let (s, _) = m.call("DELETE", ROUTE, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, _) = m.call("GET", ROUTE, Some(&admin), None).await;
    assert_eq!(s, 404);
    let (s, _) = m.call("DELETE", ROUTE, Some(&admin), None).await;
    assert_eq!(s, 404);
}

async fn users_and_groups(f: &Fixture) {
    let dir = Slapd::start(None);
    let m = support::start(f).await;
    let admin = m.admin().await;
    configure(&m, &admin, config(dir.port)).await;
    for t in ["blue", "red"] {
        m.create(&admin, &format!("/api/v1/tenants/{t}/"), json!({}))
            .await;
    }
    // Groups are named by DN, spelled as the admin likes: DNs compare without case or spaces.
    let v = grant_group(
        &m,
        &admin,
        "CN=NetOps, OU=Groups, DC=example, DC=org",
        "blue",
    )
    .await;
    assert_eq!(v["PrincipalName"], slapd::NETOPS_DN);
    assert_eq!(v["Local"], false);
    grant_group(&m, &admin, slapd::ALLOPS_DN, "red").await;
    grant_group(&m, &admin, slapd::ADGROUP_DN, "blue").await;
    grant_group(
        &m,
        &admin,
        "cn=netops-unique,ou=groups,dc=example,dc=org",
        "blue",
    )
    .await;

    // alice (uid), member of netops, itself a member of allops: ops of blue and of red.
    let alice = m.login("alice", slapd::ALICE_PW).await;
    assert_eq!(network(&m, &alice, "blue", "a", 1).await, 200);
    assert_eq!(
        network(&m, &alice, "red", "a", 2).await,
        200,
        "nested group"
    );
    assert_eq!(network(&m, &alice, "default", "a", 3).await, 403);
    let (s, v) = m.call("GET", "/api/v1/globals/", Some(&alice), None).await;
    assert_eq!(s, 403, "{v}");
    // bob: found by sAMAccountName; his group only in his own memberOf (Active Directory).
    let bob = m.login("bob", slapd::BOB_PW).await;
    assert_eq!(network(&m, &bob, "blue", "b", 4).await, 200);
    assert_eq!(network(&m, &bob, "red", "b", 5).await, 403);
    // dave: uniqueMember of a groupOfUniqueNames.
    let dave = m.login("dave", slapd::DAVE_PW).await;
    assert_eq!(network(&m, &dave, "blue", "d", 6).await, 200);

    // carol: in no granted group. She logs in, sees nothing and changes nothing.
    let carol = m.login("carol", slapd::CAROL_PW).await;
    let (s, v) = m
        .call("GET", "/api/v1/tenants/blue/", Some(&carol), None)
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = m
        .call("GET", "/api/v1/networks/blue:a/", Some(&carol), None)
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(network(&m, &carol, "blue", "c", 7).await, 403);
    let (s, v) = m.call("GET", "/api/v1/networks/", Some(&carol), None).await;
    assert_eq!((s, v), (200, json!([])), "lists show nothing");
    // Group membership is read at login: carol added to a granted group now gets its role
    // at her next login, not in the session she has.
    dir.load(&format!(
        "dn: cn=latecomers,ou=groups,{}\nobjectClass: groupOfNames\ncn: latecomers\nmember: uid=carol,ou=people,{}\n",
        slapd::SUFFIX,
        slapd::SUFFIX
    ));
    grant_group(
        &m,
        &admin,
        &format!("cn=latecomers,ou=groups,{}", slapd::SUFFIX),
        "blue",
    )
    .await;
    assert_eq!(network(&m, &carol, "blue", "c", 7).await, 403);
    let carol2 = m.login("carol", slapd::CAROL_PW).await;
    assert_eq!(network(&m, &carol2, "blue", "c", 7).await, 200);
    // Her own session: logout works.
    let (s, _) = m
        .call("POST", "/api/v1/auth_proxy/logout/", Some(&carol), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = m.call("GET", "/api/v1/networks/", Some(&carol), None).await;
    assert_eq!(s, 401);

    // A wrong LDAP password is refused like an unknown user, in about the same time.
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for _ in 0..4 {
        let (s, v, t) = try_login(&m, "zed", "zed-password").await;
        assert_eq!(s, 401, "{v}");
        unknown.push(t);
        let (s, v, t) = try_login(&m, "alice", "not-alices-password").await;
        assert_eq!(s, 401, "{v}");
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
    // Wrong LDAP passwords count for throttling: after 5, even the right one waits.
    m.login("alice", slapd::ALICE_PW).await;
    for _ in 0..5 {
        let (s, v, _) = try_login(&m, "dave", "not-daves-password").await;
        assert_eq!(s, 401, "{v}");
    }
    let (s, v, _) = try_login(&m, "dave", slapd::DAVE_PW).await;
    assert_eq!(s, 429, "{v}");
    // The service account's password is never shown.
    let (_, v) = m.call("GET", ROUTE, Some(&admin), None).await;
    assert!(!v.to_string().contains(slapd::SERVICE_PW), "{v}");
    drop(dir);
}

async fn ldap_down(f: &Fixture) {
    let mut dir = Slapd::start(None);
    let limit = Duration::from_secs(1);
    let m = support::start_settings(
        f,
        AuthSettings {
            ldap_timeout: limit,
            ..support::settings()
        },
    )
    .await;
    let admin = m.admin().await;
    configure(&m, &admin, config(dir.port)).await;
    grant_group(&m, &admin, slapd::NETOPS_DN, "default").await;
    m.login("alice", slapd::ALICE_PW).await;

    // slapd stopped: refused at once (503, saying why); local users still log in.
    dir.stop();
    let (s, v, took) = try_login(&m, "alice", slapd::ALICE_PW).await;
    assert_eq!(s, 503, "{v}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cannot reach the LDAP server"),
        "{message}"
    );
    assert!(took < limit, "took {took:?}");
    m.admin().await;

    // A server that accepts connections and never answers: bounded by --ldap-timeout, and
    // local logins meanwhile are not held up.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hole_port = hole.local_addr().expect("addr").port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            held.push(socket);
        }
    });
    patch(&m, &admin, json!({"port": hole_port})).await;
    let hanging = {
        let (base, client) = (m.base.clone(), m.client.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let resp = client
                .post(format!("{base}/api/v1/auth_proxy/login/"))
                .header("content-type", "application/json")
                .body(json!({"username": "alice", "password": slapd::ALICE_PW}).to_string())
                .send()
                .await
                .expect("login answers");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, body, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    m.admin().await;
    assert!(
        started.elapsed() < limit,
        "a local login waited {:?} for the silent LDAP server",
        started.elapsed()
    );
    let (s, v, took) = hanging.await.expect("login task");
    assert_eq!(s, 503, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("did not answer within 1000 ms")),
        "{v}"
    );
    assert!(
        took >= limit && took < limit * 3,
        "the silent server held the login {took:?}"
    );
    silent.abort();

    // The service account refused: 502 naming it (the same for every username).
    let fresh = Slapd::start(None);
    patch(
        &m,
        &admin,
        json!({"port": fresh.port, "service_account_password": "not-the-service-password"}),
    )
    .await;
    let (s, v, _) = try_login(&m, "alice", slapd::ALICE_PW).await;
    assert_eq!(s, 502, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("service account")),
        "{v}"
    );
    // Put right, alice logs in again.
    patch(
        &m,
        &admin,
        json!({"service_account_password": slapd::SERVICE_PW}),
    )
    .await;
    m.login("alice", slapd::ALICE_PW).await;
}

async fn start_tls(f: &Fixture) {
    let dir = Slapd::start(Some(&TlsFiles::localhost()));
    let m = support::start(f).await;
    let admin = m.admin().await;
    let mut body = config(dir.port);
    body["start_tls"] = json!(true);
    body["insecure_skip_verify"] = json!(true);
    configure(&m, &admin, body).await;
    grant_group(&m, &admin, slapd::NETOPS_DN, "default").await;
    let alice = m.login("alice", slapd::ALICE_PW).await;
    assert_eq!(network(&m, &alice, "default", "tls", 9).await, 200);
    // Verified against the system's roots, the self-signed certificate is refused: 502.
    let v = patch(
        &m,
        &admin,
        json!({"insecure_skip_verify": false, "tls_cert_issued_to": "localhost"}),
    )
    .await;
    assert_eq!(v["tls_cert_issued_to"], "localhost");
    let (s, v, _) = try_login(&m, "alice", slapd::ALICE_PW).await;
    assert_eq!(s, 502, "{v}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("StartTLS") && message.contains("certificate"),
        "{message}"
    );
}

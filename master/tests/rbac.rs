//! The RBAC truth table, on both stores: callers {admin, ops of tenant A, ops of tenant B, the
//! agent of host h1, no token, an expired token, a revoked (logged out) token, a malformed
//! token, a token signed with another key} × every collection × {list, get, inspect, create,
//! update, delete, watch}, plus the agent routes and the auth routes. Each cell's answer is
//! compared with the rule table below, written here as data from master/README.md's table
//! and not from the implementation.

mod common;
#[path = "auth_support/mod.rs"]
mod support;

use common::Fixture;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use support::AuthMaster;

both_backends! {
    every_caller_every_collection_every_operation => truth_table;
}

/// Who may do what, per kind of collection and the caller's relation to the object (the
/// object always belongs to tenant A): `list` (listed), `list-hidden` (the list answers but
/// leaves it out), `get`, `inspect`, `create`, `update`, `delete`, `watch` (its events are
/// streamed). Anything not named is refused with 403.
const TABLE: &[(&str, &str, &str)] = &[
    (
        "tenants",
        "admin",
        "list get inspect create update delete watch",
    ),
    ("tenants", "own", "list get inspect watch"),
    ("tenants", "other", "list-hidden"),
    ("tenants", "agent", "list get inspect watch"),
    (
        "scoped",
        "admin",
        "list get inspect create update delete watch",
    ),
    (
        "scoped",
        "own",
        "list get inspect create update delete watch",
    ),
    ("scoped", "other", "list-hidden"),
    ("scoped", "agent", "list get inspect watch"),
    ("endpoints", "admin", "list get inspect watch"),
    ("endpoints", "own", "list get inspect watch"),
    ("endpoints", "other", "list-hidden"),
    ("endpoints", "agent", "list get inspect watch"),
    (
        "fabric",
        "admin",
        "list get inspect create update delete watch",
    ),
    ("fabric", "own", ""),
    ("fabric", "other", ""),
    ("fabric", "agent", "list get inspect watch"),
];

/// Exceptions to the table, from the same README: inspect of `globals/global` is open to
/// every authenticated caller; `endpoints` are read-only (writes answer 405 to whoever may
/// reach them); the global object cannot be deleted (409).
fn class(coll: &str) -> &'static str {
    match coll {
        "tenants" => "tenants",
        "endpoints" => "endpoints",
        "globals" | "Bgps" | "aciGws" => "fabric",
        _ => "scoped",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    OpsA,
    OpsB,
    AgentH1,
    NoToken,
    Expired,
    Revoked,
    Malformed,
    OtherKey,
}

const CALLERS: [Who; 9] = [
    Who::Admin,
    Who::OpsA,
    Who::OpsB,
    Who::AgentH1,
    Who::NoToken,
    Who::Expired,
    Who::Revoked,
    Who::Malformed,
    Who::OtherKey,
];

impl Who {
    fn relation(self) -> Option<&'static str> {
        match self {
            Who::Admin => Some("admin"),
            Who::OpsA => Some("own"),
            Who::OpsB => Some("other"),
            Who::AgentH1 => Some("agent"),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Who::Admin => "admin",
            Who::OpsA => "opsA",
            Who::OpsB => "opsB",
            Who::AgentH1 => "agent",
            _ => "unauthenticated",
        }
    }
}

fn allowed(coll: &str, who: Who, op: &str) -> bool {
    let Some(rel) = who.relation() else {
        return false;
    };
    TABLE
        .iter()
        .find(|(c, r, _)| *c == class(coll) && *r == rel)
        .is_some_and(|(_, _, ops)| ops.split(' ').any(|o| o == op))
}

/// The status a cell must answer.
fn expected_status(coll: &str, who: Who, op: &str) -> u16 {
    if who.relation().is_none() {
        return 401;
    }
    let write = matches!(op, "create" | "update" | "delete");
    if coll == "endpoints" && write {
        return 405;
    }
    if op == "inspect" && coll == "globals" {
        return 200;
    }
    if op == "list" {
        return if allowed(coll, who, "list") || allowed(coll, who, "list-hidden") {
            200
        } else {
            403
        };
    }
    if !allowed(coll, who, op) {
        return 403;
    }
    if coll == "globals" && op == "delete" {
        return 409;
    }
    200
}

/// The collection, the key of the object of tenant A that is read and updated, the key of
/// one that is created and deleted.
const COLLECTIONS: &[(&str, &str, &str)] = &[
    ("tenants", "A", "v1"),
    ("networks", "A:net", "A:net2"),
    ("policys", "A:pol", "A:pol2"),
    ("netprofiles", "A:prof", "A:prof2"),
    ("extContractsGroups", "A:ext", "A:ext2"),
    ("endpointGroups", "A:grp", "A:grp2"),
    ("rules", "A:pol:1", "A:pol:2"),
    ("appProfiles", "A:app", "A:app2"),
    ("serviceLBs", "A:svc", "A:svc2"),
    ("Bgps", "host1", "host2"),
    ("aciGws", "aciGw", "aciGw"),
    ("globals", "global", "global"),
    ("endpoints", "epA", "epA"),
];

/// A valid body for `coll/key` (tenant A's at 10.1.x, B's at 10.2.x: tenants do not overlap).
fn body(coll: &str, key: &str) -> Value {
    let parts: Vec<&str> = key.split(':').collect();
    let t = parts[0];
    let n = if t == "B" { 2 } else { 1 };
    let name = parts.get(1).copied().unwrap_or_default();
    match coll {
        "tenants" => json!({"tenantName": key}),
        "networks" => {
            let third = if name == "net" { 1 } else { 2 };
            json!({"subnet": format!("10.{n}.{third}.0/24"), "gateway": format!("10.{n}.{third}.254")})
        }
        "policys" => json!({}),
        "netprofiles" => json!({"bandwidth": "10Mbps", "DSCP": 5}),
        "extContractsGroups" => {
            json!({"contractsType": "provided", "contracts": ["uni/tn-common/brc-default"]})
        }
        "endpointGroups" if name == "grp" => {
            json!({"networkName": "net", "policies": ["pol"], "netProfile": "prof", "extContractsGrps": ["ext"]})
        }
        "endpointGroups" => json!({"networkName": "net"}),
        "rules" => {
            json!({"direction": "in", "protocol": "tcp", "port": 80, "action": "allow"})
        }
        "appProfiles" => json!({"endpointGroups": ["grp"]}),
        "serviceLBs" => {
            json!({"networkName": "net", "selectors": ["tier=web"], "ports": ["8080:80:TCP"]})
        }
        "Bgps" => {
            json!({"routerip": "50.1.1.1/24", "as": "65002", "neighbor-as": "500", "neighbor": "50.1.1.2"})
        }
        "aciGws" => json!({"enforcePolicies": "yes"}),
        "globals" => json!({"fwdMode": "routing"}),
        "endpoints" => json!({"network": "A:net", "ipAddress": ["10.1.1.11"], "homingHost": "h1"}),
        other => panic!("no body for {other}"),
    }
}

/// Every object the table reads, of tenants A and B, and of the fabric.
async fn populate(m: &AuthMaster, admin: &str) {
    for t in ["A", "B", "v1"] {
        m.create(admin, &format!("/api/v1/tenants/{t}/"), body("tenants", t))
            .await;
    }
    for t in ["A", "B"] {
        for (coll, main, victim) in &COLLECTIONS[1..9] {
            for key in [main, victim] {
                let key = key.replacen("A", t, 1);
                m.create(admin, &format!("/api/v1/{coll}/{key}/"), body(coll, &key))
                    .await;
            }
        }
    }
    m.create(admin, "/api/v1/Bgps/host1/", body("Bgps", "host1"))
        .await;
    m.create(admin, "/api/v1/Bgps/host2/", body("Bgps", "host2"))
        .await;
    m.create(admin, "/api/v1/aciGws/aciGw/", body("aciGws", "aciGw"))
        .await;
    for (id, net, ip, host) in [
        ("epA", "A:net", "10.1.1.11", "h1"),
        ("epB", "B:net", "10.2.1.11", "h2"),
    ] {
        let (s, v) = m
            .call(
                "PUT",
                &format!("/api/v1/agent/endpoints/{id}"),
                Some(admin),
                Some(json!({"network": net, "ipAddress": [ip], "homingHost": host})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
}

/// The tokens of every caller.
struct Tokens {
    admin: String,
    ops_a: String,
    ops_b: String,
    agent: String,
    expired: String,
    revoked: String,
    other_key: String,
}

impl Tokens {
    fn of(&self, who: Who) -> Option<&str> {
        Some(match who {
            Who::Admin => &self.admin,
            Who::OpsA => &self.ops_a,
            Who::OpsB => &self.ops_b,
            Who::AgentH1 => &self.agent,
            Who::NoToken => return None,
            Who::Expired => &self.expired,
            Who::Revoked => &self.revoked,
            Who::Malformed => "this.is-not.a-token",
            Who::OtherKey => &self.other_key,
        })
    }
}

async fn tokens(m: &AuthMaster) -> Tokens {
    let admin = m.admin().await;
    m.ops_user(&admin, "opsA", "ops-a-password", &["A"]).await;
    m.ops_user(&admin, "opsB", "ops-b-password", &["B"]).await;
    let ops_a = m.login("opsA", "ops-a-password").await;
    let ops_b = m.login("opsB", "ops-b-password").await;
    let agent = m.register("h1").await;
    let revoked = m.login("opsA", "ops-a-password").await;
    let (s, v) = m
        .call("POST", "/api/v1/auth_proxy/logout/", Some(&revoked), None)
        .await;
    assert_eq!(s, 200, "logout: {v}");
    let expired = m.expired_twin(&admin).await;
    let other_key = AuthMaster::foreign_twin(&admin);
    Tokens {
        admin,
        ops_a,
        ops_b,
        agent,
        expired,
        revoked,
        other_key,
    }
}

/// The events of a watch from revision 0 up to the one naming `until` (a netprofile key).
async fn watched(m: &AuthMaster, token: &str, until: &str) -> Vec<Value> {
    let resp = m
        .client
        .get(format!("{}/api/v1/watch?since=0", m.base))
        .header("X-Auth-Token", token)
        .send()
        .await
        .expect("watch");
    assert_eq!(resp.status().as_u16(), 200);
    let mut resp = resp;
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("the watch never showed {until}"))
            .expect("stream")
            .expect("the stream goes on");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(nl) = buf.find('\n') {
            let line: String = buf.drain(..=nl).collect();
            let event: Value = serde_json::from_str(line.trim()).expect("a JSON line");
            let done = event["key"] == until;
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

/// The tenant an event belongs to, `None` for the fabric's own objects.
fn event_tenant(e: &Value) -> Option<String> {
    if let Some(owner) = e["owner"].as_str() {
        return owner.split(':').next().map(String::from);
    }
    match e["collection"].as_str()? {
        "globals" | "Bgps" | "aciGws" => None,
        "tenants" => e["key"].as_str().map(String::from),
        "endpoints" => Some(if e["key"] == "epA" {
            "A".into()
        } else {
            "B".into()
        }),
        _ => e["key"].as_str()?.split(':').next().map(String::from),
    }
}

async fn truth_table(f: &Fixture) {
    let m = support::start(f).await;
    let t = tokens(&m).await;
    populate(&m, &t.admin).await;
    for key in ["A:mark1", "B:mark1", "A:mark2", "B:mark2"] {
        m.create(&t.admin, &format!("/api/v1/netprofiles/{key}/"), json!({}))
            .await;
    }
    let mut failures = Vec::new();
    let mut cells = 0;

    // Watches: what each caller's stream shows.
    let mut streams: Vec<(Who, Vec<Value>)> = Vec::new();
    for who in CALLERS {
        match who.relation() {
            Some(_) => {
                let until = if who == Who::OpsA {
                    "A:mark2"
                } else {
                    "B:mark2"
                };
                streams.push((who, watched(&m, t.of(who).unwrap_or_default(), until).await));
            }
            None => {
                let (s, _) = m
                    .call("GET", "/api/v1/watch?since=0", t.of(who), None)
                    .await;
                cells += 1;
                if s != 401 {
                    failures.push(format!("{who:?} watch: {s}, want 401"));
                }
            }
        }
    }
    for (who, events) in &streams {
        // Nothing of another tenant, nor of the fabric, reaches ops.
        if let Who::OpsA | Who::OpsB = who {
            let mine = if *who == Who::OpsA { "A" } else { "B" };
            for e in events {
                if e["type"] != "put" && e["type"] != "delete" {
                    continue;
                }
                if event_tenant(e).as_deref() != Some(mine) {
                    failures.push(format!("{who:?} watch shows {e}"));
                }
            }
        }
        for (coll, main, _) in COLLECTIONS {
            cells += 1;
            let seen = events
                .iter()
                .any(|e| e["collection"] == *coll && e["key"] == *main);
            if seen != allowed(coll, *who, "watch") {
                failures.push(format!("{who:?} watch {coll}/{main}: seen {seen}"));
            }
        }
    }

    // The collections.
    for (coll, main, victim) in COLLECTIONS {
        for who in CALLERS {
            let token = t.of(who);
            let item = format!("/api/v1/{coll}/{main}/");
            let gone = format!("/api/v1/{coll}/{victim}/");
            let cases: [(&str, &str, String, Option<Value>); 6] = [
                ("list", "GET", format!("/api/v1/{coll}/"), None),
                ("get", "GET", item.clone(), None),
                (
                    "inspect",
                    "GET",
                    format!("/api/v1/inspect/{coll}/{main}/"),
                    None,
                ),
                ("update", "PUT", item.clone(), Some(body(coll, main))),
                ("create", "POST", gone.clone(), Some(body(coll, victim))),
                ("delete", "DELETE", gone.clone(), None),
            ];
            for (op, method, path, b) in cases {
                cells += 1;
                let (s, v) = m.call(method, &path, token, b).await;
                let want = expected_status(coll, who, op);
                if s != want {
                    failures.push(format!("{who:?} {op} {path}: {s} {v}, want {want}"));
                    continue;
                }
                if s == 403 && v["object"].as_str().is_none_or(|o| o.is_empty()) {
                    failures.push(format!(
                        "{who:?} {op} {path}: a 403 must name the object: {v}"
                    ));
                }
                if op == "list" && s == 200 {
                    let listed = v
                        .as_array()
                        .is_some_and(|a| a.iter().any(|o| o["key"] == *main));
                    if listed != allowed(coll, who, "list") {
                        failures.push(format!("{who:?} list {coll}: {main} listed {listed}"));
                    }
                }
                if op == "delete" && s == 200 {
                    // Put it back for the next caller.
                    let (s, v) = m
                        .call("POST", &gone, Some(&t.admin), Some(body(coll, victim)))
                        .await;
                    assert_eq!(s, 200, "re-creating {gone}: {v}");
                }
            }
        }
    }

    // The agent routes and the auth routes: (method, path, body, status when allowed, who).
    let rows: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        ("GET", "/api/v1/agent/hosts", None, 200, "admin agent"),
        (
            "PUT",
            "/api/v1/agent/hosts/h1",
            Some(json!({"leaseSecs": 30})),
            200,
            "admin agent",
        ),
        (
            "PUT",
            "/api/v1/agent/hosts/h2",
            Some(json!({"leaseSecs": 30})),
            200,
            "admin",
        ),
        (
            "POST",
            "/api/v1/agent/allocate",
            Some(json!({"network": "A:net", "owner": "rbac-alloc"})),
            200,
            "admin agent",
        ),
        (
            "POST",
            "/api/v1/agent/reserve",
            Some(json!({"network": "A:net", "host": "h1", "count": 1})),
            200,
            "admin agent",
        ),
        (
            "POST",
            "/api/v1/agent/reserve",
            Some(json!({"network": "A:net", "host": "h2", "count": 1})),
            200,
            "admin",
        ),
        (
            "GET",
            "/api/v1/agent/hosts/h1/reservations",
            None,
            200,
            "admin agent",
        ),
        (
            "GET",
            "/api/v1/agent/hosts/h2/reservations",
            None,
            200,
            "admin",
        ),
        (
            "DELETE",
            "/api/v1/agent/hosts/h1/reservations",
            None,
            200,
            "admin agent",
        ),
        (
            "DELETE",
            "/api/v1/agent/hosts/h2/reservations",
            None,
            200,
            "admin",
        ),
        (
            "PUT",
            "/api/v1/agent/endpoints/epA",
            Some(json!({"network": "A:net", "ipAddress": ["10.1.1.11"], "homingHost": "h1"})),
            200,
            "admin agent",
        ),
        (
            "PUT",
            "/api/v1/agent/endpoints/epB",
            Some(json!({"network": "B:net", "ipAddress": ["10.2.1.11"], "homingHost": "h2"})),
            200,
            "admin",
        ),
        (
            "DELETE",
            "/api/v1/agent/endpoints/epGone",
            None,
            200,
            "admin agent",
        ),
        (
            "POST",
            "/api/v1/agent/release",
            Some(json!({"network": "A:net", "ipAddress": "10.1.1.200", "owner": "nobody"})),
            200,
            "admin agent",
        ),
        (
            "DELETE",
            "/api/v1/agent/hosts/h9/credential",
            None,
            200,
            "admin",
        ),
        ("GET", "/api/v1/state", None, 200, "admin opsA opsB agent"),
        ("GET", "/info", None, 200, "admin opsA opsB agent"),
        ("GET", "/metrics", None, 200, "admin opsA opsB agent"),
        ("GET", "/healthz", None, 200, "all"),
        ("GET", "/version", None, 200, "all"),
        ("GET", "/api/v1/openapi.json", None, 200, "all"),
        ("GET", "/api/v1/auth_proxy/local_users/", None, 200, "admin"),
        (
            "GET",
            "/api/v1/auth_proxy/local_users/opsA/",
            None,
            200,
            "admin opsA",
        ),
        (
            "PATCH",
            "/api/v1/auth_proxy/local_users/opsB/",
            Some(json!({"first_name": "b"})),
            200,
            "admin opsB",
        ),
        (
            "POST",
            "/api/v1/auth_proxy/local_users/",
            Some(json!({"username": "rbac-x", "password": "rbac-x-password"})),
            201,
            "admin",
        ),
        (
            "GET",
            "/api/v1/auth_proxy/authorizations/",
            None,
            200,
            "admin",
        ),
        (
            "POST",
            "/api/v1/auth_proxy/authorizations/",
            Some(
                json!({"principalName": "nobody", "local": true, "role": "ops", "tenantName": "A"}),
            ),
            201,
            "admin",
        ),
        (
            "PUT",
            "/api/v1/auth_proxy/ldap_configuration/",
            Some(
                json!({"server": "ldap.example.org", "port": 389, "base_dn": "dc=example,dc=org",
                "service_account_dn": "cn=svc,dc=example,dc=org", "service_account_password": "pw"}),
            ),
            200,
            "admin",
        ),
        (
            "GET",
            "/api/v1/auth_proxy/ldap_configuration/",
            None,
            200,
            "admin",
        ),
        (
            "PATCH",
            "/api/v1/auth_proxy/ldap_configuration/",
            Some(json!({"port": 636})),
            200,
            "admin",
        ),
        // The admin goes first: the others are refused before the configuration is missed.
        (
            "DELETE",
            "/api/v1/auth_proxy/ldap_configuration/",
            None,
            204,
            "admin",
        ),
    ];
    for (method, path, b, ok, who_may) in &rows {
        for who in CALLERS {
            cells += 1;
            let may = *who_may == "all" || who_may.split(' ').any(|w| w == who.name());
            let want = if may {
                *ok
            } else if who.relation().is_none() {
                401
            } else {
                403
            };
            let (s, v) = m.call(method, path, t.of(who), b.clone()).await;
            if s != want {
                failures.push(format!("{who:?} {method} {path}: {s} {v}, want {want}"));
            }
            // Undo what a create did, for the next caller.
            if s == 201 {
                let undo = match v["AuthzUUID"].as_str() {
                    Some(id) => format!("/api/v1/auth_proxy/authorizations/{id}/"),
                    None => "/api/v1/auth_proxy/local_users/rbac-x/".to_string(),
                };
                let (s, v) = m.call("DELETE", &undo, Some(&t.admin), None).await;
                assert_eq!(s, 204, "undo {undo}: {v}");
            }
        }
    }

    // The state snapshot holds, for ops, only their tenant.
    for (who, mine) in [(Who::OpsA, "A"), (Who::OpsB, "B")] {
        let (_, state) = m.call("GET", "/api/v1/state", t.of(who), None).await;
        let objects = state["objects"].as_object().expect("objects");
        let names: BTreeSet<&String> = objects.keys().collect();
        for fabric in ["globals", "Bgps", "aciGws"] {
            if names.contains(&fabric.to_string()) {
                failures.push(format!("{who:?} state shows {fabric}"));
            }
        }
        for (coll, list) in objects {
            for o in list.as_array().into_iter().flatten() {
                let key = o["key"].as_str().unwrap_or_default();
                let tenant = match coll.as_str() {
                    "tenants" => key.to_string(),
                    "endpoints" => o["network"]
                        .as_str()
                        .unwrap_or_default()
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    _ => key.split(':').next().unwrap_or_default().to_string(),
                };
                if tenant != mine {
                    failures.push(format!("{who:?} state shows {coll}/{key}"));
                }
            }
        }
        for g in state["groupIds"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if !g.starts_with(&format!("{mine}:")) {
                failures.push(format!("{who:?} state shows the group id of {g}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ from the rule table:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cells > 900, "only {cells} cells");
}

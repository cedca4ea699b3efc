//! The OpenAPI document (`GET /api/v1/openapi.json`) against what the server does: every route
//! served is documented with the methods it accepts and nothing more; every schema's
//! properties are what the server returns; `required` and `enum` agree with validation in both
//! directions (probed field by field on a valid object of every writable schema).

mod common;

use common::{samples, Backend, Fixture, TestMaster};
use fabric_model::Collection;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// What the router serves besides `/api/v1/<collection>/...` (see `netmaster::api::router`).
const OTHER_ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/watch"),
    ("get", "/api/v1/state"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/agent/allocate"),
    ("post", "/api/v1/agent/release"),
    ("post", "/api/v1/agent/reserve"),
    ("get", "/api/v1/agent/hosts/{host}/reservations"),
    ("delete", "/api/v1/agent/hosts/{host}/reservations"),
    ("put", "/api/v1/agent/endpoints/{id}"),
    ("delete", "/api/v1/agent/endpoints/{id}"),
    ("get", "/api/v1/agent/hosts"),
    ("put", "/api/v1/agent/hosts/{host}"),
    ("get", "/version"),
    ("get", "/info"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("post", "/api/v1/auth_proxy/login/"),
    ("post", "/api/v1/auth_proxy/login"),
    ("post", "/api/v1/auth_proxy/logout/"),
    ("post", "/api/v1/auth_proxy/logout"),
    ("get", "/api/v1/auth_proxy/local_users/"),
    ("get", "/api/v1/auth_proxy/local_users"),
    ("patch", "/api/v1/auth_proxy/local_users/{username}/"),
    ("patch", "/api/v1/auth_proxy/local_users/{username}"),
    ("get", "/api/v1/auth_proxy/authorizations/"),
    ("get", "/api/v1/auth_proxy/authorizations"),
    ("delete", "/api/v1/auth_proxy/authorizations/{id}/"),
    ("delete", "/api/v1/auth_proxy/authorizations/{id}"),
    ("get", "/api/v1/auth_proxy/ldap_configuration/"),
    ("get", "/api/v1/auth_proxy/ldap_configuration"),
    ("put", "/api/v1/auth_proxy/ldap_configuration/"),
    ("patch", "/api/v1/auth_proxy/ldap_configuration/"),
    ("delete", "/api/v1/auth_proxy/ldap_configuration/"),
    ("post", "/api/v1/agent/register"),
    ("delete", "/api/v1/agent/hosts/{host}/credential"),
];
const METHODS: [&str; 4] = ["get", "post", "put", "delete"];
/// A value no enum has and most formats reject with their own reason.
const BOGUS: &str = "zz-bogus";

/// The endpoint the agent route records in [`setup`].
fn endpoint_sample() -> Value {
    json!({"network": "blue:net", "endpointGroupKey": "blue:grp", "ipAddress": ["10.1.1.11"], "homingHost": "host1"})
}

/// A master holding one valid object of every collection (and an endpoint `ep1`).
async fn setup() -> (Fixture, TestMaster, Value) {
    let fixture = Fixture::new(Backend::Embedded);
    let m = fixture.master().await;
    for (coll, key, body) in samples() {
        m.create(&format!("/api/v1/{coll}/{key}/"), body).await;
    }
    let (s, v) = m
        .request(
            reqwest::Method::PUT,
            "/api/v1/agent/endpoints/ep1",
            Some(endpoint_sample()),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // An LDAP configuration, so that its GET answers 200 like the other GET routes.
    let (s, v) = m
        .request(
            reqwest::Method::PUT,
            "/api/v1/auth_proxy/ldap_configuration/",
            Some(json!({"server": "ldap.example.org", "port": 389, "base_dn": "dc=example,dc=org",
                "service_account_dn": "cn=svc,dc=example,dc=org", "service_account_password": "pw"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, doc) = m.get("/api/v1/openapi.json").await;
    assert_eq!(s, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.0.3");
    (fixture, m, doc)
}

/// A write the server accepts: the documented route and method, and a valid body.
struct Write {
    route: String,
    path: String,
    method: &'static str,
    body: Value,
}

fn writes() -> Vec<Write> {
    let mut out: Vec<Write> = samples()
        .into_iter()
        .map(|(coll, key, body)| Write {
            route: format!("/api/v1/{coll}/{{key}}/"),
            path: format!("/api/v1/{coll}/{key}/"),
            method: "post",
            body,
        })
        .collect();
    out.push(Write {
        route: "/api/v1/agent/endpoints/{id}".into(),
        path: "/api/v1/agent/endpoints/ep1".into(),
        method: "put",
        body: endpoint_sample(),
    });
    out.push(Write {
        route: "/api/v1/agent/allocate".into(),
        path: "/api/v1/agent/allocate".into(),
        method: "post",
        body: json!({"network": "blue:net", "owner": "probe", "preferred": "10.1.1.15", "ipv6": false}),
    });
    out.push(Write {
        route: "/api/v1/agent/release".into(),
        path: "/api/v1/agent/release".into(),
        method: "post",
        body: json!({"network": "blue:net", "ipAddress": "10.1.1.99", "owner": "probe"}),
    });
    out.push(Write {
        route: "/api/v1/agent/reserve".into(),
        path: "/api/v1/agent/reserve".into(),
        method: "post",
        body: json!({"network": "blue:net", "host": "host9", "count": 2}),
    });
    out
}

fn method(name: &str) -> reqwest::Method {
    match name {
        "get" => reqwest::Method::GET,
        "post" => reqwest::Method::POST,
        "put" => reqwest::Method::PUT,
        "delete" => reqwest::Method::DELETE,
        other => panic!("no method {other}"),
    }
}

/// The schema a route's request body refers to, resolved.
fn body_schema<'a>(doc: &'a Value, route: &str, method: &str) -> &'a Value {
    let op = &doc["paths"][route][method];
    assert!(op.is_object(), "{method} {route} is not documented");
    let reference = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {route} documents no request body schema"));
    let name = reference
        .strip_prefix("#/components/schemas/")
        .expect("a local schema reference");
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "{reference} is not in the document");
    schema
}

/// A write's body schema, its properties and its key fields.
fn body_schema_parts<'a>(
    doc: &'a Value,
    w: &Write,
) -> (&'a Value, &'a Map<String, Value>, BTreeSet<String>) {
    let schema = body_schema(doc, &w.route, w.method);
    let props = schema["properties"].as_object().expect("properties");
    (schema, props, strings(&schema["x-key-fields"]))
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A 4xx answer whose error names `field`.
fn rejects(status: u16, answer: &Value, field: &str) -> bool {
    (400..500).contains(&status) && answer["field"].as_str() == Some(field)
}

/// Sends `w` with its body changed by `change`; restores the valid object after an accepted
/// change, so each probe starts from the same state.
async fn probe(m: &TestMaster, w: &Write, change: impl FnOnce(&mut Value)) -> (u16, Value) {
    let mut body = w.body.clone();
    change(&mut body);
    let (s, v) = m.request(method(w.method), &w.path, Some(body)).await;
    if (200..300).contains(&s) {
        let (s2, v2) = m
            .request(method(w.method), &w.path, Some(w.body.clone()))
            .await;
        assert_eq!(s2, 200, "restoring {} failed: {v2}", w.path);
    }
    (s, v)
}

/// An axum fallback (no such route, or method not routed) answers with an empty body; our
/// own 404s (unknown object) carry a JSON error, and 405 means the method is not served.
fn served(status: u16, answer: &Value) -> bool {
    status != 405 && !(status == 404 && answer.as_str() == Some(""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_served_is_documented_with_exactly_its_methods() {
    let (_f, m, doc) = setup().await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for c in Collection::ALL {
        let rest = c.rest_name();
        let key = if c == Collection::Endpoints {
            "ep1".to_string()
        } else {
            let (_, key, _) = samples()
                .into_iter()
                .find(|(coll, _, _)| *coll == rest)
                .unwrap_or_else(|| panic!("no sample of {rest}"));
            key.to_string()
        };
        let list = format!("/api/v1/{rest}/");
        let item = format!("/api/v1/{rest}/{{key}}/");
        let inspect = format!("/api/v1/inspect/{rest}/{{key}}/");
        for p in [&list, &item, &inspect] {
            assert!(
                paths.contains_key(p),
                "the server serves {p} but the document lacks it"
            );
            expected.insert(p.clone());
        }
        let (s, v) = m.get(&list).await;
        assert!(s == 200 && v.is_array(), "GET {list}: {s} {v}");
        assert_eq!(doc["paths"][&list].as_object().map(|o| o.len()), Some(1));
        let (s, v) = m.get(&format!("/api/v1/inspect/{rest}/{key}/")).await;
        assert_eq!(s, 200, "GET inspect {rest}/{key}: {v}");
        // Each method is documented exactly when the server serves it for this collection.
        let body = samples()
            .into_iter()
            .find(|(coll, _, _)| *coll == rest)
            .map_or(json!({}), |(_, _, b)| b);
        for name in METHODS {
            let documented = doc["paths"][&item][name].is_object();
            // DELETE a missing key: served (404 JSON) without touching the samples.
            let (path, body) = match name {
                "delete" => (format!("/api/v1/{rest}/nosuch/"), None),
                "get" => (format!("/api/v1/{rest}/{key}/"), None),
                _ => (format!("/api/v1/{rest}/{key}/"), Some(body.clone())),
            };
            let (s, v) = m.request(method(name), &path, body).await;
            assert_eq!(
                served(s, &v),
                documented,
                "{name} {path}: the server answers {s} {v}, the document says {}",
                if documented { "served" } else { "not served" }
            );
        }
    }
    for (name, route) in OTHER_ROUTES {
        assert!(
            doc["paths"][*route][*name].is_object(),
            "the server serves {name} {route} but the document lacks it"
        );
        expected.insert(route.to_string());
    }
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(
        documented.difference(&expected).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented routes the server does not serve"
    );
    // And the other routes answer as documented.
    for w in writes()
        .iter()
        .filter(|w| w.route.starts_with("/api/v1/agent/"))
    {
        let (s, v) = m
            .request(method(w.method), &w.path, Some(w.body.clone()))
            .await;
        assert_eq!(s, 200, "{} {}: {v}", w.method, w.path);
    }
    for (name, route) in OTHER_ROUTES.iter().filter(|(n, _)| *n == "get") {
        let (s, media, _) = m.get_response(route).await;
        assert_eq!(s, 200, "{name} {route}");
        let content = doc["paths"][*route]["get"]["responses"]["200"]["content"]
            .as_object()
            .expect("documented content");
        assert!(
            content.keys().any(|k| media.starts_with(k.as_str())),
            "GET {route} answers {media}, the document says {:?}",
            content.keys().collect::<Vec<_>>()
        );
    }
    let (s, v) = m.delete("/api/v1/agent/endpoints/ep1").await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_properties_and_types_are_what_the_server_takes_and_returns() {
    let (_f, m, doc) = setup().await;
    for w in writes() {
        let schema = body_schema(&doc, &w.route, w.method);
        let props = schema["properties"].as_object().expect("properties");
        let body = w.body.as_object().expect("an object body");
        for (field, value) in body {
            let prop = props
                .get(field)
                .unwrap_or_else(|| panic!("{}: the server takes '{field}', undocumented", w.route));
            let (ty, wrong) = match value {
                Value::String(_) => ("string", json!(12345)),
                Value::Number(_) => ("integer", json!(BOGUS)),
                Value::Bool(_) => ("boolean", json!(BOGUS)),
                Value::Array(_) => ("array", json!(BOGUS)),
                other => panic!("unexpected sample value {other}"),
            };
            assert_eq!(prop["type"], ty, "{}: type of '{field}'", w.route);
            let (s, v) = probe(&m, &w, |b| b[field.as_str()] = wrong.clone()).await;
            assert!(
                rejects(s, &v, field),
                "{} with '{field}' of the wrong type: {s} {v}",
                w.path
            );
        }
        // A stored object has exactly the documented properties.
        if w.route.starts_with("/api/v1/agent/") && !w.route.contains("endpoints") {
            continue;
        }
        let get = w
            .path
            .replace("/api/v1/agent/endpoints/", "/api/v1/endpoints/");
        let (s, got) = m.get(&format!("{}/", get.trim_end_matches('/'))).await;
        assert_eq!(s, 200, "{get}: {got}");
        let returned: BTreeSet<&String> = got.as_object().expect("an object").keys().collect();
        let documented: BTreeSet<&String> = props.keys().collect();
        assert_eq!(returned, documented, "{get}: returned fields vs the schema");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_fields_agree_with_validation() {
    let (_f, m, doc) = setup().await;
    let mut required_seen = 0;
    for w in writes() {
        let (schema, props, keys) = body_schema_parts(&doc, &w);
        let mut required = strings(&schema["required"]);
        let body = w.body.as_object().expect("an object body");
        // Required because another field the body carries needs it (and then empty is
        // fine where that other field is empty, so no minLength).
        let mut conditional = BTreeSet::new();
        if let Some(with) = schema["x-required-with"].as_object() {
            for (field, needs) in with {
                if body.contains_key(field) {
                    conditional.extend(strings(needs));
                }
            }
        }
        required.extend(conditional.iter().cloned());
        for r in &required {
            assert!(
                props.contains_key(r),
                "{}: required '{r}' is no property",
                w.route
            );
            assert!(
                !keys.contains(r),
                "{}: key field '{r}' comes from the path",
                w.route
            );
            assert!(
                body.contains_key(r),
                "{}: '{r}' is required but a valid object does without it",
                w.route
            );
        }
        for field in body.keys() {
            let (s, v) = probe(&m, &w, |b| {
                b.as_object_mut().map(|o| o.remove(field));
            })
            .await;
            if keys.contains(field) {
                assert_eq!(
                    s, 200,
                    "{}: key field '{field}' comes from the path: {v}",
                    w.path
                );
                continue;
            }
            // Probes update the stored object, so an immutable field's removal is refused as
            // a change; that says nothing about it being required.
            let immutable = v["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("cannot change"));
            let rejected = rejects(s, &v, field) && !immutable;
            assert_eq!(
                rejected,
                required.contains(field),
                "{} without '{field}': the server answers {s} {v}; the schema says {}",
                w.path,
                if required.contains(field) {
                    "required"
                } else {
                    "optional"
                }
            );
            if !rejected {
                continue;
            }
            required_seen += 1;
            if conditional.contains(field) {
                continue;
            }
            // Present but empty is missing too: minLength / minItems.
            let (empty, bound) = match props[field]["type"].as_str() {
                Some("string") => (json!(""), "minLength"),
                Some("array") => (json!([]), "minItems"),
                _ => continue,
            };
            assert_eq!(props[field][bound], 1, "{}: '{field}' {bound}", w.route);
            let (s, v) = probe(&m, &w, |b| b[field.as_str()] = empty.clone()).await;
            assert!(
                rejects(s, &v, field),
                "{} with '{field}' empty: {s} {v}",
                w.path
            );
        }
    }
    assert!(
        required_seen >= 10,
        "only {required_seen} required fields probed"
    );
}

/// The values of a `'x' is not one of a, b` rejection.
fn enum_of(reason: &str) -> Option<BTreeSet<String>> {
    let list = reason.split_once("is not one of ")?.1;
    Some(
        list.split(", ")
            .map(|v| {
                if v == "\"\"" {
                    String::new()
                } else {
                    v.to_string()
                }
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enums_agree_with_validation() {
    let (_f, m, doc) = setup().await;
    let mut enums_seen = 0;
    for w in writes() {
        let (_, props, keys) = body_schema_parts(&doc, &w);
        for (field, prop) in props {
            let declared = prop.get("enum").map(strings);
            if prop["type"] != "string" || keys.contains(field) || prop["readOnly"] == true {
                assert!(declared.is_none(), "{}: enum on '{field}'", w.route);
                continue;
            }
            let (s, v) = probe(&m, &w, |b| b[field.as_str()] = json!(BOGUS)).await;
            let observed = if rejects(s, &v, field) {
                v["reason"].as_str().and_then(enum_of)
            } else {
                None
            };
            assert_eq!(
                observed, declared,
                "{} with '{field}' = '{BOGUS}': the server answers {s} {v}; the schema's enum differs",
                w.path
            );
            for value in declared.iter().flatten() {
                enums_seen += 1;
                let (s, v) = probe(&m, &w, |b| b[field.as_str()] = json!(value)).await;
                let refused = rejects(s, &v, field)
                    && v["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("is not one of"));
                assert!(
                    !refused,
                    "{} with '{field}' = '{value}' (in the enum): {s} {v}",
                    w.path
                );
            }
        }
    }
    assert!(enums_seen >= 15, "only {enums_seen} enum values probed");
}

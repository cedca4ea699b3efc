//! The OpenAPI 3 document. Each collection's properties come from the model type itself (the
//! fields its default value serializes, with their JSON types), so a field cannot be added or
//! renamed without the document following. What validation requires and restricts is declared
//! in [`constraints`]; `tests/openapi.rs` probes the server for every field of every schema and
//! fails when a declaration and the server's behaviour disagree in either direction.

use axum::Json;
use fabric_model::{with_object_type, Collection};
use serde_json::{json, Map, Value};

fn schema_of(value: &Value) -> Value {
    match value {
        Value::String(_) => json!({"type": "string"}),
        Value::Number(_) => json!({"type": "integer"}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Array(_) => json!({"type": "array", "items": {"type": "string"}}),
        _ => json!({"type": "object"}),
    }
}

/// Validation beyond the JSON types, for a request body. Key fields are not listed as required:
/// they come from the path (`/api/v1/networks/blue:net/` fills `tenantName` and `networkName`).
pub struct Constraints {
    /// Fields a body must carry, not empty (a string) or with at least one item (an array).
    pub required: &'static [&'static str],
    /// Fields that take one of a fixed set of values.
    pub enums: &'static [(&'static str, &'static [&'static str])],
    /// Fields required when another one is given (`x-required-with`: OpenAPI 3.0 has no
    /// `dependentRequired`).
    pub required_with: &'static [(&'static str, &'static [&'static str])],
}

pub fn constraints(collection: Collection) -> Constraints {
    const NONE: Constraints = Constraints {
        required_with: &[],
        required: &[],
        enums: &[],
    };
    match collection {
        Collection::Networks => Constraints {
            required_with: &[],
            required: &["subnet"],
            enums: &[
                ("nwType", &["data", "infra"]),
                ("encap", &["vlan", "vxlan"]),
            ],
        },
        Collection::EndpointGroups => Constraints {
            required_with: &[],
            required: &["networkName"],
            enums: &[],
        },
        Collection::Rules => Constraints {
            required_with: &[],
            required: &["direction", "action"],
            enums: &[
                ("direction", &["in", "out"]),
                ("action", &["allow", "deny"]),
            ],
        },
        Collection::ServiceLbs => Constraints {
            required_with: &[],
            required: &["networkName", "selectors", "ports"],
            enums: &[],
        },
        Collection::Globals => Constraints {
            required_with: &[],
            required: &[],
            enums: &[
                ("networkInfraType", &["default", "aci", "aci-opflex"]),
                ("fwdMode", &["bridge", "routing"]),
                ("arpMode", &["proxy", "flood"]),
            ],
        },
        Collection::Bgps => Constraints {
            // No neighbour: the host peers only with the masters' route reflectors.
            required_with: &[("neighbor", &["neighbor-as"])],
            required: &["routerip", "as"],
            enums: &[],
        },
        Collection::AciGws => Constraints {
            required_with: &[],
            required: &[],
            enums: &[
                ("enforcePolicies", &["yes", "no"]),
                ("includeCommonTenant", &["yes", "no"]),
            ],
        },
        Collection::ExtContractsGroups => Constraints {
            required_with: &[],
            required: &["contractsType"],
            enums: &[("contractsType", &["provided", "consumed"])],
        },
        Collection::Endpoints => Constraints {
            required_with: &[],
            required: &["network"],
            enums: &[],
        },
        Collection::Tenants
        | Collection::Policies
        | Collection::AppProfiles
        | Collection::Netprofiles => NONE,
    }
}

/// Adds `required`, `minLength`/`minItems` and `enum` to an object schema.
fn constrain(schema: &mut Value, c: &Constraints) {
    if let Some(props) = schema["properties"].as_object_mut() {
        for field in c.required {
            if let Some(p) = props.get_mut(*field) {
                match p["type"].as_str() {
                    Some("array") => p["minItems"] = json!(1),
                    Some("string") => p["minLength"] = json!(1),
                    _ => {}
                }
            }
        }
        for (field, values) in c.enums {
            if let Some(p) = props.get_mut(*field) {
                p["enum"] = json!(values);
            }
        }
    }
    if !c.required.is_empty() {
        schema["required"] = json!(c.required);
    }
    if !c.required_with.is_empty() {
        let with: Map<String, Value> = c
            .required_with
            .iter()
            .map(|(field, needs)| (field.to_string(), json!(needs)))
            .collect();
        schema["x-required-with"] = Value::Object(with);
    }
}

/// The JSON schema of a collection's objects.
pub fn schema(collection: Collection) -> Value {
    let sample: Value = with_object_type!(collection, T => serde_json::to_value(T::default()).unwrap_or(Value::Null));
    let mut props = Map::new();
    if let Value::Object(fields) = &sample {
        for (name, v) in fields {
            props.insert(name.clone(), schema_of(v));
        }
    }
    if let Some(key) = props.get_mut("key") {
        key["readOnly"] = json!(true);
    }
    let mut schema =
        json!({"type": "object", "properties": props, "x-key-fields": collection.key_fields()});
    constrain(&mut schema, &constraints(collection));
    schema
}

/// The agent calls' bodies and answers (`crate::ipam`, `crate::reserve`).
fn agent_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "AllocateRequest".into(),
        json!({"type": "object", "required": ["network", "owner"], "properties": {
            "network": {"type": "string", "minLength": 1, "description": "the network's key, tenant:network"},
            "group": {"type": "string", "description": "the group's key, tenant:group; its ipPool narrows the choice"},
            "preferred": {"type": "string", "description": "an address to use when it is free"},
            "owner": {"type": "string", "minLength": 1, "description": "who holds the address (an endpoint id)"},
            "ipv6": {"type": "boolean", "description": "allocate from the network's ipv6Subnet"}}}),
    );
    schemas.insert(
        "Allocation".into(),
        json!({"type": "object", "properties": {
            "network": {"type": "string"}, "ipAddress": {"type": "string"},
            "prefixLen": {"type": "integer"}, "gateway": {"type": "string"}}}),
    );
    schemas.insert(
        "ReleaseRequest".into(),
        json!({"type": "object", "required": ["network", "ipAddress", "owner"], "properties": {
            "network": {"type": "string", "minLength": 1}, "ipAddress": {"type": "string", "minLength": 1, "description": "an IPv4 or IPv6 address"},
            "owner": {"type": "string", "minLength": 1, "description": "release only while this endpoint holds the address (empty with host: only while that host's reserve holds it)"},
            "host": {"type": "string", "description": "the host whose reserve may hold the address"}}}),
    );
    schemas.insert(
        "ReserveRequest".into(),
        json!({"type": "object", "required": ["network", "host", "count"], "properties": {
            "network": {"type": "string", "minLength": 1, "description": "the network's key, tenant:network"},
            "group": {"type": "string", "description": "the group's key, tenant:group; its ipPool, when set, is reserved from"},
            "host": {"type": "string", "minLength": 1, "description": "the host the addresses are kept for"},
            "count": {"type": "integer", "minimum": 0, "description": "addresses wanted; at most 32 and a quarter of the pool's free ones are given"}}}),
    );
    schemas.insert(
        "Reservation".into(),
        json!({"type": "object", "properties": {
            "network": {"type": "string"}, "group": {"type": "string", "description": "the group whose ipPool they come from, or empty"},
            "prefixLen": {"type": "integer"}, "gateway": {"type": "string"},
            "addresses": {"type": "array", "items": {"type": "string"}}}}),
    );
}

fn ok(schema: Value) -> Value {
    json!({"description": "OK", "content": {"application/json": {"schema": schema}}})
}

fn text(description: &str, media: &str) -> Value {
    json!({"200": {"description": description, "content": {media: {"schema": {"type": "string"}}}}})
}

/// Routes that are not collections: watch, state, the agent calls, the service endpoints.
fn other_paths(paths: &mut Map<String, Value>, err: &Value) {
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let body = |name: &str| json!({"required": true, "content": {"application/json": {"schema": schema(name)}}});
    paths.insert(
        "/api/v1/watch".into(),
        json!({"get": {"summary": "Every change after a revision, in order (stream)",
            "parameters": [{"name": "since", "in": "query", "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "newline-delimited JSON events after `since`", "content": {"application/x-ndjson": {}}}}}}),
    );
    paths.insert(
        "/api/v1/state".into(),
        json!({"get": {"summary": "Every object and group id, with the revision they reflect",
            "responses": {"200": ok(json!({"type": "object", "properties": {
                "revision": {"type": "integer"}, "objects": {"type": "object"}, "groupIds": {"type": "object"}}}))}}}),
    );
    paths.insert(
        "/api/v1/openapi.json".into(),
        json!({"get": {"summary": "This document", "responses": {"200": ok(json!({"type": "object"}))}}}),
    );
    paths.insert(
        "/api/v1/agent/allocate".into(),
        json!({"post": {"summary": "Allocate an address (the preferred one when free)", "requestBody": body("AllocateRequest"),
            "responses": {"200": ok(schema("Allocation")), "400": err, "404": err, "409": err}}}),
    );
    paths.insert(
        "/api/v1/agent/release".into(),
        json!({"post": {"summary": "Release an address (releasing a free one succeeds; one another endpoint holds is refused)", "requestBody": body("ReleaseRequest"),
            "responses": {"200": ok(json!({"type": "object"})), "400": err, "409": err}}}),
    );
    paths.insert(
        "/api/v1/agent/reserve".into(),
        json!({"post": {"summary": "Reserve free addresses for a host's next containers", "requestBody": body("ReserveRequest"),
            "responses": {"200": ok(schema("Reservation")), "400": err, "404": err, "409": err}}}),
    );
    paths.insert(
        "/api/v1/agent/hosts/{host}/reservations".into(),
        json!({"parameters": [{"name": "host", "in": "path", "required": true, "schema": {"type": "string"}}],
            "get": {"summary": "The addresses reserved for the host's next containers",
                "responses": {"200": ok(json!({"type": "object", "properties": {"host": {"type": "string"},
                    "reservations": {"type": "array", "items": {"type": "object", "properties": {
                        "network": {"type": "string"}, "ipAddress": {"type": "string"}}}}}}))}},
            "delete": {"summary": "Give back every address reserved for the host",
                "responses": {"200": ok(json!({"type": "object", "properties": {"released": {"type": "integer"}}}))}}}),
    );
    paths.insert(
        "/api/v1/agent/endpoints/{id}".into(),
        json!({"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                {"name": "reserved", "in": "query", "schema": {"type": "boolean"},
                 "description": "the address came from the host's reserve, which must still hold it"}],
            "put": {"summary": "Record an endpoint", "requestBody": body("endpoint"),
                "responses": {"200": ok(schema("endpoint")), "400": err, "404": err, "409": err, "422": err}},
            "delete": {"summary": "Remove an endpoint (removing an absent one succeeds)",
                "responses": {"200": ok(json!({"type": "object"}))}}}),
    );
    paths.insert(
        "/api/v1/agent/hosts".into(),
        json!({"get": {"summary": "Registered agents, with whether their lease is live",
            "responses": {"200": ok(json!({"type": "array", "items": {"type": "object", "required": ["host", "alive"], "properties": {
                "host": {"type": "string"}, "alive": {"type": "boolean"}, "secondsSinceHeartbeat": {"type": "integer"}}}}))}}}),
    );
    paths.insert(
        "/api/v1/agent/hosts/{host}".into(),
        json!({"parameters": [{"name": "host", "in": "path", "required": true, "schema": {"type": "string"}}],
            "put": {"summary": "Register an agent or renew its lease (a heartbeat)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["leaseSecs"],
                    "properties": {"leaseSecs": {"type": "integer", "minimum": 1, "maximum": 3600}}}}}},
                "responses": {"200": ok(json!({"type": "object"})), "400": err}}}),
    );
    paths.insert(
        "/version".into(),
        json!({"get": {"responses": {"200": ok(json!({"type": "object", "properties": {
            "Version": {"type": "string"}, "GitCommit": {"type": "string"}, "BuildTime": {"type": "string"}}}))}}}),
    );
    paths.insert(
        "/info".into(),
        json!({"get": {"responses": {"200": ok(json!({"type": "object"}))}}}),
    );
    paths.insert(
        "/healthz".into(),
        json!({"get": {"responses": text("ok", "text/plain")}}),
    );
    paths.insert(
        "/metrics".into(),
        json!({"get": {"summary": "Prometheus metrics: requests and latencies by route and status code",
            "responses": text("Prometheus text format", "text/plain")}}),
    );
}

/// Authentication: Contiv's auth_proxy routes, logout, the agents' registration and its
/// revocation. Every other route needs `X-Auth-Token` (or `Authorization: Bearer`) when the
/// master runs with `--auth on`.
fn auth_paths(paths: &mut Map<String, Value>, schemas: &mut Map<String, Value>, err: &Value) {
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let body = |name: &str| json!({"required": true, "content": {"application/json": {"schema": schema(name)}}});
    let created = |s: Value| json!({"description": "Created", "content": {"application/json": {"schema": s}}});
    let gone = json!({"description": "Deleted"});
    let name_param = |n: &str| json!([{"name": n, "in": "path", "required": true, "schema": {"type": "string"}}]);
    schemas.insert(
        "LoginRequest".into(),
        json!({"type": "object", "required": ["username", "password"], "properties": {
            "username": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 1}}}),
    );
    schemas.insert(
        "Token".into(),
        json!({"type": "object", "properties": {"token": {"type": "string", "description": "send as X-Auth-Token"}}}),
    );
    schemas.insert(
        "LocalUser".into(),
        json!({"type": "object", "properties": {
            "username": {"type": "string", "description": "letters, digits, '_', '-', '.', '@'"},
            "password": {"type": "string", "minLength": 8, "description": "write only, 8-1024 characters"},
            "first_name": {"type": "string"}, "last_name": {"type": "string"}, "disable": {"type": "boolean"}}}),
    );
    schemas.insert(
        "AuthorizationRequest".into(),
        json!({"type": "object", "required": ["principalName", "role"], "properties": {
            "principalName": {"type": "string", "minLength": 1, "description": "a local username, or an LDAP group's DN"},
            "local": {"type": "boolean"}, "role": {"type": "string", "enum": ["admin", "ops"]},
            "tenantName": {"type": "string", "description": "required for ops"}}}),
    );
    schemas.insert(
        "Authorization".into(),
        json!({"type": "object", "properties": {
            "AuthzUUID": {"type": "string"}, "PrincipalName": {"type": "string"}, "Local": {"type": "boolean"},
            "Role": {"type": "string"}, "TenantName": {"type": "string"}}}),
    );
    schemas.insert(
        "AgentRegistration".into(),
        json!({"type": "object", "required": ["host", "secret"], "properties": {
            "host": {"type": "string", "minLength": 1}, "secret": {"type": "string", "minLength": 1, "description": "the bootstrap secret (--agent-secret-file)"}}}),
    );
    schemas.insert(
        "LdapConfiguration".into(),
        json!({"type": "object", "description": "Contiv's LDAP configuration. PUT needs server, port, base_dn, service_account_dn and service_account_password; PATCH changes the fields it carries. Replies never carry service_account_password.",
            "properties": {
            "server": {"type": "string", "minLength": 1, "description": "host name or IP address of the LDAP server"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "base_dn": {"type": "string", "minLength": 1, "description": "users are searched under it by sAMAccountName or uid, groups by member or uniqueMember"},
            "service_account_dn": {"type": "string", "minLength": 1, "description": "the account that searches"},
            "service_account_password": {"type": "string", "minLength": 1, "writeOnly": true, "description": "write only: never returned"},
            "start_tls": {"type": "boolean", "description": "StartTLS (TLS 1.2/1.3, rustls) before binding"},
            "insecure_skip_verify": {"type": "boolean", "description": "with start_tls: take any certificate (testing only)"},
            "tls_cert_issued_to": {"type": "string", "description": "with start_tls: the name the server's certificate must be issued to (default: server)"}}}),
    );
    let throttled = json!({"description": "too many failed attempts; see Retry-After", "content": {"application/json": {"schema": schema("Error")}}});
    for slash in ["/", ""] {
        let p = |rest: &str| format!("/api/v1/auth_proxy/{rest}{slash}");
        paths.insert(
            p("login"),
            json!({"post": {"summary": "Log in (open): a token for a local or LDAP user", "requestBody": body("LoginRequest"),
                "responses": {"200": ok(schema("Token")), "400": err, "401": err, "429": throttled,
                    "502": {"description": "the LDAP server answered wrongly (service account refused, StartTLS failed)", "content": {"application/json": {"schema": schema("Error")}}},
                    "503": {"description": "the LDAP server is out of reach or did not answer within --ldap-timeout", "content": {"application/json": {"schema": schema("Error")}}}}}}),
        );
        paths.insert(
            p("logout"),
            json!({"post": {"summary": "End the presented token's session", "responses": {"200": ok(json!({"type": "object"})), "401": err}}}),
        );
        paths.insert(
            p("local_users"),
            json!({"get": {"summary": "Local users (admin)", "responses": {"200": ok(json!({"type": "array", "items": schema("LocalUser")})), "403": err}},
                "post": {"summary": "Create a local user (admin)", "requestBody": body("LocalUser"),
                    "responses": {"201": created(schema("LocalUser")), "400": err, "403": err, "409": err, "422": err}}}),
        );
        paths.insert(
            p("local_users/{username}"),
            json!({"parameters": name_param("username"),
                "get": {"summary": "A local user (admin, or the user)", "responses": {"200": ok(schema("LocalUser")), "403": err, "404": err}},
                "patch": {"summary": "Change a user (admin; the user: password and names)", "requestBody": body("LocalUser"),
                    "responses": {"200": ok(schema("LocalUser")), "403": err, "404": err, "409": err, "422": err}},
                "delete": {"summary": "Delete a user, its authorizations and sessions (admin)", "responses": {"204": gone, "403": err, "404": err, "409": err}}}),
        );
        paths.insert(
            p("authorizations"),
            json!({"get": {"summary": "Authorizations (admin)", "responses": {"200": ok(json!({"type": "array", "items": schema("Authorization")})), "403": err}},
                "post": {"summary": "Grant admin, or ops of a tenant (admin)", "requestBody": body("AuthorizationRequest"),
                    "responses": {"201": created(schema("Authorization")), "400": err, "403": err, "409": err}}}),
        );
        paths.insert(
            p("authorizations/{id}"),
            json!({"parameters": name_param("id"),
                "get": {"summary": "An authorization (admin)", "responses": {"200": ok(schema("Authorization")), "403": err, "404": err}},
                "delete": {"summary": "Remove an authorization (admin); takes effect at once", "responses": {"204": gone, "403": err, "404": err, "409": err}}}),
        );
        paths.insert(
            p("ldap_configuration"),
            json!({"get": {"summary": "The LDAP configuration, without the password (admin)", "responses": {"200": ok(schema("LdapConfiguration")), "403": err, "404": err}},
                "put": {"summary": "Set the whole LDAP configuration (admin)", "requestBody": body("LdapConfiguration"),
                    "responses": {"200": ok(schema("LdapConfiguration")), "400": err, "403": err}},
                "patch": {"summary": "Change the fields given (admin)", "requestBody": body("LdapConfiguration"),
                    "responses": {"200": ok(schema("LdapConfiguration")), "400": err, "403": err, "404": err}},
                "delete": {"summary": "Remove the LDAP configuration: LDAP logins stop (admin)", "responses": {"204": gone, "403": err, "404": err}}}),
        );
    }
    paths.insert(
        "/api/v1/agent/register".into(),
        json!({"post": {"summary": "An agent's token for its host (open; needs the bootstrap secret)", "requestBody": body("AgentRegistration"),
            "responses": {"200": ok(schema("Token")), "400": err, "401": err, "429": throttled, "503": err}}}),
    );
    paths.insert(
        "/api/v1/agent/hosts/{host}/credential".into(),
        json!({"parameters": name_param("host"),
            "delete": {"summary": "End every session of the host's agent (admin)",
                "responses": {"200": ok(json!({"type": "object", "properties": {"revoked": {"type": "integer"}}})), "403": err}}}),
    );
}

pub fn build() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let err = json!({"description": "error naming the object, field and reason", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    for c in Collection::ALL {
        let name = c.object_name();
        let obj = json!({"$ref": format!("#/components/schemas/{name}")});
        schemas.insert(name.to_string(), schema(c));
        let key_param = json!([{"name": "key", "in": "path", "required": true, "schema": {"type": "string"},
            "description": format!("{} joined with ':'", c.key_fields().join(", "))}]);
        paths.insert(
            format!("/api/v1/{}/", c.rest_name()),
            json!({"get": {"summary": format!("List {name} objects"), "responses": {"200": ok(json!({"type": "array", "items": obj}))}}}),
        );
        let mut item = json!({
            "parameters": key_param,
            "get": {"responses": {"200": ok(obj.clone()), "404": err.clone()}},
        });
        if c.is_config() {
            let write = json!({"summary": "Create or replace", "requestBody": {"required": true, "content": {"application/json": {"schema": obj}}},
                "responses": {"200": ok(obj.clone()), "400": err.clone(), "409": err.clone(), "422": err.clone()}});
            item["post"] = write.clone();
            item["put"] = write;
            item["delete"] = json!({"responses": {"200": ok(json!({"type": "object"})), "404": err.clone(), "409": err.clone()}});
        }
        paths.insert(format!("/api/v1/{}/{{key}}/", c.rest_name()), item);
        paths.insert(
            format!("/api/v1/inspect/{}/{{key}}/", c.rest_name()),
            json!({"parameters": key_param, "get": {"responses": {"200": ok(json!({"type": "object",
                "properties": {"Config": obj, "Oper": {"type": "object"}}})), "404": err}}}),
        );
    }
    other_paths(&mut paths, &err);
    auth_paths(&mut paths, &mut schemas, &err);
    agent_schemas(&mut schemas);
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["message", "reason"], "properties": {
            "message": {"type": "string"}, "object": {"type": "string"}, "field": {"type": "string"}, "reason": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {"title": "netmaster", "version": super::service::VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

pub async fn document() -> Json<Value> {
    Json(build())
}

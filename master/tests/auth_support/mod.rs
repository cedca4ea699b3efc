//! Masters with `--auth on` for the authentication tests: in-process on a loopback port, over
//! TLS with a self-signed certificate, over the fixture's store (a second master can share the fixture's etcd), with the first admin's
//! password and the agents' secret known, and a JSON client that sends a token.

#![allow(dead_code)]

use crate::common::Fixture;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use netmaster::auth::token::{self, Claims};
use netmaster::auth::AuthSettings;
use netmaster::Master;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub const ADMIN_PASSWORD: &str = "first-admin-password";
pub const AGENT_SECRET: &str = "agent-bootstrap-secret-0123456789";

pub struct AuthMaster {
    pub base: String,
    pub client: reqwest::Client,
    pub master: Arc<Master>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for AuthMaster {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A master with authentication on over the fixture's store.
pub async fn start(fixture: &Fixture) -> AuthMaster {
    start_with(fixture, Duration::from_secs(3600)).await
}

pub async fn start_with(fixture: &Fixture, token_ttl: Duration) -> AuthMaster {
    start_settings(
        fixture,
        AuthSettings {
            token_ttl,
            ..settings()
        },
    )
    .await
}

/// The settings [`start`] uses: authentication on, the agent secret known.
pub fn settings() -> AuthSettings {
    AuthSettings {
        enabled: true,
        token_ttl: Duration::from_secs(3600),
        agent_token_ttl: Duration::from_secs(3600),
        agent_secret: Some(AGENT_SECRET.as_bytes().to_vec()),
        ..AuthSettings::default()
    }
}

/// A master with these authentication settings over the fixture's store.
pub async fn start_settings(fixture: &Fixture, auth: AuthSettings) -> AuthMaster {
    // Over TLS, as the product serves it; the client trusts only this master's certificate.
    let crate::common::Served {
        base,
        master,
        server,
        dir,
        ca,
    } = fixture.serve_with(auth, ADMIN_PASSWORD, true).await;
    let ca = ca.expect("a TLS master has its certificate");
    let tls = crate::common::tls::client_config(&ca, &[b"http/1.1"]).expect("a TLS client");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .build()
        .expect("client");
    AuthMaster {
        base,
        client,
        master,
        server,
        _dir: dir,
    }
}

pub fn method(name: &str) -> reqwest::Method {
    reqwest::Method::from_bytes(name.as_bytes()).expect("a method")
}

impl AuthMaster {
    /// A request with an optional token (`X-Auth-Token`, Contiv's header).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(self::method(method), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request reaches the master");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Contiv's login; panics unless it gives a token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/auth_proxy/login/",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(s, 200, "login {username}: {v}");
        v["token"].as_str().expect("a token").to_string()
    }

    pub async fn admin(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// An agent's token for `host`.
    pub async fn register(&self, host: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/agent/register",
                None,
                Some(json!({"host": host, "secret": AGENT_SECRET})),
            )
            .await;
        assert_eq!(s, 200, "register {host}: {v}");
        v["token"].as_str().expect("a token").to_string()
    }

    /// Creates a local user with ops on `tenants` (admin token `admin`).
    pub async fn ops_user(&self, admin: &str, name: &str, password: &str, tenants: &[&str]) {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/auth_proxy/local_users/",
                Some(admin),
                Some(json!({"username": name, "password": password, "first_name": name})),
            )
            .await;
        assert_eq!(s, 201, "create user {name}: {v}");
        for t in tenants {
            self.grant(admin, name, "ops", t).await;
        }
    }

    /// Adds an authorization; returns its id.
    pub async fn grant(&self, admin: &str, principal: &str, role: &str, tenant: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/auth_proxy/authorizations/",
                Some(admin),
                Some(json!({"principalName": principal, "local": true, "role": role, "tenantName": tenant})),
            )
            .await;
        assert_eq!(s, 201, "grant {role} {tenant} to {principal}: {v}");
        v["AuthzUUID"].as_str().expect("an id").to_string()
    }

    /// POST that must succeed with the given token.
    pub async fn create(&self, token: &str, path: &str, body: Value) -> Value {
        let (s, v) = self.call("POST", path, Some(token), Some(body)).await;
        assert_eq!(s, 200, "POST {path}: {v}");
        v
    }

    /// The token's session id (its `sid` claim).
    pub fn session_of(token: &str) -> String {
        let payload = token.split('.').nth(1).expect("a JWT");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
                .expect("JSON claims");
        claims["sid"].as_str().expect("sid").to_string()
    }

    /// A token for `token`'s session, signed with the master's key but `exp` in the past.
    pub async fn expired_twin(&self, token: &str) -> String {
        let key = self.signing_key().await;
        token::sign(&claims(Self::session_of(token), 1_000, 2_000), &key)
    }

    /// A token for `token`'s session signed with another key.
    pub fn foreign_twin(token: &str) -> String {
        token::sign(
            &claims(Self::session_of(token), 1_000, u64::MAX / 2),
            b"some-other-key-0123456789abcdef0123456789",
        )
    }

    async fn signing_key(&self) -> Vec<u8> {
        let kv = self
            .master
            .store
            .get(netmaster::keys::SIGNING_KEY)
            .await
            .expect("store")
            .expect("a signing key");
        netmaster::auth::state::from_hex(std::str::from_utf8(&kv.value).expect("hex"))
            .expect("hex key")
    }
}

fn claims(sid: String, iat: u64, exp: u64) -> Claims {
    Claims {
        iss: token::ISSUER.into(),
        sid,
        username: "admin".into(),
        role: "admin".into(),
        iat,
        exp,
    }
}

//! A netmaster for tests: in-process on a loopback port, over the embedded store or a real etcd,
//! with a small JSON client.

#![allow(dead_code)]

pub mod process;
pub mod tls;

use fabric_store::testing::EtcdProcess;
use netmaster::{api, Master, Settings};
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Etcd,
}

pub struct TestMaster {
    pub base: String,
    /// Sends the first admin's token with every request.
    pub client: reqwest::Client,
    /// That token, for clients built by hand.
    pub token: String,
    pub master: Arc<Master>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for TestMaster {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Holds what a backend needs to stay alive (the etcd process) for the test's duration.
pub struct Fixture {
    pub etcd: Option<EtcdProcess>,
    /// The lease of the masters it serves (each campaigns for leadership).
    pub leader_lease: std::time::Duration,
}

impl Fixture {
    pub fn new(backend: Backend) -> Fixture {
        install_crypto();
        let etcd = match backend {
            Backend::Embedded => None,
            Backend::Etcd => Some(EtcdProcess::start().expect(
                "etcd must be installed (package etcd-server) to run the etcd half of the suite",
            )),
        };
        Fixture {
            etcd,
            leader_lease: netmaster::leader::DEFAULT_LEASE,
        }
    }

    pub async fn master(&self) -> TestMaster {
        // Authentication on, as the product runs: these tests act as the first admin, whose
        // token every request carries (the permission rules themselves are tests/rbac.rs's).
        let auth = netmaster::auth::AuthSettings {
            enabled: true,
            ..Default::default()
        };
        let Served {
            base,
            master,
            server,
            dir,
            ..
        } = self.serve(auth, ADMIN_PASSWORD).await;
        let token = admin_token(&base).await;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "X-Auth-Token",
            reqwest::header::HeaderValue::from_str(&token).expect("a token is a header value"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client");
        TestMaster {
            base,
            client,
            token,
            master,
            server,
            _dir: dir,
        }
    }
}

/// A master on a loopback port over the fixture's store, before any client talks to it.
pub struct Served {
    pub base: String,
    pub master: Arc<Master>,
    pub server: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
    /// Its self-signed certificate, when it serves TLS.
    pub ca: Option<std::path::PathBuf>,
}

impl Fixture {
    /// Starts a master in-process with these authentication settings, its first admin's
    /// password `admin_password`, over plain HTTP.
    pub async fn serve(&self, auth: netmaster::auth::AuthSettings, admin_password: &str) -> Served {
        self.serve_with(auth, admin_password, false).await
    }

    /// [`Fixture::serve`], over TLS with a self-signed certificate for 127.0.0.1 when `tls`.
    pub async fn serve_with(
        &self,
        auth: netmaster::auth::AuthSettings,
        admin_password: &str,
        tls: bool,
    ) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let endpoints = self.etcd.as_ref().map(|e| e.endpoints());
        let store = fabric_store::open(endpoints.as_deref(), dir.path())
            .await
            .expect("store opens");
        let settings = Settings {
            backend: if self.etcd.is_some() {
                "etcd"
            } else {
                "embedded"
            },
            auth,
            ..Settings::default()
        };
        let master = Master::start(store, settings).await.expect("master starts");
        master.ensure_defaults().await.expect("defaults");
        master
            .ensure_auth(Some(admin_password.into()))
            .await
            .expect("authentication set up");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let leader = netmaster::leader::LeaderSettings {
            id: format!("test-{addr}"),
            lease: self.leader_lease,
        };
        netmaster::leader::start(&master, leader).expect("campaigns for leadership");
        let (base, ca, server) = if tls {
            let identity =
                netmaster::tls::Identity::self_signed(dir.path(), &["127.0.0.1".to_string()])
                    .expect("a self-signed certificate");
            let ca = identity.cert_path.clone();
            let config = identity.server_config().expect("a TLS configuration");
            let serving = api::serve_tls(
                listener,
                master.clone(),
                config,
                api::Limits::default(),
                std::future::pending(),
            );
            let server = tokio::spawn(async move {
                let _ = serving.await;
            });
            (format!("https://{addr}"), Some(ca), server)
        } else {
            let serving = api::serve(listener, master.clone(), std::future::pending());
            let server = tokio::spawn(async move {
                let _ = serving.await;
            });
            (format!("http://{addr}"), None, server)
        };
        Served {
            base,
            master,
            server,
            dir,
            ca,
        }
    }
}

/// Makes ring rustls's process-wide crypto provider, which the tests' HTTP clients need
/// (reqwest is built with TLS but no provider of its own, like the master's clients).
pub fn install_crypto() {
    #[allow(deprecated)] // ring, as the master itself uses (see src/tls.rs)
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The first admin's password on every test master.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// Logs in as the first admin (Contiv's login request).
async fn admin_token(base: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth_proxy/login/"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
        .send()
        .await
        .expect("login reaches the master");
    let v: Value = resp.json().await.expect("login answers JSON");
    v["token"]
        .as_str()
        .expect("login gives a token")
        .to_string()
}

impl TestMaster {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            // Writes take JSON only (src/api/content_type.rs).
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

    /// GET answering the status and the Content-Type, with the body left unread (a watch
    /// streams without end).
    pub async fn get_response(&self, path: &str) -> (u16, String, reqwest::Response) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request reaches the master");
        let media = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (resp.status().as_u16(), media, resp)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    /// POST that must succeed.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.post(path, body).await;
        assert_eq!(status, 200, "POST {path} failed: {v}");
        v
    }

    /// The store revision the master has seen: unchanged by a rejected write.
    pub async fn revision(&self) -> u64 {
        self.get("/info").await.1["revision"]
            .as_u64()
            .expect("info has a revision")
    }

    /// Asserts a rejected write names `field`, has `status`, and left the store as it was.
    pub async fn rejects(&self, path: &str, body: Value, status: u16, field: &str) -> Value {
        let before = self.master.store.revision().await.expect("store revision");
        let (got, v) = self.post(path, body.clone()).await;
        assert_eq!(got, status, "POST {path} {body}: {v}");
        assert_eq!(v["field"].as_str(), Some(field), "POST {path} {body}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| m.contains(field)),
            "message names the field: {v}"
        );
        let after = self.master.store.revision().await.expect("store revision");
        assert_eq!(before, after, "a rejected write must not change the store");
        v
    }
}

/// One valid object of every collection, in dependency order, with the path key.
pub fn samples() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("tenants", "blue", json!({"tenantName": "blue"})),
        (
            "networks",
            "blue:net",
            json!({"tenantName": "blue", "networkName": "net", "subnet": "10.1.1.0/24", "gateway": "10.1.1.254"}),
        ),
        (
            "policys",
            "blue:pol",
            json!({"tenantName": "blue", "policyName": "pol"}),
        ),
        (
            "netprofiles",
            "blue:prof",
            json!({"tenantName": "blue", "profileName": "prof", "bandwidth": "10Mbps", "DSCP": 5}),
        ),
        (
            "extContractsGroups",
            "blue:ext",
            json!({"tenantName": "blue", "contractsGroupName": "ext", "contractsType": "provided", "contracts": ["uni/tn-common/brc-default"]}),
        ),
        (
            "endpointGroups",
            "blue:grp",
            json!({"tenantName": "blue", "groupName": "grp", "networkName": "net", "policies": ["pol"], "netProfile": "prof", "extContractsGrps": ["ext"], "ipPool": "10.1.1.10-10.1.1.20"}),
        ),
        (
            "rules",
            "blue:pol:1",
            json!({"tenantName": "blue", "policyName": "pol", "ruleId": "1", "direction": "in", "fromEndpointGroup": "grp", "protocol": "tcp", "port": 80, "action": "allow"}),
        ),
        (
            "appProfiles",
            "blue:app",
            json!({"tenantName": "blue", "appProfileName": "app", "endpointGroups": ["grp"]}),
        ),
        (
            "serviceLBs",
            "blue:svc",
            json!({"tenantName": "blue", "serviceName": "svc", "networkName": "net", "selectors": ["tier=web"], "ports": ["8080:80:TCP"]}),
        ),
        (
            "Bgps",
            "host1",
            json!({"hostname": "host1", "routerip": "50.1.1.1/24", "as": "65002", "neighbor-as": "500", "neighbor": "50.1.1.2"}),
        ),
        (
            "aciGws",
            "aciGw",
            json!({"name": "aciGw", "enforcePolicies": "yes"}),
        ),
        (
            "globals",
            "global",
            json!({"name": "global", "fwdMode": "routing"}),
        ),
    ]
}

/// Runs an async test body once per backend, each in its own test function.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:ident;)*) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = $crate::common::Fixture::new($crate::common::Backend::Embedded);
                    super::$body(&fixture).await
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = $crate::common::Fixture::new($crate::common::Backend::Etcd);
                    super::$body(&fixture).await
                }
            )*
        }
    };
}

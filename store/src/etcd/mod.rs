//! The etcd v3 backend: every operation maps onto one etcd request; revisions are etcd's
//! header revisions, so several masters sharing an etcd cluster agree on them.

mod convert;
mod election;
mod retry;
mod tls;
mod watch;

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, GetResponse};
use retry::{retry, Safety};

use crate::error::StoreError;
use crate::store::Store;
use crate::types::{KeyValue, Revision, Snapshot, Txn, TxnResult, WatchStream};

pub use tls::EtcdTls;

/// Keys fetched per range request while listing (keeps responses far below gRPC limits).
const LIST_PAGE: i64 = 1000;

#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// Tries per request when a member is unreachable (see `retry`).
    attempts: usize,
}

impl EtcdStore {
    /// Connects to an etcd cluster through any of `endpoints` (e.g. `http://127.0.0.1:2379`).
    pub async fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        Self::connect_with(endpoints, &EtcdTls::default()).await
    }

    /// Connects with TLS settings for `https://` endpoints (see [`EtcdTls`]). Over TLS one
    /// request is made before returning, so a refused certificate (either side's) is reported
    /// here, as [`StoreError::EtcdTls`] with the reason, not at the first read.
    pub async fn connect_with(endpoints: &[String], tls: &EtcdTls) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Backend(
                "etcd endpoints: at least one endpoint is required".into(),
            ));
        }
        let use_tls = tls.applies_to(endpoints)?;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            // etcd closes connections whose pings come faster than its
            // --grpc-keepalive-min-time (5 s by default) with GOAWAY "too_many_pings";
            // pinging at exactly 5 s trips it under load, so stay well above.
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10))
            .with_keep_alive_while_idle(true);
        if use_tls {
            options = options.with_tls(tls.options()?);
        }
        let client =
            Client::connect(endpoints, Some(options))
                .await
                .map_err(|e| match use_tls {
                    true => StoreError::EtcdTls(format!(
                        "setting up the connection ({}): {}",
                        tls_summary(tls),
                        error_chain(&e)
                    )),
                    false => e.into(),
                })?;
        if use_tls {
            probe(&client, endpoints, tls).await?;
        }
        tracing::info!(?endpoints, tls = use_tls, "connected to etcd");
        Ok(Self {
            client,
            attempts: (2 * endpoints.len()).max(3),
        })
    }

    /// A range read, retried across members.
    async fn range(
        &self,
        key: Vec<u8>,
        options: Option<GetOptions>,
    ) -> Result<GetResponse, StoreError> {
        retry(self.attempts, Safety::Idempotent, || {
            let mut kv = self.client.kv_client();
            let (key, options) = (key.clone(), options.clone());
            async move { kv.get(key, options).await }
        })
        .await
    }

    /// The underlying client, for what the traits do not cover.
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

/// Bound on the first TLS request (connect timeout plus a busy server's reply).
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// One count-only read: completes the TLS handshake with some member, so certificate problems
/// show at connect with what was refused.
async fn probe(client: &Client, endpoints: &[String], tls: &EtcdTls) -> Result<(), StoreError> {
    let mut kv = client.kv_client();
    let read = kv.get(b"/".to_vec(), Some(GetOptions::new().with_count_only()));
    let failed = |reason: String| {
        StoreError::EtcdTls(format!(
            "no TLS connection to etcd at {} ({}): {reason}",
            endpoints.join(","),
            tls_summary(tls)
        ))
    };
    match tokio::time::timeout(PROBE_TIMEOUT, read).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failed(error_chain(&e))),
        Err(_) => Err(failed(format!("no answer within {PROBE_TIMEOUT:?}"))),
    }
}

/// Which files the connection uses, for error messages.
fn tls_summary(tls: &EtcdTls) -> String {
    let ca = match &tls.ca_cert {
        Some(path) => format!("CA {}", path.display()),
        None => "the system's trusted roots".to_string(),
    };
    match &tls.client_cert {
        Some(cert) => format!("{ca}, client certificate {}", cert.display()),
        None => format!("{ca}, no client certificate"),
    }
}

/// An etcd client error with its sources (etcd-client's own error does not link them), each
/// message once (gRPC and hyper repeat their source's).
fn error_chain(error: &etcd_client::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut add = |text: String| {
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = match error {
        etcd_client::Error::TransportError(e) => {
            add(e.to_string());
            std::error::Error::source(e)
        }
        etcd_client::Error::GRpcStatus(status) => {
            add(status.message().to_string());
            std::error::Error::source(status)
        }
        other => {
            add(other.to_string());
            None
        }
    };
    while let Some(e) = source {
        add(e.to_string());
        source = e.source();
    }
    let detail = parts.join(": ");
    match hint(&detail) {
        Some(hint) => format!("{hint} ({detail})"),
        None => detail,
    }
}

/// What a TLS failure most likely means, from the words of rustls and hyper.
fn hint(detail: &str) -> Option<&'static str> {
    let has = |words: &[&str]| words.iter().any(|w| detail.contains(w));
    if has(&[
        "UnknownIssuer",
        "BadSignature",
        "NotValidForName",
        "Expired",
        "invalid peer certificate",
    ]) {
        Some("etcd's server certificate is not trusted (not signed by a trusted CA, expired, or not for this address)")
    } else if has(&["InconsistentKeys", "inconsistent", "KeyMismatch"]) {
        Some("the client key does not belong to the client certificate")
    } else if has(&[
        "BadCertificate",
        "CertificateRequired",
        "UnknownCA",
        // TLS 1.3: etcd checks the client certificate after our side finished the handshake,
        // so its alert races our first request (seen: alert, closed, canceled, broken pipe).
        "connection closed",
        "canceled",
        "Canceled",
        "broken pipe",
        "connection reset",
    ]) {
        Some("etcd closed the connection at the handshake: it refused the client certificate (none given, or not signed by a CA etcd trusts)")
    } else {
        None
    }
}

#[async_trait::async_trait]
impl crate::election::Elector for EtcdStore {
    async fn campaign(
        &self,
        name: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<crate::election::Leadership, StoreError> {
        election::campaign(self, name, value, ttl).await
    }

    async fn leader(&self, name: &str) -> Result<Option<KeyValue>, StoreError> {
        election::leader(self, name).await
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self.range(key.as_bytes().to_vec(), None).await?;
        response.kvs().first().map(convert::key_value).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<Snapshot, StoreError> {
        let end = convert::prefix_range_end(prefix);
        let mut start = convert::range_start(prefix);
        let mut snapshot = Snapshot::default();
        let mut pinned = None;
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE);
            if let Some(revision) = pinned {
                options = options.with_revision(revision);
            }
            let response = self.range(start.clone(), Some(options)).await?;
            let revision = convert::header_revision(response.header())?;
            // Later pages read at the first page's revision, so the whole list is one snapshot.
            let at = *pinned.get_or_insert(convert::etcd_revision(revision)?);
            snapshot.revision = convert::revision(at);
            for kv in response.kvs() {
                snapshot.kvs.push(convert::key_value(kv)?);
            }
            match (response.more(), response.kvs().last()) {
                (true, Some(last)) => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => return Ok(snapshot),
            }
        }
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let options = GetOptions::new()
            .with_range(convert::prefix_range_end(prefix))
            .with_count_only();
        let response = self
            .range(convert::range_start(prefix), Some(options))
            .await?;
        Ok(u64::try_from(response.count()).unwrap_or(0))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        txn.validate()?;
        let request = convert::txn(txn)?;
        let response = retry(self.attempts, Safety::NotDelivered, || {
            let mut kv = self.client.kv_client();
            let request = request.clone();
            async move { kv.txn(request).await }
        })
        .await?;
        Ok(TxnResult {
            succeeded: response.succeeded(),
            revision: convert::header_revision(response.header())?,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        watch::start(&self.client, self.attempts, prefix, after).await
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        let options = GetOptions::new().with_count_only();
        let response = self.range(b"/".to_vec(), Some(options)).await?;
        convert::header_revision(response.header())
    }
}

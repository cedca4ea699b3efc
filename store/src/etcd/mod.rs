//! The etcd v3 backend: every operation maps onto one etcd request; revisions are etcd's
//! header revisions, so several masters sharing an etcd cluster agree on them.

mod convert;
mod watch;

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions};

use crate::error::StoreError;
use crate::store::Store;
use crate::types::{KeyValue, Revision, Snapshot, Txn, TxnResult, WatchStream};

/// Keys fetched per range request while listing (keeps responses far below gRPC limits).
const LIST_PAGE: i64 = 1000;

#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
}

impl EtcdStore {
    /// Connects to an etcd cluster through any of `endpoints` (e.g. `http://127.0.0.1:2379`).
    pub async fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Backend(
                "etcd endpoints: at least one endpoint is required".into(),
            ));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(options)).await?;
        tracing::info!(?endpoints, "connected to etcd");
        Ok(Self { client })
    }

    /// The underlying client, for what the trait does not cover (leases, elections).
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self.client.kv_client().get(key, None).await?;
        response.kvs().first().map(convert::key_value).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<Snapshot, StoreError> {
        let mut kv = self.client.kv_client();
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
            let response = kv.get(start.clone(), Some(options)).await?;
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
            .client
            .kv_client()
            .get(convert::range_start(prefix), Some(options))
            .await?;
        Ok(u64::try_from(response.count()).unwrap_or(0))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        txn.validate()?;
        let response = self.client.kv_client().txn(convert::txn(txn)?).await?;
        Ok(TxnResult {
            succeeded: response.succeeded(),
            revision: convert::header_revision(response.header())?,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        watch::start(self.client.watch_client(), prefix, after).await
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        let options = GetOptions::new().with_count_only();
        let response = self.client.kv_client().get("/", Some(options)).await?;
        convert::header_revision(response.header())
    }
}

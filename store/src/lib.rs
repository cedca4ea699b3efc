//! The master's durable, revisioned key-value store.
//!
//! Two backends behind one [`Store`] trait: [`EmbeddedStore`] (a single redb file with group
//! commit, the default) and [`EtcdStore`] (etcd v3). Keys are strings such as
//! `/contiv/tenants/blue`, values are bytes (JSON for the master), every committed change gets a
//! store-wide revision, and watches resume from any revision still in history. Either backend
//! elects a leader among several masters ([`Elector`]), whose writes a [`Fence`] guards.

mod election;
mod embedded;
mod error;
mod etcd;
mod store;
#[cfg(feature = "test-support")]
pub mod testing;
mod types;

use std::path::Path;
use std::sync::Arc;

pub use election::{Elector, Fence, Leadership, Lost};
pub use embedded::{EmbeddedOptions, EmbeddedStats, EmbeddedStore};
pub use error::StoreError;
pub use etcd::{EtcdStore, EtcdTls};
pub use store::Store;
pub use types::{
    Compare, Event, EventKind, KeyValue, Op, Revision, Snapshot, Txn, TxnResult, WatchStream,
    MAX_TXN_OPS,
};

/// File name of the embedded store inside the data directory.
pub const EMBEDDED_FILE: &str = "store.redb";

/// Picks the backend: etcd when endpoints are given (and not empty), otherwise the embedded
/// store in `data_dir/store.redb` (the directory is created if missing).
pub async fn open(
    etcd_endpoints: Option<&[String]>,
    data_dir: &Path,
) -> Result<Arc<dyn Store>, StoreError> {
    open_with(etcd_endpoints, data_dir, &EtcdTls::default()).await
}

/// [`open`] with TLS settings for `https://` etcd endpoints ([`EtcdTls`]). TLS files without
/// etcd endpoints are an error, not silently unused.
pub async fn open_with(
    etcd_endpoints: Option<&[String]>,
    data_dir: &Path,
    etcd_tls: &EtcdTls,
) -> Result<Arc<dyn Store>, StoreError> {
    match etcd_endpoints {
        Some(endpoints) if !endpoints.is_empty() => Ok(Arc::new(
            EtcdStore::connect_with(endpoints, etcd_tls).await?,
        )),
        _ if !etcd_tls.is_empty() => Err(StoreError::EtcdTls(
            "TLS files are given but no etcd endpoint (the embedded store uses none)".into(),
        )),
        _ => {
            tokio::fs::create_dir_all(data_dir)
                .await
                .map_err(|source| StoreError::DataDir {
                    path: data_dir.to_path_buf(),
                    source,
                })?;
            Ok(Arc::new(
                EmbeddedStore::open(&data_dir.join(EMBEDDED_FILE)).await?,
            ))
        }
    }
}

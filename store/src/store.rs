//! The `Store` trait the master codes against, implemented by both backends. Every store can
//! also elect a leader ([`Elector`]).

use crate::election::Elector;
use crate::error::StoreError;
use crate::types::{KeyValue, Op, Revision, Snapshot, Txn, TxnResult, WatchStream};

#[async_trait::async_trait]
pub trait Store: Elector + Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// A consistent snapshot of the keys under `prefix`, sorted by key, with its revision.
    async fn list(&self, prefix: &str) -> Result<Snapshot, StoreError>;
    async fn count(&self, prefix: &str) -> Result<u64, StoreError>;
    /// Atomic: if all compares hold the success ops run, otherwise the failure ops. Returns only
    /// once the result is durable.
    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError>;

    /// Unconditional write; returns the revision of the write.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        let txn = Txn {
            success: vec![Op::Put {
                key: key.to_string(),
                value,
            }],
            ..Txn::default()
        };
        Ok(self.txn(txn).await?.revision)
    }

    /// Deletes `key`; returns the revision of the delete, `None` when the key was absent.
    async fn delete(&self, key: &str) -> Result<Option<Revision>, StoreError> {
        let txn = Txn::new().when_present(key).delete(key);
        let result = self.txn(txn).await?;
        Ok(result.succeeded.then_some(result.revision))
    }

    /// Every event on keys under `prefix` with revision > `after`, in revision order, then live
    /// ones; never skips one. If history after `after` was compacted the first item is
    /// `Err(StoreError::Compacted{..})` and the stream ends.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// The store's current (committed) revision.
    async fn revision(&self) -> Result<Revision, StoreError>;
}

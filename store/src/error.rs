//! Errors of the store, common to both backends.

use crate::types::Revision;

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// The events the caller asked for are gone; resync with `list()` and watch from its
    /// revision.
    #[error(
        "watch from revision {requested}: history was compacted, the oldest revision still \
         available is {oldest}; resync with list()"
    )]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    #[error("embedded store (redb): {0}")]
    Redb(#[from] redb::Error),
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// Any other backend failure, e.g. one batch commit error reported to every caller in it.
    #[error("store backend: {0}")]
    Backend(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A TLS file for etcd is missing, unreadable or not what it should be.
    #[error("etcd TLS {what} {path}: {reason}")]
    EtcdTlsFile {
        what: &'static str,
        path: std::path::PathBuf,
        reason: String,
    },
    /// TLS settings that do not fit the endpoints or each other, or no TLS connection to etcd
    /// (certificate refused on either side).
    #[error("etcd TLS: {0}")]
    EtcdTls(String),
    #[error("invalid transaction: {0}")]
    InvalidTxn(String),
    /// A stored record does not decode; names which record and why.
    #[error("corrupt record in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    /// A value from etcd that our model cannot represent (e.g. a key that is not UTF-8).
    #[error("unexpected data from backend: {0}")]
    Unexpected(String),
    #[error("store is closed")]
    Closed,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

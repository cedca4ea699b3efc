//! The store's data model: keys, revisions, transactions and watch events, shared by both
//! backends.

use std::collections::HashSet;
use std::pin::Pin;

use crate::error::StoreError;

/// Store-wide logical clock. Strictly increasing; every write transaction that changes at least
/// one key bumps it by exactly one.
pub type Revision = u64;

/// A key with its value and the revisions at which it was created and last modified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

/// A condition of a transaction. An absent key has create and mod revision 0 (as in etcd), so
/// `ModRevision(key, 0)` holds for an absent key while `Value(..)` never does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    Absent(String),
    Present(String),
    /// The key's mod_revision equals the given revision.
    ModRevision(String, Revision),
    /// The key exists and its value equals the given bytes.
    Value(String, Vec<u8>),
}

impl Compare {
    pub fn key(&self) -> &str {
        match self {
            Compare::Absent(k) | Compare::Present(k) => k,
            Compare::ModRevision(k, _) | Compare::Value(k, _) => k,
        }
    }

    /// Evaluates the condition against the current state of its key.
    pub fn holds(&self, current: Option<&KeyValue>) -> bool {
        match self {
            Compare::Absent(_) => current.is_none(),
            Compare::Present(_) => current.is_some(),
            Compare::ModRevision(_, rev) => current.map_or(0, |kv| kv.mod_revision) == *rev,
            Compare::Value(_, value) => current.is_some_and(|kv| kv.value == *value),
        }
    }
}

/// A write operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

impl Op {
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(key: impl Into<String>) -> Self {
        Op::Delete { key: key.into() }
    }

    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// An atomic transaction: if every compare holds, the success ops run, otherwise the failure
/// ops. Either branch runs as one unit at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

/// Most ops one branch of a transaction may hold; etcd's default `--max-txn-ops` is 128.
pub const MAX_TXN_OPS: usize = 128;

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }

    pub fn when_absent(self, key: impl Into<String>) -> Self {
        self.when(Compare::Absent(key.into()))
    }

    pub fn when_present(self, key: impl Into<String>) -> Self {
        self.when(Compare::Present(key.into()))
    }

    pub fn when_mod_revision(self, key: impl Into<String>, revision: Revision) -> Self {
        self.when(Compare::ModRevision(key.into(), revision))
    }

    pub fn when_value(self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.when(Compare::Value(key.into(), value.into()))
    }

    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.success.push(Op::put(key, value));
        self
    }

    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.success.push(Op::delete(key));
        self
    }

    pub fn or_put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.failure.push(Op::put(key, value));
        self
    }

    pub fn or_delete(mut self, key: impl Into<String>) -> Self {
        self.failure.push(Op::delete(key));
        self
    }

    /// Rejects what etcd would reject, so both backends accept the same transactions: empty
    /// keys, a key written twice in one branch, more than [`MAX_TXN_OPS`] ops in a branch.
    pub fn validate(&self) -> Result<(), StoreError> {
        for compare in &self.compares {
            if compare.key().is_empty() {
                return Err(StoreError::InvalidTxn(
                    "compare key must not be empty".into(),
                ));
            }
        }
        for (branch, ops) in [("success", &self.success), ("failure", &self.failure)] {
            if ops.len() > MAX_TXN_OPS {
                return Err(StoreError::InvalidTxn(format!(
                    "{branch} branch has {} ops, at most {MAX_TXN_OPS} allowed",
                    ops.len()
                )));
            }
            let mut seen = HashSet::new();
            for op in ops {
                if op.key().is_empty() {
                    return Err(StoreError::InvalidTxn(format!(
                        "{branch} op key must not be empty"
                    )));
                }
                if !seen.insert(op.key()) {
                    return Err(StoreError::InvalidTxn(format!(
                        "{branch} branch writes key {:?} more than once",
                        op.key()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Outcome of a transaction: which branch ran and the store revision right after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnResult {
    pub succeeded: bool,
    pub revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change of one key. All changes of a transaction share its revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub revision: Revision,
    pub kind: EventKind,
    pub key: String,
    /// The new value for `Put`, `None` for `Delete`.
    pub value: Option<Vec<u8>>,
}

/// A consistent view of the keys under a prefix (sorted by key) at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub kvs: Vec<KeyValue>,
    pub revision: Revision,
}

pub type WatchStream = Pin<Box<dyn futures::Stream<Item = Result<Event, StoreError>> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(value: &[u8], mod_revision: Revision) -> KeyValue {
        KeyValue {
            key: "/k".into(),
            value: value.to_vec(),
            create_revision: 1,
            mod_revision,
        }
    }

    #[test]
    fn compares_on_absent_key_follow_etcd() {
        assert!(Compare::Absent("/k".into()).holds(None));
        assert!(!Compare::Present("/k".into()).holds(None));
        assert!(Compare::ModRevision("/k".into(), 0).holds(None));
        assert!(!Compare::Value("/k".into(), vec![]).holds(None));
    }

    #[test]
    fn compares_on_present_key() {
        let current = kv(b"v", 7);
        assert!(!Compare::Absent("/k".into()).holds(Some(&current)));
        assert!(Compare::Present("/k".into()).holds(Some(&current)));
        assert!(Compare::ModRevision("/k".into(), 7).holds(Some(&current)));
        assert!(!Compare::ModRevision("/k".into(), 6).holds(Some(&current)));
        assert!(Compare::Value("/k".into(), b"v".to_vec()).holds(Some(&current)));
        assert!(!Compare::Value("/k".into(), b"w".to_vec()).holds(Some(&current)));
    }

    #[test]
    fn validate_rejects_duplicate_and_empty_keys() {
        let dup = Txn::new().put("/a", "1").delete("/a");
        assert!(matches!(dup.validate(), Err(StoreError::InvalidTxn(m)) if m.contains("/a")));
        let empty = Txn::new().put("", "1");
        assert!(matches!(empty.validate(), Err(StoreError::InvalidTxn(m)) if m.contains("empty")));
        let ok = Txn::new()
            .when_absent("/a")
            .put("/a", "1")
            .or_put("/a", "2");
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn validate_rejects_too_many_ops() {
        let mut txn = Txn::new();
        for i in 0..=MAX_TXN_OPS {
            txn = txn.put(format!("/k{i}"), "v");
        }
        assert!(matches!(txn.validate(), Err(StoreError::InvalidTxn(m)) if m.contains("success")));
    }
}

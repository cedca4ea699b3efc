//! Mapping between our model and etcd's: compares, ops, key-values, events, key ranges.

use etcd_client::{Compare as EtcdCompare, CompareOp, EventType, ResponseHeader, TxnOp};

use crate::error::StoreError;
use crate::types::{Compare, Event, EventKind, KeyValue, Op, Revision, Txn};

pub fn revision(raw: i64) -> Revision {
    // etcd revisions are never negative.
    u64::try_from(raw).unwrap_or(0)
}

pub fn etcd_revision(rev: Revision) -> Result<i64, StoreError> {
    i64::try_from(rev)
        .map_err(|_| StoreError::InvalidTxn(format!("revision {rev} exceeds etcd's range")))
}

pub fn header_revision(header: Option<&ResponseHeader>) -> Result<Revision, StoreError> {
    header
        .map(|h| revision(h.revision()))
        .ok_or_else(|| StoreError::Unexpected("etcd response without header".into()))
}

pub fn txn(txn: Txn) -> Result<etcd_client::Txn, StoreError> {
    let compares = txn
        .compares
        .into_iter()
        .map(compare)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(etcd_client::Txn::new()
        .when(compares)
        .and_then(txn.success.into_iter().map(op).collect::<Vec<_>>())
        .or_else(txn.failure.into_iter().map(op).collect::<Vec<_>>()))
}

fn compare(compare: Compare) -> Result<EtcdCompare, StoreError> {
    Ok(match compare {
        Compare::Absent(key) => EtcdCompare::create_revision(key, CompareOp::Equal, 0),
        Compare::Present(key) => EtcdCompare::create_revision(key, CompareOp::Greater, 0),
        Compare::ModRevision(key, rev) => {
            EtcdCompare::mod_revision(key, CompareOp::Equal, etcd_revision(rev)?)
        }
        Compare::Value(key, value) => EtcdCompare::value(key, CompareOp::Equal, value),
    })
}

fn op(op: Op) -> TxnOp {
    match op {
        Op::Put { key, value } => TxnOp::put(key, value, None),
        Op::Delete { key } => TxnOp::delete(key, None),
    }
}

pub fn key_value(kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: key_string(kv)?,
        value: kv.value().to_vec(),
        create_revision: revision(kv.create_revision()),
        mod_revision: revision(kv.mod_revision()),
    })
}

fn key_string(kv: &etcd_client::KeyValue) -> Result<String, StoreError> {
    kv.key_str()
        .map(str::to_string)
        .map_err(|e| StoreError::Unexpected(format!("etcd key {:?} is not UTF-8: {e}", kv.key())))
}

pub fn event(event: &etcd_client::Event) -> Result<Event, StoreError> {
    let kv = event
        .kv()
        .ok_or_else(|| StoreError::Unexpected("etcd watch event without kv".into()))?;
    let (kind, value) = match event.event_type() {
        EventType::Put => (EventKind::Put, Some(kv.value().to_vec())),
        EventType::Delete => (EventKind::Delete, None),
    };
    Ok(Event {
        revision: revision(kv.mod_revision()),
        kind,
        key: key_string(kv)?,
        value,
    })
}

/// etcd's end of the key range holding every key that starts with `prefix`: the prefix with
/// its last byte below 0xff incremented; `"\0"` (meaning "to the end") when there is none.
pub fn prefix_range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The first key of a range scan: etcd reads an empty key as "no key", so `""` becomes `"\0"`.
pub fn range_start(prefix: &str) -> Vec<u8> {
    if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_ends() {
        assert_eq!(prefix_range_end("/contiv/"), b"/contiv0".to_vec());
        assert_eq!(prefix_range_end(""), vec![0]);
        assert_eq!(range_start(""), vec![0]);
        assert_eq!(range_start("/a"), b"/a".to_vec());
    }

    #[test]
    fn large_revision_is_rejected_with_reason() {
        let err = etcd_revision(u64::MAX).unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
    }
}

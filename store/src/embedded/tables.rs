//! redb table definitions of the embedded store and the read helpers shared by readers and the
//! writer (which evaluates compares inside its own write transaction).

use redb::{ReadableTable, TableDefinition};

use super::codec::{decode_events, decode_kv};
use crate::error::StoreError;
use crate::types::{Event, KeyValue, Revision};

/// key -> create revision, mod revision, value (see `codec::encode_kv`).
pub const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// revision -> every event of that revision (see `codec::encode_events`).
pub const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("event_log");
/// Named counters: [`META_REVISION`], [`META_COMPACTED`].
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The store's current revision.
pub const META_REVISION: &str = "revision";
/// Highest revision whose log entry was dropped; events after it are all in the log.
pub const META_COMPACTED: &str = "compacted";

pub fn meta_value(
    table: &impl ReadableTable<&'static str, u64>,
    name: &str,
) -> Result<u64, StoreError> {
    Ok(table.get(name)?.map_or(0, |v| v.value()))
}

pub fn read_kv(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<KeyValue>, StoreError> {
    match table.get(key)? {
        Some(bytes) => Ok(Some(decode_kv(key, bytes.value())?)),
        None => Ok(None),
    }
}

/// Calls `visit` for each key under `prefix` in key order with its raw stored record.
pub fn scan_prefix(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
    mut visit: impl FnMut(&str, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for entry in table.range::<&str>(prefix..)? {
        let (key, value) = entry?;
        let key = key.value();
        if !key.starts_with(prefix) {
            break;
        }
        visit(key, value.value())?;
    }
    Ok(())
}

/// The logged events with revision in `after+1 ..= upto`, in order.
pub fn read_log(
    table: &impl ReadableTable<u64, &'static [u8]>,
    after: Revision,
    upto: Revision,
) -> Result<Vec<Event>, StoreError> {
    let mut events = Vec::new();
    if upto <= after {
        return Ok(events);
    }
    for entry in table.range(after + 1..=upto)? {
        let (revision, bytes) = entry?;
        events.extend(decode_events(revision.value(), bytes.value())?);
    }
    Ok(events)
}

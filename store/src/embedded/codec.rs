//! Byte layouts of the embedded store's records: a key's stored value (revisions + bytes) and
//! one event-log entry (all changes of one revision). Little-endian, length-prefixed; every
//! decode checks lengths so a damaged record is an error, never a panic.

use crate::error::StoreError;
use crate::types::{Event, EventKind, KeyValue, Revision};

const KV_TABLE: &str = "kv";
const LOG_TABLE: &str = "event log";
const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;

/// Stored value of a key: create revision, mod revision, then the value bytes.
pub fn encode_kv(create_revision: Revision, mod_revision: Revision, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create_revision.to_le_bytes());
    out.extend_from_slice(&mod_revision.to_le_bytes());
    out.extend_from_slice(value);
    out
}

pub fn decode_kv(key: &str, bytes: &[u8]) -> Result<KeyValue, StoreError> {
    let mut reader = Reader::new(bytes, KV_TABLE);
    let create_revision = reader.u64("create_revision")?;
    let mod_revision = reader.u64("mod_revision")?;
    Ok(KeyValue {
        key: key.to_string(),
        value: reader.rest().to_vec(),
        create_revision,
        mod_revision,
    })
}

/// One log entry: the number of events, then per event its kind, key and (for puts) value.
/// The revision is the table key, so it is not repeated here.
pub fn encode_events(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for event in events {
        match (&event.kind, &event.value) {
            (EventKind::Put, value) => {
                out.push(KIND_PUT);
                put_bytes(&mut out, event.key.as_bytes());
                put_bytes(&mut out, value.as_deref().unwrap_or_default());
            }
            (EventKind::Delete, _) => {
                out.push(KIND_DELETE);
                put_bytes(&mut out, event.key.as_bytes());
            }
        }
    }
    out
}

pub fn decode_events(revision: Revision, bytes: &[u8]) -> Result<Vec<Event>, StoreError> {
    let mut reader = Reader::new(bytes, LOG_TABLE);
    let count = reader.u32("event count")?;
    let mut events = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let kind = reader.u8("event kind")?;
        let key = reader.string("event key")?;
        let (kind, value) = match kind {
            KIND_PUT => (EventKind::Put, Some(reader.bytes("event value")?.to_vec())),
            KIND_DELETE => (EventKind::Delete, None),
            other => return Err(reader.corrupt(format!("event kind {other} is unknown"))),
        };
        events.push(Event {
            revision,
            kind,
            key,
            value,
        });
    }
    Ok(events)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
    table: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], table: &'static str) -> Self {
        Self { bytes, table }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            reason,
        }
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(self.corrupt(format!(
                "{field}: needs {n} bytes, {} left",
                self.bytes.len()
            )));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self, field: &str) -> Result<u8, StoreError> {
        Ok(self.take(1, field)?[0])
    }

    fn u32(&mut self, field: &str) -> Result<u32, StoreError> {
        let raw = self.take(4, field)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
    }

    fn u64(&mut self, field: &str) -> Result<u64, StoreError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_le_bytes(raw))
    }

    fn bytes(&mut self, field: &str) -> Result<&'a [u8], StoreError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }

    fn string(&mut self, field: &str) -> Result<String, StoreError> {
        let raw = self.bytes(field)?;
        String::from_utf8(raw.to_vec())
            .map_err(|e| self.corrupt(format!("{field} is not UTF-8: {e}")))
    }

    fn rest(self) -> &'a [u8] {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_round_trip() {
        let bytes = encode_kv(3, 9, b"{\"a\":1}");
        let kv = decode_kv("/k", &bytes).unwrap();
        assert_eq!((kv.create_revision, kv.mod_revision), (3, 9));
        assert_eq!(kv.value, b"{\"a\":1}");
    }

    #[test]
    fn short_kv_is_corrupt() {
        let err = decode_kv("/k", &[1, 2, 3]).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { table: "kv", .. }),
            "{err}"
        );
    }

    #[test]
    fn events_round_trip() {
        let events = vec![
            Event {
                revision: 5,
                kind: EventKind::Put,
                key: "/a".into(),
                value: Some(b"1".to_vec()),
            },
            Event {
                revision: 5,
                kind: EventKind::Delete,
                key: "/b".into(),
                value: None,
            },
            Event {
                revision: 5,
                kind: EventKind::Put,
                key: "/c".into(),
                value: Some(vec![]),
            },
        ];
        assert_eq!(decode_events(5, &encode_events(&events)).unwrap(), events);
    }

    #[test]
    fn truncated_events_are_corrupt() {
        let events = vec![Event {
            revision: 1,
            kind: EventKind::Put,
            key: "/a".into(),
            value: Some(b"value".to_vec()),
        }];
        let bytes = encode_events(&events);
        for cut in 0..bytes.len() {
            assert!(decode_events(1, &bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}

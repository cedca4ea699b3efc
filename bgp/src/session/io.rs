//! The byte side of a connection: a reader task that frames, validates and decodes messages
//! (adapting to what the peer's OPEN negotiates), and a writer task that drains a queue.
//!
//! The reader takes a credit for every UPDATE it hands on, and the core returns it once the
//! UPDATE is in the RIB: a peer that sends faster than the RIB takes routes in waits in its
//! own TCP window, instead of in decoded UPDATEs piling up in our memory (a full table
//! decoded ahead of the RIB took a fifth of a receiver's peak memory).

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::packet::frame::{split_message, EXTENDED_MAX_LEN, MAX_LEN};
use crate::packet::{decode_body, Capability, DecodeCtx, Message, WireError};

/// UPDATEs of one connection decoded but not yet in the RIB, at most: enough to keep the RIB
/// busy while the reader decodes the next ones.
pub const UPDATES_IN_FLIGHT: usize = 64;

/// One UPDATE's place among [`UPDATES_IN_FLIGHT`]; dropping it (once the UPDATE is imported)
/// lets the reader decode another.
#[derive(Debug)]
pub struct Credit {
    _permit: OwnedSemaphorePermit,
}

/// A connection's credits.
pub fn credits() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(UPDATES_IN_FLIGHT))
}

/// What the reader reports.
#[derive(Debug)]
pub enum Incoming {
    /// A message, with its credit if it is an UPDATE.
    Message(Message, Option<Credit>),
    Error(WireError),
    Closed(String),
}

/// Read until the connection ends or a message fails validation.
pub async fn read_loop(
    mut rd: OwnedReadHalf,
    local_as: u32,
    tx: mpsc::Sender<Incoming>,
    credits: Arc<Semaphore>,
) {
    let mut buf = BytesMut::with_capacity(1 << 16);
    let mut ctx = DecodeCtx {
        four_octet_as: false,
        ibgp: false,
    };
    let mut max_len = MAX_LEN;
    loop {
        loop {
            let (kind, len, msg) = match split_message(&buf, max_len) {
                Ok(Some((header, body))) => {
                    (header.kind, header.len, decode_body(header.kind, body, ctx))
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Incoming::Error(e)).await;
                    return;
                }
            };
            let _ = kind;
            buf.advance(len);
            match msg {
                Ok(Message::Open(open)) => {
                    // We always offer 4-octet AS and extended messages, so the peer's OPEN decides.
                    ctx.four_octet_as = open
                        .capabilities
                        .iter()
                        .any(|c| matches!(c, Capability::FourOctetAs(_)));
                    ctx.ibgp = open.asn() == local_as;
                    if open.has(&Capability::ExtendedMessage) {
                        max_len = EXTENDED_MAX_LEN;
                    }
                    if tx
                        .send(Incoming::Message(Message::Open(open), None))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(m) => {
                    let credit = match m {
                        Message::Update(_) => match credits.clone().acquire_owned().await {
                            Ok(permit) => Some(Credit { _permit: permit }),
                            Err(_) => return,
                        },
                        _ => None,
                    };
                    if tx.send(Incoming::Message(m, credit)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Incoming::Error(e)).await;
                    return;
                }
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = tx
                    .send(Incoming::Closed("peer closed the connection".into()))
                    .await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Incoming::Closed(format!("read failed: {e}"))).await;
                return;
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(1 << 16);
        }
    }
}

/// Write queued buffers in order; when the queue closes, flush and shut the socket down.
pub async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(bytes) = rx.recv().await {
        if let Err(e) = wr.write_all(&bytes).await {
            tracing::debug!(error = %e, "write failed");
            return;
        }
    }
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::{TcpListener, TcpStream};

    /// An empty UPDATE (an IPv4 End-of-RIB): header, no withdrawals, no attributes.
    fn empty_update() -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&[0, 23, 2, 0, 0, 0, 0]);
        m
    }

    /// Messages arriving within `wait`, their credits kept.
    async fn drain(rx: &mut mpsc::Receiver<Incoming>, wait: Duration) -> Vec<Option<Credit>> {
        let mut got = Vec::new();
        while let Ok(Some(Incoming::Message(_, credit))) =
            tokio::time::timeout(wait, rx.recv()).await
        {
            got.push(credit);
        }
        got
    }

    #[tokio::test]
    async fn the_reader_stops_at_its_credits_until_updates_are_imported() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        let (rd, _wr) = ours.into_split();
        let sent = UPDATES_IN_FLIGHT * 3;
        peer.write_all(&empty_update().repeat(sent)).await.unwrap();
        // A queue far longer than the credits, so only the credits can hold the reader back.
        let (tx, mut rx) = mpsc::channel(sent * 2);
        let reader = tokio::spawn(read_loop(rd, 65001, tx, credits()));
        let held = drain(&mut rx, Duration::from_millis(300)).await;
        assert_eq!(held.len(), UPDATES_IN_FLIGHT);
        assert!(held.iter().all(Option::is_some));
        drop(held);
        let rest = drain(&mut rx, Duration::from_millis(300)).await;
        assert_eq!(rest.len(), UPDATES_IN_FLIGHT);
        drop(rest);
        let last = drain(&mut rx, Duration::from_millis(300)).await;
        assert_eq!(last.len(), UPDATES_IN_FLIGHT);
        reader.abort();
    }
}

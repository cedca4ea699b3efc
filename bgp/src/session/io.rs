//! The byte side of a connection: a reader task that frames, validates and decodes messages
//! (adapting to what the peer's OPEN negotiates), and a writer task that drains a queue.
//!
//! The reader hands UPDATEs on in batches (what one read of the socket holds, up to
//! [`BATCH_MAX`]) and takes a credit for each, which the core returns once they are in the
//! RIB: a peer that sends faster than the RIB takes routes in waits in its own TCP window,
//! instead of in decoded UPDATEs piling up in our memory (a full table decoded ahead of the
//! RIB took a fifth of a receiver's peak memory).

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::packet::frame::{split_message, EXTENDED_MAX_LEN, MAX_LEN};
use crate::packet::{decode_body, Capability, DecodeCtx, Message, Update, WireError};

/// UPDATEs of one connection decoded but not yet in the RIB, at most: enough to keep the RIB
/// busy while the reader decodes the next ones.
pub const UPDATES_IN_FLIGHT: usize = 128;

/// Most UPDATEs handed on together. What one read of the socket brings is decoded and handed
/// on at once, so a full table crosses to the RIB in a few hundred hand-overs instead of one
/// per UPDATE, each of which could wake a parked thread.
pub const BATCH_MAX: usize = UPDATES_IN_FLIGHT / 4;

/// The places of a batch of UPDATEs among [`UPDATES_IN_FLIGHT`]; dropping it (once they are
/// imported) lets the reader decode as many more.
#[derive(Debug)]
pub struct Credit {
    _permit: OwnedSemaphorePermit,
}

/// What the reader reports.
#[derive(Debug)]
pub enum Incoming {
    /// A message other than UPDATE.
    Message(Message),
    /// UPDATEs in the order received, with their credit.
    Updates(Vec<Update>, Credit),
    Error(WireError),
    Closed(String),
}

/// Read until the connection ends or a message fails validation.
pub async fn read_loop(mut rd: OwnedReadHalf, local_as: u32, tx: mpsc::Sender<Incoming>) {
    let credits = Arc::new(Semaphore::new(UPDATES_IN_FLIGHT));
    let mut buf = BytesMut::with_capacity(1 << 16);
    let mut ctx = DecodeCtx {
        four_octet_as: false,
        ibgp: false,
    };
    let mut max_len = MAX_LEN;
    let mut batch: Vec<Update> = Vec::with_capacity(BATCH_MAX);
    loop {
        loop {
            let (len, msg) = match split_message(&buf, max_len) {
                Ok(Some((header, body))) => (header.len, decode_body(header.kind, body, ctx)),
                Ok(None) => break,
                Err(e) => {
                    let _ = hand_on(&tx, &credits, &mut batch).await;
                    let _ = tx.send(Incoming::Error(e)).await;
                    return;
                }
            };
            buf.advance(len);
            if let Ok(Message::Update(update)) = msg {
                batch.push(*update);
                if batch.len() >= BATCH_MAX && !hand_on(&tx, &credits, &mut batch).await {
                    return;
                }
                continue;
            }
            // Anything else keeps its place after the UPDATEs before it.
            if !hand_on(&tx, &credits, &mut batch).await {
                return;
            }
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
                        .send(Incoming::Message(Message::Open(open)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(m) => {
                    if tx.send(Incoming::Message(m)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Incoming::Error(e)).await;
                    return;
                }
            }
        }
        // The buffer is spent: what it held goes on before the socket is read again.
        if !hand_on(&tx, &credits, &mut batch).await {
            return;
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

/// Hand the batched UPDATEs on, once there are credits for them all; false when the
/// session is gone.
async fn hand_on(
    tx: &mpsc::Sender<Incoming>,
    credits: &Arc<Semaphore>,
    batch: &mut Vec<Update>,
) -> bool {
    if batch.is_empty() {
        return true;
    }
    // BATCH_MAX is below the credits there are, so a batch always gets its places.
    let Ok(permit) = credits.clone().acquire_many_owned(batch.len() as u32).await else {
        return false;
    };
    let updates = std::mem::replace(batch, Vec::with_capacity(BATCH_MAX));
    tx.send(Incoming::Updates(updates, Credit { _permit: permit }))
        .await
        .is_ok()
}

/// Write queued buffers in order; when the queue closes, flush and shut the socket down.
/// The buffers are shared (`Bytes`): UPDATEs packed once for an update group are queued to
/// every member by reference, so a member that reads slowly holds no copy of its own.
pub async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
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

    /// A loopback connection: the peer's end, and our read and write halves.
    async fn connected() -> (TcpStream, OwnedReadHalf, OwnedWriteHalf) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        let (rd, wr) = ours.into_split();
        (peer, rd, wr)
    }

    /// UPDATEs arriving within `wait`, and their credits, kept.
    async fn drain(rx: &mut mpsc::Receiver<Incoming>, wait: Duration) -> (usize, Vec<Credit>) {
        let (mut updates, mut credits) = (0, Vec::new());
        while let Ok(Some(Incoming::Updates(batch, credit))) =
            tokio::time::timeout(wait, rx.recv()).await
        {
            assert!(batch.len() <= BATCH_MAX);
            updates += batch.len();
            credits.push(credit);
        }
        (updates, credits)
    }

    #[tokio::test]
    async fn updates_are_handed_on_together_and_other_messages_keep_their_place() {
        let (mut peer, rd, _wr) = connected().await;
        let mut keepalive = vec![0xff; 16];
        keepalive.extend_from_slice(&[0, 19, 4]);
        let mut bytes = empty_update().repeat(3);
        bytes.extend_from_slice(&keepalive);
        bytes.extend_from_slice(&empty_update().repeat(BATCH_MAX + 1));
        peer.write_all(&bytes).await.unwrap();
        let (tx, mut rx) = mpsc::channel(64);
        let reader = tokio::spawn(read_loop(rd, 65001, tx));
        let mut seen = Vec::new();
        while let Ok(Some(incoming)) =
            tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
        {
            seen.push(match incoming {
                Incoming::Updates(batch, _) => format!("{} updates", batch.len()),
                Incoming::Message(Message::Keepalive) => "keepalive".to_string(),
                other => format!("{other:?}"),
            });
        }
        // One read may end mid-stream, so the batches may split further, never reorder.
        let mut merged: Vec<String> = Vec::new();
        for item in seen {
            match (merged.last_mut(), item.strip_suffix(" updates")) {
                (Some(last), Some(n)) if last.ends_with(" updates") => {
                    let before: usize = last.trim_end_matches(" updates").parse().unwrap();
                    *last = format!("{} updates", before + n.parse::<usize>().unwrap());
                }
                _ => merged.push(item),
            }
        }
        assert_eq!(
            merged,
            vec![
                "3 updates".to_string(),
                "keepalive".to_string(),
                format!("{} updates", BATCH_MAX + 1)
            ]
        );
        reader.abort();
    }

    #[tokio::test]
    async fn the_reader_stops_at_its_credits_until_updates_are_imported() {
        let (mut peer, rd, _wr) = connected().await;
        let sent = UPDATES_IN_FLIGHT * 3;
        peer.write_all(&empty_update().repeat(sent)).await.unwrap();
        // A queue far longer than the credits, so only the credits can hold the reader back.
        let (tx, mut rx) = mpsc::channel(sent * 2);
        let reader = tokio::spawn(read_loop(rd, 65001, tx));
        let (first, held) = drain(&mut rx, Duration::from_millis(300)).await;
        assert_eq!(first, UPDATES_IN_FLIGHT);
        drop(held);
        let (second, held) = drain(&mut rx, Duration::from_millis(300)).await;
        assert_eq!(second, UPDATES_IN_FLIGHT);
        drop(held);
        let (third, _held) = drain(&mut rx, Duration::from_millis(300)).await;
        assert_eq!(third, UPDATES_IN_FLIGHT);
        reader.abort();
    }
}

//! The byte side of a connection: a reader task that frames, validates and decodes messages
//! (adapting to what the peer's OPEN negotiates), and a writer task that drains a queue.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::packet::frame::{split_message, EXTENDED_MAX_LEN, MAX_LEN};
use crate::packet::{decode_body, Capability, DecodeCtx, Message, WireError};

/// What the reader reports.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    Error(WireError),
    Closed(String),
}

/// Read until the connection ends or a message fails validation.
pub async fn read_loop(mut rd: OwnedReadHalf, local_as: u32, tx: mpsc::Sender<Incoming>) {
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

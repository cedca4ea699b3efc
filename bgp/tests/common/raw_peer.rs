//! A minimal BGP peer over a plain socket, written with the crate's codec: it connects from a
//! chosen loopback address (127.0.x.y needs no root), opens a session, sends what a test
//! tells it and reads what comes back. Used where a test needs hundreds of distinct peers, or
//! a peer that vanishes without a NOTIFICATION.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use fabric_bgp::packet::encode::EncodeCtx;
use fabric_bgp::packet::frame::split_message;
use fabric_bgp::packet::{
    decode_body, Afi, AsPath, Capability, DecodeCtx, GracefulRestart, Message, Notification, Open,
    PathAttrs, Prefix, Update,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long any single read or connect may take before the test fails.
const IO_WAIT: Duration = Duration::from_secs(10);

/// OPEN parameters of a raw peer.
#[derive(Debug, Clone)]
pub struct RawOpen {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// Graceful-restart capability with this restart time, and the R bit.
    pub graceful_restart: Option<(u16, bool)>,
}

impl RawOpen {
    pub fn new(asn: u32, router_id: Ipv4Addr) -> RawOpen {
        RawOpen {
            asn,
            router_id,
            graceful_restart: None,
        }
    }

    fn message(&self) -> Message {
        let mut caps = vec![
            Capability::Multiprotocol {
                afi: Afi::Ipv4.code(),
                safi: 1,
            },
            Capability::FourOctetAs(self.asn),
        ];
        if let Some((restart_time, restarting)) = self.graceful_restart {
            caps.push(Capability::GracefulRestart(GracefulRestart {
                restarting,
                restart_time,
                families: vec![(Afi::Ipv4, true)],
            }));
        }
        Message::Open(Open::new(self.asn, 90, self.router_id, caps))
    }
}

pub struct RawPeer {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A TCP connection from `src` to `dst`, with an MD5 key if given.
pub async fn connect(
    src: IpAddr,
    dst: SocketAddr,
    md5: Option<&str>,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(src, 0))?;
    if let Some(key) = md5 {
        fabric_bgp::session::socket::set_md5(&socket, dst.ip(), key)?;
    }
    match tokio::time::timeout(IO_WAIT, socket.connect(dst)).await {
        Ok(stream) => stream,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        )),
    }
}

impl RawPeer {
    /// Connect and bring the session to Established (OPEN, KEEPALIVE both ways).
    pub async fn establish(src: IpAddr, dst: SocketAddr, open: &RawOpen) -> RawPeer {
        let stream = connect(src, dst, None)
            .await
            .unwrap_or_else(|e| panic!("connect from {src}: {e}"));
        Self::establish_on(stream, open).await
    }

    pub async fn establish_on(stream: TcpStream, open: &RawOpen) -> RawPeer {
        let mut peer = RawPeer {
            stream,
            buf: Vec::new(),
        };
        peer.send(&open.message()).await;
        match peer.read().await {
            Some(Message::Open(_)) => {}
            other => panic!("expected the speaker's OPEN, got {other:?}"),
        }
        peer.send(&Message::Keepalive).await;
        match peer.read().await {
            Some(Message::Keepalive) => {}
            other => panic!("expected KEEPALIVE, got {other:?}"),
        }
        peer
    }

    /// Wrap a connection without any exchange (to see what the speaker does first).
    pub fn raw(stream: TcpStream) -> RawPeer {
        RawPeer {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, msg: &Message) {
        let bytes = msg.to_bytes(EncodeCtx::default());
        self.stream.write_all(&bytes).await.expect("write");
    }

    /// Announce `prefixes` with an empty AS_PATH (iBGP) and `next_hop`.
    pub async fn announce(&mut self, prefixes: &[Prefix], next_hop: IpAddr) {
        let update = Update {
            attrs: Some(PathAttrs {
                as_path: AsPath::default(),
                next_hop: Some(next_hop),
                ..PathAttrs::default()
            }),
            nlri: prefixes.to_vec(),
            ..Update::default()
        };
        self.send(&Message::Update(Box::new(update))).await;
    }

    /// An IPv4 End-of-RIB (an empty UPDATE).
    pub async fn end_of_rib(&mut self) {
        self.send(&Message::Update(Box::default())).await;
    }

    /// The next message; None when the connection closed (or was reset).
    pub async fn read(&mut self) -> Option<Message> {
        loop {
            if let Some((header, body)) = split_message(&self.buf, 4096).expect("valid framing") {
                let len = header.len;
                let ctx = DecodeCtx {
                    four_octet_as: true,
                    ibgp: true,
                };
                let msg = decode_body(header.kind, body, ctx).expect("valid message");
                self.buf.drain(..len);
                return Some(msg);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(IO_WAIT, self.stream.read(&mut chunk))
                .await
                .expect("the speaker answers within the wait")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Read until a NOTIFICATION (skipping KEEPALIVEs and UPDATEs) or the end of the stream.
    pub async fn notification(&mut self) -> Option<Notification> {
        loop {
            match self.read().await? {
                Message::Notification(n) => return Some(n),
                _ => continue,
            }
        }
    }
}

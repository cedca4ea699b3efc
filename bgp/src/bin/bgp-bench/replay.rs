//! A BIRD sender's UPDATE stream, recorded once and replayed at wire speed to each receiver.
//!
//! Against a live BIRD sender both receivers go at the sender's pace (its CPU is the wall
//! time), so the receiving clock measures the sender. Replaying the very bytes BIRD sent, its
//! OPEN and every UPDATE up to its End-of-RIB, as fast as the receiver reads them, leaves the
//! receiver as the only thing timed: the same routes, packed as BIRD packs them, from the same
//! address, AS and router id, with nothing computed on the sending side.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fabric_bgp::packet::encode::EncodeCtx;
use fabric_bgp::packet::frame::{msg_type, split_message, MAX_LEN};
use fabric_bgp::packet::update::decode_update;
use fabric_bgp::packet::{Capability, DecodeCtx, GracefulRestart, Message, Open};

use super::lab::Ns;

/// What a BIRD sender sent on one session, as raw messages.
pub struct Recording {
    /// The sender's OPEN, header included.
    pub open: Vec<u8>,
    /// Every UPDATE, End-of-RIB included, back to back as on the wire.
    pub updates: Vec<u8>,
    pub messages: u64,
    pub prefixes: u64,
}

/// Longest silence from the peer while a session is being opened or recorded.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// Move the calling thread into the network namespace named `ns`: its sockets then live there.
fn enter(ns: &str) -> Result<()> {
    let path = format!("/var/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: setns on a valid namespace fd affects only this thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("entering {path}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads whole BGP messages off a blocking socket.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    /// The next message (header included), or None once the peer has closed.
    fn next(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some((header, _)) = split_message(&self.buf, MAX_LEN)? {
                return Ok(Some(self.buf.drain(..header.len).collect()));
            }
            let mut chunk = [0u8; 1 << 16];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading from the BGP peer"),
            }
        }
    }

    /// The next message that is not a KEEPALIVE; an error if the peer closes first.
    fn next_non_keepalive(&mut self) -> Result<Vec<u8>> {
        loop {
            match self.next()? {
                Some(m) if m[18] == msg_type::KEEPALIVE => {}
                Some(m) => return Ok(m),
                None => bail!("the peer closed the session"),
            }
        }
    }

    /// Wait for the peer's KEEPALIVE that completes the open handshake.
    fn keepalive(&mut self) -> Result<()> {
        match self.next()? {
            Some(m) if m[18] == msg_type::KEEPALIVE => Ok(()),
            Some(m) => bail!("expected KEEPALIVE, got message type {}", m[18]),
            None => bail!("the peer closed the session before KEEPALIVE"),
        }
    }
}

fn keepalive() -> Vec<u8> {
    Message::Keepalive.to_bytes(EncodeCtx::default())
}

/// Listen on `addr`:179 in `ns` and record what the first peer to connect (a BIRD sender,
/// started after this returns) sends: its OPEN, then UPDATEs until `n` prefixes and its
/// End-of-RIB (or half a second of quiet after the `n`th). We answer as a receiver of AS
/// `asn`, router id `addr`, offering 4-octet AS and graceful restart (so the sender ends its
/// table with End-of-RIB), the same options our speaker and a BIRD receiver negotiate with it.
pub fn record(ns: &Ns, addr: Ipv4Addr, asn: u32, n: u64) -> Result<JoinHandle<Result<Recording>>> {
    let (ready_tx, ready) = mpsc::channel();
    let ns = ns.0.clone();
    let handle = std::thread::spawn(move || {
        let listener = enter(&ns)
            .and_then(|()| TcpListener::bind((addr, 179)).context("listening on port 179"));
        let listener = match listener {
            Ok(l) => {
                let _ = ready_tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = ready_tx.send(Err(format!("{e:#}")));
                return Err(e);
            }
        };
        let (stream, _) = listener.accept().context("accepting the sender")?;
        record_session(stream, addr, asn, n)
    });
    match ready.recv_timeout(READ_LIMIT) {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => bail!("recorder: {e}"),
        Err(_) => bail!("the recorder did not start listening"),
    }
}

fn record_session(stream: TcpStream, addr: Ipv4Addr, asn: u32, n: u64) -> Result<Recording> {
    stream.set_read_timeout(Some(READ_LIMIT))?;
    let mut wr = stream.try_clone()?;
    let mut rd = Reader {
        stream,
        buf: Vec::new(),
    };
    let open = rd.next_non_keepalive()?;
    if open[18] != msg_type::OPEN {
        bail!("the sender's first message is type {}, not OPEN", open[18]);
    }
    let ours = Open::new(
        asn,
        90,
        addr,
        vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::RouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                restarting: false,
                restart_time: 120,
                families: vec![(fabric_bgp::packet::Afi::Ipv4, true)],
            }),
            Capability::FourOctetAs(asn),
        ],
    );
    wr.write_all(&Message::Open(ours).to_bytes(EncodeCtx::default()))?;
    wr.write_all(&keepalive())?;
    let ctx = DecodeCtx {
        four_octet_as: true,
        ibgp: false,
    };
    let mut rec = Recording {
        open,
        updates: Vec::new(),
        messages: 0,
        prefixes: 0,
    };
    let deadline = Instant::now() + READ_LIMIT * 4;
    while Instant::now() < deadline {
        if rec.prefixes >= n {
            rd.stream
                .set_read_timeout(Some(Duration::from_millis(500)))?;
        }
        let msg = match rd.next() {
            Ok(Some(m)) => m,
            Ok(None) => bail!("the sender closed after {} prefixes", rec.prefixes),
            Err(_) if rec.prefixes >= n => break,
            Err(e) => return Err(e),
        };
        match msg[18] {
            msg_type::KEEPALIVE => continue,
            msg_type::UPDATE => {}
            other => bail!("the sender sent message type {other} while recording"),
        }
        let update = decode_update(&msg[19..], ctx).context("decoding the sender's UPDATE")?;
        rec.prefixes += update.nlri.len() as u64;
        rec.messages += 1;
        rec.updates.extend_from_slice(&msg);
        if rec.prefixes >= n && update.end_of_rib().is_some() {
            break;
        }
    }
    if rec.prefixes != n {
        bail!("recorded {} prefixes, expected {n}", rec.prefixes);
    }
    Ok(rec)
}

/// Connect to a receiver that may still be starting: refused connections are retried every
/// 20 ms for up to [`READ_LIMIT`].
fn connect(peer: Ipv4Addr) -> Result<TcpStream> {
    let deadline = Instant::now() + READ_LIMIT;
    loop {
        match TcpStream::connect((peer, 179)) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).context("connecting to the receiver"),
        }
    }
}

/// A replay in progress: the session is Established and the UPDATEs are being written.
pub struct Replay {
    pub established: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Replay {
    /// Close the session (after the receiver holds everything) and report a failed write.
    pub fn finish(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("the replay thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Connect from `ns` to `peer`:179 (a passive receiver), open the session with the recorded
/// OPEN, and once it is Established write every recorded UPDATE as fast as the receiver reads.
/// Returns when the session is Established; the writing goes on in the background.
pub fn replay(ns: &Ns, peer: Ipv4Addr, rec: Arc<Recording>) -> Result<Replay> {
    let (up_tx, up) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let ns = ns.0.clone();
    let thread = std::thread::spawn(move || -> Result<()> {
        let opened = (|| -> Result<(TcpStream, Reader)> {
            enter(&ns)?;
            let stream = connect(peer)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(READ_LIMIT))?;
            let mut wr = stream.try_clone()?;
            let mut rd = Reader {
                stream,
                buf: Vec::new(),
            };
            wr.write_all(&rec.open)?;
            let open = rd.next_non_keepalive()?;
            if open[18] != msg_type::OPEN {
                bail!("the receiver answered with message type {}", open[18]);
            }
            wr.write_all(&keepalive())?;
            rd.keepalive()?;
            Ok((wr, rd))
        })();
        let (mut wr, mut rd) = match opened {
            Ok(s) => {
                let _ = up_tx.send(Ok(Instant::now()));
                s
            }
            Err(e) => {
                let _ = up_tx.send(Err(format!("{e:#}")));
                return Err(e);
            }
        };
        wr.write_all(&rec.updates).context("writing the UPDATEs")?;
        // Hold the session open, reading what the receiver sends, until told to stop; a
        // KEEPALIVE every 20 s keeps even a slow receiver's hold timer happy.
        rd.stream
            .set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut last_keepalive = Instant::now();
        let deadline = Instant::now() + READ_LIMIT * 40;
        while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
            let mut sink = [0u8; 4096];
            match rd.stream.read(&mut sink) {
                Ok(0) => bail!("the receiver closed the session"),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading from the receiver"),
            }
            if last_keepalive.elapsed() > Duration::from_secs(20) {
                wr.write_all(&keepalive())?;
                last_keepalive = Instant::now();
            }
        }
        Ok(())
    });
    match up.recv_timeout(READ_LIMIT) {
        Ok(Ok(established)) => Ok(Replay {
            established,
            stop,
            thread: Some(thread),
        }),
        Ok(Err(e)) => bail!("replay: {e}"),
        Err(_) => bail!("the replayed session did not come up"),
    }
}

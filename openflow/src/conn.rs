//! A tokio OpenFlow 1.3 connection to one switch: HELLO and version negotiation (1.3 only),
//! FEATURES, ECHO answered in the background, and requests multiplexed by xid.
//!
//! Every request gets a fresh xid and a future of its reply (multipart replies gathered into
//! one); an ERROR carrying that xid completes the future with [`ConnError::Switch`]. Messages
//! without replies (FLOW_MODs) are sent in batches: either fenced by a BARRIER
//! ([`Connection::send_batch`]) or inside an ONF bundle committed atomically
//! ([`Connection::send_bundle`]). Errors the switch sends for a batch name the FLOW_MOD they
//! refer to, through its xid.
//!
//! One task reads from the socket; writers share the write half under a lock, and a batch is
//! written in one piece so other requests cannot interleave with it.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs, UnixStream};
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;
use tracing::{debug, trace, warn};

use crate::codec::{
    self, bundle_flags, AggregateStats, BundleAdd, BundleControl, BundleCtrlType, DecodeError,
    EncodeError, ErrorMsg, Features, FlowMod, FlowStats, FlowStatsReply, FlowStatsRequest, Hello,
    Message, UndecodedFlow, OFP_VERSION,
};

/// How long the HELLO/FEATURES exchange may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on any one request (a batch counts as one).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request, a batch or the connection failed.
#[derive(Debug, Error)]
pub enum ConnError {
    #[error("connecting to {target}: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("undecodable message from the switch: {0}")]
    Decode(#[from] DecodeError),
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    #[error("cannot encode {:?} {}: {error}", flow_mod.command, flow_mod.flow())]
    Unencodable {
        flow_mod: Box<FlowMod>,
        error: EncodeError,
    },
    #[error("handshake: {0}")]
    Handshake(String),
    #[error("the switch answered with an error: {0}")]
    Switch(ErrorMsg),
    #[error("the switch rejected {} flow mod(s){}: {}", failures.len(),
        if *atomic { ", nothing was applied" } else { "" },
        failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Rejected {
        failures: Vec<FlowModFailure>,
        /// True when the batch was a bundle, so none of it took effect.
        atomic: bool,
    },
    #[error("unexpected reply {0}")]
    Unexpected(String),
    #[error("message type {0} has no reply; send it in a batch")]
    NoReply(u8),
    #[error("no reply to {0} within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("connection closed")]
    Closed,
}

/// A FLOW_MOD the switch refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowModFailure {
    pub flow_mod: FlowMod,
    pub error: ErrorMsg,
}

impl fmt::Display for FlowModFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} for {:?} {}",
            self.error,
            self.flow_mod.command,
            self.flow_mod.flow()
        )
    }
}

type ReplyTx = oneshot::Sender<Result<Message, ConnError>>;
type ErrorSink = Arc<StdMutex<Vec<(u32, ErrorMsg)>>>;

/// What the reader does with a message carrying a given xid.
enum Pending {
    /// A request waiting for its reply; flow-stats parts gather in `stats`.
    Reply {
        tx: ReplyTx,
        stats: Vec<Result<FlowStats, UndecodedFlow>>,
    },
    /// A message of a batch: no reply expected, an error goes to the batch's sink.
    Silent(ErrorSink),
}

struct Shared {
    writer: Mutex<WriteHalf<Box<dyn Stream>>>,
    pending: StdMutex<HashMap<u32, Pending>>,
    next_xid: AtomicU32,
    closed: std::sync::atomic::AtomicBool,
}

/// Anything a connection can run over (unix or TCP socket, or an in-memory pipe in tests).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Reads whole OpenFlow messages off a byte stream.
struct FrameReader {
    reader: ReadHalf<Box<dyn Stream>>,
    buf: BytesMut,
}

impl FrameReader {
    /// The next message, `None` at a clean end of stream.
    async fn next(&mut self) -> Result<Option<Vec<u8>>, ConnError> {
        loop {
            if let Some(n) = codec::frame_len(&self.buf)? {
                let frame = self.buf[..n].to_vec();
                self.buf.advance(n);
                return Ok(Some(frame));
            }
            self.buf.reserve(65536);
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnError::Io(std::io::ErrorKind::UnexpectedEof.into()))
                };
            }
        }
    }
}

/// An OpenFlow 1.3 session with a switch.
pub struct Connection {
    shared: Arc<Shared>,
    features: Features,
    reader: JoinHandle<()>,
    request_timeout: Duration,
    next_bundle: AtomicU32,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects to a switch's unix socket (OVS: `<rundir>/<bridge>.mgmt`).
    pub async fn connect(path: impl AsRef<Path>) -> Result<Connection, ConnError> {
        let path = path.as_ref();
        let s = UnixStream::connect(path)
            .await
            .map_err(|source| ConnError::Connect {
                target: path.display().to_string(),
                source,
            })?;
        Self::handshake(Box::new(s)).await
    }

    /// Connects to a switch listening on TCP (OVS: `ovs-vsctl set-controller ... ptcp:PORT`).
    pub async fn connect_tcp(
        addr: impl ToSocketAddrs + fmt::Debug,
    ) -> Result<Connection, ConnError> {
        let target = format!("{addr:?}");
        let s = TcpStream::connect(addr)
            .await
            .map_err(|source| ConnError::Connect { target, source })?;
        s.set_nodelay(true)?;
        Self::handshake(Box::new(s)).await
    }

    /// Runs the session over an already connected stream.
    pub async fn from_stream(stream: impl Stream) -> Result<Connection, ConnError> {
        Self::handshake(Box::new(stream)).await
    }

    async fn handshake(stream: Box<dyn Stream>) -> Result<Connection, ConnError> {
        let (r, w) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            writer: Mutex::new(w),
            pending: StdMutex::new(HashMap::new()),
            next_xid: AtomicU32::new(1),
            closed: false.into(),
        });
        let mut frames = FrameReader {
            reader: r,
            buf: BytesMut::new(),
        };
        let hs = async {
            let xid = shared.xid();
            shared
                .write(&codec::encode(&Message::Hello(Hello::of13()), xid)?)
                .await?;
            let frame = frames.next().await?.ok_or(ConnError::Closed)?;
            let (h, msg) = codec::decode(&frame)?;
            let Message::Hello(hello) = msg else {
                return Err(ConnError::Handshake(format!(
                    "expected HELLO, got message type {}",
                    h.msg_type
                )));
            };
            let ok = match hello.versions {
                Some(bitmap) => bitmap & (1 << OFP_VERSION) != 0,
                None => h.version >= OFP_VERSION,
            };
            if !ok {
                let err = ErrorMsg {
                    err_type: 0,
                    code: 0,
                    experimenter: None,
                    data: b"this controller speaks OpenFlow 1.3 (0x04) only".to_vec(),
                };
                let _ = shared
                    .write(&codec::encode(&Message::Error(err), xid)?)
                    .await;
                return Err(ConnError::Handshake(format!(
                    "switch does not speak OpenFlow 1.3 (hello version {:#04x}, bitmap {:?})",
                    h.version, hello.versions
                )));
            }
            let xid = shared.xid();
            shared
                .write(&codec::encode(&Message::FeaturesRequest, xid)?)
                .await?;
            // Until FEATURES_REPLY, answer echoes and skip anything else.
            loop {
                let frame = frames.next().await?.ok_or(ConnError::Closed)?;
                match codec::decode(&frame)? {
                    (h, Message::FeaturesReply(f)) if h.xid == xid => return Ok(f),
                    (h, Message::EchoRequest(d)) => {
                        shared
                            .write(&codec::encode(&Message::EchoReply(d), h.xid)?)
                            .await?
                    }
                    (_, Message::Error(e)) => return Err(ConnError::Switch(e)),
                    (h, _) => trace!(msg_type = h.msg_type, "ignored during handshake"),
                }
            }
        };
        let features = tokio::time::timeout(HANDSHAKE_TIMEOUT, hs)
            .await
            .map_err(|_| ConnError::Timeout("HELLO/FEATURES", HANDSHAKE_TIMEOUT))??;
        debug!(
            datapath_id = format_args!("{:016x}", features.datapath_id),
            n_tables = features.n_tables,
            "OpenFlow 1.3 session up"
        );
        let reader = tokio::spawn(read_loop(frames, shared.clone()));
        Ok(Connection {
            shared,
            features,
            reader,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            next_bundle: AtomicU32::new(1),
        })
    }

    /// The switch's FEATURES_REPLY (datapath id, number of tables).
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Changes the bound on each request and batch (default 30 s).
    pub fn set_request_timeout(&mut self, t: Duration) {
        self.request_timeout = t;
    }

    /// Whether the switch closed the session (or it failed).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Sends a request and waits for its reply: ECHO_REQUEST, FEATURES_REQUEST,
    /// BARRIER_REQUEST, a flow-stats request (all parts gathered into one reply), an aggregate
    /// request or a bundle control message. An ERROR for it is [`ConnError::Switch`].
    pub async fn request(&self, msg: Message) -> Result<Message, ConnError> {
        match &msg {
            Message::EchoRequest(_)
            | Message::FeaturesRequest
            | Message::BarrierRequest
            | Message::FlowStatsRequest(_)
            | Message::AggregateRequest(_)
            | Message::BundleControl(_) => {}
            other => return Err(ConnError::NoReply(other.msg_type())),
        }
        let xid = self.shared.xid();
        let bytes = codec::encode(&msg, xid)?;
        let rx = self.shared.expect_reply(xid);
        if let Err(e) = self.shared.write(&bytes).await {
            self.shared.forget(&[xid]);
            return Err(e);
        }
        self.wait(xid, rx, "request").await
    }

    async fn wait(
        &self,
        xid: u32,
        rx: oneshot::Receiver<Result<Message, ConnError>>,
        what: &'static str,
    ) -> Result<Message, ConnError> {
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ConnError::Closed),
            Err(_) => {
                self.shared.forget(&[xid]);
                Err(ConnError::Timeout(what, self.request_timeout))
            }
        }
    }

    /// ECHO round trip.
    pub async fn echo(&self, data: Vec<u8>) -> Result<Vec<u8>, ConnError> {
        match self.request(Message::EchoRequest(data)).await? {
            Message::EchoReply(d) => Ok(d),
            other => Err(ConnError::Unexpected(format!("{other:?}"))),
        }
    }

    /// BARRIER round trip: everything sent before has been processed.
    pub async fn barrier(&self) -> Result<(), ConnError> {
        match self.request(Message::BarrierRequest).await? {
            Message::BarrierReply => Ok(()),
            other => Err(ConnError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The installed flows a flow-stats request selects, decoded (entries the model cannot
    /// express come back as [`UndecodedFlow`]).
    pub async fn flow_stats(
        &self,
        req: FlowStatsRequest,
    ) -> Result<Vec<Result<FlowStats, UndecodedFlow>>, ConnError> {
        match self.request(Message::FlowStatsRequest(req)).await? {
            Message::FlowStatsReply(r) => Ok(r.flows),
            other => Err(ConnError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Totals (flows, packets, bytes) over the flows `req` selects, counted by the switch: one
    /// small reply however many flows there are (OFPMP_AGGREGATE, what `ovs-ofctl
    /// dump-aggregate` sends).
    pub async fn aggregate(&self, req: FlowStatsRequest) -> Result<AggregateStats, ConnError> {
        match self.request(Message::AggregateRequest(req)).await? {
            Message::AggregateReply(s) => Ok(s),
            other => Err(ConnError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Sends `mods` followed by a BARRIER, in one write, and waits for the barrier. Not
    /// atomic: if the switch refuses some, the others are applied, and the refused ones are
    /// reported in [`ConnError::Rejected`].
    pub async fn send_batch(&self, mods: Vec<FlowMod>) -> Result<(), ConnError> {
        let sink: ErrorSink = Arc::default();
        let (bytes, xids) = self.encode_silent(&mods, &sink, |fm| Message::FlowMod(fm.clone()))?;
        let result = self.fenced(bytes, &xids).await;
        self.shared.forget(&xids);
        result?;
        Self::failures(&mods, &xids, &sink, false)
    }

    /// Sends `mods` in one ONF bundle (ATOMIC | ORDERED): all of them take effect, or, if the
    /// switch refuses any, none does and the refused ones are reported in
    /// [`ConnError::Rejected`].
    pub async fn send_bundle(&self, mods: Vec<FlowMod>) -> Result<(), ConnError> {
        if mods.is_empty() {
            return Ok(());
        }
        let bundle_id = self.next_bundle.fetch_add(1, Ordering::Relaxed);
        let flags = bundle_flags::ATOMIC | bundle_flags::ORDERED;
        let ctrl = |ctrl| {
            Message::BundleControl(BundleControl {
                bundle_id,
                ctrl,
                flags,
            })
        };
        // No OPEN_REQUEST: the first BUNDLE_ADD opens the bundle (OpenFlow 1.4 allows an
        // implicit open and OVS does one), which saves a round trip to a busy switch.
        let sink: ErrorSink = Arc::default();
        let (bytes, xids) = self.encode_silent(&mods, &sink, |fm| {
            Message::BundleAdd(BundleAdd {
                bundle_id,
                flags,
                message: Box::new(Message::FlowMod(fm.clone())),
            })
        })?;
        // Errors found while adding (a match or action the switch refuses) arrive before the
        // barrier's reply; with any of them the bundle is discarded, not committed.
        if let Err(e) = self.fenced(bytes, &xids).await {
            self.shared.forget(&xids);
            self.discard(bundle_id, flags).await;
            return Err(e);
        }
        if !sink.lock().map(|s| s.is_empty()).unwrap_or(false) {
            self.shared.forget(&xids);
            self.discard(bundle_id, flags).await;
            return Self::failures(&mods, &xids, &sink, true);
        }
        let commit = self
            .expect_ctrl(
                ctrl(BundleCtrlType::CommitRequest),
                BundleCtrlType::CommitReply,
            )
            .await;
        self.shared.forget(&xids);
        match commit {
            Ok(()) => Ok(()),
            // A message that failed while committing is reported with its own xid first.
            Err(ConnError::Switch(e)) => {
                Self::failures(&mods, &xids, &sink, true)?;
                Err(ConnError::Switch(e))
            }
            Err(e) => Err(e),
        }
    }

    async fn discard(&self, bundle_id: u32, flags: u16) {
        let msg = Message::BundleControl(BundleControl {
            bundle_id,
            ctrl: BundleCtrlType::DiscardRequest,
            flags,
        });
        if let Err(e) = self.expect_ctrl(msg, BundleCtrlType::DiscardReply).await {
            warn!(bundle_id, error = %e, "discarding a failed bundle");
        }
    }

    async fn expect_ctrl(&self, msg: Message, want: BundleCtrlType) -> Result<(), ConnError> {
        match self.request(msg).await? {
            Message::BundleControl(c) if c.ctrl == want => Ok(()),
            other => Err(ConnError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Encodes each FLOW_MOD (through `wrap`) with its own xid registered as silent.
    fn encode_silent(
        &self,
        mods: &[FlowMod],
        sink: &ErrorSink,
        wrap: impl Fn(&FlowMod) -> Message,
    ) -> Result<(Vec<u8>, Vec<u32>), ConnError> {
        let mut bytes = Vec::new();
        let mut xids = Vec::with_capacity(mods.len());
        for fm in mods {
            let xid = self.shared.xid();
            match codec::encode(&wrap(fm), xid) {
                Ok(b) => bytes.extend_from_slice(&b),
                Err(error) => {
                    self.shared.forget(&xids);
                    return Err(ConnError::Unencodable {
                        flow_mod: Box::new(fm.clone()),
                        error,
                    });
                }
            }
            self.shared.expect_silent(xid, sink.clone());
            xids.push(xid);
        }
        Ok((bytes, xids))
    }

    /// Writes `bytes` and a BARRIER in one piece and waits for the barrier's reply.
    async fn fenced(&self, mut bytes: Vec<u8>, xids: &[u32]) -> Result<(), ConnError> {
        let xid = self.shared.xid();
        bytes.extend_from_slice(&codec::encode(&Message::BarrierRequest, xid)?);
        let rx = self.shared.expect_reply(xid);
        trace!(messages = xids.len(), bytes = bytes.len(), "batch");
        if let Err(e) = self.shared.write(&bytes).await {
            self.shared.forget(&[xid]);
            return Err(e);
        }
        match self.wait(xid, rx, "batch barrier").await? {
            Message::BarrierReply => Ok(()),
            other => Err(ConnError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Maps the errors gathered in `sink` back to the FLOW_MODs they name.
    fn failures(
        mods: &[FlowMod],
        xids: &[u32],
        sink: &ErrorSink,
        atomic: bool,
    ) -> Result<(), ConnError> {
        let errors = std::mem::take(&mut *sink.lock().map_err(|_| ConnError::Closed)?);
        if errors.is_empty() {
            return Ok(());
        }
        let failures = errors
            .into_iter()
            .filter_map(|(xid, error)| {
                let i = xids.iter().position(|&x| x == xid)?;
                Some(FlowModFailure {
                    flow_mod: mods[i].clone(),
                    error,
                })
            })
            .collect();
        Err(ConnError::Rejected { failures, atomic })
    }
}

impl Shared {
    fn xid(&self) -> u32 {
        self.next_xid.fetch_add(1, Ordering::Relaxed)
    }

    async fn write(&self, bytes: &[u8]) -> Result<(), ConnError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ConnError::Closed);
        }
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await?;
        w.flush().await?;
        Ok(())
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Pending>> {
        // A panic while holding this lock cannot leave the map inconsistent (each operation
        // is a single insert or remove), so a poisoned lock is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expect_reply(&self, xid: u32) -> oneshot::Receiver<Result<Message, ConnError>> {
        let (tx, rx) = oneshot::channel();
        if self.closed.load(Ordering::SeqCst) {
            let _ = tx.send(Err(ConnError::Closed));
        } else {
            self.table().insert(
                xid,
                Pending::Reply {
                    tx,
                    stats: Vec::new(),
                },
            );
        }
        rx
    }

    fn expect_silent(&self, xid: u32, sink: ErrorSink) {
        self.table().insert(xid, Pending::Silent(sink));
    }

    fn forget(&self, xids: &[u32]) {
        let mut t = self.table();
        for x in xids {
            t.remove(x);
        }
    }

    /// Hands a received message to whoever waits for its xid.
    fn dispatch(&self, xid: u32, msg: Message) {
        let mut t = self.table();
        match (t.remove(&xid), msg) {
            (Some(Pending::Silent(sink)), Message::Error(e)) => {
                if let Ok(mut s) = sink.lock() {
                    s.push((xid, e));
                }
                t.insert(xid, Pending::Silent(sink));
            }
            (Some(p @ Pending::Silent(_)), other) => {
                debug!(xid, ?other, "unexpected reply to a batched message");
                t.insert(xid, p);
            }
            (Some(Pending::Reply { tx, .. }), Message::Error(e)) => {
                let _ = tx.send(Err(ConnError::Switch(e)));
            }
            (Some(Pending::Reply { tx, mut stats }), Message::FlowStatsReply(r)) => {
                stats.extend(r.flows);
                if r.more {
                    t.insert(xid, Pending::Reply { tx, stats });
                } else {
                    let _ = tx.send(Ok(Message::FlowStatsReply(FlowStatsReply {
                        more: false,
                        flows: stats,
                    })));
                }
            }
            (Some(Pending::Reply { tx, .. }), other) => {
                let _ = tx.send(Ok(other));
            }
            (None, Message::Error(e)) => warn!(xid, error = %e, "error for no pending request"),
            (None, other) => trace!(xid, msg_type = other.msg_type(), "unsolicited message"),
        }
    }

    /// Fails every waiting request: the session is over.
    fn close(&self, why: &str) {
        self.closed.store(true, Ordering::SeqCst);
        let drained: Vec<Pending> = self.table().drain().map(|(_, p)| p).collect();
        debug!(why, pending = drained.len(), "OpenFlow session closed");
        for p in drained {
            if let Pending::Reply { tx, .. } = p {
                let _ = tx.send(Err(ConnError::Closed));
            }
        }
    }
}

async fn read_loop(mut frames: FrameReader, shared: Arc<Shared>) {
    let why = loop {
        let frame = match frames.next().await {
            Ok(Some(f)) => f,
            Ok(None) => break "end of stream".to_owned(),
            Err(e) => break e.to_string(),
        };
        match codec::decode(&frame) {
            Ok((h, Message::EchoRequest(d))) => {
                let reply = codec::encode(&Message::EchoReply(d), h.xid);
                if let Ok(bytes) = reply {
                    if let Err(e) = shared.write(&bytes).await {
                        break format!("answering echo: {e}");
                    }
                }
            }
            Ok((h, msg)) => shared.dispatch(h.xid, msg),
            Err(e) => {
                // The frame is delimited, so the stream stays in sync: fail the request the
                // message answers (if any) and carry on.
                let xid = codec::decode_header(&frame).map(|h| h.xid).ok();
                warn!(?xid, error = %e, "undecodable message");
                if let Some(xid) = xid {
                    let waiting = shared.table().remove(&xid);
                    match waiting {
                        Some(Pending::Reply { tx, .. }) => {
                            let _ = tx.send(Err(ConnError::Decode(e)));
                        }
                        Some(p) => {
                            shared.table().insert(xid, p);
                        }
                        None => {}
                    }
                }
            }
        }
    };
    shared.close(&why);
}

//! The route reflector's clients for `bgp-bench reflect`: lightweight iBGP sessions written
//! with the crate's own codec, many of them on one tokio thread.
//!
//! A client is a plain socket and a read loop, not a `Speaker`: a speaker per client would
//! keep a RIB, an Adj-RIB-Out and a decision process for every one of 200 clients, which on
//! two cores would compete with the reflector under test. Here a client decodes each UPDATE
//! once (`decode_update`, the same validating decoder the speaker uses), checks every route
//! against what the reflector must do with it (RFC 4456) and counts distinct prefixes in a
//! bitmap; 19,900 routes a client cost it a few milliseconds.
//!
//! Client `i` binds 127.0.1.(i + 1) (any 127/8 address is local on Linux, no root needed),
//! uses that address as its router id and next hop, and announces the /32s
//! `ROUTE_BASE + i * routes_per_client ..` so that the originator of any prefix received is
//! known from the prefix alone.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fabric_bgp::packet::encode::{EncodeCtx, Packer};
use fabric_bgp::packet::frame::{msg_type, split_message, MAX_LEN};
use fabric_bgp::packet::update::decode_update;
use fabric_bgp::packet::{
    decode_body, Afi, Capability, DecodeCtx, Message, Open, PathAttrs, Prefix,
};
use ipnet::{IpNet, Ipv4Net};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, watch, Semaphore};

/// First address of the announced /32s (10.64.0.0): client `i`'s routes follow
/// `i * routes_per_client` after it.
pub const ROUTE_BASE: u32 = 0x0a40_0000;

/// LOCAL_PREF the clients announce with; a reflector passes it on unchanged.
const LOCAL_PREF: u32 = 100;

/// Hold time the clients offer; the session uses the smaller of this and the reflector's.
const HOLD_TIME: u16 = 240;

/// Sessions opening at once. BIRD listens with a backlog of 8: 200 clients connecting at once
/// overflow its accept queue, the kernel drops their handshakes and they come back after
/// retransmission back-off (1, 3, 7, 15 s ...), so the sessions took a minute to come up.
/// Opening at most this many at a time (from connect until Established) keeps the queue
/// from overflowing; both reflectors get the same pacing, and set-up is not timed.
const OPENING_AT_ONCE: usize = 8;

/// Longest gap between two of our KEEPALIVEs, whatever the hold time.
const MAX_KEEPALIVE: Duration = Duration::from_secs(20);

/// Client `i`'s address, router id and next hop: 127.0.1.(i + 1).
pub fn client_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 1, 1)) + i)
}

/// What every client needs to know about the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub clients: u32,
    pub routes_per_client: u32,
    /// The AS of the clients and the reflector (iBGP).
    pub asn: u32,
    /// The reflector's CLUSTER_ID, expected as the one entry of every CLUSTER_LIST.
    pub cluster_id: Ipv4Addr,
    /// Where the reflector listens.
    pub reflector: SocketAddr,
}

impl Plan {
    fn total(&self) -> u32 {
        self.clients * self.routes_per_client
    }

    /// Routes each client must end up holding: everyone's but its own.
    pub fn expected(&self) -> u32 {
        (self.clients - 1) * self.routes_per_client
    }
}

/// Where the run is; the clients follow it through a `watch` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sessions are coming up: nothing announced yet.
    Connect,
    /// Every session is Established: announce.
    Announce,
    /// The measurement is over: close the session and report.
    Stop,
}

/// What a client tells the conductor as it happens (the instants are the clock's ends).
#[derive(Debug)]
pub enum Event {
    Established(Instant),
    /// The client holds every route it should.
    Done(Instant),
    Failed(u32, String),
}

/// Route-by-route violations of what a reflector must do, and oddities worth printing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// The client's own routes sent back to it (RFC 4456 §8: never reflected to the sender).
    pub own_back: u64,
    /// Reflected without ORIGINATOR_ID.
    pub no_originator: u64,
    /// ORIGINATOR_ID that is not the originating client's router id.
    pub wrong_originator: u64,
    /// CLUSTER_LIST other than exactly the reflector's cluster id.
    pub wrong_cluster_list: u64,
    /// NEXT_HOP other than the originating client's address.
    pub wrong_next_hop: u64,
    /// AS_PATH not empty, or LOCAL_PREF not the one announced (iBGP reflection keeps both).
    pub changed_attrs: u64,
    /// Prefixes outside the announced ones, or not /32.
    pub stray: u64,
    /// Prefixes withdrawn (nothing is ever withdrawn in this benchmark).
    pub withdrawn: u64,
    /// UPDATEs the decoder had to treat as withdraw (RFC 7606).
    pub treat_as_withdraw: u64,
}

impl Checks {
    /// Every kind of violation with its count, the clean ones left out.
    pub fn violations(&self) -> Vec<(&'static str, u64)> {
        [
            ("own routes reflected back", self.own_back),
            ("without ORIGINATOR_ID", self.no_originator),
            (
                "ORIGINATOR_ID not the originating client's",
                self.wrong_originator,
            ),
            (
                "CLUSTER_LIST not exactly the cluster id",
                self.wrong_cluster_list,
            ),
            ("next hop not the originating client's", self.wrong_next_hop),
            ("AS_PATH or LOCAL_PREF changed", self.changed_attrs),
            ("prefixes never announced", self.stray),
            ("withdrawals", self.withdrawn),
            ("UPDATEs treated as withdraw", self.treat_as_withdraw),
        ]
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .collect()
    }

    pub fn add(&mut self, o: &Checks) {
        self.own_back += o.own_back;
        self.no_originator += o.no_originator;
        self.wrong_originator += o.wrong_originator;
        self.wrong_cluster_list += o.wrong_cluster_list;
        self.wrong_next_hop += o.wrong_next_hop;
        self.changed_attrs += o.changed_attrs;
        self.stray += o.stray;
        self.withdrawn += o.withdrawn;
        self.treat_as_withdraw += o.treat_as_withdraw;
    }
}

/// One client's account once the run stops.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Distinct routes held (others' only).
    pub held: u32,
    /// UPDATE messages received, End-of-RIB included.
    pub updates: u64,
    /// Prefixes received, counting a prefix sent twice twice.
    pub prefix_sends: u64,
    /// Bytes received after the session came up.
    pub bytes: u64,
    pub checks: Checks,
}

/// Start `plan.clients` clients on the current tokio runtime. Each connects (retrying a
/// refused connection until `connect_limit`), reports `Established`, announces when the
/// phase turns to `Announce`, reports `Done` when it holds everything, and returns its report
/// when the phase turns to `Stop`. `held[i]` follows client `i`'s count, for a timeout's
/// message.
pub fn start(
    plan: Arc<Plan>,
    phase: watch::Receiver<Phase>,
    events: mpsc::UnboundedSender<Event>,
    held: Arc<Vec<AtomicU32>>,
    connect_limit: Duration,
) -> Vec<tokio::task::JoinHandle<Result<Report>>> {
    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    (0..plan.clients)
        .map(|i| {
            let (plan, phase, events, held, opening) = (
                plan.clone(),
                phase.clone(),
                events.clone(),
                held.clone(),
                opening.clone(),
            );
            tokio::spawn(async move {
                let r = run(&plan, i, phase, &events, &held, &opening, connect_limit).await;
                if let Err(e) = &r {
                    let _ = events.send(Event::Failed(i, format!("{e:#}")));
                }
                r
            })
        })
        .collect()
}

/// The UPDATEs client `i` sends: its routes in as few messages as fit, then End-of-RIB.
fn announcement(plan: &Plan, i: u32) -> Vec<u8> {
    let me = client_addr(i);
    let first = ROUTE_BASE + i * plan.routes_per_client;
    let prefixes: Vec<Prefix> = (first..first + plan.routes_per_client)
        .filter_map(|a| Ipv4Net::new(Ipv4Addr::from(a), 32).ok().map(IpNet::V4))
        .collect();
    let attrs = PathAttrs {
        next_hop: Some(IpAddr::V4(me)),
        local_pref: Some(LOCAL_PREF),
        ..PathAttrs::default()
    };
    let mut out = Vec::new();
    let mut packer = Packer::new(EncodeCtx::default());
    packer.announce(Afi::Ipv4, &attrs, &prefixes, &mut out);
    packer.end_of_rib(Afi::Ipv4, &mut out);
    out
}

/// Connect from `local` to the reflector, retrying while it refuses (it may still be starting
/// its listener) until `limit`.
async fn connect(
    local: Ipv4Addr,
    to: SocketAddr,
    limit: Duration,
) -> Result<tokio::net::TcpStream> {
    let deadline = Instant::now() + limit;
    loop {
        let socket = TcpSocket::new_v4()?;
        socket
            .bind(SocketAddr::new(IpAddr::V4(local), 0))
            .with_context(|| format!("binding {local}"))?;
        match socket.connect(to).await {
            Ok(s) => return Ok(s),
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("connecting to {to}")),
        }
    }
}

/// Session states of a client (RFC 4271 §8, the part a passive peer's partner goes through).
#[derive(PartialEq, Eq)]
enum State {
    OpenSent,
    OpenConfirm,
    Established,
}

/// A client's bookkeeping while Established.
struct Tally<'a> {
    plan: &'a Plan,
    me: u32,
    /// One bit per announced route (all clients'), set once held.
    seen: Vec<u64>,
    report: Report,
    done: bool,
}

impl Tally<'_> {
    /// Account for one decoded UPDATE; true when this made the client hold everything.
    fn update(&mut self, u: &fabric_bgp::packet::Update) -> bool {
        let r = &mut self.report;
        r.updates += 1;
        if u.treat_as_withdraw.is_some() {
            r.checks.treat_as_withdraw += 1;
        }
        r.checks.withdrawn += u.withdrawn.len() as u64;
        if let Some(un) = &u.mp_unreach {
            r.checks.withdrawn += un.withdrawn.len() as u64;
        }
        let attrs = u.attrs.as_ref();
        let base = attrs.and_then(|a| a.next_hop);
        let mp = u.mp_reach.as_ref().map(|m| (m.next_hop, &m.nlri[..]));
        let groups =
            std::iter::once((base, &u.nlri[..])).chain(mp.map(|(nh, nlri)| (Some(nh), nlri)));
        let total = self.plan.total();
        for (next_hop, nlri) in groups {
            for p in nlri {
                r.prefix_sends += 1;
                let g = match p {
                    IpNet::V4(n) if n.prefix_len() == 32 => {
                        u32::from(n.addr()).wrapping_sub(ROUTE_BASE)
                    }
                    _ => u32::MAX,
                };
                if g >= total {
                    r.checks.stray += 1;
                    continue;
                }
                let origin = g / self.plan.routes_per_client;
                if origin == self.me {
                    r.checks.own_back += 1;
                    continue;
                }
                let originator = client_addr(origin);
                match attrs.and_then(|a| a.originator_id) {
                    None => r.checks.no_originator += 1,
                    Some(id) if id != originator => r.checks.wrong_originator += 1,
                    Some(_) => {}
                }
                if attrs.map(|a| &a.cluster_list[..]) != Some(&[self.plan.cluster_id][..]) {
                    r.checks.wrong_cluster_list += 1;
                }
                if next_hop != Some(IpAddr::V4(originator)) {
                    r.checks.wrong_next_hop += 1;
                }
                if attrs.is_none_or(|a| {
                    !a.as_path.segments.is_empty() || a.local_pref != Some(LOCAL_PREF)
                }) {
                    r.checks.changed_attrs += 1;
                }
                let (word, bit) = ((g / 64) as usize, 1u64 << (g % 64));
                if let Some(w) = self.seen.get_mut(word) {
                    if *w & bit == 0 {
                        *w |= bit;
                        r.held += 1;
                    }
                }
            }
        }
        if !self.done && r.held >= self.plan.expected() {
            self.done = true;
            return true;
        }
        false
    }
}

/// One client's whole life; see [`start`].
async fn run(
    plan: &Plan,
    i: u32,
    mut phase: watch::Receiver<Phase>,
    events: &mpsc::UnboundedSender<Event>,
    held: &[AtomicU32],
    opening: &Semaphore,
    connect_limit: Duration,
) -> Result<Report> {
    let me = client_addr(i);
    let mut permit = Some(opening.acquire().await?);
    let stream = connect(me, plan.reflector, connect_limit).await?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    // Writes go through their own task, so a reflector that is busy writing to us while we
    // write to it can never stall our reading (and so itself).
    let (out, mut to_write) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = to_write.recv().await {
            wr.write_all(&bytes).await?;
        }
        wr.shutdown().await
    });
    let caps = vec![
        Capability::Multiprotocol { afi: 1, safi: 1 },
        Capability::FourOctetAs(plan.asn),
    ];
    let open = Message::Open(Open::new(plan.asn, HOLD_TIME, me, caps));
    let _ = out.send(open.to_bytes(EncodeCtx::default()));
    let keepalive = Message::Keepalive.to_bytes(EncodeCtx::default());

    let mut state = State::OpenSent;
    let mut tally = Tally {
        plan,
        me: i,
        seen: vec![0; plan.total().div_ceil(64) as usize],
        report: Report::default(),
        done: false,
    };
    let ctx = DecodeCtx {
        four_octet_as: true,
        ibgp: true,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    // Set once the hold time is negotiated; a week until then.
    let mut keepalive_every = Duration::from_secs(7 * 24 * 3600);
    let mut next_keepalive = tokio::time::Instant::now() + keepalive_every;
    loop {
        if buf.capacity() - buf.len() < 1 << 14 {
            buf.reserve(1 << 16);
        }
        tokio::select! {
            read = rd.read_buf(&mut buf) => {
                let n = read.context("reading from the reflector")?;
                if n == 0 {
                    bail!("client {me}: the reflector closed the session");
                }
                if state == State::Established {
                    tally.report.bytes += n as u64;
                }
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    bail!("client {me}: the conductor went away");
                }
                let now = *phase.borrow_and_update();
                match now {
                    Phase::Announce => {
                        if state != State::Established {
                            bail!("client {me}: told to announce before its session is up");
                        }
                        let _ = out.send(announcement(plan, i));
                    }
                    Phase::Stop => break,
                    Phase::Connect => {}
                }
                continue;
            }
            _ = tokio::time::sleep_until(next_keepalive) => {
                let _ = out.send(keepalive.clone());
                next_keepalive += keepalive_every;
                continue;
            }
        }
        let mut at = 0;
        while let Some((header, body)) =
            split_message(&buf[at..], MAX_LEN).map_err(|e| anyhow::anyhow!("client {me}: {e:?}"))?
        {
            at += header.len;
            match (header.kind, &state) {
                (msg_type::UPDATE, State::Established) => {
                    let u = decode_update(body, ctx)
                        .map_err(|e| anyhow::anyhow!("client {me}: bad UPDATE: {e:?}"))?;
                    if tally.update(&u) {
                        let _ = events.send(Event::Done(Instant::now()));
                    }
                    if let Some(h) = held.get(i as usize) {
                        h.store(tally.report.held, Ordering::Relaxed);
                    }
                }
                (msg_type::KEEPALIVE, State::Established) => {}
                (msg_type::KEEPALIVE, State::OpenConfirm) => {
                    state = State::Established;
                    drop(permit.take());
                    let _ = events.send(Event::Established(Instant::now()));
                }
                (msg_type::OPEN, State::OpenSent) => {
                    let Ok(Message::Open(theirs)) = decode_body(header.kind, body, ctx) else {
                        bail!("client {me}: the reflector's OPEN does not decode");
                    };
                    if theirs.asn() != plan.asn {
                        bail!(
                            "client {me}: the reflector is AS {}, not {}",
                            theirs.asn(),
                            plan.asn
                        );
                    }
                    if !theirs
                        .capabilities
                        .iter()
                        .any(|c| matches!(c, Capability::FourOctetAs(_)))
                    {
                        bail!("client {me}: the reflector does not offer 4-octet AS numbers");
                    }
                    let hold = theirs.hold_time.min(HOLD_TIME);
                    if hold > 0 {
                        keepalive_every =
                            Duration::from_secs(u64::from(hold / 3).max(1)).min(MAX_KEEPALIVE);
                        next_keepalive = tokio::time::Instant::now() + keepalive_every;
                    }
                    let _ = out.send(keepalive.clone());
                    state = State::OpenConfirm;
                }
                (msg_type::NOTIFICATION, _) => {
                    let n = decode_body(header.kind, body, ctx);
                    bail!("client {me}: the reflector sent {n:?}");
                }
                (kind, _) => bail!("client {me}: unexpected message type {kind}"),
            }
        }
        buf.drain(..at);
    }
    drop(out);
    // The writer ends once its channel is closed; a failed write is the session's failure.
    match tokio::time::timeout(Duration::from_secs(5), writer).await {
        Ok(Ok(Ok(()))) | Err(_) => {}
        Ok(Ok(Err(e))) => return Err(e).context(format!("client {me}: writing")),
        Ok(Err(e)) => bail!("client {me}: writer task: {e}"),
    }
    Ok(tally.report)
}

//! Continuous probes for tests that change the fabric under traffic: every flow (a source
//! namespace, a destination address, TCP connect, UDP echo or ICMP echo) sends one probe every
//! tick from a thread of its own, never waiting for the previous one (a probe the network
//! drops costs no probe after it), until it is told to stop or has sent its maximum. Each
//! probe's send time and whether it got through are kept.
//!
//! At the other end, [`Sink`] serves the probes (a TCP listener, a UDP echo; the kernel answers
//! pings) and counts with raw sockets every TCP, UDP and ICMP packet that reaches the
//! namespace, by source address: a packet that gets in but whose answer is dropped still
//! shows.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

/// How long a probe may take to get through (a TCP connection, an echo, a reply). Below TCP's
/// first SYN retransmission (1 s): a TCP probe is one SYN.
pub const WAIT: Duration = Duration::from_millis(500);

/// Moves the calling thread into namespace `netns`.
pub fn enter(netns: &str) {
    let path = format!("/run/netns/{netns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tcp(u16),
    Udp(u16),
    Ping,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Tcp(p) => write!(f, "tcp/{p}"),
            Kind::Udp(p) => write!(f, "udp/{p}"),
            Kind::Ping => write!(f, "ping"),
        }
    }
}

/// One stream of probes.
#[derive(Clone, Debug)]
pub struct Flow {
    pub netns: String,
    pub dst: Ipv4Addr,
    pub kind: Kind,
}

/// What became of a flow's probes, in order: when each was sent (from the common start) and
/// whether it got through.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub sent: Vec<Duration>,
    pub through: Vec<bool>,
}

impl Outcome {
    /// (sent, got through) among the probes sent in `[from, to)`.
    pub fn between(&self, from: Duration, to: Duration) -> (usize, usize) {
        let inside = || {
            self.sent
                .iter()
                .zip(&self.through)
                .filter(move |(t, _)| **t >= from && **t < to)
        };
        (inside().count(), inside().filter(|(_, ok)| **ok).count())
    }
}

/// Runs every flow from `start`, one probe every `tick`, until `stop` is set or `max` probes
/// went out; then waits [`WAIT`] for the last answers.
pub fn run(
    flows: &[Flow],
    start: Instant,
    tick: Duration,
    max: usize,
    stop: &AtomicBool,
) -> Vec<Outcome> {
    thread::scope(|s| {
        let handles: Vec<_> = flows
            .iter()
            .enumerate()
            .map(|(i, flow)| {
                s.spawn(move || {
                    enter(&flow.netns);
                    let schedule = Schedule {
                        start,
                        tick,
                        max,
                        stop,
                    };
                    match flow.kind {
                        Kind::Tcp(port) => tcp(SocketAddr::from((flow.dst, port)), &schedule),
                        Kind::Udp(port) => udp(SocketAddr::from((flow.dst, port)), &schedule),
                        // Distinct identifiers: every raw ICMP socket sees every reply.
                        Kind::Ping => ping(flow.dst, icmp_id(i), &schedule),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("probe thread"))
            .collect()
    })
}

struct Schedule<'a> {
    start: Instant,
    tick: Duration,
    max: usize,
    stop: &'a AtomicBool,
}

impl Schedule<'_> {
    /// Waits for probe `i`'s turn; false once the flow is over.
    fn wait_turn(&self, i: usize) -> bool {
        if i >= self.max || self.stop.load(Ordering::Relaxed) {
            return false;
        }
        let at = self.start + self.tick * i as u32;
        let now = Instant::now();
        if at > now {
            thread::sleep(at - now);
        }
        true
    }
}

fn icmp_id(flow: usize) -> u16 {
    (std::process::id() as u16)
        .wrapping_mul(31)
        .wrapping_add(flow as u16)
}

/// A TCP connection started without waiting (the socket is non-blocking).
fn connect_nonblocking(to: SocketAddr) -> Option<TcpStream> {
    let SocketAddr::V4(to) = to else { return None };
    // SAFETY: plain socket(2) and connect(2) on a descriptor owned right away; the address
    // is a fully initialised sockaddr_in that outlives the call.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return None;
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: to.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*to.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let in_progress = std::io::Error::last_os_error().raw_os_error() == Some(libc::EINPROGRESS);
        (rc == 0 || in_progress).then(|| TcpStream::from(owned))
    }
}

/// A raw IPv4 socket of `protocol` in the calling thread's namespace.
fn raw_socket(protocol: i32) -> UdpSocket {
    // SAFETY: socket(2); the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// TCP connects: a probe got through when its connection was established within [`WAIT`].
fn tcp(to: SocketAddr, s: &Schedule) -> Outcome {
    let mut out = Outcome::default();
    let mut pending: Vec<(usize, TcpStream, Instant)> = Vec::new();
    let settle = |pending: &mut Vec<(usize, TcpStream, Instant)>, out: &mut Outcome| {
        pending.retain(|(i, stream, at)| {
            if stream.peer_addr().is_ok() {
                out.through[*i] = true;
                return false;
            }
            // Refused or unreachable: an answer, but not a connection.
            if matches!(stream.take_error(), Ok(Some(_))) {
                return false;
            }
            at.elapsed() < WAIT
        });
    };
    let mut i = 0;
    while s.wait_turn(i) {
        out.sent.push(s.start.elapsed());
        out.through.push(false);
        if let Some(stream) = connect_nonblocking(to) {
            pending.push((i, stream, Instant::now()));
        }
        settle(&mut pending, &mut out);
        i += 1;
    }
    while !pending.is_empty() {
        thread::sleep(Duration::from_millis(5));
        settle(&mut pending, &mut out);
    }
    out
}

/// UDP echoes: a probe (its sequence number) got through when its echo came back.
fn udp(to: SocketAddr, s: &Schedule) -> Outcome {
    let sock = UdpSocket::bind("0.0.0.0:0").expect("udp bind");
    let replies = sock.try_clone().expect("udp clone");
    replies
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let done = AtomicBool::new(false);
    let echoed = Mutex::new(Vec::<u32>::new());
    let mut out = Outcome::default();
    thread::scope(|scope| {
        scope.spawn(|| {
            let mut buf = [0u8; 64];
            while !done.load(Ordering::Relaxed) {
                if let Ok((4, from)) = replies.recv_from(&mut buf) {
                    if from == to {
                        let seq = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                        echoed.lock().expect("echoes").push(seq);
                    }
                }
            }
        });
        let mut i = 0;
        while s.wait_turn(i) {
            out.sent.push(s.start.elapsed());
            let _ = sock.send_to(&(i as u32).to_be_bytes(), to);
            i += 1;
        }
        thread::sleep(WAIT);
        done.store(true, Ordering::Relaxed);
    });
    out.through = vec![false; out.sent.len()];
    for seq in echoed.into_inner().expect("echoes") {
        if let Some(t) = out.through.get_mut(seq as usize) {
            *t = true;
        }
    }
    out
}

/// The Internet checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// ICMP echoes from a raw socket: a probe (its sequence number) got through when the reply
/// with this flow's identifier came back from `to`.
fn ping(to: Ipv4Addr, id: u16, s: &Schedule) -> Outcome {
    let sock = raw_socket(libc::IPPROTO_ICMP);
    let replies = sock.try_clone().expect("icmp clone");
    replies
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let done = AtomicBool::new(false);
    let echoed = Mutex::new(Vec::<u16>::new());
    let mut out = Outcome::default();
    thread::scope(|scope| {
        scope.spawn(|| {
            let mut buf = [0u8; 1500];
            while !done.load(Ordering::Relaxed) {
                let Ok((n, from)) = replies.recv_from(&mut buf) else {
                    continue;
                };
                let ihl = usize::from(buf[0] & 0x0f) * 4;
                if from.ip() != to || n < ihl + 8 {
                    continue;
                }
                let icmp = &buf[ihl..n];
                let (kind, got_id) = (icmp[0], u16::from_be_bytes([icmp[4], icmp[5]]));
                if kind == 0 && got_id == id {
                    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
                    echoed.lock().expect("replies").push(seq);
                }
            }
        });
        let mut i = 0;
        while s.wait_turn(i) {
            out.sent.push(s.start.elapsed());
            let mut packet = [0u8; 16];
            packet[0] = 8;
            packet[4..6].copy_from_slice(&id.to_be_bytes());
            packet[6..8].copy_from_slice(&(i as u16).to_be_bytes());
            packet[8..16].copy_from_slice(b"isolate!");
            let sum = checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
            let _ = sock.send_to(&packet, (to, 0));
            i += 1;
        }
        thread::sleep(WAIT);
        done.store(true, Ordering::Relaxed);
    });
    out.through = vec![false; out.sent.len()];
    for seq in echoed.into_inner().expect("replies") {
        if let Some(t) = out.through.get_mut(usize::from(seq)) {
            *t = true;
        }
    }
    out
}

/// Packets that reached a namespace, by (source address, IP protocol).
pub type Arrivals = BTreeMap<(Ipv4Addr, u8), u64>;

/// The receiving end in a container's namespace: a TCP listener and a UDP echo on `port`, and
/// counters of every TCP, UDP and ICMP packet that arrives. Stopped, its threads joined, on
/// drop.
pub struct Sink {
    stop: Arc<AtomicBool>,
    arrivals: Arc<Mutex<Arrivals>>,
    threads: Vec<JoinHandle<()>>,
}

impl Sink {
    /// Bound now, in `netns` (before the container has a network, as a service that starts
    /// first).
    pub fn start(netns: &str, port: u16) -> Sink {
        let ns = netns.to_string();
        let (listener, echo, raws) = thread::spawn(move || {
            enter(&ns);
            let listener = TcpListener::bind(("0.0.0.0", port)).expect("tcp bind");
            let echo = UdpSocket::bind(("0.0.0.0", port)).expect("udp bind");
            let raws: Vec<UdpSocket> = [libc::IPPROTO_TCP, libc::IPPROTO_UDP, libc::IPPROTO_ICMP]
                .into_iter()
                .map(raw_socket)
                .collect();
            (listener, echo, raws)
        })
        .join()
        .expect("bind in the container's namespace");
        let stop = Arc::new(AtomicBool::new(false));
        let arrivals = Arc::new(Mutex::new(Arrivals::new()));
        let mut threads = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let halt = stop.clone();
        threads.push(thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                // Accepted and closed: a probe is the connection itself.
                if listener.accept().is_err() {
                    thread::sleep(Duration::from_millis(2));
                }
            }
        }));
        echo.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let halt = stop.clone();
        threads.push(thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !halt.load(Ordering::Relaxed) {
                if let Ok((n, from)) = echo.recv_from(&mut buf) {
                    let _ = echo.send_to(&buf[..n], from);
                }
            }
        }));
        for raw in raws {
            raw.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            let (halt, arrivals) = (stop.clone(), arrivals.clone());
            threads.push(thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !halt.load(Ordering::Relaxed) {
                    let Ok(n) = raw.recv(&mut buf) else { continue };
                    if n < 20 {
                        continue;
                    }
                    let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
                    *arrivals
                        .lock()
                        .expect("arrivals")
                        .entry((src, buf[9]))
                        .or_default() += 1;
                }
            }));
        }
        Sink {
            stop,
            arrivals,
            threads,
        }
    }

    /// Everything counted so far.
    pub fn arrivals(&self) -> Arrivals {
        self.arrivals.lock().expect("arrivals").clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

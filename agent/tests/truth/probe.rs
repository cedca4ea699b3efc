//! Traffic for the truth table: echo servers in containers' namespaces (TCP and UDP, served by
//! this process's threads, stopped and joined on drop) and probes sent from inside a namespace
//! (a TCP connection that echoes a line, a UDP datagram echoed back, a ping), run on a bounded
//! pool of threads that each enter the source's namespace with setns(2).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

use super::model::Probe;

/// How long a probe waits for a connection, an echo or a ping reply.
const WAIT: Duration = Duration::from_millis(1000);
const UDP_WAIT: Duration = Duration::from_millis(600);

/// Moves the calling thread into namespace `netns` (sockets it creates, and processes it
/// starts, live there).
fn enter(netns: &str) {
    let path = format!("/run/netns/{netns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
}

/// Echo servers; stopped, and their threads joined, on drop.
#[derive(Default)]
pub struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    /// TCP echo on `tcp` ports and UDP echo on `udp` ports inside `netns`, bound now (before
    /// the container has a network, as a service that starts first).
    pub fn serve(&mut self, netns: &str, tcp: &[u16], udp: &[u16]) {
        let (ns, tcp, udp) = (netns.to_string(), tcp.to_vec(), udp.to_vec());
        let (listeners, sockets) = thread::spawn(move || {
            enter(&ns);
            let bind_tcp = |p: &u16| TcpListener::bind(("0.0.0.0", *p)).expect("tcp bind");
            let bind_udp = |p: &u16| UdpSocket::bind(("0.0.0.0", *p)).expect("udp bind");
            let l: Vec<TcpListener> = tcp.iter().map(bind_tcp).collect();
            let u: Vec<UdpSocket> = udp.iter().map(bind_udp).collect();
            (l, u)
        })
        .join()
        .expect("bind in the container's namespace");
        for l in listeners {
            let stop = self.stop.clone();
            l.set_nonblocking(true).expect("nonblocking");
            self.threads.push(thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((s, _)) => {
                            thread::spawn(move || echo(s));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(20)),
                    }
                }
            }));
        }
        for u in sockets {
            let stop = self.stop.clone();
            u.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            self.threads.push(thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(&buf[..n], from);
                    }
                }
            }));
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn echo(mut s: TcpStream) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let mut buf = [0u8; 512];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// One probe from the calling thread's namespace.
fn send(dst: Ipv4Addr, probe: Probe) -> bool {
    match probe {
        Probe::Tcp(port) => {
            let Ok(mut s) = TcpStream::connect_timeout(&SocketAddr::from((dst, port)), WAIT) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(WAIT));
            let mut buf = [0u8; 6];
            s.write_all(b"probe\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"probe\n"
        }
        Probe::Udp(port) => {
            let Ok(u) = UdpSocket::bind("0.0.0.0:0") else {
                return false;
            };
            let _ = u.set_read_timeout(Some(UDP_WAIT));
            let mut buf = [0u8; 16];
            (0..2).any(|_| {
                u.send_to(b"probe", (dst, port)).is_ok()
                    && matches!(u.recv_from(&mut buf), Ok((5, from)) if from.ip() == dst && &buf[..5] == b"probe")
            })
        }
        // A child process inherits the namespace of the thread that starts it.
        Probe::Ping => Command::new("ping")
            .args(["-n", "-q", "-c", "2", "-i", "0.2", "-W", "1"])
            .arg(dst.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false),
    }
}

/// One probe to run: from namespace `netns` to `dst`.
#[derive(Clone, Debug)]
pub struct Job {
    pub netns: String,
    pub dst: Ipv4Addr,
    pub probe: Probe,
}

/// Runs every job on at most `workers` threads; whether each got through, in order.
pub fn run_all(jobs: &[Job], workers: usize) -> Vec<bool> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![false; jobs.len()]);
    thread::scope(|s| {
        for _ in 0..workers.min(jobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                enter(&job.netns);
                let ok = send(job.dst, job.probe);
                if let Ok(mut r) = results.lock() {
                    r[i] = ok;
                }
            });
        }
    });
    results.into_inner().expect("probe results")
}

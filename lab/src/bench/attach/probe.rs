//! The two observers of `lab bench attach`. The RIB poller keeps one connection to the ToR's
//! BIRD control socket (no process per poll) and asks every few milliseconds for the /32s of
//! the container subnets, noting when each prefix is first seen. The pinger sends ICMP echo
//! from a namespace in the other rack until the first answer: `ping -c 1 -W 0.1` again and
//! again (about every 5 ms while the route is missing), started from a thread that entered
//! that namespace, so no `ip netns exec` per probe. (One long `ping -i 0.005` slows down to
//! one echo a second after ICMP errors, which hides the moment the route appears.)

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ipnet::Ipv4Net;
use nix::sched::{setns, CloneFlags};

use super::stopping;

/// A connection to BIRD's control socket.
pub struct Birdc {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Birdc {
    pub fn connect(ctl: &Path) -> Result<Birdc> {
        let stream =
            UnixStream::connect(ctl).with_context(|| format!("connecting to {}", ctl.display()))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let writer = stream.try_clone()?;
        let mut birdc = Birdc {
            reader: BufReader::new(stream),
            writer,
        };
        birdc.read_reply()?; // "0001 BIRD 2.x ready."
        Ok(birdc)
    }

    /// One command; the reply's lines without their reply codes.
    pub fn command(&mut self, cmd: &str) -> Result<Vec<String>> {
        self.writer.write_all(format!("{cmd}\n").as_bytes())?;
        self.read_reply()
    }

    /// Reads up to the last line of a reply ("NNNN text"; "NNNN-text" and " text" continue).
    fn read_reply(&mut self) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("BIRD closed its control socket");
            }
            let text = line.trim_end_matches('\n');
            let coded = text.len() >= 5 && text.as_bytes()[..4].iter().all(u8::is_ascii_digit);
            if !coded {
                lines.push(text.trim_start_matches(' ').to_string());
                continue;
            }
            let (code, rest) = text.split_at(4);
            let (last, body) = match rest.strip_prefix(' ') {
                Some(body) => (true, body),
                None => (false, rest.get(1..).unwrap_or("")),
            };
            if last && (code.starts_with('8') || code.starts_with('9')) {
                bail!("BIRD: {body}");
            }
            lines.push(body.to_string());
            if last {
                return Ok(lines);
            }
        }
    }
}

/// Prefixes first seen in the RIB, with when; filled by the poller thread.
type Seen = Arc<Mutex<HashMap<Ipv4Addr, Instant>>>;

/// Polls a BIRD RIB in the background for /32s inside `within`.
pub struct RibPoller {
    seen: Seen,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<PollCost>>>,
}

/// How many polls ran and how long one took on average (the observer's own cost).
#[derive(Debug, Clone, Copy, Default)]
pub struct PollCost {
    pub polls: u64,
    pub mean: Duration,
}

impl RibPoller {
    pub fn start(ctl: &Path, within: &[Ipv4Net], every: Duration) -> Result<RibPoller> {
        let mut birdc = Birdc::connect(ctl)?;
        let nets: Vec<String> = within.iter().map(|n| format!("{n}{{32,32}}")).collect();
        let cmd = format!("show route where net ~ [ {} ]", nets.join(", "));
        birdc
            .command(&cmd)
            .context("BIRD refused the poll command")?;
        let seen: Seen = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen_w, stop_w) = (seen.clone(), stop.clone());
        let handle = std::thread::spawn(move || -> Result<PollCost> {
            let (mut polls, mut busy) = (0u64, Duration::ZERO);
            while !stop_w.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let lines = birdc.command(&cmd)?;
                let now = Instant::now();
                polls += 1;
                busy += now - sent;
                let mut map = seen_w.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                for prefix in lines.iter().filter_map(|l| l.split_whitespace().next()) {
                    if let Ok(net) = prefix.parse::<Ipv4Net>() {
                        map.entry(net.addr()).or_insert(now);
                    }
                }
                drop(map);
                std::thread::sleep(every);
            }
            let mean = busy.checked_div(polls.max(1) as u32).unwrap_or_default();
            Ok(PollCost { polls, mean })
        });
        Ok(RibPoller {
            seen,
            stop,
            handle: Some(handle),
        })
    }

    /// When `ip` was first seen, waiting until `deadline` (or the bench is stopping).
    pub fn wait_for(&self, ip: Ipv4Addr, deadline: Instant) -> Option<Instant> {
        loop {
            if let Some(at) = self.seen.lock().ok().and_then(|m| m.get(&ip).copied()) {
                return Some(at);
            }
            if Instant::now() >= deadline || stopping() || self.finished() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops the thread; its cost, or why it died.
    pub fn stop(mut self) -> Result<PollCost> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => bail!("the RIB poller panicked"),
            None => Ok(PollCost::default()),
        }
    }
}

impl Drop for RibPoller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// When `ip` first answered a ping sent from namespace `netns`, or None by `deadline`.
pub fn first_ping(netns: &str, ip: Ipv4Addr, deadline: Instant) -> Result<Option<Instant>> {
    let ns = File::open(Path::new("/run/netns").join(netns))
        .with_context(|| format!("opening namespace {netns}"))?;
    std::thread::scope(|s| {
        s.spawn(|| -> Result<Option<Instant>> {
            setns(&ns, CloneFlags::CLONE_NEWNET).context("entering the pinger's namespace")?;
            while Instant::now() < deadline && !stopping() {
                let status = Command::new("ping")
                    .args(["-n", "-q", "-c", "1", "-W", "0.1"])
                    .arg(ip.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .context("running ping")?;
                // Exit status 0: the echo was answered.
                if status.success() {
                    return Ok(Some(Instant::now()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None)
        })
        .join()
        .unwrap_or_else(|_| bail!("the ping thread panicked"))
    })
}

//! BIRD's control socket and the pinger of `lab bench attach` (the RIB observers are in
//! `rib.rs`). The pinger sends ICMP echo from a namespace in the other rack until the first
//! answer: `ping -c 1 -W 0.1` again and
//! again (about every 5 ms while the route is missing), started from a thread that entered
//! that namespace, so no `ip netns exec` per probe. (One long `ping -i 0.005` slows down to
//! one echo a second after ICMP errors, which hides the moment the route appears.)

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
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

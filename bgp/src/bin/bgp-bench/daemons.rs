//! The three BGP daemons of the benchmark: BIRD (sender or receiver), GoBGP (receiver) and our
//! fabric-bgpd, each with a way to count the routes it holds.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::lab::{poll, Daemon, Ns};

/// `count` /32s from 10.64.0.0, as BIRD static routes.
fn static_routes(count: u64) -> String {
    let mut s = String::with_capacity(count as usize * 40);
    for i in 0..count {
        let a = std::net::Ipv4Addr::from(0x0a40_0000u32 + i as u32);
        s.push_str(&format!("  route {a}/32 blackhole;\n"));
    }
    s
}

/// How to start a BIRD.
#[derive(Clone, Copy, Default)]
pub struct BirdOpts {
    /// Export this many static /32s to every peer (0: a pure receiver, exporting nothing).
    pub routes: u64,
    /// Only accept sessions (`passive on`), never connect.
    pub passive: bool,
    /// Start the BGP protocols disabled, to be enabled later with [`Bird::enable`].
    pub disabled: bool,
    /// `connect delay time` (BIRD's default is 5 s; it waits at least 0.75 s whatever it is).
    pub connect_delay: Option<u32>,
}

/// Longest reply we read from BIRD's control socket, in lines.
const CLI_MAX_LINES: usize = 100_000;

pub struct Bird {
    pub daemon: Daemon,
    sock: String,
}

impl Bird {
    /// `peers`: (address, AS); the BGP protocols are named `p0`, `p1`, ... in that order.
    pub fn start(
        ns: &Ns,
        dir: &Path,
        name: &str,
        id: &str,
        asn: u32,
        peers: &[(&str, u32)],
        opts: BirdOpts,
    ) -> Result<Bird> {
        let mut conf = format!("router id {id};\nprotocol device {{}}\n");
        if opts.routes > 0 {
            conf.push_str(&format!(
                "protocol static st {{\n  ipv4;\n{}}}\n",
                static_routes(opts.routes)
            ));
        }
        let export = if opts.routes > 0 {
            "export all"
        } else {
            "export none"
        };
        let mut extra = String::new();
        if opts.passive {
            extra.push_str("  passive on;\n");
        }
        if opts.disabled {
            extra.push_str("  disabled;\n");
        }
        if let Some(d) = opts.connect_delay {
            extra.push_str(&format!("  connect delay time {d};\n"));
        }
        for (i, (addr, peer_as)) in peers.iter().enumerate() {
            conf.push_str(&format!(
                "protocol bgp p{i} {{\n  local as {asn};\n  neighbor {addr} as {peer_as};\n{extra}  ipv4 {{ import all; {export}; }};\n}}\n"
            ));
        }
        let conf_path = dir.join(format!("{name}.conf"));
        std::fs::write(&conf_path, conf)?;
        let sock = dir.join(format!("{name}.ctl")).display().to_string();
        let pid = dir.join(format!("{name}.pid"));
        ns.run(&[
            "bird",
            "-c",
            &conf_path.display().to_string(),
            "-s",
            &sock,
            "-P",
            &pid.display().to_string(),
        ])?;
        Ok(Bird {
            daemon: Daemon {
                child: None,
                pid_file: Some(pid),
            },
            sock,
        })
    }

    /// One command on BIRD's control socket (what birdc does, without starting a process, so
    /// polling BIRD costs no more than polling our speaker). Returns the reply's text without
    /// the reply codes; None if BIRD is not there yet or answers with an error (8xxx, 9xxx).
    pub fn cli(&self, command: &str) -> Option<String> {
        let mut s = UnixStream::connect(&self.sock).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut r = BufReader::new(s.try_clone().ok()?);
        let mut line = String::new();
        r.read_line(&mut line).ok()?; // "0001 BIRD 2.0.12 ready."
        writeln!(s, "{command}").ok()?;
        let mut text = String::new();
        for _ in 0..CLI_MAX_LINES {
            line.clear();
            if r.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let b = line.as_bytes();
            let coded = b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit);
            if coded && matches!(b[0], b'8' | b'9') {
                return None;
            }
            let body = if coded { &line[5..] } else { line.get(1..)? };
            text.push_str(body);
            if coded && b[4] == b' ' {
                return Some(text);
            }
        }
        None
    }

    /// Routes protocol `proto` has in the table now: the "Routes: N imported" of
    /// `show protocols all`, a counter BIRD keeps, so asking costs BIRD nothing per route
    /// (`show route count` walks the whole table, slowing BIRD down while it receives).
    pub fn imported(&self, proto: &str) -> Option<u64> {
        let text = self.cli(&format!("show protocols all {proto}"))?;
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix("Routes:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Routes the first BGP peer (`p0`) brought into the table.
    pub fn count(&self) -> Option<u64> {
        self.imported("p0")
    }

    /// Routes in BIRD's master4 table, by walking it (`show route count`).
    pub fn table_count(&self) -> Option<u64> {
        let text = self.cli("show route count")?;
        text.lines()
            .find(|l| l.contains("master4"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Whether protocol `proto`'s session is Established.
    pub fn established(&self, proto: &str) -> Option<bool> {
        let text = self.cli(&format!("show protocols {proto}"))?;
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(proto))?;
        Some(row.contains("Established"))
    }

    /// `enable <proto>`.
    pub fn enable(&self, proto: &str) -> Result<()> {
        let reply = self
            .cli(&format!("enable {proto}"))
            .with_context(|| format!("BIRD refused to enable {proto}"))?;
        if !reply.contains("enabled") {
            bail!("enable {proto}: BIRD answered {:?}", reply.trim());
        }
        Ok(())
    }
}

pub struct GoBgp {
    /// Killed on drop.
    _daemon: Daemon,
    ns: String,
}

impl GoBgp {
    pub fn start(ns: &Ns, dir: &Path, asn: u32, id: &str, peers: &[(&str, u32)]) -> Result<GoBgp> {
        let mut conf =
            format!("[global.config]\n  as = {asn}\n  router-id = \"{id}\"\n  port = 179\n");
        for (addr, peer_as) in peers {
            conf.push_str(&format!(
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{addr}\"\n    peer-as = {peer_as}\n"
            ));
        }
        let path = dir.join("gobgpd.toml");
        std::fs::write(&path, conf)?;
        let child = ns.spawn(
            &[
                "gobgpd",
                "-f",
                &path.display().to_string(),
                "--api-hosts",
                "127.0.0.1:50051",
                "-l",
                "warn",
            ],
            &dir.join("gobgpd.log"),
        )?;
        let g = GoBgp {
            _daemon: Daemon {
                child: Some(child),
                pid_file: None,
            },
            ns: ns.0.clone(),
        };
        poll("gobgpd API", Duration::from_secs(20), || {
            g.gobgp(&["global"])
        })?;
        Ok(g)
    }

    fn gobgp(&self, args: &[&str]) -> Option<String> {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, "gobgp"])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Destinations in GoBGP's global IPv4 RIB.
    pub fn count(&self) -> Option<u64> {
        let text = self.gobgp(&["global", "rib", "summary", "-a", "ipv4"])?;
        let at = text.find("Destination:")?;
        text[at + 12..].split(',').next()?.trim().parse().ok()
    }

    /// UPDATE messages received from `peer`.
    pub fn updates_from(&self, peer: &str) -> Option<u64> {
        let text = self.gobgp(&["-j", "neighbor", peer])?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["state"]["messages"]["received"]["update"].as_u64()
    }
}

pub struct Fabric {
    pub daemon: Daemon,
    ctl: PathBuf,
}

impl Fabric {
    pub fn start(
        ns: &Ns,
        dir: &Path,
        name: &str,
        speaker: Value,
        announce: Value,
    ) -> Result<Fabric> {
        let ctl = dir.join(format!("{name}.sock"));
        let conf = dir.join(format!("{name}.json"));
        std::fs::write(
            &conf,
            json!({"speaker": speaker, "control_socket": ctl, "announce": announce}).to_string(),
        )?;
        let bin = std::env::current_exe()?
            .parent()
            .context("bench binary has no directory")?
            .join("fabric-bgpd");
        let child = ns.spawn(
            &[
                &bin.display().to_string(),
                "-c",
                &conf.display().to_string(),
            ],
            &dir.join(format!("{name}.log")),
        )?;
        let f = Fabric {
            daemon: Daemon {
                child: Some(child),
                pid_file: None,
            },
            ctl,
        };
        poll(
            "fabric-bgpd control socket",
            Duration::from_secs(30),
            || f.ctl.exists().then_some(()),
        )?;
        Ok(f)
    }

    pub fn ctl(&self, request: Value) -> Option<Value> {
        let mut s = UnixStream::connect(&self.ctl).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
        writeln!(s, "{request}").ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        let v: Value = serde_json::from_str(&line).ok()?;
        Some(v["data"].clone())
    }

    pub fn count(&self) -> Option<u64> {
        self.ctl(json!({"cmd": "rib_count"}))?["count"].as_u64()
    }

    /// Whether our session with `peer` is Established.
    pub fn established(&self, peer: &str) -> Option<bool> {
        let peers = self.ctl(json!({"cmd": "peers"}))?;
        let p = peers.as_array()?.iter().find(|p| p["address"] == peer)?;
        Some(p["state"] == "Established")
    }

    /// UPDATE messages we sent to `peer`.
    pub fn updates_to(&self, peer: &str) -> Option<u64> {
        let peers = self.ctl(json!({"cmd": "peers"}))?;
        peers.as_array()?.iter().find(|p| p["address"] == peer)?["updates_out"].as_u64()
    }
}

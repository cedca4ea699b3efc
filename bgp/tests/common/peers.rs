//! The real daemons we peer with, each behind one small trait: start from a spec, read the
//! routes it learned from us (machine-readable output), and trigger its route refresh.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Stdio;

use serde_json::Value;

use super::{run, wait_for, Dir, Netns, PidFile, Proc, Seen};

/// How the peer is set up.
pub struct PeerSpec {
    pub asn: u32,
    pub router_id: String,
    pub address: String,
    /// Our speaker's address and AS.
    pub our_address: String,
    pub our_as: u32,
    /// /24s the peer originates towards us.
    pub originate: Vec<String>,
    pub graceful_restart: bool,
    /// Extra lines for the peer's BGP protocol block (BIRD only).
    pub extra: String,
}

pub trait PeerDaemon {
    /// Routes learned from our speaker, by prefix.
    fn learned(&self) -> BTreeMap<String, Seen>;
    fn established(&self) -> bool;
    /// Make the peer ask us for our routes again (it sends ROUTE-REFRESH); false when the
    /// daemon has no command that does.
    fn request_refresh(&self) -> bool;
    /// ORIGINATOR_ID and CLUSTER_LIST of the route the peer holds for `prefix`.
    fn reflection(&self, prefix: &str) -> Option<(String, Vec<String>)>;
}

/// Pull `BGP.originator_id` / `BGP.cluster_list` out of `birdc show route ... all`.
fn bird_reflection(text: &str) -> Option<(String, Vec<String>)> {
    let mut originator = None;
    let mut clusters = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("BGP.originator_id:") {
            originator = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("BGP.cluster_list:") {
            clusters = v.split_whitespace().map(String::from).collect();
        }
    }
    originator.map(|o| (o, clusters))
}

pub struct Bird<'a> {
    ns: &'a Netns,
    sock: String,
    _pid: PidFile,
}

impl<'a> Bird<'a> {
    pub fn start(ns: &'a Netns, dir: &Dir, spec: &PeerSpec) -> Bird<'a> {
        let statics: String = spec
            .originate
            .iter()
            .map(|p| format!("  route {p} blackhole;\n"))
            .collect();
        let ibgp = spec.asn == spec.our_as;
        let conf = format!(
            r#"router id {rid};
log "{log}" all;
protocol device {{}}
protocol static st {{
  ipv4;
{statics}}}
protocol bgp fab {{
  local {addr} as {asn};
  neighbor {peer} as {peer_as};
  {gr}
  {direct}
  {extra}
  ipv4 {{ import all; export all; {nhself} {gateway} }};
}}
"#,
            rid = spec.router_id,
            log = dir.path("bird.log").display(),
            addr = spec.address,
            asn = spec.asn,
            peer = spec.our_address,
            peer_as = spec.our_as,
            gr = if spec.graceful_restart {
                "graceful restart on;"
            } else {
                ""
            },
            direct = if ibgp { "direct;" } else { "" },
            gateway = if ibgp { "gateway direct;" } else { "" },
            extra = spec.extra,
            nhself = if ibgp { "next hop self;" } else { "" },
        );
        Self::start_raw(ns, dir, &conf)
    }

    /// Start BIRD with a config written by the caller (its BGP protocol must be named `fab`).
    pub fn start_raw(ns: &'a Netns, dir: &Dir, conf: &str) -> Bird<'a> {
        let conf_path = dir.write("bird.conf", conf);
        let sock = dir.path("bird.ctl").display().to_string();
        let pid = dir.path("bird.pid");
        ns.exec(&[
            "bird",
            "-c",
            conf_path.to_str().unwrap(),
            "-s",
            &sock,
            "-P",
            pid.to_str().unwrap(),
        ]);
        Bird {
            ns,
            sock,
            _pid: PidFile(pid),
        }
    }

    pub fn birdc(&self, args: &[&str]) -> String {
        let mut cmd = vec!["birdc", "-s", &self.sock];
        cmd.extend_from_slice(args);
        run(&cmd)
    }
}

/// Parse `birdc show route all` output into prefix -> Seen (BGP routes only).
pub fn parse_bird_routes(text: &str, from_protocol: &str) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Seen, bool)> = None;
    let flush = |cur: Option<(String, Seen, bool)>, out: &mut BTreeMap<String, Seen>| {
        if let Some((p, seen, ours)) = cur {
            if ours {
                out.insert(p, seen);
            }
        }
    };
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if !line.starts_with(char::is_whitespace) && first.contains('/') {
            flush(current.take(), &mut out);
            let ours = line.contains(&format!("[{from_protocol} "));
            current = Some((
                first.to_string(),
                Seen {
                    next_hop: None,
                    as_path: Vec::new(),
                    stale: line.contains("stale") || line.contains(" s "),
                },
                ours,
            ));
        } else if let Some((_, seen, _)) = current.as_mut() {
            let l = line.trim();
            if let Some(v) = l.strip_prefix("BGP.next_hop:") {
                seen.next_hop = v.split_whitespace().next().and_then(|a| a.parse().ok());
            } else if let Some(v) = l.strip_prefix("BGP.as_path:") {
                seen.as_path = v
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect();
            }
        }
    }
    flush(current, &mut out);
    out
}

impl PeerDaemon for Bird<'_> {
    fn learned(&self) -> BTreeMap<String, Seen> {
        parse_bird_routes(
            &self.birdc(&["show", "route", "protocol", "fab", "all"]),
            "fab",
        )
    }

    fn established(&self) -> bool {
        self.birdc(&["show", "protocols", "fab"])
            .contains("Established")
    }

    fn request_refresh(&self) -> bool {
        self.birdc(&["reload", "in", "fab"]);
        true
    }

    fn reflection(&self, prefix: &str) -> Option<(String, Vec<String>)> {
        bird_reflection(&self.birdc(&["show", "route", "for", prefix, "all"]))
    }
}

pub struct Frr<'a> {
    ns: &'a Netns,
    name: String,
    _zebra: PidFile,
    _bgpd: PidFile,
    _dirs: DirsGuard,
}

/// FRR's per-instance directories, removed on drop.
struct DirsGuard(Vec<std::path::PathBuf>);

impl Drop for DirsGuard {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl<'a> Frr<'a> {
    pub fn start(ns: &'a Netns, spec: &PeerSpec) -> Frr<'a> {
        let networks: String = spec
            .originate
            .iter()
            .map(|p| format!("  network {p}\n"))
            .collect();
        let conf = format!(
            "router bgp {asn}\n bgp router-id {rid}\n no bgp ebgp-requires-policy\n no bgp network import-check\n{gr} neighbor {peer} remote-as {peer_as}\n address-family ipv4 unicast\n{networks}{nhself} exit-address-family\n!\n",
            asn = spec.asn,
            rid = spec.router_id,
            gr = if spec.graceful_restart { " bgp graceful-restart\n" } else { "" },
            peer = spec.our_address,
            peer_as = spec.our_as,
            nhself = if spec.asn == spec.our_as {
                format!("  neighbor {} next-hop-self\n", spec.our_address)
            } else {
                String::new()
            },
        );
        Self::start_raw(ns, &conf)
    }

    /// Start zebra and bgpd with `router` (the `router bgp` block and what follows it) after
    /// the common lines (datacenter defaults, hostname, log file).
    pub fn start_raw(ns: &'a Netns, router: &str) -> Frr<'a> {
        let name = ns.name.clone();
        let etc = std::path::PathBuf::from(format!("/etc/frr/{name}"));
        let var = std::path::PathBuf::from(format!("/var/run/frr/{name}"));
        let dirs = DirsGuard(vec![etc.clone(), var.clone()]);
        std::fs::create_dir_all(&etc).expect("frr etc dir");
        std::fs::create_dir_all(&var).expect("frr run dir");
        let conf = format!(
            "frr defaults datacenter\nhostname {name}\nlog file {var}/frr.log\n!\n{router}",
            var = var.display(),
        );
        std::fs::write(etc.join("frr.conf"), conf).expect("frr.conf");
        std::fs::write(etc.join("vtysh.conf"), "").expect("vtysh.conf");
        run(&[
            "chown",
            "-R",
            "frr:frr",
            etc.to_str().unwrap(),
            var.to_str().unwrap(),
        ]);
        // The guards exist before the daemons start, so a failed start still cleans up.
        let frr = Frr {
            ns,
            name: name.clone(),
            _zebra: PidFile(var.join("zebra.pid")),
            _bgpd: PidFile(var.join("bgpd.pid")),
            _dirs: dirs,
        };
        let conf = etc.join("frr.conf").display().to_string();
        for daemon in ["zebra", "bgpd"] {
            let bin = format!("/usr/lib/frr/{daemon}");
            let mut args = vec![bin.as_str(), "-N", &name, "-d", "-f", &conf];
            if daemon == "bgpd" {
                // Listen only inside this namespace on the usual port.
                args.extend_from_slice(&["-p", "179"]);
            }
            ns.exec(&args);
        }
        frr
    }

    pub fn vtysh(&self, command: &str) -> Option<String> {
        self.ns
            .try_exec(&["vtysh", "-N", &self.name, "-c", command])
    }
}

impl PeerDaemon for Frr<'_> {
    fn learned(&self) -> BTreeMap<String, Seen> {
        let text = self.vtysh("show bgp ipv4 unicast json").unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let mut out = BTreeMap::new();
        if let Some(routes) = v["routes"].as_object() {
            for (prefix, paths) in routes {
                for path in paths.as_array().into_iter().flatten() {
                    let from_us =
                        path["peerId"].as_str() != Some("(unspec)") && path["nexthops"].is_array();
                    let nh = path["nexthops"][0]["ip"]
                        .as_str()
                        .and_then(|s| s.parse::<IpAddr>().ok());
                    let as_path: Vec<u32> = path["path"]
                        .as_str()
                        .unwrap_or("")
                        .split_whitespace()
                        .filter_map(|a| a.parse().ok())
                        .collect();
                    let local = nh.is_some_and(|h| h.is_unspecified());
                    if from_us && !local {
                        out.insert(
                            prefix.clone(),
                            Seen {
                                next_hop: nh,
                                as_path,
                                stale: path["stale"].as_bool().unwrap_or(false),
                            },
                        );
                    }
                }
            }
        }
        out
    }

    fn established(&self) -> bool {
        self.vtysh("show bgp summary json")
            .is_some_and(|s| s.contains("\"state\":\"Established\""))
    }

    fn request_refresh(&self) -> bool {
        self.vtysh("clear bgp * soft in").is_some()
    }

    fn reflection(&self, prefix: &str) -> Option<(String, Vec<String>)> {
        let text = self.vtysh(&format!("show bgp ipv4 unicast {prefix} json"))?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let path = &v["paths"][0];
        let originator = path["originatorId"].as_str()?.to_string();
        let clusters = path["clusterList"]["list"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Some((originator, clusters))
    }
}

pub struct GoBgp<'a> {
    ns: &'a Netns,
    _proc: Proc,
}

impl<'a> GoBgp<'a> {
    pub fn start(ns: &'a Netns, dir: &Dir, spec: &PeerSpec) -> GoBgp<'a> {
        let gr = if spec.graceful_restart {
            "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120\n"
        } else {
            ""
        };
        let afi_gr = if spec.graceful_restart {
            "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n"
        } else {
            ""
        };
        let conf = format!(
            "[global.config]\n  as = {asn}\n  router-id = \"{rid}\"\n  port = 179\n\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{peer}\"\n    peer-as = {peer_as}\n{gr}  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n{afi_gr}",
            asn = spec.asn,
            rid = spec.router_id,
            peer = spec.our_address,
            peer_as = spec.our_as,
        );
        Self::start_raw(ns, dir, &conf, &spec.originate)
    }

    /// Start gobgpd with a TOML config written by the caller, then originate `originate`.
    pub fn start_raw(ns: &'a Netns, dir: &Dir, conf: &str, originate: &[String]) -> GoBgp<'a> {
        let conf_path = dir.write("gobgpd.toml", conf);
        let log = std::fs::File::create(dir.path("gobgpd.log")).expect("gobgpd log");
        let child = ns
            .command(&[
                "gobgpd",
                "-f",
                conf_path.to_str().unwrap(),
                "--api-hosts",
                "127.0.0.1:50051",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start gobgpd");
        let g = GoBgp {
            ns,
            _proc: Proc(child),
        };
        wait_for("gobgpd API", 15, || g.gobgp(&["-j", "global"]));
        for p in originate {
            g.gobgp(&["global", "rib", "add", p, "-a", "ipv4"])
                .unwrap_or_else(|| panic!("gobgp global rib add {p} failed"));
        }
        g
    }

    pub fn gobgp(&self, args: &[&str]) -> Option<String> {
        let mut cmd = vec!["gobgp"];
        cmd.extend_from_slice(args);
        self.ns.try_exec(&cmd)
    }
}

impl PeerDaemon for GoBgp<'_> {
    fn learned(&self) -> BTreeMap<String, Seen> {
        let text = self.gobgp(&["-j", "global", "rib"]).unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let mut out = BTreeMap::new();
        if let Some(routes) = v.as_object() {
            for (prefix, paths) in routes {
                for path in paths.as_array().into_iter().flatten() {
                    let mut seen = Seen {
                        next_hop: None,
                        as_path: Vec::new(),
                        stale: path["stale"].as_bool().unwrap_or(false),
                    };
                    for attr in path["attrs"].as_array().into_iter().flatten() {
                        match attr["type"].as_u64() {
                            Some(2) => {
                                for seg in attr["as_paths"].as_array().into_iter().flatten() {
                                    seen.as_path.extend(
                                        seg["asns"]
                                            .as_array()
                                            .into_iter()
                                            .flatten()
                                            .filter_map(|a| a.as_u64().map(|n| n as u32)),
                                    );
                                }
                            }
                            Some(3) => {
                                seen.next_hop =
                                    attr["nexthop"].as_str().and_then(|s| s.parse().ok())
                            }
                            _ => {}
                        }
                    }
                    let local = path["source-id"]
                        .as_str()
                        .is_none_or(|s| s == "<nil>" || s.is_empty())
                        && path["neighbor-ip"].as_str().is_none_or(|s| s == "<nil>");
                    if !local && seen.next_hop.is_some_and(|h| !h.is_unspecified()) {
                        out.insert(prefix.clone(), seen);
                    }
                }
            }
        }
        out
    }

    fn established(&self) -> bool {
        self.gobgp(&["-j", "neighbor"]).is_some_and(|s| {
            s.contains("\"session_state\":6") || s.contains("\"session_state\":\"established\"")
        })
    }

    fn request_refresh(&self) -> bool {
        // GoBGP keeps every Adj-RIB-In, so `softresetin` re-runs its own policy and never sends
        // ROUTE-REFRESH: there is no CLI way to make it ask us.
        false
    }

    fn reflection(&self, prefix: &str) -> Option<(String, Vec<String>)> {
        let text = self.gobgp(&["-j", "global", "rib", prefix])?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let path = v.as_object()?.values().next()?.as_array()?.first()?.clone();
        let mut originator = None;
        let mut clusters = Vec::new();
        for attr in path["attrs"].as_array().into_iter().flatten() {
            match attr["type"].as_u64() {
                Some(9) => originator = attr["value"].as_str().map(String::from),
                Some(10) => {
                    clusters = attr["value"]
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .filter_map(|c| c.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default()
                }
                _ => {}
            }
        }
        originator.map(|o| (o, clusters))
    }
}

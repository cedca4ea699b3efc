//! When each container /32 reaches tor1, seen one of two ways, each on its own thread noting
//! the first moment a prefix shows:
//! - `kernel` (the default): a netlink socket in tor1's namespace subscribed to IPv4 route
//!   notifications. tor1's BIRD exports every BGP route to its kernel in the same step that
//!   puts it in its RIB, so the notification marks the RIB's change (a little after it, never
//!   before), with no polling and no load on the BIRD being timed.
//! - `birdc`: one connection to tor1's BIRD control socket asking every few milliseconds for
//!   the /32s still awaited. The RIB itself, at the poll's resolution, and at the price of
//!   BIRD answering the polls while it processes the updates being timed.

use std::collections::HashMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use ipnet::Ipv4Net;
use nix::sched::{setns, CloneFlags};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::AsyncSocket;
use rtnetlink::MulticastGroup;

use super::probe::Birdc;
use super::stopping;

/// Prefixes first seen, with when; filled by the observer's thread.
type Seen = Arc<Mutex<HashMap<Ipv4Addr, Instant>>>;

/// What the observer cost while it ran.
#[derive(Debug, Clone, Copy)]
pub enum Cost {
    /// BIRD polled `polls` times, each answered in `mean` on average.
    Polls { polls: u64, mean: Duration },
    /// Route notifications received for the watched subnets.
    Notifications { routes: u64 },
}

/// Watches tor1 in the background for /32s inside the container subnets.
pub struct RibObserver {
    seen: Seen,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Cost>>>,
}

impl RibObserver {
    /// Watches the kernel routing table of namespace `netns` (tor1's, which its BIRD fills).
    pub fn kernel(netns: &str, within: &[Ipv4Net]) -> Result<RibObserver> {
        let ns = File::open(Path::new("/run/netns").join(netns))
            .with_context(|| format!("opening namespace {netns}"))?;
        let within = within.to_vec();
        let (ready_tx, ready_rx) = mpsc::channel();
        let observer = RibObserver::spawn(move |seen, stop| {
            watch_kernel(&ns, &within, &seen, &stop, &ready_tx)
        });
        // Subscribed before any attach starts, or its first notifications would be missed.
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => Ok(observer),
            Err(_) => match observer.stop() {
                Err(e) => Err(e.context("watching tor1's routes")),
                Ok(_) => bail!("the route watcher did not start within 10 s"),
            },
        }
    }

    /// Polls BIRD over its control socket `ctl` every `every`.
    pub fn birdc(ctl: &Path, within: &[Ipv4Net], every: Duration) -> Result<RibObserver> {
        let mut birdc = Birdc::connect(ctl)?;
        let wanted: Vec<String> = within.iter().map(|n| format!("{n}{{32,32}}")).collect();
        let wanted = wanted.join(", ");
        birdc
            .command(&poll_command(&wanted, &[]))
            .context("BIRD refused the poll command")?;
        Ok(RibObserver::spawn(move |seen, stop| {
            poll_birdc(&mut birdc, &wanted, every, &seen, &stop)
        }))
    }

    fn spawn(
        run: impl FnOnce(Seen, Arc<AtomicBool>) -> Result<Cost> + Send + 'static,
    ) -> RibObserver {
        let seen: Seen = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen_w, stop_w) = (seen.clone(), stop.clone());
        RibObserver {
            seen,
            stop,
            handle: Some(std::thread::spawn(move || run(seen_w, stop_w))),
        }
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
    pub fn stop(mut self) -> Result<Cost> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => bail!("the RIB observer panicked"),
            None => bail!("the RIB observer was already stopped"),
        }
    }
}

impl Drop for RibObserver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Notes each new /32 in `within` from the route notifications of namespace `ns`.
fn watch_kernel(
    ns: &File,
    within: &[Ipv4Net],
    seen: &Seen,
    stop: &AtomicBool,
    ready: &mpsc::Sender<()>,
) -> Result<Cost> {
    setns(ns, CloneFlags::CLONE_NEWNET).context("entering tor1's namespace")?;
    run_ahead_of_the_load();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (mut connection, _handle, mut messages) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Ipv4Route])
                .context("netlink route socket")?;
        // A batch's routes arrive together; an overrun would lose their notifications.
        connection
            .socket_mut()
            .socket_mut()
            .set_rx_buf_sz(4 << 20)
            .context("netlink receive buffer")?;
        tokio::spawn(connection);
        let _ = ready.send(());
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut routes = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tokio::select! {
                message = messages.next() => {
                    let (message, _) = message.ok_or_else(|| anyhow!("the netlink socket closed"))?;
                    let now = Instant::now();
                    let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) =
                        message.payload
                    else {
                        continue;
                    };
                    if let Some(ip) = host_route(&route).filter(|ip| within.iter().any(|n| n.contains(ip))) {
                        routes += 1;
                        let mut map = seen.lock().map_err(|_| anyhow!("poisoned"))?;
                        map.entry(ip).or_insert(now);
                    }
                }
                _ = tick.tick() => {}
            }
        }
        Ok(Cost::Notifications { routes })
    })
}

/// The observer is the bench's clock: it runs at the ToRs' priority (nice -10), so the moment it
/// notes is when the route arrived, not when a core came free behind the attach work. Best
/// effort: without it the figures only get coarser.
fn run_ahead_of_the_load() {
    let tid = nix::unistd::gettid().as_raw();
    // SAFETY: setpriority takes plain integers and only changes this thread's nice value.
    let rc =
        unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid as nix::libc::id_t, -10) };
    if rc != 0 {
        eprintln!(
            "lab bench attach: the RIB observer keeps the default priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The address of an IPv4 /32 route.
fn host_route(route: &RouteMessage) -> Option<Ipv4Addr> {
    if route.header.destination_prefix_length != 32 {
        return None;
    }
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}

/// Asks BIRD for the awaited /32s every `every` until stopped.
fn poll_birdc(
    birdc: &mut Birdc,
    wanted: &str,
    every: Duration,
    seen: &Seen,
    stop: &AtomicBool,
) -> Result<Cost> {
    run_ahead_of_the_load();
    let (mut polls, mut busy) = (0u64, Duration::ZERO);
    let mut known: Vec<Ipv4Net> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let cmd = poll_command(wanted, &known);
        let sent = Instant::now();
        let lines = birdc.command(&cmd)?;
        let now = Instant::now();
        polls += 1;
        busy += now - sent;
        let mut map = seen.lock().map_err(|_| anyhow!("poisoned"))?;
        let before = map.len();
        for prefix in lines.iter().filter_map(|l| l.split_whitespace().next()) {
            if let Ok(net) = prefix.parse::<Ipv4Net>() {
                map.entry(net.addr()).or_insert(now);
            }
        }
        if map.len() != before {
            let hosts: Vec<Ipv4Net> = map.keys().map(|&a| Ipv4Net::from(a)).collect();
            known = Ipv4Net::aggregate(&hosts);
        }
        drop(map);
        std::thread::sleep(every);
    }
    let mean = busy.checked_div(polls.max(1) as u32).unwrap_or_default();
    Ok(Cost::Polls { polls, mean })
}

/// BIRD's CLI takes commands up to 4 KiB; the exclusion list stays well below that.
const MAX_EXCLUDED_CHARS: usize = 3000;

/// The poll: the /32s in `wanted` (a BIRD prefix-set body), less the prefixes already seen.
/// Leaving those out keeps each reply to the few routes still awaited, so the poller's load on
/// BIRD does not grow with every attached container. Seen /32s are aggregated into covering
/// prefixes to keep the command short; if they still do not fit, only the first are left out
/// (a longer reply, the same answer).
fn poll_command(wanted: &str, seen: &[Ipv4Net]) -> String {
    let mut excluded = String::new();
    for net in seen {
        let item = format!("{net}+");
        if excluded.len() + item.len() + 2 > MAX_EXCLUDED_CHARS {
            break;
        }
        if !excluded.is_empty() {
            excluded.push_str(", ");
        }
        excluded.push_str(&item);
    }
    if excluded.is_empty() {
        format!("show route where net ~ [ {wanted} ]")
    } else {
        format!("show route where net ~ [ {wanted} ] && !(net ~ [ {excluded} ])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_leaves_out_what_was_seen_aggregated() {
        let wanted = "10.1.2.0/24{32,32}";
        assert_eq!(
            poll_command(wanted, &[]),
            "show route where net ~ [ 10.1.2.0/24{32,32} ]"
        );
        let hosts: Vec<Ipv4Net> = (0..4u8)
            .map(|i| Ipv4Net::from(Ipv4Addr::new(10, 1, 2, 4 + i)))
            .collect();
        let seen = Ipv4Net::aggregate(&hosts);
        assert_eq!(
            poll_command(wanted, &seen),
            "show route where net ~ [ 10.1.2.0/24{32,32} ] && !(net ~ [ 10.1.2.4/30+ ])"
        );
    }

    #[test]
    fn the_poll_stays_within_birds_command_limit() {
        // Every other address: nothing aggregates.
        let seen: Vec<Ipv4Net> = (0..1000u32)
            .map(|i| Ipv4Net::from(Ipv4Addr::from(0x0a01_0000 + 2 * i)))
            .collect();
        let cmd = poll_command("10.1.0.0/16{32,32}", &seen);
        assert!(cmd.len() < 4096, "{} bytes", cmd.len());
        assert!(cmd.contains("10.1.0.0/32+"), "{cmd}");
    }
}

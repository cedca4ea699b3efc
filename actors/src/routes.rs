//! The route actor: local container /32s go into the kernel (towards the gateway port) and to
//! the ToRs and the masters' route reflectors over BGP; routes learned from them go into the
//! kernel, ECMP where there are several next hops. Every kernel route carries our own route
//! protocol number, so the agent finds exactly its routes after a restart.
//!
//! The speaker's peers are the ToRs of the host's `Bgp` object and one iBGP session per
//! reflector ([`Reflectors`], from the master link's heartbeats); both change live, by adding
//! and removing peers ([`crate::reflector_peers`], which also states the rule for fabrics with
//! both: the ToR path is preferred, the reflected one a fallback, a host exports only its own
//! routes). No `Bgp` object for the host means no speaker, reflectors known or not: the router
//! address our /32s point at comes from it. A learned next hop that is on no connected subnet
//! cannot be a kernel gateway and is skipped ([`crate::next_hops`]).
//!
//! What is announced is [`crate::announce_blocks`]'s: the maximal aligned blocks of the local
//! and prepared addresses to the reflectors, every local /32 to the ToRs, by internal
//! communities the speaker filters per peer. It is recomputed on every change of the local or
//! prepared set (attach, detach, reserve refill, reserve given back) and only the difference
//! goes to the speaker. A learned block is installed like a /32 (the kernel takes the longest
//! match, so a /32 learned elsewhere inside it, an address the master took back from that
//! host's reserve, wins).
//!
//! [`RouteTable`] holds the logic: the desired kernel table and its difference to what is
//! installed. After a restart the learned routes found in the kernel are kept as stale until
//! BGP has re-learned them, so traffic keeps flowing while the agent is away; [`StaleSweep`]
//! says when the ones BGP did not confirm go: once every peer (ToRs and reflectors) has sent
//! End-of-RIB, or after [`STALE_AFTER`].

use crate::announce_blocks::{announcements, changes, Mark, BLOCK_COMMUNITY};
use crate::bgp_settings::{plan, BgpPlan, BgpSettings};
use crate::flows::Restart;
pub use crate::reflector_peers::Reflectors;
use crate::reflector_peers::{desired_peers, peer_changes};
use crate::types::StateSource;
use crate::RESTORE_RETRY;
use actix::prelude::*;
use async_trait::async_trait;
use fabric_bgp::packet::{Afi, AsPath, Origin, PathAttrs};
use fabric_bgp::rib::BestChange;
use fabric_bgp::{PeerConfig, RibEvent, Speaker};
use ipnet::{IpNet, Ipv4Net};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

/// How long stale learned routes (found in the kernel at start, or kept from a stopped
/// speaker) are kept at most without BGP confirming them, when not every neighbour sends
/// End-of-RIB before.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// A kernel route of ours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelRoute {
    /// A local container: out of the gateway port (with a permanent neighbour entry).
    Local,
    /// Learned: via these next hops (ECMP when several).
    Via(BTreeSet<Ipv4Addr>),
}

/// The kernel's routing table as far as our route protocol goes.
#[async_trait]
pub trait Kernel: Send + Sync + 'static {
    async fn list(&self) -> Result<BTreeMap<Ipv4Net, KernelRoute>, String>;
    async fn replace(&self, prefix: Ipv4Net, route: &KernelRoute) -> Result<(), String>;
    /// Succeeds when the route is already gone.
    async fn delete(&self, prefix: Ipv4Net, route: &KernelRoute) -> Result<(), String>;
    /// The connected subnets, on which a next hop can be a gateway; None when this kernel
    /// cannot say (then every next hop is tried).
    async fn connected(&self) -> Result<Option<Vec<Ipv4Net>>, String> {
        Ok(None)
    }
}

/// Desired routes and what to change in the kernel.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub local: BTreeSet<Ipv4Addr>,
    /// Learned prefix → (next hops, stale).
    pub learned: BTreeMap<Ipv4Net, (BTreeSet<Ipv4Addr>, bool)>,
    /// Addresses reserved for this host's next containers → whether their route is in the
    /// kernel. Routed to the gateway port ahead of their attach (where the pipeline drops
    /// what comes for them) and never announced, so an attach only has to announce.
    pub prepared: BTreeMap<Ipv4Addr, bool>,
}

impl RouteTable {
    /// A local container wins over a learned route (an address that moved here), which wins
    /// over a prepared one (an address the master took back from our reserve).
    pub fn desired(&self) -> BTreeMap<Ipv4Net, KernelRoute> {
        let mut table: BTreeMap<Ipv4Net, KernelRoute> = self
            .prepared
            .keys()
            .map(|ip| (host_net(*ip), KernelRoute::Local))
            .collect();
        table.extend(
            self.learned
                .iter()
                .filter(|(_, (hops, _))| !hops.is_empty())
                .map(|(p, (hops, _))| (*p, KernelRoute::Via(hops.clone()))),
        );
        for ip in &self.local {
            table.insert(host_net(*ip), KernelRoute::Local);
        }
        table
    }

    /// (routes to add or replace, routes to delete) to turn `installed` into the desired table.
    #[allow(clippy::type_complexity)]
    pub fn diff(
        &self,
        installed: &BTreeMap<Ipv4Net, KernelRoute>,
    ) -> (Vec<(Ipv4Net, KernelRoute)>, Vec<(Ipv4Net, KernelRoute)>) {
        route_changes(&self.desired(), installed)
    }

    /// Keeps the learned routes found in the kernel, marked stale.
    pub fn adopt_stale(&mut self, installed: &BTreeMap<Ipv4Net, KernelRoute>) {
        for (prefix, route) in installed {
            if let KernelRoute::Via(hops) = route {
                self.learned
                    .entry(*prefix)
                    .or_insert_with(|| (hops.clone(), true));
            }
        }
    }

    /// Marks every learned route stale (its speaker is gone; a new one must confirm it).
    pub fn mark_stale(&mut self) {
        for (_, stale) in self.learned.values_mut() {
            *stale = true;
        }
    }

    /// Drops the learned routes BGP never confirmed; how many.
    pub fn sweep_stale(&mut self) -> usize {
        let before = self.learned.len();
        self.learned.retain(|_, (_, stale)| !*stale);
        before - self.learned.len()
    }

    /// Applies best-path changes. Only container /32s and other hosts' address blocks
    /// (marked [`BLOCK_COMMUNITY`] by the agent that owns them) are taken: the fabric's links
    /// are the host's own business, and a learned route must never replace a connected one.
    /// Our own routes (no next hop) and IPv6 are ignored.
    pub fn learn(&mut self, changes: &[BestChange]) {
        for change in changes {
            let IpNet::V4(prefix) = change.prefix else {
                continue;
            };
            let block = change
                .paths
                .iter()
                .any(|p| p.communities.contains(&BLOCK_COMMUNITY));
            if prefix.prefix_len() != 32 && !block {
                // Gone, or never one of ours (a block that lost its mark is dropped too).
                self.learned.remove(&prefix);
                continue;
            }
            let hops: BTreeSet<Ipv4Addr> = change
                .paths
                .iter()
                .filter_map(|p| match p.next_hop {
                    Some(IpAddr::V4(nh)) => Some(nh),
                    _ => None,
                })
                .collect();
            if hops.is_empty() {
                self.learned.remove(&prefix);
            } else {
                self.learned.insert(prefix, (hops, false));
            }
        }
    }
}

/// When the stale learned routes are swept. RFC 4724 §4.1: the restarting speaker removes
/// its stale routes once it has End-of-RIB from its peers. So a (re)start waits for the
/// End-of-RIB of every configured neighbour on the speaker of that generation, or for
/// [`STALE_AFTER`] (the neighbour may be down, or never send one), whichever comes first. A
/// newer generation replaces the wait, so an older speaker's End-of-RIB or timer never
/// sweeps for a newer one.
#[derive(Debug, Default)]
pub struct StaleSweep {
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    generation: u64,
    /// Peers to hear End-of-RIB from; None when no speaker runs (only the timer sweeps).
    neighbours: Option<BTreeSet<IpAddr>>,
    /// Peers that have sent it.
    synced: BTreeSet<IpAddr>,
}

impl StaleSweep {
    /// Stale routes now wait for speaker `generation` with `neighbours` (None: no speaker).
    pub fn wait(&mut self, generation: u64, neighbours: Option<BTreeSet<IpAddr>>) {
        self.pending = Some(Pending {
            generation,
            neighbours,
            synced: BTreeSet::new(),
        });
    }

    /// Whether stale routes wait for a sweep.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// `peer` sent End-of-RIB (IPv4) to speaker `generation`. True: sweep now.
    pub fn end_of_rib(&mut self, generation: u64, peer: IpAddr) -> bool {
        match &mut self.pending {
            Some(p) if p.generation == generation => {
                p.synced.insert(peer);
                self.settle()
            }
            _ => false,
        }
    }

    /// Neighbours added to and removed from the running speaker `generation`: a removed one
    /// is no longer waited for, an added one is (again, if it was removed and added back).
    /// True: sweep now.
    pub fn peers_changed(&mut self, generation: u64, add: &[IpAddr], remove: &[IpAddr]) -> bool {
        match &mut self.pending {
            Some(Pending {
                generation: g,
                neighbours: Some(neighbours),
                synced,
            }) if *g == generation => {
                for n in remove {
                    neighbours.remove(n);
                    synced.remove(n);
                }
                neighbours.extend(add.iter().copied());
                self.settle()
            }
            _ => false,
        }
    }

    /// [`STALE_AFTER`] has passed since `generation` began to wait. True: sweep now.
    pub fn timer(&mut self, generation: u64) -> bool {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.generation == generation)
        {
            self.pending = None;
            return true;
        }
        false
    }

    /// Ends the wait when every neighbour has sent End-of-RIB.
    fn settle(&mut self) -> bool {
        let done = self.pending.as_ref().is_some_and(|p| {
            p.neighbours
                .as_ref()
                .is_some_and(|n| n.is_subset(&p.synced))
        });
        if done {
            self.pending = None;
        }
        done
    }
}

/// (routes to add or replace, routes to delete) to turn `installed` into `desired`.
#[allow(clippy::type_complexity)]
pub fn route_changes(
    desired: &BTreeMap<Ipv4Net, KernelRoute>,
    installed: &BTreeMap<Ipv4Net, KernelRoute>,
) -> (Vec<(Ipv4Net, KernelRoute)>, Vec<(Ipv4Net, KernelRoute)>) {
    let replace = desired
        .iter()
        .filter(|(p, r)| installed.get(p) != Some(r))
        .map(|(p, r)| (*p, r.clone()))
        .collect();
    let delete = installed
        .iter()
        .filter(|(p, _)| !desired.contains_key(p))
        .map(|(p, r)| (*p, r.clone()))
        .collect();
    (replace, delete)
}

/// Makes our routes in the kernel equal to `desired`; the number of changes. A route the
/// kernel refuses does not hold up the others (a multipath route with a next hop behind an
/// uplink that is administratively down is refused, "Nexthop has invalid gateway", until BGP
/// drops that session); every refusal is reported.
pub async fn sync_kernel(
    kernel: &dyn Kernel,
    desired: &BTreeMap<Ipv4Net, KernelRoute>,
) -> Result<usize, String> {
    let installed = kernel.list().await?;
    let filtered;
    let desired = match kernel.connected().await {
        Ok(Some(connected)) => {
            let (mut table, skipped) = crate::next_hops::reachable(desired, &connected);
            // A best path none of whose next hops is usable (a reflected path that arrived
            // before the ToR's after a restart) leaves the route the kernel holds alone: the
            // decision process does not resolve next hops yet, so the kernel's route stays
            // the better guess until a usable path replaces it or the prefix goes.
            for (prefix, route) in &installed {
                if desired.contains_key(prefix) && !table.contains_key(prefix) {
                    table.insert(*prefix, route.clone());
                }
            }
            for (next_hop, routes) in skipped {
                tracing::warn!(
                    %next_hop,
                    routes,
                    "learned next hop is on no connected subnet, so it cannot be a kernel \
                     gateway: left out of its routes"
                );
            }
            filtered = table;
            &filtered
        }
        Ok(None) => desired,
        Err(error) => {
            tracing::warn!(%error, "cannot list connected subnets; trying every next hop");
            desired
        }
    };
    let (replace, delete) = route_changes(desired, &installed);
    let mut done = 0;
    let mut errors = Vec::new();
    for (p, r) in &replace {
        match kernel.replace(*p, r).await {
            Ok(()) => done += 1,
            Err(e) => errors.push(e),
        }
    }
    for (p, r) in &delete {
        match kernel.delete(*p, r).await {
            Ok(()) => done += 1,
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(done)
    } else {
        Err(format!(
            "{} of {} route changes failed: {}",
            errors.len(),
            replace.len() + delete.len(),
            errors.join("; ")
        ))
    }
}

/// The speaker's own thread. Its core and sessions (spawned where it starts) answer the ToRs
/// and send our announcements while the actor system's one thread is busy with attaches;
/// on that thread, an UPDATE for a new container waited behind the attach work of its batch.
/// None if the thread cannot be made: the speaker then shares the actor system's.
fn bgp_runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("bgp")
                .enable_all()
                .build()
                .map_err(|error| tracing::warn!(%error, "no thread of its own for BGP"))
                .ok()
        })
        .as_ref()
}

pub fn host_net(ip: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(ip, 32).unwrap_or_else(|_| Ipv4Net::default())
}

/// The actor: owns the route table, the kernel driver and the BGP speaker.
pub struct RouteActor {
    kernel: Arc<dyn Kernel>,
    table: RouteTable,
    ready: bool,
    /// The running speaker's settings.
    settings: Option<BgpSettings>,
    /// The settings from the master (the speaker follows them once ready).
    wanted: Option<BgpSettings>,
    /// The reflectors from the master's heartbeats.
    reflectors: Reflectors,
    /// The running speaker's peers (ToRs and reflectors).
    peers: BTreeMap<IpAddr, PeerConfig>,
    speaker: Option<Arc<Speaker>>,
    /// What the running speaker was given to announce (see [`crate::announce_blocks`]).
    announced: BTreeMap<Ipv4Net, Mark>,
    /// Bumped for every new speaker, so a dead speaker's updates are ignored.
    speaker_gen: u64,
    /// When the stale learned routes go.
    stale: StaleSweep,
    /// Rebuilds the local routes on start and after a restart (else a `Restore` must).
    source: Option<Arc<dyn StateSource>>,
}

impl RouteActor {
    pub fn new(kernel: Arc<dyn Kernel>) -> RouteActor {
        RouteActor {
            kernel,
            table: RouteTable::default(),
            ready: false,
            settings: None,
            wanted: None,
            reflectors: Reflectors::default(),
            peers: BTreeMap::new(),
            speaker: None,
            announced: BTreeMap::new(),
            speaker_gen: 0,
            stale: StaleSweep::default(),
            source: None,
        }
    }

    /// Restores the local routes from `source` whenever the actor starts.
    pub fn with_source(mut self, source: Arc<dyn StateSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Brings the speaker's announcements to the local and prepared sets: the difference
    /// only, in the order [`changes`] gives. Nothing without a speaker (a new one gets
    /// everything).
    fn sync_announcements(&mut self) {
        let Some(speaker) = &self.speaker else {
            return;
        };
        let want = announcements(&self.table.local, self.table.prepared.keys());
        let diff = changes(&self.announced, &want);
        if diff.is_empty() {
            return;
        }
        for (mark, prefixes) in &diff.announce {
            let attrs = PathAttrs {
                origin: Origin::Igp,
                as_path: AsPath::default(),
                communities: mark.communities(),
                ..PathAttrs::default()
            };
            let prefixes = prefixes.iter().map(|p| IpNet::V4(*p)).collect();
            if let Err(e) = speaker.announce(prefixes, attrs) {
                tracing::error!(error = %e, ?mark, "announce failed");
            }
        }
        if !diff.withdraw.is_empty() {
            let prefixes = diff.withdraw.iter().map(|p| IpNet::V4(*p)).collect();
            if let Err(e) = speaker.withdraw(prefixes) {
                tracing::error!(error = %e, "withdraw failed");
            }
        }
        tracing::debug!(
            announced = diff.announce.iter().map(|(_, p)| p.len()).sum::<usize>(),
            withdrawn = diff.withdraw.len(),
            blocks = want.values().filter(|m| **m == Mark::Block).count(),
            "bgp announcements updated"
        );
        self.announced = want;
    }

    /// Brings the speaker to the wanted settings and reflectors (only once local routes are
    /// known): a new speaker for a new AS or router address, else peers added and removed.
    fn apply_bgp(&mut self, ctx: &mut Context<Self>) {
        if !self.ready {
            return;
        }
        let wanted = self.wanted.clone();
        match plan(self.settings.as_ref(), wanted.as_ref()) {
            BgpPlan::Keep => self.update_peers(ctx),
            BgpPlan::Stop => {
                tracing::info!("bgp settings removed: stopping the speaker");
                self.speaker = None;
                self.announced.clear();
                self.settings = None;
                self.peers.clear();
                self.speaker_gen += 1;
                // What we learned is kept a while (as after a restart), then dropped.
                self.table.mark_stale();
                self.wait_stale(None, ctx);
            }
            BgpPlan::Start(s) | BgpPlan::Restart(s) => {
                self.speaker = None;
                self.announced.clear();
                self.speaker_gen += 1;
                self.table.mark_stale();
                let peers = desired_peers(&s, &self.reflectors);
                self.wait_stale(Some(peers.keys().copied().collect()), ctx);
                self.start_speaker(s, peers, ctx);
            }
        }
    }

    /// Adds and removes peers of the running speaker to match the wanted ToRs and reflectors.
    fn update_peers(&mut self, ctx: &mut Context<Self>) {
        let (Some(speaker), Some(s)) = (self.speaker.clone(), self.wanted.clone()) else {
            return;
        };
        self.settings = Some(s.clone());
        let desired = desired_peers(&s, &self.reflectors);
        let changes = peer_changes(&self.peers, &desired);
        if changes.is_empty() {
            return;
        }
        tracing::info!(
            add = ?changes.added(),
            remove = ?changes.remove,
            "bgp peers changed"
        );
        self.peers = desired;
        if self
            .stale
            .peers_changed(self.speaker_gen, &changes.added(), &changes.remove)
        {
            self.sweep_stale("every remaining peer has sent End-of-RIB", ctx);
        }
        // Waited for (the mailbox holds meanwhile), so two changes in a row reach the speaker
        // in order: a peer removed and added back is never added before its removal.
        ctx.wait(
            async move {
                for peer in changes.remove {
                    if let Err(e) = speaker.remove_peer(peer).await {
                        tracing::error!(%peer, error = %e, "remove peer");
                    }
                }
                for config in changes.add {
                    let peer = config.address;
                    if let Err(e) = speaker.add_peer(config).await {
                        tracing::error!(%peer, error = %e, "add peer");
                    }
                }
            }
            .into_actor(self),
        );
    }

    fn start_speaker(
        &mut self,
        s: BgpSettings,
        peers: BTreeMap<IpAddr, PeerConfig>,
        ctx: &mut Context<Self>,
    ) {
        let generation = self.speaker_gen;
        let addr = ctx.address();
        self.settings = Some(s.clone());
        self.peers = peers.clone();
        let config = s.speaker_config();
        ctx.wait(
            async move {
                let speaker = match bgp_runtime() {
                    Some(rt) => rt
                        .spawn(Speaker::new(config))
                        .await
                        .map_err(|_| fabric_bgp::SpeakerError::Stopped)??,
                    None => Speaker::new(config).await?,
                };
                Ok::<_, fabric_bgp::SpeakerError>(Arc::new(speaker))
            }
            .into_actor(self)
            .map(move |result, act, ctx| match result {
                Ok(speaker) => {
                    tracing::info!(asn = s.local_as, router = %s.router_ip, "bgp speaker started");
                    act.speaker = Some(speaker.clone());
                    // Our routes first, then the peers: the first UPDATE after a restart
                    // carries them all, before End-of-RIB. (The mailbox waited for the
                    // start, so the sets are still those of the request.)
                    act.announced.clear();
                    act.sync_announcements();
                    match speaker.subscribe() {
                        Ok(mut rx) => {
                            actix::spawn(async move {
                                // One message at a time: an End-of-RIB reaches the actor
                                // after the changes before it.
                                while let Some(event) = rx.recv().await {
                                    let sent = match event {
                                        RibEvent::Changes(batch) => {
                                            addr.send(Learned(generation, batch)).await
                                        }
                                        RibEvent::EndOfRib {
                                            peer,
                                            afi: Afi::Ipv4,
                                        } => addr.send(EndOfRib(generation, peer)).await,
                                        RibEvent::EndOfRib { .. } => continue,
                                    };
                                    if sent.is_err() {
                                        break;
                                    }
                                }
                            });
                        }
                        Err(e) => tracing::error!(error = %e, "subscribe"),
                    }
                    // Before any later peer change (see update_peers).
                    ctx.wait(
                        async move {
                            for (peer, config) in peers {
                                if let Err(e) = speaker.add_peer(config).await {
                                    tracing::error!(%peer, error = %e, "add peer");
                                }
                            }
                        }
                        .into_actor(act),
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the bgp speaker");
                    act.settings = None;
                    act.peers.clear();
                }
            }),
        );
    }

    /// Stale learned routes wait for the current speaker generation's `neighbours` (None: no
    /// speaker) to send End-of-RIB, at most [`STALE_AFTER`].
    fn wait_stale(&mut self, neighbours: Option<BTreeSet<IpAddr>>, ctx: &mut Context<Self>) {
        let generation = self.speaker_gen;
        self.stale.wait(generation, neighbours);
        ctx.run_later(STALE_AFTER, move |act, ctx| {
            if act.stale.timer(generation) {
                act.sweep_stale("timer", ctx);
            }
        });
    }

    /// Drops the learned routes BGP did not confirm and reconciles the kernel.
    fn sweep_stale(&mut self, why: &str, ctx: &mut Context<Self>) {
        let removed = self.table.sweep_stale();
        tracing::info!(removed, why, "stale learned routes swept");
        self.reconcile(ctx);
    }

    /// Makes the kernel match the table (blocking the mailbox, so changes stay ordered).
    fn reconcile(&mut self, ctx: &mut Context<Self>) {
        if !self.ready {
            return;
        }
        let kernel = self.kernel.clone();
        let table_now = self.table.desired();
        ctx.wait(
            async move { sync_kernel(kernel.as_ref(), &table_now).await }
                .into_actor(self)
                .map(|result, _, _| match result {
                    Ok(n) => tracing::debug!(changes = n, "kernel routes reconciled"),
                    Err(e) => tracing::error!(error = %e, "kernel route reconcile failed"),
                }),
        );
    }
}

impl Actor for RouteActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(crate::MAILBOX);
        let Some(source) = self.source.clone() else {
            return;
        };
        ctx.wait(
            async move { source.endpoints().await }
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(list) => {
                        let ips = list.iter().map(|e| e.ip).collect();
                        ctx.wait(act.restore(ips));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "route actor cannot restore; restarting shortly");
                        // Not in a tight loop while the master is away.
                    ctx.run_later(RESTORE_RETRY, |_, ctx| ctx.stop());
                    }
                }),
        );
    }
}

impl Supervised for RouteActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("route actor restarting");
        self.table = RouteTable::default();
        self.ready = false;
        // Keep the wanted settings and reflectors (the master link sends only changes); start
        // a new speaker.
        self.settings = None;
        self.peers.clear();
        self.speaker = None;
        self.announced.clear();
        self.speaker_gen += 1;
        self.stale = StaleSweep::default();
    }
}

impl Handler<Restart> for RouteActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// A local container's /32: kernel route, then BGP announcement.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct AddLocal(pub Ipv4Addr);

/// Withdraw and remove a local /32.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct RemoveLocal(pub Ipv4Addr);

/// The local /32s after a (re)start: reconcile the kernel, then start BGP.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restore(pub Vec<Ipv4Addr>);

/// This host's BGP settings from the master (None: the object was deleted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Configure(pub Option<BgpSettings>);

/// Best-path changes from speaker generation `.0`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Learned(pub u64, pub Vec<BestChange>);

/// End-of-RIB (IPv4) from peer `.1` (a ToR or a reflector) on speaker generation `.0`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndOfRib(pub u64, pub IpAddr);

/// The current desired table (for tests and inspect).
#[derive(Message)]
#[rtype(result = "BTreeMap<Ipv4Net, KernelRoute>")]
pub struct Table;

impl Handler<AddLocal> for RouteActor {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, msg: AddLocal, _: &mut Context<Self>) -> Self::Result {
        let ip = msg.0;
        let routed = self.table.prepared.remove(&ip) == Some(true)
            && !self.table.learned.contains_key(&host_net(ip));
        self.table.local.insert(ip);
        if routed {
            self.sync_announcements();
            return Box::pin(fut::ready(Ok(())));
        }
        let kernel = self.kernel.clone();
        Box::pin(
            async move { kernel.replace(host_net(ip), &KernelRoute::Local).await }
                .into_actor(self)
                .map(move |result, act, _| {
                    if result.is_ok() {
                        act.sync_announcements();
                    } else {
                        act.table.local.remove(&ip);
                    }
                    result
                }),
        )
    }
}

impl Handler<RemoveLocal> for RouteActor {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, msg: RemoveLocal, _: &mut Context<Self>) -> Self::Result {
        let ip = msg.0;
        self.table.local.remove(&ip);
        self.sync_announcements();
        let kernel = self.kernel.clone();
        // A learned route for the same prefix (an address moved to another host) takes over.
        let after = self.table.desired().get(&host_net(ip)).cloned();
        Box::pin(
            async move {
                match after {
                    Some(route) => kernel.replace(host_net(ip), &route).await,
                    None => kernel.delete(host_net(ip), &KernelRoute::Local).await,
                }
            }
            .into_actor(self),
        )
    }
}

/// Addresses reserved for this host: route them to the gateway port ahead of their attach.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Prepare(pub Vec<Ipv4Addr>);

/// Reserved addresses given back: their prepared routes go (unless a container has one).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unprepare(pub Vec<Ipv4Addr>);

impl Handler<Prepare> for RouteActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Prepare, _: &mut Context<Self>) -> Self::Result {
        let mut install = Vec::new();
        for ip in msg.0 {
            if self.table.local.contains(&ip) || self.table.prepared.contains_key(&ip) {
                continue;
            }
            self.table.prepared.insert(ip, false);
            if !self.table.learned.contains_key(&host_net(ip)) {
                install.push(ip);
            }
        }
        let kernel = self.kernel.clone();
        Box::pin(
            async move {
                let mut routed = Vec::new();
                for ip in install {
                    match kernel.replace(host_net(ip), &KernelRoute::Local).await {
                        Ok(()) => routed.push(ip),
                        Err(error) => tracing::warn!(%error, %ip, "preparing a route failed"),
                    }
                }
                routed
            }
            .into_actor(self)
            .map(|routed, act, _| {
                for ip in routed {
                    // Only if still prepared: an attach may have taken it meanwhile.
                    if let Some(installed) = act.table.prepared.get_mut(&ip) {
                        *installed = true;
                    }
                }
                // Announced once routed here: the new addresses may join or make blocks.
                act.sync_announcements();
            }),
        )
    }
}

impl Handler<Unprepare> for RouteActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Unprepare, _: &mut Context<Self>) -> Self::Result {
        let gone: Vec<Ipv4Addr> = msg
            .0
            .into_iter()
            .filter(|ip| self.table.prepared.remove(ip).is_some() && !self.table.local.contains(ip))
            .collect();
        // Out of our blocks before their routes go.
        self.sync_announcements();
        // What each address has after its prepared route (a learned one, or nothing).
        let desired = self.table.desired();
        let changes: Vec<(Ipv4Addr, Option<KernelRoute>)> = gone
            .into_iter()
            .map(|ip| (ip, desired.get(&host_net(ip)).cloned()))
            .collect();
        let kernel = self.kernel.clone();
        Box::pin(
            async move {
                for (ip, after) in changes {
                    let done = match after {
                        Some(route) => kernel.replace(host_net(ip), &route).await,
                        None => kernel.delete(host_net(ip), &KernelRoute::Local).await,
                    };
                    if let Err(error) = done {
                        tracing::warn!(%error, %ip, "removing a prepared route failed");
                    }
                }
            }
            .into_actor(self),
        )
    }
}

impl RouteActor {
    /// Takes the local /32s, adopts learned routes found in the kernel as stale, reconciles
    /// the kernel and starts BGP.
    fn restore(&mut self, local: Vec<Ipv4Addr>) -> ResponseActFuture<Self, ()> {
        self.table.local = local.into_iter().collect();
        let kernel = self.kernel.clone();
        Box::pin(
            async move { kernel.list().await }
                .into_actor(self)
                .map(|installed, act, ctx| {
                    match installed {
                        Ok(installed) => act.table.adopt_stale(&installed),
                        Err(e) => tracing::error!(error = %e, "cannot list kernel routes"),
                    }
                    // Swept by the timer unless a speaker starts (and waits for its
                    // neighbours) or one already waits.
                    if !act.stale.is_pending() {
                        act.wait_stale(None, ctx);
                    }
                    act.ready = true;
                    act.reconcile(ctx);
                    act.apply_bgp(ctx);
                }),
        )
    }
}

impl Handler<Restore> for RouteActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Restore, _: &mut Context<Self>) -> Self::Result {
        self.restore(msg.0)
    }
}

impl Handler<Configure> for RouteActor {
    type Result = ();

    fn handle(&mut self, msg: Configure, ctx: &mut Context<Self>) {
        self.wanted = msg.0;
        self.apply_bgp(ctx);
    }
}

impl Handler<Reflectors> for RouteActor {
    type Result = ();

    fn handle(&mut self, msg: Reflectors, ctx: &mut Context<Self>) {
        if msg == self.reflectors {
            return;
        }
        tracing::info!(
            fabric_as = ?msg.fabric_as,
            reflectors = ?msg.addrs,
            "route reflectors from the master"
        );
        self.reflectors = msg;
        self.apply_bgp(ctx);
    }
}

impl Handler<Learned> for RouteActor {
    type Result = ();

    fn handle(&mut self, msg: Learned, ctx: &mut Context<Self>) {
        if msg.0 != self.speaker_gen {
            return;
        }
        self.table.learn(&msg.1);
        self.reconcile(ctx);
    }
}

impl Handler<EndOfRib> for RouteActor {
    type Result = ();

    fn handle(&mut self, msg: EndOfRib, ctx: &mut Context<Self>) {
        if msg.0 != self.speaker_gen {
            return;
        }
        tracing::info!(peer = %msg.1, "end-of-rib received");
        if self.stale.end_of_rib(msg.0, msg.1) {
            self.sweep_stale("every neighbour has sent End-of-RIB", ctx);
        }
    }
}

impl Handler<Table> for RouteActor {
    type Result = MessageResult<Table>;

    fn handle(&mut self, _: Table, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.table.desired())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn change(prefix: &str, hops: &[Option<&str>]) -> BestChange {
        BestChange {
            prefix: IpNet::V4(net(prefix)),
            paths: hops
                .iter()
                .map(|h| {
                    Arc::new(PathAttrs {
                        next_hop: h.map(|h| h.parse().unwrap()),
                        ..PathAttrs::default()
                    })
                })
                .collect(),
        }
    }

    #[test]
    fn learned_routes_are_ecmp_and_our_own_are_ignored() {
        let mut t = RouteTable::default();
        t.learn(&[
            change("10.1.2.7/32", &[Some("10.254.1.0"), Some("10.254.3.0")]),
            change("10.1.2.5/32", &[None]),
        ]);
        let d = t.desired();
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[&net("10.1.2.7/32")],
            KernelRoute::Via(["10.254.1.0".parse().unwrap(), "10.254.3.0".parse().unwrap()].into())
        );
        t.learn(&[change("10.1.2.7/32", &[])]);
        assert!(t.desired().is_empty());
    }

    fn block_change(prefix: &str, hop: Option<&str>, communities: &[u32]) -> BestChange {
        BestChange {
            prefix: IpNet::V4(net(prefix)),
            paths: hop
                .iter()
                .map(|h| {
                    Arc::new(PathAttrs {
                        next_hop: Some(h.parse().unwrap()),
                        communities: communities.to_vec(),
                        ..PathAttrs::default()
                    })
                })
                .collect(),
        }
    }

    #[test]
    fn a_hosts_marked_block_is_learned_like_a_host_route_and_nothing_else_is() {
        let mut t = RouteTable::default();
        t.learn(&[
            block_change("10.1.2.8/29", Some("172.20.20.22"), &[BLOCK_COMMUNITY]),
            // A ToR's subnet or default: not a host's block, never installed.
            block_change("10.254.0.0/16", Some("10.254.1.0"), &[]),
            block_change("0.0.0.0/0", Some("10.254.1.0"), &[]),
            // An address the master took back from that block, now another host's: the
            // kernel's longest match sends it there.
            change("10.1.2.12/32", &[Some("172.20.20.23")]),
        ]);
        let d = t.desired();
        assert_eq!(
            d.keys().copied().collect::<Vec<_>>(),
            vec![net("10.1.2.8/29"), net("10.1.2.12/32")]
        );
        assert_eq!(
            d[&net("10.1.2.8/29")],
            KernelRoute::Via([ip4("172.20.20.22")].into())
        );
        // Re-announced without its mark: dropped; marked again: back; withdrawn: gone.
        t.learn(&[block_change("10.1.2.8/29", Some("172.20.20.22"), &[])]);
        assert!(!t.desired().contains_key(&net("10.1.2.8/29")));
        t.learn(&[block_change(
            "10.1.2.8/29",
            Some("172.20.20.22"),
            &[BLOCK_COMMUNITY],
        )]);
        assert!(t.desired().contains_key(&net("10.1.2.8/29")));
        t.learn(&[block_change("10.1.2.8/29", None, &[])]);
        assert_eq!(t.desired().len(), 1, "only the /32 is left");
    }

    #[test]
    fn diff_adds_changes_and_deletes_only_what_differs() {
        let mut t = RouteTable::default();
        t.local.insert("10.1.2.5".parse().unwrap());
        t.learn(&[change("10.1.2.7/32", &[Some("10.254.1.0")])]);
        let mut installed = BTreeMap::new();
        installed.insert(net("10.1.2.5/32"), KernelRoute::Local);
        installed.insert(
            net("10.1.2.7/32"),
            KernelRoute::Via(["10.254.9.9".parse().unwrap()].into()),
        );
        installed.insert(net("10.1.2.9/32"), KernelRoute::Local);
        let (replace, delete) = t.diff(&installed);
        assert_eq!(replace.len(), 1);
        assert_eq!(replace[0].0, net("10.1.2.7/32"));
        assert_eq!(delete, vec![(net("10.1.2.9/32"), KernelRoute::Local)]);
        installed.remove(&net("10.1.2.9/32"));
        installed.insert(replace[0].0, replace[0].1.clone());
        assert_eq!(t.diff(&installed), (vec![], vec![]));
    }

    #[test]
    fn prepared_addresses_route_locally_until_learned_and_a_container_wins_over_both() {
        let mut t = RouteTable::default();
        let (a, b): (Ipv4Addr, Ipv4Addr) =
            ("10.1.2.20".parse().unwrap(), "10.1.2.21".parse().unwrap());
        t.prepared.insert(a, true);
        t.prepared.insert(b, true);
        assert_eq!(t.desired()[&net("10.1.2.20/32")], KernelRoute::Local);
        // The master took b back and another host announces it: the learned route wins.
        t.learn(&[change("10.1.2.21/32", &[Some("10.254.1.0")])]);
        assert_eq!(
            t.desired()[&net("10.1.2.21/32")],
            KernelRoute::Via(["10.254.1.0".parse().unwrap()].into())
        );
        // A container here wins over both.
        t.local.insert(b);
        assert_eq!(t.desired()[&net("10.1.2.21/32")], KernelRoute::Local);
        t.prepared.clear();
        t.local.clear();
        assert_eq!(t.desired().len(), 1, "only the learned route is left");
    }

    /// A kernel that refuses routes through one next hop (as Linux refuses a next hop whose
    /// interface is down).
    struct FakeKernel {
        routes: std::sync::Mutex<BTreeMap<Ipv4Net, KernelRoute>>,
        unreachable: Ipv4Addr,
    }

    #[async_trait]
    impl Kernel for FakeKernel {
        async fn list(&self) -> Result<BTreeMap<Ipv4Net, KernelRoute>, String> {
            Ok(self.routes.lock().unwrap().clone())
        }
        async fn replace(&self, prefix: Ipv4Net, route: &KernelRoute) -> Result<(), String> {
            if matches!(route, KernelRoute::Via(hops) if hops.contains(&self.unreachable)) {
                return Err(format!("route {prefix}: Nexthop has invalid gateway"));
            }
            self.routes.lock().unwrap().insert(prefix, route.clone());
            Ok(())
        }
        async fn delete(&self, prefix: Ipv4Net, _: &KernelRoute) -> Result<(), String> {
            self.routes.lock().unwrap().remove(&prefix);
            Ok(())
        }
    }

    #[test]
    fn a_route_the_kernel_refuses_does_not_hold_up_the_others() {
        let tor1: Ipv4Addr = "10.254.1.0".parse().unwrap();
        let tor2: Ipv4Addr = "10.254.3.0".parse().unwrap();
        let kernel = FakeKernel {
            routes: std::sync::Mutex::new(
                [(net("10.1.2.99/32"), KernelRoute::Local)]
                    .into_iter()
                    .collect(),
            ),
            unreachable: tor2,
        };
        let mut t = RouteTable::default();
        t.local.insert("10.1.2.5".parse().unwrap());
        t.learn(&[
            change("10.1.2.7/32", &[Some("10.254.1.0"), Some("10.254.3.0")]),
            change("10.1.2.8/32", &[Some("10.254.1.0")]),
        ]);
        let desired = t.desired();
        let result = actix::System::new().block_on(sync_kernel(&kernel, &desired));
        let err = result.unwrap_err();
        assert!(err.starts_with("1 of 4 route changes failed"), "{err}");
        assert!(err.contains("10.1.2.7/32"), "{err}");
        // Everything else went in, and the route no longer wanted went out.
        let now = kernel.routes.lock().unwrap().clone();
        assert_eq!(
            now.keys().copied().collect::<Vec<_>>(),
            vec![net("10.1.2.5/32"), net("10.1.2.8/32")]
        );
        assert_eq!(now[&net("10.1.2.8/32")], KernelRoute::Via([tor1].into()));
        // Once BGP drops the path through the dead uplink, the route goes in with the other.
        t.learn(&[change("10.1.2.7/32", &[Some("10.254.1.0")])]);
        let desired = t.desired();
        let result = actix::System::new().block_on(sync_kernel(&kernel, &desired));
        assert_eq!(result, Ok(1));
        assert_eq!(kernel.routes.lock().unwrap().clone(), desired);
    }

    #[test]
    fn stale_routes_survive_a_restart_until_swept_unless_bgp_confirms_them() {
        let mut installed = BTreeMap::new();
        let hops: BTreeSet<Ipv4Addr> = ["10.254.1.0".parse().unwrap()].into();
        installed.insert(net("10.1.2.7/32"), KernelRoute::Via(hops.clone()));
        installed.insert(net("10.1.2.8/32"), KernelRoute::Via(hops.clone()));
        installed.insert(net("10.1.2.5/32"), KernelRoute::Local);
        let mut t = RouteTable::default();
        t.adopt_stale(&installed);
        // Before BGP is back nothing learned is deleted; the unknown local route is.
        let (replace, delete) = t.diff(&installed);
        assert!(replace.is_empty());
        assert_eq!(delete, vec![(net("10.1.2.5/32"), KernelRoute::Local)]);
        t.learn(&[change("10.1.2.7/32", &[Some("10.254.1.0")])]);
        assert_eq!(t.sweep_stale(), 1);
        assert_eq!(t.desired().len(), 1);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tors() -> BTreeSet<IpAddr> {
        [ip("10.254.1.0"), ip("10.254.3.0")].into()
    }

    #[test]
    fn stale_routes_go_once_every_neighbour_has_sent_end_of_rib() {
        let hops: BTreeSet<Ipv4Addr> = ["10.254.1.0".parse().unwrap()].into();
        let installed: BTreeMap<_, _> = [
            (net("10.1.2.7/32"), KernelRoute::Via(hops.clone())),
            (net("10.1.2.8/32"), KernelRoute::Via(hops.clone())),
        ]
        .into();
        let mut t = RouteTable::default();
        t.adopt_stale(&installed);
        let mut sweep = StaleSweep::default();
        sweep.wait(1, Some(tors()));
        assert!(sweep.is_pending());
        // The first ToR's routes, then its End-of-RIB: the other ToR may still have 10.1.2.8.
        t.learn(&[change("10.1.2.7/32", &[Some("10.254.1.0")])]);
        assert!(!sweep.end_of_rib(1, ip("10.254.1.0")));
        assert!(!sweep.end_of_rib(1, ip("10.254.1.0")), "counted twice");
        assert!(sweep.is_pending());
        // The second one's End-of-RIB: what neither confirmed goes.
        assert!(sweep.end_of_rib(1, ip("10.254.3.0")));
        assert_eq!(t.sweep_stale(), 1);
        assert_eq!(
            t.desired().keys().copied().collect::<Vec<_>>(),
            vec![net("10.1.2.7/32")]
        );
        // Swept once: neither a late End-of-RIB nor the timer sweeps again.
        assert!(!sweep.is_pending());
        assert!(!sweep.end_of_rib(1, ip("10.254.3.0")));
        assert!(!sweep.timer(1));
    }

    #[test]
    fn the_timer_sweeps_when_a_neighbour_never_sends_end_of_rib() {
        let mut sweep = StaleSweep::default();
        sweep.wait(3, Some(tors()));
        assert!(!sweep.end_of_rib(3, ip("10.254.1.0")));
        assert!(sweep.timer(3));
        assert!(!sweep.is_pending());
        // No speaker (its settings were deleted): only the timer sweeps.
        sweep.wait(4, None);
        assert!(!sweep.end_of_rib(4, ip("10.254.1.0")));
        assert!(!sweep.peers_changed(4, &[], &[ip("10.254.1.0")]));
        assert!(sweep.timer(4));
    }

    #[test]
    fn an_older_speakers_end_of_rib_or_timer_does_not_sweep_for_a_newer_one() {
        let mut sweep = StaleSweep::default();
        sweep.wait(1, Some([ip("10.254.1.0")].into()));
        // A new speaker before the old one's End-of-RIB reached us.
        sweep.wait(2, Some([ip("10.254.1.0")].into()));
        assert!(!sweep.end_of_rib(1, ip("10.254.1.0")));
        assert!(!sweep.timer(1), "the first speaker's timer");
        assert!(sweep.is_pending());
        assert!(sweep.end_of_rib(2, ip("10.254.1.0")));
        assert!(!sweep.timer(2));
    }

    #[test]
    fn a_removed_neighbour_is_not_waited_for_and_an_added_one_is() {
        let mut sweep = StaleSweep::default();
        sweep.wait(1, Some(tors()));
        assert!(!sweep.end_of_rib(1, ip("10.254.1.0")));
        // The second ToR is removed from the settings: nothing left to wait for.
        assert!(sweep.peers_changed(1, &[], &[ip("10.254.3.0")]));
        assert!(!sweep.is_pending());

        sweep.wait(2, Some([ip("10.254.1.0")].into()));
        // A third ToR added before the first one's End-of-RIB: wait for both.
        assert!(!sweep.peers_changed(2, &[ip("10.254.5.0")], &[]));
        assert!(!sweep.end_of_rib(2, ip("10.254.1.0")));
        // A change on an older speaker is not ours.
        assert!(!sweep.peers_changed(1, &[], &[ip("10.254.5.0")]));
        // The neighbour AS changed: every peer is removed and added back, so an End-of-RIB
        // from before counts no more.
        let all = [ip("10.254.1.0"), ip("10.254.5.0")];
        assert!(!sweep.peers_changed(2, &all, &all));
        assert!(!sweep.end_of_rib(2, ip("10.254.5.0")));
        assert!(sweep.end_of_rib(2, ip("10.254.1.0")));
    }

    #[test]
    fn a_reflector_peer_is_waited_for_like_a_tor() {
        let mut sweep = StaleSweep::default();
        let reflector = ip("172.20.20.10");
        sweep.wait(1, Some([ip("10.254.1.0"), reflector].into()));
        assert!(
            !sweep.end_of_rib(1, ip("10.254.1.0")),
            "the reflector is still due"
        );
        assert!(sweep.end_of_rib(1, reflector));
        // A reflector learned while waiting is waited for; one gone is not.
        sweep.wait(2, Some([ip("10.254.1.0")].into()));
        assert!(!sweep.peers_changed(2, &[reflector], &[]));
        assert!(!sweep.end_of_rib(2, ip("10.254.1.0")));
        assert!(sweep.peers_changed(2, &[], &[reflector]));
        // IPv6 reflectors too.
        let v6 = ip("fd00::10");
        sweep.wait(3, Some([v6].into()));
        assert!(sweep.end_of_rib(3, v6));
    }

    /// A kernel that knows its connected subnets and, like Linux, refuses a gateway on none.
    struct ConnectedKernel {
        routes: std::sync::Mutex<BTreeMap<Ipv4Net, KernelRoute>>,
        connected: Vec<Ipv4Net>,
    }

    #[async_trait]
    impl Kernel for ConnectedKernel {
        async fn list(&self) -> Result<BTreeMap<Ipv4Net, KernelRoute>, String> {
            Ok(self.routes.lock().unwrap().clone())
        }
        async fn replace(&self, prefix: Ipv4Net, route: &KernelRoute) -> Result<(), String> {
            if let KernelRoute::Via(hops) = route {
                if hops
                    .iter()
                    .any(|h| !self.connected.iter().any(|n| n.contains(h)))
                {
                    return Err(format!("route {prefix}: Nexthop has invalid gateway"));
                }
            }
            self.routes.lock().unwrap().insert(prefix, route.clone());
            Ok(())
        }
        async fn delete(&self, prefix: Ipv4Net, _: &KernelRoute) -> Result<(), String> {
            self.routes.lock().unwrap().remove(&prefix);
            Ok(())
        }
        async fn connected(&self) -> Result<Option<Vec<Ipv4Net>>, String> {
            Ok(Some(self.connected.clone()))
        }
    }

    #[test]
    fn an_unusable_best_path_leaves_the_kernels_route_alone() {
        // After a restart the kernel holds 10.1.2.8 via the ToR; the reflected path (next hop
        // on another segment) arrives before the ToR's and is best for a while.
        let kernel = ConnectedKernel {
            routes: std::sync::Mutex::new(
                [(
                    net("10.1.2.8/32"),
                    KernelRoute::Via([ip4("10.0.0.1")].into()),
                )]
                .into(),
            ),
            connected: vec![net("10.0.0.0/24")],
        };
        let mut t = RouteTable::default();
        t.learn(&[change("10.1.2.8/32", &[Some("192.168.7.9")])]);
        let result = actix::System::new().block_on(sync_kernel(&kernel, &t.desired()));
        assert_eq!(result, Ok(0));
        assert_eq!(
            kernel.routes.lock().unwrap().get(&net("10.1.2.8/32")),
            Some(&KernelRoute::Via([ip4("10.0.0.1")].into())),
            "the installed route stays"
        );
        // The prefix gone altogether: its route goes.
        t.learn(&[change("10.1.2.8/32", &[])]);
        let result = actix::System::new().block_on(sync_kernel(&kernel, &t.desired()));
        assert_eq!(result, Ok(1));
        assert!(kernel.routes.lock().unwrap().is_empty());
    }

    #[test]
    fn reflected_routes_go_in_once_per_next_hop_and_unreachable_next_hops_are_skipped() {
        let kernel = ConnectedKernel {
            routes: Default::default(),
            connected: vec![net("10.0.0.0/24")],
        };
        let mut t = RouteTable::default();
        t.learn(&[
            // Two reflectors, one route each, both with the owner's address.
            change("10.1.2.7/32", &[Some("10.0.0.22"), Some("10.0.0.22")]),
            // A host on another segment: its next hop cannot be a gateway here.
            change("10.1.2.8/32", &[Some("192.168.7.9")]),
            change("10.1.2.9/32", &[Some("10.0.0.23"), Some("192.168.7.9")]),
        ]);
        let desired = t.desired();
        let result = actix::System::new().block_on(sync_kernel(&kernel, &desired));
        assert_eq!(result, Ok(2), "no failure for the unreachable next hop");
        let now = kernel.routes.lock().unwrap().clone();
        assert_eq!(
            now,
            [
                (
                    net("10.1.2.7/32"),
                    KernelRoute::Via([ip4("10.0.0.22")].into())
                ),
                (
                    net("10.1.2.9/32"),
                    KernelRoute::Via([ip4("10.0.0.23")].into())
                ),
            ]
            .into()
        );
        // Nothing left to change on the next sync.
        let result = actix::System::new().block_on(sync_kernel(&kernel, &desired));
        assert_eq!(result, Ok(0));
    }

    fn ip4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
}

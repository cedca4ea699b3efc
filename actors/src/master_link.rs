//! The master link: registers this host with a lease and keeps it alive with heartbeats, and
//! follows the master's watch stream, resuming from the last revision it saw after any
//! disconnect (reloading the snapshot when the master says the history is compacted).
//!
//! With several masters the [`MasterApi`] fails over from one to the next; the masters serve one
//! store, so a revision means the same on each and the stream resumes where it broke, whichever
//! master serves it next. A heartbeat's answer ([`Fleet`]) names the fabric AS, every master's
//! route reflector and every master: the reflectors go to the route actor whenever they change
//! (the masters go to the client's failover list, which the API implementation keeps).
//!
//! [`Cursor`] holds the logic: the revision and what this host cares about (its `Bgp` object),
//! turning snapshot and watch lines into effects.

use crate::bgp_settings::BgpSettings;
use crate::flows::SetIntent;
use crate::intent::{Intent, IntentView};
use crate::reflector_peers::Reflectors;
use crate::routes::Configure;
use actix::prelude::*;
use async_trait::async_trait;
use fabric_model::objects::Bgp;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long the master keeps this host registered without a heartbeat.
pub const LEASE: Duration = Duration::from_secs(15);

/// The BGP port a reflector listens on when the answer names none.
const BGP_PORT: u16 = 179;

/// What a heartbeat's answer says of the control plane:
/// `{"fabricAs": 65000, "reflectors": [{"address": "172.20.20.10", "port": 179}], "masters":
/// ["https://172.20.20.10:9999"]}`. An older master answers `{}`: no fabric AS, no reflector,
/// no master. Entries that do not parse are left out (with a warning), never an error: the
/// heartbeat itself succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    pub fabric_as: Option<u32>,
    /// Sorted, without duplicates.
    pub reflectors: Vec<SocketAddr>,
    pub masters: Vec<String>,
}

impl Fleet {
    pub fn from_answer(answer: &Value) -> Fleet {
        let fabric_as = answer["fabricAs"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n != 0);
        let mut reflectors: Vec<SocketAddr> = answer["reflectors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let address = r["address"].as_str().and_then(|a| a.parse::<IpAddr>().ok());
                let port = match &r["port"] {
                    Value::Null => Some(BGP_PORT),
                    p => p.as_u64().and_then(|p| u16::try_from(p).ok()),
                };
                match (address, port) {
                    // A reflector listening on every address advertises the wildcard, which
                    // names no peer.
                    (Some(address), Some(port))
                        if !address.is_unspecified() && !address.is_multicast() && port != 0 =>
                    {
                        Some(SocketAddr::new(address, port))
                    }
                    _ => {
                        tracing::warn!(reflector = %r, "ignoring a reflector the master named unreadably");
                        None
                    }
                }
            })
            .collect();
        reflectors.sort();
        reflectors.dedup();
        let masters = answer["masters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(String::from))
            .collect();
        Fleet {
            fabric_as,
            reflectors,
            masters,
        }
    }

    /// What the route actor needs.
    pub fn reflectors(&self) -> Reflectors {
        Reflectors {
            fabric_as: self.fabric_as,
            addrs: self.reflectors.clone(),
        }
    }
}

/// The calls the link makes to the master.
#[async_trait]
pub trait MasterApi: Send + Sync + 'static {
    /// Registers (or renews) this host for `lease`; what the answer says of the fleet.
    async fn heartbeat(&self, host: &str, lease: Duration) -> Result<Fleet, String>;
    /// `GET /api/v1/state`.
    async fn state(&self) -> Result<Value, String>;
    /// `GET /api/v1/watch?since=<rev>` as parsed JSON lines.
    async fn watch(&self, since: u64) -> Result<BoxStream<'static, Result<Value, String>>, String>;
}

/// Something the link learned that another actor needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// This host's BGP settings changed (None: removed).
    Bgp(Option<Bgp>),
    /// The intent the pipeline compiles changed.
    Intent(Arc<Intent>),
}

/// The watch stream says its history is gone: reload the snapshot.
#[derive(Debug, PartialEq, Eq)]
pub struct Resync;

/// Where the link is in the master's history and what it has seen.
#[derive(Debug, Clone)]
pub struct Cursor {
    host: String,
    /// Every change at or below this revision is applied (resume the watch from here).
    pub revision: u64,
    /// The revision of the last line applied: one transaction's changes share a revision, so
    /// this one may still be arriving.
    current: u64,
    bgp: Option<Bgp>,
    view: IntentView,
}

impl Cursor {
    pub fn new(host: &str) -> Cursor {
        Cursor {
            host: host.to_string(),
            revision: 0,
            current: 0,
            bgp: None,
            view: IntentView::new(host),
        }
    }

    fn update_intent(&mut self) -> Vec<Effect> {
        self.view
            .take_change()
            .map(Effect::Intent)
            .into_iter()
            .collect()
    }

    fn set_bgp(&mut self, bgp: Option<Bgp>) -> Vec<Effect> {
        if bgp == self.bgp {
            return Vec::new();
        }
        self.bgp = bgp.clone();
        vec![Effect::Bgp(bgp)]
    }

    /// Takes a `/api/v1/state` snapshot.
    pub fn snapshot(&mut self, state: &Value) -> Vec<Effect> {
        self.revision = state["revision"].as_u64().unwrap_or(0);
        self.current = self.revision;
        // Contiv's collection name is `Bgps`.
        let bgp = state["objects"]["Bgps"]
            .as_array()
            .or_else(|| state["objects"]["bgps"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| serde_json::from_value::<Bgp>(v.clone()).ok())
            .find(|b| b.hostname == self.host);
        self.view.snapshot(state);
        let mut effects = self.set_bgp(bgp);
        effects.extend(self.update_intent());
        effects
    }

    /// Applies one watch line. Lines of revisions already complete are skipped; the lines of
    /// the revision in progress are applied again after a reconnect (applying is idempotent).
    pub fn event(&mut self, line: &Value) -> Result<Vec<Effect>, Resync> {
        let (effects, outcome) = self.events(std::slice::from_ref(line));
        outcome.map(|()| effects)
    }

    /// Applies watch lines in order and hands the intent on once at the end: a burst of rule
    /// writes costs one flow compile instead of one per line, which at a thousand rules and
    /// endpoints is what keeps the agent up with the master. The effects of
    /// the lines before a [`Resync`] are returned with it: they happened.
    pub fn events(&mut self, lines: &[Value]) -> (Vec<Effect>, Result<(), Resync>) {
        let mut effects = Vec::new();
        let mut outcome = Ok(());
        for line in lines {
            match self.apply(line) {
                Ok(more) => effects.extend(more),
                Err(resync) => {
                    outcome = Err(resync);
                    break;
                }
            }
        }
        effects.extend(self.update_intent());
        (effects, outcome)
    }

    /// One line; an intent change is recorded in the view and handed on after the batch.
    fn apply(&mut self, line: &Value) -> Result<Vec<Effect>, Resync> {
        match line["type"].as_str() {
            Some("compacted") | Some("error") => return Err(Resync),
            Some("put") | Some("delete") => {}
            _ => return Ok(Vec::new()),
        }
        let Some(revision) = line["revision"].as_u64() else {
            return Ok(Vec::new());
        };
        if revision <= self.revision {
            return Ok(Vec::new());
        }
        if revision > self.current {
            self.revision = self.current.max(self.revision);
            self.current = revision;
        }
        if self.view.event(line) {
            return Ok(Vec::new());
        }
        let is_bgp = line["collection"]
            .as_str()
            .is_some_and(|c| c.eq_ignore_ascii_case("bgps"));
        if is_bgp && line["key"] == self.host.as_str() {
            let bgp = match line["type"].as_str() {
                Some("put") => serde_json::from_value::<Bgp>(line["object"].clone()).ok(),
                _ => None,
            };
            return Ok(self.set_bgp(bgp));
        }
        Ok(Vec::new())
    }
}

/// At most this many watch lines are applied before the intent is handed on.
const BATCH_LINES: usize = 4096;
/// Watch lines read ahead of the intent builder.
const QUEUED_LINES: usize = 65_536;

/// The task reading the watch stream ahead; stopped when the link lets go of the stream.
struct Pump(tokio::task::JoinHandle<()>);

impl Drop for Pump {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The actor.
pub struct MasterLink {
    host: String,
    api: Arc<dyn MasterApi>,
    to: Targets,
    /// The reflectors last handed to the route actor (sent again only when they change).
    reflectors: Option<Reflectors>,
}

/// Who gets what the link learns.
#[derive(Clone)]
pub struct Targets {
    pub bgp: Recipient<Configure>,
    /// The route reflectors from heartbeats (the route actor).
    pub reflectors: Option<Recipient<Reflectors>>,
    pub intent: Option<Recipient<SetIntent>>,
}

impl MasterLink {
    pub fn new(host: &str, api: Arc<dyn MasterApi>, to: Targets) -> MasterLink {
        MasterLink {
            host: host.to_string(),
            api,
            to,
            reflectors: None,
        }
    }

    /// A heartbeat's answer: new reflectors go to the route actor.
    fn heard(&mut self, fleet: Fleet, ctx: &mut Context<Self>) {
        let reflectors = fleet.reflectors();
        if self.reflectors.as_ref() == Some(&reflectors) {
            return;
        }
        let Some(to) = self.to.reflectors.clone() else {
            return;
        };
        ctx.spawn(
            async move {
                let sent = to.send(reflectors.clone()).await;
                (sent, reflectors)
            }
            .into_actor(self)
            .map(|(sent, reflectors), act, _| match sent {
                Ok(()) => act.reflectors = Some(reflectors),
                // Not remembered: the next heartbeat tries again.
                Err(error) => tracing::warn!(%error, "route actor unavailable for reflectors"),
            }),
        );
    }
}

async fn deliver(to: &Targets, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Intent(intent) => {
                tracing::info!(
                    tenants = intent.tenants.len(),
                    networks = intent.networks.len(),
                    groups = intent.groups.len(),
                    rules = intent.rules.len(),
                    remote = intent.remote.len(),
                    "intent from the master"
                );
                if let Some(target) = &to.intent {
                    match target.send(SetIntent(intent)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(error = %e, "flows for the new intent"),
                        Err(e) => tracing::error!(error = %e, "flow-writer gone"),
                    }
                }
            }
            Effect::Bgp(object) => {
                let settings = match object.as_ref().map(BgpSettings::from_model) {
                    None => None,
                    Some(Ok(s)) => Some(s),
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "ignoring bad bgp settings");
                        continue;
                    }
                };
                tracing::info!(?settings, "bgp settings from the master");
                if to.bgp.send(Configure(settings)).await.is_err() {
                    tracing::error!("route actor gone");
                }
            }
        }
    }
}

/// Follows the master forever: snapshot, then watch from its revision; reconnect with the
/// last revision seen after a disconnect.
async fn follow(host: String, api: Arc<dyn MasterApi>, to: Targets) {
    let mut cursor = Cursor::new(&host);
    let mut need_snapshot = true;
    loop {
        if need_snapshot {
            match api.state().await {
                Ok(state) => {
                    let effects = cursor.snapshot(&state);
                    deliver(&to, effects).await;
                    need_snapshot = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "master snapshot failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        match api.watch(cursor.revision).await {
            Ok(stream) => {
                // A pump task reads the stream ahead into a queue: the HTTP body yields one
                // chunk per poll, so only a queue shows how many lines are already here.
                let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUED_LINES);
                let pump = Pump(tokio::spawn(async move {
                    let mut stream = stream;
                    while let Some(item) = stream.next().await {
                        if tx.send(item).await.is_err() {
                            break;
                        }
                    }
                }));
                'stream: while let Some(first) = rx.recv().await {
                    let mut lines = Vec::new();
                    let mut broken = None;
                    let mut item = Some(first);
                    while let Some(next) = item.take() {
                        match next {
                            Ok(line) => lines.push(line),
                            Err(e) => {
                                broken = Some(e);
                                break;
                            }
                        }
                        if lines.len() < BATCH_LINES {
                            item = rx.try_recv().ok();
                        }
                    }
                    let (effects, outcome) = cursor.events(&lines);
                    deliver(&to, effects).await;
                    if outcome.is_err() {
                        need_snapshot = true;
                        break 'stream;
                    }
                    if let Some(e) = broken {
                        tracing::warn!(error = %e, "watch stream broke");
                        break 'stream;
                    }
                }
                drop(pump);
            }
            Err(e) => tracing::warn!(error = %e, "watch failed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Actor for MasterLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(crate::MAILBOX);
        let beat = |act: &mut MasterLink, ctx: &mut Context<Self>| {
            let api = act.api.clone();
            let host = act.host.clone();
            ctx.spawn(
                async move { api.heartbeat(&host, LEASE).await }
                    .into_actor(act)
                    .map(|result, act, ctx| match result {
                        Ok(fleet) => act.heard(fleet, ctx),
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }),
            );
        };
        beat(self, ctx);
        ctx.run_interval(LEASE / 3, beat);
        ctx.spawn(follow(self.host.clone(), self.api.clone(), self.to.clone()).into_actor(self));
    }
}

impl Supervised for MasterLink {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("master link restarting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bgp_json(host: &str, asn: &str) -> Value {
        json!({"key": host, "hostname": host, "routerip": "10.254.1.1/31", "as": asn,
               "neighbor-as": "65101", "neighbor": "10.254.1.0"})
    }

    #[test]
    fn snapshot_then_events_for_this_host_only() {
        let mut c = Cursor::new("host1");
        let state = json!({"revision": 10, "objects": {"Bgps": [bgp_json("host2", "1"), bgp_json("host1", "65211")]}});
        let effects = c.snapshot(&state);
        assert_eq!(c.revision, 10);
        assert!(
            matches!(&effects[..], [Effect::Bgp(Some(b)), Effect::Intent(_)] if b.as_number == "65211")
        );
        // An intent change is reported once.
        let net = json!({"revision": 10, "type": "put", "collection": "tenants", "key": "t", "object": {"key": "t", "tenantName": "t"}});
        assert_eq!(
            c.event(&net),
            Ok(vec![]),
            "at or below the revision: skipped"
        );
        let net = json!({"revision": 11, "type": "put", "collection": "tenants", "key": "t", "object": {"key": "t", "tenantName": "t"}});
        assert!(
            matches!(&c.event(&net).unwrap()[..], [Effect::Intent(i)] if i.tenants.contains("t"))
        );
        // Another host's change: nothing; a repeat below the revision: nothing.
        let other = json!({"revision": 111, "type": "put", "collection": "bgps", "key": "host2", "object": bgp_json("host2", "2")});
        assert_eq!(c.event(&other), Ok(vec![]));
        let old = json!({"revision": 9, "type": "delete", "collection": "bgps", "key": "host1", "object": null});
        assert_eq!(c.event(&old), Ok(vec![]));
        let changed = json!({"revision": 112, "type": "put", "collection": "bgps", "key": "host1", "object": bgp_json("host1", "65299")});
        assert!(
            matches!(&c.event(&changed).unwrap()[..], [Effect::Bgp(Some(b))] if b.as_number == "65299")
        );
        // The same object again (a reconnect): no effect.
        let again = json!({"revision": 113, "type": "put", "collection": "bgps", "key": "host1", "object": bgp_json("host1", "65299")});
        assert_eq!(c.event(&again), Ok(vec![]));
        let gone = json!({"revision": 114, "type": "delete", "collection": "bgps", "key": "host1", "object": null});
        assert_eq!(c.event(&gone), Ok(vec![Effect::Bgp(None)]));
        assert_eq!(c.revision, 113, "114 may still have more lines");
    }

    #[test]
    fn changes_sharing_a_revision_are_all_applied() {
        let mut c = Cursor::new("host1");
        c.snapshot(&json!({"revision": 10, "objects": {}}));
        let tag =
            json!({"revision": 11, "type": "put", "tag": "vxlan", "value": 2, "owner": "t:n"});
        assert_eq!(c.event(&tag), Ok(vec![]));
        let net = json!({"revision": 11, "type": "put", "collection": "networks", "key": "t:n",
                         "object": {"key": "t:n", "tenantName": "t", "networkName": "n", "subnet": "10.3.0.0/24"}});
        assert!(
            matches!(&c.event(&net).unwrap()[..], [Effect::Intent(i)] if i.networks.len() == 1)
        );
        assert_eq!(c.revision, 10);
    }

    #[test]
    fn a_batch_of_lines_builds_the_intent_once_and_keeps_effects_before_a_resync() {
        let mut c = Cursor::new("host1");
        c.snapshot(&json!({"revision": 10, "objects": {}}));
        let tenant = |rev: u64, name: &str| {
            json!({"revision": rev, "type": "put", "collection": "tenants", "key": name,
                   "object": {"key": name, "tenantName": name}})
        };
        let (effects, outcome) = c.events(&[tenant(11, "a"), tenant(12, "b"), tenant(13, "c")]);
        assert_eq!(outcome, Ok(()));
        assert!(
            matches!(&effects[..], [Effect::Intent(i)] if i.tenants.len() == 3),
            "{effects:?}"
        );
        let bgp = json!({"revision": 14, "type": "put", "collection": "bgps", "key": "host1",
                         "object": bgp_json("host1", "65211")});
        let (effects, outcome) = c.events(&[
            bgp,
            tenant(15, "d"),
            json!({"type": "compacted", "requested": 1, "oldest": 5}),
            tenant(16, "e"),
        ]);
        assert_eq!(outcome, Err(Resync));
        assert!(
            matches!(&effects[..], [Effect::Bgp(Some(_)), Effect::Intent(i)] if i.tenants.len() == 4),
            "{effects:?}"
        );
    }

    #[test]
    fn a_heartbeat_answer_names_the_fabric_as_reflectors_and_masters() {
        let fleet = Fleet::from_answer(&json!({
            "fabricAs": 65000,
            "reflectors": [
                {"address": "172.20.20.11", "port": 179},
                {"address": "172.20.20.10", "port": 1179},
                {"address": "fd00::10"},
                {"address": "not-an-address", "port": 179},
                {"address": "172.20.20.12", "port": 70000},
                {"address": "0.0.0.0", "port": 179},
                {"address": "172.20.20.11", "port": 179}
            ],
            "masters": ["https://172.20.20.10:9999", 7, "https://172.20.20.11:9999"]
        }));
        assert_eq!(fleet.fabric_as, Some(65000));
        let addrs: Vec<String> = fleet.reflectors.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            addrs,
            ["172.20.20.10:1179", "172.20.20.11:179", "[fd00::10]:179"],
            "sorted, deduplicated, unreadable ones left out, port 179 by default"
        );
        assert_eq!(
            fleet.masters,
            ["https://172.20.20.10:9999", "https://172.20.20.11:9999"]
        );
        assert_eq!(fleet.reflectors().fabric_as, Some(65000));
        assert_eq!(fleet.reflectors().addrs.len(), 3);
    }

    #[test]
    fn an_older_masters_empty_answer_means_no_reflectors() {
        for answer in [json!({}), Value::Null, json!({"fabricAs": 0})] {
            let fleet = Fleet::from_answer(&answer);
            assert_eq!(fleet, Fleet::default(), "{answer}");
            assert_eq!(fleet.reflectors(), Reflectors::default());
        }
    }

    #[test]
    fn compaction_asks_for_a_snapshot() {
        let mut c = Cursor::new("host1");
        assert_eq!(
            c.event(&json!({"type": "compacted", "requested": 1, "oldest": 5})),
            Err(Resync)
        );
    }
}

//! The flow-writer actor: compiles the host's desired flow set from its local endpoints and
//! hands it to a sink that installs only the difference.
//!
//! [`Coalescer`] holds the logic: every change bumps a generation; one sync runs at a time and
//! takes the newest state, so a burst of fifty attaches costs a few syncs, not fifty; each
//! caller is answered once a sync that includes its change has finished. Nothing is synced
//! before the first [`Reset`] (the restored state after a restart): syncing an empty host
//! would cut running containers off.

use crate::intent::Intent;
use crate::types::{Endpoint, Mac, StateSource};
use crate::RESTORE_RETRY;
use actix::prelude::*;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::oneshot;

/// What the pipeline compiler needs to know about this host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostInput {
    pub router_mac: Mac,
    /// The gateway internal port towards the host kernel.
    pub gw_port: u32,
    pub gw_mac: Mac,
    /// Shared with the running compile; a change copies the map only while one runs.
    pub endpoints: Arc<BTreeMap<String, Endpoint>>,
    /// Tenants, networks, groups, rules and remote endpoints from the master.
    pub intent: Arc<Intent>,
}

/// Turns the host's state into its whole desired flow set (pure). An error leaves the switch
/// as it is (an empty set would cut every container off).
pub trait Compiler: Send + Sync + 'static {
    type Flow: Ord + Clone + Send + Sync + 'static;
    fn compile(&self, input: &HostInput) -> Result<BTreeSet<Self::Flow>, String>;
}

/// Installs a desired flow set, touching only what differs (and only flows it owns). It takes
/// the set, so it can keep it and diff the next one against it.
#[async_trait]
pub trait FlowSink<F>: Send + Sync + 'static {
    /// Returns the number of flows added, changed or removed.
    async fn sync(&self, desired: BTreeSet<F>) -> Result<usize, String>;
}

type Waiter = (u64, oneshot::Sender<Result<(), String>>);

/// Generations, the running sync and who waits for what.
#[derive(Debug, Default)]
pub struct Coalescer {
    pub input: HostInput,
    ready: bool,
    generation: u64,
    synced: u64,
    running: bool,
    waiters: Vec<Waiter>,
}

impl Coalescer {
    /// Applies a change; returns the generation that includes it.
    pub fn change(&mut self, f: impl FnOnce(&mut HostInput)) -> u64 {
        f(&mut self.input);
        self.generation += 1;
        self.generation
    }

    /// Replaces the whole state and allows syncing.
    pub fn reset(&mut self, input: HostInput) -> u64 {
        self.ready = true;
        self.change(|i| *i = input)
    }

    pub fn wait(&mut self, generation: u64, tx: oneshot::Sender<Result<(), String>>) {
        self.waiters.push((generation, tx));
    }

    /// The next sync to run, if one is due and none is running.
    pub fn start(&mut self) -> Option<(u64, HostInput)> {
        if !self.ready || self.running || self.synced >= self.generation {
            return None;
        }
        self.running = true;
        Some((self.generation, self.input.clone()))
    }

    /// Records a finished sync; returns the waiters it answers, with their answer.
    pub fn finish(&mut self, generation: u64, result: Result<(), String>) -> Vec<Waiter> {
        self.running = false;
        if result.is_ok() {
            self.synced = self.synced.max(generation);
        } else {
            // Retry on the next change or resync; answer the waiters covered by this attempt.
            self.synced = self.synced.min(generation.saturating_sub(1));
        }
        let (answered, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(g, _)| *g <= generation);
        self.waiters = waiting;
        answered
    }
}

/// The actor, generic over the compiler (its flow type) and the sink.
pub struct FlowWriter<C: Compiler> {
    compiler: Arc<C>,
    sink: Arc<dyn FlowSink<C::Flow>>,
    core: Coalescer,
    /// Rebuilds the endpoints on start and after a supervisor restart (else a `Reset` must).
    source: Option<Arc<dyn StateSource>>,
}

impl<C: Compiler> FlowWriter<C> {
    pub fn new(compiler: Arc<C>, sink: Arc<dyn FlowSink<C::Flow>>, base: HostInput) -> Self {
        let core = Coalescer {
            input: base,
            ..Coalescer::default()
        };
        FlowWriter {
            compiler,
            sink,
            core,
            source: None,
        }
    }

    /// Restores the endpoints from `source` whenever the actor starts.
    pub fn with_source(mut self, source: Arc<dyn StateSource>) -> Self {
        self.source = Some(source);
        self
    }

    fn kick(&mut self, ctx: &mut Context<Self>) {
        let Some((generation, input)) = self.core.start() else {
            return;
        };
        let compiler = self.compiler.clone();
        let sink = self.sink.clone();
        // Compiling a thousand endpoints and rules takes milliseconds: off the actor thread,
        // so attaches and watch events are not held up behind it.
        let sync = async move {
            let started = std::time::Instant::now();
            let flows = tokio::task::spawn_blocking(move || compiler.compile(&input))
                .await
                .map_err(|e| format!("compile task: {e}"))?
                .map_err(|e| format!("compile: {e}"))?;
            let compiled = started.elapsed();
            let count = flows.len();
            let changes = sink.sync(flows).await?;
            Ok::<_, String>((changes, count, compiled, started.elapsed() - compiled))
        };
        ctx.spawn(sync.into_actor(self).map(move |result, act, ctx| {
            let answer = match result {
                Ok((changes, flows, compiled, synced)) => {
                    tracing::info!(
                        generation,
                        changes,
                        flows,
                        compile_ms = compiled.as_millis() as u64,
                        sync_ms = synced.as_millis() as u64,
                        "flows synced"
                    );
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(generation, error = %e, "flow sync failed");
                    Err(e)
                }
            };
            for (_, tx) in act.core.finish(generation, answer.clone()) {
                let _ = tx.send(answer.clone());
            }
            act.kick(ctx);
        }));
    }

    fn change_and_wait(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut HostInput),
        reset: Option<HostInput>,
    ) -> ResponseFuture<Result<(), String>> {
        let generation = match reset {
            Some(input) => self.core.reset(input),
            None => self.core.change(f),
        };
        let (tx, rx) = oneshot::channel();
        self.core.wait(generation, tx);
        self.kick(ctx);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err("the flow-writer stopped".into()))
        })
    }
}

impl<C: Compiler> Actor for FlowWriter<C> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(crate::MAILBOX);
        let Some(source) = self.source.clone() else {
            return;
        };
        // Until the state is back nothing syncs (the Coalescer is not ready), so a restart
        // never wipes the host's flows; messages wait behind this in the mailbox.
        ctx.wait(
            async move {
                let list = source.endpoints().await?;
                let intent = source.intent().await?;
                Ok::<_, String>((list, intent))
            }
            .into_actor(self)
            .map(|result, act, ctx| match result {
                Ok((list, intent)) => {
                    let mut input = act.core.input.clone();
                    input.endpoints =
                        Arc::new(list.into_iter().map(|e| (e.id.clone(), e)).collect());
                    input.intent = intent;
                    tracing::info!(
                        endpoints = input.endpoints.len(),
                        "flow-writer state restored"
                    );
                    act.core.reset(input);
                    act.kick(ctx);
                }
                Err(e) => {
                    tracing::error!(error = %e, "flow-writer cannot restore; restarting shortly");
                    // Not in a tight loop while the master is away.
                    ctx.run_later(RESTORE_RETRY, |_, ctx| ctx.stop());
                }
            }),
        );
    }
}

impl<C: Compiler> Handler<Restart> for FlowWriter<C> {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Stop the actor; its supervisor starts it again and it rebuilds its state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restart;

impl<C: Compiler> Supervised for FlowWriter<C> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Waiters of the failed incarnation get an error; the state is rebuilt by a Reset.
        let base = HostInput {
            endpoints: Arc::default(),
            ..self.core.input.clone()
        };
        self.core = Coalescer {
            input: base,
            ..Coalescer::default()
        };
    }
}

/// Add or replace an endpoint; answers once its flows are installed.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Upsert(pub Endpoint);

/// Remove an endpoint; answers once its flows are gone.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Remove(pub String);

/// Replace the whole state (after a restart) and allow syncing.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Reset(pub HostInput);

/// The master's intent changed. Answered once the change is recorded, not once its flows are
/// in: the master link sends changes one by one in revision order, and waiting for each sync
/// would serialise a burst of rule writes into one full sync per rule instead of letting
/// them coalesce. Sync failures are logged by the writer and retried on the next change.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct SetIntent(pub Arc<Intent>);

impl<C: Compiler> Handler<SetIntent> for FlowWriter<C> {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: SetIntent, ctx: &mut Context<Self>) -> Self::Result {
        self.core.change(|i| i.intent = msg.0);
        self.kick(ctx);
        Ok(())
    }
}

/// Re-sync what is there (e.g. after someone touched the switch).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Resync;

impl<C: Compiler> Handler<Upsert> for FlowWriter<C> {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: Upsert, ctx: &mut Context<Self>) -> Self::Result {
        let ep = msg.0;
        self.change_and_wait(
            ctx,
            |i| {
                Arc::make_mut(&mut i.endpoints).insert(ep.id.clone(), ep);
            },
            None,
        )
    }
}

impl<C: Compiler> Handler<Remove> for FlowWriter<C> {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: Remove, ctx: &mut Context<Self>) -> Self::Result {
        self.change_and_wait(
            ctx,
            |i| {
                if i.endpoints.contains_key(&msg.0) {
                    Arc::make_mut(&mut i.endpoints).remove(&msg.0);
                }
            },
            None,
        )
    }
}

impl<C: Compiler> Handler<Reset> for FlowWriter<C> {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: Reset, ctx: &mut Context<Self>) -> Self::Result {
        self.change_and_wait(ctx, |_| {}, Some(msg.0))
    }
}

impl<C: Compiler> Handler<Resync> for FlowWriter<C> {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Resync, ctx: &mut Context<Self>) -> Self::Result {
        self.change_and_wait(ctx, |_| {}, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{host_if_name, mac_for};
    use std::sync::Mutex;

    fn endpoint(id: &str, last: u8) -> Endpoint {
        let ip = std::net::Ipv4Addr::new(10, 1, 2, last);
        Endpoint {
            id: id.into(),
            container_id: id.into(),
            netns: String::new(),
            if_name: "eth0".into(),
            tenant: "t".into(),
            network: "t:n".into(),
            group: String::new(),
            group_id: 0,
            ip,
            prefix_len: 24,
            gateway: None,
            mac: mac_for(ip),
            host_if: host_if_name(id),
            ofport: u32::from(last),
            mtu: 1500,
            container_name: String::new(),
        }
    }

    /// Flows are just the endpoint ids.
    struct Ids;
    impl Compiler for Ids {
        type Flow = String;
        fn compile(&self, input: &HostInput) -> Result<BTreeSet<String>, String> {
            Ok(input.endpoints.keys().cloned().collect())
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<BTreeSet<String>>>);
    #[async_trait]
    impl FlowSink<String> for Recorder {
        async fn sync(&self, desired: BTreeSet<String>) -> Result<usize, String> {
            let n = desired.len();
            self.0.lock().unwrap().push(desired);
            Ok(n)
        }
    }

    struct Master;
    #[async_trait]
    impl StateSource for Master {
        async fn endpoints(&self) -> Result<Vec<Endpoint>, String> {
            Ok(vec![endpoint("a", 2), endpoint("b", 3)])
        }
    }

    #[test]
    fn a_supervised_flow_writer_rebuilds_its_state_after_a_restart() {
        let sink = Arc::new(Recorder::default());
        let sink2 = sink.clone();
        actix::System::new().block_on(async move {
            let addr = actix::Supervisor::start(move |_| {
                FlowWriter::new(Arc::new(Ids), sink2.clone(), HostInput::default())
                    .with_source(Arc::new(Master))
            });
            addr.send(Upsert(endpoint("c", 4))).await.unwrap().unwrap();
            addr.send(Restart).await.unwrap();
            // After the restart the state comes from the source again: "c" was never recorded.
            addr.send(Resync).await.unwrap().unwrap();
        });
        let syncs = sink.0.lock().unwrap().clone();
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(syncs.first(), Some(&set(&["a", "b"])), "{syncs:?}");
        assert!(syncs.contains(&set(&["a", "b", "c"])), "{syncs:?}");
        assert_eq!(syncs.last(), Some(&set(&["a", "b"])), "{syncs:?}");
    }

    #[test]
    fn nothing_syncs_before_the_first_reset() {
        let mut c = Coalescer::default();
        c.change(|i| i.gw_port = 1);
        assert!(c.start().is_none());
        let g = c.reset(HostInput::default());
        assert_eq!(c.start().map(|(g, _)| g), Some(g));
    }

    #[test]
    fn a_burst_coalesces_and_every_waiter_is_answered_by_a_covering_sync() {
        let mut c = Coalescer::default();
        let g0 = c.reset(HostInput::default());
        let (tx0, mut rx0) = oneshot::channel();
        c.wait(g0, tx0);
        let (first, _) = c.start().unwrap();
        assert_eq!(first, g0);
        // Changes arrive while the first sync runs.
        let mut rxs = Vec::new();
        for port in 1..=5 {
            let g = c.change(|i| i.gw_port = port);
            let (tx, rx) = oneshot::channel();
            c.wait(g, tx);
            rxs.push(rx);
        }
        assert!(c.start().is_none(), "one sync at a time");
        for (_, tx) in c.finish(first, Ok(())) {
            tx.send(Ok(())).unwrap();
        }
        assert_eq!(rx0.try_recv(), Ok(Ok(())));
        assert!(rxs.iter_mut().all(|rx| rx.try_recv().is_err()));
        // One sync covers the five changes.
        let (second, input) = c.start().unwrap();
        assert_eq!(input.gw_port, 5);
        let answered = c.finish(second, Ok(()));
        assert_eq!(answered.len(), 5);
        assert!(c.start().is_none());
    }

    #[test]
    fn a_failed_sync_answers_with_the_error_and_retries_on_the_next_change() {
        let mut c = Coalescer::default();
        let g = c.reset(HostInput::default());
        let (tx, _rx) = oneshot::channel();
        c.wait(g, tx);
        let (gen, _) = c.start().unwrap();
        assert_eq!(c.finish(gen, Err("switch gone".into())).len(), 1);
        c.change(|_| {});
        assert!(c.start().is_some());
    }
}

//! The flow-writer actor: compiles the host's desired flow set from its local endpoints and
//! hands it to a sink that installs only the difference.
//!
//! [`Coalescer`] holds the logic: every change bumps a generation; one sync runs at a time and
//! takes the newest state, so a burst of fifty attaches costs a few syncs, not fifty; each
//! caller is answered once a sync that includes its change has finished. Nothing is synced
//! before the first [`Reset`] (the restored state after a restart): syncing an empty host
//! would cut running containers off.

use crate::types::{Endpoint, Mac};
use actix::prelude::*;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::oneshot;

/// What the pipeline compiler needs to know about this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInput {
    pub router_mac: Mac,
    /// The gateway internal port towards the host kernel.
    pub gw_port: u32,
    pub gw_mac: Mac,
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// Turns the host's state into its whole desired flow set (pure).
pub trait Compiler: Send + Sync + 'static {
    type Flow: Ord + Clone + Send + Sync + 'static;
    fn compile(&self, input: &HostInput) -> BTreeSet<Self::Flow>;
}

/// Installs a desired flow set, touching only what differs (and only flows it owns).
#[async_trait]
pub trait FlowSink<F>: Send + Sync + 'static {
    /// Returns the number of flows added, changed or removed.
    async fn sync(&self, desired: &BTreeSet<F>) -> Result<usize, String>;
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
        }
    }

    fn kick(&mut self, ctx: &mut Context<Self>) {
        let Some((generation, input)) = self.core.start() else {
            return;
        };
        let flows = self.compiler.compile(&input);
        let sink = self.sink.clone();
        ctx.spawn(async move { sink.sync(&flows).await }.into_actor(self).map(
            move |result, act, ctx| {
                let answer = match result {
                    Ok(changes) => {
                        tracing::debug!(generation, changes, "flows synced");
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
            },
        ));
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
    }
}

impl<C: Compiler> Supervised for FlowWriter<C> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Waiters of the failed incarnation get an error; the state is rebuilt by a Reset.
        let base = HostInput {
            endpoints: BTreeMap::new(),
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
                i.endpoints.insert(ep.id.clone(), ep);
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
                i.endpoints.remove(&msg.0);
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

//! The endpoint actor: attach and detach containers as a sequence of undoable steps.
//!
//! [`Saga`] holds the logic: attach finds the address (from the host's reserve or the master)
//! and adds the route (kernel + BGP) as soon as it has it, while the veth pair is made, then
//! its container end wired (address, MAC, routes in the netns), then the OVS port → flows; the
//! endpoint is recorded in the master alongside the data plane. A failing step undoes the steps already attempted, itself included,
//! newest first (the record first), so nothing is left behind. Detach runs every undo,
//! tolerating what is already gone. The steps themselves are an [`AttachOps`] implementation
//! (the agent's drivers), so the saga is unit-tested with a fake.

use crate::types::{AttachRequest, Endpoint};
use actix::prelude::*;
use async_trait::async_trait;
use futures::FutureExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One step of an attachment, in the order attach runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Allocate,
    Wire,
    Port,
    Flows,
    Route,
    Record,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Allocate,
        Step::Wire,
        Step::Port,
        Step::Flows,
        Step::Route,
        Step::Record,
    ];
}

/// What kind of failure a step had; the CNI layer maps it to an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The master did not answer (connection refused, timeout).
    MasterUnreachable,
    /// The master refused (no free address, unknown network, invalid object...).
    MasterRefused,
    /// The kernel or OVS refused.
    Dataplane,
    /// The request itself is wrong (unknown namespace...).
    Invalid,
    /// The same endpoint is being attached or detached right now.
    Busy,
}

/// A failed step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub kind: ErrorKind,
    pub message: String,
}

impl StepError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> StepError {
        StepError {
            kind,
            message: message.into(),
        }
    }
}

/// A failed attach: the step, its error, and any undo that failed too (a leak to report).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step:?} failed: {error}{}", undo_note(.undo_errors))]
pub struct AttachError {
    pub step: Step,
    pub error: StepError,
    pub undo_errors: Vec<(Step, StepError)>,
}

fn undo_note(errors: &[(Step, StepError)]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let list: Vec<String> = errors.iter().map(|(s, e)| format!("{s:?}: {e}")).collect();
    format!(" (undo also failed: {})", list.join("; "))
}

/// The steps of an attachment as the data plane and the master implement them. Every undo
/// succeeds when its object is already gone.
#[async_trait]
pub trait AttachOps: Send + Sync + 'static {
    /// Gets an address from the master; returns the endpoint with address, gateway, MAC, host
    /// interface name and group id filled in (ofport 0).
    async fn allocate(&self, req: &AttachRequest) -> Result<Endpoint, StepError>;
    async fn release(&self, ep: &Endpoint) -> Result<(), StepError>;
    /// What the veth pair needs before the address is known, done while the address is
    /// being allocated: the pair, its container end in the netns. Undone by `unwire`, or by
    /// `sweep` when allocation failed.
    async fn prewire(&self, req: &AttachRequest) -> Result<(), StepError>;
    /// The veth pair (made if `prewire` did not), its container end given address, MAC and
    /// default route.
    async fn wire(&self, ep: &Endpoint) -> Result<(), StepError>;
    async fn unwire(&self, ep: &Endpoint) -> Result<(), StepError>;
    /// Adds the host end to the bridge; returns its OpenFlow port number (possibly before the
    /// switch has finished adding the port: `add_flows` then confirms it).
    async fn add_port(&self, ep: &Endpoint) -> Result<u32, StepError>;
    async fn del_port(&self, ep: &Endpoint) -> Result<(), StepError>;
    /// Returns once the endpoint's flows are installed and its port is in the switch.
    async fn add_flows(&self, ep: &Endpoint) -> Result<(), StepError>;
    async fn del_flows(&self, ep: &Endpoint) -> Result<(), StepError>;
    /// Kernel route and BGP announcement.
    async fn add_route(&self, ep: &Endpoint) -> Result<(), StepError>;
    async fn del_route(&self, ep: &Endpoint) -> Result<(), StepError>;
    async fn record(&self, ep: &Endpoint) -> Result<(), StepError>;
    async fn unrecord(&self, ep: &Endpoint) -> Result<(), StepError>;
    /// Verifies an attachment is intact (CNI CHECK).
    async fn check(&self, ep: &Endpoint) -> Result<(), StepError>;
    /// The master's record of an endpoint of this host, for a DEL the agent does not know.
    async fn lookup(&self, id: &str) -> Result<Option<Endpoint>, StepError>;
    /// Removes anything named after an endpoint nobody knows (a half-done ADD before a crash).
    async fn sweep(&self, id: &str) -> Result<(), StepError>;
    /// Every endpoint this host should have (after a restart).
    async fn restore(&self) -> Result<Vec<Endpoint>, StepError>;
}

/// Attach and detach as undoable step sequences.
pub struct Saga;

impl Saga {
    /// Runs every step; on a failure undoes the attempted ones, newest first.
    ///
    /// Three strands run at once: the address and then the route (kernel /32 and BGP
    /// announcement), which need nothing else; the veth pair, made while the address is
    /// found, then wired, then the OVS port and flows; and the master's record once the
    /// address is known. The runtime's answer waits for all of them, so policy is in place
    /// before it learns the address. Until the flows are in, a packet for the new address
    /// from the fabric meets the pipeline's table miss (the gateway port only admits local
    /// destinations) and is dropped, never forwarded around policy; Calico makes the same
    /// trade (its route exists before Felix has programmed the workload). It takes the veth
    /// and OVS work, what contends for the kernel's link lock and grows with the bridge's
    /// ports, off the time to routable.
    pub async fn attach(ops: &dyn AttachOps, req: &AttachRequest) -> Result<Endpoint, AttachError> {
        let started = std::time::Instant::now();
        let allocation = ops.allocate(req).shared();
        let for_route = allocation.clone();
        let route = async {
            let ep = for_route.await.ok()?;
            let allocated = started.elapsed();
            let t = std::time::Instant::now();
            let routed = ops.add_route(&ep).await;
            Some((routed, allocated, t.elapsed()))
        };
        let (routed, rest) = futures::join!(route, Self::wire_and_record(ops, req, allocation));
        let (ep, done_after_route, mut timings, error) = match rest {
            Err(error) => {
                let undo_errors = match ops.sweep(&req.endpoint_id()).await {
                    Ok(()) => Vec::new(),
                    Err(e) => vec![(Step::Wire, e)],
                };
                return Err(AttachError {
                    step: Step::Allocate,
                    error,
                    undo_errors,
                });
            }
            Ok(rest) => rest,
        };
        // Undone newest first: the route is withdrawn after the data plane is gone and before
        // the address is released.
        let mut done = vec![Step::Allocate];
        let mut error = error;
        if let Some((result, allocated, route_time)) = routed {
            done.push(Step::Route);
            timings.insert(0, (Step::Allocate, allocated));
            timings.push((Step::Route, route_time));
            if let Err(e) = result {
                error = error.or(Some((Step::Route, e)));
            }
        }
        done.extend(done_after_route);
        if let Some((step, error)) = error {
            let undo_errors = Self::undo(ops, &ep, &done).await;
            return Err(AttachError {
                step,
                error,
                undo_errors,
            });
        }
        let steps: Vec<String> = timings
            .iter()
            .map(|(s, d)| format!("{s:?}={}ms", d.as_millis()))
            .collect();
        tracing::info!(endpoint = %ep.id, ip = %ep.ip, steps = %steps.join(" "), "attached");
        Ok(ep)
    }

    /// The veth pair (made while `allocation` runs), then the data plane alongside the
    /// master's record. Err: the allocation failed. Ok: the endpoint (with its port number),
    /// the steps attempted, their timings and the first failure.
    #[allow(clippy::type_complexity)]
    async fn wire_and_record(
        ops: &dyn AttachOps,
        req: &AttachRequest,
        allocation: impl std::future::Future<Output = Result<Endpoint, StepError>>,
    ) -> Result<
        (
            Endpoint,
            Vec<Step>,
            Vec<(Step, std::time::Duration)>,
            Option<(Step, StepError)>,
        ),
        StepError,
    > {
        let t = std::time::Instant::now();
        let prewire = async {
            let prewired = ops.prewire(req).await;
            (prewired, t.elapsed())
        };
        let (allocated, (prewired, prewire_time)) = futures::join!(allocation, prewire);
        let ep = allocated?;
        if let Err(error) = prewired {
            return Ok((
                ep,
                vec![Step::Wire],
                vec![(Step::Wire, prewire_time)],
                Some((Step::Wire, error)),
            ));
        }
        // The master's record needs nothing the data plane produces, so it is written while
        // the data plane is wired.
        let record_ep = ep.clone();
        let record = async {
            let t = std::time::Instant::now();
            (ops.record(&record_ep).await, t.elapsed())
        };
        let ((ep, mut done, mut timings, chain_error), (recorded, record_time)) =
            futures::join!(Self::data_plane(ops, ep), record);
        if let Some((Step::Wire, wire_time)) = timings.first_mut() {
            *wire_time += prewire_time;
        }
        timings.push((Step::Record, record_time));
        // The record is undone also when it failed: a write that timed out may have landed.
        done.push(Step::Record);
        let error = chain_error.or(recorded.err().map(|e| (Step::Record, e)));
        Ok((ep, done, timings, error))
    }

    /// Wire, then port → flows; nothing after a failed step.
    #[allow(clippy::type_complexity)]
    async fn data_plane(
        ops: &dyn AttachOps,
        mut ep: Endpoint,
    ) -> (
        Endpoint,
        Vec<Step>,
        Vec<(Step, std::time::Duration)>,
        Option<(Step, StepError)>,
    ) {
        let t = std::time::Instant::now();
        let wired = ops.wire(&ep).await;
        let mut timings = vec![(Step::Wire, t.elapsed())];
        // A failed step is undone too: it may have half-happened (a veth without its address,
        // a port without its number), and every undo tolerates what is not there.
        let mut done = vec![Step::Wire];
        if let Err(e) = wired {
            return (ep, done, timings, Some((Step::Wire, e)));
        }
        let t = std::time::Instant::now();
        let port = ops.add_port(&ep).await;
        timings.push((Step::Port, t.elapsed()));
        done.push(Step::Port);
        let port = match port {
            Ok(port) => port,
            Err(e) => return (ep, done, timings, Some((Step::Port, e))),
        };
        ep.ofport = port;
        let t = std::time::Instant::now();
        let flows = ops.add_flows(&ep).await;
        timings.push((Step::Flows, t.elapsed()));
        done.push(Step::Flows);
        (ep, done, timings, flows.err().map(|e| (Step::Flows, e)))
    }

    /// Undoes every step of an attachment; returns the undos that failed.
    pub async fn detach(ops: &dyn AttachOps, ep: &Endpoint) -> Vec<(Step, StepError)> {
        Self::undo(ops, ep, &Step::ALL).await
    }

    async fn undo(ops: &dyn AttachOps, ep: &Endpoint, done: &[Step]) -> Vec<(Step, StepError)> {
        let mut errors = Vec::new();
        for step in done.iter().rev() {
            let result = match step {
                Step::Allocate => ops.release(ep).await,
                Step::Wire => ops.unwire(ep).await,
                Step::Port => ops.del_port(ep).await,
                Step::Flows => ops.del_flows(ep).await,
                Step::Route => ops.del_route(ep).await,
                Step::Record => ops.unrecord(ep).await,
            };
            if let Err(e) = result {
                tracing::warn!(endpoint = %ep.id, ?step, error = %e, "undo failed");
                errors.push((*step, e));
            }
        }
        errors
    }
}

/// The endpoint actor's state: attached endpoints and the ids with an operation in flight.
#[derive(Debug, Default)]
pub struct Endpoints {
    pub attached: BTreeMap<String, Endpoint>,
    pub busy: BTreeSet<String>,
}

impl Endpoints {
    /// Marks `id` busy; false if an operation on it is already running.
    pub fn begin(&mut self, id: &str) -> bool {
        self.busy.insert(id.to_string())
    }

    pub fn end(&mut self, id: &str) {
        self.busy.remove(id);
    }

    /// Endpoints to detach for a CNI GC: attached, not busy, not in `valid`.
    pub fn stale(&self, valid: &BTreeSet<String>) -> Vec<Endpoint> {
        self.attached
            .values()
            .filter(|e| !valid.contains(&e.id) && !self.busy.contains(&e.id))
            .cloned()
            .collect()
    }
}

/// The actor: one per agent.
pub struct EndpointActor {
    ops: Arc<dyn AttachOps>,
    state: Endpoints,
    restored: bool,
}

impl EndpointActor {
    pub fn new(ops: Arc<dyn AttachOps>) -> EndpointActor {
        EndpointActor {
            ops,
            state: Endpoints::default(),
            restored: false,
        }
    }
}

impl Actor for EndpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(crate::MAILBOX);
        // Rebuild the state from the master and the data plane (also after a supervisor restart).
        let ops = self.ops.clone();
        ctx.wait(
            async move { ops.restore().await }.into_actor(self).map(
                |result, act, _| match result {
                    Ok(list) => {
                        tracing::info!(endpoints = list.len(), "endpoint state restored");
                        act.state.attached = list.into_iter().map(|e| (e.id.clone(), e)).collect();
                        act.restored = true;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot restore endpoints"),
                },
            ),
        );
    }
}

impl Supervised for EndpointActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("endpoint actor restarting");
        self.state = Endpoints::default();
        self.restored = false;
    }
}

/// Attach a container interface; answers with the complete endpoint.
#[derive(Message)]
#[rtype(result = "Result<Endpoint, AttachError>")]
pub struct Attach(pub AttachRequest);

/// Detach an endpoint by id; succeeds when it is already gone.
#[derive(Message)]
#[rtype(result = "Result<(), StepError>")]
pub struct Detach(pub String);

/// Verify an attachment (CNI CHECK).
#[derive(Message)]
#[rtype(result = "Result<Endpoint, StepError>")]
pub struct Check(pub String);

/// Detach every endpoint not in the list (CNI GC).
#[derive(Message)]
#[rtype(result = "Result<usize, StepError>")]
pub struct Gc(pub BTreeSet<String>);

/// The attached endpoints.
#[derive(Message)]
#[rtype(result = "Vec<Endpoint>")]
pub struct List;

fn busy(id: &str) -> StepError {
    StepError::new(
        ErrorKind::Busy,
        format!("endpoint {id} has an operation in progress"),
    )
}

impl Handler<Attach> for EndpointActor {
    type Result = ResponseActFuture<Self, Result<Endpoint, AttachError>>;

    fn handle(&mut self, msg: Attach, _: &mut Context<Self>) -> Self::Result {
        let id = msg.0.endpoint_id();
        if let Some(ep) = self.state.attached.get(&id) {
            let ep = ep.clone();
            return Box::pin(fut::ready(Ok(ep)));
        }
        if !self.state.begin(&id) {
            let error = AttachError {
                step: Step::Allocate,
                error: busy(&id),
                undo_errors: Vec::new(),
            };
            return Box::pin(fut::ready(Err(error)));
        }
        let ops = self.ops.clone();
        let req = msg.0;
        Box::pin(
            async move { Saga::attach(ops.as_ref(), &req).await }
                .into_actor(self)
                .map(move |result, act, _| {
                    act.state.end(&id);
                    if let Ok(ep) = &result {
                        act.state.attached.insert(id, ep.clone());
                    }
                    result
                }),
        )
    }
}

impl Handler<Detach> for EndpointActor {
    type Result = ResponseActFuture<Self, Result<(), StepError>>;

    fn handle(&mut self, msg: Detach, _: &mut Context<Self>) -> Self::Result {
        let id = msg.0;
        if !self.state.begin(&id) {
            return Box::pin(fut::ready(Err(busy(&id))));
        }
        let known = self.state.attached.get(&id).cloned();
        let ops = self.ops.clone();
        let id2 = id.clone();
        Box::pin(
            async move {
                let ep = match known {
                    Some(ep) => Some(ep),
                    None => ops.lookup(&id2).await?,
                };
                match ep {
                    Some(ep) => match Saga::detach(ops.as_ref(), &ep).await.into_iter().next() {
                        None => Ok(()),
                        Some((step, e)) => Err(StepError::new(
                            e.kind,
                            format!("detach {step:?}: {}", e.message),
                        )),
                    },
                    None => ops.sweep(&id2).await,
                }
            }
            .into_actor(self)
            .map(move |result, act, _| {
                act.state.end(&id);
                if result.is_ok() {
                    act.state.attached.remove(&id);
                }
                result
            }),
        )
    }
}

impl Handler<Check> for EndpointActor {
    type Result = ResponseActFuture<Self, Result<Endpoint, StepError>>;

    fn handle(&mut self, msg: Check, _: &mut Context<Self>) -> Self::Result {
        let known = self.state.attached.get(&msg.0).cloned();
        let ops = self.ops.clone();
        Box::pin(
            async move {
                let ep = known.ok_or_else(|| {
                    StepError::new(
                        ErrorKind::Invalid,
                        format!("endpoint {} is not attached on this host", msg.0),
                    )
                })?;
                ops.check(&ep).await.map(|()| ep)
            }
            .into_actor(self),
        )
    }
}

impl Handler<Gc> for EndpointActor {
    type Result = ResponseActFuture<Self, Result<usize, StepError>>;

    fn handle(&mut self, msg: Gc, _: &mut Context<Self>) -> Self::Result {
        let stale = self.state.stale(&msg.0);
        for ep in &stale {
            self.state.begin(&ep.id);
        }
        let ops = self.ops.clone();
        Box::pin(
            async move {
                let mut done = Vec::new();
                let mut first_error = None;
                for ep in stale {
                    match Saga::detach(ops.as_ref(), &ep).await.into_iter().next() {
                        None => done.push((ep.id, true)),
                        Some((_, e)) => {
                            first_error.get_or_insert(e);
                            done.push((ep.id, false));
                        }
                    }
                }
                (done, first_error)
            }
            .into_actor(self)
            .map(|(done, first_error), act, _| {
                let mut removed = 0;
                for (id, ok) in done {
                    act.state.end(&id);
                    if ok {
                        act.state.attached.remove(&id);
                        removed += 1;
                    }
                }
                match first_error {
                    Some(e) => Err(e),
                    None => Ok(removed),
                }
            }),
        )
    }
}

impl Handler<List> for EndpointActor {
    type Result = Vec<Endpoint>;

    fn handle(&mut self, _: List, _: &mut Context<Self>) -> Vec<Endpoint> {
        self.state.attached.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests;

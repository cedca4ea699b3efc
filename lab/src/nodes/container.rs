//! `container`: a namespace standing for a workload. It is recorded as attached to its
//! `netplugin` host (label `lab.host`); the agent's CNI plugin wires it once the agent exists.

use crate::plan::{NodeCtx, NodePlan, PlanError};

pub fn plan(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let mut plan = NodePlan::default();
    if let Some(host) = &ctx.node.host {
        plan.env.insert("LAB_HOST".into(), host.clone());
        plan.env
            .insert("LAB_HOST_NETNS".into(), ctx.topo.netns(host));
    }
    Ok(plan)
}

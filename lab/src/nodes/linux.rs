//! `linux`: a plain host. Nothing runs in it but its `exec` lines (added by the planner).

use crate::plan::{NodeCtx, NodePlan, PlanError};

pub fn plan(_ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    Ok(NodePlan::default())
}

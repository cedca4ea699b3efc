//! `netmaster`: our master, listening on the node's management address. The binary is found
//! next to `lab` or on PATH; with `--skip-missing` a missing binary leaves a bare namespace.
//! `env: ETCD_ENDPOINTS` switches it to the etcd store.

use crate::plan::{argv, NodeCtx, NodePlan, PlanError};

pub const PORT: u16 = 9999;

pub fn plan(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let mut plan = NodePlan::default();
    let Some(netmaster) = ctx.env.programs.get("netmaster") else {
        if ctx.env.skip_missing {
            plan.skipped.push("netmaster".into());
            return Ok(plan);
        }
        return Err(ctx.error(
            "netmaster binary not found next to lab or on PATH (the master is not built yet; \
             `cargo build --release -p master`, or deploy with --skip-missing)",
        ));
    };
    let listen = format!("{}:{PORT}", ctx.node.mgmt_ipv4);
    let mut args = argv([
        netmaster.display().to_string(),
        "--listen-url".into(),
        listen.clone(),
        "--data-dir".into(),
        ctx.run_dir.join("netmaster").display().to_string(),
    ]);
    if let Some(etcd) = ctx.node.env.get("ETCD_ENDPOINTS") {
        args.extend(argv(["--etcd", etcd.as_str()]));
    }
    // The agents, netctl and the benches reach it over plain HTTP for now (issue 18 moves
    // them to TLS); without this flag the master serves only TLS.
    args.extend(argv(["--insecure-http"]));
    plan.actions.push(crate::plan::Action::MakeDir {
        path: ctx.run_dir.join("netmaster"),
        owner: None,
    });
    plan.actions
        .push(ctx.spawn("netmaster", args, ctx.env_with(&[])));
    plan.actions.push(ctx.wait_ready(
        "netmaster REST port",
        argv([
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{}/{PORT}", ctx.node.mgmt_ipv4),
        ]),
        20,
    ));
    plan.env
        .insert("NETMASTER_URL".into(), format!("http://{listen}"));
    Ok(plan)
}

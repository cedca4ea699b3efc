//! `netplugin`: a fabric host. Its own OVS instance (see `ovs.rs`), then our agent binary if it
//! is built. Without the binary the node fails with a clear error, unless `--skip-missing` (or
//! `LAB_SKIP_MISSING=1`) asks for a plain OVS host.

use crate::auth;
use crate::plan::{argv, NodeCtx, NodePlan, PlanError};

use super::ovs;

/// The agent's CNI socket: one per host, in the host's run directory (the lab's hosts share
/// one file system, so the default path would collide).
pub fn socket(ctx: &NodeCtx) -> std::path::PathBuf {
    socket_in(&ctx.run_dir)
}

pub fn socket_in(run_dir: &std::path::Path) -> std::path::PathBuf {
    run_dir.join("netplugin.sock")
}

/// The agent's secret and the certificate it trusts, when its master is the lab's own (a
/// `NETMASTER_URL` in the node's env points elsewhere: its env may then carry
/// `NETPLUGIN_MASTER_SECRET_FILE` and `NETPLUGIN_MASTER_CACERT`, which the agent reads).
fn master_credentials(ctx: &NodeCtx) -> Vec<String> {
    let Some(master) = ctx.first_master() else {
        return Vec::new();
    };
    if ctx.node.env.contains_key("NETMASTER_URL") {
        return Vec::new();
    }
    let dir = ctx.run_dir_of(&master.name);
    let mut args = argv([
        "--master-secret-file".to_string(),
        auth::agent_secret_file(&dir).display().to_string(),
    ]);
    // A master that is not built makes no certificate; the agent then waits for it with the
    // system's roots instead of failing on a missing file.
    if ctx.env.programs.contains_key("netmaster") {
        args.extend(argv([
            "--master-cacert".to_string(),
            auth::cacert(&dir).display().to_string(),
        ]));
    }
    args
}

pub fn plan(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let (mut actions, ovs_env) = ovs::plan(ctx)?;
    let mut plan = NodePlan::default();
    plan.env
        .extend(ovs_env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    match ctx.env.programs.get("netplugin") {
        Some(netplugin) => {
            let mut args = argv([
                netplugin.display().to_string(),
                "--host".into(),
                ctx.node.name.clone(),
                "--ovs-rundir".into(),
                ovs::dir(ctx).display().to_string(),
                "--socket".into(),
                socket(ctx).display().to_string(),
            ]);
            if let Some(url) = ctx.master_url() {
                args.extend(argv(["--netmaster".to_string(), url]));
                args.extend(master_credentials(ctx));
            }
            actions.push(ctx.spawn("netplugin", args, ctx.env_with(&ovs_env)));
            actions.push(crate::plan::Action::Settle {
                node: ctx.node.name.clone(),
                duration: std::time::Duration::from_secs(1),
            });
        }
        None if ctx.env.skip_missing => plan.skipped.push("netplugin".into()),
        None => {
            return Err(ctx.error(
                "netplugin binary not found (the agent is not built yet); deploy with \
                 --skip-missing to bring hosts up as plain OVS hosts",
            ))
        }
    }
    plan.actions = actions;
    Ok(plan)
}

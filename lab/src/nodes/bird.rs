//! `bird`: BIRD 2 in the node's namespace, in the foreground (`-f`) so its pid is the one we
//! spawned, with its control socket in the node's run dir.

use crate::plan::{argv, Action, NodeCtx, NodePlan, PlanError};

use super::{bin_dir, wrapper};

pub fn plan(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let bird = ctx.program("bird", "bird2")?;
    let birdc = ctx.program("birdc", "bird2")?;
    let source = ctx
        .config_file()
        .ok_or_else(|| ctx.error("no BIRD config (startup-config)"))?;
    let conf = ctx.run_dir.join("bird.conf");
    let ctl = ctx.run_dir.join("bird.ctl");
    let ctl_s = ctl.display().to_string();
    let actions = vec![
        Action::CopyFile {
            from: source,
            to: conf.clone(),
            owner: None,
        },
        bin_dir(ctx),
        wrapper(ctx, "birdc", &birdc, &argv(["-s", ctl_s.as_str()])),
        ctx.spawn(
            "bird",
            argv([
                bird.display().to_string(),
                "-f".into(),
                "-c".into(),
                conf.display().to_string(),
                "-s".into(),
                ctl_s.clone(),
            ]),
            ctx.env_with(&[]),
        ),
        ctx.wait_ready(
            "bird control socket",
            argv([
                birdc.display().to_string(),
                "-s".into(),
                ctl_s,
                "show status".into(),
            ]),
            15,
        ),
    ];
    Ok(NodePlan {
        actions,
        ..NodePlan::default()
    })
}

//! `gobgp`: gobgpd in the node's namespace. Its API listens on the namespace's own 127.0.0.1,
//! so every node can use the default port and `gobgp` finds it without flags.

use crate::plan::{argv, Action, NodeCtx, NodePlan, PlanError};

pub const API: &str = "127.0.0.1:50051";

pub fn plan(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let gobgpd = ctx.program("gobgpd", "gobgpd")?;
    let gobgp = ctx.program("gobgp", "gobgpd")?;
    let source = ctx
        .config_file()
        .ok_or_else(|| ctx.error("no GoBGP config (startup-config)"))?;
    let config_type = match source.extension().and_then(|e| e.to_str()) {
        Some("yml") | Some("yaml") => "yaml",
        Some("json") => "json",
        _ => "toml",
    };
    let conf = ctx.run_dir.join(format!("gobgpd.{config_type}"));
    let actions = vec![
        Action::CopyFile {
            from: source,
            to: conf.clone(),
            owner: None,
        },
        ctx.spawn(
            "gobgpd",
            argv([
                gobgpd.display().to_string(),
                "-f".into(),
                conf.display().to_string(),
                "-t".into(),
                config_type.into(),
                "--api-hosts".into(),
                API.into(),
                "--pprof-disable".into(),
                "--log-plain".into(),
            ]),
            ctx.env_with(&[]),
        ),
        ctx.wait_ready(
            "gobgp API",
            argv([gobgp.display().to_string(), "-j".into(), "global".into()]),
            15,
        ),
    ];
    Ok(NodePlan {
        actions,
        ..NodePlan::default()
    })
}

//! `frr`: FRR 8 zebra + bgpd in the node's namespace, each instance in its own path space
//! (`-N <instance>`: config under /etc/frr/<instance>, sockets under /var/run/frr/<instance>, both
//! owned by user `frr`), as LAB-RECIPES describes. Daemons run in the foreground (no `-d`).

use std::path::PathBuf;

use crate::plan::{argv, Action, NodeCtx, NodePlan, PlanError};

use super::{bin_dir, wrapper};

/// The FRR instance name of a node: unique per lab and node.
pub fn instance(ctx: &NodeCtx) -> String {
    ctx.netns.clone()
}

pub fn etc_dir(instance: &str) -> PathBuf {
    PathBuf::from("/etc/frr").join(instance)
}

pub fn run_dir(instance: &str) -> PathBuf {
    PathBuf::from("/var/run/frr").join(instance)
}

pub fn plan(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let zebra = ctx.program("zebra", "frr")?;
    let bgpd = ctx.program("bgpd", "frr")?;
    let vtysh = ctx.program("vtysh", "frr")?;
    let source = ctx
        .config_file()
        .ok_or_else(|| ctx.error("no FRR config (startup-config)"))?;
    let inst = instance(ctx);
    // FRR puts its sockets at /var/run/frr/<instance>/<daemon>.vty; a unix socket path has
    // 108 bytes.
    if inst.len() > 80 {
        return Err(ctx.error(format!(
            "FRR instance name {inst} is too long for FRR's socket paths (80 characters at most; \
             shorten the lab or node name)"
        )));
    }
    let (etc, run) = (etc_dir(&inst), run_dir(&inst));
    let conf = etc.join("frr.conf");
    let frr = Some("frr".to_string());
    let daemon = |name: &str, program: &PathBuf| {
        ctx.spawn(
            name,
            argv([
                program.display().to_string(),
                "-N".into(),
                inst.clone(),
                "-f".into(),
                conf.display().to_string(),
                "-u".into(),
                "frr".into(),
                "-g".into(),
                "frr".into(),
            ]),
            ctx.env_with(&[]),
        )
    };
    let ready = |d: &str| {
        ctx.wait_ready(
            &format!("FRR {d}"),
            argv([
                vtysh.display().to_string(),
                "-N".into(),
                inst.clone(),
                "-d".into(),
                d.into(),
                "-c".into(),
                "show version".into(),
            ]),
            15,
        )
    };
    let actions = vec![
        Action::MakeDir {
            path: etc.clone(),
            owner: frr.clone(),
        },
        Action::MakeDir {
            path: run.clone(),
            owner: frr.clone(),
        },
        Action::CopyFile {
            from: source,
            to: conf.clone(),
            owner: frr.clone(),
        },
        Action::WriteFile {
            path: etc.join("vtysh.conf"),
            contents: "service integrated-vtysh-config\n".into(),
            mode: 0o640,
            owner: frr,
        },
        bin_dir(ctx),
        wrapper(ctx, "vtysh", &vtysh, &argv(["-N", inst.as_str()])),
        daemon("zebra", &zebra),
        ready("zebra"),
        daemon("bgpd", &bgpd),
        ready("bgpd"),
    ];
    Ok(NodePlan {
        actions,
        extra_dirs: vec![etc, run],
        ..NodePlan::default()
    })
}

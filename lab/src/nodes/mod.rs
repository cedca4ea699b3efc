//! One module per node kind: how to start it in its namespace, how to tell it is up, and where
//! its files live. Each returns plan actions; stopping is the same for all kinds (the destroy
//! path kills every process in the node's namespace and removes the directories recorded).

pub mod bird;
pub mod container;
pub mod etcd;
pub mod frr;
pub mod gobgp;
pub mod linux;
pub mod netmaster;
pub mod netplugin;
pub mod ovs;

use std::collections::BTreeMap;

use crate::kind::Kind;
use crate::plan::{NodeCtx, NodePlan, PlanError};

/// The PATH inside nodes: the node's helper scripts first (`birdc`, `vtysh` bound to the node).
pub fn path_with(dir: &std::path::Path) -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        dir.display()
    )
}

pub fn plan_node(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let mut plan = match ctx.node.kind {
        Kind::Linux => linux::plan(ctx),
        Kind::Container => container::plan(ctx),
        Kind::Bird => bird::plan(ctx),
        Kind::Frr => frr::plan(ctx),
        Kind::Gobgp => gobgp::plan(ctx),
        Kind::Etcd => etcd::plan(ctx),
        Kind::Netmaster => netmaster::plan(ctx),
        Kind::Netplugin => netplugin::plan(ctx),
    }?;
    plan.env
        .entry("PATH".into())
        .or_insert_with(|| path_with(&ctx.run_dir.join("bin")));
    plan.env.insert("LAB_NODE".into(), ctx.node.name.clone());
    plan.env
        .insert("LAB_NODE_DIR".into(), ctx.run_dir.display().to_string());
    Ok(plan)
}

/// A helper script in the node's `bin/` that runs `program` with fixed leading arguments, so
/// `lab exec tor1 -- birdc show protocols` reaches this node's daemon.
pub fn wrapper(
    ctx: &NodeCtx,
    name: &str,
    program: &std::path::Path,
    args: &[String],
) -> crate::plan::Action {
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    crate::plan::Action::WriteFile {
        path: ctx.run_dir.join("bin").join(name),
        contents: format!(
            "#!/bin/sh\nexec {} {} \"$@\"\n",
            shell_quote(&program.display().to_string()),
            quoted.join(" ")
        ),
        mode: 0o755,
        owner: None,
    }
}

pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The `bin/` directory for wrappers.
pub fn bin_dir(ctx: &NodeCtx) -> crate::plan::Action {
    crate::plan::Action::MakeDir {
        path: ctx.run_dir.join("bin"),
        owner: None,
    }
}

pub fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

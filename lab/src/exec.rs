//! `lab exec`: runs a command in one or more nodes, chosen by containerlab's label filter
//! (`clab-node-name=tor1`, `clab-node-kind=bird`, or any label from the file) or by name.

use std::process::{Command, ExitStatus};

use crate::error::LabError;
use crate::plan::NodeInfo;
use crate::state::State;

/// Does a node match a `key=value` filter?
pub fn matches(lab: &str, node: &NodeInfo, filter: &str) -> Result<bool, LabError> {
    let (key, value) = filter
        .split_once('=')
        .ok_or_else(|| LabError::Usage(format!("--label `{filter}` is not key=value")))?;
    Ok(match key {
        "clab-node-name" => node.name == value,
        "clab-node-kind" => node.kind.name() == value,
        "containerlab" => lab == value,
        other => node.labels.get(other).is_some_and(|v| v == value),
    })
}

/// The nodes a command goes to: from `states`, by name or by label filters (all must match).
pub fn select<'a>(
    states: &'a [State],
    name: Option<&str>,
    filters: &[String],
) -> Result<Vec<(&'a State, &'a NodeInfo)>, LabError> {
    let mut out = Vec::new();
    for state in states {
        for node in &state.nodes {
            let mut ok = name.is_none_or(|n| n == node.name);
            for f in filters {
                ok &= matches(&state.lab, node, f)?;
            }
            if ok {
                out.push((state, node));
            }
        }
    }
    if out.is_empty() {
        return Err(LabError::Usage(match name {
            Some(n) => format!("no deployed node named `{n}`"),
            None => format!("no deployed node matches {}", filters.join(", ")),
        }));
    }
    if name.is_some() && out.len() > 1 {
        let labs: Vec<&str> = out.iter().map(|(s, _)| s.lab.as_str()).collect();
        return Err(LabError::Usage(format!(
            "node name is in several labs ({}); pick one with -t",
            labs.join(", ")
        )));
    }
    Ok(out)
}

/// Runs `argv` in the node with the terminal attached; in a master node with the admin token
/// as NETCTL_TOKEN (logged in again when it is near its end).
pub fn run_in(node: &NodeInfo, argv: &[String]) -> Result<ExitStatus, LabError> {
    let mut cmd: Command = crate::netns::in_netns(&node.netns, argv);
    cmd.envs(&node.env);
    if let Some(login) = &node.login {
        cmd.env(
            crate::auth::TOKEN_ENV,
            crate::auth::token(&node.netns, login)?,
        );
    }
    cmd.status().map_err(|e| LabError::Command {
        command: argv.join(" "),
        status: "not started".into(),
        stderr: e.to_string(),
    })
}

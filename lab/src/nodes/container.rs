//! `container`: a namespace standing for a workload. It is recorded as attached to its
//! `netplugin` host (label `lab.host`). When the agent and its CNI plugin (`contivk8s`) are
//! built and the node names its network with Contiv's pod label `io.contiv.network` (tenant
//! `io.contiv.tenant`, group `io.contiv.net-group` optional), the container is attached the
//! way a runtime does it: `contivk8s` with CNI_* variables and the network config on stdin,
//! retried until the host's agent answers. Its interface is `eth1` (`eth0` is management).

use crate::kind::Kind;
use crate::plan::{argv, Action, NodeCtx, NodePlan, PlanError};

/// The container's interface on the fabric.
pub const IFNAME: &str = "eth1";
/// How long the attach is retried while the host's agent starts.
const ATTACH_TIMEOUT_SECS: u64 = 30;

pub fn plan(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let mut plan = NodePlan::default();
    let Some(host) = &ctx.node.host else {
        return Ok(plan);
    };
    plan.env.insert("LAB_HOST".into(), host.clone());
    plan.env
        .insert("LAB_HOST_NETNS".into(), ctx.topo.netns(host));
    let (Some(network), Some(cni), Some(_)) = (
        ctx.node.labels.get("io.contiv.network"),
        ctx.env.programs.get("contivk8s"),
        ctx.env.programs.get("netplugin"),
    ) else {
        return Ok(plan);
    };
    let is_agent_host = ctx
        .topo
        .nodes
        .iter()
        .any(|n| &n.name == host && n.kind == Kind::Netplugin);
    if !is_agent_host {
        return Err(ctx.error(format!("lab.host {host} is not a netplugin node")));
    }
    let label = |k: &str| ctx.node.labels.get(k).cloned().unwrap_or_default();
    let socket = super::netplugin::socket_in(&ctx.run_dir.with_file_name(host));
    let config = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "contiv",
        "type": "contivk8s",
        "socket": socket,
        "tenant": if label("io.contiv.tenant").is_empty() { "default".into() } else { label("io.contiv.tenant") },
        "network": network,
        "group": label("io.contiv.net-group"),
    });
    let config_path = ctx.run_dir.join("cni.json");
    let result_path = ctx.run_dir.join("cni-result.json");
    plan.actions.push(Action::MakeDir {
        path: ctx.run_dir.clone(),
        owner: None,
    });
    plan.actions.push(Action::WriteFile {
        path: config_path.clone(),
        contents: config.to_string(),
        mode: 0o644,
        owner: None,
    });
    let script = format!(
        "'{cni}' < '{config}' > '{result}' || {{ cat '{result}' >&2; exit 1; }}",
        cni = cni.display(),
        config = config_path.display(),
        result = result_path.display(),
    );
    let mut env = ctx.node.env.clone();
    env.extend([
        ("CNI_COMMAND".to_string(), "ADD".to_string()),
        (
            "CNI_CONTAINERID".to_string(),
            format!("{}-{}", ctx.topo.name, ctx.node.name),
        ),
        ("CNI_NETNS".to_string(), format!("/run/netns/{}", ctx.netns)),
        ("CNI_IFNAME".to_string(), IFNAME.to_string()),
        (
            "CNI_PATH".to_string(),
            cni.parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
    ]);
    plan.actions.push(Action::WaitReady {
        node: ctx.node.name.clone(),
        netns: ctx.netns.clone(),
        what: format!("CNI ADD through the agent on {host}"),
        argv: argv(["sh", "-c", script.as_str()]),
        env,
        timeout: std::time::Duration::from_secs(ATTACH_TIMEOUT_SECS),
    });
    Ok(plan)
}

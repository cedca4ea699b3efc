//! `etcd`: a single-member etcd on the node's management address (and its own 127.0.0.1), data
//! in the node's run dir.

use crate::plan::{argv, NodeCtx, NodePlan, PlanError};

pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

pub fn plan(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let etcd = ctx.program("etcd", "etcd-server")?;
    let etcdctl = ctx.program("etcdctl", "etcd-client")?;
    let ip = ctx.node.mgmt_ipv4;
    let client = format!("http://{ip}:{CLIENT_PORT}");
    let peer = format!("http://{ip}:{PEER_PORT}");
    let actions = vec![
        ctx.spawn(
            "etcd",
            argv([
                etcd.display().to_string(),
                "--name".into(),
                ctx.node.name.clone(),
                "--data-dir".into(),
                ctx.run_dir.join("etcd").display().to_string(),
                "--listen-client-urls".into(),
                format!("{client},http://127.0.0.1:{CLIENT_PORT}"),
                "--advertise-client-urls".into(),
                client.clone(),
                "--listen-peer-urls".into(),
                peer.clone(),
                "--initial-advertise-peer-urls".into(),
                peer.clone(),
                "--initial-cluster".into(),
                format!("{}={peer}", ctx.node.name),
            ]),
            ctx.env_with(&[]),
        ),
        ctx.wait_ready(
            "etcd health",
            argv([
                etcdctl.display().to_string(),
                format!("--endpoints=http://127.0.0.1:{CLIENT_PORT}"),
                "endpoint".into(),
                "health".into(),
            ]),
            20,
        ),
    ];
    let mut plan = NodePlan {
        actions,
        ..NodePlan::default()
    };
    plan.env.insert(
        "ETCDCTL_ENDPOINTS".into(),
        format!("http://127.0.0.1:{CLIENT_PORT}"),
    );
    Ok(plan)
}

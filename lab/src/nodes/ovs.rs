//! One Open vSwitch instance per host namespace, as LAB-RECIPES describes: a private
//! `OVS_RUNDIR` (so instances do not fight over control sockets), ovsdb-server and ovs-vswitchd
//! in the foreground, and `br-int` on the userspace datapath speaking OpenFlow 1.3.

use std::path::PathBuf;

use crate::plan::{argv, Action, NodeCtx, PlanError};

pub const BRIDGE: &str = "br-int";
pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

pub fn dir(ctx: &NodeCtx) -> PathBuf {
    ctx.run_dir.join("ovs")
}

/// Environment variables that point `ovs-vsctl`/`ovs-ofctl` at one instance.
pub type OvsEnv = Vec<(&'static str, String)>;

/// Actions that start OVS and create `br-int`, and the environment for this instance.
pub fn plan(ctx: &NodeCtx) -> Result<(Vec<Action>, OvsEnv), PlanError> {
    let ovsdb_tool = ctx.program("ovsdb-tool", "openvswitch-switch")?;
    let ovsdb_server = ctx.program("ovsdb-server", "openvswitch-switch")?;
    let vswitchd = ctx.program("ovs-vswitchd", "openvswitch-switch")?;
    let vsctl = ctx.program("ovs-vsctl", "openvswitch-switch")?;
    let d = dir(ctx);
    let ds = |f: &str| d.join(f).display().to_string();
    let db_sock = format!("unix:{}", ds("db.sock"));
    let ovs_env = vec![
        ("OVS_RUNDIR", d.display().to_string()),
        ("OVS_LOGDIR", d.display().to_string()),
        ("OVS_DBDIR", d.display().to_string()),
    ];
    let env = ctx.env_with(&ovs_env);
    let vsctl_args = |extra: &[&str]| {
        let mut a = argv([
            vsctl.display().to_string(),
            format!("--db={db_sock}"),
            "--timeout=20".into(),
        ]);
        a.extend(argv(extra));
        a
    };
    let actions = vec![
        Action::MakeDir {
            path: d.clone(),
            owner: None,
        },
        ctx.run(
            argv([
                ovsdb_tool.display().to_string(),
                "create".into(),
                ds("conf.db"),
                SCHEMA.into(),
            ]),
            env.clone(),
        ),
        ctx.spawn(
            "ovsdb-server",
            argv([
                ovsdb_server.display().to_string(),
                ds("conf.db"),
                format!("--remote=p{db_sock}"),
                format!("--pidfile={}", ds("ovsdb-server.pid")),
                format!("--log-file={}", ds("ovsdb-server.log")),
            ]),
            env.clone(),
        ),
        Action::WaitReady {
            node: ctx.node.name.clone(),
            netns: ctx.netns.clone(),
            what: "ovsdb-server".into(),
            argv: vsctl_args(&["--no-wait", "init"]),
            env: env.clone(),
            timeout: std::time::Duration::from_secs(15),
        },
        ctx.spawn(
            "ovs-vswitchd",
            argv([
                vswitchd.display().to_string(),
                db_sock.clone(),
                format!("--pidfile={}", ds("ovs-vswitchd.pid")),
                format!("--log-file={}", ds("ovs-vswitchd.log")),
            ]),
            env.clone(),
        ),
        ctx.run(
            vsctl_args(&[
                "add-br",
                BRIDGE,
                "--",
                "set",
                "bridge",
                BRIDGE,
                "datapath_type=netdev",
                "protocols=OpenFlow13",
            ]),
            env.clone(),
        ),
        Action::WaitReady {
            node: ctx.node.name.clone(),
            netns: ctx.netns.clone(),
            what: "br-int".into(),
            argv: vsctl_args(&["br-exists", BRIDGE]),
            env,
            timeout: std::time::Duration::from_secs(15),
        },
    ];
    Ok((actions, ovs_env))
}

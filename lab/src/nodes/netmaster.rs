//! `netmaster`: our master, listening on the node's management address. The binary is found
//! next to `lab` or on PATH; with `--skip-missing` a missing binary leaves a bare namespace.
//! `env: ETCD_ENDPOINTS` switches it to the etcd store. Several masters (on one etcd) share the
//! first one's credentials and certificate; agents get every master's URL.
//!
//! It runs as the product does: TLS (its self-signed certificate, made into its data dir on
//! first start) and `--auth on`, with the admin password and the agents' bootstrap secret
//! lab writes (see `auth.rs`). Once it answers, lab logs in as admin; commands in the node get
//! the token as `NETCTL_TOKEN`, and `NETMASTER`/`NETCTL_CACERT` point netctl at it.

use crate::auth::{self, MasterLogin};
use crate::plan::{argv, Action, NodeCtx, NodePlan, PlanError};

pub const PORT: u16 = 9999;

pub fn plan(ctx: &NodeCtx) -> Result<NodePlan, PlanError> {
    let mut plan = NodePlan::default();
    // The lab's credentials live with its first master; written even when this master is
    // not built, so that the agents (which read the secret) still start and wait for it.
    let files = ctx.run_dir_of(
        &ctx.first_master()
            .map_or_else(|| ctx.node.name.clone(), |m| m.name.clone()),
    );
    let password_file = auth::admin_password_file(&files);
    let secret_file = auth::agent_secret_file(&files);
    plan.actions.push(Action::WriteSecret {
        path: password_file.clone(),
    });
    plan.actions.push(Action::WriteSecret {
        path: secret_file.clone(),
    });
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
    let data_dir = auth::data_dir(&ctx.run_dir);
    let mut args = argv([
        netmaster.display().to_string(),
        "--listen-url".into(),
        listen.clone(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ]);
    // One certificate for every master, so agents and netctl trust one file: the first
    // master makes it for every master's address, the others serve it.
    let first = ctx.first_master().map(|m| m.name.clone());
    if first.as_deref() == Some(ctx.node.name.as_str()) {
        for other in ctx.masters().filter(|m| m.name != ctx.node.name) {
            args.extend(argv([
                "--api-hostname".to_string(),
                other.mgmt_ipv4.to_string(),
            ]));
        }
    } else {
        let tls = auth::data_dir(&files).join("tls");
        args.extend(argv([
            "--tls-cert".to_string(),
            tls.join("cert.pem").display().to_string(),
            "--tls-key".into(),
            tls.join("key.pem").display().to_string(),
        ]));
    }
    if let Some(etcd) = ctx.node.env.get("ETCD_ENDPOINTS") {
        args.extend(argv(["--etcd", etcd.as_str()]));
    }
    args.extend(argv([
        "--auth".to_string(),
        "on".into(),
        "--admin-password-file".into(),
        password_file.display().to_string(),
        "--agent-secret-file".into(),
        secret_file.display().to_string(),
    ]));
    plan.actions.push(Action::MakeDir {
        path: data_dir,
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
    let url = format!("https://{listen}");
    let own = MasterLogin::of(url.clone(), &ctx.run_dir);
    let login = MasterLogin {
        password_file,
        // Every master serves the first one's certificate.
        cacert: own.cacert.as_ref().map(|_| auth::cacert(&files)),
        ..own
    };
    plan.actions.push(Action::Login {
        node: ctx.node.name.clone(),
        netns: ctx.netns.clone(),
        login: login.clone(),
    });
    // netctl's own variables: its URL, and the certificate to trust.
    plan.env.insert("NETMASTER".into(), url.clone());
    if let Some(cacert) = &login.cacert {
        plan.env
            .insert("NETCTL_CACERT".into(), cacert.display().to_string());
    }
    plan.env.insert("NETMASTER_URL".into(), url);
    plan.login = Some(login);
    Ok(plan)
}

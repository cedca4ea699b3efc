//! Executes a plan: creates namespaces, links and addresses with `ip`, starts daemons, waits for
//! them to be ready, recording every resource in the state file before creating it.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::auth;
use crate::error::LabError;
use crate::links::{self, LinkOp};
use crate::plan::{plan, Action, PlanEnv, Spawn};
use crate::state::{state_path, Resource, State};
use crate::sys;
use crate::topology::Topology;

/// Deploys a topology. On failure the state file keeps what was created, for `destroy`.
pub fn deploy(
    topo: &Topology,
    topology_file: &Path,
    env: &PlanEnv,
    progress: &mut dyn FnMut(&str),
) -> Result<State, LabError> {
    let plan = plan(topo, env)?;
    let state_file = state_path(&plan.lab_dir);
    if state_file.exists() {
        return Err(LabError::AlreadyDeployed {
            lab: topo.name.clone(),
            state: state_file,
        });
    }
    // A namespace of ours without a state file is a leftover of a lab whose state was lost.
    if let Some(ns) = plan
        .namespaces
        .iter()
        .find(|ns| crate::netns::netns_exists(ns))
    {
        return Err(LabError::Usage(format!(
            "namespace {ns} already exists (left over from an earlier run?); remove it with `lab destroy -t {}`",
            topology_file.display()
        )));
    }
    std::fs::create_dir_all(&plan.lab_dir)
        .map_err(|e| LabError::io("cannot create", &plan.lab_dir, e))?;
    let mut state = State {
        lab: topo.name.clone(),
        topology_file: std::path::absolute(topology_file)
            .unwrap_or_else(|_| topology_file.to_path_buf()),
        lab_dir: plan.lab_dir.clone(),
        nodes: plan.nodes.clone(),
        namespaces: plan.namespaces.clone(),
        extra_dirs: plan.extra_dirs.clone(),
        resources: vec![Resource::Dir {
            path: plan.lab_dir.clone(),
        }],
        complete: false,
        error: None,
    };
    state.save()?;
    for action in &plan.actions {
        if let Err(e) = execute(action, &mut state, progress) {
            state.error = Some(e.to_string());
            state.save()?;
            return Err(e);
        }
    }
    state.complete = true;
    state.save()?;
    Ok(state)
}

fn execute(
    action: &Action,
    state: &mut State,
    progress: &mut dyn FnMut(&str),
) -> Result<(), LabError> {
    match action {
        Action::Stage(message) => progress(message),
        Action::MakeDir { path, owner } => {
            if !path.exists() {
                state.record(Resource::Dir { path: path.clone() })?;
            }
            std::fs::create_dir_all(path).map_err(|e| LabError::io("cannot create", path, e))?;
            if let Some(user) = owner {
                sys::chown_to(path, user)?;
            }
        }
        Action::WriteFile {
            path,
            contents,
            mode,
            owner,
        } => {
            std::fs::write(path, contents).map_err(|e| LabError::io("cannot write", path, e))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                .map_err(|e| LabError::io("cannot chmod", path, e))?;
            if let Some(user) = owner {
                sys::chown_to(path, user)?;
            }
        }
        Action::CopyFile { from, to, owner } => {
            std::fs::copy(from, to).map_err(|e| LabError::io("cannot copy", from, e))?;
            if let Some(user) = owner {
                sys::chown_to(to, user)?;
            }
        }
        Action::AddNetns { name } => {
            state.record(Resource::Netns { name: name.clone() })?;
            crate::netns::ip(&["netns", "add", name])?;
        }
        Action::AddBridge { netns, name } => {
            state.record(Resource::Link {
                netns: netns.clone(),
                name: name.clone(),
            })?;
            links::apply(netns, LinkOp::Bridge { name: name.clone() })?;
        }
        Action::AddVeth {
            netns,
            name,
            peer_netns,
            peer,
        } => {
            state.record(Resource::Link {
                netns: netns.clone(),
                name: name.clone(),
            })?;
            links::apply(
                netns,
                LinkOp::Veth {
                    name: name.clone(),
                    peer: peer.clone(),
                    peer_netns: peer_netns.clone(),
                },
            )?;
        }
        Action::SetMaster { netns, dev, master } => {
            links::apply(
                netns,
                LinkOp::Master {
                    dev: dev.clone(),
                    master: master.clone(),
                },
            )?;
        }
        Action::AddAddress { netns, dev, addr } => {
            links::apply(
                netns,
                LinkOp::Address {
                    dev: dev.clone(),
                    addr: *addr,
                },
            )?;
        }
        Action::LinkUp { netns, dev } => {
            links::apply(netns, LinkOp::Up { dev: dev.clone() })?;
        }
        Action::Run {
            node,
            netns,
            argv,
            env,
            login,
        } => {
            let in_node = |e: LabError| LabError::InNode {
                node: node.clone(),
                inner: Box::new(e),
            };
            let mut cmd = crate::netns::in_netns(netns, argv);
            cmd.envs(env);
            if let Some(login) = login {
                cmd.env(auth::TOKEN_ENV, auth::token(netns, login).map_err(in_node)?);
            }
            sys::run(&mut cmd).map_err(in_node)?;
        }
        Action::WriteSecret { path } => auth::write_secret(path)?,
        Action::Login { node, netns, login } => {
            progress(&format!("logging in to {} as {}", login.url, auth::ADMIN));
            auth::login_in(netns, login).map_err(|e| LabError::InNode {
                node: node.clone(),
                inner: Box::new(e),
            })?;
        }
        Action::Spawn(spawn) => start_daemon(spawn, state)?,
        Action::WaitReady {
            node,
            netns,
            what,
            argv,
            env,
            timeout,
        } => wait_ready(state, node, netns, what, argv, env, *timeout, progress)?,
        Action::Settle { node, duration } => {
            std::thread::sleep(*duration);
            check_alive(state, node)?;
        }
    }
    Ok(())
}

fn start_daemon(spawn: &Spawn, state: &mut State) -> Result<(), LabError> {
    let log = File::create(&spawn.log).map_err(|e| LabError::io("cannot create", &spawn.log, e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| LabError::io("cannot open", &spawn.log, e))?;
    // A process group of its own: a Ctrl-C at the terminal running `lab deploy` must not
    // reach the daemons it leaves running.
    let child = crate::netns::in_netns(&spawn.netns, &spawn.argv)
        .envs(&spawn.env)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .map_err(|e| LabError::Command {
            command: spawn.argv.join(" "),
            status: "not started".into(),
            stderr: e.to_string(),
        })?;
    let pid = child.id() as i32;
    tracing::debug!(node = %spawn.node, daemon = %spawn.name, pid, "spawned");
    state.record(Resource::Process {
        node: spawn.node.clone(),
        name: spawn.name.clone(),
        netns: spawn.netns.clone(),
        pid,
        start_time: crate::process::start_time(pid).unwrap_or(0),
        log: spawn.log.clone(),
    })
}

fn check_alive(state: &State, node: &str) -> Result<(), LabError> {
    for r in state.processes() {
        if let Resource::Process {
            node: n,
            name,
            pid,
            log,
            ..
        } = r
        {
            if n == node && !crate::process::alive(*pid) {
                return Err(LabError::DaemonDied {
                    node: node.to_string(),
                    daemon: name.clone(),
                    log: sys::log_tail(log, 15),
                });
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn wait_ready(
    state: &State,
    node: &str,
    netns: &str,
    what: &str,
    argv: &[String],
    env: &std::collections::BTreeMap<String, String>,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<(), LabError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut told = false;
    loop {
        if !told && started.elapsed() > Duration::from_secs(3) {
            progress(&format!(
                "waiting for {what} on {node} (up to {}s)",
                timeout.as_secs()
            ));
            told = true;
        }
        check_alive(state, node)?;
        let last = match sys::run(crate::netns::in_netns(netns, argv).envs(env)) {
            Ok(_) => return check_alive(state, node),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            let logs: String = state
                .processes()
                .filter_map(|r| match r {
                    Resource::Process { node: n, log, .. } if n == node => {
                        Some(sys::log_tail(log, 10))
                    }
                    _ => None,
                })
                .collect();
            return Err(LabError::NotReady {
                node: node.to_string(),
                what: what.to_string(),
                secs: timeout.as_secs(),
                probe: last,
                log: logs,
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

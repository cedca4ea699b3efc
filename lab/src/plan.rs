//! Turns a validated topology into the ordered list of actions that realise it: namespaces,
//! management bridge, veths, addresses, then each node's daemons. Pure: the executor in
//! `deploy.rs` runs the actions, and the plan can be inspected and tested without root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::auth::MasterLogin;
use crate::kind::Kind;
use crate::nodes;
use crate::topology::{Node, Topology};

/// One step of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A line of progress for the user.
    Stage(String),
    MakeDir {
        path: PathBuf,
        /// A user to own the directory (FRR insists on its files belonging to `frr`).
        owner: Option<String>,
    },
    WriteFile {
        path: PathBuf,
        contents: String,
        mode: u32,
        owner: Option<String>,
    },
    CopyFile {
        from: PathBuf,
        to: PathBuf,
        owner: Option<String>,
    },
    /// A file of random contents (hex), mode 0600, written at deploy (not in the plan, which
    /// is shown and tested) and kept if it exists: the master's admin password and the
    /// agents' bootstrap secret.
    WriteSecret {
        path: PathBuf,
    },
    /// Logs in to a master as admin from its namespace and keeps the token in a file.
    Login {
        node: String,
        netns: String,
        login: MasterLogin,
    },
    AddNetns {
        name: String,
    },
    AddBridge {
        netns: String,
        name: String,
    },
    /// A veth pair: `name` in `netns`, `peer` in `peer_netns`.
    AddVeth {
        netns: String,
        name: String,
        peer_netns: String,
        peer: String,
    },
    SetMaster {
        netns: String,
        dev: String,
        master: String,
    },
    AddAddress {
        netns: String,
        dev: String,
        addr: Ipv4Net,
    },
    LinkUp {
        netns: String,
        dev: String,
    },
    /// Runs a command in a namespace to completion; it must succeed.
    Run {
        node: String,
        netns: String,
        argv: Vec<String>,
        env: BTreeMap<String, String>,
        /// Give the command the master's admin token as NETCTL_TOKEN (read at run time).
        login: Option<MasterLogin>,
    },
    /// Starts a daemon (in the foreground, detached from us) in a namespace.
    Spawn(Spawn),
    /// Polls a command in the namespace until it succeeds, while the node's daemons stay alive.
    WaitReady {
        node: String,
        netns: String,
        what: String,
        argv: Vec<String>,
        env: BTreeMap<String, String>,
        timeout: Duration,
    },
    /// Waits a moment and checks the node's daemons are still alive (for daemons with no probe).
    Settle {
        node: String,
        duration: Duration,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spawn {
    pub node: String,
    /// Short name of the daemon (`bird`, `zebra`, `ovsdb-server`).
    pub name: String,
    pub netns: String,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub log: PathBuf,
}

/// What the plan needs from the machine, gathered by the caller so planning stays pure.
#[derive(Debug, Clone, Default)]
pub struct PlanEnv {
    /// Root of run directories, `/run/lab` normally.
    pub run_root: PathBuf,
    /// Resolved paths of the programs the node kinds use, by program name.
    pub programs: BTreeMap<String, PathBuf>,
    /// Bring up `netmaster`/`netplugin` nodes without their binary when it is not built.
    pub skip_missing: bool,
}

/// Node facts that `lab exec`, `inspect` and `save` need after the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub kind: Kind,
    pub netns: String,
    pub run_dir: PathBuf,
    pub mgmt_ipv4: std::net::Ipv4Addr,
    pub image: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Environment for commands run in the node (`exec`, `lab exec`): helpers on PATH, OVS_RUNDIR.
    pub env: BTreeMap<String, String>,
    /// Daemons deliberately not started (binary missing under `--skip-missing`).
    pub skipped: Vec<String>,
    /// Commands in the node get the lab master's admin token (NETCTL_TOKEN) this way.
    #[serde(default)]
    pub login: Option<MasterLogin>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub lab_dir: PathBuf,
    pub actions: Vec<Action>,
    pub nodes: Vec<NodeInfo>,
    /// Directories outside `lab_dir` the lab owns (FRR instance dirs), for the destroy sweep.
    pub extra_dirs: Vec<PathBuf>,
    /// Every namespace the lab owns.
    pub namespaces: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("topology.nodes.{node}: {reason}")]
    Node { node: String, reason: String },
}

/// Everything a node kind's planner gets.
pub struct NodeCtx<'a> {
    pub topo: &'a Topology,
    pub node: &'a Node,
    pub netns: String,
    pub run_dir: PathBuf,
    pub env: &'a PlanEnv,
}

impl NodeCtx<'_> {
    /// The path of a program, or an error naming the package that provides it.
    pub fn program(&self, name: &str, package: &str) -> Result<PathBuf, PlanError> {
        self.env.programs.get(name).cloned().ok_or_else(|| {
            self.error(format!(
                "`{name}` is not installed (Debian package {package})"
            ))
        })
    }

    pub fn error(&self, reason: impl Into<String>) -> PlanError {
        PlanError::Node {
            node: self.node.name.clone(),
            reason: reason.into(),
        }
    }

    /// The router config: the startup-config, or the bind that targets the image's config path.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.node.startup_config.clone().or_else(|| {
            let targets = self.node.kind.config_paths_in_image();
            self.node
                .binds
                .iter()
                .find(|b| targets.contains(&b.target.as_str()))
                .map(|b| b.source.clone())
        })
    }

    /// The node's environment from the file plus `extra`.
    pub fn env_with(&self, extra: &[(&str, String)]) -> BTreeMap<String, String> {
        let mut env = self.node.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    }

    /// A daemon of this node, started at the node's `lab.nice` priority if it has one
    /// (`nice` execs the daemon, so the recorded pid is still the daemon's).
    pub fn spawn(&self, name: &str, argv: Vec<String>, env: BTreeMap<String, String>) -> Action {
        let argv = match self.node.nice {
            Some(n) => ["nice".to_string(), "-n".into(), n.to_string()]
                .into_iter()
                .chain(argv)
                .collect(),
            None => argv,
        };
        Action::Spawn(Spawn {
            node: self.node.name.clone(),
            name: name.to_string(),
            netns: self.netns.clone(),
            argv,
            env,
            log: self.run_dir.join(format!("{name}.log")),
        })
    }

    pub fn wait_ready(&self, what: &str, argv: Vec<String>, timeout_secs: u64) -> Action {
        Action::WaitReady {
            node: self.node.name.clone(),
            netns: self.netns.clone(),
            what: what.to_string(),
            argv,
            env: self.node.env.clone(),
            timeout: Duration::from_secs(timeout_secs),
        }
    }

    pub fn run(&self, argv: Vec<String>, env: BTreeMap<String, String>) -> Action {
        Action::Run {
            node: self.node.name.clone(),
            netns: self.netns.clone(),
            argv,
            env,
            login: None,
        }
    }

    /// The lab's first `netmaster` node: agents use it, and its run directory holds the lab's
    /// admin password and agent secret (shared by every master of the lab, which may share
    /// one etcd and so one set of users).
    /// The master that starts first (nodes of a kind start in name order): it holds the lab's
    /// credentials and makes the certificate every master serves.
    pub fn first_master(&self) -> Option<&Node> {
        self.masters().next()
    }

    /// Every `netmaster` node, in start order.
    pub fn masters(&self) -> impl Iterator<Item = &Node> {
        let mut masters: Vec<&Node> = self
            .topo
            .nodes
            .iter()
            .filter(|n| n.kind == Kind::Netmaster)
            .collect();
        masters.sort_by(|a, b| a.name.cmp(&b.name));
        masters.into_iter()
    }

    /// A node's run directory (`<run-root>/<lab>/<node>`).
    pub fn run_dir_of(&self, node: &str) -> PathBuf {
        self.run_dir
            .parent()
            .map_or_else(|| self.run_dir.clone(), |lab| lab.join(node))
    }

    /// The URLs agents reach their masters at: `NETMASTER_URL` from the node's env, else every
    /// `netmaster` node's management address (TLS, the master's default), comma-separated.
    pub fn master_url(&self) -> Option<String> {
        self.node.env.get("NETMASTER_URL").cloned().or_else(|| {
            let urls: Vec<String> = self
                .masters()
                .map(|n| format!("https://{}:{}", n.mgmt_ipv4, nodes::netmaster::PORT))
                .collect();
            (!urls.is_empty()).then(|| urls.join(","))
        })
    }
}

/// What a node kind contributes: its actions and what `lab exec` needs to find its tools.
#[derive(Debug, Default)]
pub struct NodePlan {
    pub actions: Vec<Action>,
    /// Extra environment for commands in the node.
    pub env: BTreeMap<String, String>,
    pub extra_dirs: Vec<PathBuf>,
    pub skipped: Vec<String>,
    /// Commands in the node log in to this master (its exec lines, `lab exec`).
    pub login: Option<MasterLogin>,
}

/// Converts `argv`-like string slices into owned strings.
pub fn argv<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items.into_iter().map(|s| s.as_ref().to_string()).collect()
}

pub fn lab_dir(run_root: &Path, lab: &str) -> PathBuf {
    run_root.join(lab)
}

/// Plans the whole deployment.
pub fn plan(topo: &Topology, env: &PlanEnv) -> Result<Plan, PlanError> {
    let lab_dir = lab_dir(&env.run_root, &topo.name);
    let mgmt_ns = topo.mgmt_netns();
    let mut actions = vec![
        Action::Stage(format!("management network {}", topo.mgmt.subnet)),
        Action::MakeDir {
            path: lab_dir.clone(),
            owner: None,
        },
        Action::AddNetns {
            name: mgmt_ns.clone(),
        },
        Action::LinkUp {
            netns: mgmt_ns.clone(),
            dev: "lo".into(),
        },
        Action::AddBridge {
            netns: mgmt_ns.clone(),
            name: topo.mgmt.bridge.clone(),
        },
        Action::AddAddress {
            netns: mgmt_ns.clone(),
            dev: topo.mgmt.bridge.clone(),
            addr: Ipv4Net::new(topo.mgmt.gateway, topo.mgmt.subnet.prefix_len())
                .unwrap_or(topo.mgmt.subnet),
        },
        Action::LinkUp {
            netns: mgmt_ns.clone(),
            dev: topo.mgmt.bridge.clone(),
        },
    ];
    let mut namespaces = vec![mgmt_ns.clone()];
    let total = topo.nodes.len();
    for (i, node) in topo.nodes.iter().enumerate() {
        let netns = topo.netns(&node.name);
        namespaces.push(netns.clone());
        let mgmt_peer = format!("m{i}");
        actions.extend([
            Action::Stage(format!(
                "[{}/{total}] namespace {netns} ({})",
                i + 1,
                node.kind.name()
            )),
            Action::MakeDir {
                path: lab_dir.join(&node.name),
                owner: None,
            },
            Action::AddNetns {
                name: netns.clone(),
            },
            Action::LinkUp {
                netns: netns.clone(),
                dev: "lo".into(),
            },
            Action::AddVeth {
                netns: mgmt_ns.clone(),
                name: mgmt_peer.clone(),
                peer_netns: netns.clone(),
                peer: "eth0".into(),
            },
            Action::SetMaster {
                netns: mgmt_ns.clone(),
                dev: mgmt_peer.clone(),
                master: topo.mgmt.bridge.clone(),
            },
            Action::LinkUp {
                netns: mgmt_ns.clone(),
                dev: mgmt_peer,
            },
            Action::AddAddress {
                netns: netns.clone(),
                dev: "eth0".into(),
                addr: Ipv4Net::new(node.mgmt_ipv4, topo.mgmt.subnet.prefix_len())
                    .unwrap_or(topo.mgmt.subnet),
            },
            Action::LinkUp {
                netns: netns.clone(),
                dev: "eth0".into(),
            },
        ]);
    }
    if !topo.links.is_empty() {
        actions.push(Action::Stage(format!("{} links", topo.links.len())));
    }
    for link in &topo.links {
        let (a_ns, b_ns) = (topo.netns(&link.a.node), topo.netns(&link.b.node));
        actions.extend([
            Action::AddVeth {
                netns: a_ns.clone(),
                name: link.a.iface.clone(),
                peer_netns: b_ns.clone(),
                peer: link.b.iface.clone(),
            },
            Action::LinkUp {
                netns: a_ns,
                dev: link.a.iface.clone(),
            },
            Action::LinkUp {
                netns: b_ns,
                dev: link.b.iface.clone(),
            },
        ]);
    }
    let mut order: Vec<&Node> = topo.nodes.iter().collect();
    order.sort_by_key(|n| (n.kind.start_rank(), n.name.clone()));
    let mut infos = Vec::new();
    let mut extra_dirs = Vec::new();
    for (i, node) in order.into_iter().enumerate() {
        let ctx = NodeCtx {
            topo,
            node,
            netns: topo.netns(&node.name),
            run_dir: lab_dir.join(&node.name),
            env,
        };
        let node_plan = nodes::plan_node(&ctx)?;
        actions.push(Action::Stage(format!(
            "[{}/{total}] starting {} ({})",
            i + 1,
            node.name,
            node.kind.name()
        )));
        actions.extend(node_plan.actions);
        let mut node_env = node.env.clone();
        node_env.extend(node_plan.env.clone());
        for line in &node.exec {
            let mut run = ctx.run(argv(["sh", "-c", line.as_str()]), node_env.clone());
            if let Action::Run { login, .. } = &mut run {
                login.clone_from(&node_plan.login);
            }
            actions.push(run);
        }
        extra_dirs.extend(node_plan.extra_dirs);
        infos.push(NodeInfo {
            name: node.name.clone(),
            kind: node.kind,
            netns: ctx.netns.clone(),
            run_dir: ctx.run_dir.clone(),
            mgmt_ipv4: node.mgmt_ipv4,
            image: node.image.clone(),
            labels: node.labels.clone(),
            env: node_plan.env,
            skipped: node_plan.skipped,
            login: node_plan.login,
        });
    }
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Plan {
        lab_dir,
        actions,
        nodes: infos,
        extra_dirs,
        namespaces,
    })
}

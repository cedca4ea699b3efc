//! `lab inspect`: the nodes of a deployed lab, their addresses and the state of their daemons,
//! as a table or JSON.

use serde::Serialize;

use crate::state::{Resource, State};

#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub lab: String,
    pub name: String,
    pub kind: String,
    pub image: Option<String>,
    pub netns: String,
    pub netns_present: bool,
    pub mgmt_ipv4: String,
    pub processes: Vec<ProcessStatus>,
    pub skipped: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ProcessStatus {
    pub name: String,
    pub pid: i32,
    pub running: bool,
}

pub fn status(state: &State) -> Vec<NodeStatus> {
    state
        .nodes
        .iter()
        .map(|node| NodeStatus {
            lab: state.lab.clone(),
            name: node.name.clone(),
            kind: node.kind.name().to_string(),
            image: node.image.clone(),
            netns: node.netns.clone(),
            netns_present: crate::netns::netns_exists(&node.netns),
            mgmt_ipv4: node.mgmt_ipv4.to_string(),
            processes: state
                .processes()
                .filter_map(|r| match r {
                    Resource::Process {
                        node: n,
                        name,
                        pid,
                        start_time,
                        ..
                    } if *n == node.name => Some(ProcessStatus {
                        name: name.clone(),
                        pid: *pid,
                        running: crate::process::alive(*pid)
                            && crate::process::start_time(*pid) == Some(*start_time),
                    }),
                    _ => None,
                })
                .collect(),
            skipped: node.skipped.clone(),
        })
        .collect()
}

/// A fixed-width table like containerlab's.
pub fn table(rows: &[NodeStatus]) -> String {
    let header = ["LAB", "NODE", "KIND", "NAMESPACE", "MGMT IPV4", "STATE"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let mut procs: Vec<String> = r
                .processes
                .iter()
                .map(|p| {
                    format!(
                        "{} {}",
                        p.name,
                        if p.running { "running" } else { "exited" }
                    )
                })
                .collect();
            procs.extend(r.skipped.iter().map(|s| format!("{s} not built")));
            if !r.netns_present {
                procs.insert(0, "namespace missing".into());
            }
            let state = if procs.is_empty() {
                "up".to_string()
            } else {
                procs.join(", ")
            };
            [
                r.lab.clone(),
                r.name.clone(),
                r.kind.clone(),
                r.netns.clone(),
                r.mgmt_ipv4.clone(),
                state,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |row: &[String]| {
        row.iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header.map(String::from));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

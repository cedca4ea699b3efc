//! Helpers for the end-to-end tests: a private copy of a shipped topology under a unique lab
//! name, the `lab` binary, a guard that destroys the lab whatever happens, and the leak check.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Fails (never skips) when the test cannot run here, saying why.
pub fn require_root_and_tools(tools: &[(&str, &str)]) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root to create network namespaces; run it as root (CI does)"
    );
    for (tool, package) in tools {
        assert!(
            lab::sys::which(tool).is_some() || Path::new(tool).exists(),
            "this test needs `{tool}` (Debian package {package})"
        );
    }
}

/// A lab deployed from a private copy of a shipped topology; destroyed on drop.
pub struct TestLab {
    pub name: String,
    pub file: PathBuf,
    /// Holds the copied topology directory; removed on drop.
    pub dir: tempfile::TempDir,
    /// An empty directory given as LAB_BIN_DIR, so the agent and master count as not built.
    pub bin_dir: PathBuf,
}

impl TestLab {
    /// Copies `lab/topologies/` and renames `topology` (e.g. `two-rack`) to `t<pid><tag>`.
    pub fn new(topology: &str, tag: &str) -> TestLab {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
        let status = Command::new("cp")
            .arg("-r")
            .arg(format!("{}/.", src.display()))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let file = format!("{topology}.clab.yml");
        let text = std::fs::read_to_string(dir.path().join(&file)).unwrap();
        let renamed = text.replacen(&format!("name: {topology}\n"), "name: NAME\n", 1);
        assert_ne!(
            text, renamed,
            "topology file has no `name: {topology}` line"
        );
        TestLab::in_dir(dir, tag, &file, &renamed)
    }

    /// A lab from a topology text; `NAME` in it is replaced by the unique lab name.
    pub fn from_text(tag: &str, topology: &str) -> TestLab {
        TestLab::in_dir(tempfile::tempdir().unwrap(), tag, "test.clab.yml", topology)
    }

    fn in_dir(dir: tempfile::TempDir, tag: &str, file: &str, topology: &str) -> TestLab {
        let name = format!("t{}{tag}", std::process::id());
        let file = dir.path().join(file);
        std::fs::write(&file, topology.replace("NAME", &name)).unwrap();
        let bin_dir = dir.path().join("no-bin");
        std::fs::create_dir(&bin_dir).unwrap();
        TestLab {
            name,
            file,
            dir,
            bin_dir,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `lab <args>` with `-t <file>` appended where the subcommand takes it.
    pub fn lab(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(args)
            .env("LAB_BIN_DIR", &self.bin_dir)
            .output()
            .unwrap()
    }

    pub fn deploy(&self) -> Output {
        self.lab(&[
            "deploy",
            "-t",
            self.file.to_str().unwrap(),
            "--skip-missing",
        ])
    }

    pub fn destroy(&self) -> Output {
        self.lab(&["destroy", "-t", self.file.to_str().unwrap()])
    }

    /// Runs a shell command in a node through `lab exec`; returns (success, stdout).
    pub fn exec(&self, node: &str, cmd: &str) -> (bool, String) {
        let out = self.lab(&[
            "exec",
            "-t",
            self.file.to_str().unwrap(),
            "--label",
            &format!("clab-node-name={node}"),
            "--cmd",
            cmd,
        ]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    pub fn netns(&self, node: &str) -> String {
        format!("clab-{}-{node}", self.name)
    }

    pub fn inspect_json(&self) -> serde_json::Value {
        let out = self.lab(&[
            "inspect",
            "-t",
            self.file.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "inspect failed: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `check` every 500 ms until it returns Some or the time is up.
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Everything of a lab that could leak: namespaces, live processes mentioning it, files.
#[derive(Debug, Default, PartialEq)]
pub struct Footprint {
    pub namespaces: Vec<String>,
    pub processes: Vec<String>,
    pub files: Vec<String>,
    pub root_links: Vec<String>,
    pub root_routes: Vec<String>,
}

fn root_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap_or(n).to_string())
        })
        .collect()
}

pub fn footprint(lab: &str) -> Footprint {
    let tag = format!("clab-{lab}-");
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let namespaces = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&tag))
        .map(String::from)
        .collect();
    let run = format!("/run/lab/{lab}");
    let mut processes = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if (cmdline.contains(&run) || cmdline.contains(&tag)) && lab::process::alive(pid) {
            processes.push(format!("{pid} {cmdline}"));
        }
    }
    let mut files = Vec::new();
    for dir in ["/etc/frr", "/var/run/frr"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&tag) {
                    files.push(e.path().display().to_string());
                }
            }
        }
    }
    if Path::new(&run).exists() {
        files.push(run);
    }
    Footprint {
        namespaces,
        processes,
        files,
        root_links: root_links(),
        root_routes: root_routes(),
    }
}

/// Asserts nothing of the lab is left, and no link appeared in the root namespace.
pub fn assert_no_leaks(lab: &str, before: &Footprint) {
    let after = footprint(lab);
    assert!(
        after.namespaces.is_empty(),
        "namespaces left: {:?}",
        after.namespaces
    );
    assert!(
        after.processes.is_empty(),
        "processes left: {:?}",
        after.processes
    );
    assert!(after.files.is_empty(), "files left: {:?}", after.files);
    assert_root_untouched(before);
}

/// Asserts no link of ours appeared in the root namespace and no route to lab addresses.
pub fn assert_root_untouched(before: &Footprint) {
    let after = root_links();
    let new: Vec<&String> = after
        .iter()
        .filter(|l| !before.root_links.contains(l))
        .filter(|l| {
            let digits_after = |p: &str| {
                l.strip_prefix(p)
                    .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
            };
            digits_after("eth") || digits_after("m") || l.as_str() == "br-mgmt"
        })
        .collect();
    assert!(
        new.is_empty(),
        "links appeared in the root namespace: {new:?}"
    );
    let new_routes: Vec<String> = root_routes()
        .into_iter()
        .filter(|r| !before.root_routes.contains(r))
        .filter(|r| {
            ["172.20.", "10.254.", "10.10.", "10.1.2."]
                .iter()
                .any(|net| r.contains(net))
        })
        .collect();
    assert!(
        new_routes.is_empty(),
        "routes to lab addresses appeared in the root namespace: {new_routes:?}"
    );
}

fn root_routes() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-4", "route", "show", "table", "all"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

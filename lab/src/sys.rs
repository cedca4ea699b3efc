//! Thin wrappers over the commands and /proc files `lab` uses: `ip` (iproute2) for namespaces,
//! links and addresses, process liveness and identity from /proc, signals.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::LabError;

/// Runs a command to completion; returns stdout, or an error carrying stderr.
pub fn run(cmd: &mut Command) -> Result<String, LabError> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| LabError::Command {
        command: shown.clone(),
        status: "not started".into(),
        stderr: e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `ip <args>`.
pub fn ip(args: &[&str]) -> Result<String, LabError> {
    run(Command::new("ip").args(args))
}

/// A command run inside a namespace through `ip netns exec` (which also remounts /sys, so
/// daemons that read /sys/class/net see the namespace's interfaces).
pub fn in_netns(netns: &str, argv: &[String]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns]).args(argv);
    cmd
}

pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Processes living in a namespace.
pub fn netns_pids(name: &str) -> Vec<i32> {
    ip(&["netns", "pids", name])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), which
/// together with the pid identifies the process we started even if the pid gets reused.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Alive and not a zombie (our init may not reap orphans, so zombies count as gone).
pub fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .unwrap_or('X');
    !matches!(state, 'Z' | 'X')
}

/// SIGTERM, then SIGKILL if it lingers; bounded in time.
pub fn terminate(pid: i32) {
    let target = Pid::from_raw(pid);
    let _ = kill(target, Signal::SIGTERM);
    if wait_gone(pid, Duration::from_secs(3)) {
        return;
    }
    let _ = kill(target, Signal::SIGKILL);
    wait_gone(pid, Duration::from_secs(2));
}

fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !alive(pid)
}

/// A program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Changes the owner of a path to a user (and that user's group).
pub fn chown_to(path: &Path, user: &str) -> Result<(), LabError> {
    let found = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .ok_or_else(|| {
            LabError::Usage(format!(
                "user `{user}` does not exist (is its package installed?)"
            ))
        })?;
    std::os::unix::fs::chown(path, Some(found.uid.as_raw()), Some(found.gid.as_raw()))
        .map_err(|e| LabError::io("cannot chown", path, e))
}

/// The last lines of a log file, indented, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = format!("\n  last lines of {}:", path.display());
    for line in &all[start..] {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

//! Running commands, finding programs, and small file helpers shared by the executor and CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::LabError;

/// Runs a command to completion; returns stdout, or an error carrying stderr.
pub fn run(cmd: &mut Command) -> Result<String, LabError> {
    // Program and arguments only: the environment (PATH, ...) would drown the message.
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
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

//! Processes we start: identity (pid + start time from /proc), liveness, termination.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

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

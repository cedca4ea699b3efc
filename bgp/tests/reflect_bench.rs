//! Smoke test of `bgp-bench reflect`: five clients with ten /32s each through our reflector and
//! through BIRD's, in a second or two. It checks that the benchmark runs end to end and that
//! both reflectors pass its correctness checks (no route back to its sender, ORIGINATOR_ID,
//! CLUSTER_LIST, next hop unchanged), not the figures. Loopback only, no root; BIRD 2 must be
//! installed (the test fails saying so otherwise, as the interop tests do).

use std::path::Path;
use std::process::Command;

/// Whether `tool` is on the PATH.
fn installed(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new(tool).is_file()
}

#[test]
fn reflect_bench_smoke() {
    assert!(
        installed("bird"),
        "the reflect benchmark test needs BIRD 2 (`bird` on the PATH; Debian package bird2)"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_bgp-bench"))
        .args([
            "reflect",
            "--clients",
            "5",
            "--routes-per-client",
            "10",
            "--repeat",
            "1",
            "--phase-timeout",
            "30",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running bgp-bench: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bgp-bench reflect failed:\n{stdout}\n{stderr}"
    );
    for wanted in [
        "run 1 ours",
        "run 1 BIRD",
        "ours/BIRD: time",
        "checks passed",
    ] {
        assert!(
            stdout.contains(wanted),
            "no {wanted:?} in the output:\n{stdout}"
        );
    }
    // 5 clients each get the other 4 clients' 10 routes, each exactly once from our
    // reflector (BIRD may send a route again, which the bench reports but allows).
    let ours = stdout
        .lines()
        .find(|l| l.contains("run 1 ours"))
        .unwrap_or_default();
    assert!(
        ours.contains("received 25 UPDATEs, 200 prefixes (0 sent more than once)"),
        "our reflector sent something other than 4 UPDATEs and an End-of-RIB to each client:\n{stdout}"
    );
}

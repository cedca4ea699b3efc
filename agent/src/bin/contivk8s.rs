//! `contivk8s`: the CNI plugin binary. Reads CNI_* variables and the network configuration on
//! stdin, forwards the request to the agent's unix socket and prints the CNI result, or the
//! CNI error JSON with exit status 1.

use netplugin::cni::{code, parse_invocation, version_result, AgentReply, CniError, Command};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// How long an ADD may take before the plugin gives up (the agent undoes a late attach only
/// through a later DEL, which runtimes send after a failed ADD).
const TIMEOUT: Duration = Duration::from_secs(60);

fn fail(version: &str, err: &CniError) -> ! {
    println!("{}", err.to_json(version));
    std::process::exit(1);
}

fn main() {
    let mut stdin = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
        fail(
            "1.0.0",
            &CniError::new(code::IO_FAILURE, "cannot read stdin", e.to_string()),
        );
    }
    let env = |k: &str| std::env::var(k).ok();
    let invocation = match parse_invocation(&env, &stdin) {
        Ok(i) => i,
        Err(e) => {
            let version = serde_json::from_slice::<serde_json::Value>(&stdin)
                .ok()
                .and_then(|v| v["cniVersion"].as_str().map(String::from))
                .filter(|v| netplugin::cni::SUPPORTED_VERSIONS.contains(&v.as_str()))
                .unwrap_or_else(|| "1.0.0".into());
            fail(&version, &e)
        }
    };
    let version = invocation.request.cni_version.clone();
    if invocation.request.command == Command::Version {
        println!("{}", version_result(&version));
        return;
    }
    let reply = match ask(&invocation.socket, &invocation.request) {
        Ok(r) => r,
        Err(e) => fail(&version, &e),
    };
    match reply {
        AgentReply::Ok(Some(result)) => {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{result}");
        }
        AgentReply::Ok(None) => {}
        AgentReply::Error(e) => fail(&version, &e),
    }
}

fn ask(socket: &str, request: &netplugin::cni::AgentRequest) -> Result<AgentReply, CniError> {
    let unreachable = |e: std::io::Error| {
        CniError::new(
            code::AGENT_UNREACHABLE,
            format!("the netplugin agent at {socket} does not answer"),
            e.to_string(),
        )
    };
    let mut stream = UnixStream::connect(socket).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(unreachable)?;
    let mut line = serde_json::to_string(request)
        .map_err(|e| CniError::new(code::IO_FAILURE, "cannot encode the request", e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(unreachable)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(unreachable)?;
    serde_json::from_str(&answer).map_err(|e| {
        CniError::new(
            code::IO_FAILURE,
            "the agent's answer is not valid",
            e.to_string(),
        )
    })
}

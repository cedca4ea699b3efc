//! Our attach: `contivk8s` ADD invoked exactly as a runtime does (CNI_* variables, the network
//! configuration on stdin), which hands the request to the host's agent over its socket.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The interface name a runtime asks for inside the container.
pub const IFNAME: &str = "eth1";

/// The CNI plugin and the agent socket of one host.
pub struct Cni {
    pub plugin: PathBuf,
    pub socket: PathBuf,
}

impl Cni {
    /// ADD of `container_id` in the named namespace; the address the plugin returned.
    pub fn add(&self, container_id: &str, netns: &str) -> Result<Ipv4Addr> {
        self.add_in_group(container_id, netns, None)
    }

    /// ADD with Contiv's group label in CNI_ARGS when `group` is given, as a runtime passes
    /// pod labels.
    pub fn add_in_group(
        &self,
        container_id: &str,
        netns: &str,
        group: Option<&str>,
    ) -> Result<Ipv4Addr> {
        let config = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "contiv",
            "type": "contivk8s",
        });
        let cni_path = self.plugin.parent().unwrap_or(Path::new("/"));
        let mut cmd = Command::new(&self.plugin);
        cmd.env_clear();
        if let Some(group) = group {
            cmd.env(
                "CNI_ARGS",
                format!("IgnoreUnknown=1;K8S_POD_NAME={container_id};io.contiv.net-group={group}"),
            );
        }
        let mut child = cmd
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", Path::new("/run/netns").join(netns))
            .env("CNI_IFNAME", IFNAME)
            .env("CNI_PATH", cni_path)
            .env("CONTIV_NETPLUGIN_SOCKET", &self.socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", self.plugin.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(config.to_string().as_bytes())?;
        }
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "ADD {container_id} failed ({}): {stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let result: Value = serde_json::from_str(&stdout)
            .with_context(|| format!("ADD {container_id}: result is not JSON: {stdout}"))?;
        let address = result["ips"][0]["address"].as_str().unwrap_or("");
        address
            .split('/')
            .next()
            .unwrap_or("")
            .parse()
            .with_context(|| format!("ADD {container_id}: no IPv4 address in {stdout}"))
    }
}

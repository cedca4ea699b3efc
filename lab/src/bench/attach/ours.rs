//! Our attach: `contivk8s` ADD invoked exactly as a runtime does (CNI_* variables, the network
//! configuration on stdin), which hands the request to the host's agent over its socket.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Whether the ELF executable at `path` runs without the dynamic loader (no PT_INTERP program
/// header): the plugin's start-up cost, which every attach pays, depends on it.
pub fn linked_statically(path: &Path) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    let elf = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let field = |at: usize, len: usize| -> Result<u64> {
        let bytes = at
            .checked_add(len)
            .and_then(|end| elf.get(at..end))
            .with_context(|| format!("{} is cut short", path.display()))?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    // A 64-bit little-endian ELF: e_phoff at 32, e_phentsize at 54, e_phnum at 56.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        bail!("{} is not a 64-bit little-endian ELF file", path.display());
    }
    let (phoff, phentsize, phnum) = (field(32, 8)?, field(54, 2)?, field(56, 2)?);
    for i in 0..phnum {
        let at = i
            .checked_mul(phentsize)
            .and_then(|off| off.checked_add(phoff))
            .and_then(|at| usize::try_from(at).ok())
            .with_context(|| format!("{}: program headers out of range", path.display()))?;
        if field(at, 4)? == u64::from(PT_INTERP) {
            return Ok(false);
        }
    }
    Ok(true)
}

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
        let labels: Vec<(&str, &str)> = group
            .map(|g| ("io.contiv.net-group", g))
            .into_iter()
            .collect();
        self.add_labelled(container_id, netns, &labels)
    }

    /// ADD with Contiv's pod labels (`io.contiv.tenant`, `io.contiv.network`,
    /// `io.contiv.net-group`) in CNI_ARGS; none: the default tenant's default network.
    pub fn add_labelled(
        &self,
        container_id: &str,
        netns: &str,
        labels: &[(&str, &str)],
    ) -> Result<Ipv4Addr> {
        let config = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "contiv",
            "type": "contivk8s",
        });
        let cni_path = self.plugin.parent().unwrap_or(Path::new("/"));
        let mut cmd = Command::new(&self.plugin);
        cmd.env_clear();
        if !labels.is_empty() {
            let mut args = format!("IgnoreUnknown=1;K8S_POD_NAME={container_id}");
            for (k, v) in labels {
                args.push_str(&format!(";{k}={v}"));
            }
            cmd.env("CNI_ARGS", args);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamically_linked_program_is_told_apart() {
        // The test binary itself is linked the default way: against glibc's loader.
        let me = std::env::current_exe().unwrap();
        assert!(!linked_statically(&me).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        std::fs::write(&text, "not a program").unwrap();
        assert!(linked_statically(&text).is_err());
        // A header with one PT_LOAD program header and no PT_INTERP: static.
        let mut elf = vec![0u8; 64 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[32] = 64; // e_phoff
        elf[54] = 56; // e_phentsize
        elf[56] = 1; // e_phnum
        elf[64] = 1; // p_type = PT_LOAD
        let file = dir.path().join("static");
        std::fs::write(&file, &elf).unwrap();
        assert!(linked_statically(&file).unwrap());
        elf[64] = 3; // PT_INTERP
        std::fs::write(&file, &elf).unwrap();
        assert!(!linked_statically(&file).unwrap());
        // Program headers said to lie far beyond the file: an error, not a panic.
        elf[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&file, &elf).unwrap();
        assert!(linked_statically(&file).is_err());
    }
}

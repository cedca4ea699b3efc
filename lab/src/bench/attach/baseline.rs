//! The Calico-style baseline: what Calico's CNI plugin and Felix do to a workload, as a shell
//! script of `ip` commands run by the bench: a veth whose host end stays on the host (proxy-ARP
//! on, inherited from `net.ipv4.conf.default.proxy_arp`) and whose other end goes into the
//! container, the address as a /32, a default route via the link-local gateway 169.254.1.1,
//! and a /32 kernel route to the veth on the host. BIRD on the host learns that route from the
//! kernel and exports it to the ToR; no agent takes part.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::ours::IFNAME;

const SCRIPT: &str = r#"set -e
ip -n "$HOST" link add "$VETH" type veth peer name "$IFNAME" netns "$CONTAINER"
ip -n "$HOST" link set "$VETH" up
ip -n "$CONTAINER" link set "$IFNAME" up
ip -n "$CONTAINER" addr add "$IP/32" dev "$IFNAME"
ip -n "$CONTAINER" route add 169.254.1.1 dev "$IFNAME" scope link
ip -n "$CONTAINER" route add default via 169.254.1.1 dev "$IFNAME"
ip -n "$HOST" route add "$IP/32" dev "$VETH"
"#;

/// Wires container `index` (namespace `container`) to the host namespace `host` with `ip`.
pub fn attach(host: &str, container: &str, index: usize, ip: Ipv4Addr) -> Result<()> {
    let out = Command::new("sh")
        .args(["-c", SCRIPT])
        .env("HOST", host)
        .env("CONTAINER", container)
        .env("VETH", format!("cali{index:05}"))
        .env("IFNAME", IFNAME)
        .env("IP", ip.to_string())
        .stdin(Stdio::null())
        .output()
        .context("running the baseline's wiring script")?;
    if !out.status.success() {
        bail!(
            "baseline wiring of {container} ({ip}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

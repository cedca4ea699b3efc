//! The kernel driver against a real kernel, in a namespace of its own: local container routes
//! (`dev gw0` with a permanent neighbour entry) and learned routes with several next hops
//! (ECMP multipath), all tagged with our protocol number, listed back exactly and deleted.

use fabric_actors::routes::{Kernel, KernelRoute};
use netplugin::kernel::NetlinkKernel;
use std::collections::BTreeSet;
use std::process::Command;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[test]
fn local_and_ecmp_routes_round_trip_through_the_kernel() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: it creates a network namespace"
    );
    let ns = Netns(format!("kt{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    let n = ns.0.as_str();
    // An uplink with two next hops on its subnet, and a gateway port (a veth stands for it).
    ip(&[
        "-n", n, "link", "add", "up0", "type", "veth", "peer", "name", "up1",
    ]);
    ip(&[
        "-n", n, "link", "add", "gw0", "type", "veth", "peer", "name", "gw1",
    ]);
    for dev in ["up0", "up1", "gw0", "gw1"] {
        ip(&["-n", n, "link", "set", dev, "up"]);
    }
    ip(&["-n", n, "addr", "add", "10.77.0.1/24", "dev", "up0"]);

    let file = std::fs::File::open(format!("/run/netns/{n}")).expect("netns");
    let name = n.to_string();
    let result = std::thread::spawn(move || {
        // Threads started from here (the driver's netlink threads) inherit this namespace.
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let k = NetlinkKernel {
                gw_if: "gw0".into(),
            };
            let local = "10.1.9.8/32".parse().unwrap();
            let learned = "10.1.9.9/32".parse().unwrap();
            let hops: BTreeSet<_> =
                ["10.77.0.2".parse().unwrap(), "10.77.0.3".parse().unwrap()].into();
            k.replace(local, &KernelRoute::Local).await?;
            k.replace(learned, &KernelRoute::Via(hops.clone())).await?;
            let listed = k.list().await?;
            let one = k.list().await?;
            let neigh = Command::new("ip")
                .args(["-n", &name, "neigh", "show", "dev", "gw0"])
                .output()
                .map_err(|e| e.to_string())?;
            let neigh = String::from_utf8_lossy(&neigh.stdout).into_owned();
            let multipath = Command::new("ip")
                .args(["-n", &name, "route", "show", "10.1.9.9/32"])
                .output()
                .map_err(|e| e.to_string())?;
            let multipath = String::from_utf8_lossy(&multipath.stdout).into_owned();
            k.replace(
                learned,
                &KernelRoute::Via(hops.iter().take(1).copied().collect()),
            )
            .await?;
            let single = k.list().await?;
            k.delete(local, &KernelRoute::Local).await?;
            k.delete(learned, &KernelRoute::Via(hops.clone())).await?;
            // Deleting what is gone succeeds.
            k.delete(learned, &KernelRoute::Via(hops.clone())).await?;
            let after = k.list().await?;
            Ok::<_, String>((listed, one, single, after, hops, neigh, multipath))
        })
    })
    .join()
    .expect("kernel thread");
    let (listed, again, single, after, hops, neigh, multipath) = result.expect("kernel operations");
    assert!(
        neigh.contains("10.1.9.8")
            && neigh.contains("02:00:0c:0f:ab:01")
            && neigh.contains("PERMANENT"),
        "the local route's neighbour entry: {neigh}"
    );
    assert!(
        multipath.contains("proto 205")
            && multipath.contains("nexthop via 10.77.0.2")
            && multipath.contains("nexthop via 10.77.0.3"),
        "ECMP in the kernel: {multipath}"
    );
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[&"10.1.9.8/32".parse().unwrap()], KernelRoute::Local);
    assert_eq!(
        listed[&"10.1.9.9/32".parse().unwrap()],
        KernelRoute::Via(hops.clone())
    );
    assert_eq!(listed, again, "listing is stable");
    assert_eq!(
        single[&"10.1.9.9/32".parse().unwrap()],
        KernelRoute::Via(hops.iter().take(1).copied().collect()),
        "replace turns multipath into a single next hop"
    );
    assert!(after.is_empty(), "{after:?}");
    // The neighbour entry went with the local route.
    let out = Command::new("ip")
        .args(["-n", n, "neigh", "show", "dev", "gw0"])
        .output()
        .expect("ip neigh");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("10.1.9.8"));
}

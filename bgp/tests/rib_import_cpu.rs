//! CPU and heap cost of receiving a full table into the RIB, without sockets or a sender:
//! the repeatable half of `bgp-bench --receive-only`. 1,000,000 /32s arrive from one eBGP
//! peer, 256 per UPDATE with one shared attribute set (as BIRD 2.0 packs them), followed by an
//! End-of-RIB; the core flushes every 64 UPDATEs, as the speaker's event loop does at most.
//! It is ignored by default (it wants a release build):
//!
//!     cargo test --release -p fabric-bgp --test rib_import_cpu -- --ignored --nocapture
//!
//! and prints the import time (min and median of 5 fresh RIBs) and the heap per route.
//! Under callgrind, `--toggle-collect='*rib_import_cpu::receive*'` counts only the import.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fabric_bgp::packet::encode::EncodeCtx;
use fabric_bgp::packet::{Afi, AsPath, PathAttrs, Prefix, Update};
use fabric_bgp::rib::{PeerInfo, Rib, RibConfig};
use ipnet::Ipv4Net;

/// Counts live heap bytes and their peak, so the memory side of the change is checked too.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const N: usize = 1_000_000;
const PER_UPDATE: usize = 256;
/// The speaker's core handles at most this many session events between flushes.
const FLUSH_EVERY: usize = 64;

/// The UPDATEs a BIRD sender would send: /32s from 10.0.0.0 up, `stride` addresses apart, in
/// a scattered order (a bijection of 0..2^20, so the table is not filled in address order).
fn updates(stride: u32) -> Vec<Update> {
    let attrs = PathAttrs {
        as_path: AsPath::sequence(vec![65002]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 255, 0, 2))),
        ..PathAttrs::default()
    };
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let order = (0u32..1 << 20)
        .map(|i| i.wrapping_mul(0x9E37_79B1) & ((1 << 20) - 1))
        .filter(|&j| (j as usize) < N);
    let prefixes: Vec<Prefix> = order
        .map(|j| Prefix::V4(Ipv4Net::new(Ipv4Addr::from(base + j * stride), 32).unwrap()))
        .collect();
    assert_eq!(prefixes.len(), N);
    let mut out: Vec<Update> = prefixes
        .chunks(PER_UPDATE)
        .map(|chunk| Update {
            attrs: Some(attrs.clone()),
            nlri: chunk.to_vec(),
            ..Update::default()
        })
        .collect();
    out.push(Update::default()); // End-of-RIB
    out
}

fn rib() -> Rib {
    let mut rib = Rib::new(RibConfig {
        local_as: 65001,
        router_id: Ipv4Addr::new(10, 255, 0, 1),
        cluster_id: None,
        max_paths: 1,
        track_changes: false,
        export_local_only: false,
    });
    let peer = rib.add_peer(PeerInfo {
        address: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 2)),
        router_id: Ipv4Addr::new(10, 255, 0, 2),
        asn: 65002,
        local_as: 65001,
        ibgp: false,
        rr_client: false,
        local_address: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
        local_v6_next_hop: None,
        next_hop: None,
        next_hop_self: false,
        max_prefix: None,
        families: vec![Afi::Ipv4],
        import_local_pref: None,
        enforce_first_as: true,
        export_deny_communities: Vec::new(),
        export_strip_communities: Vec::new(),
    });
    rib.set_encode_ctx(peer, EncodeCtx::default());
    rib.peer_up(peer);
    rib.flush();
    rib
}

/// Import everything into a fresh RIB the way the speaker's core does; returns the time.
#[inline(never)]
fn receive(updates: Vec<Update>) -> (Duration, Rib) {
    let mut rib = rib();
    let start = Instant::now();
    for (i, update) in updates.into_iter().enumerate() {
        let result = rib.import_update(1, update).expect("no max-prefix set");
        if let Some(afi) = result.end_of_rib {
            rib.purge_stale(1, Some(afi));
        }
        if (i + 1) % FLUSH_EVERY == 0 {
            // A receiver with no other peer has nobody to send to.
            assert!(rib.flush().is_empty());
        }
    }
    assert!(rib.flush().is_empty());
    (start.elapsed(), rib)
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn receive_one_million() {
    let mut times = Vec::new();
    let (mut peak_per_route, mut kept_per_route) = (0.0, 0.0);
    // RIB_IMPORT_REPS=1 for a single run under `valgrind --tool=callgrind`, whose instruction
    // counts stay repeatable on a loaded machine where the times do not.
    let reps: usize = std::env::var("RIB_IMPORT_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    // RIB_IMPORT_STRIDE=64 puts every /32 in a /26 of its own: the table's worst layout, one
    // route per block, where the default (consecutive addresses) is the fabric's own.
    let stride: u32 = std::env::var("RIB_IMPORT_STRIDE")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&s| (1..=4096).contains(&s))
        .unwrap_or(1);
    for _ in 0..reps {
        let empty = LIVE.load(Ordering::Relaxed);
        let updates = updates(stride);
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let (took, rib) = receive(updates);
        assert_eq!(rib.len(), N);
        assert_eq!(rib.received_count(1), N as u64);
        // The UPDATEs are freed as they are consumed, so the peak above `before` (all of them
        // still held) slightly understates the RIB's transient cost; what is kept after the
        // import is exactly the RIB's.
        peak_per_route = (PEAK.load(Ordering::Relaxed) - before) as f64 / N as f64;
        kept_per_route = (LIVE.load(Ordering::Relaxed) - empty) as f64 / N as f64;
        times.push(took);
        drop(rib);
    }
    times.sort();
    println!(
        "receive {N} /32s {stride} apart: min {:.1} ms, median {:.1} ms (of {}); heap per route: peak above the UPDATEs {peak_per_route:.1} bytes, kept {kept_per_route:.1} bytes",
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times.len(),
    );
}

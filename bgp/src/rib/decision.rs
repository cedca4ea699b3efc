//! The decision process (RFC 4271 §9.1.2.2 with the usual tie-breaks, RFC 4456 §9 for
//! reflected routes) and the ECMP set.

use std::cmp::Ordering;

use super::{Path, PeerInfo, LOCAL_PEER};

/// LOCAL_PREF assumed when a route carries none.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

fn local_pref(p: &Path) -> u32 {
    p.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
}

/// Order `paths` best first and return how many lead as equal-cost multipaths (at least 1
/// when there is any path, at most `max_paths`).
///
/// Steps: highest LOCAL_PREF; locally originated; shortest AS_PATH; lowest ORIGIN; lowest MED
/// among paths from the same neighbouring AS; eBGP over iBGP; (multipath boundary) lowest
/// router ID (ORIGINATOR_ID when reflected); shortest CLUSTER_LIST; lowest peer address.
pub fn select(paths: &mut [Path], peers: &[Option<PeerInfo>], max_paths: usize) -> usize {
    if paths.len() <= 1 {
        return paths.len();
    }
    let info = |p: &Path| peers.get(p.peer as usize).and_then(|i| i.as_ref());
    let pre = |a: &Path, b: &Path| -> Ordering {
        local_pref(b)
            .cmp(&local_pref(a))
            .then_with(|| (b.peer == LOCAL_PEER).cmp(&(a.peer == LOCAL_PEER)))
            .then_with(|| {
                a.attrs
                    .as_path
                    .decision_len()
                    .cmp(&b.attrs.as_path.decision_len())
            })
            .then_with(|| a.attrs.origin.cmp(&b.attrs.origin))
    };
    // MED is only comparable between paths from the same neighbouring AS, so it cannot be
    // part of a total order: mark the losers first, among paths equal up to ORIGIN.
    let med_loser: Vec<bool> = paths
        .iter()
        .map(|a| {
            let asn = a.attrs.as_path.first_as();
            paths.iter().any(|b| {
                pre(a, b) == Ordering::Equal
                    && b.attrs.as_path.first_as() == asn
                    && b.attrs.med.unwrap_or(0) < a.attrs.med.unwrap_or(0)
            })
        })
        .collect();
    let mut order: Vec<usize> = (0..paths.len()).collect();
    let ibgp = |p: &Path| info(p).is_some_and(|i| i.ibgp);
    let multipath_key = |i: usize, j: usize| -> Ordering {
        let (a, b) = (&paths[i], &paths[j]);
        pre(a, b)
            .then_with(|| med_loser[i].cmp(&med_loser[j]))
            .then_with(|| ibgp(a).cmp(&ibgp(b)))
    };
    let router_id = |p: &Path| {
        p.attrs
            .originator_id
            .or_else(|| info(p).map(|i| i.router_id))
            .map(u32::from)
            .unwrap_or(0)
    };
    let address = |p: &Path| info(p).map(|i| i.address);
    order.sort_by(|&i, &j| {
        multipath_key(i, j)
            .then_with(|| router_id(&paths[i]).cmp(&router_id(&paths[j])))
            .then_with(|| {
                paths[i]
                    .attrs
                    .cluster_list
                    .len()
                    .cmp(&paths[j].attrs.cluster_list.len())
            })
            .then_with(|| address(&paths[i]).cmp(&address(&paths[j])))
            .then_with(|| paths[i].peer.cmp(&paths[j].peer))
    });
    let ecmp = order
        .iter()
        .take_while(|&&i| multipath_key(i, order[0]) == Ordering::Equal)
        .count()
        .clamp(1, max_paths.max(1));
    let sorted: Vec<Path> = order.iter().map(|&i| paths[i].clone()).collect();
    paths.clone_from_slice(&sorted);
    ecmp
}

//! Turning RIB changes into UPDATE bytes per peer: changed best paths are exported once per
//! update group (`groups.rs`), compared with the group's Adj-RIB-Out, grouped by shared
//! attributes and handed to the packer, so each UPDATE carries as many prefixes as fit and no
//! message is ever sent per prefix. After a peer's unicast UPDATEs come its EVPN ones and,
//! after a full sync, its End-of-RIB markers (`flush_tails`).

use bytes::Bytes;

use super::groups::SharedFlush;
use super::{PeerId, Rib};
use crate::packet::encode::{EncodeCtx, Packer};

/// What one flush produced for one peer, in one buffer (see [`Rib::flush_shared`] for the
/// buffers shared within an update group, which the speaker sends).
#[derive(Debug, Default)]
pub struct Flush {
    pub peer: PeerId,
    pub bytes: Vec<u8>,
    pub messages: u64,
    pub announced: u64,
    pub withdrawn: u64,
    /// End-of-RIB markers were sent (after a full sync).
    pub end_of_rib: bool,
}

impl From<SharedFlush> for Flush {
    fn from(f: SharedFlush) -> Flush {
        Flush {
            peer: f.peer,
            bytes: f.parts.concat(),
            messages: f.messages,
            announced: f.announced,
            withdrawn: f.withdrawn,
            end_of_rib: f.end_of_rib,
        }
    }
}

impl Rib {
    /// The session to `peer` is up with these encoding parameters.
    pub fn set_encode_ctx(&mut self, peer: PeerId, ctx: EncodeCtx) {
        if let Some(p) = self.peer_mut(peer) {
            p.encode_ctx = ctx;
        }
        self.regroup(peer);
    }

    /// Produce the UPDATEs every up peer needs since the last flush, each peer's in one
    /// buffer of its own.
    pub fn flush(&mut self) -> Vec<Flush> {
        self.flush_shared().into_iter().map(Flush::from).collect()
    }

    /// What follows each peer's unicast UPDATEs in a flush: its EVPN UPDATEs (every key after
    /// a full sync, else the changed ones), then End-of-RIB for each of its families after a
    /// full sync (`full`: the peers synced in full in this flush).
    pub(super) fn flush_tails(&mut self, full: &[PeerId], flushes: &mut Vec<SharedFlush>) {
        let evpn_dirty = self.take_evpn_dirty();
        let peers: Vec<PeerId> = if evpn_dirty.is_empty() {
            full.to_vec()
        } else {
            (1..self.peers.len() as PeerId)
                .filter(|&p| self.peers[p as usize].as_ref().is_some_and(|p| p.up))
                .collect()
        };
        for peer in peers {
            let is_full = full.contains(&peer);
            let Some(families) = self.peer_info(peer).map(|i| i.families.clone()) else {
                continue;
            };
            let ctx = self.peers[peer as usize]
                .as_ref()
                .map(|p| p.encode_ctx)
                .unwrap_or_default();
            let mut packer = Packer::new(ctx);
            let mut out = Vec::new();
            let (announced, withdrawn) =
                self.flush_evpn(peer, is_full, &evpn_dirty, &mut packer, &mut out);
            if is_full {
                for afi in &families {
                    packer.end_of_rib(*afi, &mut out);
                }
            }
            if out.is_empty() {
                continue;
            }
            let f = super::groups::flush_for(flushes, peer);
            f.parts.push(Bytes::from(out));
            f.messages += packer.messages;
            f.announced += announced;
            f.withdrawn += withdrawn;
            f.end_of_rib |= is_full;
        }
    }
}

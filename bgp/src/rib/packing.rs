//! Turning RIB changes into UPDATE bytes per peer: changed best paths are exported, compared
//! with the Adj-RIB-Out, grouped by shared attributes and handed to the packer, so each UPDATE
//! carries as many prefixes as fit and no message is ever sent per prefix.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::adj_out::ExportCache;
use super::{PeerId, Rib};
use crate::packet::encode::{EncodeCtx, Packer};
use crate::packet::prefix::afi_of;
use crate::packet::{Afi, PathAttrs, Prefix};

/// What one flush produced for one peer.
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

#[derive(Default)]
struct Groups {
    index: FxHashMap<(usize, Afi), usize>,
    announce: Vec<(Arc<PathAttrs>, Afi, Vec<Prefix>)>,
    withdraw_v4: Vec<Prefix>,
    withdraw_v6: Vec<Prefix>,
}

impl Groups {
    fn announce(&mut self, prefix: Prefix, attrs: Arc<PathAttrs>) {
        let afi = afi_of(&prefix);
        let key = (Arc::as_ptr(&attrs) as usize, afi);
        let idx = *self.index.entry(key).or_insert_with(|| {
            self.announce.push((attrs, afi, Vec::new()));
            self.announce.len() - 1
        });
        self.announce[idx].2.push(prefix);
    }

    fn withdraw(&mut self, prefix: Prefix) {
        match afi_of(&prefix) {
            Afi::Ipv4 => self.withdraw_v4.push(prefix),
            // EVPN routes are not prefixes (`afi_of` never says EVPN); see `evpn.rs`.
            Afi::Ipv6 | Afi::L2vpnEvpn => self.withdraw_v6.push(prefix),
        }
    }
}

impl Rib {
    /// The session to `peer` is up with these encoding parameters.
    pub fn set_encode_ctx(&mut self, peer: PeerId, ctx: EncodeCtx) {
        if let Some(p) = self.peer_mut(peer) {
            p.encode_ctx = ctx;
        }
    }

    /// Produce the UPDATEs every up peer needs since the last flush.
    pub fn flush(&mut self) -> Vec<Flush> {
        let dirty = std::mem::take(&mut self.dirty);
        let evpn_dirty = self.take_evpn_dirty();
        let mut flushes = Vec::new();
        for peer_id in 1..self.peers.len() {
            let Some(target) = self.infos[peer_id].clone() else {
                continue;
            };
            let Some(state) = self.peers[peer_id].as_mut() else {
                continue;
            };
            if !state.up || (!state.full_sync && dirty.is_empty() && evpn_dirty.is_empty()) {
                continue;
            }
            let full = std::mem::take(&mut state.full_sync);
            let mut cache = ExportCache::default();
            let mut groups = Groups::default();
            let peer = peer_id as PeerId;
            let mut consider = |prefix: &Prefix, state: &mut super::PeerRib| {
                let exported = self
                    .table
                    .get(prefix)
                    .and_then(|e| e.paths().first())
                    .and_then(|best| {
                        cache.export(
                            &self.config,
                            &self.infos,
                            peer,
                            &target,
                            prefix,
                            best,
                            &*self.policy,
                        )
                    });
                match exported {
                    Some(attrs) => {
                        if state.adj_out.advertise(*prefix, &attrs) || full {
                            groups.announce(*prefix, attrs);
                        }
                    }
                    None => {
                        if state.adj_out.withdraw(prefix) {
                            groups.withdraw(*prefix);
                        }
                    }
                }
            };
            if full {
                for prefix in self.table.keys() {
                    consider(&prefix, state);
                }
            } else {
                for prefix in &dirty {
                    consider(prefix, state);
                }
            }
            let mut packer = Packer::new(state.encode_ctx);
            let mut flush = Flush {
                peer,
                withdrawn: (groups.withdraw_v4.len() + groups.withdraw_v6.len()) as u64,
                ..Flush::default()
            };
            packer.withdraw(Afi::Ipv4, &groups.withdraw_v4, &mut flush.bytes);
            packer.withdraw(Afi::Ipv6, &groups.withdraw_v6, &mut flush.bytes);
            for (attrs, afi, prefixes) in &groups.announce {
                flush.announced += prefixes.len() as u64;
                packer.announce(*afi, attrs, prefixes, &mut flush.bytes);
            }
            let (announced, withdrawn) =
                self.flush_evpn(peer, full, &evpn_dirty, &mut packer, &mut flush.bytes);
            flush.announced += announced;
            flush.withdrawn += withdrawn;
            if full {
                for afi in &target.families {
                    packer.end_of_rib(*afi, &mut flush.bytes);
                }
                flush.end_of_rib = true;
            }
            flush.messages = packer.messages;
            if !flush.bytes.is_empty() {
                flushes.push(flush);
            }
        }
        flushes
    }
}

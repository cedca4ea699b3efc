//! Import and export policy hooks. The default accepts everything unchanged.

use std::sync::Arc;

use crate::packet::{PathAttrs, Prefix};
use crate::rib::PeerInfo;

/// A routing policy. Return `None` to reject a route, or the (possibly rewritten) attributes.
pub trait Policy: Send + Sync + std::fmt::Debug {
    fn import(
        &self,
        _peer: &PeerInfo,
        _prefix: &Prefix,
        attrs: &Arc<PathAttrs>,
    ) -> Option<Arc<PathAttrs>> {
        Some(attrs.clone())
    }

    fn export(
        &self,
        _peer: &PeerInfo,
        _prefix: &Prefix,
        attrs: &Arc<PathAttrs>,
    ) -> Option<Arc<PathAttrs>> {
        Some(attrs.clone())
    }

    /// Whether `export` may treat two peers differently that the RIB's own export rules
    /// treat alike (it reads their address, router id...). If not, such peers share one
    /// update group: one export pass and one set of UPDATEs (see `rib::groups`), and `export`
    /// is called once for all of them, with one member's `PeerInfo`.
    fn export_depends_on_peer(&self) -> bool {
        true
    }
}

/// Accept everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct AcceptAll;

impl Policy for AcceptAll {
    fn export_depends_on_peer(&self) -> bool {
        false
    }
}

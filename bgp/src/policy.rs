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
}

/// Accept everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct AcceptAll;

impl Policy for AcceptAll {}

//! Who may do what to Contiv's collections: the rule table of master/README.md's
//! "Authentication and authorization", as code. The HTTP layer and the core ask these
//! functions; `tests/rbac.rs` holds the same table as data, written apart from this file.
//!
//! | collection | admin | ops of T | agent of H |
//! |---|---|---|---|
//! | `tenants` | all | read T | read |
//! | tenant-scoped (`networks`, `endpointGroups`, `policys`, `rules`, `appProfiles`, `serviceLBs`, `netprofiles`, `extContractsGroups`) | all | all in T | read |
//! | `endpoints` (read-only) | read | read those of T's networks | read |
//! | `globals`, `Bgps`, `aciGws` | all | none (inspect `globals/global` only) | read |

use super::caller::{Grant, Need};
use fabric_model::Collection;
use serde_json::Value;

/// Whether objects of `c` belong to a tenant (endpoints through their network).
pub fn tenant_scoped(c: Collection) -> bool {
    !matches!(
        c,
        Collection::Globals | Collection::Bgps | Collection::AciGws
    )
}

/// The tenant of the part before the first `:` of a key (`blue:net` → `blue`).
pub fn tenant_of_key(key: &str) -> &str {
    key.split(':').next().unwrap_or(key)
}

/// The tenant an object belongs to: from its key, or for an endpoint from its network (so
/// `object` is needed for endpoints only). `None` for the fabric-wide collections.
pub fn tenant_of<'a>(c: Collection, key: &'a str, object: Option<&'a Value>) -> Option<&'a str> {
    match c {
        Collection::Globals | Collection::Bgps | Collection::AciGws => None,
        Collection::Tenants => Some(key),
        Collection::Endpoints => object
            .and_then(|o| o["network"].as_str())
            .map(tenant_of_key),
        _ => Some(tenant_of_key(key)),
    }
}

/// What creating, replacing or deleting `c/key` needs (endpoints are the agents', see
/// [`Need::Host`]; they are not written through this).
pub fn write_need(c: Collection, key: &str) -> Need<'_> {
    match c {
        Collection::Tenants | Collection::Globals | Collection::Bgps | Collection::AciGws => {
            Need::Admin
        }
        _ => Need::Tenant(tenant_of_key(key)),
    }
}

/// Whether `grant` (None: authentication is off) may read `c/key` (`object` the stored object,
/// needed for endpoints).
pub fn may_read(grant: Option<&Grant>, c: Collection, key: &str, object: Option<&Value>) -> bool {
    grant.is_none_or(|g| g.may_read(c, tenant_of(c, key, object)))
}

/// Whether `inspect` of `c/key` is open to every authenticated caller (Contiv opened the
/// global settings' inspect to all: clients read the fabric's mode from it).
pub fn inspect_open(c: Collection, key: &str) -> bool {
    c == Collection::Globals && key == fabric_model::objects::GLOBAL_NAME
}

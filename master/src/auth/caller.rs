//! Who is calling, and what that allows right now. A [`Caller`] names a session; what the
//! session may do is worked out from the cache each time it is asked (the session, the local
//! user's record and the current authorizations), never from the token. So a logout, a user
//! deleted or disabled, or an authorization removed takes effect on the next request.
//!
//! Why the role is computed at request time instead of copied into the session: a change of
//! authorizations then needs no rewrite of sessions (which could be many, beyond one
//! transaction), LDAP groups granted later apply to sessions already open, and a write can pin
//! exactly the keys that granted it: [`Caller::require`] returns compares (the session's, the
//! user's and the granting authorizations' mod revisions) that the core adds to the write's own
//! transaction, so a revocation that commits first makes the write fail and re-plan, and the
//! re-plan finds the caller no longer allowed. There is no check-then-use window.

use crate::cache::Cache;
use crate::error::ApiError;
use crate::keys;
use fabric_store::Compare;
use std::collections::{BTreeMap, BTreeSet};

use super::state::{RoleName, SessionKind};

/// The role a session has at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Admin,
    /// Ops of these tenants (possibly none: a user nobody granted anything).
    Ops(BTreeSet<String>),
    /// The agent of this host.
    Agent(String),
}

/// What a request needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Any valid session.
    Any,
    Admin,
    /// Admin, or ops of the tenant.
    Tenant(&'a str),
    /// Admin, or the agent of the host.
    Host(&'a str),
    /// Admin, or the agent of any host.
    AnyAgent,
}

/// The caller of a request: a session, or everyone when authentication is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    session: Option<String>,
    /// For messages and logs: the username, `agent <host>`, or `anyone` (authentication off).
    pub name: String,
}

/// A resolved session: its role and the compares that keep each of its grants true.
#[derive(Debug, Clone)]
pub struct Grant {
    pub role: Role,
    /// The session's user (a local username, an LDAP DN, or the agent's host).
    pub user: String,
    /// Whether `user` is a local user (who may read and change their own record).
    pub local_user: bool,
    /// The session key and, for a local user, the user's record.
    pins: Vec<Compare>,
    /// The admin authorizations that grant the role.
    admin: Vec<Compare>,
    /// Per tenant, the ops authorizations for it.
    tenants: BTreeMap<String, Vec<Compare>>,
}

pub fn unauthorized(reason: impl Into<String>) -> ApiError {
    ApiError::new(401, None, None, reason)
}

pub fn forbidden(object: &str, reason: impl Into<String>) -> ApiError {
    ApiError::new(403, Some(object.to_string()), None, reason)
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn pin(cache: &Cache, key: String) -> Compare {
    let rev = cache.mod_revision(&key);
    Compare::ModRevision(key, rev)
}

impl Caller {
    /// Everyone, with every right: authentication is off (and the master's own start-up writes).
    pub fn unrestricted() -> Caller {
        Caller {
            session: None,
            name: "anyone".into(),
        }
    }

    pub fn session(id: String, name: String) -> Caller {
        Caller {
            session: Some(id),
            name,
        }
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The session's grant now; `None` when authentication is off (everything is allowed).
    pub fn grant(&self, cache: &Cache) -> Result<Option<Grant>, ApiError> {
        let Some(id) = &self.session else {
            return Ok(None);
        };
        resolve(cache, id, now_secs()).map(Some)
    }

    /// Checks `need` against the cache; the compares returned keep the answer true until the
    /// transaction they join commits. `object` names what was asked for, in a refusal.
    pub fn require(
        &self,
        cache: &Cache,
        need: Need<'_>,
        object: &str,
    ) -> Result<Vec<fabric_store::Compare>, ApiError> {
        match self.grant(cache)? {
            None => Ok(Vec::new()),
            Some(g) => g.allow(need, object, &self.name),
        }
    }
}

/// Works out what session `id` may do, from the cache.
pub fn resolve(cache: &Cache, id: &str, now: u64) -> Result<Grant, ApiError> {
    let auth = &cache.auth;
    let session = auth.sessions.get(id).ok_or_else(|| {
        unauthorized("the session has ended (logged out or revoked); log in again")
    })?;
    if session.expires <= now {
        return Err(unauthorized("the session expired; log in again"));
    }
    let mut pins = vec![pin(cache, keys::session(id))];
    if session.kind == SessionKind::Agent {
        return Ok(Grant {
            role: Role::Agent(session.host.clone()),
            user: session.host.clone(),
            local_user: false,
            pins,
            admin: Vec::new(),
            tenants: BTreeMap::new(),
        });
    }
    if session.local {
        let user = auth
            .users
            .get(&session.user)
            .ok_or_else(|| unauthorized("the user no longer exists"))?;
        if user.stamp != session.stamp {
            return Err(unauthorized(
                "the session was ended by a password change or by disabling the user; log in again",
            ));
        }
        if user.disable {
            return Err(unauthorized("the user is disabled"));
        }
        pins.push(pin(cache, keys::user(&session.user)));
    }
    let mut admin = Vec::new();
    let mut tenants: BTreeMap<String, Vec<Compare>> = BTreeMap::new();
    for a in auth.grants_of(&session.principals) {
        let p = pin(cache, keys::authorization(&a.uuid));
        match a.role {
            RoleName::Admin => admin.push(p),
            RoleName::Ops => tenants.entry(a.tenant_name.clone()).or_default().push(p),
        }
    }
    let role = if admin.is_empty() {
        Role::Ops(tenants.keys().cloned().collect())
    } else {
        Role::Admin
    };
    Ok(Grant {
        role,
        user: session.user.clone(),
        local_user: session.local,
        pins,
        admin,
        tenants,
    })
}

impl Grant {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The compares that keep `need` granted, or a refusal naming `object`.
    pub fn allow(&self, need: Need<'_>, object: &str, who: &str) -> Result<Vec<Compare>, ApiError> {
        let with = |more: &[Compare]| {
            let mut out = self.pins.clone();
            out.extend_from_slice(more);
            out
        };
        if self.role == Role::Admin {
            return Ok(with(&self.admin));
        }
        match (need, &self.role) {
            (Need::Any, _) => Ok(with(&[])),
            (Need::Admin, _) => Err(forbidden(
                object,
                format!("{who} lacks the admin role this needs"),
            )),
            (Need::Tenant(t), Role::Ops(_)) => match self.tenants.get(t) {
                Some(grants) => Ok(with(grants)),
                None => Err(forbidden(
                    object,
                    format!("{who} is not authorized for tenant '{t}'"),
                )),
            },
            (Need::Host(h), Role::Agent(mine)) if mine == h => Ok(with(&[])),
            (Need::Host(h), Role::Agent(mine)) => Err(forbidden(
                object,
                format!("the agent of host '{mine}' may only act for its own host, not '{h}'"),
            )),
            (Need::AnyAgent, Role::Agent(_)) => Ok(with(&[])),
            (Need::Tenant(_), Role::Agent(_)) => Err(forbidden(
                object,
                format!("{who} may read configuration but not change it"),
            )),
            (Need::Host(_) | Need::AnyAgent, _) => Err(forbidden(
                object,
                format!("{who} is not an agent; only agents and admins make this call"),
            )),
            (Need::Tenant(_), Role::Admin) => Ok(with(&self.admin)),
        }
    }

    /// Whether the caller may read an object of `collection` belonging to `tenant` (`None`:
    /// the collection is not a tenant's, or the object's tenant is not known).
    pub fn may_read(&self, collection: fabric_model::Collection, tenant: Option<&str>) -> bool {
        match &self.role {
            Role::Admin | Role::Agent(_) => true,
            Role::Ops(set) => {
                super::rules::tenant_scoped(collection) && tenant.is_some_and(|t| set.contains(t))
            }
        }
    }
}

//! Contiv's authorizations (`/api/v1/auth_proxy/authorizations/`): a principal, a local user
//! or an LDAP group, is granted `admin`, or `ops` of one tenant. Admins only. The fabric never
//! loses its last administrator: a change that would leave no effective admin grant is
//! refused, and the refusal holds across masters because the change compares the grants it
//! counted on.

use super::caller::{now_secs, Caller, Need};
use super::password::random_bytes;
use super::state::{RoleName, StoredAuthorization};
use crate::cache::Cache;
use crate::error::ApiError;
use crate::keys;
use crate::master::{Master, Plan};
use fabric_store::{Compare, Txn};
use serde::{Deserialize, Serialize};

/// Contiv's request body.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationRequest {
    #[serde(default)]
    pub principal_name: String,
    #[serde(default)]
    pub local: bool,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub tenant_name: String,
}

/// Contiv's reply (its Go field names, which Contiv serialized untagged).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuthorizationReply {
    #[serde(rename = "AuthzUUID")]
    pub authz_uuid: String,
    #[serde(rename = "PrincipalName")]
    pub principal_name: String,
    #[serde(rename = "Local")]
    pub local: bool,
    #[serde(rename = "Role")]
    pub role: String,
    #[serde(rename = "TenantName")]
    pub tenant_name: String,
}

impl From<&StoredAuthorization> for AuthorizationReply {
    fn from(a: &StoredAuthorization) -> Self {
        AuthorizationReply {
            authz_uuid: a.uuid.clone(),
            principal_name: a.principal_name.clone(),
            local: a.local,
            role: a.role.as_str().into(),
            tenant_name: a.tenant_name.clone(),
        }
    }
}

const WHAT: &str = "authorizations";
/// Principal names are usernames or LDAP DNs.
const MAX_PRINCIPAL_LEN: usize = 1024;
/// Grants a change compares to prove an admin remains (more than this cannot all go at once).
const PINNED_ADMINS: usize = 16;

/// A random version-4 UUID.
pub fn new_uuid() -> Result<String, ApiError> {
    let mut b = random_bytes(16).map_err(|e| ApiError::new(500, None, None, e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = super::password::hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// The compares proving that some admin grant stays effective when the grants `removed`
/// picks go, and the local user `user_gone` (deleted or disabled) no longer counts; 409 when
/// none would stay.
pub(crate) fn admins_left(
    cache: &Cache,
    object: &str,
    removed: impl Fn(&StoredAuthorization) -> bool,
    user_gone: Option<&str>,
) -> Result<Vec<Compare>, ApiError> {
    let users = &cache.auth.users;
    let left: Vec<&StoredAuthorization> = cache
        .auth
        .authorizations
        .values()
        .filter(|a| a.role == RoleName::Admin && !removed(a))
        .filter(|a| {
            !a.local
                || (Some(a.principal_name.as_str()) != user_gone
                    && users.get(&a.principal_name).is_some_and(|u| !u.disable))
        })
        .collect();
    if left.is_empty() {
        return Err(ApiError::conflict(
            object.to_string(),
            None,
            "would leave the fabric without an administrator: grant admin to someone else first",
        ));
    }
    let mut compares = Vec::new();
    for a in left.into_iter().take(PINNED_ADMINS) {
        let key = keys::authorization(&a.uuid);
        compares.push(Compare::ModRevision(key.clone(), cache.mod_revision(&key)));
        if a.local {
            let key = keys::user(&a.principal_name);
            compares.push(Compare::ModRevision(key.clone(), cache.mod_revision(&key)));
        }
    }
    Ok(compares)
}

impl Master {
    pub fn list_authorizations(
        &self,
        caller: &Caller,
    ) -> Result<Vec<AuthorizationReply>, ApiError> {
        let cache = self.cache();
        caller.require(&cache, Need::Admin, WHAT)?;
        Ok(cache.auth.authorizations.values().map(Into::into).collect())
    }

    pub fn get_authorization(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<AuthorizationReply, ApiError> {
        let object = format!("{WHAT}/{id}");
        let cache = self.cache();
        caller.require(&cache, Need::Admin, &object)?;
        cache
            .auth
            .authorizations
            .get(id)
            .map(Into::into)
            .ok_or_else(|| ApiError::not_found(object))
    }

    pub async fn create_authorization(
        &self,
        caller: &Caller,
        req: AuthorizationRequest,
    ) -> Result<AuthorizationReply, ApiError> {
        // An LDAP principal is a DN, kept in the form logins give (lower case, no spaces
        // around separators), so it matches however the admin or the directory spells it.
        let principal = if req.local {
            req.principal_name.trim().to_string()
        } else {
            super::ldap::normalize_dn(&req.principal_name)
        };
        if principal.is_empty() || principal.len() > MAX_PRINCIPAL_LEN {
            return Err(ApiError::bad_request(
                Some(WHAT.into()),
                Some("principalName"),
                format!("is required, at most {MAX_PRINCIPAL_LEN} characters"),
            ));
        }
        let (role, tenant) = match req.role.as_str() {
            "admin" => (RoleName::Admin, String::new()),
            "ops" => {
                fabric_model::fields::name("tenantName", &req.tenant_name, 64).map_err(|e| {
                    ApiError::bad_request(
                        Some(WHAT.into()),
                        Some(e.field),
                        format!("the ops role needs a tenant: {}", e.reason),
                    )
                })?;
                (RoleName::Ops, req.tenant_name.clone())
            }
            other => {
                return Err(ApiError::bad_request(
                    Some(WHAT.into()),
                    Some("role"),
                    format!("'{other}' is not a role: admin or ops"),
                ))
            }
        };
        let authz = StoredAuthorization {
            uuid: new_uuid()?,
            principal_name: principal,
            local: req.local,
            role,
            tenant_name: tenant,
        };
        let key = keys::authorization(&authz.uuid);
        let value = serde_json::to_vec(&authz)
            .map_err(|e| ApiError::new(500, None, None, e.to_string()))?;
        let (reply, _) = self
            .commit(WHAT, |cache| {
                let mut txn = Txn::new();
                txn.compares
                    .extend(caller.require(cache, Need::Admin, WHAT)?);
                if let Some(same) = cache.auth.authorizations.values().find(|a| {
                    a.principal_name == authz.principal_name
                        && a.local == authz.local
                        && a.role == authz.role
                        && a.tenant_name == authz.tenant_name
                }) {
                    return Err(ApiError::conflict(
                        format!("{WHAT}/{}", same.uuid),
                        None,
                        "the same grant exists already",
                    ));
                }
                Ok(Plan {
                    txn: txn.when_absent(key.clone()).put(key.clone(), value.clone()),
                    result: AuthorizationReply::from(&authz),
                })
            })
            .await?;
        Ok(reply)
    }

    pub async fn delete_authorization(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        let object = format!("{WHAT}/{id}");
        let key = keys::authorization(id);
        self.commit(&object, |cache| {
            let mut txn = Txn::new();
            txn.compares
                .extend(caller.require(cache, Need::Admin, &object)?);
            if !cache.auth.authorizations.contains_key(id) {
                return Err(ApiError::not_found(object.clone()));
            }
            txn.compares
                .extend(admins_left(cache, &object, |a| a.uuid == id, None)?);
            Ok(Plan {
                txn: txn
                    .when_mod_revision(key.clone(), cache.mod_revision(&key))
                    .delete(key.clone()),
                result: (),
            })
        })
        .await?;
        tracing::info!(authorization = %id, by = %caller.name, at = now_secs(), "authorization removed");
        Ok(())
    }
}

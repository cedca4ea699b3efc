//! Contiv's local users (`/api/v1/auth_proxy/local_users/`): admins manage them; a user may
//! read and change their own record (password and names, not `disable`). Passwords are
//! hashed with argon2id on the blocking pool before the write is planned; the hash is never
//! shown.

use super::caller::{forbidden, Caller, Need};
use super::password;
use super::state::{Session, StoredUser};
use crate::error::ApiError;
use crate::keys;
use crate::master::{Master, Plan};
use fabric_store::Txn;
use serde::{Deserialize, Serialize};

/// Contiv's body for create and update. Absent fields are left as they are on update.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct UserRequest {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub disable: Option<bool>,
}

/// Contiv's user as shown: never the password or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct UserView {
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub disable: bool,
}

impl From<&StoredUser> for UserView {
    fn from(u: &StoredUser) -> Self {
        UserView {
            username: u.username.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            disable: u.disable,
        }
    }
}

const WHAT: &str = "local_users";
const MAX_NAME_LEN: usize = 128;
/// Sessions of a deleted user removed in its transaction; the sweeper takes any beyond.
const SESSIONS_PER_TXN: usize = 60;
/// The user's own authorizations removed with it (a store transaction holds 128 ops).
const AUTHZ_PER_TXN: usize = 60;

/// Contiv's username rule: letters, digits and `_ - . @`.
pub fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            Some(WHAT.into()),
            Some("username"),
            format!("'{name}' is not a valid username: 1-{MAX_NAME_LEN} letters, digits, '_', '-', '.' or '@'"),
        ))
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, None, None, e.to_string())
}

fn new_stamp() -> Result<String, ApiError> {
    password::random_token(16).map_err(internal)
}

impl Master {
    /// Hashes a new password on the blocking pool, a few at a time.
    pub(crate) async fn hash_password(&self, object: &str, pw: &str) -> Result<String, ApiError> {
        password::check_policy(pw).map_err(|e| {
            ApiError::new(
                422,
                Some(object.to_string()),
                Some("password"),
                e.to_string(),
            )
        })?;
        let _slot = self.auth.hashing.acquire().await.map_err(internal)?;
        let pw = pw.to_string();
        tokio::task::spawn_blocking(move || password::hash(&pw))
            .await
            .map_err(internal)?
            .map_err(internal)
    }

    pub fn list_users(&self, caller: &Caller) -> Result<Vec<UserView>, ApiError> {
        let cache = self.cache();
        caller.require(&cache, Need::Admin, WHAT)?;
        Ok(cache.auth.users.values().map(Into::into).collect())
    }

    /// Whether the caller is `name` itself (a local user's own session).
    fn is_self(
        &self,
        caller: &Caller,
        cache: &crate::cache::Cache,
        name: &str,
    ) -> Result<bool, ApiError> {
        Ok(caller
            .grant(cache)?
            .is_some_and(|g| g.local_user && g.user == name))
    }

    pub fn get_user(&self, caller: &Caller, name: &str) -> Result<UserView, ApiError> {
        let object = format!("{WHAT}/{name}");
        let cache = self.cache();
        if !self.is_self(caller, &cache, name)? {
            caller.require(&cache, Need::Admin, &object)?;
        }
        cache
            .auth
            .users
            .get(name)
            .map(Into::into)
            .ok_or_else(|| ApiError::not_found(object))
    }

    pub async fn create_user(
        &self,
        caller: &Caller,
        req: UserRequest,
    ) -> Result<UserView, ApiError> {
        check_username(&req.username)?;
        let object = format!("{WHAT}/{}", req.username);
        // Refuse before the costly hash when the caller may not create users at all.
        caller.require(&self.cache(), Need::Admin, &object)?;
        let pw = req.password.as_deref().unwrap_or_default();
        let user = StoredUser {
            username: req.username.clone(),
            first_name: req.first_name.clone().unwrap_or_default(),
            last_name: req.last_name.clone().unwrap_or_default(),
            disable: req.disable.unwrap_or(false),
            password_hash: self.hash_password(&object, pw).await?,
            stamp: new_stamp()?,
        };
        let key = keys::user(&user.username);
        let value = serde_json::to_vec(&user).map_err(internal)?;
        self.commit(&object, |cache| {
            let mut txn = Txn::new();
            txn.compares
                .extend(caller.require(cache, Need::Admin, &object)?);
            if cache.auth.users.contains_key(&user.username) {
                return Err(ApiError::conflict(
                    object.clone(),
                    Some("username"),
                    "exists already",
                ));
            }
            Ok(Plan {
                txn: txn.when_absent(key.clone()).put(key.clone(), value.clone()),
                result: (),
            })
        })
        .await?;
        Ok(UserView::from(&user))
    }

    pub async fn update_user(
        &self,
        caller: &Caller,
        name: &str,
        req: UserRequest,
    ) -> Result<UserView, ApiError> {
        let object = format!("{WHAT}/{name}");
        if !req.username.is_empty() && req.username != name {
            return Err(ApiError::bad_request(
                Some(object),
                Some("username"),
                format!(
                    "is '{}' but the path says '{name}'; a user cannot be renamed",
                    req.username
                ),
            ));
        }
        {
            let cache = self.cache();
            if !self.is_self(caller, &cache, name)? {
                caller.require(&cache, Need::Admin, &object)?;
            }
        }
        let new_hash = match req.password.as_deref() {
            Some(pw) => Some(self.hash_password(&object, pw).await?),
            None => None,
        };
        let new_stamp = new_stamp()?;
        let key = keys::user(name);
        let (view, _) = self
            .commit(&object, |cache| {
                let mut txn = Txn::new();
                let me = self.is_self(caller, cache, name)?;
                if me {
                    txn.compares
                        .extend(caller.require(cache, Need::Any, &object)?);
                    if req
                        .disable
                        .is_some_and(|d| d != cache.auth.users.get(name).is_some_and(|u| u.disable))
                    {
                        return Err(forbidden(
                            &object,
                            "a user cannot disable or enable themselves",
                        ));
                    }
                } else {
                    txn.compares
                        .extend(caller.require(cache, Need::Admin, &object)?);
                }
                let old = cache
                    .auth
                    .users
                    .get(name)
                    .ok_or_else(|| ApiError::not_found(object.clone()))?;
                let mut user = old.clone();
                if let Some(f) = &req.first_name {
                    user.first_name = f.clone();
                }
                if let Some(l) = &req.last_name {
                    user.last_name = l.clone();
                }
                if let Some(d) = req.disable {
                    user.disable = d;
                }
                if let Some(h) = &new_hash {
                    user.password_hash = h.clone();
                }
                // A new password or a disable ends the user's other sessions at once.
                if new_hash.is_some() || (user.disable && !old.disable) {
                    user.stamp = new_stamp.clone();
                }
                if user.disable && !old.disable {
                    txn.compares.extend(super::authorizations::admins_left(
                        cache,
                        &object,
                        |_| false,
                        Some(name),
                    )?);
                }
                // The caller's own session survives its own password change.
                if me && user.stamp != old.stamp {
                    if let Some(sid) = caller.session_id() {
                        if let Some(s) = cache.auth.sessions.get(sid) {
                            let s = Session {
                                stamp: user.stamp.clone(),
                                ..s.clone()
                            };
                            let skey = keys::session(sid);
                            txn = txn
                                .when_mod_revision(skey.clone(), cache.mod_revision(&skey))
                                .put(skey, serde_json::to_vec(&s).map_err(internal)?);
                        }
                    }
                }
                let value = serde_json::to_vec(&user).map_err(internal)?;
                Ok(Plan {
                    txn: txn
                        .when_mod_revision(key.clone(), cache.mod_revision(&key))
                        .put(key.clone(), value),
                    result: UserView::from(&user),
                })
            })
            .await?;
        Ok(view)
    }

    /// Deletes a user with its local authorizations and (up to a transaction's worth) its
    /// sessions; sessions beyond are already invalid (no user) and the sweeper removes them.
    pub async fn delete_user(&self, caller: &Caller, name: &str) -> Result<(), ApiError> {
        let object = format!("{WHAT}/{name}");
        let key = keys::user(name);
        self.commit(&object, |cache| {
            let mut txn = Txn::new();
            txn.compares
                .extend(caller.require(cache, Need::Admin, &object)?);
            if !cache.auth.users.contains_key(name) {
                return Err(ApiError::not_found(object.clone()));
            }
            txn.compares.extend(super::authorizations::admins_left(
                cache,
                &object,
                |a| a.local && a.principal_name == name,
                Some(name),
            )?);
            txn = txn
                .when_mod_revision(key.clone(), cache.mod_revision(&key))
                .delete(key.clone());
            for a in cache
                .auth
                .authorizations
                .values()
                .filter(|a| a.local && a.principal_name == name)
                .take(AUTHZ_PER_TXN)
            {
                txn = txn.delete(keys::authorization(&a.uuid));
            }
            for (sid, _) in cache
                .auth
                .sessions
                .iter()
                .filter(|(_, s)| s.local && s.user == name)
                .take(SESSIONS_PER_TXN)
            {
                txn = txn.delete(keys::session(sid));
            }
            Ok(Plan { txn, result: () })
        })
        .await?;
        tracing::info!(user = %name, by = %caller.name, "user deleted");
        Ok(())
    }
}

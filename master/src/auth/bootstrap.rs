//! What authentication needs before the first request: the token signing key (generated once
//! and kept in the store, so every master on one etcd signs and checks with the same key), the
//! first administrator (never a default password: from a file, or generated and shown once),
//! the agents' bootstrap secret, and the sweep of ended sessions (a leader-only job, see
//! `leader::jobs`).

use super::caller::now_secs;
use super::password;
use super::state::{RoleName, StoredAuthorization, StoredUser};
use crate::cache::Cache;
use crate::error::ApiError;
use crate::keys;
use crate::leader::jobs::{commit_fenced, Committed, JobError};
use crate::master::{Master, WRITE_ATTEMPTS};
use fabric_store::{Fence, Revision, Txn};
use std::path::{Path, PathBuf};

/// The first administrator's username.
pub const FIRST_ADMIN: &str = "admin";
/// Sessions deleted per sweep transaction (with the fence, within etcd's 128 compares).
const SWEEP_BATCH: usize = 100;
/// Shortest bootstrap secret accepted from a file.
const MIN_SECRET_LEN: usize = 16;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, None, None, e.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("writing {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("{0} holds a secret shorter than {MIN_SECRET_LEN} characters")]
    Short(PathBuf),
    #[error("generating a secret: {0}")]
    Random(#[from] password::PasswordError),
}

/// Reads a secret file's first line (trailing whitespace dropped).
pub fn read_secret(path: &Path) -> Result<String, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|e| SecretError::Read(path.into(), e))?;
    Ok(text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string())
}

/// The agents' bootstrap secret: from `path` when given, else from `<data_dir>/agent-secret`,
/// generated there (mode 0600) when absent. Returns the secret, the file and whether it was
/// generated now.
pub fn agent_secret(
    path: Option<&Path>,
    data_dir: &Path,
) -> Result<(Vec<u8>, PathBuf, bool), SecretError> {
    let (file, may_generate) = match path {
        Some(p) => (p.to_path_buf(), false),
        None => (data_dir.join("agent-secret"), true),
    };
    if may_generate && !file.exists() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(data_dir).map_err(|e| SecretError::Write(data_dir.into(), e))?;
        let secret = password::random_token(32)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .map_err(|e| SecretError::Write(file.clone(), e))?;
        writeln!(f, "{secret}").map_err(|e| SecretError::Write(file.clone(), e))?;
        return Ok((secret.into_bytes(), file, true));
    }
    let secret = read_secret(&file)?;
    if secret.len() < MIN_SECRET_LEN {
        return Err(SecretError::Short(file));
    }
    Ok((secret.into_bytes(), file, false))
}

impl Master {
    /// Makes sure the signing key exists (the first master to start creates it) and creates
    /// the first administrator when authentication is on and there is no user. Returns the
    /// first admin's password when it was generated here (the caller shows it once);
    /// `admin_password` is used instead when given.
    pub async fn ensure_auth(
        &self,
        admin_password: Option<String>,
    ) -> Result<Option<String>, ApiError> {
        self.ensure_signing_key().await?;
        if self.auth.settings.enabled {
            self.ensure_first_admin(admin_password).await
        } else {
            Ok(None)
        }
    }

    async fn ensure_signing_key(&self) -> Result<(), ApiError> {
        if self.cache().auth.signing_key.is_some() {
            return Ok(());
        }
        let key = password::random_token(32).map_err(internal)?;
        let txn = Txn::new()
            .when_absent(keys::SIGNING_KEY)
            .put(keys::SIGNING_KEY, key.into_bytes());
        let ops = txn.success.clone();
        let outcome = self.store.txn(txn).await?;
        if outcome.succeeded {
            self.apply_local(outcome.revision, &ops);
        } else {
            // Another master created it first: take theirs.
            if let Some(kv) = self.store.get(keys::SIGNING_KEY).await? {
                self.wait_for(kv.mod_revision).await;
            }
        }
        if self.cache().auth.signing_key.is_none() {
            return Err(internal("the store's token signing key is unreadable"));
        }
        Ok(())
    }

    async fn ensure_first_admin(&self, given: Option<String>) -> Result<Option<String>, ApiError> {
        if !self.cache().auth.users.is_empty() {
            if given.is_some() {
                tracing::info!("users exist already; --admin-password-file is not used");
            }
            return Ok(None);
        }
        let (pw, generated) = match given {
            Some(pw) => (pw, false),
            None => (password::random_token(12).map_err(internal)?, true),
        };
        let object = format!("local_users/{FIRST_ADMIN}");
        let hash = self.hash_password(&object, &pw).await?;
        let user = StoredUser {
            username: FIRST_ADMIN.into(),
            password_hash: hash,
            stamp: password::random_token(16).map_err(internal)?,
            ..StoredUser::default()
        };
        let grant = StoredAuthorization {
            uuid: super::authorizations::new_uuid()?,
            principal_name: FIRST_ADMIN.into(),
            local: true,
            role: RoleName::Admin,
            tenant_name: String::new(),
        };
        let ukey = keys::user(FIRST_ADMIN);
        let txn = Txn::new()
            .when_absent(ukey.clone())
            .put(ukey, serde_json::to_vec(&user).map_err(internal)?)
            .put(
                keys::authorization(&grant.uuid),
                serde_json::to_vec(&grant).map_err(internal)?,
            );
        let ops = txn.success.clone();
        let outcome = self.store.txn(txn).await?;
        if !outcome.succeeded {
            // Another master created the first admin at the same moment; its password holds.
            return Ok(None);
        }
        self.apply_local(outcome.revision, &ops);
        tracing::warn!(user = FIRST_ADMIN, "created the first administrator");
        Ok(generated.then_some(pw))
    }

    /// Deletes sessions that ended ([`ended_sessions`]), in fenced transactions (a leader-only
    /// job); returns how many went. A batch that lost a compare to a concurrent change is
    /// planned again, a bounded number of times.
    pub async fn sweep_sessions(&self, fence: &Fence) -> Result<usize, JobError> {
        let mut swept = 0;
        for _ in 0..WRITE_ATTEMPTS {
            let batch = ended_sessions(&self.cache(), now_secs(), SWEEP_BATCH);
            if batch.is_empty() {
                break;
            }
            let txn = batch.iter().fold(Txn::new(), |txn, (key, revision)| {
                txn.when_mod_revision(key.clone(), *revision)
                    .delete(key.clone())
            });
            match commit_fenced(self, fence, txn).await? {
                Committed::Done(_) => swept += batch.len(),
                // Another change to one of them (a logout, a sweep of an older term): look again.
                Committed::Conflict(revision) => self.wait_for(revision).await,
            }
        }
        Ok(swept)
    }
}

/// Sessions that ended, at most `limit`, as (key, revision to compare): expired, or whose local
/// user is gone or changed stamp (a password change, a disable).
pub fn ended_sessions(cache: &Cache, now: u64, limit: usize) -> Vec<(String, Revision)> {
    cache
        .auth
        .sessions
        .iter()
        .filter(|(_, s)| {
            s.expires <= now
                || (s.local
                    && cache
                        .auth
                        .users
                        .get(&s.user)
                        .is_none_or(|u| u.stamp != s.stamp))
        })
        .take(limit)
        .map(|(id, _)| {
            let key = keys::session(id);
            let revision = cache.mod_revision(&key);
            (key, revision)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::state::{Session, SessionKind};

    fn put<T: serde::Serialize>(cache: &mut Cache, revision: Revision, key: String, value: &T) {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        cache.apply(revision, &key, Some(&bytes));
    }

    fn session(user: &str, local: bool, stamp: &str, expires: u64) -> Session {
        Session {
            kind: SessionKind::User,
            user: user.into(),
            local,
            principals: Vec::new(),
            stamp: stamp.into(),
            host: String::new(),
            created: 0,
            expires,
        }
    }

    #[test]
    fn expired_and_orphaned_sessions_are_planned_with_their_revisions() {
        let mut cache = Cache::default();
        let user = StoredUser {
            username: "alice".into(),
            password_hash: String::new(),
            stamp: "s2".into(),
            ..StoredUser::default()
        };
        put(&mut cache, 1, keys::user("alice"), &user);
        put(
            &mut cache,
            2,
            keys::session("live"),
            &session("alice", true, "s2", 200),
        );
        put(
            &mut cache,
            3,
            keys::session("expired"),
            &session("alice", true, "s2", 100),
        );
        put(
            &mut cache,
            4,
            keys::session("old-stamp"),
            &session("alice", true, "s1", 200),
        );
        put(
            &mut cache,
            5,
            keys::session("no-user"),
            &session("bob", true, "s1", 200),
        );
        put(
            &mut cache,
            6,
            keys::session("ldap"),
            &session("cn=carol", false, "", 200),
        );
        let mut planned = ended_sessions(&cache, 100, 10);
        planned.sort();
        assert_eq!(
            planned,
            [
                (keys::session("expired"), 3),
                (keys::session("no-user"), 5),
                (keys::session("old-stamp"), 4),
            ]
        );
        assert_eq!(ended_sessions(&cache, 100, 2).len(), 2);
    }
}

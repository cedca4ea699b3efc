//! What authentication needs before the first request: the token signing key (generated once
//! and kept in the store, so every master on one etcd signs and checks with the same key), the
//! first administrator (never a default password: from a file, or generated and shown once),
//! the agents' bootstrap secret, and the sweeper of ended sessions.

use super::caller::now_secs;
use super::password;
use super::state::{RoleName, StoredAuthorization, StoredUser};
use crate::error::ApiError;
use crate::keys;
use crate::master::Master;
use fabric_store::{Op, Txn};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The first administrator's username.
pub const FIRST_ADMIN: &str = "admin";
/// How often ended sessions are swept from the store.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Sessions deleted per sweep transaction.
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
    /// Makes sure the signing key exists (the first master to start creates it), creates the
    /// first administrator when authentication is on and there is no user, and starts the
    /// sweeper. Returns the first admin's password when it was generated here (the caller
    /// shows it once); `admin_password` is used instead when given.
    pub async fn ensure_auth(
        self: &Arc<Self>,
        admin_password: Option<String>,
    ) -> Result<Option<String>, ApiError> {
        self.ensure_signing_key().await?;
        let generated = if self.auth.settings.enabled {
            self.ensure_first_admin(admin_password).await?
        } else {
            None
        };
        let master = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(m) = master.upgrade() else { return };
                if let Err(error) = m.sweep_sessions().await {
                    tracing::warn!(%error, "sweeping ended sessions failed; will retry");
                }
            }
        });
        Ok(generated)
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

    /// Deletes sessions that ended: expired, or whose local user is gone or changed stamp.
    pub async fn sweep_sessions(&self) -> Result<usize, ApiError> {
        let mut swept = 0;
        loop {
            let batch: Vec<(String, u64)> = {
                let cache = self.cache();
                let now = now_secs();
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
                    .take(SWEEP_BATCH)
                    .map(|(id, _)| {
                        let key = keys::session(id);
                        let rev = cache.mod_revision(&key);
                        (key, rev)
                    })
                    .collect()
            };
            if batch.is_empty() {
                return Ok(swept);
            }
            let mut txn = Txn::new();
            for (key, rev) in &batch {
                txn = txn.when_mod_revision(key.clone(), *rev).delete(key.clone());
            }
            let ops: Vec<Op> = txn.success.clone();
            let outcome = self.store.txn(txn).await?;
            if outcome.succeeded {
                self.apply_local(outcome.revision, &ops);
                swept += batch.len();
            } else {
                // Another master swept or changed one of them; look again.
                self.wait_for(outcome.revision).await;
            }
        }
    }
}

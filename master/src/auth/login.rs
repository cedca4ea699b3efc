//! Logging in and out, agents' registration, and turning a presented token into a
//! [`Caller`]. A login verifies the password (argon2id on the blocking pool; an unknown user
//! is verified against a dummy hash so both take as long), is throttled per username and per
//! source address after repeated failures, and commits a session; the token names it.

use super::caller::{now_secs, resolve, unauthorized, Caller, Need};
use super::password;
use super::state::{Principal, Session, SessionKind};
use super::token::{self, Claims, TokenError};
use crate::error::ApiError;
use crate::keys;
use crate::master::{Master, Plan};
use fabric_store::Txn;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, None, None, e.to_string())
}

/// Why a login or an agent registration gave no token.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Too many failures for this username (or host) or source address: retry after this.
    #[error("too many failed attempts; retry in {} s", retry_after_secs(*.0))]
    Throttled(Duration),
    #[error(transparent)]
    Refused(#[from] ApiError),
}

/// Whole seconds, rounded up, at least 1 (for `Retry-After`).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Who logged in: the session's user and its principals.
struct Verified {
    user: String,
    local: bool,
    principals: Vec<Principal>,
    stamp: String,
    /// The user record's revision the password was checked against.
    user_revision: u64,
}

impl Master {
    fn check_throttle(&self, keys: &[String]) -> Result<(), LoginError> {
        let now = Instant::now();
        for k in keys {
            self.auth
                .throttle
                .check(k, now)
                .map_err(LoginError::Throttled)?;
        }
        Ok(())
    }

    fn throttle_keys(kind: &str, name: &str, source: Option<IpAddr>) -> Vec<String> {
        let mut keys = vec![format!("{kind}:{name}")];
        if let Some(ip) = source {
            keys.push(format!("addr:{ip}"));
        }
        keys
    }

    /// Contiv's login: a token for a local (or LDAP) user.
    pub async fn login(
        &self,
        username: &str,
        pw: &str,
        source: Option<IpAddr>,
    ) -> Result<String, LoginError> {
        if username.is_empty() || pw.is_empty() {
            return Err(LoginError::Refused(ApiError::bad_request(
                Some("login".into()),
                None,
                "username and password must be provided",
            )));
        }
        let throttle = Self::throttle_keys("user", username, source);
        self.check_throttle(&throttle)?;
        let verified = match self.verify_local(username, pw).await? {
            Some(v) => Ok(Some(v)),
            None => self.verify_ldap(username, pw).await,
        };
        let Ok(Some(verified)) = verified else {
            // A login the directory could not answer counts as a failure too: a local
            // password checked while LDAP is down must not escape the throttle.
            let now = Instant::now();
            for k in &throttle {
                self.auth.throttle.fail(k, now);
            }
            tracing::warn!(%username, source = ?source, "failed login");
            return Err(match verified {
                Err(e) => e.into(),
                _ => unauthorized("invalid username or password").into(),
            });
        };
        self.auth.throttle.succeed(&throttle[0]);
        let ttl = self.auth.settings.token_ttl;
        let session = Session {
            kind: SessionKind::User,
            user: verified.user.clone(),
            local: verified.local,
            principals: verified.principals,
            stamp: verified.stamp,
            host: String::new(),
            created: now_secs(),
            expires: now_secs() + ttl.as_secs(),
        };
        let pinned = verified
            .local
            .then(|| (keys::user(&verified.user), verified.user_revision));
        Ok(self.open_session(session, pinned).await?)
    }

    /// `Some` when `username` is a local user, enabled, with this password.
    async fn verify_local(&self, username: &str, pw: &str) -> Result<Option<Verified>, ApiError> {
        let (record, revision) = {
            let cache = self.cache();
            (
                cache.auth.users.get(username).cloned(),
                cache.mod_revision(&keys::user(username)),
            )
        };
        let _slot = self.auth.hashing.acquire().await.map_err(internal)?;
        let pw = pw.to_string();
        let hash = record.as_ref().map(|u| u.password_hash.clone());
        let matched = tokio::task::spawn_blocking(move || match hash {
            Some(h) => password::verify(&pw, &h),
            None => {
                password::verify_dummy(&pw);
                false
            }
        })
        .await
        .map_err(internal)?;
        Ok(record.filter(|u| matched && !u.disable).map(|u| Verified {
            principals: vec![Principal {
                name: u.username.clone(),
                local: true,
            }],
            user: u.username,
            local: true,
            stamp: u.stamp,
            user_revision: revision,
        }))
    }

    /// LDAP is tried for users that are not local, or whose local password did not match (a
    /// name may exist in both, as in Contiv). `Ok(None)`: no LDAP configuration, or the
    /// directory refused the name or password (401, counted for throttling). A directory out
    /// of reach or not answering within `--ldap-timeout` is 503; one answering wrongly (the
    /// service account refused, StartTLS failed) is 502: neither depends on the username.
    async fn verify_ldap(&self, username: &str, pw: &str) -> Result<Option<Verified>, ApiError> {
        let Some(config) = self.cache().auth.ldap.clone() else {
            return Ok(None);
        };
        let limit = self.auth.settings.ldap_timeout;
        let attempt = async {
            let _slot = self.auth.ldap.acquire().await.map_err(internal)?;
            Ok::<_, ApiError>(super::ldap::authenticate(&config, username, pw).await)
        };
        let outcome = match tokio::time::timeout(limit, attempt).await {
            Ok(outcome) => outcome?,
            Err(_) => {
                tracing::warn!(server = %config.server, port = config.port, ?limit, "LDAP login timed out");
                return Err(ApiError::new(
                    503,
                    Some("login".into()),
                    None,
                    format!(
                        "the LDAP server {}:{} did not answer within {} ms; local users can still log in",
                        config.server,
                        config.port,
                        limit.as_millis()
                    ),
                ));
            }
        };
        match outcome {
            Ok(found) => {
                tracing::info!(%username, dn = %found.dn, groups = found.groups.len(), "LDAP login");
                Ok(Some(Verified {
                    principals: found
                        .groups
                        .iter()
                        .chain(std::iter::once(&found.dn))
                        .map(|g| Principal {
                            name: super::ldap::normalize_dn(g),
                            local: false,
                        })
                        .collect(),
                    user: found.dn,
                    local: false,
                    stamp: String::new(),
                    user_revision: 0,
                }))
            }
            Err(super::ldap::LdapError::Denied(why)) => {
                tracing::info!(%username, why, "LDAP login refused");
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(%username, %error, "LDAP login failed");
                let status = if error.is_unavailable() { 503 } else { 502 };
                Err(ApiError::new(
                    status,
                    Some("login".into()),
                    None,
                    format!("{error}; local users can still log in"),
                ))
            }
        }
    }

    /// Commits a session (with, for a local user, a compare that the user is as verified)
    /// and signs its token.
    async fn open_session(
        &self,
        session: Session,
        pinned_user: Option<(String, u64)>,
    ) -> Result<String, ApiError> {
        let key = self.cache().auth.signing_key.clone().ok_or_else(|| {
            ApiError::new(503, None, None, "the token signing key is not loaded yet")
        })?;
        let id = password::random_token(16).map_err(internal)?;
        let skey = keys::session(&id);
        let value = serde_json::to_vec(&session).map_err(internal)?;
        let mut txn = Txn::new().when_absent(skey.clone());
        if let Some((ukey, rev)) = pinned_user {
            txn = txn.when_mod_revision(ukey, rev);
        }
        let txn = txn.put(skey, value);
        let ops = txn.success.clone();
        let outcome = self.store.txn(txn).await?;
        if !outcome.succeeded {
            // The user changed (password, disabled, deleted) while the password was checked.
            return Err(unauthorized("the user changed while logging in; try again"));
        }
        self.apply_local(outcome.revision, &ops);
        let role = {
            let cache = self.cache();
            match resolve(&cache, &id, now_secs()).map(|g| g.role) {
                Ok(super::Role::Admin) => "admin",
                Ok(super::Role::Agent(_)) => "agent",
                _ => "ops",
            }
        };
        Ok(token::sign(
            &Claims {
                iss: token::ISSUER.into(),
                sid: id,
                username: session.user.clone(),
                role: role.into(),
                iat: session.created,
                exp: session.expires,
            },
            &key,
        ))
    }

    /// Ends the caller's session (the token it presented stops working everywhere).
    pub async fn logout(&self, caller: &Caller) -> Result<(), ApiError> {
        let Some(id) = caller.session_id() else {
            return Ok(());
        };
        let key = keys::session(id);
        let txn = Txn::new().delete(key);
        let ops = txn.success.clone();
        let outcome = self.store.txn(txn).await?;
        self.apply_local(outcome.revision, &ops);
        Ok(())
    }

    /// An agent's registration: the bootstrap secret buys a token for `host`.
    pub async fn register_agent(
        &self,
        host: &str,
        secret: &str,
        source: Option<IpAddr>,
    ) -> Result<String, LoginError> {
        fabric_model::fields::name("host", host, 256).map_err(|e| {
            ApiError::bad_request(Some("agent/register".into()), Some(e.field), e.reason)
        })?;
        let Some(expected) = self.auth.settings.agent_secret.clone() else {
            return Err(ApiError::new(
                503,
                Some("agent/register".into()),
                None,
                "this master has no agent bootstrap secret (--agent-secret-file)",
            )
            .into());
        };
        let throttle = Self::throttle_keys("host", host, source);
        self.check_throttle(&throttle)?;
        if !password::constant_time_eq(secret.as_bytes(), &expected) {
            let now = Instant::now();
            for k in &throttle {
                self.auth.throttle.fail(k, now);
            }
            tracing::warn!(%host, source = ?source, "agent registration with a wrong secret");
            return Err(unauthorized("wrong bootstrap secret").into());
        }
        self.auth.throttle.succeed(&throttle[0]);
        let ttl = self.auth.settings.agent_token_ttl;
        let session = Session {
            kind: SessionKind::Agent,
            user: host.to_string(),
            local: false,
            principals: Vec::new(),
            stamp: String::new(),
            host: host.to_string(),
            created: now_secs(),
            expires: now_secs() + ttl.as_secs(),
        };
        Ok(self.open_session(session, None).await?)
    }

    /// Ends every session of `host`'s agent (an admin revoking its credential); returns how
    /// many. The host gets a new token only by registering again with the bootstrap secret.
    pub async fn revoke_host(&self, caller: &Caller, host: &str) -> Result<usize, ApiError> {
        let object = format!("agent/hosts/{host}/credential");
        let mut revoked = 0;
        loop {
            let (n, _) = self
                .commit(&object, |cache| {
                    let mut txn = Txn::new();
                    txn.compares
                        .extend(caller.require(cache, Need::Admin, &object)?);
                    let mut n = 0;
                    for (id, _) in cache
                        .auth
                        .sessions
                        .iter()
                        .filter(|(_, s)| s.kind == SessionKind::Agent && s.host == host)
                        .take(100)
                    {
                        txn = txn.delete(keys::session(id));
                        n += 1;
                    }
                    Ok(Plan { txn, result: n })
                })
                .await?;
            revoked += n;
            if n < 100 {
                return Ok(revoked);
            }
        }
    }

    /// The caller a token stands for. Its session must exist: in this master's cache, or (just
    /// created on another master, not yet delivered by the watch) in the store, in which case
    /// the cache is brought up to it first.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        let Some(key) = self.cache().auth.signing_key.clone() else {
            return Err(unauthorized(
                "no token is valid yet: the master has no signing key",
            ));
        };
        let claims = token::verify(token, &key, now_secs()).map_err(|e| match e {
            TokenError::Expired => unauthorized("the token expired; log in again"),
            other => unauthorized(other.to_string()),
        })?;
        let known = self.cache().auth.sessions.contains_key(&claims.sid);
        if !known {
            match self.store.get(&keys::session(&claims.sid)).await? {
                Some(kv) => self.wait_for(kv.mod_revision).await,
                None => {
                    return Err(unauthorized(
                        "the session has ended (logged out or revoked); log in again",
                    ))
                }
            }
        }
        resolve(&self.cache(), &claims.sid, now_secs())?;
        let name = claims.username.clone();
        Ok(Caller::session(claims.sid, name))
    }
}

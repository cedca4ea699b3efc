//! What the store holds for authentication, as the cache keeps it: local users,
//! authorizations, sessions, the token signing key and the LDAP configuration. Fed by
//! `Cache::apply` like every other key, so every master on one etcd sees the same users,
//! grants and revocations as soon as its watch delivers them.

use crate::keys::AuthKey;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A local user as stored. Contiv's field names; the password itself is never stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUser {
    pub username: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub disable: bool,
    /// argon2id, PHC string.
    pub password_hash: String,
    /// Random; replaced when the user is created, changes password or is disabled. A
    /// session is valid only while it carries the user's current stamp, so those changes end
    /// every older session at once, and a user deleted and created again does not inherit
    /// the sessions of the first.
    pub stamp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Admin,
    Ops,
}

impl RoleName {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleName::Admin => "admin",
            RoleName::Ops => "ops",
        }
    }
}

/// A grant: a principal (a local user's name, or an LDAP group's DN) is `admin`, or `ops`
/// of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAuthorization {
    pub uuid: String,
    pub principal_name: String,
    pub local: bool,
    pub role: RoleName,
    #[serde(default)]
    pub tenant_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    User,
    Agent,
}

/// A principal a session acts as: a local user, or an LDAP group (or the LDAP user's DN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub name: String,
    pub local: bool,
}

/// A login or an agent registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub kind: SessionKind,
    /// The username (local), the user's DN (LDAP), or the host (agent).
    pub user: String,
    /// Whether `user` is a local user (whose record must exist with `stamp`).
    #[serde(default)]
    pub local: bool,
    #[serde(default)]
    pub principals: Vec<Principal>,
    #[serde(default)]
    pub stamp: String,
    /// The agent's host, for agent sessions.
    #[serde(default)]
    pub host: String,
    /// Unix seconds.
    pub created: u64,
    pub expires: u64,
}

/// Contiv's LDAP configuration shape (`/api/v1/auth_proxy/ldap_configuration/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapConfiguration {
    #[serde(default)]
    pub server: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub base_dn: String,
    #[serde(default)]
    pub service_account_dn: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_password: String,
    #[serde(default)]
    pub start_tls: bool,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default)]
    pub tls_cert_issued_to: String,
}

#[derive(Debug, Default)]
pub struct AuthState {
    pub users: BTreeMap<String, StoredUser>,
    pub authorizations: BTreeMap<String, StoredAuthorization>,
    pub sessions: HashMap<String, Session>,
    pub signing_key: Option<Vec<u8>>,
    pub ldap: Option<LdapConfiguration>,
}

fn decode<T: serde::de::DeserializeOwned>(key: &AuthKey, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(error) => {
            // Someone else's bug; the key is treated as absent (it grants nothing).
            tracing::warn!(?key, %error, "store holds an unreadable authentication record");
            None
        }
    }
}

impl AuthState {
    pub fn apply(&mut self, key: &AuthKey, value: Option<&[u8]>) {
        match key {
            AuthKey::User(name) => {
                match value.and_then(|v| decode::<StoredUser>(key, v)) {
                    Some(u) => self.users.insert(name.clone(), u),
                    None => self.users.remove(name),
                };
            }
            AuthKey::Authorization(id) => {
                match value.and_then(|v| decode::<StoredAuthorization>(key, v)) {
                    Some(a) => self.authorizations.insert(id.clone(), a),
                    None => self.authorizations.remove(id),
                };
            }
            AuthKey::Session(id) => {
                match value.and_then(|v| decode::<Session>(key, v)) {
                    Some(s) => self.sessions.insert(id.clone(), s),
                    None => self.sessions.remove(id),
                };
            }
            AuthKey::SigningKey => {
                self.signing_key = value
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(from_hex)
                    .filter(|k| k.len() >= 32);
            }
            AuthKey::Ldap => self.ldap = value.and_then(|v| decode(key, v)),
        }
    }

    /// The authorizations granted to any of `principals`, with their ids.
    pub fn grants_of<'a>(
        &'a self,
        principals: &'a [Principal],
    ) -> impl Iterator<Item = &'a StoredAuthorization> + 'a {
        self.authorizations.values().filter(move |a| {
            principals
                .iter()
                .any(|p| p.local == a.local && p.name == a.principal_name)
        })
    }
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

//! The command-line flags of authentication, and turning them into [`AuthSettings`].

use super::bootstrap::{agent_secret, read_secret, SecretError};
use super::{parse_duration, AuthSettings};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    On,
    Off,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// Authentication and authorization: `on` (tokens, roles; the default) or `off` (every
    /// caller is an admin, as before this existed; logged loudly, for a migration only).
    #[arg(long = "auth", value_enum, default_value = "on")]
    pub auth_mode: AuthMode,
    /// Lifetime of a user's token (e.g. 3600, 90m, 1h).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub token_ttl: Duration,
    /// Lifetime of an agent's token; agents register again before it ends.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub agent_token_ttl: Duration,
    /// Bound on one LDAP login (connect, StartTLS, binds, searches); past it the login is
    /// refused with 503 and the connection dropped, so a dead LDAP server cannot hang logins.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub ldap_timeout: Duration,
    /// File holding the first administrator's password (used only when no user exists yet);
    /// without it a password is generated and printed once on stderr.
    #[arg(long, env = "NETMASTER_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// File holding the secret agents present to register; without it one is generated into
    /// `<data-dir>/agent-secret` (mode 0600).
    #[arg(long, env = "NETMASTER_AGENT_SECRET_FILE")]
    pub agent_secret_file: Option<PathBuf>,
}

/// What the flags give: the settings, the first admin's password when a file gave one, and
/// the agent secret's file with whether it was generated now (to be logged).
pub struct Prepared {
    pub settings: AuthSettings,
    pub admin_password: Option<String>,
    pub agent_secret_file: Option<(PathBuf, bool)>,
}

impl AuthArgs {
    pub fn prepare(&self, data_dir: &Path) -> Result<Prepared, SecretError> {
        let enabled = self.auth_mode == AuthMode::On;
        let admin_password = match &self.admin_password_file {
            Some(p) => Some(read_secret(p)?),
            None => None,
        };
        // The secret is generated only when authentication is on; off, a given file still
        // lets agents register ahead of the switch.
        let secret = if enabled || self.agent_secret_file.is_some() {
            Some(agent_secret(self.agent_secret_file.as_deref(), data_dir)?)
        } else {
            None
        };
        Ok(Prepared {
            settings: AuthSettings {
                enabled,
                token_ttl: self.token_ttl,
                agent_token_ttl: self.agent_token_ttl,
                agent_secret: secret.as_ref().map(|(s, _, _)| s.clone()),
                ldap_timeout: self.ldap_timeout,
            },
            admin_password,
            agent_secret_file: secret.map(|(_, f, generated)| (f, generated)),
        })
    }
}

/// Tells the operator, loudly, what they must know: that authentication is off, where a
/// generated agent secret is, and a generated first-admin password (shown this once only, on
/// stderr, never in the log stream).
pub fn announce(prepared: &Prepared, generated_admin_password: Option<&str>) {
    if !prepared.settings.enabled {
        tracing::warn!(
            "AUTHENTICATION IS OFF (--auth off): every client can read and change everything; \
             start with --auth on"
        );
    }
    if let Some((file, generated)) = &prepared.agent_secret_file {
        if *generated {
            tracing::warn!(file = %file.display(), "generated the agents' bootstrap secret");
        } else {
            tracing::info!(file = %file.display(), "agents' bootstrap secret");
        }
    }
    if let Some(pw) = generated_admin_password {
        eprintln!(
            "\n\
             ************************************************************************\n\
             *  netmaster created the first administrator.                          *\n\
             *  username: admin                                                     *\n\
             *  password: {pw:<58}*\n\
             *  It is shown only this once: log in and change it                    *\n\
             *  (PATCH /api/v1/auth_proxy/local_users/admin/).                      *\n\
             ************************************************************************\n"
        );
    }
}

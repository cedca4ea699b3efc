//! Authentication and authorization inside the master (issue 18): local users with argon2id
//! hashes, optional LDAP, Contiv's authorizations (a principal is `admin`, or `ops` of a
//! tenant), short-lived signed tokens that name a revocable session, per-host agent
//! credentials, and the rules every route is held to.
//!
//! Layers: the HTTP layer turns a token into a [`Caller`] and passes it down; the core's reads
//! and writes check it against the cache (`caller`, `rules`), writes inside their own store
//! transaction. Nothing here calls the HTTP layer.

pub mod authorizations;
pub mod bootstrap;
pub mod caller;
pub mod cli;
pub mod ldap;
pub mod ldap_config;
pub mod login;
pub mod password;
pub mod rules;
pub mod state;
pub mod throttle;
pub mod token;
pub mod users;

pub use caller::{Caller, Grant, Need, Role};

use std::time::Duration;

/// Default lifetime of a user's token.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Default lifetime of an agent's token; an agent registers again (with the bootstrap secret)
/// to get a new one before it ends.
pub const DEFAULT_AGENT_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default bound on one LDAP login (connect, StartTLS, binds and searches together).
pub const DEFAULT_LDAP_TIMEOUT: Duration = Duration::from_secs(5);
/// LDAP logins in flight at once; more wait (within their own timeout).
const LDAP_LOGINS_AT_ONCE: usize = 16;

/// How the master authenticates, from the command line.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `--auth on`. Off: every caller is treated as an admin (the transition; loudly logged).
    pub enabled: bool,
    pub token_ttl: Duration,
    pub agent_token_ttl: Duration,
    /// The secret agents present to register; none means registration is refused.
    pub agent_secret: Option<Vec<u8>>,
    /// How long one LDAP login may take in all before it is refused with 503.
    pub ldap_timeout: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            enabled: false,
            token_ttl: DEFAULT_TOKEN_TTL,
            agent_token_ttl: DEFAULT_AGENT_TOKEN_TTL,
            agent_secret: None,
            ldap_timeout: DEFAULT_LDAP_TIMEOUT,
        }
    }
}

/// The master's authentication runtime: settings, failed-login counts, and the bound on
/// password verifications running at once.
#[derive(Debug)]
pub struct Auth {
    pub settings: AuthSettings,
    pub throttle: throttle::Throttle,
    /// argon2 verifications in flight (each uses 19 MiB and a core for tens of ms).
    pub hashing: tokio::sync::Semaphore,
    /// LDAP logins in flight (each holds a connection to the LDAP server).
    pub ldap: tokio::sync::Semaphore,
}

impl Auth {
    pub fn new(settings: AuthSettings) -> Auth {
        Auth {
            settings,
            throttle: Default::default(),
            hashing: tokio::sync::Semaphore::new(2),
            ldap: tokio::sync::Semaphore::new(LDAP_LOGINS_AT_ONCE),
        }
    }
}

/// Parses a duration as `90`, `90s`, `15m`, `1h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 3600, 90s, 15m, 1h, 7d)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (s, m, h or d)")),
    };
    let secs = n
        .checked_mul(scale)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("'{text}' is out of range"))?;
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(super::parse_duration("2d"), Ok(Duration::from_secs(172800)));
        assert!(super::parse_duration("0").is_err());
        assert!(super::parse_duration("1w").is_err());
        assert!(super::parse_duration("h").is_err());
    }
}

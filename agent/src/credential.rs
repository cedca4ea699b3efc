//! The agent's credential with the master (issue 18): the bootstrap secret it registers with and
//! the token the master gives it for its host. Pure bookkeeping, no I/O but reading the secret
//! file: when to register again (the token ends, or the master said 401), and which token a
//! request carries. `master_client.rs` does the HTTP.
//!
//! Neither the secret nor a token is ever printed: [`Secret`] and [`Token`] show as
//! `<redacted>` in `Debug`, and errors name the file, never its contents.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Shortest secret the master accepts from its own file; a shorter one here cannot be right.
const MIN_SECRET_LEN: usize = 16;

/// The master's bootstrap secret for agents.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading the master secret file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error(
        "the master secret file {0} holds fewer than {MIN_SECRET_LEN} characters on its first line"
    )]
    Short(PathBuf),
}

/// Reads the secret as the master reads its own copy: the first line, trailing whitespace
/// dropped (a file written by `echo` ends with a newline).
pub fn read_secret(path: &Path) -> Result<Secret, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|e| SecretError::Read(path.into(), e))?;
    let line = text.lines().next().unwrap_or_default().trim_end();
    if line.len() < MIN_SECRET_LEN {
        return Err(SecretError::Short(path.into()));
    }
    Ok(Secret(line.into()))
}

/// A token the master issued, with when to replace it.
#[derive(Clone)]
pub struct Token {
    value: Arc<str>,
    /// Which registration gave it (a 401 invalidates only the token that got it).
    pub generation: u64,
    /// Unix seconds after which the agent registers again before using it (None: only on 401).
    renew_after: Option<u64>,
    /// Unix seconds at which the master stops honouring it (None: unknown).
    expires: Option<u64>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("generation", &self.generation)
            .field("renew_after", &self.renew_after)
            .field("expires", &self.expires)
            .finish()
    }
}

impl Token {
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn needs_renewal(&self, now: u64) -> bool {
        self.renew_after.is_some_and(|t| now >= t)
    }

    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|t| now >= t)
    }
}

/// `iat` and `exp` of a JWT, read without checking the signature: only the master can check
/// it, and the agent uses them only to pick when to register again.
fn lifetime(token: &str) -> Option<(u64, u64)> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some((claims["iat"].as_u64()?, claims["exp"].as_u64()?))
}

/// The current token and its generation counter.
#[derive(Debug, Default)]
pub struct Credential {
    current: Option<Token>,
    generation: u64,
}

impl Credential {
    /// The token to send now, unless the agent must register first (none yet, the last one
    /// was refused, or it is in the last fifth of its life).
    pub fn usable(&self, now: u64) -> Option<Token> {
        self.current
            .as_ref()
            .filter(|t| !t.needs_renewal(now) && !t.expired(now))
            .cloned()
    }

    /// The token still in force while a renewal failed (the master honours it until it ends).
    pub fn fallback(&self, now: u64) -> Option<Token> {
        self.current.as_ref().filter(|t| !t.expired(now)).cloned()
    }

    /// Takes a token from a registration at `now`; renewed after four fifths of its lifetime
    /// (24 h by default: about 4.8 h before it ends, time enough for a master that is away).
    pub fn issued(&mut self, value: String, now: u64) -> Token {
        self.generation += 1;
        let (renew_after, expires) = match lifetime(&value) {
            Some((iat, exp)) if exp > iat => {
                // The master's clock may differ from ours: count from our `now`.
                let ttl = exp - iat;
                (Some(now + ttl - ttl / 5), Some(now + ttl))
            }
            _ => (None, None),
        };
        let token = Token {
            value: value.into(),
            generation: self.generation,
            renew_after,
            expires,
        };
        self.current = Some(token.clone());
        token
    }

    /// The master answered 401 to `generation`'s token: it is expired or revoked. A newer
    /// token (another request registered meanwhile) is kept.
    pub fn refused(&mut self, generation: u64) {
        if self
            .current
            .as_ref()
            .is_some_and(|t| t.generation == generation)
        {
            self.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(iat: u64, exp: u64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":"netmaster","sid":"s","iat":{iat},"exp":{exp}}}"#
        ));
        format!("{header}.{claims}.c2ln")
    }

    #[test]
    fn secret_file_first_line_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "0123456789abcdef0123  \nsecond line\n").unwrap();
        let secret = read_secret(&path).unwrap();
        assert_eq!(secret.expose(), "0123456789abcdef0123");
        assert!(!format!("{secret:?}").contains("0123"));

        std::fs::write(&path, "short\n").unwrap();
        let e = read_secret(&path).unwrap_err();
        assert!(matches!(e, SecretError::Short(_)), "{e}");
        assert!(!e.to_string().contains("short\n"), "{e}");
        let e = read_secret(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn renewal_at_four_fifths_of_the_lifetime_counted_from_our_clock() {
        let mut c = Credential::default();
        assert!(
            c.usable(0).is_none(),
            "nothing before the first registration"
        );
        // The master's clock is 1000 s ahead of ours: our own clock decides.
        let t = c.issued(jwt(2000, 2000 + 100), 1000);
        assert_eq!(t.generation, 1);
        assert!(!format!("{t:?}").contains(t.expose()));
        assert!(c.usable(1079).is_some());
        assert!(c.usable(1080).is_none(), "renew in the last fifth");
        assert!(
            c.fallback(1099).is_some(),
            "still honoured while renewal fails"
        );
        assert!(c.fallback(1100).is_none(), "ended");
    }

    #[test]
    fn a_refusal_drops_only_the_token_it_was_for() {
        let mut c = Credential::default();
        let first = c.issued(jwt(0, 86_400), 0);
        let second = c.issued(jwt(0, 86_400), 0);
        c.refused(first.generation);
        assert_eq!(c.usable(1).map(|t| t.generation), Some(second.generation));
        c.refused(second.generation);
        assert!(c.usable(1).is_none() && c.fallback(1).is_none());
    }

    #[test]
    fn an_opaque_token_is_kept_until_refused() {
        let mut c = Credential::default();
        c.issued("not-a-jwt".into(), 0);
        assert!(c.usable(u64::MAX - 1).is_some());
    }
}

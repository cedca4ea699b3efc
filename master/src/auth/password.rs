//! Passwords and secrets: argon2id hashes (the crate's defaults: 19 MiB, 2 passes, one lane,
//! as OWASP recommends), the policy a new password must meet, and random secrets.
//!
//! Verification is CPU-heavy on purpose; callers run it on the blocking pool, a few at a time
//! (see `auth::login`), so a flood of logins cannot starve the REST API.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;

pub const MIN_LEN: usize = 8;
/// Longer passwords are refused rather than hashed (a megabyte password is an attack).
pub const MAX_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be {MIN_LEN} to {MAX_LEN} characters")]
    Length,
    #[error("the system's random number generator failed: {0}")]
    Random(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Whether `password` may be set as a new password.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&n) {
        return Err(PasswordError::Length);
    }
    Ok(())
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) of a password.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `phc`. A stored hash that does not parse matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LEN * 4 {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Verifies against a hash of a random password, costing what a real verification costs, so
/// that an unknown user takes as long to refuse as a wrong password (no timing oracle).
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| {
        random_token(16)
            .ok()
            .and_then(|p| hash(&p).ok())
            .unwrap_or_default()
    });
    let _ = verify(password, phc);
}

/// `bytes` random bytes from the operating system.
pub fn random_bytes(bytes: usize) -> Result<Vec<u8>, PasswordError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| PasswordError::Random(e.to_string()))?;
    Ok(buf)
}

/// A random secret of `bytes` bytes as lowercase hex (ids, generated passwords, secrets).
pub fn random_token(bytes: usize) -> Result<String, PasswordError> {
    Ok(hex(&random_bytes(bytes)?))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_policy() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("correct hors", &h));
        assert!(!verify("correct horse", "not a hash"));
        assert_eq!(check_policy("short"), Err(PasswordError::Length));
        assert!(check_policy("long enough").is_ok());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(random_token(16).unwrap().len(), 32);
    }
}

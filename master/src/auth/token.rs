//! Tokens: compact JWTs signed with HMAC-SHA256 (HS256), so any JWT tool can read them and
//! Contiv's clients can treat them as the opaque string they always were. A token names a
//! session; it is honoured only while that session exists (see `auth::caller`), so signing
//! gives integrity and expiry, and the session gives revocation.
//!
//! Only `HS256` is accepted: the header's algorithm is checked, never trusted to choose one
//! (no `none`, no key confusion).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The header every token carries, base64url of `{"alg":"HS256","typ":"JWT"}`.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
pub const ISSUER: &str = "netmaster";
/// Tokens longer than this are refused before any decoding (a header cannot fill memory).
const MAX_TOKEN_LEN: usize = 4096;

/// What a token says. `username` and `role` are informational, for clients that show them
/// (Contiv's UI reads them); the master decides from the session and the current
/// authorizations, never from these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The session id: `/contiv/auth/sessions/<sid>`.
    pub sid: String,
    pub username: String,
    #[serde(default)]
    pub role: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signature does not verify (forged, altered, or signed with another key)")]
    BadSignature,
    #[error("the token expired")]
    Expired,
}

pub fn sign(claims: &Claims, key: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{HEADER}.{payload}");
    let signature =
        URL_SAFE_NO_PAD.encode(mac(key, signing_input.as_bytes()).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn mac(key: &[u8], data: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(data);
    mac
}

/// Checks the signature (in constant time) and the expiry against `now` (Unix seconds).
pub fn verify(token: &str, key: &[u8], now: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(TokenError::Malformed)?;
    if header["alg"] != "HS256" {
        return Err(TokenError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let signing_input = &token[..header_b64.len() + 1 + payload.len()];
    mac(key, signing_input.as_bytes())
        .verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(TokenError::Malformed)?;
    if claims.iss != ISSUER || claims.sid.is_empty() {
        return Err(TokenError::Malformed);
    }
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sid: "s1".into(),
            username: "alice".into(),
            role: "ops".into(),
            iat: 10,
            exp,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let key = b"k1";
        let t = sign(&claims(100), key);
        assert_eq!(verify(&t, key, 50), Ok(claims(100)));
        assert_eq!(verify(&t, key, 100), Err(TokenError::Expired));
        assert_eq!(verify(&t, b"k2", 50), Err(TokenError::BadSignature));
        // A changed payload with the old signature.
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(1 << 40)).unwrap());
        parts[1] = &forged;
        assert_eq!(
            verify(&parts.join("."), key, 50),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**", &format!("{t}x.y")] {
            assert_eq!(verify(bad, key, 50), Err(TokenError::Malformed), "{bad}");
        }
        // alg "none" with an empty signature.
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = t.split('.').nth(1).unwrap();
        assert_eq!(
            verify(&format!("{none}.{body}."), key, 50),
            Err(TokenError::Malformed)
        );
    }
}

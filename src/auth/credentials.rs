//! Turns an `Authorization` header into a verified [`Caller`].

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::token::{self, Claims, TokenError, VideoGrant};
use crate::config::Secret;

/// The configured API key → secret pairs.
#[derive(Clone)]
pub struct KeyRing {
    keys: BTreeMap<String, Secret>,
}

/// A caller whose credentials checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub api_key: String,
    /// Who owns what this caller creates: the token's `sub`, or the API key
    /// itself for HTTP Basic and for server tokens with an empty `sub`.
    pub user_id: String,
    pub credentials: Credentials,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    /// HTTP Basic `apiKey:apiSecret`: full rights for that key.
    ApiSecret,
    /// A bearer access token with its grants.
    Token(Box<Claims>),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error(
        "missing Authorization header (use `Bearer <access token>` or HTTP Basic `apiKey:apiSecret`)"
    )]
    Missing,
    #[error("unsupported Authorization scheme (use `Bearer` or `Basic`)")]
    UnsupportedScheme,
    #[error("malformed HTTP Basic credentials")]
    MalformedBasic,
    #[error("unknown API key or wrong secret")]
    BadApiSecret,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the webhook token's sha256 claim does not match the body")]
    BodyMismatch,
}

impl KeyRing {
    pub fn new(keys: BTreeMap<String, Secret>) -> KeyRing {
        KeyRing { keys }
    }

    pub fn secret(&self, api_key: &str) -> Option<&Secret> {
        self.keys.get(api_key)
    }

    /// Verifies a bare JWT (no scheme) against the secret of its issuer.
    pub fn verify_token(&self, token: &str) -> Result<Claims, TokenError> {
        let issuer = token::unverified_issuer(token)?;
        let secret = self
            .secret(&issuer)
            .ok_or_else(|| TokenError::UnknownIssuer(issuer.clone()))?;
        token::verify_with_secret(token, secret.expose())
    }

    /// Verifies a webhook in LiveKit's format: `authorization` is the JWT
    /// (a `Bearer ` prefix is tolerated) and its `sha256` claim must be the
    /// base64 SHA-256 of `body`.
    pub fn verify_webhook(
        &self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<Claims, AuthError> {
        use sha2::{Digest, Sha256};
        let token = authorization
            .map(|v| v.trim().trim_start_matches("Bearer ").trim())
            .filter(|v| !v.is_empty())
            .ok_or(AuthError::Missing)?;
        let claims = self.verify_token(token)?;
        let digest = STANDARD.encode(Sha256::digest(body));
        let signed = claims.sha256.as_deref().unwrap_or_default();
        if !constant_time_eq(signed.as_bytes(), digest.as_bytes()) {
            return Err(AuthError::BodyMismatch);
        }
        Ok(claims)
    }

    /// Checks an `Authorization` header value (`Bearer …` or `Basic …`).
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let header = header
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(AuthError::Missing)?;
        let (scheme, value) = header.split_once(' ').ok_or(AuthError::UnsupportedScheme)?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let claims = self.verify_token(value)?;
            let user_id = if claims.sub.is_empty() {
                claims.iss.clone()
            } else {
                claims.sub.clone()
            };
            Ok(Caller {
                api_key: claims.iss.clone(),
                user_id,
                credentials: Credentials::Token(Box::new(claims)),
            })
        } else if scheme.eq_ignore_ascii_case("basic") {
            self.authenticate_basic(value)
        } else {
            Err(AuthError::UnsupportedScheme)
        }
    }

    fn authenticate_basic(&self, encoded: &str) -> Result<Caller, AuthError> {
        let decoded = STANDARD
            .decode(encoded)
            .map_err(|_| AuthError::MalformedBasic)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::MalformedBasic)?;
        let (key, secret) = decoded.split_once(':').ok_or(AuthError::MalformedBasic)?;
        let expected = self.secret(key).ok_or(AuthError::BadApiSecret)?;
        if !constant_time_eq(expected.expose().as_bytes(), secret.as_bytes()) {
            return Err(AuthError::BadApiSecret);
        }
        Ok(Caller {
            api_key: key.to_string(),
            user_id: key.to_string(),
            credentials: Credentials::ApiSecret,
        })
    }
}

impl Caller {
    /// The token's video grant; API-secret callers hold every right.
    pub fn grant(&self) -> Option<&VideoGrant> {
        match &self.credentials {
            Credentials::ApiSecret => None,
            Credentials::Token(claims) => Some(&claims.video),
        }
    }

    /// May record (go live) in `room`: `roomRecord`, and the token's `room`
    /// (when it names one) must be that room.
    pub fn may_record(&self, room: Option<&str>) -> bool {
        match self.grant() {
            None => true,
            Some(grant) => {
                grant.room_record && (grant.room.is_empty() || room.is_none_or(|r| r == grant.room))
            }
        }
    }
}

/// Compares without an early exit, so timing does not reveal the matching prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

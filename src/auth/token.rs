//! LiveKit access tokens: HS256 JWTs whose issuer is an API key.
//! The claim names and defaults follow livekit/protocol `auth/grants.go`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `nbf`/`exp`, as LiveKit's verifier allows.
pub const LEEWAY_SECS: u64 = 60;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub iss: String,
    /// Participant identity, or the user a REST call acts for; may be empty.
    #[serde(default)]
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub video: VideoGrant,
    /// LiveKit's `roomConfig` (a `RoomConfiguration` in protojson): applied
    /// when this token's join creates the room (auto egress).
    #[serde(
        default,
        rename = "roomConfig",
        skip_serializing_if = "Option::is_none"
    )]
    pub room_config: Option<serde_json::Value>,
    /// Only in webhook tokens: base64 SHA-256 of the request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// LiveKit's `video` grant. `None` means "not given"; for `can_publish`,
/// `can_subscribe` and `can_publish_data` that means allowed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoGrant {
    #[serde(default, skip_serializing_if = "is_false")]
    pub room_create: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub room_list: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub room_record: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub room_admin: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub room_join: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish_data: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub can_publish_sources: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub can_update_own_metadata: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ingress_admin: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub hidden: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub recorder: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub agent: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl VideoGrant {
    pub fn can_publish(&self) -> bool {
        self.can_publish.unwrap_or(true)
    }

    pub fn can_subscribe(&self) -> bool {
        self.can_subscribe.unwrap_or(true)
    }

    pub fn can_publish_data(&self) -> bool {
        self.can_publish_data.unwrap_or(true)
    }

    /// Whether `source` (camera, microphone, screen_share, screen_share_audio)
    /// may be published; an empty list allows every source.
    pub fn can_publish_source(&self, source: &str) -> bool {
        self.can_publish()
            && (self.can_publish_sources.is_empty()
                || self.can_publish_sources.iter().any(|s| s == source))
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("token is not a JWT")]
    Malformed,
    #[error("token issuer `{0}` is not a known API key")]
    UnknownIssuer(String),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token is invalid: {0}")]
    Invalid(String),
}

/// Builds a token the way LiveKit's server SDKs do.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub claims: Claims,
}

impl AccessToken {
    pub fn new(api_key: &str, identity: &str, valid_for: Duration) -> AccessToken {
        let now = unix_now();
        AccessToken {
            claims: Claims {
                iss: api_key.to_string(),
                sub: identity.to_string(),
                nbf: Some(now),
                exp: now + valid_for.as_secs(),
                ..Claims::default()
            },
        }
    }

    pub fn with_grant(mut self, grant: VideoGrant) -> AccessToken {
        self.claims.video = grant;
        self
    }

    pub fn with_name(mut self, name: &str) -> AccessToken {
        self.claims.name = name.to_string();
        self
    }

    pub fn sign(&self, secret: &str) -> Result<String, TokenError> {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &self.claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}

/// Reads the `iss` claim without verifying, to choose the secret to verify with.
pub(crate) fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    #[derive(Deserialize)]
    struct IssuerOnly {
        #[serde(default)]
        iss: String,
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed)?;
    let claims: IssuerOnly = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    Ok(claims.iss)
}

/// Verifies signature (HS256 only), `exp` and `nbf` with [`LEEWAY_SECS`].
pub(crate) fn verify_with_secret(token: &str, secret: &str) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
        jsonwebtoken::errors::ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
        jsonwebtoken::errors::ErrorKind::InvalidToken
        | jsonwebtoken::errors::ErrorKind::Base64(_)
        | jsonwebtoken::errors::ErrorKind::Json(_)
        | jsonwebtoken::errors::ErrorKind::Utf8(_) => TokenError::Malformed,
        other => TokenError::Invalid(format!("{other:?}")),
    })
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

use super::*;
use crate::config::Secret;
use std::time::Duration;

/// Minted by LiveKit's Python server SDK (`livekit-api` 1.2.2):
/// `AccessToken("devkey", "secret").with_identity("alice").with_name("Alice")
///  .with_ttl(70 years).with_grants(VideoGrants(room_join=True, room="my-room", room_record=True))`.
/// Header `{"alg":"HS256","typ":"JWT"}`; claims exactly as the SDK emits them.
const LIVEKIT_PYTHON_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYW1lIjoiQWxpY2UiLCJ2aWRlbyI6eyJyb29tUmVjb3JkIjp0cnVlLCJyb29tSm9pbiI6dHJ1ZSwicm9vbSI6Im15LXJvb20iLCJjYW5QdWJsaXNoIjp0cnVlLCJjYW5TdWJzY3JpYmUiOnRydWUsImNhblB1Ymxpc2hEYXRhIjp0cnVlfSwic3ViIjoiYWxpY2UiLCJpc3MiOiJkZXZrZXkiLCJuYmYiOjE3OTUyNDI3NzIsImV4cCI6NDAwMjc2Mjc3Mn0.1adNQIr9C19Pr1EFNXWuDBcJqXjYneMoLieUSCoPbSA";

/// The same SDK's server-API token: empty `sub`, only `roomRecord`.
const LIVEKIT_PYTHON_SERVER_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ2aWRlbyI6eyJyb29tUmVjb3JkIjp0cnVlLCJjYW5QdWJsaXNoIjp0cnVlLCJjYW5TdWJzY3JpYmUiOnRydWUsImNhblB1Ymxpc2hEYXRhIjp0cnVlfSwic3ViIjoiIiwiaXNzIjoiZGV2a2V5IiwibmJmIjoxNzk1MjQyNzc1LCJleHAiOjQwMDI3NjI3NzV9.By03CvedTqRveovHzS2SQMBMCrmTJTuzkMOC8KpHwbk";

fn ring() -> KeyRing {
    KeyRing::new(
        [
            ("devkey".to_string(), Secret::new("secret")),
            ("other".to_string(), Secret::new("other-secret")),
        ]
        .into(),
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn livekit_sdk_token_verifies_with_all_claims() {
    let caller = ring()
        .authenticate(Some(&bearer(LIVEKIT_PYTHON_TOKEN)))
        .unwrap();
    assert_eq!(caller.api_key, "devkey");
    assert_eq!(caller.user_id, "alice");
    let Credentials::Token(claims) = &caller.credentials else {
        panic!("expected token credentials");
    };
    assert_eq!(claims.name, "Alice");
    assert_eq!(claims.video.room, "my-room");
    assert!(claims.video.room_join && claims.video.room_record);
    assert!(claims.video.can_publish() && claims.video.can_subscribe());
    assert!(caller.may_record(Some("my-room")));
    assert!(!caller.may_record(Some("another-room")));
}

#[test]
fn server_sdk_token_with_empty_sub_acts_as_the_api_key() {
    let caller = ring()
        .authenticate(Some(&bearer(LIVEKIT_PYTHON_SERVER_TOKEN)))
        .unwrap();
    assert_eq!(caller.user_id, "devkey");
    assert!(caller.may_record(Some("any-room")));
}

#[test]
fn header_without_typ_is_accepted() {
    // livekit-server-sdk for Node signs with `{"alg":"HS256"}` only.
    let claims = AccessToken::new("devkey", "bob", Duration::from_secs(600)).claims;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = None;
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert!(!token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6"));
    assert_eq!(ring().verify_token(&token).unwrap().sub, "bob");
}

#[test]
fn minted_token_round_trips() {
    let grant = VideoGrant {
        room_join: true,
        room: "r".into(),
        can_publish: Some(false),
        ..VideoGrant::default()
    };
    let token = AccessToken::new("devkey", "carol", Duration::from_secs(60))
        .with_grant(grant.clone())
        .with_name("Carol")
        .sign("secret")
        .unwrap();
    let claims = ring().verify_token(&token).unwrap();
    assert_eq!(claims.video, grant);
    assert!(!claims.video.can_publish());
    assert!(!claims.video.can_publish_source("camera"));
    assert!(
        claims.video.can_subscribe(),
        "absent canSubscribe means true"
    );
}

#[test]
fn publish_sources_restrict_publishing() {
    let grant = VideoGrant {
        can_publish_sources: vec!["microphone".into()],
        ..VideoGrant::default()
    };
    assert!(grant.can_publish_source("microphone"));
    assert!(!grant.can_publish_source("camera"));
}

fn token_with(secret: &str, issuer: &str, nbf: u64, exp: u64) -> String {
    let mut token = AccessToken::new(issuer, "x", Duration::ZERO);
    token.claims.nbf = Some(nbf);
    token.claims.exp = exp;
    token.sign(secret).unwrap()
}

#[test]
fn rejects_bad_tokens() {
    let now = token::unix_now();
    let cases = [
        (
            token_with("wrong", "devkey", now, now + 600),
            AuthError::Token(TokenError::BadSignature),
        ),
        (
            token_with("secret", "nobody", now, now + 600),
            AuthError::Token(TokenError::UnknownIssuer("nobody".into())),
        ),
        (
            token_with("secret", "devkey", now - 900, now - 300),
            AuthError::Token(TokenError::Expired),
        ),
        (
            token_with("secret", "devkey", now + 300, now + 900),
            AuthError::Token(TokenError::NotYetValid),
        ),
        (
            "not.a.jwt".to_string(),
            AuthError::Token(TokenError::Malformed),
        ),
        ("abc".to_string(), AuthError::Token(TokenError::Malformed)),
    ];
    for (token, expected) in cases {
        assert_eq!(
            ring().authenticate(Some(&bearer(&token))),
            Err(expected),
            "{token}"
        );
    }
}

#[test]
fn leeway_is_sixty_seconds() {
    let now = token::unix_now();
    let just_expired = token_with("secret", "devkey", now - 600, now - 30);
    assert!(ring().verify_token(&just_expired).is_ok());
    let not_yet = token_with("secret", "devkey", now + 30, now + 600);
    assert!(ring().verify_token(&not_yet).is_ok());
}

#[test]
fn other_algorithms_are_refused() {
    let claims = AccessToken::new("devkey", "x", Duration::from_secs(600)).claims;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert!(ring().verify_token(&token).is_err());
}

#[test]
fn basic_auth_with_api_secret() {
    use base64::Engine;
    let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let ok = ring()
        .authenticate(Some(&format!("Basic {}", encode("other:other-secret"))))
        .unwrap();
    assert_eq!(ok.user_id, "other");
    assert!(ok.may_record(Some("anything")));
    for bad in ["other:wrong", "nobody:other-secret", "no-colon"] {
        assert!(
            ring()
                .authenticate(Some(&format!("Basic {}", encode(bad))))
                .is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        ring().authenticate(Some("Basic !!!")),
        Err(AuthError::MalformedBasic)
    );
}

#[test]
fn missing_or_odd_headers() {
    assert_eq!(ring().authenticate(None), Err(AuthError::Missing));
    assert_eq!(ring().authenticate(Some("  ")), Err(AuthError::Missing));
    assert_eq!(
        ring().authenticate(Some("Digest abc")),
        Err(AuthError::UnsupportedScheme)
    );
    assert_eq!(
        ring().authenticate(Some("token")),
        Err(AuthError::UnsupportedScheme)
    );
}

#[test]
fn token_without_record_grant_may_not_record() {
    let token = AccessToken::new("devkey", "dave", Duration::from_secs(60))
        .with_grant(VideoGrant {
            room_join: true,
            room: "r".into(),
            ..VideoGrant::default()
        })
        .sign("secret")
        .unwrap();
    let caller = ring().authenticate(Some(&bearer(&token))).unwrap();
    assert!(!caller.may_record(Some("r")));
}

#[test]
fn constant_time_eq_compares_whole_values() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
}

#[test]
fn webhook_tokens_sign_the_body() {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let body = br#"{"event":"room_finished","room":{"name":"r"}}"#;
    let mut token = AccessToken::new("devkey", "", Duration::from_secs(300));
    token.claims.sha256 =
        Some(base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body)));
    let jwt = token.sign("secret").unwrap();
    assert!(ring().verify_webhook(Some(&jwt), body).is_ok());
    assert!(
        ring()
            .verify_webhook(Some(&format!("Bearer {jwt}")), body)
            .is_ok()
    );
    assert_eq!(
        ring().verify_webhook(Some(&jwt), b"{}"),
        Err(AuthError::BodyMismatch)
    );
    assert_eq!(ring().verify_webhook(None, body), Err(AuthError::Missing));
    let unsigned = AccessToken::new("devkey", "", Duration::from_secs(300))
        .sign("secret")
        .unwrap();
    assert_eq!(
        ring().verify_webhook(Some(&unsigned), body),
        Err(AuthError::BodyMismatch)
    );
}

//! Mux webhooks: signature verification, signing, and event types.
//!
//! Mux signs each delivery with the endpoint's signing secret and sends
//! `Mux-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`; the HMAC covers
//! `"{t}.{raw body}"`. Several `v1` entries may appear (any may match);
//! other schemes are ignored. A delivery is accepted within five minutes of
//! `t`, either way.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::error::describe_json_error;
use super::types::{
    AssetErrors, AssetStatus, LiveStreamStatus, PlaybackId, null_as_default, string_or_number,
};

/// Name of the signature header (HTTP header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "mux-signature";

/// Largest accepted distance between the signature's timestamp and now.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// Why a webhook signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Mux-Signature header is missing")]
    MissingHeader,
    #[error("the Mux-Signature header is malformed: {0}")]
    MalformedHeader(&'static str),
    #[error("the webhook timestamp is {age_secs} s old, more than the 300 s allowed")]
    Expired { age_secs: u64 },
    #[error("the webhook timestamp is {ahead_secs} s in the future, more than the 300 s allowed")]
    FromTheFuture { ahead_secs: u64 },
    #[error("no v1 signature in the Mux-Signature header matches the body")]
    NoMatchingSignature,
}

/// Why a webhook delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The body is not a Mux webhook event.
    #[error("the webhook body is not a Mux event: {0}")]
    Parse(String),
}

type HmacSha256 = Hmac<Sha256>;

fn mac_for(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Mux-Signature` value for `body` signed with `secret` at `timestamp`
/// (Unix seconds): `t=<timestamp>,v1=<hex>`. For tests and local stand-ins.
pub fn sign(secret: &str, body: &[u8], timestamp: u64) -> String {
    let t = timestamp.to_string();
    let digest = mac_for(secret, &t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(digest))
}

/// Checks a delivery: `header` is the `Mux-Signature` value (if present),
/// `body` the raw request body exactly as received, `now` the current time.
///
/// The signature is checked first (in constant time per candidate), then
/// the timestamp, so a forged request always reports `NoMatchingSignature`.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::MissingHeader)?;
    let mut timestamp: Option<&str> = None;
    let mut signatures: Vec<&str> = Vec::new();
    for element in header.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (key, value) = element
            .split_once('=')
            .ok_or(SignatureError::MalformedHeader("an element has no '='"))?;
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::MalformedHeader("more than one timestamp"));
                }
                let value = value.trim();
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SignatureError::MalformedHeader(
                        "the timestamp is not a number",
                    ));
                }
                timestamp = Some(value);
            }
            "v1" => signatures.push(value.trim()),
            _ => {} // other schemes
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader("no timestamp (t=)"))?;
    let seconds: u64 = timestamp
        .parse()
        .map_err(|_| SignatureError::MalformedHeader("the timestamp is out of range"))?;
    if signatures.is_empty() {
        return Err(SignatureError::MalformedHeader("no v1 signature"));
    }

    let mac = mac_for(secret, timestamp, body);
    let mut matched = false;
    for signature in signatures {
        // A value that is not hex cannot match; other entries still may.
        if let Ok(bytes) = hex::decode(signature) {
            matched |= mac.clone().verify_slice(&bytes).is_ok();
        }
    }
    if !matched {
        return Err(SignatureError::NoMatchingSignature);
    }

    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tolerance = TOLERANCE.as_secs();
    if now > seconds.saturating_add(tolerance) {
        return Err(SignatureError::Expired {
            age_secs: now - seconds,
        });
    }
    if seconds > now.saturating_add(tolerance) {
        return Err(SignatureError::FromTheFuture {
            ahead_secs: seconds - now,
        });
    }
    Ok(())
}

/// Verifies a delivery (see [`verify`]), then parses its body.
pub fn verify_and_parse(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<WebhookEvent, WebhookError> {
    verify(secret, header, body, now)?;
    WebhookEvent::parse(body)
}

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookObject {
    /// `live_stream`, `asset`, `simulcast_target`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// The Mux environment that sent the event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct WebhookEnvironment {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// A Mux webhook event as delivered:
/// `{"type","object":{"type","id"},"id","environment","data","created_at","attempts",…}`.
///
/// `Debug` hides `stream_key` and `srt_passphrase` values inside `data`.
#[derive(Clone, PartialEq, Deserialize)]
pub struct WebhookEvent {
    /// The event's id (a UUID); the same on redelivery, so use it to drop duplicates.
    pub id: String,
    /// `video.live_stream.active`, `video.asset.ready`, …
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened, as Mux sends it (an RFC 3339 string).
    #[serde(default, deserialize_with = "text_or_empty")]
    pub created_at: String,
    pub object: WebhookObject,
    /// The object's state: a live stream or asset as in the API (with
    /// occasional differences, e.g. numeric `created_at`).
    #[serde(default)]
    pub data: Value,
    #[serde(default)]
    pub environment: Option<WebhookEnvironment>,
    /// Earlier delivery attempts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attempts: Vec<Value>,
    #[serde(default)]
    pub accessor_source: Option<String>,
    #[serde(default)]
    pub accessor: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

fn text_or_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(string_or_number(d)?.unwrap_or_default())
}

const SECRET_KEYS: [&str; 2] = ["stream_key", "srt_passphrase"];

/// `value` with stream keys and SRT passphrases replaced, at any depth.
pub fn redacted(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if SECRET_KEYS.contains(&k.as_str()) && !v.is_null() {
                        Value::String("[redacted]".into())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

impl std::fmt::Debug for WebhookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEvent")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("created_at", &self.created_at)
            .field("object", &self.object)
            .field("data", &redacted(&self.data))
            .field("environment", &self.environment)
            .field("attempts", &self.attempts.len())
            .field("accessor_source", &self.accessor_source)
            .field("accessor", &self.accessor)
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl WebhookEvent {
    /// Parses a webhook body. Any event type parses.
    pub fn parse(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
        serde_json::from_slice(body).map_err(|e| WebhookError::Parse(describe_json_error(&e)))
    }

    /// The typed view of this event (see [`MuxEvent`]).
    pub fn typed(&self) -> MuxEvent {
        MuxEvent::from_event(self)
    }
}

/// What a live stream event says happened to the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveStreamEventStatus {
    /// `video.live_stream.connected`: an encoder connected.
    Connected,
    /// `video.live_stream.recording`: media arrived; recording started.
    Recording,
    /// `video.live_stream.active`: the stream is playable.
    Active,
    /// `video.live_stream.disconnected`: the encoder went away (the reconnect window runs).
    Disconnected,
    /// `video.live_stream.idle`: the broadcast ended.
    Idle,
}

/// Which asset event this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetEventKind {
    /// `video.asset.created`
    Created,
    /// `video.asset.live_stream_completed`: the live recording is finished.
    LiveStreamCompleted,
    /// `video.asset.ready`
    Ready,
    /// `video.asset.errored`
    Errored,
}

/// A live stream status change.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStreamEvent {
    pub live_stream_id: String,
    pub status: LiveStreamEventStatus,
    /// The live stream's `passthrough` (onair's livestream id).
    pub passthrough: Option<String>,
    /// The resource's own `status` in `data` (`active`, `idle`, `disabled`).
    pub stream_status: Option<LiveStreamStatus>,
    pub active_asset_id: Option<String>,
}

/// An asset event.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetEvent {
    pub kind: AssetEventKind,
    pub asset_id: String,
    pub status: Option<AssetStatus>,
    /// The live stream the asset was recorded from.
    pub live_stream_id: Option<String>,
    /// The asset's `passthrough` (from the live stream's `new_asset_settings`).
    pub passthrough: Option<String>,
    pub playback_ids: Vec<PlaybackId>,
    /// Seconds.
    pub duration: Option<f64>,
    pub errors: Option<AssetErrors>,
}

/// The events onair acts on; everything else is `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum MuxEvent {
    LiveStream(LiveStreamEvent),
    Asset(AssetEvent),
    Other {
        event_type: String,
        object_type: String,
        object_id: String,
    },
}

fn text(data: &Value, key: &str) -> Option<String> {
    data.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl MuxEvent {
    fn from_event(event: &WebhookEvent) -> MuxEvent {
        let data = &event.data;
        let id = text(data, "id").unwrap_or_else(|| event.object.id.clone());
        let live = match event.event_type.as_str() {
            "video.live_stream.connected" => Some(LiveStreamEventStatus::Connected),
            "video.live_stream.recording" => Some(LiveStreamEventStatus::Recording),
            "video.live_stream.active" => Some(LiveStreamEventStatus::Active),
            "video.live_stream.disconnected" => Some(LiveStreamEventStatus::Disconnected),
            "video.live_stream.idle" => Some(LiveStreamEventStatus::Idle),
            _ => None,
        };
        if let Some(status) = live {
            return MuxEvent::LiveStream(LiveStreamEvent {
                live_stream_id: id,
                status,
                passthrough: text(data, "passthrough"),
                stream_status: data
                    .get("status")
                    .and_then(|s| LiveStreamStatus::deserialize(s).ok()),
                active_asset_id: text(data, "active_asset_id"),
            });
        }
        let asset = match event.event_type.as_str() {
            "video.asset.created" => Some(AssetEventKind::Created),
            "video.asset.live_stream_completed" => Some(AssetEventKind::LiveStreamCompleted),
            "video.asset.ready" => Some(AssetEventKind::Ready),
            "video.asset.errored" => Some(AssetEventKind::Errored),
            _ => None,
        };
        if let Some(kind) = asset {
            return MuxEvent::Asset(AssetEvent {
                kind,
                asset_id: id,
                status: data
                    .get("status")
                    .and_then(|s| AssetStatus::deserialize(s).ok()),
                live_stream_id: text(data, "live_stream_id"),
                passthrough: text(data, "passthrough"),
                playback_ids: data
                    .get("playback_ids")
                    .and_then(Value::as_array)
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|p| PlaybackId::deserialize(p).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
                duration: data.get("duration").and_then(Value::as_f64),
                errors: data
                    .get("errors")
                    .filter(|e| !e.is_null())
                    .and_then(|e| AssetErrors::deserialize(e).ok()),
            });
        }
        MuxEvent::Other {
            event_type: event.event_type.clone(),
            object_type: event.object.kind.clone(),
            object_id: event.object.id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec-onair-test";
    const BODY: &[u8] = br#"{"type":"video.asset.ready","id":"e1"}"#;
    const T: u64 = 1_714_998_896;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn valid_signature() {
        let header = sign(SECRET, BODY, T);
        assert!(header.starts_with(&format!("t={T},v1=")));
        assert_eq!(verify(SECRET, Some(&header), BODY, at(T)), Ok(()));
        assert_eq!(verify(SECRET, Some(&header), BODY, at(T + 300)), Ok(()));
        assert_eq!(verify(SECRET, Some(&header), BODY, at(T - 300)), Ok(()));
    }

    #[test]
    fn tampered_body() {
        let header = sign(SECRET, BODY, T);
        let tampered = br#"{"type":"video.asset.ready","id":"e2"}"#;
        assert_eq!(
            verify(SECRET, Some(&header), tampered, at(T)),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn tampered_timestamp() {
        let header = sign(SECRET, BODY, T).replacen(&T.to_string(), &(T + 1).to_string(), 1);
        assert_eq!(
            verify(SECRET, Some(&header), BODY, at(T)),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn wrong_secret() {
        let header = sign("some-other-secret", BODY, T);
        assert_eq!(
            verify(SECRET, Some(&header), BODY, at(T)),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn expired_timestamp() {
        let header = sign(SECRET, BODY, T);
        assert_eq!(
            verify(SECRET, Some(&header), BODY, at(T + 301)),
            Err(SignatureError::Expired { age_secs: 301 })
        );
        assert_eq!(
            verify(SECRET, Some(&header), BODY, at(T + 3600)),
            Err(SignatureError::Expired { age_secs: 3600 })
        );
    }

    #[test]
    fn timestamp_too_far_in_the_future() {
        let header = sign(SECRET, BODY, T);
        assert_eq!(
            verify(SECRET, Some(&header), BODY, at(T - 301)),
            Err(SignatureError::FromTheFuture { ahead_secs: 301 })
        );
    }

    #[test]
    fn second_v1_matches() {
        let good = sign(SECRET, BODY, T);
        let good_hex = good.split_once(",v1=").unwrap().1;
        let wrong_hex = sign("rotated-away", BODY, T)
            .split_once(",v1=")
            .unwrap()
            .1
            .to_owned();
        let header = format!("t={T},v1={wrong_hex},v1={good_hex}");
        assert_eq!(verify(SECRET, Some(&header), BODY, at(T)), Ok(()));
        // Also with a non-hex first value, spaces, and another scheme.
        let header = format!("t={T}, v1=invalid-sig, v0=abc, v1={good_hex}");
        assert_eq!(verify(SECRET, Some(&header), BODY, at(T)), Ok(()));
        // Only wrong ones: refused.
        let header = format!("t={T},v1={wrong_hex},v1=00");
        assert_eq!(
            verify(SECRET, Some(&header), BODY, at(T)),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn missing_header() {
        assert_eq!(
            verify(SECRET, None, BODY, at(T)),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            verify(SECRET, Some("  "), BODY, at(T)),
            Err(SignatureError::MissingHeader)
        );
    }

    #[test]
    fn malformed_headers() {
        let good_hex = sign(SECRET, BODY, T)
            .split_once(",v1=")
            .unwrap()
            .1
            .to_owned();
        for header in [
            good_hex.clone(),                                   // no '='
            format!("v1={good_hex}"),                           // no timestamp
            format!("t=,v1={good_hex}"),                        // empty timestamp
            format!("t=abc,v1={good_hex}"),                     // not a number
            format!("t=+{T},v1={good_hex}"),                    // sign
            format!("t=-{T},v1={good_hex}"),                    // negative
            format!("t=1,t={T},v1={good_hex}"),                 // two timestamps
            format!("t={T}"),                                   // no v1
            format!("t={T},v2={good_hex}"),                     // only another scheme
            format!("t=99999999999999999999999,v1={good_hex}"), // out of range
        ] {
            assert!(
                matches!(
                    verify(SECRET, Some(&header), BODY, at(T)),
                    Err(SignatureError::MalformedHeader(_))
                ),
                "{header}"
            );
        }
    }

    /// Mux's own test vector (mux-node-sdk webhooks test), also reproduced
    /// with Python: `hmac.new(b"SuperSecret123", b'1565125718.{"test":"body"}', sha256)`.
    #[test]
    fn mux_sdk_vector() {
        let header =
            "t=1565125718,v1=854ece4c22acef7c66b57d4e504153bc512595e8e9c772ece2a68150548c19a7";
        assert_eq!(
            verify(
                "SuperSecret123",
                Some(header),
                br#"{"test":"body"}"#,
                at(1_565_125_718)
            ),
            Ok(())
        );
        assert_eq!(
            sign("SuperSecret123", br#"{"test":"body"}"#, 1_565_125_718),
            header
        );
        // Six minutes later it is refused (as in the SDK's test).
        assert_eq!(
            verify(
                "SuperSecret123",
                Some(header),
                br#"{"test":"body"}"#,
                at(1_565_125_718 + 360)
            ),
            Err(SignatureError::Expired { age_secs: 360 })
        );
    }

    /// Computed independently with Python 3:
    /// `hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()`.
    const FIXTURE_SECRET: &str = "whsec-onair-fixture-7Qm3";
    const FIXTURE_BODY: &str = r#"{"type":"video.live_stream.active","object":{"type":"live_stream","id":"XmX8hS9kM2b02fQxk00vAiDkqN8HnRvL7"},"id":"3a56ac3d-33da-4366-855b-f592d898409d","data":{"id":"XmX8hS9kM2b02fQxk00vAiDkqN8HnRvL7","status":"active","passthrough":"9d0b6c2e-7c1f-4a0e-9c55-2f1d0e8a4b11"},"created_at":"2024-05-06T12:34:56.789000Z"}"#;
    const FIXTURE_HEADER: &str =
        "t=1714998896,v1=310401ff6ca0ba3900671fa1d99c427d9179879e3932879187b3d98acc1e56cb";

    #[test]
    fn python_fixture() {
        assert_eq!(
            verify(
                FIXTURE_SECRET,
                Some(FIXTURE_HEADER),
                FIXTURE_BODY.as_bytes(),
                at(1_714_998_896 + 10)
            ),
            Ok(())
        );
        assert_eq!(
            sign(FIXTURE_SECRET, FIXTURE_BODY.as_bytes(), 1_714_998_896),
            FIXTURE_HEADER
        );
        let event = verify_and_parse(
            FIXTURE_SECRET,
            Some(FIXTURE_HEADER),
            FIXTURE_BODY.as_bytes(),
            at(1_714_998_896),
        )
        .unwrap();
        assert_eq!(
            event.typed(),
            MuxEvent::LiveStream(LiveStreamEvent {
                live_stream_id: "XmX8hS9kM2b02fQxk00vAiDkqN8HnRvL7".into(),
                status: LiveStreamEventStatus::Active,
                passthrough: Some("9d0b6c2e-7c1f-4a0e-9c55-2f1d0e8a4b11".into()),
                stream_status: Some(LiveStreamStatus::Active),
                active_asset_id: None,
            })
        );
        assert_eq!(
            verify_and_parse(
                "wrong",
                Some(FIXTURE_HEADER),
                FIXTURE_BODY.as_bytes(),
                at(1_714_998_896)
            ),
            Err(WebhookError::Signature(SignatureError::NoMatchingSignature))
        );
    }

    /// A full delivery in Mux's format (fields as in Mux's webhook reference).
    const LIVE_IDLE: &str = r#"{
      "type": "video.live_stream.idle",
      "request_id": null,
      "object": {"type": "live_stream", "id": "ZG8hWb6e3fVq00j6R6iAk8Tk8vT4ZbY02"},
      "id": "6c7fb3e9-4d8c-4d5e-9b57-41c0d6c0f5a1",
      "environment": {"name": "Production", "id": "j0863n"},
      "data": {
        "stream_key": "d8b1c1a6-0000-4c4e-8f06-5c2b6e1f7a11",
        "status": "idle",
        "reconnect_window": 60,
        "recent_asset_ids": ["Ft9lH00b01pX5h8d3G02H2s8gP5lZq00"],
        "playback_ids": [{"policy": "public", "id": "Vx5pbWb3B5e6vB8n02rS3t"}],
        "new_asset_settings": {"playback_policies": ["public"], "passthrough": "ls-42"},
        "passthrough": "ls-42",
        "latency_mode": "standard",
        "max_continuous_duration": 43200,
        "id": "ZG8hWb6e3fVq00j6R6iAk8Tk8vT4ZbY02",
        "created_at": 1714998800
      },
      "created_at": "2024-05-06T12:40:00.000000Z",
      "attempts": [],
      "accessor_source": null,
      "accessor": null
    }"#;

    #[test]
    fn live_stream_event() {
        let event = WebhookEvent::parse(LIVE_IDLE.as_bytes()).unwrap();
        assert_eq!(event.id, "6c7fb3e9-4d8c-4d5e-9b57-41c0d6c0f5a1");
        assert_eq!(event.event_type, "video.live_stream.idle");
        assert_eq!(event.created_at, "2024-05-06T12:40:00.000000Z");
        assert_eq!(event.object.kind, "live_stream");
        assert_eq!(event.environment.as_ref().unwrap().name, "Production");
        assert_eq!(
            event.typed(),
            MuxEvent::LiveStream(LiveStreamEvent {
                live_stream_id: "ZG8hWb6e3fVq00j6R6iAk8Tk8vT4ZbY02".into(),
                status: LiveStreamEventStatus::Idle,
                passthrough: Some("ls-42".into()),
                stream_status: Some(LiveStreamStatus::Idle),
                active_asset_id: None,
            })
        );
        // The data is kept whole, and Debug hides its stream key.
        assert_eq!(
            event.data["stream_key"],
            "d8b1c1a6-0000-4c4e-8f06-5c2b6e1f7a11"
        );
        let debug = format!("{event:?}");
        assert!(!debug.contains("d8b1c1a6"), "{debug}");
        assert!(debug.contains("ZG8hWb6e3fVq00j6R6iAk8Tk8vT4ZbY02"));
    }

    #[test]
    fn each_live_stream_status() {
        for (name, status) in [
            ("connected", LiveStreamEventStatus::Connected),
            ("recording", LiveStreamEventStatus::Recording),
            ("active", LiveStreamEventStatus::Active),
            ("disconnected", LiveStreamEventStatus::Disconnected),
            ("idle", LiveStreamEventStatus::Idle),
        ] {
            let body = format!(
                r#"{{"type":"video.live_stream.{name}","id":"e","object":{{"type":"live_stream","id":"L1"}},"data":{{"status":"weird"}}}}"#
            );
            let MuxEvent::LiveStream(ev) = WebhookEvent::parse(body.as_bytes()).unwrap().typed()
            else {
                panic!("{name}");
            };
            assert_eq!(ev.status, status);
            assert_eq!(ev.live_stream_id, "L1"); // from `object` when data has no id
            assert_eq!(ev.stream_status, Some(LiveStreamStatus::Unknown));
        }
    }

    #[test]
    fn asset_events() {
        let ready = r#"{"type":"video.asset.ready","object":{"type":"asset","id":"A1"},"id":"e2",
          "environment":{"name":"Production","id":"j0863n"},
          "data":{"id":"A1","status":"ready","duration":1234.56,"live_stream_id":"L1","passthrough":"ls-42",
                  "playback_ids":[{"policy":"public","id":"P1"},{"policy":"signed","id":"P2"}],
                  "is_live":false,"created_at":1714998800,
                  "recording_times":[{"type":"content","started_at":{"seconds":1714998801,"nanos":5},"duration":1234.5}]},
          "created_at":"2024-05-06T13:00:00.000000Z","attempts":[],"accessor_source":null,"accessor":null,"request_id":null}"#;
        let MuxEvent::Asset(asset) = WebhookEvent::parse(ready.as_bytes()).unwrap().typed() else {
            panic!("not an asset event");
        };
        assert_eq!(asset.kind, AssetEventKind::Ready);
        assert_eq!(asset.asset_id, "A1");
        assert_eq!(asset.status, Some(AssetStatus::Ready));
        assert_eq!(asset.live_stream_id.as_deref(), Some("L1"));
        assert_eq!(asset.passthrough.as_deref(), Some("ls-42"));
        assert_eq!(asset.playback_ids.len(), 2);
        assert_eq!(asset.playback_ids[1].id, "P2");
        assert_eq!(asset.duration, Some(1234.56));
        assert_eq!(asset.errors, None);

        let errored = r#"{"type":"video.asset.errored","object":{"type":"asset","id":"A2"},"id":"e3",
          "data":{"id":"A2","status":"errored","errors":{"type":"invalid_input","messages":["The input file could not be read"]}},
          "created_at":"2024-05-06T13:00:00Z"}"#;
        let MuxEvent::Asset(asset) = WebhookEvent::parse(errored.as_bytes()).unwrap().typed()
        else {
            panic!("not an asset event");
        };
        assert_eq!(asset.kind, AssetEventKind::Errored);
        assert_eq!(
            asset.errors,
            Some(AssetErrors {
                kind: Some("invalid_input".into()),
                messages: vec!["The input file could not be read".into()]
            })
        );

        for (name, kind) in [
            ("created", AssetEventKind::Created),
            ("live_stream_completed", AssetEventKind::LiveStreamCompleted),
        ] {
            let body = format!(
                r#"{{"type":"video.asset.{name}","id":"e","object":{{"type":"asset","id":"A3"}},"data":{{"id":"A3","status":"preparing"}},"created_at":"x"}}"#
            );
            let MuxEvent::Asset(asset) = WebhookEvent::parse(body.as_bytes()).unwrap().typed()
            else {
                panic!("{name}");
            };
            assert_eq!(asset.kind, kind);
            assert_eq!(asset.status, Some(AssetStatus::Preparing));
        }
    }

    #[test]
    fn unknown_event_types_are_other() {
        let body = r#"{"type":"video.live_stream.simulcast_target.broadcasting","id":"e9",
          "object":{"type":"simulcast_target","id":"S1"},"data":{"id":"S1"},"created_at":"2024-05-06T13:00:00Z"}"#;
        assert_eq!(
            WebhookEvent::parse(body.as_bytes()).unwrap().typed(),
            MuxEvent::Other {
                event_type: "video.live_stream.simulcast_target.broadcasting".into(),
                object_type: "simulcast_target".into(),
                object_id: "S1".into(),
            }
        );
        let body = r#"{"type":"something.new","id":"e10","object":{"type":"thing","id":"T"},"data":null,"created_at":1714998800}"#;
        let event = WebhookEvent::parse(body.as_bytes()).unwrap();
        assert_eq!(event.created_at, "1714998800");
        assert!(matches!(event.typed(), MuxEvent::Other { .. }));
    }

    #[test]
    fn not_an_event() {
        assert!(matches!(
            WebhookEvent::parse(b"[]"),
            Err(WebhookError::Parse(_))
        ));
        assert!(matches!(
            WebhookEvent::parse(b"{\"type\":\"x\"}"),
            Err(WebhookError::Parse(_))
        ));
        let err = WebhookEvent::parse(br#"{"type":"x","id":"i","object":"sk-secret-value"}"#)
            .unwrap_err();
        assert!(!err.to_string().contains("sk-secret-value"), "{err}");
    }
}

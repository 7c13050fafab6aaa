//! Wire types of Mux's Video API (the `data` of its responses and the bodies
//! of its requests), named as in Mux's API reference and official SDKs.
//!
//! Response types are tolerant: unknown fields are ignored, an enum value Mux
//! adds later decodes as `Unknown`, and optional fields may be absent.
//! Stream keys and SRT passphrases are [`Secret`]s, so `Debug` never shows them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::Secret;

/// Who may play a playback ID back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaybackPolicy {
    Public,
    Signed,
    Drm,
    /// A policy this client does not know; cannot be sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Latency mode of a live stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyMode {
    Low,
    Reduced,
    Standard,
    /// A mode this client does not know; cannot be sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Status of a live stream resource (`idle`, `active`, `disabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveStreamStatus {
    Idle,
    Active,
    Disabled,
    #[serde(other)]
    Unknown,
}

impl LiveStreamStatus {
    /// The wire name (`"unknown"` for [`LiveStreamStatus::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            LiveStreamStatus::Idle => "idle",
            LiveStreamStatus::Active => "active",
            LiveStreamStatus::Disabled => "disabled",
            LiveStreamStatus::Unknown => "unknown",
        }
    }
}

/// Status of an asset (`preparing`, `ready`, `errored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetStatus {
    Preparing,
    Ready,
    Errored,
    #[serde(other)]
    Unknown,
}

impl AssetStatus {
    /// The wire name (`"unknown"` for [`AssetStatus::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            AssetStatus::Preparing => "preparing",
            AssetStatus::Ready => "ready",
            AssetStatus::Errored => "errored",
            AssetStatus::Unknown => "unknown",
        }
    }
}

/// Status of a simulcast target (`idle`, `starting`, `broadcasting`, `errored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimulcastTargetStatus {
    Idle,
    Starting,
    Broadcasting,
    Errored,
    #[serde(other)]
    Unknown,
}

/// A playback ID of a live stream or asset; see [`super::playback_url`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PlaybackId {
    pub id: String,
    pub policy: PlaybackPolicy,
}

/// A simulcast target as Mux returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SimulcastTarget {
    pub id: String,
    pub status: SimulcastTargetStatus,
    pub url: String,
    #[serde(default)]
    pub stream_key: Option<Secret>,
    #[serde(default)]
    pub passthrough: Option<String>,
    /// `normal` or `fatal`; set only when `status` is `errored`.
    #[serde(default)]
    pub error_severity: Option<String>,
}

/// A live stream (`GET /video/v1/live-streams/{id}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LiveStream {
    pub id: String,
    /// Key for the RTMP ingest (`rtmp(s)://global-live.mux.com/app/{key}`).
    pub stream_key: Secret,
    pub status: LiveStreamStatus,
    #[serde(default, deserialize_with = "null_as_default")]
    pub playback_ids: Vec<PlaybackId>,
    #[serde(default)]
    pub passthrough: Option<String>,
    #[serde(default)]
    pub latency_mode: Option<LatencyMode>,
    /// Seconds Mux waits for the encoder to reconnect before ending the asset.
    #[serde(default)]
    pub reconnect_window: Option<f64>,
    /// Seconds a stream may stay active (default 43200, 12 h).
    #[serde(default)]
    pub max_continuous_duration: Option<u64>,
    /// Assets recorded from this stream, most recent last.
    #[serde(default, deserialize_with = "null_as_default")]
    pub recent_asset_ids: Vec<String>,
    /// The asset being recorded while the stream is active.
    #[serde(default)]
    pub active_asset_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub simulcast_targets: Vec<SimulcastTarget>,
    #[serde(default)]
    pub test: bool,
    #[serde(default)]
    pub audio_only: bool,
    /// Unix seconds as Mux sends them (a string in the API, a number in webhooks).
    #[serde(default, deserialize_with = "string_or_number")]
    pub created_at: Option<String>,
    /// Passphrase for SRT ingest.
    #[serde(default)]
    pub srt_passphrase: Option<Secret>,
    /// `rtmp` or `srt`, while active.
    #[serde(default)]
    pub active_ingest_protocol: Option<String>,
    /// Settings applied to each asset recorded from this stream, as Mux echoes them.
    #[serde(default)]
    pub new_asset_settings: Option<serde_json::Value>,
    #[serde(default)]
    pub reconnect_slate_url: Option<String>,
    #[serde(default)]
    pub use_slate_for_standard_latency: Option<bool>,
}

/// What went wrong with an asset (`errors` of an errored asset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AssetErrors {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub messages: Vec<String>,
}

/// An asset (`GET /video/v1/assets/{id}`), e.g. the recording of a live stream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Asset {
    pub id: String,
    pub status: AssetStatus,
    #[serde(default, deserialize_with = "null_as_default")]
    pub playback_ids: Vec<PlaybackId>,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    /// The live stream this asset was recorded from.
    #[serde(default)]
    pub live_stream_id: Option<String>,
    #[serde(default)]
    pub passthrough: Option<String>,
    #[serde(default)]
    pub errors: Option<AssetErrors>,
    /// True while the live stream is still recording into this asset.
    #[serde(default)]
    pub is_live: bool,
    #[serde(default)]
    pub test: bool,
    #[serde(default)]
    pub aspect_ratio: Option<String>,
    #[serde(default)]
    pub resolution_tier: Option<String>,
    #[serde(default)]
    pub video_quality: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub created_at: Option<String>,
}

/// `new_asset_settings` of a live stream create: how recordings are made.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewAssetSettings {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub playback_policies: Vec<PlaybackPolicy>,
    /// Copied to each recorded asset (assets do not inherit the live stream's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<String>,
    /// Further fields of Mux's asset settings (`video_quality`, `master_access`, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Body of `POST /video/v1/live-streams`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateLiveStream {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub playback_policies: Vec<PlaybackPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_asset_settings: Option<NewAssetSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_mode: Option<LatencyMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_window: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_continuous_duration: Option<u64>,
    /// Caller's id for this stream (onair's livestream id). Also what makes a
    /// retried create safe: see [`super::LiveStreams::create`]. Max 255 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<String>,
    /// A free test stream: watermarked, limited to 5 minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_slate_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_slate_for_standard_latency: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub simulcast_targets: Vec<CreateSimulcastTarget>,
}

/// Body of `PATCH /video/v1/live-streams/{id}` (only the fields Mux lets change).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpdateLiveStream {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_mode: Option<LatencyMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_window: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_continuous_duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_slate_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_slate_for_standard_latency: Option<bool>,
    /// Mux's `new_asset_settings` update object (`video_quality`, `master_access`, `meta`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_asset_settings: Option<serde_json::Value>,
}

/// Query of `GET /video/v1/live-streams`. Mux filters by `status` and
/// `stream_key` server-side; it has no `passthrough` filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListLiveStreams {
    /// Items per page (Mux's default is 25).
    pub limit: Option<u32>,
    /// 1-based page of `limit` items.
    pub page: Option<u32>,
    pub status: Option<LiveStreamStatus>,
    pub stream_key: Option<Secret>,
}

/// Body of `POST /video/v1/live-streams/{id}/simulcast-targets` (and one
/// entry of [`CreateLiveStream::simulcast_targets`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateSimulcastTarget {
    /// `rtmp://live.example.com/app`, or a full `srt://…` connection string.
    pub url: String,
    /// The third-party service's stream key (RTMP destinations).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional_secret"
    )]
    pub stream_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<String>,
}

/// Writes the secret's value: used only for request bodies sent to Mux.
fn expose_optional_secret<S: Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret.expose()),
        None => s.serialize_none(),
    }
}

/// `null` read as the type's default (Mux may send `null` for empty lists).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A timestamp that Mux sends as a string or a number, kept as text.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_stream_from_mux_example() {
        // Shape of Mux's create/retrieve response `data`.
        let ls: LiveStream = serde_json::from_str(
            r#"{"stream_key":"54676b58-6b19-5acb-f5bf-3aa35222efc6","status":"idle",
            "reconnect_window":60,"playback_ids":[{"policy":"public","id":"iOkfIGstt4u1eYdFcPKGTWKz75Acpv3w"}],
            "new_asset_settings":{"playback_policies":["public"]},"id":"aA02skpHXoLrbQm49qIzAG6RtewFOcDEY",
            "created_at":"1557338261","latency_mode":"standard","max_continuous_duration":43200,
            "something_new":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(ls.id, "aA02skpHXoLrbQm49qIzAG6RtewFOcDEY");
        assert_eq!(ls.status, LiveStreamStatus::Idle);
        assert_eq!(ls.latency_mode, Some(LatencyMode::Standard));
        assert_eq!(ls.reconnect_window, Some(60.0));
        assert_eq!(ls.playback_ids[0].policy, PlaybackPolicy::Public);
        assert_eq!(ls.created_at.as_deref(), Some("1557338261"));
        assert_eq!(
            ls.stream_key.expose(),
            "54676b58-6b19-5acb-f5bf-3aa35222efc6"
        );
        assert!(!format!("{ls:?}").contains("54676b58"));
    }

    #[test]
    fn unknown_enum_values_decode() {
        let ls: LiveStream = serde_json::from_str(
            r#"{"id":"a","stream_key":"k","status":"hibernating","latency_mode":"ultra",
            "playback_ids":[{"id":"p","policy":"future"}],"created_at":1557338261,"recent_asset_ids":null}"#,
        )
        .unwrap();
        assert_eq!(ls.status, LiveStreamStatus::Unknown);
        assert_eq!(ls.latency_mode, Some(LatencyMode::Unknown));
        assert_eq!(ls.playback_ids[0].policy, PlaybackPolicy::Unknown);
        assert_eq!(ls.created_at.as_deref(), Some("1557338261"));
        assert!(ls.recent_asset_ids.is_empty());
    }

    #[test]
    fn create_body_serializes_secrets_only_in_the_body() {
        let req = CreateLiveStream {
            playback_policies: vec![PlaybackPolicy::Public],
            new_asset_settings: Some(NewAssetSettings {
                playback_policies: vec![PlaybackPolicy::Public],
                passthrough: Some("ls-1".into()),
                extra: [("video_quality".to_owned(), "plus".into())]
                    .into_iter()
                    .collect(),
            }),
            latency_mode: Some(LatencyMode::Low),
            reconnect_window: Some(30.0),
            passthrough: Some("ls-1".into()),
            simulcast_targets: vec![CreateSimulcastTarget {
                url: "rtmp://a.example/app".into(),
                stream_key: Some(Secret::new("yt-key")),
                passthrough: None,
            }],
            ..Default::default()
        };
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "playback_policies": ["public"],
                "new_asset_settings": {"playback_policies": ["public"], "passthrough": "ls-1", "video_quality": "plus"},
                "latency_mode": "low",
                "reconnect_window": 30.0,
                "passthrough": "ls-1",
                "simulcast_targets": [{"url": "rtmp://a.example/app", "stream_key": "yt-key"}]
            })
        );
        assert!(!format!("{req:?}").contains("yt-key"));
    }

    #[test]
    fn unknown_variants_cannot_be_sent() {
        let req = UpdateLiveStream {
            latency_mode: Some(LatencyMode::Unknown),
            ..Default::default()
        };
        assert!(serde_json::to_vec(&req).is_err());
    }
}

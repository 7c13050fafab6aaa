//! Go-live and update requests as callers send them, and their validation.

use serde::Deserialize;

use super::preset::{DEFAULT_PRESET, EncodingPreset};
use super::runner::TrackSelection;
use crate::config::LimitsConfig;
use crate::layout::{LayoutName, LayoutTemplates};
use crate::outputs::{Destination, DestinationType, ProgramMedia};

pub const LATENCY_MODES: [&str; 3] = ["low", "reduced", "standard"];
pub const DEFAULT_LATENCY_MODE: &str = "standard";
pub const MAX_ROOM_NAME: usize = 128;

/// `POST /api/video/livestream` as sent (camelCase JSON).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoLiveRequest {
    pub room_name: String,
    pub layout: Option<String>,
    pub resolution: Option<String>,
    pub preset: Option<String>,
    pub latency_mode: Option<String>,
    /// Seconds.
    pub max_duration: Option<u32>,
    pub mux: Option<bool>,
    #[serde(default)]
    pub additional_destinations: Vec<DestinationRequest>,
    pub hls: Option<bool>,
    pub mp4: Option<bool>,
    /// LiveKit's room composite options: a program of audio or video alone.
    pub audio_only: Option<bool>,
    pub video_only: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRequest {
    #[serde(rename = "type")]
    pub kind: String,
    pub stream_key: Option<String>,
    pub custom_rtmp_url: Option<String>,
    pub twitch_ingest_server: Option<String>,
    pub name: Option<String>,
}

/// `PATCH /api/video/livestream/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRequest {
    pub layout: Option<String>,
    #[serde(default)]
    pub add_destinations: Vec<DestinationRequest>,
    /// Output ids to stop sending to.
    #[serde(default)]
    pub remove_destinations: Vec<uuid::Uuid>,
}

/// A request that broke a rule: `code` is stable for clients, `message` explains.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub code: &'static str,
    pub message: String,
}

fn invalid(code: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        code,
        message: message.into(),
    }
}

/// What the server can offer, which some requests depend on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capabilities {
    pub mux: bool,
    pub hls: bool,
}

/// A validated go-live.
#[derive(Debug, Clone)]
pub struct GoLive {
    pub room_name: String,
    pub layout: String,
    pub preset: EncodingPreset,
    pub latency_mode: String,
    pub max_duration_secs: Option<u32>,
    pub mux: bool,
    pub destinations: Vec<NamedDestination>,
    pub hls: bool,
    pub mp4: bool,
    pub media: ProgramMedia,
    /// The MP4's path relative to the recordings directory; None = the
    /// default `{room}-{id}.mp4`.
    pub mp4_path: Option<String>,
    /// The recording's container (Ogg/Opus for LiveKit's audio-only files).
    pub file_kind: FileKind,
    /// Where the MP4 is uploaded when the request named its own bucket.
    pub mp4_upload: Option<crate::config::StorageConfig>,
    /// HLS naming asked for by an egress request.
    pub hls_naming: Option<HlsNaming>,
    /// What is composed, in LiveKit's terms (`room_composite`, …).
    pub source_type: &'static str,
    pub selection: TrackSelection,
    pub audio_mixing: super::runner::AudioMixing,
    /// The room's sid, when known at go-live (egress requests).
    pub room_sid: Option<String>,
    /// Stills of the program (egress image outputs).
    pub images: Vec<ImagePlan>,
    /// Where this livestream's egress events also go (an egress request's
    /// `webhooks`), signed with the named API key.
    pub webhooks: Option<RequestWebhooks>,
}

#[derive(Debug, Clone)]
pub struct RequestWebhooks {
    pub urls: Vec<url::Url>,
    pub api_key: String,
    pub api_secret: crate::config::Secret,
}

/// A recording's container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FileKind {
    #[default]
    Mp4,
    Ogg,
    WebM,
}

impl FileKind {
    /// The output kind stored, which is also the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Mp4 => "mp4",
            FileKind::Ogg => "ogg",
            FileKind::WebM => "webm",
        }
    }
}

/// An image output as asked for: stills every `interval_secs` at
/// `width`×`height`, named `prefix` + suffix (a path relative to the
/// recordings directory, and the object key prefix when uploaded).
#[derive(Debug, Clone)]
pub struct ImagePlan {
    pub prefix: String,
    pub interval_secs: u32,
    pub width: u32,
    pub height: u32,
    pub suffix: crate::outputs::images::ImageSuffix,
    /// The request's own bucket; None = the server's.
    pub upload: Option<crate::config::StorageConfig>,
}

/// An egress request's HLS settings; None fields take the server's.
#[derive(Debug, Clone, Default)]
pub struct HlsNaming {
    pub prefix: Option<String>,
    pub segment_secs: Option<u32>,
    pub playlist_name: Option<String>,
    /// A sliding-window live playlist besides the full one.
    pub live_playlist_name: Option<String>,
    /// The request's own bucket; None = the server's.
    pub upload: Option<crate::config::StorageConfig>,
}

#[derive(Debug, Clone)]
pub struct NamedDestination {
    pub name: String,
    pub destination: Destination,
}

/// A validated update.
#[derive(Debug, Clone)]
pub struct Update {
    pub layout: Option<String>,
    pub add: Vec<NamedDestination>,
    pub remove: Vec<uuid::Uuid>,
}

pub fn validate_room_name(name: &str) -> Result<(), ValidationError> {
    let ok = (1..=MAX_ROOM_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "invalid_room_name",
            format!(
                "roomName must be 1–{MAX_ROOM_NAME} characters of A–Z, a–z, 0–9, `-`, `_`, `.`, `~`"
            ),
        ))
    }
}

/// Checks that `layout` names a built-in or user layout template.
pub fn validate_layout(layout: &str, layouts: &LayoutTemplates) -> Result<String, ValidationError> {
    layouts
        .check_name(layout)
        .map(|()| layout.to_string())
        .map_err(|e| invalid("invalid_layout", e.to_string()))
}

impl GoLiveRequest {
    pub fn validate(
        self,
        limits: &LimitsConfig,
        caps: Capabilities,
        layouts: &LayoutTemplates,
    ) -> Result<GoLive, ValidationError> {
        validate_room_name(&self.room_name)?;
        let layout = match &self.layout {
            Some(layout) => validate_layout(layout, layouts)?,
            None => LayoutName::default().to_string(),
        };
        let preset = choose_preset(self.preset.as_deref(), self.resolution.as_deref())?;
        let latency_mode = self
            .latency_mode
            .unwrap_or_else(|| DEFAULT_LATENCY_MODE.to_string());
        if !LATENCY_MODES.contains(&latency_mode.as_str()) {
            return Err(invalid(
                "invalid_latency_mode",
                format!("latencyMode must be one of {}", LATENCY_MODES.join(", ")),
            ));
        }
        if let Some(max) = self.max_duration
            && !(1..=limits.max_duration_secs).contains(&max)
        {
            return Err(invalid(
                "invalid_max_duration",
                format!(
                    "maxDuration must be between 1 and {} seconds",
                    limits.max_duration_secs
                ),
            ));
        }
        let mux = match self.mux {
            Some(true) if !caps.mux => {
                return Err(invalid(
                    "mux_not_configured",
                    "mux is requested but this server has no Mux credentials configured",
                ));
            }
            Some(requested) => requested,
            None => caps.mux,
        };
        let hls = self.hls.unwrap_or(false);
        if hls && !caps.hls {
            return Err(invalid(
                "hls_not_configured",
                "hls is requested but this server has no S3 storage configured",
            ));
        }
        let mp4 = self.mp4.unwrap_or(true);
        let media = match (
            self.audio_only.unwrap_or(false),
            self.video_only.unwrap_or(false),
        ) {
            (true, true) => {
                return Err(invalid(
                    "conflicting_media",
                    "audioOnly and videoOnly cannot both be true",
                ));
            }
            (true, false) => ProgramMedia::AudioOnly,
            (false, true) => ProgramMedia::VideoOnly,
            (false, false) => ProgramMedia::AudioVideo,
        };
        let destinations = resolve_destinations(self.additional_destinations, limits, 0)?;
        if !(mux || hls || mp4 || !destinations.is_empty()) {
            return Err(invalid(
                "no_outputs",
                "nothing to send the program to: enable mp4, hls or mux, or add a destination",
            ));
        }
        Ok(GoLive {
            room_name: self.room_name,
            layout,
            preset,
            latency_mode,
            max_duration_secs: self.max_duration,
            mux,
            destinations,
            hls,
            mp4,
            media,
            mp4_path: None,
            file_kind: FileKind::Mp4,
            mp4_upload: None,
            hls_naming: None,
            source_type: "room_composite",
            selection: TrackSelection::Room,
            audio_mixing: Default::default(),
            room_sid: None,
            webhooks: None,
            images: Vec::new(),
        })
    }
}

impl UpdateRequest {
    /// `existing` is how many destinations the livestream already sends to.
    pub fn validate(
        self,
        limits: &LimitsConfig,
        existing: usize,
        layouts: &LayoutTemplates,
    ) -> Result<Update, ValidationError> {
        let layout = self
            .layout
            .as_deref()
            .map(|layout| validate_layout(layout, layouts))
            .transpose()?;
        let add = resolve_destinations(self.add_destinations, limits, existing)?;
        if layout.is_none() && add.is_empty() && self.remove_destinations.is_empty() {
            return Err(invalid(
                "empty_update",
                "nothing to change: give layout, addDestinations or removeDestinations",
            ));
        }
        Ok(Update {
            layout,
            add,
            remove: self.remove_destinations,
        })
    }
}

fn choose_preset(
    preset: Option<&str>,
    resolution: Option<&str>,
) -> Result<EncodingPreset, ValidationError> {
    match (preset, resolution) {
        (Some(_), Some(_)) => Err(invalid(
            "invalid_preset",
            "give either preset or resolution, not both",
        )),
        (Some(name), None) => EncodingPreset::by_name(name).ok_or_else(|| {
            invalid(
                "invalid_preset",
                format!(
                    "unknown preset `{name}`; expected one of {}",
                    EncodingPreset::preset_names().join(", ")
                ),
            )
        }),
        (None, Some(resolution)) => EncodingPreset::by_resolution(resolution).ok_or_else(|| {
            invalid(
                "invalid_resolution",
                format!(
                    "unsupported resolution `{resolution}`; expected one of {}",
                    EncodingPreset::resolutions().join(", ")
                ),
            )
        }),
        (None, None) => {
            Ok(EncodingPreset::by_name(DEFAULT_PRESET).expect("the default preset exists"))
        }
    }
}

fn resolve_destinations(
    requests: Vec<DestinationRequest>,
    limits: &LimitsConfig,
    existing: usize,
) -> Result<Vec<NamedDestination>, ValidationError> {
    if existing + requests.len() > limits.max_destinations as usize {
        return Err(invalid(
            "too_many_destinations",
            format!(
                "at most {} destinations per livestream",
                limits.max_destinations
            ),
        ));
    }
    let mut resolved: Vec<NamedDestination> = Vec::with_capacity(requests.len());
    for (index, request) in requests.into_iter().enumerate() {
        let at = |e: &dyn std::fmt::Display| {
            invalid(
                "invalid_destination",
                format!("additionalDestinations[{index}]: {e}"),
            )
        };
        let kind: DestinationType = request.kind.parse().map_err(|e| at(&e))?;
        let destination = Destination::resolve(
            kind,
            request.stream_key.as_deref(),
            request.custom_rtmp_url.as_deref(),
            request.twitch_ingest_server.as_deref(),
        )
        .map_err(|e| at(&e))?;
        if resolved.iter().any(|d| d.destination == destination) {
            return Err(at(&"the same destination is listed twice"));
        }
        let name = request
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| kind.to_string());
        if name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(at(&"name must be at most 64 printable characters"));
        }
        resolved.push(NamedDestination { name, destination });
    }
    Ok(resolved)
}

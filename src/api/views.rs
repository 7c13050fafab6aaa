//! The JSON shapes of livestream responses (camelCase, secrets left out).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::livestream::LivestreamDetails;
use crate::store::{EventRow, OutputRow};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LivestreamView {
    pub livestream_id: Uuid,
    /// The same livestream as a LiveKit egress (`EG_…`, for the Egress API).
    pub egress_id: String,
    pub room_name: String,
    pub status: String,
    pub layout: String,
    pub preset: String,
    pub resolution: String,
    pub fps: i32,
    /// `audio_video`, `audio_only` or `video_only`.
    pub media: String,
    pub latency_mode: String,
    pub max_duration: Option<i32>,
    pub mux_live_stream_id: Option<String>,
    pub mux_playback_id: Option<String>,
    pub playback_url: Option<String>,
    pub mux_asset_id: Option<String>,
    pub vod_playback_id: Option<String>,
    /// Mux's view of the live stream (`active`, `idle`, …), from its webhooks.
    pub mux_status: Option<String>,
    pub vod_duration: Option<f64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Seconds on air: from `active` to the end (or now).
    pub duration_seconds: Option<f64>,
    pub outputs: Vec<OutputView>,
    /// Participants on the program now; present while it runs on this node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants_composed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventView>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputView {
    pub id: Uuid,
    pub kind: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub destination_type: Option<String>,
    pub name: String,
    pub url: String,
    pub status: String,
    pub last_error: Option<String>,
    pub retries: i32,
    pub bytes: i64,
    /// Where the finished file was uploaded (`s3://bucket/key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded_to: Option<String>,
    /// Present only in the response that created the output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_key: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Whether stream keys go into the response (only when just created).
#[derive(Clone, Copy, PartialEq)]
pub enum Keys {
    Show,
    Hide,
}

impl LivestreamView {
    pub fn new(details: LivestreamDetails, keys: Keys, with_events: bool) -> LivestreamView {
        let LivestreamDetails {
            row,
            outputs,
            events,
            participants_composed,
        } = details;
        let duration_seconds = row.started_at.map(|start| {
            let end = row.ended_at.unwrap_or_else(Utc::now);
            ((end - start).num_milliseconds().max(0) as f64) / 1000.0
        });
        LivestreamView {
            livestream_id: row.id,
            egress_id: row.egress_id.clone(),
            room_name: row.room_name,
            status: row.status,
            layout: row.layout,
            preset: row.preset,
            resolution: format!("{}x{}", row.width, row.height),
            fps: row.fps,
            media: row.media,
            latency_mode: row.latency_mode,
            max_duration: row.max_duration_secs,
            playback_url: row
                .mux_playback_id
                .as_ref()
                .map(|id| format!("https://stream.mux.com/{id}.m3u8")),
            mux_live_stream_id: row.mux_live_stream_id,
            mux_playback_id: row.mux_playback_id,
            mux_asset_id: row.mux_asset_id,
            vod_playback_id: row.vod_playback_id,
            mux_status: row.mux_status,
            vod_duration: row.vod_duration_secs,
            error: row.error,
            created_at: row.created_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
            duration_seconds,
            outputs: outputs
                .into_iter()
                .map(|o| OutputView::new(o, keys))
                .collect(),
            participants_composed,
            events: with_events.then(|| events.into_iter().map(EventView::from).collect()),
        }
    }
}

impl OutputView {
    fn new(row: OutputRow, keys: Keys) -> OutputView {
        OutputView {
            id: row.id,
            kind: row.kind,
            destination_type: row.destination_type,
            name: row.name,
            url: row.url,
            status: row.status,
            last_error: row.last_error,
            retries: row.retries,
            bytes: row.bytes_sent,
            uploaded_to: row.uploaded_to,
            stream_key: row.stream_key.filter(|_| keys == Keys::Show),
        }
    }
}

impl From<EventRow> for EventView {
    fn from(row: EventRow) -> EventView {
        EventView {
            from: row.from_status,
            to: row.to_status,
            reason: row.reason,
            at: row.at,
        }
    }
}

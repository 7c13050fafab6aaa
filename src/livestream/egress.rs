//! A livestream as LiveKit reports an egress: `egress_started`,
//! `egress_updated` and `egress_ended` room webhooks carrying an `EgressInfo`
//! in protojson form, so tooling built for LiveKit Egress follows onair's
//! livestreams and their outputs.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::service::LivestreamDetails;
use super::state::Status;
use crate::sfu::webhook::{
    EVENT_EGRESS_ENDED, EVENT_EGRESS_STARTED, EVENT_EGRESS_UPDATED, WebhookEvent,
};
use crate::store::OutputRow;

/// The webhook for a livestream's current state.
pub fn webhook(details: &LivestreamDetails) -> WebhookEvent {
    let event = match details.status() {
        Status::Idle | Status::Starting => EVENT_EGRESS_STARTED,
        Status::Active | Status::Stopping => EVENT_EGRESS_UPDATED,
        Status::Completed | Status::Failed => EVENT_EGRESS_ENDED,
    };
    WebhookEvent::new(event).with_egress_info(egress_info(details))
}

/// LiveKit's `EgressStatus` names.
fn egress_status(status: Status) -> &'static str {
    match status {
        Status::Idle | Status::Starting => "EGRESS_STARTING",
        Status::Active => "EGRESS_ACTIVE",
        Status::Stopping => "EGRESS_ENDING",
        Status::Completed => "EGRESS_COMPLETE",
        Status::Failed => "EGRESS_FAILED",
    }
}

/// protojson writes int64 as a string; LiveKit's times are Unix nanoseconds.
fn nanos(at: Option<DateTime<Utc>>) -> Value {
    at.and_then(|t| t.timestamp_nanos_opt())
        .map_or(Value::Null, |n| Value::String(n.to_string()))
}

pub fn egress_info(details: &LivestreamDetails) -> Value {
    let row = &details.row;
    let mut info = json!({
        "egressId": row.id.to_string(),
        "roomName": row.room_name,
        "status": egress_status(details.status()),
        "startedAt": nanos(row.started_at.or(Some(row.created_at))),
        "endedAt": nanos(row.ended_at),
        "updatedAt": nanos(Some(row.updated_at)),
        "roomComposite": {
            "roomName": row.room_name,
            "layout": row.layout,
            "audioOnly": row.media == "audio_only",
            "videoOnly": row.media == "video_only",
        },
        "streamResults": details.outputs.iter().filter(|o| o.kind == "rtmp").map(stream_info).collect::<Vec<_>>(),
        "fileResults": details.outputs.iter().filter(|o| o.kind == "mp4").map(file_info).collect::<Vec<_>>(),
        "segmentResults": details.outputs.iter().filter(|o| o.kind == "hls").map(segments_info).collect::<Vec<_>>(),
    });
    if let Some(error) = &row.error {
        info["error"] = Value::String(error.clone());
    }
    strip_nulls(&mut info);
    info
}

/// `StreamInfo`: ACTIVE while connecting, live or retrying (a retry's
/// reason is its `error`), then FINISHED or FAILED.
fn stream_info(output: &OutputRow) -> Value {
    let status = match output.status.as_str() {
        "failed" => "FAILED",
        "stopped" => "FINISHED",
        _ => "ACTIVE",
    };
    json!({
        "url": output.url,
        "status": status,
        "error": output.last_error.clone().filter(|_| status != "FINISHED"),
        "startedAt": nanos(Some(output.created_at)),
    })
}

fn file_info(output: &OutputRow) -> Value {
    json!({
        "filename": output.url,
        "location": output.uploaded_to,
        "size": output.bytes_sent.to_string(),
    })
}

fn segments_info(output: &OutputRow) -> Value {
    json!({
        "playlistName": output.url.rsplit('/').next().unwrap_or_default(),
        "playlistLocation": output.url,
        "size": output.bytes_sent.to_string(),
    })
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

//! A livestream as LiveKit reports an egress: `EgressInfo` for the Egress
//! API and the `egress_started` / `egress_updated` / `egress_ended` room
//! webhooks, so tooling built for LiveKit Egress follows onair's
//! livestreams and their outputs.

use chrono::{DateTime, Utc};
use livekit_protocol as proto;

use crate::livestream::service::LivestreamDetails;
use crate::livestream::state::Status;
use crate::sfu::webhook::{
    EVENT_EGRESS_ENDED, EVENT_EGRESS_STARTED, EVENT_EGRESS_UPDATED, WebhookEvent, new_event,
};
use crate::store::OutputRow;

/// The webhook for a livestream's current state.
pub fn webhook(details: &LivestreamDetails) -> WebhookEvent {
    let event = match details.status() {
        Status::Idle | Status::Starting => EVENT_EGRESS_STARTED,
        Status::Active | Status::Stopping => EVENT_EGRESS_UPDATED,
        Status::Completed | Status::Failed => EVENT_EGRESS_ENDED,
    };
    WebhookEvent {
        egress_info: Some(egress_info(details)),
        ..new_event(event)
    }
}

fn egress_status(status: Status) -> proto::EgressStatus {
    match status {
        Status::Idle | Status::Starting => proto::EgressStatus::EgressStarting,
        Status::Active => proto::EgressStatus::EgressActive,
        Status::Stopping => proto::EgressStatus::EgressEnding,
        Status::Completed => proto::EgressStatus::EgressComplete,
        Status::Failed => proto::EgressStatus::EgressFailed,
    }
}

/// LiveKit's times are Unix nanoseconds.
fn nanos(at: Option<DateTime<Utc>>) -> i64 {
    at.and_then(|t| t.timestamp_nanos_opt()).unwrap_or(0)
}

pub fn egress_info(details: &LivestreamDetails) -> proto::EgressInfo {
    let row = &details.row;
    // Stream URLs as stored: their keys redacted.
    let urls: Vec<String> = of_kind(details, "rtmp").map(|o| o.url.clone()).collect();
    let stream_outputs = if urls.is_empty() {
        Vec::new()
    } else {
        vec![proto::StreamOutput {
            protocol: proto::StreamProtocol::Rtmp as i32,
            urls,
        }]
    };
    let request = proto::RoomCompositeEgressRequest {
        room_name: row.room_name.clone(),
        layout: row.layout.clone(),
        audio_only: row.media == "audio_only",
        video_only: row.media == "video_only",
        stream_outputs,
        ..Default::default()
    };
    proto::EgressInfo {
        egress_id: row.egress_id.clone(),
        room_name: row.room_name.clone(),
        source_type: proto::EgressSourceType::Sdk as i32,
        status: egress_status(details.status()) as i32,
        started_at: nanos(row.started_at.or(Some(row.created_at))),
        ended_at: nanos(row.ended_at),
        updated_at: nanos(Some(row.updated_at)),
        stream_results: of_kind(details, "rtmp").map(stream_info).collect(),
        file_results: of_kind(details, "mp4").map(file_info).collect(),
        segment_results: of_kind(details, "hls").map(segments_info).collect(),
        error: row.error.clone().unwrap_or_default(),
        request: Some(proto::egress_info::Request::RoomComposite(request)),
        ..Default::default()
    }
}

fn of_kind<'a>(
    details: &'a LivestreamDetails,
    kind: &'a str,
) -> impl Iterator<Item = &'a OutputRow> {
    details.outputs.iter().filter(move |o| o.kind == kind)
}

/// `StreamInfo`: ACTIVE while connecting, live or retrying (a retry's
/// reason is its `error`), then FINISHED or FAILED.
fn stream_info(output: &OutputRow) -> proto::StreamInfo {
    use proto::stream_info::Status as S;
    let status = match output.status.as_str() {
        "failed" => S::Failed,
        "stopped" | "removed" => S::Finished,
        _ => S::Active,
    };
    let started_at = nanos(Some(output.created_at));
    // An output row's last change is its end once it is no longer active.
    let ended_at = if status == S::Active {
        0
    } else {
        nanos(Some(output.updated_at))
    };
    proto::StreamInfo {
        url: output.url.clone(),
        started_at,
        ended_at,
        duration: if ended_at > 0 {
            ended_at - started_at
        } else {
            0
        },
        status: status as i32,
        error: output
            .last_error
            .clone()
            .filter(|_| status != S::Finished)
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn file_info(output: &OutputRow) -> proto::FileInfo {
    proto::FileInfo {
        filename: output.url.clone(),
        location: output.uploaded_to.clone().unwrap_or_default(),
        size: output.bytes_sent,
        started_at: nanos(Some(output.created_at)),
        ..Default::default()
    }
}

fn segments_info(output: &OutputRow) -> proto::SegmentsInfo {
    proto::SegmentsInfo {
        playlist_name: output
            .url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        playlist_location: output.url.clone(),
        size: output.bytes_sent,
        started_at: nanos(Some(output.created_at)),
        ..Default::default()
    }
}

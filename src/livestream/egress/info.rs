//! A livestream as LiveKit reports an egress: `EgressInfo` for the Egress
//! API and the `egress_started` / `egress_updated` / `egress_ended` room
//! webhooks, so tooling built for LiveKit Egress follows onair's
//! livestreams and their outputs.

use chrono::{DateTime, Utc};
use livekit_protocol as proto;

use crate::livestream::service::{
    LivestreamDetails, STOP_MAX_DURATION, STOP_ROOM_CLOSED, is_stream,
};
use crate::livestream::state::Status;
use crate::sfu::webhook::{
    EVENT_EGRESS_ENDED, EVENT_EGRESS_STARTED, EVENT_EGRESS_UPDATED, WebhookEvent, new_event,
};
use crate::store::OutputRow;

/// The webhook for a livestream's current state.
pub fn webhook(details: &LivestreamDetails) -> WebhookEvent {
    // Started once, as LiveKit: while no output has reported yet.
    let untouched = details.outputs.iter().all(|o| o.status == "pending");
    let event = match details.status() {
        Status::Idle | Status::Starting if untouched => EVENT_EGRESS_STARTED,
        Status::Idle | Status::Starting | Status::Active | Status::Stopping => EVENT_EGRESS_UPDATED,
        Status::Completed | Status::Failed => EVENT_EGRESS_ENDED,
    };
    WebhookEvent {
        egress_info: Some(egress_info(details)),
        ..new_event(event)
    }
}

/// A limit that ended it is LIMIT_REACHED; a room that closed before the
/// program went active ABORTED it.
fn egress_status(details: &LivestreamDetails) -> proto::EgressStatus {
    use proto::EgressStatus as E;
    let row = &details.row;
    let stop_reason = row.stop_reason.as_deref();
    match details.status() {
        Status::Idle | Status::Starting => E::EgressStarting,
        Status::Active => E::EgressActive,
        Status::Stopping => E::EgressEnding,
        Status::Completed | Status::Failed if stop_reason == Some(STOP_MAX_DURATION) => {
            E::EgressLimitReached
        }
        Status::Completed | Status::Failed
            if stop_reason == Some(STOP_ROOM_CLOSED) && row.started_at.is_none() =>
        {
            E::EgressAborted
        }
        Status::Completed => E::EgressComplete,
        Status::Failed => E::EgressFailed,
    }
}

/// LiveKit's times are Unix nanoseconds.
fn nanos(at: Option<DateTime<Utc>>) -> i64 {
    at.and_then(|t| t.timestamp_nanos_opt()).unwrap_or(0)
}

pub fn egress_info(details: &LivestreamDetails) -> proto::EgressInfo {
    let row = &details.row;
    // Stream URLs as stored: their keys redacted.
    let stream_outputs = [
        ("rtmp", proto::StreamProtocol::Rtmp),
        ("srt", proto::StreamProtocol::Srt),
    ]
    .into_iter()
    .map(|(kind, protocol)| proto::StreamOutput {
        protocol: protocol as i32,
        urls: of_kind(details, kind).map(|o| o.url.clone()).collect(),
    })
    .filter(|output| !output.urls.is_empty())
    .collect();
    let (request, source_type) = request(details, stream_outputs);
    proto::EgressInfo {
        egress_id: row.egress_id.clone(),
        room_name: row.room_name.clone(),
        source_type: source_type as i32,
        status: egress_status(details) as i32,
        room_id: row.room_sid.clone().unwrap_or_default(),
        started_at: nanos(row.started_at.or(Some(row.created_at))),
        ended_at: nanos(row.ended_at),
        updated_at: nanos(Some(row.updated_at)),
        stream_results: details
            .outputs
            .iter()
            .filter(|o| is_stream(o))
            .map(stream_info)
            .collect(),
        file_results: details
            .outputs
            .iter()
            .filter(|o| matches!(o.kind.as_str(), "mp4" | "ogg" | "webm"))
            .map(file_info)
            .collect(),
        segment_results: of_kind(details, "hls").map(segments_info).collect(),
        image_results: of_kind(details, "images").map(images_info).collect(),
        error: row.error.clone().unwrap_or_default(),
        request: Some(request),
        ..Default::default()
    }
}

/// The request as it can be told from the row (stream keys stay redacted),
/// and LiveKit's source type for it: its room composites record a web page.
fn request(
    details: &LivestreamDetails,
    stream_outputs: Vec<proto::StreamOutput>,
) -> (proto::egress_info::Request, proto::EgressSourceType) {
    use proto::egress_info::Request;
    let row = &details.row;
    match row.source_type.as_str() {
        "participant" => (
            Request::Participant(proto::ParticipantEgressRequest {
                room_name: row.room_name.clone(),
                identity: row.source_identity.clone().unwrap_or_default(),
                screen_share: row.source_screen_share,
                stream_outputs,
                ..Default::default()
            }),
            proto::EgressSourceType::Sdk,
        ),
        "track" => (
            Request::Track(proto::TrackEgressRequest {
                room_name: row.room_name.clone(),
                track_id: row
                    .source_video_track
                    .clone()
                    .or_else(|| row.source_audio_track.clone())
                    .unwrap_or_default(),
                ..Default::default()
            }),
            proto::EgressSourceType::Sdk,
        ),
        "track_composite" => (
            Request::TrackComposite(proto::TrackCompositeEgressRequest {
                room_name: row.room_name.clone(),
                audio_track_id: row.source_audio_track.clone().unwrap_or_default(),
                video_track_id: row.source_video_track.clone().unwrap_or_default(),
                stream_outputs,
                ..Default::default()
            }),
            proto::EgressSourceType::Sdk,
        ),
        _ => (
            Request::RoomComposite(proto::RoomCompositeEgressRequest {
                room_name: row.room_name.clone(),
                layout: row.layout.clone(),
                audio_only: row.media == "audio_only",
                video_only: row.media == "video_only",
                stream_outputs,
                ..Default::default()
            }),
            proto::EgressSourceType::Web,
        ),
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

/// When a file output stopped growing, and how long it ran (ns).
fn file_span(output: &OutputRow) -> (i64, i64, i64) {
    let started_at = nanos(Some(output.created_at));
    let ended = matches!(output.status.as_str(), "stopped" | "failed" | "removed");
    let ended_at = if ended {
        nanos(Some(output.updated_at))
    } else {
        0
    };
    let duration = if ended { ended_at - started_at } else { 0 };
    (started_at, ended_at, duration)
}

/// `filename` is what the request named (the object key), else the local path.
fn file_info(output: &OutputRow) -> proto::FileInfo {
    let (started_at, ended_at, duration) = file_span(output);
    proto::FileInfo {
        filename: output
            .object_key
            .clone()
            .unwrap_or_else(|| output.url.clone()),
        location: output.uploaded_to.clone().unwrap_or_default(),
        size: output.bytes_sent,
        started_at,
        ended_at,
        duration,
    }
}

fn images_info(output: &OutputRow) -> proto::ImagesInfo {
    let (started_at, ended_at, _) = file_span(output);
    proto::ImagesInfo {
        filename_prefix: output
            .object_key
            .clone()
            .unwrap_or_else(|| output.url.clone()),
        image_count: output.items,
        started_at,
        ended_at,
    }
}

fn segments_info(output: &OutputRow) -> proto::SegmentsInfo {
    let (started_at, ended_at, duration) = file_span(output);
    let name = |url: &str| url.rsplit('/').next().unwrap_or_default().to_string();
    // An HLS output's `object_key` is its live playlist's address.
    let live = output.object_key.clone().unwrap_or_default();
    proto::SegmentsInfo {
        playlist_name: name(&output.url),
        playlist_location: output.url.clone(),
        live_playlist_name: name(&live),
        live_playlist_location: live,
        size: output.bytes_sent,
        segment_count: output.items,
        started_at,
        ended_at,
        duration,
    }
}

//! Room notices from the bus, sent out as LiveKit-format webhooks.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast::{self, error::RecvError};

use super::webhook::{self as wh, WebhookEvent, WebhookNotifier};
use super::{ParticipantSummary, RoomNotice, RoomSummary, TrackInfo, TrackKind, TrackSource};

/// Forwards every notice to `notifier` until the bus closes. Never blocks
/// the SFU: a lagging forwarder loses notices (logged), not media.
pub fn forward_to_webhooks(
    mut notices: broadcast::Receiver<RoomNotice>,
    notifier: WebhookNotifier,
) {
    if !notifier.is_enabled() {
        return;
    }
    tokio::spawn(async move {
        loop {
            match notices.recv().await {
                Ok(notice) => notifier.notify(webhook_event(&notice)),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "room webhooks fell behind; events lost")
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

pub fn webhook_event(notice: &RoomNotice) -> WebhookEvent {
    match notice {
        RoomNotice::RoomStarted(room) => {
            WebhookEvent::new(wh::EVENT_ROOM_STARTED).with_room(room_info(room))
        }
        RoomNotice::RoomFinished(room) => {
            WebhookEvent::new(wh::EVENT_ROOM_FINISHED).with_room(room_info(room))
        }
        RoomNotice::ParticipantJoined(room, participant) => {
            WebhookEvent::new(wh::EVENT_PARTICIPANT_JOINED)
                .with_room(room_info(room))
                .with_participant(participant_info(participant, wh::ParticipantState::Active))
        }
        RoomNotice::ParticipantLeft(room, participant) => {
            WebhookEvent::new(wh::EVENT_PARTICIPANT_LEFT)
                .with_room(room_info(room))
                .with_participant(participant_info(
                    participant,
                    wh::ParticipantState::Disconnected,
                ))
        }
        RoomNotice::TrackPublished(room, participant, track) => {
            WebhookEvent::new(wh::EVENT_TRACK_PUBLISHED)
                .with_room(room_info(room))
                .with_participant(participant_info(participant, wh::ParticipantState::Active))
                .with_track(track_info(track))
        }
        RoomNotice::TrackUnpublished(room, participant, track) => {
            WebhookEvent::new(wh::EVENT_TRACK_UNPUBLISHED)
                .with_room(room_info(room))
                .with_participant(participant_info(participant, wh::ParticipantState::Active))
                .with_track(track_info(track))
        }
    }
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn room_info(room: &RoomSummary) -> wh::RoomInfo {
    let created = millis(room.created_at);
    wh::RoomInfo {
        sid: room.sid.clone(),
        name: room.name.clone(),
        empty_timeout: room.settings.empty_timeout.as_secs() as u32,
        departure_timeout: room.settings.departure_timeout.as_secs() as u32,
        max_participants: room.settings.max_participants,
        creation_time: created / 1000,
        creation_time_ms: created,
        metadata: room.metadata.clone(),
        num_participants: room.num_participants,
        num_publishers: room.num_publishers,
        active_recording: false,
    }
}

pub fn participant_info(
    participant: &ParticipantSummary,
    state: wh::ParticipantState,
) -> wh::ParticipantInfo {
    let joined = millis(participant.joined_at);
    let permissions = &participant.permissions;
    wh::ParticipantInfo {
        sid: participant.info.sid.to_string(),
        identity: participant.info.identity.clone(),
        state,
        tracks: participant.tracks.iter().map(track_info).collect(),
        metadata: participant.info.metadata.clone(),
        joined_at: joined / 1000,
        joined_at_ms: joined,
        name: participant.info.name.clone(),
        version: 0,
        permission: Some(wh::ParticipantPermission {
            can_subscribe: permissions.can_subscribe,
            can_publish: permissions.can_publish,
            can_publish_data: permissions.can_publish_data,
            can_publish_sources: permissions
                .publish_sources
                .iter()
                .map(|s| source(*s))
                .collect(),
            hidden: permissions.hidden,
            recorder: permissions.recorder,
            can_update_metadata: false,
        }),
        is_publisher: !participant.tracks.is_empty(),
        kind: wh::ParticipantKind::Standard,
    }
}

pub fn track_info(track: &TrackInfo) -> wh::TrackInfo {
    wh::TrackInfo {
        sid: track.sid.to_string(),
        r#type: match track.kind {
            TrackKind::Audio => wh::TrackType::Audio,
            TrackKind::Video => wh::TrackType::Video,
        },
        name: String::new(),
        muted: track.muted,
        width: 0,
        height: 0,
        simulcast: track.simulcast_layers.len() > 1,
        source: source(track.source),
        mime_type: format!("{}/{}", track.kind.name(), mime_subtype(track)),
        mid: String::new(),
    }
}

fn mime_subtype(track: &TrackInfo) -> &'static str {
    match track.codec {
        super::Codec::Opus => "opus",
        super::Codec::Vp8 => "VP8",
        super::Codec::H264 => "H264",
        super::Codec::Vp9 => "VP9",
        super::Codec::Av1 => "AV1",
    }
}

fn source(source: TrackSource) -> wh::TrackSource {
    match source {
        TrackSource::Camera => wh::TrackSource::Camera,
        TrackSource::Microphone => wh::TrackSource::Microphone,
        TrackSource::ScreenShare => wh::TrackSource::ScreenShare,
        TrackSource::ScreenShareAudio => wh::TrackSource::ScreenShareAudio,
        TrackSource::Unknown => wh::TrackSource::Unknown,
    }
}

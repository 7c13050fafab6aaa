//! Room notices from the bus, sent out as LiveKit-format webhooks.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast::{self, error::RecvError};

use livekit_protocol as proto;

use super::webhook::{self as wh, WebhookEvent, WebhookNotifier};
use super::{
    ParticipantSummary, Permissions, RoomNotice, RoomSummary, TrackInfo, TrackKind, TrackSource,
};

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
    use proto::participant_info::State;
    let (event, room, participant, track) = match notice {
        RoomNotice::RoomStarted(room) => (wh::EVENT_ROOM_STARTED, room, None, None),
        RoomNotice::RoomFinished(room) => (wh::EVENT_ROOM_FINISHED, room, None, None),
        RoomNotice::ParticipantJoined(room, participant) => (
            wh::EVENT_PARTICIPANT_JOINED,
            room,
            Some(participant_info(participant, State::Active)),
            None,
        ),
        RoomNotice::ParticipantLeft(room, participant) => (
            wh::EVENT_PARTICIPANT_LEFT,
            room,
            Some(participant_info(participant, State::Disconnected)),
            None,
        ),
        RoomNotice::TrackPublished(room, participant, track) => (
            wh::EVENT_TRACK_PUBLISHED,
            room,
            Some(participant_info(participant, State::Active)),
            Some(track_info(track)),
        ),
        RoomNotice::TrackUnpublished(room, participant, track) => (
            wh::EVENT_TRACK_UNPUBLISHED,
            room,
            Some(participant_info(participant, State::Active)),
            Some(track_info(track)),
        ),
    };
    WebhookEvent {
        room: Some(room_info(room)),
        participant,
        track,
        ..wh::new_event(event)
    }
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `livekit.Room` as RoomService and webhooks report it.
pub fn room_info(room: &RoomSummary) -> proto::Room {
    let created = millis(room.created_at);
    proto::Room {
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
        active_recording: room.active_recording,
        ..Default::default()
    }
}

pub fn participant_info(
    participant: &ParticipantSummary,
    state: proto::participant_info::State,
) -> proto::ParticipantInfo {
    let joined = millis(participant.joined_at);
    proto::ParticipantInfo {
        sid: participant.info.sid.to_string(),
        identity: participant.info.identity.clone(),
        state: state as i32,
        tracks: participant.tracks.iter().map(track_info).collect(),
        metadata: participant.info.metadata.clone(),
        joined_at: joined / 1000,
        joined_at_ms: joined,
        name: participant.info.name.clone(),
        version: participant.version,
        permission: Some(permission(&participant.permissions)),
        is_publisher: !participant.tracks.is_empty(),
        kind: if participant.info.agent {
            proto::participant_info::Kind::Agent
        } else {
            proto::participant_info::Kind::Standard
        } as i32,
        attributes: participant
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..Default::default()
    }
}

#[allow(deprecated)] // `recorder`: LiveKit still fills it
pub fn permission(permissions: &Permissions) -> proto::ParticipantPermission {
    proto::ParticipantPermission {
        can_subscribe: permissions.can_subscribe,
        can_publish: permissions.can_publish,
        can_publish_data: permissions.can_publish_data,
        can_publish_sources: permissions
            .publish_sources
            .iter()
            .map(|s| source(*s) as i32)
            .collect(),
        hidden: permissions.hidden,
        recorder: permissions.recorder,
        can_update_metadata: permissions.can_update_metadata,
        agent: permissions.agent,
        ..Default::default()
    }
}

#[allow(deprecated)] // `simulcast`: LiveKit still fills it
pub fn track_info(track: &TrackInfo) -> proto::TrackInfo {
    proto::TrackInfo {
        sid: track.sid.to_string(),
        r#type: match track.kind {
            TrackKind::Audio => proto::TrackType::Audio,
            TrackKind::Video => proto::TrackType::Video,
        } as i32,
        muted: track.muted,
        simulcast: track.simulcast_layers.len() > 1,
        source: source(track.source) as i32,
        mime_type: format!("{}/{}", track.kind.name(), mime_subtype(track)),
        ..Default::default()
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

pub fn source(source: TrackSource) -> proto::TrackSource {
    match source {
        TrackSource::Camera => proto::TrackSource::Camera,
        TrackSource::Microphone => proto::TrackSource::Microphone,
        TrackSource::ScreenShare => proto::TrackSource::ScreenShare,
        TrackSource::ScreenShareAudio => proto::TrackSource::ScreenShareAudio,
        TrackSource::Unknown => proto::TrackSource::Unknown,
    }
}

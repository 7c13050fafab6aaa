//! `livekit.RoomService`: rooms and participants of the SFU, with LiveKit's
//! grants (`roomCreate`, `roomList`, `roomAdmin` for the named room).

use axum::response::Response;
use livekit_protocol as proto;
use proto::participant_info::State;

use super::{Call, TwirpError};
use crate::sfu::notify::{participant_info, room_info, track_info};
use crate::sfu::{
    ParticipantChange, Permissions, RoomSettings, Sfu, SfuError, TrackSid, TrackSource,
};

pub const METHODS: [&str; 11] = [
    "CreateRoom",
    "ListRooms",
    "DeleteRoom",
    "ListParticipants",
    "GetParticipant",
    "RemoveParticipant",
    "MutePublishedTrack",
    "UpdateParticipant",
    "UpdateSubscriptions",
    "SendData",
    "UpdateRoomMetadata",
];

pub async fn call(call: &Call, method: &str) -> Result<Response, TwirpError> {
    let sfu = call
        .state
        .sfu
        .as_ref()
        .ok_or_else(|| TwirpError::unavailable("the SFU is not running on this node"))?;
    match method {
        "CreateRoom" => {
            let request: proto::CreateRoomRequest = call.request()?;
            call.require("roomCreate", None, |g| g.room_create)?;
            call.respond(&create_room(call, sfu, request).await?)
        }
        "ListRooms" => {
            let request: proto::ListRoomsRequest = call.request()?;
            call.require("roomList", None, |g| g.room_list)?;
            let rooms = sfu.rooms().await?;
            let rooms = rooms
                .iter()
                .filter(|r| request.names.is_empty() || request.names.contains(&r.name))
                .map(room_info)
                .collect();
            call.respond(&proto::ListRoomsResponse { rooms })
        }
        "DeleteRoom" => {
            let request: proto::DeleteRoomRequest = call.request()?;
            call.require("roomCreate", None, |g| g.room_create)?;
            sfu.delete_room(&request.room).await?;
            call.respond(&proto::DeleteRoomResponse {})
        }
        "ListParticipants" => {
            let request: proto::ListParticipantsRequest = call.request()?;
            admin(call, &request.room)?;
            let snapshot = sfu.room(&request.room).await?;
            let participants = snapshot
                .participants
                .iter()
                .map(|p| participant_info(p, State::Active))
                .collect();
            call.respond(&proto::ListParticipantsResponse { participants })
        }
        "GetParticipant" => {
            let request: proto::RoomParticipantIdentity = call.request()?;
            admin(call, &request.room)?;
            let snapshot = sfu.room(&request.room).await?;
            let participant = snapshot
                .participants
                .iter()
                .find(|p| p.info.identity == request.identity)
                .ok_or_else(|| unknown_participant(&request.room, &request.identity))?;
            call.respond(&participant_info(participant, State::Active))
        }
        "RemoveParticipant" => {
            let request: proto::RoomParticipantIdentity = call.request()?;
            admin(call, &request.room)?;
            sfu.remove_participant(&request.room, &request.identity)
                .await?;
            call.respond(&proto::RemoveParticipantResponse {})
        }
        "MutePublishedTrack" => {
            let request: proto::MuteRoomTrackRequest = call.request()?;
            admin(call, &request.room)?;
            let track = TrackSid(request.track_sid.clone());
            let info = sfu
                .mute_track(&request.room, &request.identity, &track, request.muted)
                .await?;
            call.respond(&proto::MuteRoomTrackResponse {
                track: Some(track_info(&info)),
            })
        }
        "UpdateParticipant" => {
            let request: proto::UpdateParticipantRequest = call.request()?;
            admin(call, &request.room)?;
            let change = participant_change(&request)?;
            let updated = sfu
                .update_participant(&request.room, &request.identity, change)
                .await?;
            call.respond(&participant_info(&updated, State::Active))
        }
        "UpdateSubscriptions" => {
            let request: proto::UpdateSubscriptionsRequest = call.request()?;
            admin(call, &request.room)?;
            check_subscriptions(sfu, &request).await?;
            call.respond(&proto::UpdateSubscriptionsResponse {})
        }
        "SendData" => {
            let request: proto::SendDataRequest = call.request()?;
            admin(call, &request.room)?;
            // WHIP/WHEP sessions carry no data channels: with nobody able to
            // receive, sending succeeds and reaches no one (as in LiveKit).
            sfu.room(&request.room).await?;
            call.respond(&proto::SendDataResponse {})
        }
        "UpdateRoomMetadata" => {
            let request: proto::UpdateRoomMetadataRequest = call.request()?;
            admin(call, &request.room)?;
            let room = sfu
                .update_room_metadata(&request.room, &request.metadata)
                .await?;
            call.respond(&room_info(&room))
        }
        _ => Err(TwirpError::bad_route(format!(
            "RoomService has no method `{method}`"
        ))),
    }
}

fn admin(call: &Call, room: &str) -> Result<(), TwirpError> {
    call.require("roomAdmin", Some(room), |g| g.room_admin)
}

fn unknown_participant(room: &str, identity: &str) -> TwirpError {
    SfuError::UnknownParticipant {
        room: room.to_string(),
        identity: identity.to_string(),
    }
    .into()
}

async fn create_room(
    call: &Call,
    sfu: &Sfu,
    request: proto::CreateRoomRequest,
) -> Result<proto::Room, TwirpError> {
    crate::livestream::validate_room_name(&request.name)
        .map_err(|e| TwirpError::invalid_argument(e.message))?;
    if let Some(egress) = request.egress.clone() {
        let auto = call
            .state
            .auto_egress
            .as_ref()
            .ok_or_else(|| TwirpError::unavailable("auto egress needs the SFU on this node"))?;
        auto.register(&request.name, &call.caller, egress)?;
    }
    let defaults = call.state.room_defaults;
    let settings = RoomSettings {
        empty_timeout: seconds_or(request.empty_timeout, defaults.empty_timeout),
        departure_timeout: seconds_or(request.departure_timeout, defaults.departure_timeout),
        max_participants: request.max_participants,
    };
    let room = sfu
        .create_room(&request.name, Some(settings), &request.metadata)
        .await?;
    Ok(room_info(&room))
}

/// LiveKit treats 0 as "the server's default".
fn seconds_or(seconds: u32, default: std::time::Duration) -> std::time::Duration {
    if seconds == 0 {
        default
    } else {
        std::time::Duration::from_secs(seconds.into())
    }
}

/// LiveKit's rules: empty name or metadata leave them as they are; an
/// attribute with an empty value is removed; a permission replaces the old.
fn participant_change(
    request: &proto::UpdateParticipantRequest,
) -> Result<ParticipantChange, TwirpError> {
    let permissions = request.permission.as_ref().map(permissions).transpose()?;
    let mut attributes: Vec<(String, String)> = request
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    attributes.sort();
    Ok(ParticipantChange {
        name: Some(request.name.clone()).filter(|n| !n.is_empty()),
        metadata: Some(request.metadata.clone()).filter(|m| !m.is_empty()),
        attributes,
        permissions,
    })
}

#[allow(deprecated)] // `recorder`: LiveKit still sends it
fn permissions(permission: &proto::ParticipantPermission) -> Result<Permissions, TwirpError> {
    let publish_sources = permission
        .can_publish_sources
        .iter()
        .map(|&source| match proto::TrackSource::try_from(source) {
            Ok(proto::TrackSource::Camera) => Ok(TrackSource::Camera),
            Ok(proto::TrackSource::Microphone) => Ok(TrackSource::Microphone),
            Ok(proto::TrackSource::ScreenShare) => Ok(TrackSource::ScreenShare),
            Ok(proto::TrackSource::ScreenShareAudio) => Ok(TrackSource::ScreenShareAudio),
            _ => Err(TwirpError::invalid_argument(format!(
                "permission.can_publish_sources: {source} is not a publishable track source"
            ))),
        })
        .collect::<Result<_, _>>()?;
    Ok(Permissions {
        can_publish: permission.can_publish,
        can_subscribe: permission.can_subscribe,
        can_publish_data: permission.can_publish_data,
        publish_sources,
        hidden: permission.hidden,
        recorder: permission.recorder,
        can_update_metadata: permission.can_update_metadata,
        agent: permission.agent,
    })
}

/// The participant and every named track must exist. WHIP publishers
/// subscribe to nothing, so there is no subscription to change yet.
async fn check_subscriptions(
    sfu: &Sfu,
    request: &proto::UpdateSubscriptionsRequest,
) -> Result<(), TwirpError> {
    let snapshot = sfu.room(&request.room).await?;
    if !snapshot
        .participants
        .iter()
        .any(|p| p.info.identity == request.identity)
    {
        return Err(unknown_participant(&request.room, &request.identity));
    }
    let named = request.track_sids.iter().chain(
        request
            .participant_tracks
            .iter()
            .flat_map(|p| &p.track_sids),
    );
    for sid in named {
        let exists = snapshot
            .participants
            .iter()
            .any(|p| p.tracks.iter().any(|t| t.sid.as_str() == sid));
        if !exists {
            return Err(SfuError::UnknownTrack(TrackSid(sid.clone())).into());
        }
    }
    Ok(())
}

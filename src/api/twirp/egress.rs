//! `livekit.Egress`: LiveKit's egress API over onair livestreams. Every
//! egress is a livestream (same row, state machine, outputs, webhooks);
//! every method needs the `roomRecord` grant, and an egress belongs to the
//! API key that started it.

use axum::response::Response;
use livekit_protocol as proto;

use super::{Call, TwirpError};
use crate::composer::track_egress::Container;
use crate::livestream::egress::{
    EgressContext, TrackFacts, egress_info, participant, room_composite, track, track_composite,
};
use crate::livestream::{GoLive, Target, UpdateRequest, ValidationError};
use crate::sfu::TrackKind;

pub const METHODS: [&str; 10] = [
    "StartRoomCompositeEgress",
    "StartParticipantEgress",
    "StartTrackCompositeEgress",
    "StartTrackEgress",
    "StartWebEgress",
    "StartEgress",
    "UpdateLayout",
    "UpdateStream",
    "ListEgress",
    "StopEgress",
];

pub async fn call(call: &Call, method: &str) -> Result<Response, TwirpError> {
    let livestreams = &call.state.livestreams;
    match method {
        "StartRoomCompositeEgress" => {
            let request: proto::RoomCompositeEgressRequest = call.request()?;
            record(call)?;
            let room = request.room_name.clone();
            start(call, &room, |context| room_composite(request, context)).await
        }
        "StartParticipantEgress" => {
            let request: proto::ParticipantEgressRequest = call.request()?;
            record(call)?;
            let room = request.room_name.clone();
            start(call, &room, |context| participant(request, context)).await
        }
        "StartTrackCompositeEgress" => {
            let request: proto::TrackCompositeEgressRequest = call.request()?;
            record(call)?;
            let room = request.room_name.clone();
            start(call, &room, |context| track_composite(request, context)).await
        }
        "StartTrackEgress" => {
            let request: proto::TrackEgressRequest = call.request()?;
            record(call)?;
            let room = request.room_name.clone();
            let facts = track_facts(call, &room, &request.track_id).await?;
            start(call, &room, |context| track(request, &facts, context)).await
        }
        "UpdateLayout" => {
            let request: proto::UpdateLayoutRequest = call.request()?;
            record(call)?;
            let update = UpdateRequest {
                layout: Some(request.layout),
                ..Default::default()
            };
            let details = livestreams
                .update(&call.caller, egress(&request.egress_id)?, update)
                .await?;
            call.respond(&egress_info(&details))
        }
        "UpdateStream" => {
            let request: proto::UpdateStreamRequest = call.request()?;
            record(call)?;
            let target = egress(&request.egress_id)?;
            let details = livestreams
                .update_stream(
                    &call.caller,
                    target,
                    &request.add_output_urls,
                    &request.remove_output_urls,
                )
                .await?;
            call.respond(&egress_info(&details))
        }
        "ListEgress" => {
            let request: proto::ListEgressRequest = call.request()?;
            record(call)?;
            let room = Some(request.room_name.as_str()).filter(|r| !r.is_empty());
            let id = Some(request.egress_id.as_str()).filter(|e| !e.is_empty());
            let items = livestreams
                .list_egresses(&call.caller, room, id, request.active)
                .await?
                .iter()
                .map(egress_info)
                .collect();
            call.respond(&proto::ListEgressResponse {
                items,
                ..Default::default()
            })
        }
        "StopEgress" => {
            let request: proto::StopEgressRequest = call.request()?;
            record(call)?;
            let details = livestreams
                .stop(&call.caller, egress(&request.egress_id)?)
                .await?;
            call.respond(&egress_info(&details))
        }
        "StartWebEgress" => Err(TwirpError::invalid_argument(
            "web egress records a web page in a browser; onair composes rooms natively (use StartRoomCompositeEgress)",
        )),
        other => Err(TwirpError::invalid_argument(format!(
            "{other} is not supported; use StartRoomCompositeEgress, StartParticipantEgress, StartTrackCompositeEgress or StartTrackEgress"
        ))),
    }
}

/// Translates an egress request in the room's context and starts it.
async fn start(
    call: &Call,
    room: &str,
    translate: impl FnOnce(&EgressContext) -> Result<GoLive, ValidationError>,
) -> Result<Response, TwirpError> {
    let livestreams = &call.state.livestreams;
    let room_id = room_sid(call, room).await?;
    let settings = livestreams.settings();
    let context = EgressContext {
        limits: &settings.limits,
        capabilities: settings.capabilities,
        layouts: &settings.layouts,
        room_id,
        now: chrono::Utc::now(),
        keys: &call.state.keys,
    };
    let go_live = translate(&context)?;
    let details = livestreams.start(&call.caller, go_live).await?;
    call.respond(&egress_info(&details))
}

fn record(call: &Call) -> Result<(), TwirpError> {
    call.require("roomRecord", None, |g| g.room_record)
}

fn egress(egress_id: &str) -> Result<Target, TwirpError> {
    if egress_id.is_empty() {
        return Err(TwirpError::invalid_argument("egress_id is required"));
    }
    Ok(Target::Egress(egress_id.to_string()))
}

/// The room's sid; an egress of a room that does not exist fails, as in LiveKit.
async fn room_sid(call: &Call, room: &str) -> Result<String, TwirpError> {
    crate::livestream::validate_room_name(room)
        .map_err(|e| TwirpError::invalid_argument(e.message))?;
    let sfu = call
        .state
        .sfu
        .as_ref()
        .ok_or_else(|| TwirpError::unavailable("the SFU is not running on this node"))?;
    Ok(sfu.room(room).await?.room.sid)
}

/// The published track a track egress records, and the container its
/// codec goes into.
async fn track_facts(call: &Call, room: &str, track_id: &str) -> Result<TrackFacts, TwirpError> {
    crate::livestream::validate_room_name(room)
        .map_err(|e| TwirpError::invalid_argument(e.message))?;
    let sfu = call
        .state
        .sfu
        .as_ref()
        .ok_or_else(|| TwirpError::unavailable("the SFU is not running on this node"))?;
    let snapshot = sfu.room(room).await?;
    let (owner, info) = snapshot
        .participants
        .iter()
        .find_map(|p| {
            p.tracks
                .iter()
                .find(|t| t.sid.as_str() == track_id)
                .map(|t| (p, t))
        })
        .ok_or_else(|| TwirpError::not_found(format!("no track `{track_id}` in room `{room}`")))?;
    let container = Container::for_codec(info.codec).ok_or_else(|| {
        TwirpError::invalid_argument(format!(
            "track `{track_id}` is {}, which this server cannot record without transcoding",
            info.codec.encoding_name()
        ))
    })?;
    Ok(TrackFacts {
        sid: track_id.to_string(),
        audio: info.kind == TrackKind::Audio,
        source: info.source.name().to_string(),
        publisher_identity: owner.info.identity.clone(),
        extension: container.extension(),
    })
}

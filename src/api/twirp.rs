//! LiveKit's RoomService over Twirp with JSON bodies
//! (`POST /twirp/livekit.RoomService/<Method>`), so LiveKit's server SDKs
//! that speak JSON (Node's) list rooms and participants, remove
//! participants and mute tracks unchanged. Errors are Twirp's `{code, msg}`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::AppState;
use crate::auth::{Caller, Credentials};
use crate::sfu::notify::{participant_info, room_info, track_info};
use crate::sfu::webhook::ParticipantState;
use crate::sfu::{RoomSettings, SfuError, TrackSid};

pub fn routes() -> Router<AppState> {
    Router::new().route("/twirp/livekit.RoomService/{method}", post(room_service))
}

/// A Twirp error: `{"code", "msg"}` with exactly `application/json`.
struct TwirpError {
    status: StatusCode,
    code: &'static str,
    msg: String,
}

impl TwirpError {
    fn new(status: StatusCode, code: &'static str, msg: impl Into<String>) -> TwirpError {
        TwirpError {
            status,
            code,
            msg: msg.into(),
        }
    }
}

impl IntoResponse for TwirpError {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.code, "msg": self.msg, "meta": {} }).to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

impl From<SfuError> for TwirpError {
    fn from(error: SfuError) -> TwirpError {
        let msg = error.to_string();
        match error {
            SfuError::UnknownRoom(_)
            | SfuError::UnknownParticipant { .. }
            | SfuError::UnknownTrack(_) => TwirpError::new(StatusCode::NOT_FOUND, "not_found", msg),
            SfuError::Stopped => {
                TwirpError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", msg)
            }
            _ => TwirpError::new(StatusCode::BAD_REQUEST, "invalid_argument", msg),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListRoomsRequest {
    names: Vec<String>,
}

/// LiveKit's CreateRoomRequest (the fields onair honours).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CreateRoomRequest {
    name: String,
    #[serde(alias = "empty_timeout")]
    empty_timeout: u32,
    #[serde(alias = "departure_timeout")]
    departure_timeout: u32,
    #[serde(alias = "max_participants")]
    max_participants: u32,
    metadata: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoomRequest {
    room: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ParticipantRequest {
    room: String,
    identity: String,
}

/// Node's SDK sends lowerCamelCase; proto names (snake_case) are accepted too.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MuteRequest {
    room: String,
    identity: String,
    #[serde(alias = "track_sid")]
    track_sid: String,
    muted: bool,
}

async fn room_service(
    State(state): State<AppState>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, TwirpError> {
    let caller = super::auth::authenticate(&state, &headers)
        .map_err(|e| TwirpError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.message))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(TwirpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "malformed",
            format!(
                "only JSON Twirp bodies are served (Content-Type: application/json), got `{content_type}`"
            ),
        ));
    }
    let sfu = state.sfu.as_ref().ok_or_else(|| {
        TwirpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the SFU is not running",
        )
    })?;
    match method.as_str() {
        "ListRooms" => {
            let request: ListRoomsRequest = parse(&body)?;
            require(&caller, "roomList", None, |g| g.room_list)?;
            let rooms = sfu.rooms().await?;
            let rooms: Vec<_> = rooms
                .iter()
                .filter(|r| request.names.is_empty() || request.names.contains(&r.name))
                .map(room_info)
                .collect();
            Ok(Json(json!({ "rooms": rooms })))
        }
        "CreateRoom" => {
            let request: CreateRoomRequest = parse(&body)?;
            require(&caller, "roomCreate", None, |g| g.room_create)?;
            crate::livestream::validate_room_name(&request.name).map_err(|e| {
                TwirpError::new(StatusCode::BAD_REQUEST, "invalid_argument", e.message)
            })?;
            let defaults = state.room_defaults;
            let settings = RoomSettings {
                empty_timeout: seconds_or(request.empty_timeout, defaults.empty_timeout),
                departure_timeout: seconds_or(
                    request.departure_timeout,
                    defaults.departure_timeout,
                ),
                max_participants: request.max_participants,
            };
            let room = sfu
                .create_room(&request.name, Some(settings), &request.metadata)
                .await?;
            Ok(Json(json!(room_info(&room))))
        }
        "DeleteRoom" => {
            let request: RoomRequest = parse(&body)?;
            require(&caller, "roomCreate", None, |g| g.room_create)?;
            sfu.delete_room(&request.room).await?;
            Ok(Json(json!({})))
        }
        "ListParticipants" => {
            let request: RoomRequest = parse(&body)?;
            require(&caller, "roomAdmin", Some(&request.room), |g| g.room_admin)?;
            let snapshot = sfu.room(&request.room).await?;
            let participants: Vec<_> = snapshot
                .participants
                .iter()
                .map(|p| participant_info(p, ParticipantState::Active))
                .collect();
            Ok(Json(json!({ "participants": participants })))
        }
        "GetParticipant" => {
            let request: ParticipantRequest = parse(&body)?;
            require(&caller, "roomAdmin", Some(&request.room), |g| g.room_admin)?;
            let snapshot = sfu.room(&request.room).await?;
            let participant = snapshot
                .participants
                .iter()
                .find(|p| p.info.identity == request.identity)
                .ok_or_else(|| SfuError::UnknownParticipant {
                    room: request.room.clone(),
                    identity: request.identity.clone(),
                })?;
            Ok(Json(json!(participant_info(
                participant,
                ParticipantState::Active
            ))))
        }
        "RemoveParticipant" => {
            let request: ParticipantRequest = parse(&body)?;
            require(&caller, "roomAdmin", Some(&request.room), |g| g.room_admin)?;
            sfu.remove_participant(&request.room, &request.identity)
                .await?;
            Ok(Json(json!({})))
        }
        "MutePublishedTrack" => {
            let request: MuteRequest = parse(&body)?;
            require(&caller, "roomAdmin", Some(&request.room), |g| g.room_admin)?;
            let track = TrackSid(request.track_sid.clone());
            let info = sfu
                .mute_track(&request.room, &request.identity, &track, request.muted)
                .await?;
            Ok(Json(json!({ "track": track_info(&info) })))
        }
        other => Err(TwirpError::new(
            StatusCode::NOT_FOUND,
            "bad_route",
            format!("RoomService has no method `{other}` here"),
        )),
    }
}

/// LiveKit treats 0 as "the server's default".
fn seconds_or(seconds: u32, default: std::time::Duration) -> std::time::Duration {
    if seconds == 0 {
        default
    } else {
        std::time::Duration::from_secs(seconds.into())
    }
}

fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, TwirpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| TwirpError::new(StatusCode::BAD_REQUEST, "malformed", e.to_string()))
}

/// API credentials may do anything; a token needs `grant` (for `room` when given).
fn require(
    caller: &Caller,
    name: &str,
    room: Option<&str>,
    grant: impl Fn(&crate::auth::VideoGrant) -> bool,
) -> Result<(), TwirpError> {
    let Credentials::Token(claims) = &caller.credentials else {
        return Ok(());
    };
    let allowed = grant(&claims.video) && room.is_none_or(|room| claims.video.room == room);
    if allowed {
        Ok(())
    } else {
        let scope = room.map(|r| format!(" for room `{r}`")).unwrap_or_default();
        Err(TwirpError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            format!("the token lacks the {name} grant{scope}"),
        ))
    }
}

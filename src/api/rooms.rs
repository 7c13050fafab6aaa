//! The room page (`GET /rooms/{room}`): a person publishes camera and
//! microphone through WHIP and sees who is in the room. Plus the JSON it
//! polls and, in dev mode, a way to get a token by typing a name.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::ApiJson;
use super::html::{checked_identity, dev_token as sign_dev_token, render, require_dev_mode};
use super::whip::{may_view, sfu};
use crate::auth::VideoGrant;
use crate::config::DEV_API_SECRET;
use crate::livestream::validate_room_name;
use crate::sfu::{ParticipantSummary, SfuError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rooms/{room}", get(page))
        .route("/rooms/{room}/participants", get(participants))
        .route("/rooms/{room}/dev-token", post(dev_token))
}

fn checked_room(room: &str) -> Result<(), ApiError> {
    validate_room_name(room).map_err(|e| ApiError::bad_request(e.code, e.message))
}

async fn page(
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    checked_room(&room)?;
    let mut context = tera::Context::new();
    context.insert("room", &room);
    context.insert("dev_mode", &state.dev_mode);
    context.insert("whip_url", "/whip/v1");
    Ok(render("room.html", &context)?.into_response())
}

async fn participants(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    checked_room(&room)?;
    let caller = super::auth::authenticate(&state, &headers)?;
    if !may_view(&caller, &room) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            format!("the token is not for room `{room}`"),
        ));
    }
    match sfu(&state)?.room(&room).await {
        Ok(snapshot) => Ok(Json(json!({
            "room": { "name": snapshot.room.name, "sid": snapshot.room.sid },
            "participants": snapshot.participants.iter().map(participant_json).collect::<Vec<_>>(),
        }))),
        Err(SfuError::UnknownRoom(_)) => Ok(Json(json!({ "room": null, "participants": [] }))),
        Err(error) => Err(error.into()),
    }
}

fn participant_json(participant: &ParticipantSummary) -> Value {
    json!({
        "sid": participant.info.sid.as_str(),
        "identity": participant.info.identity,
        "name": participant.info.display_name(),
        "tracks": participant.tracks.iter().map(|t| json!({
            "sid": t.sid.as_str(),
            "kind": t.kind.name(),
            "source": t.source.name(),
            "muted": t.muted,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenRequest {
    identity: String,
    #[serde(default)]
    name: String,
}

/// Dev mode only: anyone may join by typing a name, as with LiveKit's `--dev`.
async fn dev_token(
    State(state): State<AppState>,
    Path(room): Path<String>,
    ApiJson(request): ApiJson<DevTokenRequest>,
) -> Result<Json<Value>, ApiError> {
    require_dev_mode(&state)?;
    checked_room(&room)?;
    let identity = checked_identity(request.identity.trim())?;
    let grant = VideoGrant {
        room_join: true,
        room: room.clone(),
        ..VideoGrant::default()
    };
    let name = if request.name.trim().is_empty() {
        identity
    } else {
        request.name.trim()
    };
    let token = sign_dev_token(identity, name, grant, DEV_API_SECRET)?;
    Ok(Json(json!({ "token": token })))
}

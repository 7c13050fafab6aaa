//! The room page (`GET /rooms/{room}`): a person publishes camera and
//! microphone through WHIP and sees who is in the room. Plus the JSON it
//! polls and, in dev mode, a way to get a token by typing a name.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::ApiJson;
use super::whip::{may_view, sfu};
use crate::auth::{AccessToken, VideoGrant};
use crate::config::{DEV_API_KEY, DEV_API_SECRET};
use crate::livestream::validate_room_name;
use crate::sfu::{ParticipantSummary, SfuError};

const ROOM_PAGE: &str = include_str!("../../templates/room.html");
/// Dev tokens last a working day.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rooms/{room}", get(page))
        .route("/rooms/{room}/participants", get(participants))
        .route("/rooms/{room}/dev-token", post(dev_token))
}

fn templates() -> &'static tera::Tera {
    static TERA: OnceLock<tera::Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut tera = tera::Tera::default();
        // The `.html` name turns on autoescaping.
        tera.add_raw_template("room.html", ROOM_PAGE)
            .expect("the built-in room page is a valid template");
        tera
    })
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
    let html = templates().render("room.html", &context).map_err(|error| {
        tracing::error!(%error, "room page did not render");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the room page did not render",
        )
    })?;
    Ok(Html(html).into_response())
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
    if !state.dev_mode {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "dev tokens exist only in development mode",
        ));
    }
    checked_room(&room)?;
    let identity = request.identity.trim();
    if identity.is_empty() || identity.len() > 128 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_identity",
            "identity must be 1 to 128 characters",
        ));
    }
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
    let token = AccessToken::new(DEV_API_KEY, identity, DEV_TOKEN_TTL)
        .with_grant(grant)
        .with_name(name)
        .sign(DEV_API_SECRET)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(Json(json!({ "token": token })))
}

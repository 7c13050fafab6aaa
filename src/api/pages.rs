//! The dashboard: `/` (rooms, livestreams, go live) and `/livestreams/{id}`
//! (state, history, outputs, layout, preview, stop). The pages are served to
//! anyone and hold no data: their script (`/dashboard/dashboard.js`) signs in
//! with an access token or an API key and secret kept in `sessionStorage`,
//! and reads everything through the authenticated REST API. Two small
//! routes exist for it: the open rooms with their counts
//! (`GET /dashboard/rooms`, authenticated, the `roomList` grant) and, in dev
//! mode, a dashboard token (`POST /dashboard/dev-token`).

use std::time::UNIX_EPOCH;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::ApiJson;
use super::html::{checked_identity, dev_token as sign_dev_token, require_dev_mode};
use super::whip::{may_view, sfu};
use crate::auth::VideoGrant;
use crate::config::DEV_API_KEY;
use crate::livestream::EncodingPreset;
use crate::sfu::RoomSummary;

const SCRIPT: &str = include_str!("../../templates/dashboard.js");
const STYLE: &str = include_str!("../../templates/dashboard.css");

/// The built-in layouts, in the order the pages offer them.
const LAYOUTS: [&str; 6] = [
    "gallery",
    "active-speaker",
    "crop",
    "grid",
    "speaker",
    "single-speaker",
];
const DEV_IDENTITY: &str = "dashboard";
/// Scripts, styles and requests only from onair itself; the program's
/// stream and frames are shown from `blob:` URLs (fetched with the
/// `Authorization` header).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' blob: data:; media-src blob:; connect-src 'self'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/livestreams/{id}", get(livestream))
        .route("/dashboard/dashboard.js", get(script))
        .route("/dashboard/dashboard.css", get(style))
        .route("/dashboard/rooms", get(rooms))
        .route("/dashboard/dev-token", post(dev_token))
}

/// A dashboard page, with the dashboard's security headers.
fn render(name: &str, context: &tera::Context) -> Result<Response, ApiError> {
    let mut response = super::html::render(name, context)?.into_response();
    secure(&mut response, "no-store");
    Ok(response)
}

fn secure(response: &mut Response, cache: &'static str) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
}

fn page_context(dev_mode: bool) -> tera::Context {
    let mut context = tera::Context::new();
    context.insert("dev_mode", &dev_mode);
    context.insert("layouts", &LAYOUTS);
    context.insert("presets", &EncodingPreset::preset_names());
    context.insert("resolutions", &EncodingPreset::resolutions());
    context.insert("default_preset", crate::livestream::DEFAULT_PRESET);
    context
}

async fn home(State(state): State<AppState>) -> Result<Response, ApiError> {
    render("dashboard.html", &page_context(state.dev_mode))
}

async fn livestream(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return (
            StatusCode::NOT_FOUND,
            "no such page: livestream ids are UUIDs\n",
        )
            .into_response();
    };
    let mut context = page_context(state.dev_mode);
    context.insert("livestream_id", &id.to_string());
    render("livestream.html", &context).unwrap_or_else(IntoResponse::into_response)
}

async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    // Revalidated on every load, so a new onair never runs an old script.
    secure(&mut response, "no-cache");
    response
}

/// The open rooms, for API credentials or a token with `roomList` (as
/// LiveKit's ListRooms). Participants are listed only for callers who may
/// see them on the room page (API credentials, or a token for that room).
async fn rooms(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let caller = super::auth::authenticate(&state, &headers)?;
    if caller.grant().is_some_and(|grant| !grant.room_list) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "the token lacks the roomList grant",
        ));
    }
    let sfu = sfu(&state)?;
    let mut summaries = sfu.rooms().await?;
    summaries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rooms = Vec::with_capacity(summaries.len());
    for summary in &summaries {
        let mut room = room_json(summary);
        if may_view(&caller, &summary.name)
            && let Ok(snapshot) = sfu.room(&summary.name).await
        {
            room["participants"] = snapshot
                .participants
                .iter()
                .map(|p| {
                    json!({
                        "identity": p.info.identity,
                        "name": p.info.display_name(),
                        "tracks": p.tracks.iter().map(|t| json!({
                            "kind": t.kind.name(),
                            "source": t.source.name(),
                            "muted": t.muted,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
        }
        rooms.push(room);
    }
    Ok(Json(json!({ "rooms": rooms })))
}

fn room_json(room: &RoomSummary) -> Value {
    let created_ms = room
        .created_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    json!({
        "name": room.name,
        "sid": room.sid,
        "createdAtMs": created_ms,
        "numParticipants": room.num_participants,
        "numPublishers": room.num_publishers,
        "numTracks": room.num_tracks,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenRequest {
    #[serde(default)]
    identity: Option<String>,
}

/// Dev mode only: a token that lists rooms and goes live in any room,
/// signed with the dev API key (`devkey`).
async fn dev_token(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DevTokenRequest>,
) -> Result<Json<Value>, ApiError> {
    require_dev_mode(&state)?;
    let Some(secret) = state.keys.secret(DEV_API_KEY) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_dev_key",
            format!("the dev API key `{DEV_API_KEY}` is not configured"),
        ));
    };
    let identity = match request.identity.as_deref().map(str::trim) {
        None | Some("") => DEV_IDENTITY,
        Some(identity) => checked_identity(identity)?,
    };
    let grant = VideoGrant {
        room_list: true,
        room_record: true,
        ..VideoGrant::default()
    };
    let token = sign_dev_token(identity, identity, grant, secret.expose())?;
    Ok(Json(json!({ "token": token, "identity": identity })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::html::templates;

    #[test]
    fn both_pages_render_with_every_layout_and_the_dev_button_only_in_dev_mode() {
        for dev_mode in [false, true] {
            let home = templates()
                .render("dashboard.html", &page_context(dev_mode))
                .unwrap();
            for layout in LAYOUTS {
                assert!(
                    home.contains(&format!("<option value=\"{layout}\">")),
                    "{layout}"
                );
            }
            assert!(home.contains("value=\"preset:H264_720P_30\" selected"));
            assert!(home.contains("value=\"resolution:1080x1080\""));
            assert_eq!(home.contains("id=\"login-dev\""), dev_mode);
            assert!(home.contains("data-page=\"home\""));
            assert!(home.contains("<script src=\"/dashboard/dashboard.js\"></script>"));

            let mut context = page_context(dev_mode);
            context.insert("livestream_id", "0b6c5e3e-1f8f-4c1a-9d55-6f8f3c1e2a77");
            let page = templates().render("livestream.html", &context).unwrap();
            assert!(page.contains("data-livestream-id=\"0b6c5e3e-1f8f-4c1a-9d55-6f8f3c1e2a77\""));
            assert!(page.contains("data-page=\"livestream\""));
            assert!(page.contains("id=\"preview\""));
        }
    }

    #[test]
    fn page_values_are_escaped() {
        let mut context = page_context(false);
        context.insert("livestream_id", "\"><script>alert(1)</script>");
        let page = templates().render("livestream.html", &context).unwrap();
        assert!(!page.contains("<script>alert(1)"));
        assert!(page.contains("&quot;&gt;&lt;script&gt;"));
    }
}

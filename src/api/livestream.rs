//! `/api/video/livestream`: go live, stop, list, status, update.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::views::{Keys, LivestreamView};
use crate::livestream::{GoLiveRequest, Target, UpdateRequest, validate_room_name};

const DEFAULT_LIST_LIMIT: i64 = 20;
const MAX_LIST_LIMIT: i64 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/video/livestream",
            get(list).post(go_live).delete(stop),
        )
        .route("/api/video/livestream/status", get(status))
        .route("/api/video/livestream/{id}", patch(update))
        .route("/api/video/livestream/{id}/preview.jpg", get(preview))
        .route("/api/video/livestream/{id}/preview.mp4", get(live_preview))
}

/// `?id=` or `?roomName=` (also accepted as a JSON body on DELETE).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TargetParams {
    id: Option<Uuid>,
    room_name: Option<String>,
}

impl TargetParams {
    fn target(self) -> Result<Target, ApiError> {
        match (self.id, self.room_name) {
            (Some(id), None) => Ok(Target::Id(id)),
            (None, Some(room)) => {
                validate_room_name(&room).map_err(|v| {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, v.code, v.message)
                })?;
                Ok(Target::Room(room))
            }
            _ => Err(ApiError::bad_request(
                "missing_target",
                "give exactly one of `id` or `roomName`",
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListParams {
    room_name: Option<String>,
    limit: Option<i64>,
}

async fn go_live(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<GoLiveRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let details = state.livestreams.go_live(&caller, request).await?;
    let location = format!("/api/video/livestream/status?id={}", details.row.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(LivestreamView::new(details, Keys::Show, false)),
    ))
}

async fn stop(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(query): ApiQuery<TargetParams>,
    body: Bytes,
) -> Result<Json<LivestreamView>, ApiError> {
    let params = if body.iter().all(u8::is_ascii_whitespace) {
        query
    } else if query.id.is_some() || query.room_name.is_some() {
        return Err(ApiError::bad_request(
            "missing_target",
            "give the livestream in the query or in the body, not both",
        ));
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?
    };
    let details = state.livestreams.stop(&caller, params.target()?).await?;
    Ok(Json(LivestreamView::new(details, Keys::Hide, false)))
}

async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIST_LIMIT}"),
        ));
    }
    if let Some(room) = &params.room_name {
        validate_room_name(room)
            .map_err(|v| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, v.code, v.message))?;
    }
    let items = state
        .livestreams
        .list(&caller, params.room_name.as_deref(), limit)
        .await?;
    let views: Vec<LivestreamView> = items
        .into_iter()
        .map(|d| LivestreamView::new(d, Keys::Hide, false))
        .collect();
    Ok(Json(serde_json::json!({ "livestreams": views })))
}

async fn status(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<TargetParams>,
) -> Result<Json<LivestreamView>, ApiError> {
    let details = state.livestreams.status(&caller, params.target()?).await?;
    Ok(Json(LivestreamView::new(details, Keys::Hide, true)))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", "the livestream id must be a UUID"))
}

async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateRequest>,
) -> Result<Json<LivestreamView>, ApiError> {
    let id = parse_id(&id)?;
    let details = state
        .livestreams
        .update(&caller, Target::Id(id), request)
        .await?;
    Ok(Json(LivestreamView::new(details, Keys::Hide, false)))
}

/// The running program's latest frame (JPEG, 640 px wide, twice a second).
async fn preview(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let jpeg = state.livestreams.preview(&caller, parse_id(&id)?).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        jpeg,
    ))
}

/// The running program as it is encoded, in fragmented MP4 for a Media
/// Source Extensions player (`Content-Type` carries the codecs). Starts at
/// the latest keyframe and follows the program until it ends; a viewer that
/// falls far behind has its stream ended (it reconnects).
async fn live_preview(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let feed = state
        .livestreams
        .live_preview(&caller, parse_id(&id)?)
        .await?;
    let start = futures_util::stream::iter(feed.start.into_iter().map(Ok));
    let live = futures_util::stream::unfold(feed.live, |mut live| async move {
        match live.recv().await {
            Ok(fragment) => Some((Ok::<_, std::convert::Infallible>(fragment), live)),
            // Closed: the program ended. Lagged: the rest would not decode.
            Err(_) => None,
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, feed.content_type),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::body::Body::from_stream(futures_util::StreamExt::chain(start, live)),
    ))
}

//! WHIP (RFC 9725) to publish into a room and WHEP to play a participant:
//! SDP offer in, `201 Created` with the answer and the session's URL out;
//! PATCH trickles candidates or restarts ICE; DELETE leaves.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, ETAG, LINK, LOCATION};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use tower_http::cors::{Any, CorsLayer};

use super::AppState;
use super::error::ApiError;
use crate::auth::{Caller, Credentials};
use crate::livestream::validate_room_name;
use crate::sfu::{
    JoinRequest, PatchOutcome, Permissions, SdpFrag, SessionCreated, Sfu, SfuError, ViewRequest,
};

const SDP: &str = "application/sdp";
const SDP_FRAG: &str = "application/trickle-ice-sdpfrag";

pub fn routes() -> Router<AppState> {
    // Browsers call these from pages on other origins (RFC 9725 §4.6).
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers([LOCATION, ETAG, LINK]);
    Router::new()
        .route("/whip/v1", post(publish))
        .route(
            "/whip/v1/sessions/{id}",
            patch(patch_session).delete(delete_session),
        )
        .route("/whep/v1/rooms/{room}/participants/{identity}", post(view))
        .route(
            "/whep/v1/sessions/{id}",
            patch(patch_session).delete(delete_session),
        )
        .layer(cors)
}

pub(super) fn sfu(state: &AppState) -> Result<&Sfu, ApiError> {
    state.sfu.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sfu_unavailable",
            "the SFU is not running on this server",
        )
    })
}

async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let offer = sdp_body(&headers, &body, SDP)?;
    let caller = super::auth::authenticate(&state, &headers)?;
    let join = join_request(&caller)?;
    let sfu = sfu(&state)?;
    apply_room_config(&state, sfu, &caller, &join.room).await?;
    let created = sfu.publish(join, offer).await?;
    Ok(created_response(&state, &created, "whip"))
}

async fn view(
    State(state): State<AppState>,
    Path((room, identity)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let offer = sdp_body(&headers, &body, SDP)?;
    let caller = super::auth::authenticate(&state, &headers)?;
    if !may_view(&caller, &room) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            format!(
                "the token does not allow subscribing in room `{room}` (needs roomJoin for it and canSubscribe)"
            ),
        ));
    }
    let created = sfu(&state)?
        .view(
            ViewRequest {
                room,
                target: identity,
            },
            offer,
        )
        .await?;
    Ok(created_response(&state, &created, "whep"))
}

async fn patch_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let fragment = sdp_body(&headers, &body, SDP_FRAG)?;
    let frag = SdpFrag::parse(fragment);
    match sfu(&state)?.patch(&id, frag).await? {
        PatchOutcome::Trickled => Ok(StatusCode::NO_CONTENT.into_response()),
        PatchOutcome::Restarted { etag, frag } => {
            let mut response = (StatusCode::OK, [(CONTENT_TYPE, SDP_FRAG)], frag).into_response();
            insert_header(&mut response, ETAG, &etag);
            Ok(response)
        }
    }
}

async fn delete_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    sfu(&state)?.leave(&id).await?;
    Ok(StatusCode::OK)
}

/// The body as text, after checking its content type.
fn sdp_body<'a>(headers: &HeaderMap, body: &'a Bytes, expected: &str) -> Result<&'a str, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(expected) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("expected Content-Type: {expected}, got `{content_type}`"),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("bad_sdp", "the body is not UTF-8 text"))?;
    if expected == SDP && !text.trim_start().starts_with("v=0") {
        return Err(ApiError::bad_request(
            "bad_sdp",
            "the body is not an SDP offer (it must start with `v=0`)",
        ));
    }
    Ok(text)
}

/// Publishing needs an access token naming the room and the identity.
/// A token's `roomConfig.egress` is applied when its join creates the room
/// (LiveKit's auto egress from tokens).
async fn apply_room_config(
    state: &AppState,
    sfu: &crate::sfu::Sfu,
    caller: &Caller,
    room: &str,
) -> Result<(), ApiError> {
    let Credentials::Token(claims) = &caller.credentials else {
        return Ok(());
    };
    let (Some(config), Some(auto)) = (&claims.room_config, &state.auto_egress) else {
        return Ok(());
    };
    let config: livekit_protocol::RoomConfiguration = serde_json::from_value(config.clone())
        .map_err(|e| ApiError::bad_request("invalid_room_config", format!("roomConfig: {e}")))?;
    if let Some(egress) = config.egress
        && sfu.room(room).await.is_err()
    {
        auto.register(room, caller, egress)
            .map_err(|e| ApiError::bad_request("invalid_room_config", e.message))?;
    }
    Ok(())
}

fn join_request(caller: &Caller) -> Result<JoinRequest, ApiError> {
    let Credentials::Token(claims) = &caller.credentials else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "publishing needs an access token (Bearer) naming the room and the identity, not API key credentials",
        ));
    };
    let grant = &claims.video;
    if !grant.room_join || grant.room.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "the token has no roomJoin grant for a room",
        ));
    }
    validate_room_name(&grant.room).map_err(|e| ApiError::bad_request(e.code, e.message))?;
    if claims.sub.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "the token has no identity (sub)",
        ));
    }
    Ok(JoinRequest {
        room: grant.room.clone(),
        identity: claims.sub.clone(),
        name: claims.name.clone(),
        metadata: claims.metadata.clone(),
        attributes: claims.attributes.clone(),
        permissions: Permissions {
            // LiveKit marks agents by the grant or by the token's kind.
            agent: grant.agent || claims.kind.as_deref() == Some("agent"),
            ..Permissions::from_grant(grant)
        },
    })
}

/// API credentials may view anything; a token needs the room and `canSubscribe`.
pub(super) fn may_view(caller: &Caller, room: &str) -> bool {
    match &caller.credentials {
        Credentials::ApiSecret => true,
        Credentials::Token(claims) => {
            let grant = &claims.video;
            grant.room == room && ((grant.room_join && grant.can_subscribe()) || grant.room_admin)
        }
    }
}

fn created_response(state: &AppState, created: &SessionCreated, kind: &str) -> Response {
    let location = format!("/{kind}/v1/sessions/{}", created.session);
    let mut response = (
        StatusCode::CREATED,
        [(CONTENT_TYPE, SDP)],
        created.answer.clone(),
    )
        .into_response();
    insert_header(&mut response, LOCATION, &location);
    insert_header(&mut response, ETAG, &created.etag);
    for server in state.ice_servers.iter() {
        insert_header(
            &mut response,
            LINK,
            &format!("<{server}>; rel=\"ice-server\""),
        );
    }
    response
}

fn insert_header(response: &mut Response, name: axum::http::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(name, value);
    }
}

impl From<SfuError> for ApiError {
    fn from(error: SfuError) -> ApiError {
        let message = error.to_string();
        let (status, code) = match error {
            SfuError::BadSdp(_) => (StatusCode::BAD_REQUEST, "bad_sdp"),
            SfuError::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_denied"),
            SfuError::RoomFull(_) => (StatusCode::FORBIDDEN, "room_full"),
            SfuError::UnknownSession => (StatusCode::NOT_FOUND, "unknown_session"),
            SfuError::UnknownRoom(_)
            | SfuError::UnknownParticipant { .. }
            | SfuError::UnknownTrack(_) => (StatusCode::NOT_FOUND, "not_found"),
            SfuError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "sfu_unavailable"),
        };
        ApiError::new(status, code, message)
    }
}

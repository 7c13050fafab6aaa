//! LiveKit's server API over Twirp: `POST /twirp/livekit.RoomService/<Method>`
//! and `POST /twirp/livekit.Egress/<Method>`, in protobuf or protojson
//! (answered in the request's encoding), so LiveKit's server SDKs drive
//! onair unchanged. Every error is a Twirp error (`{code, msg, meta}`).

mod codec;
mod egress;
mod error;
mod room_service;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::auth::{Caller, Credentials, VideoGrant};
use codec::Encoding;
pub use error::TwirpError;

/// Larger bodies are refused before they are read in full (SendData's
/// payloads are the largest LiveKit sends; it caps them far below this).
const MAX_BODY: usize = 1 << 20;

pub const PATH_PREFIX: &str = "/twirp/";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/twirp/livekit.RoomService/{method}",
            post(room_service_call),
        )
        .route("/twirp/livekit.Egress/{method}", post(egress_call))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Room,
    Egress,
}

async fn room_service_call(
    State(state): State<AppState>,
    Path(method): Path<String>,
    request: Request<Body>,
) -> Response {
    serve(state, Service::Room, &method, request).await
}

async fn egress_call(
    State(state): State<AppState>,
    Path(method): Path<String>,
    request: Request<Body>,
) -> Response {
    serve(state, Service::Egress, &method, request).await
}

async fn serve(
    state: AppState,
    service: Service,
    method: &str,
    request: Request<Body>,
) -> Response {
    match handle(state, service, method, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Paths under `/twirp/` that name no served method.
pub fn unknown_route(path: &str) -> TwirpError {
    TwirpError::bad_route(format!(
        "no Twirp method at `{path}` (livekit.RoomService and livekit.Egress are served)"
    ))
}

async fn handle(
    state: AppState,
    service: Service,
    method: &str,
    request: Request<Body>,
) -> Result<Response, TwirpError> {
    let (name, methods) = match service {
        Service::Room => ("livekit.RoomService", &room_service::METHODS[..]),
        Service::Egress => ("livekit.Egress", &egress::METHODS[..]),
    };
    if !methods.contains(&method) {
        return Err(TwirpError::bad_route(format!(
            "{name} has no method `{method}`"
        )));
    }
    let (parts, body) = request.into_parts();
    let encoding = Encoding::of(&parts.headers)?;
    let caller = super::auth::authenticate(&state, &parts.headers)
        .map_err(|e| TwirpError::unauthenticated(e.message))?;
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        TwirpError::malformed(format!(
            "the body is over {MAX_BODY} bytes or could not be read"
        ))
    })?;
    let call = Call {
        state,
        caller,
        encoding,
        body,
    };
    match service {
        Service::Room => room_service::call(&call, method).await,
        Service::Egress => egress::call(&call, method).await,
    }
}

/// One Twirp call: who made it, its body and how to answer it.
pub struct Call {
    pub state: AppState,
    pub caller: Caller,
    encoding: Encoding,
    body: Bytes,
}

impl Call {
    pub fn request<M>(&self) -> Result<M, TwirpError>
    where
        M: prost::Message + DeserializeOwned + Default,
    {
        self.encoding.decode(&self.body)
    }

    pub fn respond<M>(&self, message: &M) -> Result<Response, TwirpError>
    where
        M: prost::Message + Serialize,
    {
        Ok(self.encoding.respond(message))
    }

    /// API secrets may do anything; a token needs `grant` (for `room`, when
    /// the call names one: LiveKit's room-scoped grants).
    pub fn require(
        &self,
        name: &str,
        room: Option<&str>,
        grant: impl Fn(&VideoGrant) -> bool,
    ) -> Result<(), TwirpError> {
        let Credentials::Token(claims) = &self.caller.credentials else {
            return Ok(());
        };
        if grant(&claims.video) && room.is_none_or(|room| claims.video.room == room) {
            return Ok(());
        }
        let scope = room.map(|r| format!(" for room `{r}`")).unwrap_or_default();
        Err(TwirpError::permission_denied(format!(
            "the token lacks the {name} grant{scope}"
        )))
    }
}

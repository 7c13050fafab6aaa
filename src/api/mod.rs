//! HTTP: the REST API, health checks and (later) webhooks, signaling and pages.
//! Handlers are thin: parse, call a service, map the result.

mod auth;
mod error;
mod extract;
mod health;
mod html;
mod livestream;
mod metrics;
mod openapi;
mod pages;
mod rooms;
mod twirp;
mod views;
mod webhooks;
mod whip;

use std::sync::Arc;

use axum::Router;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::auth::KeyRing;
use crate::config::Secret;
use crate::livestream::LivestreamService;
use crate::sfu::Sfu;
use crate::store::Store;

pub use error::ApiError;
pub use metrics::HttpMetrics;

#[derive(Clone)]
pub struct AppState {
    pub keys: KeyRing,
    pub store: Store,
    pub livestreams: Arc<LivestreamService>,
    /// Empty when Mux webhooks are not configured.
    pub mux_webhook_secret: Secret,
    /// None = signaling routes answer 503 (the REST-only test servers).
    pub sfu: Option<Sfu>,
    /// STUN/TURN URLs offered to WHIP/WHEP clients.
    pub ice_servers: Arc<Vec<String>>,
    pub dev_mode: bool,
    /// Timeouts for rooms created without their own (Twirp CreateRoom).
    pub room_defaults: crate::sfu::RoomSettings,
    pub http_metrics: HttpMetrics,
    /// Starts the egresses rooms were created with (None without an SFU).
    pub auto_egress: Option<Arc<crate::livestream::AutoEgress>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(livestream::routes())
        .merge(webhooks::routes())
        .merge(whip::routes())
        .merge(rooms::routes())
        .merge(pages::routes())
        .merge(twirp::routes())
        .merge(metrics::routes())
        .merge(openapi::routes())
        // Not `method_not_allowed_fallback`: it would take CORS preflights
        // (OPTIONS) away from the WHIP/WHEP routes' CORS layer.
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        // 5xx answers are logged where they are made; the layer only notes them.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .with_state(state)
}

/// Unknown paths answer in the API's error format too (Twirp's under `/twirp/`).
async fn no_route(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with(twirp::PATH_PREFIX) {
        return twirp::unknown_route(uri.path()).into_response();
    }
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_route",
        "no such route (see /openapi.json)",
    )
    .into_response()
}

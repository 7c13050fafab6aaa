//! Webhooks in: Mux (`Mux-Signature`) and room events in LiveKit's format
//! (`Authorization: <JWT>` whose `sha256` claim is the body's hash).

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::livestream::WebhookOutcome;
use crate::metrics;
use crate::mux::webhook::{SIGNATURE_HEADER, verify_and_parse};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/mux", post(mux))
        .route("/webhooks/livekit", post(livekit))
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

fn answer(outcome: WebhookOutcome) -> Json<Value> {
    Json(json!({
        "received": true,
        "duplicate": outcome.duplicate,
        "livestreamId": outcome.livestream_id,
    }))
}

async fn mux(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let secret = state.mux_webhook_secret.expose();
    if secret.is_empty() {
        metrics::webhook_received("mux", "rejected");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "Mux webhooks are not configured on this server (mux.webhook_secret)",
        ));
    }
    let header = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or_default());
    let event = verify_and_parse(secret, header, &body, SystemTime::now()).map_err(|error| {
        tracing::warn!(%error, "Mux webhook refused");
        metrics::webhook_received("mux", "rejected");
        match error {
            crate::mux::webhook::WebhookError::Signature(e) => unauthorized(e.to_string()),
            crate::mux::webhook::WebhookError::Parse(e) => {
                ApiError::bad_request("invalid_event", e)
            }
        }
    })?;
    let outcome = state.livestreams.handle_mux_event(&event).await;
    Ok(answer(counted("mux", outcome)?))
}

async fn livekit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let event = state
        .keys
        .verify_webhook(authorization, &body)
        .map_err(ApiError::from)
        .and_then(|_claims| {
            serde_json::from_slice::<Value>(&body).map_err(|e| {
                ApiError::bad_request("invalid_event", format!("body is not JSON: {e}"))
            })
        })
        .inspect_err(|_| metrics::webhook_received("livekit", "rejected"))?;
    let outcome = state.livestreams.handle_room_event(&event).await;
    Ok(answer(counted("livekit", outcome)?))
}

/// Counts a verified webhook from `source` as accepted, duplicate or (when
/// handling it failed) error.
fn counted<E>(source: &str, outcome: Result<WebhookOutcome, E>) -> Result<WebhookOutcome, E> {
    let result = match &outcome {
        Ok(outcome) if outcome.duplicate => "duplicate",
        Ok(_) => "accepted",
        Err(_) => "error",
    };
    metrics::webhook_received(source, result);
    outcome
}

//! The `Authenticated` extractor: every REST route takes one.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::auth::Caller;

pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(state, &parts.headers).map(Authenticated)
    }
}

/// The caller behind the `Authorization` header, or a 401.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or("invalid"));
    state.keys.authenticate(header).map_err(|error| {
        tracing::debug!(%error, "rejected credentials");
        ApiError::from(error)
    })
}

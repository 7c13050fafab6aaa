//! The `Authenticated` extractor: every REST route takes one.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::auth::Caller;

pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or("invalid"));
        let caller = state.keys.authenticate(header).map_err(|error| {
            tracing::debug!(%error, path = %parts.uri.path(), "rejected credentials");
            ApiError::from(error)
        })?;
        Ok(Authenticated(caller))
    }
}

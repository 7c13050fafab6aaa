//! What the HTML pages share — the room page (`rooms`) and the dashboard
//! (`pages`): the built-in templates, rendering one, and the dev-mode tokens
//! their dev-token routes hand out.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Html;

use super::AppState;
use super::error::ApiError;
use crate::auth::{AccessToken, VideoGrant};
use crate::config::DEV_API_KEY;

const ROOM_PAGE: &str = include_str!("../../templates/room.html");
const BASE_PAGE: &str = include_str!("../../templates/dashboard_base.html");
const HOME_PAGE: &str = include_str!("../../templates/dashboard.html");
const LIVESTREAM_PAGE: &str = include_str!("../../templates/livestream.html");

/// Dev tokens last a working day.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// Every built-in page, parsed once.
pub(super) fn templates() -> &'static tera::Tera {
    static TERA: OnceLock<tera::Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut tera = tera::Tera::default();
        // The `.html` names turn on autoescaping.
        tera.add_raw_templates([
            ("room.html", ROOM_PAGE),
            ("dashboard_base.html", BASE_PAGE),
            ("dashboard.html", HOME_PAGE),
            ("livestream.html", LIVESTREAM_PAGE),
        ])
        .expect("the built-in pages are valid templates");
        tera
    })
}

/// The page `name`; a template error is logged and answers 500 `internal`.
pub(super) fn render(name: &str, context: &tera::Context) -> Result<Html<String>, ApiError> {
    let html = templates().render(name, context).map_err(|error| {
        tracing::error!(%error, page = name, "page did not render");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the page did not render",
        )
    })?;
    Ok(Html(html))
}

/// The dev-token routes exist only in dev mode: 404 otherwise.
pub(super) fn require_dev_mode(state: &AppState) -> Result<(), ApiError> {
    if state.dev_mode {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "dev tokens exist only in development mode",
        ))
    }
}

/// A dev token's identity: 1 to 128 characters (422 `invalid_identity`).
pub(super) fn checked_identity(identity: &str) -> Result<&str, ApiError> {
    if identity.is_empty() || identity.len() > 128 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_identity",
            "identity must be 1 to 128 characters",
        ));
    }
    Ok(identity)
}

/// A token of the dev API key (`devkey`, signed with `secret`) for
/// `identity`, shown as `name`, with `grant`, lasting a working day.
pub(super) fn dev_token(
    identity: &str,
    name: &str,
    grant: VideoGrant,
    secret: &str,
) -> Result<String, ApiError> {
    AccessToken::new(DEV_API_KEY, identity, DEV_TOKEN_TTL)
        .with_grant(grant)
        .with_name(name)
        .sign(secret)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

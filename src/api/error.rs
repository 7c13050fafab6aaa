//! Every error leaves as JSON `{"error": "...", "code": "..."}` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::livestream::{LivestreamError, TransitionError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields merged into the body (e.g. the id of a livestream that failed).
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message, "code": self.code });
        if let (Some(extra), Some(map)) = (self.extra, body.as_object_mut())
            && let Some(extra) = extra.as_object()
        {
            map.extend(extra.clone());
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            error.to_string(),
        )
    }
}

impl From<LivestreamError> for ApiError {
    fn from(error: LivestreamError) -> ApiError {
        use LivestreamError as E;
        let message = error.to_string();
        match error {
            E::Invalid(v) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, v.code, v.message),
            E::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "permission_denied", message),
            E::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            E::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "already_live", message),
            E::NotLive(_) => ApiError::new(StatusCode::CONFLICT, "not_live", message),
            E::Transition(TransitionError::Illegal { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "illegal_transition", message)
            }
            E::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "media_unavailable",
                message,
            ),
            E::Overloaded(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
            }
            E::StartFailed { livestream_id, .. } => ApiError {
                extra: Some(json!({ "livestreamId": livestream_id, "status": "failed" })),
                ..ApiError::new(StatusCode::BAD_GATEWAY, "start_failed", message)
            },
            E::Store(_) | E::Transition(_) => {
                tracing::error!(%error, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

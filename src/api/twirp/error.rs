//! Twirp errors: JSON `{"code", "msg", "meta"}` with `Content-Type:
//! application/json` exactly (the Node SDK parses nothing else) and the HTTP
//! status Twirp assigns to each code.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::livestream::{LivestreamError, TransitionError, ValidationError};
use crate::sfu::SfuError;

#[derive(Debug)]
pub struct TwirpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub msg: String,
}

impl TwirpError {
    fn new(status: StatusCode, code: &'static str, msg: impl Into<String>) -> TwirpError {
        TwirpError {
            status,
            code,
            msg: msg.into(),
        }
    }

    pub fn bad_route(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::NOT_FOUND, "bad_route", msg)
    }

    pub fn malformed(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::BAD_REQUEST, "malformed", msg)
    }

    pub fn invalid_argument(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::BAD_REQUEST, "invalid_argument", msg)
    }

    pub fn unauthenticated(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::UNAUTHORIZED, "unauthenticated", msg)
    }

    pub fn permission_denied(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::FORBIDDEN, "permission_denied", msg)
    }

    pub fn not_found(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::NOT_FOUND, "not_found", msg)
    }

    pub fn already_exists(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::CONFLICT, "already_exists", msg)
    }

    pub fn failed_precondition(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::PRECONDITION_FAILED, "failed_precondition", msg)
    }

    pub fn resource_exhausted(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::TOO_MANY_REQUESTS, "resource_exhausted", msg)
    }

    pub fn unavailable(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", msg)
    }

    pub fn internal(msg: impl Into<String>) -> TwirpError {
        TwirpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", msg)
    }
}

impl IntoResponse for TwirpError {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.code, "msg": self.msg, "meta": {} }).to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

impl From<SfuError> for TwirpError {
    fn from(error: SfuError) -> TwirpError {
        let msg = error.to_string();
        match error {
            SfuError::UnknownRoom(_)
            | SfuError::UnknownParticipant { .. }
            | SfuError::UnknownTrack(_)
            | SfuError::UnknownSession => TwirpError::not_found(msg),
            SfuError::Stopped => TwirpError::unavailable(msg),
            SfuError::Forbidden(_) => TwirpError::permission_denied(msg),
            SfuError::RoomFull(_) => TwirpError::resource_exhausted(msg),
            SfuError::BadSdp(_) => TwirpError::invalid_argument(msg),
        }
    }
}

impl From<ValidationError> for TwirpError {
    fn from(error: ValidationError) -> TwirpError {
        TwirpError::invalid_argument(error.message)
    }
}

impl From<LivestreamError> for TwirpError {
    fn from(error: LivestreamError) -> TwirpError {
        use LivestreamError as E;
        let msg = error.to_string();
        match error {
            E::Invalid(v) => TwirpError::invalid_argument(v.message),
            E::Forbidden(_) => TwirpError::permission_denied(msg),
            E::NotFound => TwirpError::not_found("egress not found"),
            E::Conflict(_) => TwirpError::already_exists(msg),
            E::NotLive(_) | E::Transition(TransitionError::Illegal { .. }) => {
                TwirpError::failed_precondition(msg)
            }
            E::Unavailable(_) | E::StartFailed { .. } => TwirpError::unavailable(msg),
            E::Overloaded(_) => TwirpError::resource_exhausted(msg),
            E::Store(_) | E::Transition(_) => {
                tracing::error!(%error, "internal error");
                TwirpError::internal("internal error; see the server log")
            }
        }
    }
}

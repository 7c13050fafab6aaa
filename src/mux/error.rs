//! Errors of the Mux client.
//!
//! Every message here is built by this module from non-secret parts: the HTTP
//! status, Mux's own error `type` and `messages`, and transport or decoding
//! errors with the request URL (whose query may hold a stream key) and any
//! quoted JSON string value removed.

/// An error from a call to Mux's Video API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// Mux answered with a non-success status (other than 401). `kind` is the
    /// `type` of Mux's error body (`invalid_parameters`, `not_found`, …) or
    /// `"unknown"` when the body held none.
    #[error("Mux API error: HTTP {status} {kind}{}", join_messages(messages))]
    Api {
        status: u16,
        kind: String,
        messages: Vec<String>,
    },
    /// Mux refused the access token (HTTP 401). Never retried.
    #[error(
        "Mux rejected the access token: HTTP {status} {kind}{}",
        join_messages(messages)
    )]
    Unauthorized {
        status: u16,
        kind: String,
        messages: Vec<String>,
    },
    /// No response within the configured timeout (after the allowed retries).
    #[error("Mux request timed out: {0}")]
    Timeout(String),
    /// The request could not be sent or its response could not be read.
    #[error("Mux transport error: {0}")]
    Transport(String),
    /// A 2xx response whose body was not the expected JSON.
    #[error("could not decode Mux response: {0}")]
    Decode(String),
    /// The client configuration or a request value is unusable.
    #[error("invalid Mux request or configuration: {0}")]
    Invalid(String),
}

fn join_messages(messages: &[String]) -> String {
    if messages.is_empty() {
        String::new()
    } else {
        format!(": {}", messages.join("; "))
    }
}

impl MuxError {
    /// The HTTP status of an API error, if Mux answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            MuxError::Api { status, .. } | MuxError::Unauthorized { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for HTTP 404 (the live stream or asset does not exist).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Builds the typed error for a non-success response from its status and body.
    ///
    /// Understands Mux's `{"error":{"type":…,"messages":[…]}}` and the
    /// `{"errors":[…]}` form (strings or objects with `type`/`message(s)`).
    pub(crate) fn from_response(status: u16, body: &[u8]) -> MuxError {
        let (kind, messages) = parse_error_body(body);
        if status == 401 {
            MuxError::Unauthorized {
                status,
                kind,
                messages,
            }
        } else {
            MuxError::Api {
                status,
                kind,
                messages,
            }
        }
    }

    /// Builds the error for a failed request, never including the URL.
    pub(crate) fn from_reqwest(err: reqwest::Error) -> MuxError {
        let timeout = err.is_timeout();
        let text = error_chain(&err.without_url());
        if timeout {
            MuxError::Timeout(text)
        } else {
            MuxError::Transport(text)
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn parse_error_body(body: &[u8]) -> (String, Vec<String>) {
    let mut kind: Option<String> = None;
    let mut messages = Vec::new();
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ("unknown".to_owned(), messages);
    };
    if let Some(error) = value.get("error") {
        collect_error(error, &mut kind, &mut messages);
    }
    if let Some(errors) = value.get("errors").and_then(|e| e.as_array()) {
        for error in errors {
            collect_error(error, &mut kind, &mut messages);
        }
    }
    (kind.unwrap_or_else(|| "unknown".to_owned()), messages)
}

fn collect_error(error: &serde_json::Value, kind: &mut Option<String>, messages: &mut Vec<String>) {
    use serde_json::Value;
    match error {
        Value::String(text) => messages.push(text.clone()),
        Value::Object(map) => {
            if kind.is_none()
                && let Some(Value::String(t)) = map.get("type")
            {
                *kind = Some(t.clone());
            }
            for key in ["messages", "message", "detail"] {
                match map.get(key) {
                    Some(Value::String(text)) => messages.push(text.clone()),
                    Some(Value::Array(items)) => {
                        messages.extend(items.iter().map(|item| match item {
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        }))
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// A JSON decoding error as text that cannot carry a value from the document:
/// serde quotes string values (`invalid type: string "…"`), and a string value
/// may be a stream key, so such messages keep only their category and position.
pub(crate) fn describe_json_error(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if text.contains('"') {
        let category = match err.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected value",
            serde_json::error::Category::Eof => "unexpected end of input",
        };
        format!("{category} at line {} column {}", err.line(), err.column())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_object_form() {
        let err = MuxError::from_response(
            400,
            br#"{"error":{"type":"invalid_parameters","messages":["a","b"]}}"#,
        );
        assert_eq!(
            err,
            MuxError::Api {
                status: 400,
                kind: "invalid_parameters".into(),
                messages: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(
            err.to_string(),
            "Mux API error: HTTP 400 invalid_parameters: a; b"
        );
    }

    #[test]
    fn errors_array_form_with_strings_and_objects() {
        let err = MuxError::from_response(
            422,
            br#"{"errors":["plain",{"type":"invalid_parameters","message":"obj"}]}"#,
        );
        assert_eq!(
            err,
            MuxError::Api {
                status: 422,
                kind: "invalid_parameters".into(),
                messages: vec!["plain".into(), "obj".into()]
            }
        );
    }

    #[test]
    fn non_json_body_and_401() {
        let err = MuxError::from_response(502, b"<html>bad gateway</html>");
        assert_eq!(err.to_string(), "Mux API error: HTTP 502 unknown");
        let err = MuxError::from_response(401, b"");
        assert!(matches!(err, MuxError::Unauthorized { status: 401, .. }));
    }

    #[test]
    fn json_error_text_drops_string_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: u32,
        }
        let err = serde_json::from_str::<T>(r#"{"n":"sk-very-secret"}"#).unwrap_err();
        let text = describe_json_error(&err);
        assert!(!text.contains("sk-very-secret"), "{text}");
        assert!(text.contains("line 1"), "{text}");
        let err = serde_json::from_str::<T>(r#"{}"#).unwrap_err();
        assert!(describe_json_error(&err).contains("missing field `n`"));
    }
}

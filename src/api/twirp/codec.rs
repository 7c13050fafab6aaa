//! Twirp bodies in both of LiveKit's encodings: binary protobuf
//! (`application/protobuf`, the Python SDK) and protojson
//! (`application/json`, the Node SDK). A response goes back in the
//! request's encoding. The message types are livekit-protocol's (prost for
//! the binary form, pbjson's serde for JSON, which accepts lowerCamelCase
//! and proto names, enums as names or numbers and int64 as strings).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::TwirpError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding a request's `Content-Type` names (parameters such as
    /// `charset` are ignored). Anything else is a bad route, as in Twirp.
    pub fn of(headers: &HeaderMap) -> Result<Encoding, TwirpError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/protobuf" | "application/x-protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => Err(TwirpError::bad_route(format!(
                "unexpected Content-Type `{content_type}`: send application/protobuf or application/json"
            ))),
        }
    }

    /// Decodes a request body; an empty body is the default message (what
    /// the Python SDK sends for a request without fields).
    pub fn decode<M>(self, body: &[u8]) -> Result<M, TwirpError>
    where
        M: prost::Message + DeserializeOwned + Default,
    {
        match self {
            Encoding::Protobuf => M::decode(body).map_err(|e| {
                TwirpError::malformed(format!("the body is not a valid protobuf message: {e}"))
            }),
            Encoding::Json if body.iter().all(u8::is_ascii_whitespace) => Ok(M::default()),
            Encoding::Json => serde_json::from_slice(body).map_err(|e| {
                TwirpError::malformed(format!("the body is not valid protojson: {e}"))
            }),
        }
    }

    /// A 200 response holding `message`.
    pub fn respond<M>(self, message: &M) -> Response
    where
        M: prost::Message + Serialize,
    {
        match self {
            Encoding::Protobuf => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/protobuf")],
                message.encode_to_vec(),
            )
                .into_response(),
            Encoding::Json => match serde_json::to_vec(message) {
                Ok(body) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response(),
                Err(error) => TwirpError::internal(format!("cannot encode the response: {error}"))
                    .into_response(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_protocol as proto;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        headers
    }

    #[test]
    fn content_types_choose_the_encoding() {
        let json = Encoding::of(&headers("application/json;charset=UTF-8")).unwrap();
        assert_eq!(json, Encoding::Json);
        let binary = Encoding::of(&headers("application/protobuf")).unwrap();
        assert_eq!(binary, Encoding::Protobuf);
        let error = Encoding::of(&headers("text/plain")).unwrap_err();
        assert_eq!(error.code, "bad_route");
        assert_eq!(error.status, StatusCode::NOT_FOUND);
        assert!(Encoding::of(&HeaderMap::new()).is_err());
    }

    #[test]
    fn json_accepts_camel_case_proto_names_enum_numbers_and_int64_strings() {
        let camel: proto::StopEgressRequest =
            Encoding::Json.decode(br#"{"egressId": "EG_a"}"#).unwrap();
        let snake: proto::StopEgressRequest =
            Encoding::Json.decode(br#"{"egress_id": "EG_a"}"#).unwrap();
        assert_eq!(camel, snake);
        let by_name: proto::StreamOutput = Encoding::Json
            .decode(br#"{"protocol": "SRT", "urls": ["srt://x"]}"#)
            .unwrap();
        let by_number: proto::StreamOutput = Encoding::Json
            .decode(br#"{"protocol": 2, "urls": ["srt://x"]}"#)
            .unwrap();
        assert_eq!(by_name, by_number);
        let times: proto::EgressInfo = Encoding::Json
            .decode(br#"{"startedAt": "1700000000000000000", "unknownField": 1}"#)
            .unwrap();
        assert_eq!(times.started_at, 1_700_000_000_000_000_000);
    }

    #[test]
    fn empty_bodies_are_the_default_message_and_garbage_is_malformed() {
        let empty: proto::ListRoomsRequest = Encoding::Protobuf.decode(b"").unwrap();
        assert!(empty.names.is_empty());
        let empty: proto::ListRoomsRequest = Encoding::Json.decode(b" ").unwrap();
        assert!(empty.names.is_empty());
        let error = Encoding::Json
            .decode::<proto::ListRoomsRequest>(b"{not json")
            .unwrap_err();
        assert_eq!(error.code, "malformed");
        let error = Encoding::Protobuf
            .decode::<proto::ListRoomsRequest>(&[0xff, 0xff, 0xff])
            .unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn binary_round_trips() {
        let request = proto::ListRoomsRequest {
            names: vec!["studio".into()],
        };
        let decoded: proto::ListRoomsRequest = Encoding::Protobuf
            .decode(&prost::Message::encode_to_vec(&request))
            .unwrap();
        assert_eq!(decoded, request);
    }
}

//! The HTTP client: configuration, authentication, the `{"data": …}`
//! envelope, error bodies and the retry loop.

use std::time::{Duration, SystemTime};

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use super::error::{MuxError, describe_json_error};
use super::retry;
use crate::config::Secret;
use crate::metrics;

/// Mux's API origin.
pub const DEFAULT_BASE_URL: &str = "https://api.mux.com";

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach Mux. Create an access token (id and secret) with Mux Video
/// read/write permission in the Mux dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct MuxConfig {
    /// Origin of the API, `https://api.mux.com` unless testing; may carry a path prefix.
    pub base_url: String,
    pub token_id: String,
    pub token_secret: Secret,
    /// Limit for one request, from connecting to the end of the response body.
    pub timeout: Duration,
}

impl MuxConfig {
    /// A configuration for `api.mux.com` with the default timeout.
    pub fn new(token_id: impl Into<String>, token_secret: Secret) -> MuxConfig {
        MuxConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token_id: token_id.into(),
            token_secret,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A client of Mux's Video API. Cheap to clone; clones share a connection pool.
#[derive(Debug, Clone)]
pub struct MuxClient {
    http: reqwest::Client,
    base_url: Url,
    token_id: String,
    token_secret: Secret,
}

/// One request as the retry loop sends it.
pub(crate) struct Call<'a> {
    pub method: Method,
    /// Path segments after the base URL, e.g. `["video", "v1", "live-streams", id]`.
    pub segments: &'a [&'a str],
    pub query: Vec<(&'static str, String)>,
    /// Serialized JSON body.
    pub body: Option<Vec<u8>>,
}

/// What one attempt came to.
pub(crate) enum Attempt {
    /// A final answer: a 2xx body, or an error not worth retrying.
    Done(Result<Vec<u8>, MuxError>),
    /// A failure another attempt may fix.
    Retry {
        error: MuxError,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The request may have taken effect (timeout, 5xx).
        may_have_applied: bool,
    },
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    data: T,
}

impl MuxClient {
    /// Builds a client. Fails if `base_url` is not an absolute http(s) URL,
    /// the token id or secret is empty, or the TLS backend cannot start.
    pub fn new(config: MuxConfig) -> Result<MuxClient, MuxError> {
        let base_url = Url::parse(&config.base_url)
            .map_err(|e| MuxError::Invalid(format!("base_url: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(MuxError::Invalid("base_url must be an http(s) URL".into()));
        }
        if config.token_id.is_empty() || config.token_secret.expose().is_empty() {
            return Err(MuxError::Invalid("token id and secret must be set".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("onair-mux/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(MuxError::from_reqwest)?;
        Ok(MuxClient {
            http,
            base_url,
            token_id: config.token_id,
            token_secret: config.token_secret,
        })
    }

    /// Live stream operations.
    pub fn live_streams(&self) -> super::LiveStreams<'_> {
        super::LiveStreams::new(self)
    }

    /// Asset operations.
    pub fn assets(&self) -> super::Assets<'_> {
        super::Assets::new(self)
    }

    fn url(&self, call: &Call<'_>) -> Url {
        let mut url = self.base_url.clone();
        // `new` rejected URLs that cannot be a base, so this cannot fail.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(call.segments);
        }
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Sends `call` once (`attempt` counts from 1) and counts it in
    /// `onair_mux_api_requests_total` (and, after the first attempt, in
    /// `onair_mux_api_retries_total`) under the call's [`operation`].
    pub(crate) async fn attempt(&self, call: &Call<'_>, attempt: u32) -> Attempt {
        let operation = operation(call);
        if attempt > 1 {
            metrics::mux_api_retry(operation);
        }
        let result = self.attempt_uncounted(call, attempt).await;
        metrics::mux_api_request(operation, matches!(result, Attempt::Done(Ok(_))));
        result
    }

    /// Sends `call` once. Logs method, path, status and attempt at debug level
    /// (never the query, which may hold a stream key, nor any header).
    async fn attempt_uncounted(&self, call: &Call<'_>, attempt: u32) -> Attempt {
        let url = self.url(call);
        let path = url.path().to_owned();
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .basic_auth(&self.token_id, Some(self.token_secret.expose()))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return self.transport_failure(call, &path, attempt, err),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            Err(err) => return self.transport_failure(call, &path, attempt, err),
        };
        tracing::debug!(
            method = %call.method,
            path = %path,
            status = status.as_u16(),
            attempt,
            "mux request"
        );
        if status.is_success() {
            return Attempt::Done(Ok(body));
        }
        let error = MuxError::from_response(status.as_u16(), &body);
        if retry::retryable_status(status.as_u16()) {
            Attempt::Retry {
                error,
                retry_after,
                may_have_applied: retry::status_may_have_applied(status.as_u16()),
            }
        } else {
            Attempt::Done(Err(error))
        }
    }

    fn transport_failure(
        &self,
        call: &Call<'_>,
        path: &str,
        attempt: u32,
        err: reqwest::Error,
    ) -> Attempt {
        let timeout = err.is_timeout();
        let connect = err.is_connect();
        let error = MuxError::from_reqwest(err);
        tracing::debug!(
            method = %call.method,
            path = %path,
            attempt,
            timeout,
            connect,
            "mux request failed"
        );
        if timeout || connect {
            Attempt::Retry {
                error,
                retry_after: None,
                // A failed connection never reached Mux; a timeout may have.
                may_have_applied: !connect,
            }
        } else {
            Attempt::Done(Err(error))
        }
    }

    /// How long to wait after failed attempt `attempt`, or `None` to give up
    /// (no attempts left, or the server asked for more than we will wait).
    pub(crate) fn retry_delay(attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= retry::MAX_ATTEMPTS {
            return None;
        }
        match retry_after {
            Some(wait) if wait > retry::MAX_RETRY_AFTER => None,
            Some(wait) => Some(wait),
            None => Some(retry::backoff(attempt)),
        }
    }

    /// Sends `call` with the standard retry policy and returns the 2xx body.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Vec<u8>, MuxError> {
        let mut attempt = 1;
        loop {
            match self.attempt(call, attempt).await {
                Attempt::Done(result) => return result,
                Attempt::Retry {
                    error, retry_after, ..
                } => {
                    let Some(delay) = Self::retry_delay(attempt, retry_after) else {
                        return Err(error);
                    };
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Sends `call` and decodes the `data` of its response.
    pub(crate) async fn send_data<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
    ) -> Result<T, MuxError> {
        decode_data(&self.send(call).await?)
    }

    /// Sends `call` and ignores the body of its 2xx response.
    pub(crate) async fn send_unit(&self, call: &Call<'_>) -> Result<(), MuxError> {
        self.send(call).await.map(drop)
    }
}

/// The fixed name of the API operation `call` makes, for metrics (never an
/// id): one of [`metrics::MUX_OPERATIONS`], else `other`.
pub(crate) fn operation(call: &Call<'_>) -> &'static str {
    let (method, segments) = (&call.method, call.segments);
    let tail = match segments {
        ["video", "v1", "live-streams", tail @ ..] => tail,
        ["video", "v1", "assets", _id] if method == Method::GET => return "retrieve_asset",
        _ => return metrics::OTHER,
    };
    match (method.as_str(), tail) {
        ("POST", []) => "create_live_stream",
        ("GET", []) => "list_live_streams",
        ("GET", [_id]) => "retrieve_live_stream",
        ("PATCH", [_id]) => "update_live_stream",
        ("DELETE", [_id]) => "delete_live_stream",
        ("PUT", [_id, "complete"]) => "complete",
        ("PUT", [_id, "disable"]) => "disable",
        ("PUT", [_id, "enable"]) => "enable",
        ("POST", [_id, "reset-stream-key"]) => "reset_stream_key",
        ("POST", [_id, "simulcast-targets"]) => "create_simulcast_target",
        ("DELETE", [_id, "simulcast-targets", _target]) => "delete_simulcast_target",
        _ => metrics::OTHER,
    }
}

/// Decodes `{"data": T}`.
pub(crate) fn decode_data<T: DeserializeOwned>(body: &[u8]) -> Result<T, MuxError> {
    serde_json::from_slice::<Envelope<T>>(body)
        .map(|envelope| envelope.data)
        .map_err(|e| MuxError::Decode(describe_json_error(&e)))
}

/// Serializes a request body.
pub(crate) fn encode_body<T: serde::Serialize>(body: &T) -> Result<Vec<u8>, MuxError> {
    serde_json::to_vec(body).map_err(|e| MuxError::Invalid(describe_json_error(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> MuxClient {
        MuxClient::new(MuxConfig {
            base_url: base.into(),
            ..MuxConfig::new("id", Secret::new("tok-s3cr3t-value"))
        })
        .unwrap()
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_segments() {
        let c = client("http://127.0.0.1:9/prefix/");
        let call = Call {
            method: Method::GET,
            segments: &["video", "v1", "live-streams", "a/b c"],
            query: vec![("limit", "10".into())],
            body: None,
        };
        assert_eq!(
            c.url(&call).as_str(),
            "http://127.0.0.1:9/prefix/video/v1/live-streams/a%2Fb%20c?limit=10"
        );
        let c = client("https://api.mux.com");
        assert_eq!(
            c.url(&Call {
                query: vec![],
                ..call
            })
            .as_str(),
            "https://api.mux.com/video/v1/live-streams/a%2Fb%20c"
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        for base in ["not a url", "ftp://x", "mailto:a@b"] {
            let cfg = MuxConfig {
                base_url: base.into(),
                ..MuxConfig::new("id", Secret::new("s"))
            };
            assert!(
                matches!(MuxClient::new(cfg), Err(MuxError::Invalid(_))),
                "{base}"
            );
        }
        assert!(MuxClient::new(MuxConfig::new("", Secret::new("s"))).is_err());
        assert!(MuxClient::new(MuxConfig::new("id", Secret::new(""))).is_err());
    }

    #[test]
    fn retry_delay_rules() {
        assert_eq!(
            MuxClient::retry_delay(1, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            MuxClient::retry_delay(1, Some(Duration::from_secs(61))),
            None
        );
        assert_eq!(MuxClient::retry_delay(3, None), None);
        assert!(MuxClient::retry_delay(2, None).is_some());
    }

    #[test]
    fn every_call_has_a_fixed_operation_name() {
        let call = |method: Method, segments: &'static [&'static str]| Call {
            method,
            segments,
            query: vec![],
            body: None,
        };
        let cases: [(Method, &[&str], &str); 14] = [
            (
                Method::POST,
                &["video", "v1", "live-streams"],
                "create_live_stream",
            ),
            (
                Method::GET,
                &["video", "v1", "live-streams"],
                "list_live_streams",
            ),
            (
                Method::GET,
                &["video", "v1", "live-streams", "LS1"],
                "retrieve_live_stream",
            ),
            (
                Method::PATCH,
                &["video", "v1", "live-streams", "LS1"],
                "update_live_stream",
            ),
            (
                Method::DELETE,
                &["video", "v1", "live-streams", "LS1"],
                "delete_live_stream",
            ),
            (
                Method::PUT,
                &["video", "v1", "live-streams", "LS1", "complete"],
                "complete",
            ),
            (
                Method::PUT,
                &["video", "v1", "live-streams", "LS1", "disable"],
                "disable",
            ),
            (
                Method::PUT,
                &["video", "v1", "live-streams", "LS1", "enable"],
                "enable",
            ),
            (
                Method::POST,
                &["video", "v1", "live-streams", "LS1", "reset-stream-key"],
                "reset_stream_key",
            ),
            (
                Method::POST,
                &["video", "v1", "live-streams", "LS1", "simulcast-targets"],
                "create_simulcast_target",
            ),
            (
                Method::DELETE,
                &[
                    "video",
                    "v1",
                    "live-streams",
                    "LS1",
                    "simulcast-targets",
                    "ST1",
                ],
                "delete_simulcast_target",
            ),
            (
                Method::GET,
                &["video", "v1", "assets", "AS1"],
                "retrieve_asset",
            ),
            (Method::GET, &["video", "v1", "uploads"], "other"),
            (
                Method::PUT,
                &["video", "v1", "live-streams", "LS1", "LS1-secret"],
                "other",
            ),
        ];
        for (method, segments, expected) in cases {
            assert_eq!(operation(&call(method, segments)), expected, "{segments:?}");
            assert!(expected == "other" || metrics::MUX_OPERATIONS.contains(&expected));
        }
    }

    #[test]
    fn debug_hides_the_token_secret() {
        let c = client("https://api.mux.com");
        assert!(!format!("{c:?}").contains("tok-s3cr3t-value"));
    }
}

//! Outgoing room webhooks in LiveKit's wire format, so receivers written for
//! LiveKit (`WebhookReceiver` in the server SDKs) accept ours unchanged.
//!
//! As in livekit/protocol `webhook/`: the body is a `WebhookEvent` encoded as
//! protojson (lowerCamelCase names, enums as names, int64 as strings, fields
//! holding their default value left out), POSTed with `Content-Type:
//! application/webhook+json`, `User-Agent: LiveKit` and a bare HS256 JWT in
//! `Authorization` whose `sha256` claim is the base64 SHA-256 of the body.
//!
//! Delivery never blocks the caller: every URL has a worker task with a
//! bounded queue; a full queue drops the event and the drop is reported in
//! `numDropped` of the next event sent to that URL.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use url::Url;

pub const EVENT_ROOM_STARTED: &str = "room_started";
pub const EVENT_ROOM_FINISHED: &str = "room_finished";
pub const EVENT_PARTICIPANT_JOINED: &str = "participant_joined";
pub const EVENT_PARTICIPANT_LEFT: &str = "participant_left";
pub const EVENT_PARTICIPANT_CONNECTION_ABORTED: &str = "participant_connection_aborted";
pub const EVENT_TRACK_PUBLISHED: &str = "track_published";
pub const EVENT_TRACK_UNPUBLISHED: &str = "track_unpublished";
pub const EVENT_EGRESS_STARTED: &str = "egress_started";
pub const EVENT_EGRESS_UPDATED: &str = "egress_updated";
pub const EVENT_EGRESS_ENDED: &str = "egress_ended";

/// The body's media type; LiveKit uses its own so receivers check the
/// signature before parsing.
pub const CONTENT_TYPE_WEBHOOK: &str = "application/webhook+json";
/// LiveKit's default `User-Agent` for webhooks; some receivers filter on it.
pub const USER_AGENT: &str = "LiveKit";
/// Lifetime of the signing token, as LiveKit's notifier sets it.
pub const TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// Events queued per URL before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 1000;

// ---------------------------------------------------------------------------
// Events: `livekit.WebhookEvent` from the livekit-protocol crate, whose serde
// form is protojson (pbjson): lowerCamelCase, enums as names, int64 as
// strings, default values left out, fields in declaration order.
// ---------------------------------------------------------------------------

pub use livekit_protocol::WebhookEvent;

/// A new event named `event` with a fresh id, stamped now (LiveKit also
/// stamps events when they are raised, not when they are sent).
pub fn new_event(event: &str) -> WebhookEvent {
    WebhookEvent {
        event: event.to_string(),
        id: new_event_id(),
        created_at: unix_now(),
        ..WebhookEvent::default()
    }
}

/// LiveKit's guid alphabet (shortuuid's base57: no `0`, `1`, `I`, `O`, `l`).
const ID_ALPHABET: &[u8; 57] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const ID_LEN: usize = 12;

/// `EV_` + 12 random base57 characters, the shape of LiveKit's event ids.
fn new_event_id() -> String {
    // 57^12 < 2^70, far below the 122 random bits of a v4 uuid.
    let mut random = uuid::Uuid::new_v4().as_u128();
    let base = ID_ALPHABET.len() as u128;
    let mut id = String::with_capacity(3 + ID_LEN);
    id.push_str("EV_");
    for _ in 0..ID_LEN {
        id.push(char::from(ID_ALPHABET[(random % base) as usize]));
        random /= base;
    }
    id
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    i64::try_from(secs).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------

/// The claims LiveKit's `AccessToken` emits for a webhook: `sub` and grants
/// are empty and therefore absent.
#[derive(Debug, Serialize, Deserialize)]
struct WebhookClaims {
    iss: String,
    nbf: i64,
    exp: i64,
    iat: i64,
    sha256: String,
}

/// base64 (standard alphabet, padded) of SHA-256(body): what LiveKit's
/// verifier compares the `sha256` claim against.
fn body_sha256(body: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(body))
}

/// The `Authorization` value for `body`: an HS256 JWT issued by `api_key`,
/// valid for [`TOKEN_TTL`], carrying the body's hash.
pub fn sign(
    body: &[u8],
    api_key: &str,
    api_secret: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = unix_now();
    let ttl = i64::try_from(TOKEN_TTL.as_secs()).unwrap_or(i64::MAX);
    let claims = WebhookClaims {
        iss: api_key.to_string(),
        nbf: now,
        exp: now.saturating_add(ttl),
        iat: now,
        sha256: body_sha256(body),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(api_secret.as_bytes()),
    )
}

// ---------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------

/// How hard a worker tries to deliver one event to one URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Limit for a single POST (connect + response).
    pub attempt_timeout: Duration,
    /// Wait before the first retry; doubled for each further one.
    pub first_backoff: Duration,
    /// No retry starts after this long since the first attempt.
    pub total_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempt_timeout: Duration::from_secs(5),
            first_backoff: Duration::from_millis(500),
            total_budget: Duration::from_secs(30),
        }
    }
}

/// Sends [`WebhookEvent`]s to the configured URLs in the background.
/// Cloning is cheap; the workers stop once every clone is dropped and their
/// queues are drained.
#[derive(Clone)]
pub struct WebhookNotifier {
    targets: Arc<[Target]>,
}

impl fmt::Debug for WebhookNotifier {
    // Hand-written so neither the secret nor URL credentials get printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<&str> = self.targets.iter().map(|t| t.url.as_str()).collect();
        f.debug_struct("WebhookNotifier")
            .field("urls", &urls)
            .finish()
    }
}

impl WebhookNotifier {
    /// Starts one worker per URL with the default [`RetryPolicy`]. Must be
    /// called inside a tokio runtime.
    pub fn start(urls: Vec<Url>, api_key: String, api_secret: String) -> WebhookNotifier {
        WebhookNotifier::start_with(urls, api_key, api_secret, RetryPolicy::default())
    }

    /// As [`WebhookNotifier::start`], with an explicit retry policy.
    pub fn start_with(
        urls: Vec<Url>,
        api_key: String,
        api_secret: String,
        policy: RetryPolicy,
    ) -> WebhookNotifier {
        if urls.is_empty() {
            return WebhookNotifier::disabled();
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("webhooks disabled: notifier started outside a tokio runtime");
            return WebhookNotifier::disabled();
        };
        let client = match reqwest::Client::builder().user_agent(USER_AGENT).build() {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "webhooks disabled: cannot build the HTTP client");
                return WebhookNotifier::disabled();
            }
        };
        let credentials = Arc::new(Credentials {
            api_key,
            api_secret,
        });
        let targets = urls
            .into_iter()
            .map(|url| {
                let (target, rx) = Target::new(&url, QUEUE_CAPACITY);
                let worker = Worker {
                    client: client.clone(),
                    url,
                    log_url: target.url.clone(),
                    credentials: credentials.clone(),
                    policy,
                    dropped: target.dropped.clone(),
                };
                runtime.spawn(worker.run(rx));
                target
            })
            .collect();
        WebhookNotifier { targets }
    }

    /// A notifier without URLs: [`WebhookNotifier::notify`] does nothing.
    pub fn disabled() -> WebhookNotifier {
        WebhookNotifier {
            targets: Arc::from(Vec::new()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Queues `event` for every URL without waiting; where a queue is full
    /// the event is dropped for that URL (and counted).
    pub fn notify(&self, event: WebhookEvent) {
        let Some((last, rest)) = self.targets.split_last() else {
            return;
        };
        for target in rest {
            target.enqueue(event.clone());
        }
        last.enqueue(event);
    }
}

/// The notifier's handle on one URL's worker.
struct Target {
    /// Redacted, for logs.
    url: String,
    tx: mpsc::Sender<WebhookEvent>,
    /// Events this URL missed since the last one sent to it.
    dropped: Arc<AtomicI32>,
}

impl Target {
    fn new(url: &Url, capacity: usize) -> (Target, mpsc::Receiver<WebhookEvent>) {
        let (tx, rx) = mpsc::channel(capacity);
        let target = Target {
            url: redact(url),
            tx,
            dropped: Arc::new(AtomicI32::new(0)),
        };
        (target, rx)
    }

    fn enqueue(&self, event: WebhookEvent) {
        let (reason, event) = match self.tx.try_send(event) {
            Ok(()) => return,
            Err(TrySendError::Full(event)) => ("queue full", event),
            Err(TrySendError::Closed(event)) => ("worker stopped", event),
        };
        self.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(url = %self.url, event = %event.event, id = %event.id, reason, "webhook dropped");
    }
}

struct Credentials {
    api_key: String,
    api_secret: String,
}

/// Delivers one URL's events in order.
struct Worker {
    client: reqwest::Client,
    url: Url,
    log_url: String,
    credentials: Arc<Credentials>,
    policy: RetryPolicy,
    dropped: Arc<AtomicI32>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<WebhookEvent>) {
        while let Some(mut event) = rx.recv().await {
            // LiveKit still fills the deprecated field; receivers read it.
            #[allow(deprecated)]
            let dropped = &mut event.num_dropped;
            *dropped = self.dropped.swap(0, Ordering::Relaxed);
            let delivered = self.deliver(&event).await;
            crate::metrics::room_webhook_sent(delivered);
            if !delivered {
                // Like LiveKit: the receiver learns about this miss (and the
                // ones it would have been told about) from the next event.
                #[allow(deprecated)]
                let missed = event.num_dropped.saturating_add(1);
                self.dropped.fetch_add(missed, Ordering::Relaxed);
            }
        }
    }

    /// Whether `event` reached the receiver.
    async fn deliver(&self, event: &WebhookEvent) -> bool {
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(url = %self.log_url, event = %event.event, %error, "webhook not encodable");
                return false;
            }
        };
        let token = sign(
            &body,
            &self.credentials.api_key,
            &self.credentials.api_secret,
        )
        .map_err(|e| e.to_string())
        .and_then(|token| HeaderValue::from_str(&token).map_err(|e| e.to_string()));
        let mut token = match token {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(url = %self.log_url, event = %event.event, %error, "webhook not signable");
                return false;
            }
        };
        token.set_sensitive(true);
        self.post_with_retries(event, body, &token).await
    }

    /// POSTs until success, a permanent failure or the retry budget runs out.
    async fn post_with_retries(
        &self,
        event: &WebhookEvent,
        body: Vec<u8>,
        token: &HeaderValue,
    ) -> bool {
        let start = Instant::now();
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 1u32;
        loop {
            let remaining = self.policy.total_budget.saturating_sub(start.elapsed());
            let timeout = self.policy.attempt_timeout.min(remaining);
            let error = match self.post(body.clone(), token, timeout).await {
                Ok(()) => {
                    tracing::debug!(url = %self.log_url, event = %event.event, id = %event.id, attempt, "webhook sent");
                    return true;
                }
                Err(error) => error,
            };
            let retry =
                error.is_retryable() && start.elapsed() + backoff < self.policy.total_budget;
            if !retry {
                tracing::warn!(url = %self.log_url, event = %event.event, id = %event.id, attempt, %error, "webhook delivery failed");
                return false;
            }
            tracing::info!(url = %self.log_url, event = %event.event, id = %event.id, attempt, %error, retry_in = ?backoff, "webhook attempt failed");
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        }
    }

    async fn post(
        &self,
        body: Vec<u8>,
        token: &HeaderValue,
        timeout: Duration,
    ) -> Result<(), AttemptError> {
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, CONTENT_TYPE_WEBHOOK)
            .header(AUTHORIZATION, token.clone())
            .timeout(timeout)
            .body(body)
            .send()
            .await
            // The URL may carry credentials; it is logged redacted instead.
            .map_err(|e| AttemptError::Transport(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(AttemptError::Status(status))
        }
    }
}

#[derive(Debug)]
enum AttemptError {
    Transport(reqwest::Error),
    Status(StatusCode),
}

impl AttemptError {
    /// Connection problems, timeouts, 408, 429 and 5xx (but 501) may pass;
    /// other answers will not change on retry (the policy of the
    /// go-retryablehttp client LiveKit uses).
    fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Transport(error) => !error.is_builder(),
            AttemptError::Status(status) => {
                matches!(
                    *status,
                    StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
                ) || (status.is_server_error() && *status != StatusCode::NOT_IMPLEMENTED)
            }
        }
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Transport(error) => write!(f, "{error}"),
            AttemptError::Status(status) => write!(f, "HTTP {status}"),
        }
    }
}

/// The URL without user info, query or fragment, which may hold secrets.
fn redact(url: &Url) -> String {
    let mut url = url.clone();
    // Both fail only for URLs that cannot carry credentials anyway.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::VecDeque;
    use std::sync::Mutex;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::json;

    const KEY: &str = "APIkey123";
    const SECRET: &str = "secret-secret-secret-secret-secret";

    use livekit_protocol as proto;
    use proto::participant_info::{Kind, State as ParticipantState};

    fn room() -> proto::Room {
        proto::Room {
            sid: "RM_abc".into(),
            name: "studio".into(),
            empty_timeout: 300,
            departure_timeout: 20,
            creation_time: 1_700_000_000,
            creation_time_ms: 1_700_000_000_123,
            num_participants: 1,
            ..Default::default()
        }
    }

    #[allow(deprecated)] // `simulcast`: LiveKit still fills it
    fn participant() -> proto::ParticipantInfo {
        proto::ParticipantInfo {
            sid: "PA_xyz".into(),
            identity: "alice".into(),
            state: ParticipantState::Active as i32,
            tracks: vec![
                proto::TrackInfo {
                    sid: "TR_mic".into(),
                    r#type: proto::TrackType::Audio as i32,
                    source: proto::TrackSource::Microphone as i32,
                    mime_type: "audio/opus".into(),
                    mid: "0".into(),
                    ..Default::default()
                },
                proto::TrackInfo {
                    sid: "TR_cam".into(),
                    r#type: proto::TrackType::Video as i32,
                    width: 1280,
                    height: 720,
                    simulcast: true,
                    source: proto::TrackSource::Camera as i32,
                    mime_type: "video/VP8".into(),
                    mid: "1".into(),
                    ..Default::default()
                },
            ],
            joined_at: 1_700_000_001,
            joined_at_ms: 1_700_000_001_500,
            name: "Alice".into(),
            version: 3,
            permission: Some(proto::ParticipantPermission {
                can_subscribe: true,
                can_publish: true,
                can_publish_data: true,
                can_publish_sources: vec![
                    proto::TrackSource::Camera as i32,
                    proto::TrackSource::ScreenShareAudio as i32,
                ],
                ..Default::default()
            }),
            is_publisher: true,
            kind: Kind::Standard as i32,
            ..Default::default()
        }
    }

    fn joined_event() -> WebhookEvent {
        WebhookEvent {
            room: Some(room()),
            participant: Some(participant()),
            ..new_event(EVENT_PARTICIPANT_JOINED)
        }
    }

    fn decode(token: &str) -> WebhookClaims {
        let validation = Validation::new(Algorithm::HS256);
        jsonwebtoken::decode::<WebhookClaims>(
            token,
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .expect("valid token")
        .claims
    }

    #[test]
    fn participant_joined_is_protojson() {
        let mut event = joined_event();
        event.id = "EV_abcdefghijkm".into();
        event.created_at = 1_700_000_002;
        let value = serde_json::to_value(&event).unwrap();
        // Defaults are absent: state JOINING, kind STANDARD, type AUDIO,
        // source UNKNOWN, false, 0 and "" never appear.
        let expected = json!({
            "event": "participant_joined",
            "room": {
                "sid": "RM_abc",
                "name": "studio",
                "emptyTimeout": 300,
                "departureTimeout": 20,
                "creationTime": "1700000000",
                "creationTimeMs": "1700000000123",
                "numParticipants": 1
            },
            "participant": {
                "sid": "PA_xyz",
                "identity": "alice",
                "state": "ACTIVE",
                "tracks": [
                    {
                        "sid": "TR_mic",
                        "source": "MICROPHONE",
                        "mimeType": "audio/opus",
                        "mid": "0"
                    },
                    {
                        "sid": "TR_cam",
                        "type": "VIDEO",
                        "width": 1280,
                        "height": 720,
                        "simulcast": true,
                        "source": "CAMERA",
                        "mimeType": "video/VP8",
                        "mid": "1"
                    }
                ],
                "joinedAt": "1700000001",
                "joinedAtMs": "1700000001500",
                "name": "Alice",
                "version": 3,
                "permission": {
                    "canSubscribe": true,
                    "canPublish": true,
                    "canPublishData": true,
                    "canPublishSources": ["CAMERA", "SCREEN_SHARE_AUDIO"]
                },
                "isPublisher": true
            },
            "id": "EV_abcdefghijkm",
            "createdAt": "1700000002"
        });
        assert_eq!(value, expected);
        // Key order follows the proto declaration, as protojson's does.
        let text = serde_json::to_string(&event).unwrap();
        assert!(text.starts_with(r#"{"event":"participant_joined","room":{"sid""#));
        assert!(text.ends_with(r#""id":"EV_abcdefghijkm","createdAt":"1700000002"}"#));
    }

    #[test]
    fn other_enum_values_and_egress_info() {
        let mut event = new_event(EVENT_EGRESS_STARTED);
        event.egress_info = Some(proto::EgressInfo {
            egress_id: "EG_1".into(),
            status: proto::EgressStatus::EgressActive as i32,
            ..Default::default()
        });
        #[allow(deprecated)]
        {
            event.num_dropped = 2;
        }
        event.participant = Some(proto::ParticipantInfo {
            state: ParticipantState::Disconnected as i32,
            kind: Kind::Egress as i32,
            ..Default::default()
        });
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["egressInfo"]["egressId"], "EG_1");
        assert_eq!(value["numDropped"], 2);
        assert_eq!(
            value["participant"],
            json!({"state": "DISCONNECTED", "kind": "EGRESS"})
        );
        // Enums travel by name; EGRESS_STARTING, their zero, would be left out.
        assert_eq!(value["egressInfo"]["status"], "EGRESS_ACTIVE");
    }

    #[test]
    fn new_event_has_livekit_id_and_timestamp() {
        let event = new_event(EVENT_ROOM_STARTED);
        assert_eq!(event.id.len(), 15);
        assert!(event.id.starts_with("EV_"));
        assert!(event.id[3..].bytes().all(|b| ID_ALPHABET.contains(&b)));
        assert_ne!(event.id, new_event(EVENT_ROOM_STARTED).id);
        assert!((event.created_at - unix_now()).abs() <= 1);
        let value = serde_json::to_value(&event).unwrap();
        let mut keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["createdAt", "event", "id"]);
        assert!(value["createdAt"].is_string());
    }

    #[test]
    fn token_carries_issuer_validity_and_body_hash() {
        let body = br#"{"event":"room_started"}"#;
        let token = sign(body, KEY, SECRET).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        let claims = decode(&token);
        assert_eq!(claims.iss, KEY);
        assert!((claims.nbf - unix_now()).abs() <= 1);
        assert_eq!(claims.iat, claims.nbf);
        assert_eq!(claims.exp - claims.nbf, 300);
        // Go: base64.StdEncoding.EncodeToString(sha256.Sum256(body)).
        let expected = STANDARD.encode(Sha256::digest(body));
        assert_eq!(claims.sha256, expected);
        assert_eq!(claims.sha256.len(), 44);
        assert!(claims.sha256.ends_with('='));
        let wrong = jsonwebtoken::decode::<WebhookClaims>(
            &token,
            &DecodingKey::from_secret(b"other"),
            &Validation::new(Algorithm::HS256),
        );
        assert!(wrong.is_err());
    }

    #[test]
    fn retry_policy_follows_retryablehttp() {
        let retryable =
            |code: u16| AttemptError::Status(StatusCode::from_u16(code).unwrap()).is_retryable();
        assert!(retryable(500) && retryable(503) && retryable(429) && retryable(408));
        assert!(!retryable(501) && !retryable(400) && !retryable(401) && !retryable(404));
    }

    #[test]
    fn redaction_strips_credentials_and_query() {
        let url = Url::parse("https://user:pw@hooks.example.com:8443/lk?token=x#f").unwrap();
        assert_eq!(redact(&url), "https://hooks.example.com:8443/lk");
    }

    #[test]
    fn disabled_notifier_ignores_events() {
        let notifier = WebhookNotifier::disabled();
        assert!(!notifier.is_enabled());
        notifier.notify(joined_event());
        let outside_runtime = WebhookNotifier::start(
            vec![Url::parse("http://127.0.0.1:9/").unwrap()],
            KEY.into(),
            SECRET.into(),
        );
        assert!(!outside_runtime.is_enabled());
    }

    // --- HTTP ---------------------------------------------------------------

    struct Recorded {
        headers: HeaderMap,
        body: Bytes,
    }

    /// A receiver that records requests and answers with scripted statuses,
    /// then 200.
    #[derive(Default)]
    struct Receiver {
        requests: Mutex<Vec<Recorded>>,
        script: Mutex<VecDeque<u16>>,
    }

    async fn record(
        State(receiver): State<Arc<Receiver>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::http::StatusCode {
        receiver
            .requests
            .lock()
            .unwrap()
            .push(Recorded { headers, body });
        let code = receiver.script.lock().unwrap().pop_front().unwrap_or(200);
        axum::http::StatusCode::from_u16(code).unwrap()
    }

    async fn serve(script: &[u16]) -> (Url, Arc<Receiver>) {
        let receiver = Arc::new(Receiver::default());
        receiver.script.lock().unwrap().extend(script);
        let app = Router::new()
            .route("/hook", axum::routing::post(record))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = Url::parse(&format!("http://{addr}/hook?secret=1")).unwrap();
        (url, receiver)
    }

    /// Waits until `receiver` has seen `count` requests.
    async fn received(receiver: &Receiver, count: usize, within: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + within;
        loop {
            {
                let mut requests = receiver.requests.lock().unwrap();
                if requests.len() >= count {
                    return std::mem::take(&mut *requests);
                }
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} requests within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn fast_policy() -> RetryPolicy {
        RetryPolicy {
            attempt_timeout: Duration::from_secs(2),
            first_backoff: Duration::from_millis(50),
            total_budget: Duration::from_secs(5),
        }
    }

    fn header<'a>(request: &'a Recorded, name: &str) -> &'a str {
        request.headers.get(name).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn retries_after_500_and_signs_the_body() {
        let (url, receiver) = serve(&[500]).await;
        let notifier =
            WebhookNotifier::start_with(vec![url], KEY.into(), SECRET.into(), fast_policy());
        let event = joined_event();
        notifier.notify(event.clone());

        let requests = received(&receiver, 2, Duration::from_secs(3)).await;
        assert_eq!(requests.len(), 2, "one failure, one retry");
        for request in &requests {
            assert_eq!(header(request, "content-type"), "application/webhook+json");
            assert_eq!(header(request, "user-agent"), "LiveKit");
            let token = header(request, "authorization");
            assert!(!token.starts_with("Bearer"));
            let claims = decode(token);
            assert_eq!(claims.iss, KEY);
            assert_eq!(
                claims.sha256,
                STANDARD.encode(Sha256::digest(&request.body))
            );
            assert_eq!(request.body, serde_json::to_vec(&event).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            receiver.requests.lock().unwrap().is_empty(),
            "no resend after 200"
        );
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let sent = &crate::metrics::global().room_webhooks_sent;
        let (failed_before, delivered_before) = (sent.get(&["failed"]), sent.get(&["delivered"]));
        let (url, receiver) = serve(&[400]).await;
        let notifier =
            WebhookNotifier::start_with(vec![url], KEY.into(), SECRET.into(), fast_policy());
        notifier.notify(new_event(EVENT_ROOM_STARTED));
        received(&receiver, 1, Duration::from_secs(2)).await;
        // The failed event is reported to the receiver with the next one.
        notifier.notify(new_event(EVENT_ROOM_FINISHED));
        let requests = received(&receiver, 1, Duration::from_secs(2)).await;
        let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(body["event"], "room_finished");
        assert_eq!(body["numDropped"], 1);
        // Counted (other tests of this process count too: at least).
        assert!(sent.get(&["failed"]) > failed_before);
        let deadline = Instant::now() + Duration::from_secs(2);
        while sent.get(&["delivered"]) == delivered_before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(sent.get(&["delivered"]) > delivered_before);
    }

    #[tokio::test]
    async fn dead_url_does_not_hold_up_a_live_one() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = Url::parse(&format!("http://{}/hook", closed.local_addr().unwrap())).unwrap();
        drop(closed);
        let (live, receiver) = serve(&[]).await;
        // The default 30 s budget keeps the dead URL's worker retrying.
        let notifier = WebhookNotifier::start(vec![dead, live], KEY.into(), SECRET.into());
        for kind in [
            EVENT_ROOM_STARTED,
            EVENT_PARTICIPANT_JOINED,
            EVENT_ROOM_FINISHED,
        ] {
            notifier.notify(new_event(kind));
        }
        let requests = received(&receiver, 3, Duration::from_secs(2)).await;
        let events: Vec<String> = requests
            .iter()
            .map(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["event"].to_string()
            })
            .collect();
        assert_eq!(
            events,
            [
                r#""room_started""#,
                r#""participant_joined""#,
                r#""room_finished""#
            ]
        );
    }

    #[tokio::test]
    async fn full_queue_drops_and_reports_the_count() {
        let (url, receiver) = serve(&[]).await;
        let (target, rx) = Target::new(&url, 1);
        for _ in 0..3 {
            target.enqueue(new_event(EVENT_TRACK_PUBLISHED));
        }
        assert_eq!(target.dropped.load(Ordering::Relaxed), 2);
        let worker = Worker {
            client: reqwest::Client::new(),
            url,
            log_url: target.url.clone(),
            credentials: Arc::new(Credentials {
                api_key: KEY.into(),
                api_secret: SECRET.into(),
            }),
            policy: fast_policy(),
            dropped: target.dropped.clone(),
        };
        drop(target);
        worker.run(rx).await;
        let requests = received(&receiver, 1, Duration::from_secs(1)).await;
        assert_eq!(requests.len(), 1);
        let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(body["numDropped"], 2);
    }
}

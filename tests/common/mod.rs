//! Shared test helpers (media in `media`, a real RTMP server in `rtmp`): a runner that succeeds or fails
//! on purpose, the real router over a real Postgres, and request helpers.
#![allow(dead_code)]

pub mod browser;
pub mod lk_sdk;
pub mod media;
pub mod mux_standin;
pub mod rtmp;
pub mod s3;
pub mod sfu;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use onair::api::{self, AppState};
use onair::auth::{AccessToken, KeyRing, VideoGrant};
use onair::config::{LimitsConfig, Secret};
use onair::livestream::{
    Capabilities, LiveSpec, LivestreamService, OutputSpec, RunControl, RunError, RunEvent,
    RunHandle, RunReport, Runner, ServiceSettings, StartError,
};
use onair::store::Store;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tower::ServiceExt;
use uuid::Uuid;

pub const KEY: &str = "testkey";
pub const SECRET: &str = "test-secret-that-is-long-enough-123";
pub const MUX_WEBHOOK_SECRET: &str = "mux-webhook-test-secret";

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the test runner behaves.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Starts, and reports every output live at once.
    GoLive,
    /// Starts but never reports program data.
    StayStarting,
    /// Refuses to start with this message.
    FailStart(String),
}

/// What the runner was asked to do, for assertions.
#[derive(Default, Debug)]
pub struct Calls {
    pub started: Vec<LiveSpec>,
    pub layouts: Vec<String>,
    pub added: Vec<OutputSpec>,
    pub removed: Vec<Uuid>,
    pub stopped: usize,
}

pub struct TestRunner {
    pub behaviour: Behaviour,
    pub calls: Arc<Mutex<Calls>>,
    /// The event sender of the latest run, so a test can inject events.
    pub events: Arc<Mutex<Option<mpsc::Sender<RunEvent>>>>,
}

impl TestRunner {
    pub fn new(behaviour: Behaviour) -> Arc<TestRunner> {
        Arc::new(TestRunner {
            behaviour,
            calls: Arc::default(),
            events: Arc::default(),
        })
    }
}

struct TestControl {
    calls: Arc<Mutex<Calls>>,
}

#[async_trait]
impl Runner for TestRunner {
    async fn start(&self, spec: LiveSpec) -> Result<RunHandle, StartError> {
        if let Behaviour::FailStart(message) = &self.behaviour {
            return Err(StartError::Failed(message.clone()));
        }
        let (tx, rx) = mpsc::channel(64);
        if let Behaviour::GoLive = self.behaviour {
            for output in &spec.outputs {
                tx.send(RunEvent::OutputLive { output: output.id })
                    .await
                    .unwrap();
            }
        }
        *self.events.lock().unwrap() = Some(tx);
        self.calls.lock().unwrap().started.push(spec);
        Ok(RunHandle {
            control: Arc::new(TestControl {
                calls: self.calls.clone(),
            }),
            events: rx,
        })
    }
}

#[async_trait]
impl RunControl for TestControl {
    async fn set_layout(&self, layout: &str) -> Result<(), RunError> {
        self.calls.lock().unwrap().layouts.push(layout.to_string());
        Ok(())
    }
    async fn add_output(&self, output: OutputSpec) -> Result<(), RunError> {
        self.calls.lock().unwrap().added.push(output);
        Ok(())
    }
    async fn remove_output(&self, output: Uuid) -> Result<(), RunError> {
        self.calls.lock().unwrap().removed.push(output);
        Ok(())
    }
    async fn stop(&self) -> Result<RunReport, RunError> {
        self.calls.lock().unwrap().stopped += 1;
        Ok(RunReport::default())
    }
}

pub fn limits() -> LimitsConfig {
    LimitsConfig {
        max_livestreams: 4,
        max_duration_secs: 43200,
        max_destinations: 3,
        allow_private_destinations: true,
    }
}

pub struct TestApp {
    pub router: Router,
    pub service: Arc<LivestreamService>,
    pub store: Store,
}

pub fn app(pool: PgPool, runner: Arc<dyn Runner>) -> TestApp {
    app_on_node(pool, runner, "test-node")
}

pub fn app_on_node(pool: PgPool, runner: Arc<dyn Runner>, node: &str) -> TestApp {
    let store = Store::from_pool(pool);
    let service = LivestreamService::new(
        store.clone(),
        runner,
        ServiceSettings {
            node_id: node.to_string(),
            limits: limits(),
            recordings_dir: PathBuf::from("/tmp/onair-test-recordings"),
            capabilities: Capabilities::default(),
            layouts: Arc::new(onair::layout::LayoutTemplates::builtin()),
            mux: None,
            storage: None,
            webhooks: onair::sfu::webhook::WebhookNotifier::disabled(),
        },
    );
    let keys = KeyRing::new(
        [
            (KEY.to_string(), Secret::new(SECRET)),
            ("otherkey".to_string(), Secret::new("other-secret")),
        ]
        .into(),
    );
    let router = api::router(AppState {
        keys,
        store: store.clone(),
        livestreams: service.clone(),
        mux_webhook_secret: Secret::new(MUX_WEBHOOK_SECRET),
        sfu: None,
        ice_servers: Arc::new(Vec::new()),
        dev_mode: false,
        room_defaults: onair::sfu::RoomSettings {
            empty_timeout: Duration::from_secs(300),
            departure_timeout: Duration::from_secs(20),
            max_participants: 0,
        },
        http_metrics: Default::default(),
        auto_egress: None,
    });
    TestApp {
        router,
        service,
        store,
    }
}

/// A token for `identity` with `roomRecord` (optionally limited to one room).
pub fn record_token(identity: &str, room: Option<&str>) -> String {
    AccessToken::new(KEY, identity, Duration::from_secs(600))
        .with_grant(VideoGrant {
            room_record: true,
            room: room.unwrap_or_default().to_string(),
            ..VideoGrant::default()
        })
        .sign(SECRET)
        .unwrap()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn basic(key: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"));
    format!("Basic {encoded}")
}

/// Sends a request through the real router; returns status and JSON body (Null if empty).
pub async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    send_raw(router, request.body(body).unwrap()).await
}

pub async fn send_raw(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, json)
}

/// One field (`"to"`, `"reason"`, …) of every event in a status answer, in order.
pub fn event_field<'a>(status: &'a Value, field: &str) -> Vec<&'a str> {
    status["events"]
        .as_array()
        .map(|events| events.iter().filter_map(|e| e[field].as_str()).collect())
        .unwrap_or_default()
}

/// The status route's answer for livestream `id` (asserting 200).
pub async fn status_of(router: &Router, auth: &str, id: &str) -> Value {
    let uri = format!("/api/video/livestream/status?id={id}");
    let (code, body) = send(router, Method::GET, &uri, Some(auth), None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

/// Polls the status route until the livestream reaches `status` (or panics after 5 s).
pub async fn wait_for_status(router: &Router, auth: &str, id: &str, status: &str) -> Value {
    wait_until(router, auth, id, status, |body| body["status"] == status).await
}

/// Polls the status route until `done` holds (or panics after 5 s naming `what`).
pub async fn wait_until(
    router: &Router,
    auth: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let (code, body) = send(
            router,
            Method::GET,
            &format!("/api/video/livestream/status?id={id}"),
            Some(auth),
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("livestream {id}: never {what}");
}

/// Creates a livestream of `room` through the REST API (asserting 201); its id.
pub async fn create_livestream(router: &Router, auth: &str, room: &str) -> String {
    let (status, created) = send(
        router,
        Method::POST,
        "/api/video/livestream",
        Some(auth),
        Some(serde_json::json!({ "roomName": room })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["livestreamId"].as_str().unwrap().to_string()
}

/// Stops livestream `id` through the REST API (asserting 200); the answer.
pub async fn stop_livestream(router: &Router, auth: &str, id: &str) -> Value {
    let uri = format!("/api/video/livestream?id={id}");
    let (status, stopped) = send(router, Method::DELETE, &uri, Some(auth), None).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    stopped
}

/// Seconds since the Unix epoch, as webhook signatures carry them.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A Mux webhook event of `event_type` about `object` (type, id).
pub fn mux_event(event_type: &str, object: (&str, &str), data: Value, created_at: &str) -> Value {
    serde_json::json!({
        "type": event_type,
        "object": { "type": object.0, "id": object.1 },
        "id": Uuid::new_v4().to_string(),
        "environment": { "name": "Production", "id": "env1" },
        "data": data,
        "created_at": created_at,
        "attempts": [],
        "accessor_source": null,
        "accessor": null,
        "request_id": null
    })
}

/// POSTs `body` to `/webhooks/mux` with this `Mux-Signature` header (if any).
pub async fn post_mux_webhook(
    app: &TestApp,
    body: &[u8],
    signature: Option<String>,
) -> (StatusCode, Value) {
    let header = signature.map(|s| ("mux-signature", s));
    post_webhook(app, "/webhooks/mux", "application/json", body, header).await
}

/// POSTs a LiveKit-format room event to `/webhooks/livekit` with this
/// `Authorization` header (if any).
pub async fn post_room_webhook(
    app: &TestApp,
    body: &str,
    authorization: Option<String>,
) -> (StatusCode, Value) {
    let header = authorization.map(|a| ("authorization", a));
    let uri = "/webhooks/livekit";
    post_webhook(
        app,
        uri,
        "application/webhook+json",
        body.as_bytes(),
        header,
    )
    .await
}

/// POSTs a webhook `body` of `content_type` to `uri`, with its signature
/// `header` (name, value) if any.
async fn post_webhook(
    app: &TestApp,
    uri: &str,
    content_type: &str,
    body: &[u8],
    header: Option<(&str, String)>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", content_type);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    send_raw(
        &app.router,
        request.body(Body::from(body.to_vec())).unwrap(),
    )
    .await
}

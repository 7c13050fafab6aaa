//! A local stand-in for Mux Video that speaks its wire format, for tests that
//! cannot reach Mux: the live stream and asset API (HTTP Basic auth,
//! `{"data": …}` envelopes, `{"error":{"type","messages"}}` errors) and signed
//! webhooks (`Mux-Signature`), driven by what really reaches a local
//! nginx-rtmp ingest.
//!
//! Life of a live stream here:
//! * created idle by `POST /video/v1/live-streams`;
//! * goes `active` (webhooks `video.live_stream.connected`, `.recording`,
//!   `.active`) once nginx's recording of its stream key passes 1 kB;
//! * on `PUT …/complete` while active: back to `idle` with a new asset in
//!   `recent_asset_ids` (webhooks `video.live_stream.idle`,
//!   `video.asset.created`, `video.asset.live_stream_completed`), then
//!   `video.asset.ready` 300 ms later. A stream goes active once at most.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Maps a stream key to the FLV file the RTMP server records it to.
pub type RecordingPath = Box<dyn Fn(&str) -> PathBuf + Send + Sync>;

/// nginx-rtmp's layout (`<records_dir>/<key>.flv`, see `NginxRtmp::recording`):
/// `recordings_in(nginx.recording("x").parent().unwrap().to_path_buf())`.
pub fn recordings_in(records_dir: PathBuf) -> RecordingPath {
    Box::new(move |key| records_dir.join(format!("{key}.flv")))
}

struct Stream {
    /// The live stream object as `GET /video/v1/live-streams/{id}` returns it.
    json: Value,
    completed: bool,
    active_since: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    streams: Vec<Stream>, // oldest first
    assets: HashMap<String, Value>,
    calls: Vec<(String, String)>,
    sent: Vec<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    recording: RecordingPath,
    /// Webhooks to deliver, in order.
    outbox: mpsc::UnboundedSender<Value>,
}

pub struct MuxStandIn {
    base_url: String,
    ingest_url: String,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for MuxStandIn {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl MuxStandIn {
    /// Serves the API on 127.0.0.1 (any port), watches `recording(stream_key)`
    /// for ingest, and posts webhooks signed with `webhook_secret` to `webhook_url`.
    pub async fn start(
        rtmp_ingest_base: String,
        webhook_url: String,
        webhook_secret: String,
        recording: RecordingPath,
    ) -> MuxStandIn {
        let (outbox, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            inner: Mutex::default(),
            recording,
            outbox,
        });
        let app = Router::new()
            .route("/video/v1/live-streams", get(list).post(create))
            .route("/video/v1/live-streams/{id}", get(retrieve))
            .route("/video/v1/live-streams/{id}/complete", put(complete))
            .route("/video/v1/assets/{id}", get(asset))
            .fallback(|| async { not_found() })
            .layer(middleware::from_fn_with_state(
                shared.clone(),
                record_and_auth,
            ))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let tasks = vec![
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
            tokio::spawn(watch_ingest(shared.clone())),
            tokio::spawn(deliver(shared.clone(), queue, webhook_url, webhook_secret)),
        ];
        MuxStandIn {
            base_url,
            ingest_url: rtmp_ingest_base,
            shared,
            tasks,
        }
    }

    /// The API origin, for `MuxConfig::base_url`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The RTMP ingest (stream key appended), for onair's `mux.ingest_url`.
    pub fn ingest_url(&self) -> String {
        self.ingest_url.clone()
    }

    /// Every API request, in order: (`"POST"`, `"/video/v1/live-streams"`), …
    pub fn calls(&self) -> Vec<(String, String)> {
        self.shared.inner.lock().unwrap().calls.clone()
    }

    /// Whether `PUT /video/v1/live-streams/{id}/complete` was called.
    pub fn completed(&self, live_stream_id: &str) -> bool {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .streams
            .iter()
            .any(|s| s.json["id"] == live_stream_id && s.completed)
    }

    /// The live stream object as the API would return it now.
    pub fn live_stream(&self, id: &str) -> Option<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .streams
            .iter()
            .find(|s| s.json["id"] == id)
            .map(|s| s.json.clone())
    }

    /// The asset object as the API would return it now.
    pub fn asset(&self, id: &str) -> Option<Value> {
        self.shared.inner.lock().unwrap().assets.get(id).cloned()
    }

    /// Types of the webhooks delivered (answered 2xx), in order.
    pub fn webhooks_sent(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().sent.clone()
    }
}

fn mux_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "messages": [message]}})),
    )
        .into_response()
}

fn not_found() -> Response {
    let message = "The requested resource either doesn't exist or you don't have access to it.";
    mux_error(StatusCode::NOT_FOUND, "not_found", message)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Records the call, then requires `Authorization: Basic` with a non-empty id and secret.
async fn record_and_auth(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let call = (
        request.method().to_string(),
        request.uri().path().to_owned(),
    );
    shared.inner.lock().unwrap().calls.push(call);
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok());
    match credentials.as_deref().and_then(|c| c.split_once(':')) {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => next.run(request).await,
        _ => mux_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized request",
        ),
    }
}

async fn create(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return mux_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameters",
            "Invalid JSON body",
        );
    };
    let policies = match req.get("playback_policies").and_then(Value::as_array) {
        Some(p) if !p.is_empty() => p.clone(),
        _ => vec![json!("public")],
    };
    let playback_ids: Vec<Value> = policies
        .iter()
        .map(|policy| json!({"id": Uuid::new_v4().simple().to_string(), "policy": policy}))
        .collect();
    let mut stream = json!({
        "id": Uuid::new_v4().simple().to_string(),
        "stream_key": Uuid::new_v4().to_string(),
        "status": "idle",
        "playback_ids": playback_ids,
        "latency_mode": req.get("latency_mode").cloned().unwrap_or(json!("standard")),
        "reconnect_window": req.get("reconnect_window").cloned().unwrap_or(json!(60)),
        "max_continuous_duration": req.get("max_continuous_duration").cloned().unwrap_or(json!(43200)),
        "recent_asset_ids": [],
        "created_at": unix_now().to_string(),
        "test": req.get("test").cloned().unwrap_or(json!(false)),
    });
    // Echoed only when sent, as Mux does.
    for key in [
        "new_asset_settings",
        "passthrough",
        "audio_only",
        "reconnect_slate_url",
    ] {
        if let Some(value) = req.get(key) {
            stream[key] = value.clone();
        }
    }
    let inner = &mut shared.inner.lock().unwrap();
    inner.streams.push(Stream {
        json: stream.clone(),
        completed: false,
        active_since: None,
    });
    (StatusCode::CREATED, Json(json!({"data": stream}))).into_response()
}

/// `?limit=&page=&status=&stream_key=`, newest first (no `passthrough` filter, like Mux).
async fn list(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let number = |key: &str, default: usize| q.get(key).map_or(Some(default), |v| v.parse().ok());
    let (Some(limit), Some(page @ 1..)) = (number("limit", 25), number("page", 1)) else {
        return mux_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameters",
            "limit and page must be positive integers",
        );
    };
    let inner = shared.inner.lock().unwrap();
    let matches = |s: &&Stream| {
        ["status", "stream_key"]
            .iter()
            .all(|k| q.get(*k).is_none_or(|v| s.json[*k] == v.as_str()))
    };
    let data: Vec<Value> = inner
        .streams
        .iter()
        .rev()
        .filter(matches)
        .skip((page - 1) * limit)
        .take(limit)
        .map(|s| s.json.clone())
        .collect();
    Json(json!({"data": data})).into_response()
}

async fn retrieve(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    let inner = shared.inner.lock().unwrap();
    match inner.streams.iter().find(|s| s.json["id"] == id.as_str()) {
        Some(s) => Json(json!({"data": s.json})).into_response(),
        None => not_found(),
    }
}

async fn asset(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    match shared.inner.lock().unwrap().assets.get(&id) {
        Some(asset) => Json(json!({"data": asset})).into_response(),
        None => not_found(),
    }
}

/// Ends the broadcast now (if active): the asset is finished, then ready.
async fn complete(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let Some(stream) = inner
        .streams
        .iter_mut()
        .find(|s| s.json["id"] == id.as_str())
    else {
        return not_found();
    };
    stream.completed = true;
    if let Some(since) = stream.active_since.take() {
        let asset_id = Uuid::new_v4().simple().to_string();
        let key = stream.json["stream_key"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let duration = flv_duration(&(shared.recording)(&key))
            .unwrap_or_else(|| since.elapsed().as_secs_f64());
        let json = &mut stream.json;
        json["status"] = json!("idle");
        json.as_object_mut()
            .unwrap()
            .remove("active_ingest_protocol");
        json["recent_asset_ids"]
            .as_array_mut()
            .unwrap()
            .push(json!(asset_id));
        let settings = &json["new_asset_settings"];
        let policy = settings["playback_policies"]
            .get(0)
            .cloned()
            .unwrap_or(json!("public"));
        let mut asset = json!({
            "id": asset_id,
            "status": "preparing",
            "playback_ids": [{"id": Uuid::new_v4().simple().to_string(), "policy": policy}],
            "duration": (duration * 1000.0).round() / 1000.0,
            "live_stream_id": id,
            "is_live": false,
            "max_stored_resolution": "HD",
            "aspect_ratio": "16:9",
            "master_access": "none",
            "test": json["test"],
            "created_at": unix_now().to_string(),
        });
        // Assets take `passthrough` (and settings) from `new_asset_settings`, not from the stream.
        for key in ["passthrough", "video_quality"] {
            if let Some(value) = settings.get(key) {
                asset[key] = value.clone();
            }
        }
        let stream_json = json.clone();
        inner.assets.insert(asset_id.clone(), asset.clone());
        drop(inner);
        send(&shared, "video.live_stream.idle", &stream_json);
        send(&shared, "video.asset.created", &asset);
        send(&shared, "video.asset.live_stream_completed", &asset);
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            asset["status"] = json!("ready");
            shared
                .inner
                .lock()
                .unwrap()
                .assets
                .insert(asset_id, asset.clone());
            send(&shared, "video.asset.ready", &asset);
        });
    }
    Json(json!({"data": {}})).into_response()
}

/// Seconds covered by an FLV file: the timestamp of its last complete tag.
fn flv_duration(path: &Path) -> Option<f64> {
    let bytes = std::fs::read(path).ok()?;
    let tail = bytes.len().checked_sub(4)?;
    let last_size = u32::from_be_bytes(bytes[tail..].try_into().ok()?) as usize;
    let tag = &bytes[tail.checked_sub(last_size).filter(|start| *start >= 13)?..tail];
    if last_size < 11 || ![8, 9, 18].contains(&tag[0]) {
        return None; // mid-write, or not FLV
    }
    let millis = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
    Some(f64::from(millis) / 1000.0)
}

/// Queues a webhook in Mux's delivery format; `data` is the object's API form
/// (with `created_at` a number, as Mux's webhooks have it).
fn send(shared: &Shared, event_type: &str, data: &Value) {
    let mut data = data.clone();
    if let Some(created) = data["created_at"]
        .as_str()
        .and_then(|t| t.parse::<u64>().ok())
    {
        data["created_at"] = json!(created);
    }
    let kind = if event_type.starts_with("video.asset.") {
        "asset"
    } else {
        "live"
    };
    let event = json!({
        "type": event_type,
        "request_id": null,
        "object": {"type": kind, "id": data["id"]},
        "id": Uuid::new_v4().to_string(),
        "environment": {"name": "Development", "id": "standin"},
        "data": data,
        "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "attempts": [],
        "accessor_source": null,
        "accessor": null,
    });
    let _ = shared.outbox.send(event);
}

/// Every 50 ms: a stream whose recording passed 1 kB goes active (once).
async fn watch_ingest(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut inner = shared.inner.lock().unwrap();
        for stream in inner.streams.iter_mut() {
            if stream.completed || stream.active_since.is_some() {
                continue;
            }
            let key = stream.json["stream_key"].as_str().unwrap_or_default();
            if std::fs::metadata((shared.recording)(key)).is_ok_and(|m| m.len() > 1024) {
                send(&shared, "video.live_stream.connected", &stream.json);
                send(&shared, "video.live_stream.recording", &stream.json);
                stream.json["status"] = json!("active");
                stream.json["active_ingest_protocol"] = json!("rtmp");
                stream.active_since = Some(Instant::now());
                send(&shared, "video.live_stream.active", &stream.json);
            }
        }
    }
}

/// Posts queued webhooks one at a time, signed; up to 3 attempts each.
async fn deliver(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Value>,
    url: String,
    secret: String,
) {
    let http = reqwest::Client::new();
    while let Some(event) = queue.recv().await {
        let event_type = event["type"].as_str().unwrap_or_default().to_owned();
        let body = event.to_string();
        for attempt in 1..=3 {
            let signature = onair::mux::webhook::sign(&secret, body.as_bytes(), unix_now());
            let result = http
                .post(&url)
                .header("content-type", "application/json")
                .header("mux-signature", signature)
                .body(body.clone())
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match result {
                Ok(r) if r.status().is_success() => {
                    shared.inner.lock().unwrap().sent.push(event_type.clone());
                    break;
                }
                Ok(r) => eprintln!(
                    "mux stand-in: {event_type} attempt {attempt}: HTTP {}",
                    r.status()
                ),
                Err(e) => eprintln!("mux stand-in: {event_type} attempt {attempt}: {e}"),
            }
            if attempt < 3 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

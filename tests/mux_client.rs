//! `onair::mux` client against an in-process fake of Mux's Video API that
//! speaks its wire format: HTTP Basic auth, `{"data": …}` envelopes, 201 on
//! create, 204 on delete, and `{"error":{"type","messages"}}` error bodies.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use onair::config::Secret;
use onair::mux::{
    AssetStatus, CreateLiveStream, CreateSimulcastTarget, LatencyMode, ListLiveStreams,
    LiveStreamStatus, MuxClient, MuxConfig, MuxError, NewAssetSettings, PlaybackPolicy,
    SimulcastTargetStatus, UpdateLiveStream,
};

const TOKEN_ID: &str = "tok-id-123";
const TOKEN_SECRET: &str = "tok-secret-XYZ";
/// base64("tok-id-123:tok-secret-XYZ"), computed with Python's base64 module.
const EXPECTED_AUTHORIZATION: &str = "Basic dG9rLWlkLTEyMzp0b2stc2VjcmV0LVhZWg==";

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    body: Value,
}

/// A scripted answer, served instead of the normal handling.
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// What the next create does after storing the stream.
enum CreateOutcome {
    /// Answer 201 after this delay.
    Delay(Duration),
    /// Answer with this status (the stream exists all the same).
    Status(u16),
}

#[derive(Default)]
struct Fake {
    requests: Mutex<Vec<Recorded>>,
    /// Live streams, oldest first.
    streams: Mutex<Vec<Value>>,
    canned: Mutex<VecDeque<Canned>>,
    create_outcomes: Mutex<VecDeque<CreateOutcome>>,
    next_id: AtomicU32,
}

impl Fake {
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    fn can(&self, status: u16, headers: Vec<(&'static str, String)>, body: Value) {
        self.canned.lock().unwrap().push_back(Canned {
            status,
            headers,
            body: body.to_string(),
        });
    }

    fn streams(&self) -> Vec<Value> {
        self.streams.lock().unwrap().clone()
    }

    /// Stores a live stream as if created earlier; returns it.
    fn seed(&self, passthrough: Option<&str>) -> Value {
        let stream = self
            .new_stream(&json!({ "passthrough": passthrough, "playback_policies": ["public"] }));
        self.streams.lock().unwrap().push(stream.clone());
        stream
    }

    fn new_stream(&self, req: &Value) -> Value {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let policy = req["playback_policies"][0].as_str().unwrap_or("public");
        json!({
            "id": format!("LS{n:030}"),
            "stream_key": format!("sk-{n}-5ecret-4c1e-8f06"),
            "status": "idle",
            "playback_ids": [{"id": format!("PB{n:030}"), "policy": policy}],
            "passthrough": req.get("passthrough").cloned().unwrap_or(Value::Null),
            "latency_mode": req.get("latency_mode").cloned().unwrap_or(json!("standard")),
            "reconnect_window": req.get("reconnect_window").cloned().unwrap_or(json!(60)),
            "max_continuous_duration": req.get("max_continuous_duration").cloned().unwrap_or(json!(43200)),
            "new_asset_settings": req.get("new_asset_settings").cloned().unwrap_or(json!({})),
            "recent_asset_ids": [],
            "simulcast_targets": [],
            "test": req.get("test").cloned().unwrap_or(json!(false)),
            "created_at": "1714998800"
        })
    }
}

fn json_response(status: u16, body: Value) -> Response {
    let mut response = (StatusCode::from_u16(status).unwrap(), body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn mux_error(status: u16, kind: &str, message: &str) -> Response {
    json_response(
        status,
        json!({"error": {"type": kind, "messages": [message]}}),
    )
}

fn not_found() -> Response {
    mux_error(
        404,
        "not_found",
        "The requested resource could not be found",
    )
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let req_body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    fake.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization: authorization.clone(),
        body: req_body.clone(),
    });

    let canned = fake.canned.lock().unwrap().pop_front();
    if let Some(canned) = canned {
        let mut response =
            (StatusCode::from_u16(canned.status).unwrap(), canned.body).into_response();
        for (name, value) in canned.headers {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_str(&value).unwrap());
        }
        return response;
    }
    if authorization.as_deref() != Some(EXPECTED_AUTHORIZATION) {
        return mux_error(401, "unauthorized", "Unauthorized request");
    }

    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let find = |id: &str| {
        fake.streams
            .lock()
            .unwrap()
            .iter()
            .position(|s| s["id"] == id)
    };
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["video", "v1", "live-streams"]) => {
            let stream = fake.new_stream(&req_body);
            fake.streams.lock().unwrap().push(stream.clone());
            let outcome = fake.create_outcomes.lock().unwrap().pop_front();
            match outcome {
                Some(CreateOutcome::Delay(delay)) => tokio::time::sleep(delay).await,
                Some(CreateOutcome::Status(status)) => {
                    return mux_error(status, "internal_error", "Something went wrong");
                }
                None => {}
            }
            json_response(201, json!({ "data": stream }))
        }
        ("GET", ["video", "v1", "live-streams"]) => {
            let pairs = query_pairs(uri.query());
            let get = |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            };
            let limit: usize = get("limit").map_or(25, |v| v.parse().unwrap());
            let page: usize = get("page").map_or(1, |v| v.parse().unwrap());
            let mut streams: Vec<Value> = fake.streams().into_iter().rev().collect(); // newest first
            if let Some(status) = get("status") {
                streams.retain(|s| s["status"] == status.as_str());
            }
            if let Some(key) = get("stream_key") {
                streams.retain(|s| s["stream_key"] == key.as_str());
            }
            let page: Vec<Value> = streams
                .into_iter()
                .skip((page - 1) * limit)
                .take(limit)
                .collect();
            json_response(200, json!({ "data": page }))
        }
        ("GET", ["video", "v1", "live-streams", id]) => match find(id) {
            Some(i) => json_response(200, json!({ "data": fake.streams()[i] })),
            None => not_found(),
        },
        ("PATCH", ["video", "v1", "live-streams", id]) => match find(id) {
            Some(i) => {
                let mut streams = fake.streams.lock().unwrap();
                for (k, v) in req_body.as_object().unwrap() {
                    streams[i][k] = v.clone();
                }
                json_response(200, json!({ "data": streams[i] }))
            }
            None => not_found(),
        },
        ("PUT", ["video", "v1", "live-streams", id, action]) => match find(id) {
            Some(i) => {
                let mut streams = fake.streams.lock().unwrap();
                match *action {
                    "complete" => {}
                    "disable" => streams[i]["status"] = json!("disabled"),
                    "enable" => streams[i]["status"] = json!("idle"),
                    _ => return not_found(),
                }
                json_response(200, json!({ "data": {} }))
            }
            None => not_found(),
        },
        ("DELETE", ["video", "v1", "live-streams", id]) => match find(id) {
            Some(i) => {
                fake.streams.lock().unwrap().remove(i);
                StatusCode::NO_CONTENT.into_response()
            }
            None => not_found(),
        },
        ("POST", ["video", "v1", "live-streams", id, "reset-stream-key"]) => match find(id) {
            Some(i) => {
                let mut streams = fake.streams.lock().unwrap();
                streams[i]["stream_key"] = json!("sk-reset-9f0e-7d6c");
                json_response(201, json!({ "data": streams[i] }))
            }
            None => not_found(),
        },
        ("POST", ["video", "v1", "live-streams", id, "simulcast-targets"]) => match find(id) {
            Some(i) => {
                let target = json!({
                    "id": "ST000000000000000000000000000001",
                    "status": "idle",
                    "url": req_body["url"],
                    "stream_key": req_body["stream_key"],
                    "passthrough": req_body["passthrough"],
                });
                let mut streams = fake.streams.lock().unwrap();
                streams[i]["simulcast_targets"]
                    .as_array_mut()
                    .unwrap()
                    .push(target.clone());
                json_response(201, json!({ "data": target }))
            }
            None => not_found(),
        },
        (
            "DELETE",
            [
                "video",
                "v1",
                "live-streams",
                id,
                "simulcast-targets",
                target,
            ],
        ) => match find(id) {
            Some(i) => {
                let mut streams = fake.streams.lock().unwrap();
                let targets = streams[i]["simulcast_targets"].as_array_mut().unwrap();
                let before = targets.len();
                targets.retain(|t| t["id"] != *target);
                if targets.len() == before {
                    return not_found();
                }
                StatusCode::NO_CONTENT.into_response()
            }
            None => not_found(),
        },
        ("GET", ["video", "v1", "assets", "A-ready"]) => json_response(
            200,
            json!({"data": {
                "id": "A-ready",
                "status": "ready",
                "playback_ids": [{"policy": "public", "id": "PBasset"}],
                "duration": 3600.25,
                "live_stream_id": "LS1",
                "passthrough": "ls-42",
                "is_live": false,
                "max_stored_resolution": "HD",
                "tracks": [{"type": "video", "max_width": 1920}],
                "created_at": "1714998900",
                "master_access": "none",
                "encoding_tier": "smart",
                "progress": {"state": "completed", "progress": 100}
            }}),
        ),
        ("GET", ["video", "v1", "assets", "A-errored"]) => json_response(
            200,
            json!({"data": {
                "id": "A-errored",
                "status": "errored",
                "errors": {"type": "invalid_input", "messages": ["The input file could not be read"]},
                "created_at": "1714998900"
            }}),
        ),
        ("GET", ["video", "v1", "assets", _]) => not_found(),
        _ => mux_error(404, "not_found", "No such route"),
    }
}

async fn start() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}"))
}

fn config(base_url: &str) -> MuxConfig {
    MuxConfig {
        base_url: base_url.to_owned(),
        token_id: TOKEN_ID.to_owned(),
        token_secret: Secret::new(TOKEN_SECRET),
        timeout: Duration::from_secs(5),
    }
}

fn client(base_url: &str) -> MuxClient {
    MuxClient::new(config(base_url)).unwrap()
}

fn client_with_timeout(base_url: &str, timeout: Duration) -> MuxClient {
    MuxClient::new(MuxConfig {
        timeout,
        ..config(base_url)
    })
    .unwrap()
}

fn id_of(stream: &Value) -> String {
    stream["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sends_basic_auth_and_unwraps_data() {
    let (fake, base) = start().await;
    let seeded = fake.seed(Some("ls-1"));
    let live = client(&base)
        .live_streams()
        .retrieve(&id_of(&seeded))
        .await
        .unwrap();

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(EXPECTED_AUTHORIZATION)
    );
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        format!("/video/v1/live-streams/{}", id_of(&seeded))
    );

    assert_eq!(live.id, id_of(&seeded));
    assert_eq!(
        live.stream_key.expose(),
        seeded["stream_key"].as_str().unwrap()
    );
    assert_eq!(live.status, LiveStreamStatus::Idle);
    assert_eq!(live.passthrough.as_deref(), Some("ls-1"));
    assert_eq!(live.playback_ids.len(), 1);
    assert_eq!(live.playback_ids[0].policy, PlaybackPolicy::Public);
    assert_eq!(live.max_continuous_duration, Some(43200));
    assert_eq!(live.created_at.as_deref(), Some("1714998800"));
}

#[tokio::test]
async fn create_sends_mux_fields_and_returns_the_stream() {
    let (fake, base) = start().await;
    let req = CreateLiveStream {
        playback_policies: vec![PlaybackPolicy::Public],
        new_asset_settings: Some(NewAssetSettings {
            playback_policies: vec![PlaybackPolicy::Public],
            passthrough: Some("ls-9".into()),
            ..Default::default()
        }),
        latency_mode: Some(LatencyMode::Reduced),
        reconnect_window: Some(30.0),
        max_continuous_duration: Some(7200),
        passthrough: Some("ls-9".into()),
        test: Some(true),
        ..Default::default()
    };
    let live = client(&base).live_streams().create(&req).await.unwrap();

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/video/v1/live-streams");
    assert_eq!(
        requests[0].body,
        json!({
            "playback_policies": ["public"],
            "new_asset_settings": {"playback_policies": ["public"], "passthrough": "ls-9"},
            "latency_mode": "reduced",
            "reconnect_window": 30.0,
            "max_continuous_duration": 7200,
            "passthrough": "ls-9",
            "test": true
        })
    );
    assert_eq!(live.id, id_of(&fake.streams()[0]));
    assert_eq!(live.latency_mode, Some(LatencyMode::Reduced));
    assert_eq!(live.reconnect_window, Some(30.0));
    assert_eq!(live.max_continuous_duration, Some(7200));
    assert!(live.test);
    assert_eq!(
        live.new_asset_settings.as_ref().unwrap()["passthrough"],
        "ls-9"
    );
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_seconds() {
    let (fake, base) = start().await;
    let seeded = fake.seed(None);
    fake.can(
        429,
        vec![("retry-after", "1".into())],
        json!({"error": {"type": "too_many_requests", "messages": ["Rate limit exceeded"]}}),
    );
    let started = Instant::now();
    let live = client(&base)
        .live_streams()
        .retrieve(&id_of(&seeded))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(live.id, id_of(&seeded));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_http_date() {
    let (fake, base) = start().await;
    let seeded = fake.seed(None);
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    fake.can(
        429,
        vec![("retry-after", at)],
        json!({"error": {"type": "too_many_requests", "messages": []}}),
    );
    let started = Instant::now();
    client(&base)
        .live_streams()
        .retrieve(&id_of(&seeded))
        .await
        .unwrap();
    // The date has one-second resolution: at least one second remains.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_cap_is_not_slept_through() {
    let (fake, base) = start().await;
    let seeded = fake.seed(None);
    fake.can(
        429,
        vec![("retry-after", "3600".into())],
        json!({"error": {"type": "too_many_requests", "messages": []}}),
    );
    let started = Instant::now();
    let err = client(&base)
        .live_streams()
        .retrieve(&id_of(&seeded))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.status(), Some(429));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn server_error_then_success() {
    let (fake, base) = start().await;
    let seeded = fake.seed(None);
    fake.can(
        500,
        vec![],
        json!({"error": {"type": "internal_error", "messages": ["oops"]}}),
    );
    let started = Instant::now();
    let live = client(&base)
        .live_streams()
        .retrieve(&id_of(&seeded))
        .await
        .unwrap();
    assert_eq!(live.id, id_of(&seeded));
    assert_eq!(fake.requests().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(375),
        "backoff: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn gives_up_after_three_attempts() {
    let (fake, base) = start().await;
    let seeded = fake.seed(None);
    for _ in 0..4 {
        fake.can(
            503,
            vec![],
            json!({"error": {"type": "service_unavailable", "messages": ["try later"]}}),
        );
    }
    let err = client(&base)
        .live_streams()
        .retrieve(&id_of(&seeded))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MuxError::Api {
            status: 503,
            kind: "service_unavailable".into(),
            messages: vec!["try later".into()]
        }
    );
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn unauthorized_is_typed_and_not_retried() {
    let (fake, base) = start().await;
    let seeded = fake.seed(None);
    let bad = MuxClient::new(MuxConfig {
        token_secret: Secret::new("not-the-right-secret"),
        ..config(&base)
    })
    .unwrap();
    let err = bad
        .live_streams()
        .retrieve(&id_of(&seeded))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MuxError::Unauthorized {
            status: 401,
            kind: "unauthorized".into(),
            messages: vec!["Unauthorized request".into()]
        }
    );
    assert_eq!(fake.requests().len(), 1);
    assert!(!err.to_string().contains("not-the-right-secret"));
    assert!(!format!("{err:?}").contains("not-the-right-secret"));
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let (fake, base) = start().await;
    let c = client(&base);
    let err = c
        .live_streams()
        .retrieve("does-not-exist")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(fake.requests().len(), 1);

    for status in [400, 403, 409, 422] {
        fake.can(
            status,
            vec![],
            json!({"error": {"type": "invalid_parameters", "messages": ["no"]}}),
        );
        let err = c
            .live_streams()
            .create(&CreateLiveStream {
                passthrough: Some("ls-x".into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(status));
    }
    assert_eq!(fake.requests().len(), 5);
    assert!(fake.streams().is_empty());
}

#[tokio::test]
async fn error_body_forms() {
    let (fake, base) = start().await;
    let seeded = fake.seed(None);
    let c = client(&base);
    let update = UpdateLiveStream {
        reconnect_window: Some(9999.0),
        ..Default::default()
    };

    fake.can(
        400,
        vec![],
        json!({"error": {"type": "invalid_parameters", "messages": ["reconnect_window must be at most 1800"]}}),
    );
    let err = c
        .live_streams()
        .update(&id_of(&seeded), &update)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MuxError::Api {
            status: 400,
            kind: "invalid_parameters".into(),
            messages: vec!["reconnect_window must be at most 1800".into()]
        }
    );
    assert_eq!(
        err.to_string(),
        "Mux API error: HTTP 400 invalid_parameters: reconnect_window must be at most 1800"
    );

    fake.can(
        422,
        vec![],
        json!({"errors": ["passthrough is too long", {"type": "invalid_parameters", "messages": ["latency_mode is invalid"]}]}),
    );
    let err = c
        .live_streams()
        .update(&id_of(&seeded), &update)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MuxError::Api {
            status: 422,
            kind: "invalid_parameters".into(),
            messages: vec![
                "passthrough is too long".into(),
                "latency_mode is invalid".into()
            ]
        }
    );

    // Error bodies that are not Mux's still give the status.
    fake.can(400, vec![], json!("<html>"));
    let err = c
        .live_streams()
        .update(&id_of(&seeded), &update)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MuxError::Api {
            status: 400,
            kind: "unknown".into(),
            messages: vec![]
        }
    );
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn timed_out_create_reuses_the_stream_by_passthrough() {
    let (fake, base) = start().await;
    fake.seed(Some("someone-else"));
    // The first create is stored by the fake but answered after the client gave up.
    fake.create_outcomes
        .lock()
        .unwrap()
        .push_back(CreateOutcome::Delay(Duration::from_secs(2)));
    let c = client_with_timeout(&base, Duration::from_millis(300));
    let live = c
        .live_streams()
        .create(&CreateLiveStream {
            playback_policies: vec![PlaybackPolicy::Public],
            passthrough: Some("ls-7f3a".into()),
            ..Default::default()
        })
        .await
        .unwrap();

    let ours: Vec<Value> = fake
        .streams()
        .into_iter()
        .filter(|s| s["passthrough"] == "ls-7f3a")
        .collect();
    assert_eq!(ours.len(), 1, "exactly one stream for this passthrough");
    assert_eq!(fake.streams().len(), 2);
    assert_eq!(live.id, id_of(&ours[0]));
    assert_eq!(live.passthrough.as_deref(), Some("ls-7f3a"));
    assert_eq!(fake.count("POST", "/video/v1/live-streams"), 1);
    let lists: Vec<Recorded> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/video/v1/live-streams")
        .collect();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].query.as_deref(), Some("limit=100&page=1"));
}

#[tokio::test]
async fn create_answered_with_5xx_after_creating_reuses_the_stream() {
    let (fake, base) = start().await;
    fake.create_outcomes
        .lock()
        .unwrap()
        .push_back(CreateOutcome::Status(502));
    let live = client(&base)
        .live_streams()
        .create(&CreateLiveStream {
            passthrough: Some("ls-502".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(fake.streams().len(), 1);
    assert_eq!(live.id, id_of(&fake.streams()[0]));
    assert_eq!(fake.count("POST", "/video/v1/live-streams"), 1);
    assert_eq!(fake.count("GET", "/video/v1/live-streams"), 1);
}

#[tokio::test]
async fn create_after_a_5xx_that_created_nothing_posts_again() {
    let (fake, base) = start().await;
    fake.can(
        500,
        vec![],
        json!({"error": {"type": "internal_error", "messages": []}}),
    );
    let live = client(&base)
        .live_streams()
        .create(&CreateLiveStream {
            passthrough: Some("ls-500".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let sequence: Vec<(String, String)> = fake
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let route = "/video/v1/live-streams".to_owned();
    assert_eq!(
        sequence,
        vec![
            ("POST".to_owned(), route.clone()),
            ("GET".to_owned(), route.clone()),
            ("POST".to_owned(), route)
        ]
    );
    assert_eq!(fake.streams().len(), 1);
    assert_eq!(live.id, id_of(&fake.streams()[0]));
}

#[tokio::test]
async fn create_retries_429_without_a_lookup() {
    let (fake, base) = start().await;
    fake.can(
        429,
        vec![("retry-after", "0".into())],
        json!({"error": {"type": "too_many_requests", "messages": []}}),
    );
    client(&base)
        .live_streams()
        .create(&CreateLiveStream {
            passthrough: Some("ls-429".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(fake.count("POST", "/video/v1/live-streams"), 2);
    assert_eq!(fake.count("GET", "/video/v1/live-streams"), 0);
    assert_eq!(fake.streams().len(), 1);
}

#[tokio::test]
async fn create_without_passthrough_is_not_retried_after_a_timeout() {
    let (fake, base) = start().await;
    fake.create_outcomes
        .lock()
        .unwrap()
        .push_back(CreateOutcome::Delay(Duration::from_secs(2)));
    let c = client_with_timeout(&base, Duration::from_millis(300));
    let err = c
        .live_streams()
        .create(&CreateLiveStream::default())
        .await
        .unwrap_err();
    assert!(matches!(err, MuxError::Timeout(_)), "{err:?}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn complete_disable_enable_are_puts() {
    let (fake, base) = start().await;
    let id = id_of(&fake.seed(None));
    let live_streams = client(&base);
    let live_streams = live_streams.live_streams();
    live_streams.complete(&id).await.unwrap();
    live_streams.disable(&id).await.unwrap();
    assert_eq!(fake.streams()[0]["status"], "disabled");
    live_streams.enable(&id).await.unwrap();
    assert_eq!(fake.streams()[0]["status"], "idle");

    let sent: Vec<(String, String)> = fake
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        sent,
        ["complete", "disable", "enable"]
            .iter()
            .map(|a| ("PUT".to_owned(), format!("/video/v1/live-streams/{id}/{a}")))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn list_sends_paging_and_filters() {
    let (fake, base) = start().await;
    let first = fake.seed(Some("a"));
    let second = fake.seed(Some("b"));
    fake.seed(Some("c"));
    let c = client(&base);

    let page = c
        .live_streams()
        .list(&ListLiveStreams {
            limit: Some(2),
            page: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, id_of(&first)); // newest first: c, b | a

    let key = second["stream_key"].as_str().unwrap();
    let found = c
        .live_streams()
        .list(&ListLiveStreams {
            status: Some(LiveStreamStatus::Idle),
            stream_key: Some(Secret::new(key)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id_of(&second));

    let queries: Vec<Option<String>> = fake.requests().into_iter().map(|r| r.query).collect();
    assert_eq!(
        queries,
        vec![
            Some("limit=2&page=2".to_owned()),
            Some(format!("status=idle&stream_key={key}"))
        ]
    );

    let found = c
        .live_streams()
        .find_by_passthrough("b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id_of(&second));
    assert!(
        c.live_streams()
            .find_by_passthrough("zzz")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn update_reset_simulcast_and_delete() {
    let (fake, base) = start().await;
    let id = id_of(&fake.seed(Some("ls-1")));
    let c = client(&base);
    let ls = c.live_streams();

    let updated = ls
        .update(
            &id,
            &UpdateLiveStream {
                latency_mode: Some(LatencyMode::Low),
                reconnect_window: Some(15.0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.latency_mode, Some(LatencyMode::Low));
    assert_eq!(updated.reconnect_window, Some(15.0));

    let old_key = fake.streams()[0]["stream_key"].as_str().unwrap().to_owned();
    let reset = ls.reset_stream_key(&id).await.unwrap();
    assert_ne!(reset.stream_key.expose(), old_key);
    assert_eq!(reset.stream_key.expose(), "sk-reset-9f0e-7d6c");

    let target = ls
        .create_simulcast_target(
            &id,
            &CreateSimulcastTarget {
                url: "rtmp://a.rtmp.youtube.com/live2".into(),
                stream_key: Some(Secret::new("yt-key-abcd-1234")),
                passthrough: Some("youtube".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(target.status, SimulcastTargetStatus::Idle);
    assert_eq!(target.url, "rtmp://a.rtmp.youtube.com/live2");
    assert_eq!(
        target.stream_key.as_ref().unwrap().expose(),
        "yt-key-abcd-1234"
    );
    assert!(!format!("{target:?}").contains("yt-key-abcd-1234"));
    let with_target = ls.retrieve(&id).await.unwrap();
    assert_eq!(with_target.simulcast_targets.len(), 1);
    assert!(!format!("{with_target:?}").contains("yt-key-abcd-1234"));

    ls.delete_simulcast_target(&id, &target.id).await.unwrap();
    ls.delete(&id).await.unwrap();
    assert!(fake.streams().is_empty());
    assert!(ls.retrieve(&id).await.unwrap_err().is_not_found());

    let sent: Vec<(String, String, Value)> = fake
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.body))
        .collect();
    let base_path = format!("/video/v1/live-streams/{id}");
    assert_eq!(
        sent,
        vec![
            (
                "PATCH".to_owned(),
                base_path.clone(),
                json!({"latency_mode": "low", "reconnect_window": 15.0})
            ),
            (
                "POST".to_owned(),
                format!("{base_path}/reset-stream-key"),
                Value::Null
            ),
            (
                "POST".to_owned(),
                format!("{base_path}/simulcast-targets"),
                json!({"url": "rtmp://a.rtmp.youtube.com/live2", "stream_key": "yt-key-abcd-1234", "passthrough": "youtube"})
            ),
            ("GET".to_owned(), base_path.clone(), Value::Null),
            (
                "DELETE".to_owned(),
                format!("{base_path}/simulcast-targets/{}", target.id),
                Value::Null
            ),
            ("DELETE".to_owned(), base_path.clone(), Value::Null),
            ("GET".to_owned(), base_path, Value::Null),
        ]
    );
}

#[tokio::test]
async fn retrieve_assets() {
    let (fake, base) = start().await;
    let c = client(&base);
    let asset = c.assets().retrieve("A-ready").await.unwrap();
    assert_eq!(asset.status, AssetStatus::Ready);
    assert_eq!(asset.duration, Some(3600.25));
    assert_eq!(asset.live_stream_id.as_deref(), Some("LS1"));
    assert_eq!(asset.passthrough.as_deref(), Some("ls-42"));
    assert_eq!(asset.playback_ids[0].id, "PBasset");
    assert_eq!(
        onair::mux::playback_url(&asset.playback_ids[0].id),
        "https://stream.mux.com/PBasset.m3u8"
    );

    let errored = c.assets().retrieve("A-errored").await.unwrap();
    assert_eq!(errored.status, AssetStatus::Errored);
    let errors = errored.errors.unwrap();
    assert_eq!(errors.kind.as_deref(), Some("invalid_input"));
    assert_eq!(
        errors.messages,
        vec!["The input file could not be read".to_owned()]
    );

    assert!(
        c.assets()
            .retrieve("nope")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(fake.requests()[0].path, "/video/v1/assets/A-ready");
}

#[tokio::test]
async fn stream_keys_never_print() {
    let (fake, base) = start().await;
    let c = client(&base);
    let live = c
        .live_streams()
        .create(&CreateLiveStream {
            passthrough: Some("ls-print".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let key = live.stream_key.expose().to_owned();
    assert!(!key.is_empty());
    let debug = format!("{live:?}");
    assert!(!debug.contains(&key), "{debug}");
    assert!(debug.contains("[redacted]"));
    let listed = c
        .live_streams()
        .list(&ListLiveStreams::default())
        .await
        .unwrap();
    assert!(!format!("{listed:?}").contains(&key));

    // A body Mux sends that does not decode: the error does not quote it.
    fake.can(
        200,
        vec![],
        json!({"data": {"id": "x", "stream_key": key, "status": "idle", "reconnect_window": key}}),
    );
    let err = c.live_streams().retrieve("x").await.unwrap_err();
    assert!(matches!(err, MuxError::Decode(_)), "{err:?}");
    assert!(!err.to_string().contains(&key), "{err}");
    assert!(!format!("{err:?}").contains(&key));

    // A failed connection while filtering by stream key: the URL (and its
    // query) stays out of the error.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let offline = client(&format!("http://{closed}"));
    let err = offline
        .live_streams()
        .list(&ListLiveStreams {
            stream_key: Some(Secret::new(key.clone())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MuxError::Transport(_)), "{err:?}");
    assert!(!err.to_string().contains(&key), "{err}");
    assert!(!format!("{err:?}").contains(&key));
    assert!(!err.to_string().contains(TOKEN_SECRET));
}

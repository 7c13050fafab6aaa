//! `GET /metrics` over the real router: the text is valid exposition and the
//! process-wide counters move with webhooks, livestream transitions and Mux
//! API calls. The registry is shared by every test of this process, so each
//! assertion compares a scrape before with one after.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{post, put};
use common::*;
use onair::config::Secret;
use onair::mux::webhook::sign;
use onair::mux::{CreateLiveStream, MuxClient, MuxConfig};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Scrapes `/metrics` through the router, checking the whole text.
async fn scrape(app: &TestApp) -> String {
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send_raw(&app.router, request).await;
    assert_eq!(status, StatusCode::OK);
    let Value::String(text) = body else {
        panic!("metrics are text: {body}")
    };
    if let Err(error) = onair::metrics::check_exposition(&text) {
        panic!("invalid exposition: {error}\n{text}");
    }
    text
}

/// The value of the series `name{labels}` (`labels` as rendered, e.g.
/// `source="mux",result="rejected"`), 0 when absent.
fn value(text: &str, name: &str, labels: &str) -> f64 {
    let series = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

/// How much `name{labels}` grew from `before` to `after`.
fn grew(before: &str, after: &str, name: &str, labels: &str) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}

const WEBHOOKS: &str = "onair_webhooks_received_total";

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn webhooks_are_counted_by_source_and_result(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let before = scrape(&app).await;
    // Every listed series is there from the start.
    for labels in [
        r#"source="mux",result="accepted""#,
        r#"source="livekit",result="rejected""#,
    ] {
        assert!(
            before.contains(&format!("{WEBHOOKS}{{{labels}}} ")),
            "{before}"
        );
    }

    let event = mux_event(
        "video.live_stream.idle",
        ("live_stream", "LS-unknown"),
        json!({ "id": "LS-unknown", "status": "idle" }),
        "2024-05-06T10:00:00Z",
    )
    .to_string();
    let body = event.as_bytes();
    // A wrong signature, no signature, an expired one: rejected.
    let forged = sign("not-the-secret", body, unix_now());
    let expired = sign(MUX_WEBHOOK_SECRET, body, unix_now() - 3600);
    for header in [Some(forged), None, Some(expired)] {
        let (status, _) = post_mux_webhook(&app, body, header).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Signed: accepted, then the same event again: duplicate.
    for _ in 0..2 {
        let signature = sign(MUX_WEBHOOK_SECRET, body, unix_now());
        let (status, _) = post_mux_webhook(&app, body, Some(signature)).await;
        assert_eq!(status, StatusCode::OK);
    }
    // A LiveKit-format webhook with a token of no configured key.
    let (status, _) = post_room_webhook(
        &app,
        r#"{"event":"room_finished"}"#,
        Some("not-a-jwt".to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let after = scrape(&app).await;
    let grew = |labels| grew(&before, &after, WEBHOOKS, labels);
    assert!(grew(r#"source="mux",result="rejected""#) >= 3.0, "{after}");
    assert!(grew(r#"source="mux",result="accepted""#) >= 1.0, "{after}");
    assert!(grew(r#"source="mux",result="duplicate""#) >= 1.0, "{after}");
    assert!(
        grew(r#"source="livekit",result="rejected""#) >= 1.0,
        "{after}"
    );
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn livestream_transitions_are_counted(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let alice = bearer(&record_token("alice", None));
    let before = scrape(&app).await;

    let id = create_livestream(&app.router, &alice, "metrics-studio").await;
    wait_for_status(&app.router, &alice, &id, "active").await;
    let stopped = stop_livestream(&app.router, &alice, &id).await;
    assert_eq!(stopped["status"], "completed");

    let after = scrape(&app).await;
    for (from, to) in [
        ("idle", "starting"),
        ("starting", "active"),
        ("active", "stopping"),
        ("stopping", "completed"),
    ] {
        let labels = format!(r#"from="{from}",to="{to}""#);
        assert!(
            grew(
                &before,
                &after,
                "onair_livestream_transitions_total",
                &labels
            ) >= 1.0,
            "{from} → {to} not counted:\n{after}"
        );
    }
    // The process families are there too.
    assert!(value(&after, "onair_process_resident_memory_bytes", "") > 0.0);
    assert!(after.contains("# TYPE onair_process_cpu_seconds_total counter"));
    assert!(after.contains("# TYPE onair_encoder_cpu_seconds_total counter"));
}

/// A fake Mux: creates answer 201; `complete` fails with 503 once, then 204.
async fn fake_mux() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let completes = Arc::new(AtomicU32::new(0));
    let seen_create = seen.clone();
    let seen_complete = seen.clone();
    let router = Router::new()
        .route(
            "/video/v1/live-streams",
            post(move || async move {
                seen_create.lock().unwrap().push("create".into());
                let body = json!({ "data": {
                    "id": "LS-metrics",
                    "stream_key": "sk-metrics",
                    "status": "idle",
                    "playback_ids": [{ "id": "PB-metrics", "policy": "public" }],
                    "created_at": "1714998800"
                }});
                (StatusCode::CREATED, body.to_string()).into_response()
            }),
        )
        .route(
            "/video/v1/live-streams/{id}/complete",
            put(move || async move {
                seen_complete.lock().unwrap().push("complete".into());
                if completes.fetch_add(1, Ordering::SeqCst) == 0 {
                    let body =
                        json!({ "error": { "type": "unavailable", "messages": ["try again"] } });
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("retry-after", "0")],
                        body.to_string(),
                    )
                        .into_response()
                } else {
                    StatusCode::NO_CONTENT.into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, seen)
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn mux_api_calls_and_retries_are_counted(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let (base_url, seen) = fake_mux().await;
    let client = MuxClient::new(MuxConfig {
        base_url,
        timeout: Duration::from_secs(5),
        ..MuxConfig::new("tok-id", Secret::new("tok-secret"))
    })
    .unwrap();
    let before = scrape(&app).await;

    let stream = client
        .live_streams()
        .create(&CreateLiveStream::default())
        .await
        .unwrap();
    assert_eq!(stream.id, "LS-metrics");
    client.live_streams().complete(&stream.id).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["create", "complete", "complete"]);

    let after = scrape(&app).await;
    let requests = "onair_mux_api_requests_total";
    let grew = |name, labels| grew(&before, &after, name, labels);
    assert!(
        grew(requests, r#"operation="create_live_stream",outcome="ok""#) >= 1.0,
        "{after}"
    );
    assert!(grew(requests, r#"operation="complete",outcome="error""#) >= 1.0);
    assert!(grew(requests, r#"operation="complete",outcome="ok""#) >= 1.0);
    assert!(grew("onair_mux_api_retries_total", r#"operation="complete""#) >= 1.0);
    // Ids never become labels.
    assert!(!after.contains("LS-metrics"), "{after}");
}

//! Webhooks in: Mux's signed events and LiveKit-format room events, over the
//! real router and a real Postgres.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use common::*;
use onair::auth::AccessToken;
use onair::mux::webhook::sign;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn mux_event(event_type: &str, object: (&str, &str), data: Value, created_at: &str) -> Value {
    json!({
        "type": event_type,
        "object": { "type": object.0, "id": object.1 },
        "id": uuid::Uuid::new_v4().to_string(),
        "environment": { "name": "Production", "id": "env1" },
        "data": data,
        "created_at": created_at,
        "attempts": [],
        "accessor_source": null,
        "accessor": null,
        "request_id": null
    })
}

async fn post_mux(app: &TestApp, body: &[u8], signature: Option<String>) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/webhooks/mux")
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        request = request.header("mux-signature", signature);
    }
    send_raw(
        &app.router,
        request.body(Body::from(body.to_vec())).unwrap(),
    )
    .await
}

async fn deliver(app: &TestApp, event: &Value) -> Value {
    let body = event.to_string();
    let (status, answer) = post_mux(
        app,
        body.as_bytes(),
        Some(sign(MUX_WEBHOOK_SECRET, body.as_bytes(), now())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// A livestream that is live and streams to Mux live stream `LS1`.
async fn live_with_mux(app: &TestApp, auth: &str, room: &str) -> String {
    let (status, created) = send(
        &app.router,
        Method::POST,
        "/api/video/livestream",
        Some(auth),
        Some(json!({ "roomName": room })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["livestreamId"].as_str().unwrap().to_string();
    // Going live with Mux lands with the go-live slice; the row it would write:
    sqlx::query("UPDATE livestreams SET mux_live_stream_id = 'LS1', mux_playback_id = 'PB1' WHERE id = $1::uuid")
        .bind(&id)
        .execute(app.store.pool())
        .await
        .unwrap();
    wait_for_status(&app.router, auth, &id, "active").await;
    id
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn mux_signatures_are_checked(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let body = mux_event(
        "video.live_stream.idle",
        ("live_stream", "LS9"),
        json!({"id": "LS9"}),
        "2026-11-21T08:00:00Z",
    )
    .to_string();
    let body = body.as_bytes();
    // One timestamp for every header: a second boundary between two `now()`
    // calls would give the two-v1 header two different `t`s.
    let t = now();
    let valid = sign(MUX_WEBHOOK_SECRET, body, t);
    let (status, _) = post_mux(&app, body, Some(valid.clone())).await;
    assert_eq!(status, StatusCode::OK);

    let mut tampered = body.to_vec();
    tampered[5] ^= 1;
    let two_v1 = format!(
        "{},v1={}",
        sign("other", body, t),
        valid.split("v1=").nth(1).unwrap()
    );
    let cases: [(&[u8], Option<String>, StatusCode); 6] = [
        (&tampered, Some(valid.clone()), StatusCode::UNAUTHORIZED),
        (
            body,
            Some(sign("wrong-secret", body, t)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            body,
            Some(sign(MUX_WEBHOOK_SECRET, body, t - 301)),
            StatusCode::UNAUTHORIZED,
        ),
        (body, None, StatusCode::UNAUTHORIZED),
        (body, Some("garbage".into()), StatusCode::UNAUTHORIZED),
        (body, Some(two_v1), StatusCode::OK),
    ];
    for (n, (payload, header, expected)) in cases.into_iter().enumerate() {
        let (status, answer) = post_mux(&app, payload, header).await;
        assert_eq!(status, expected, "case {n}: {answer}");
        if expected == StatusCode::UNAUTHORIZED {
            assert_eq!(answer["code"], "unauthenticated");
        }
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(
        stored, 1,
        "only verified events are stored; the redelivery is a duplicate"
    );
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn duplicates_change_nothing_and_late_events_never_go_backwards(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let alice = bearer(&record_token("alice", None));
    let id = live_with_mux(&app, &alice, "mux-room").await;

    let active = mux_event(
        "video.live_stream.active",
        ("live_stream", "LS1"),
        json!({ "id": "LS1", "status": "active", "stream_key": "sk-very-secret", "passthrough": id }),
        "2026-11-21T08:00:10Z",
    );
    let first = deliver(&app, &active).await;
    assert_eq!(
        (first["duplicate"].as_bool(), first["livestreamId"].as_str()),
        (Some(false), Some(id.as_str()))
    );
    let again = deliver(&app, &active).await;
    assert_eq!(again["duplicate"], true);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 1);
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM webhook_events")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert!(
        !payloads[0].contains("sk-very-secret"),
        "stream keys are not stored: {}",
        payloads[0]
    );

    // The asset is ready before we stop.
    let ready = mux_event(
        "video.asset.ready",
        ("asset", "AS1"),
        json!({ "id": "AS1", "status": "ready", "duration": 12.5, "live_stream_id": "LS1",
                "playback_ids": [{ "id": "VOD1", "policy": "public" }] }),
        "2026-11-21T08:01:00Z",
    );
    deliver(&app, &ready).await;
    let idle = mux_event(
        "video.live_stream.idle",
        ("live_stream", "LS1"),
        json!({ "id": "LS1", "status": "idle" }),
        "2026-11-21T08:02:00Z",
    );
    deliver(&app, &idle).await;

    let (status, stopped) = send(
        &app.router,
        Method::DELETE,
        &format!("/api/video/livestream?id={id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stopped["status"], "completed");
    assert_eq!(stopped["muxAssetId"], "AS1");
    assert_eq!(stopped["vodPlaybackId"], "VOD1");
    assert_eq!(stopped["vodDuration"], 12.5);
    assert_eq!(stopped["muxStatus"], "idle");

    // Days late: an old `active` after we completed. Our state and Mux's newer status stay.
    let late = mux_event(
        "video.live_stream.active",
        ("live_stream", "LS1"),
        json!({ "id": "LS1", "status": "active" }),
        "2026-11-21T08:00:30Z",
    );
    deliver(&app, &late).await;
    let after = status_of(&app.router, &alice, &id).await;
    assert_eq!(after["status"], "completed");
    assert_eq!(after["muxStatus"], "idle");
    assert_eq!(after["muxAssetId"], "AS1");
    let path = event_field(&after, "to");
    assert_eq!(
        path,
        ["idle", "starting", "active", "stopping", "completed"]
    );

    // An errored asset records Mux's message.
    let errored = mux_event(
        "video.asset.errored",
        ("asset", "AS2"),
        json!({ "id": "AS2", "status": "errored", "live_stream_id": "LS1",
                "errors": { "type": "invalid_input", "messages": ["The input had no video"] } }),
        "2026-11-21T08:03:00Z",
    );
    deliver(&app, &errored).await;
    let error: Option<String> =
        sqlx::query_scalar("SELECT mux_asset_error FROM livestreams WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(error.as_deref(), Some("The input had no video"));
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn events_for_unknown_streams_are_stored_and_ignored(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let event = mux_event(
        "video.upload.created",
        ("upload", "UP1"),
        json!({ "id": "UP1" }),
        "2026-11-21T08:00:00Z",
    );
    let answer = deliver(&app, &event).await;
    assert_eq!(answer["livestreamId"], Value::Null);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

fn room_webhook(body: &str, secret: &str) -> String {
    let mut token = AccessToken::new(KEY, "", Duration::from_secs(300));
    token.claims.sha256 =
        Some(base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes())));
    token.sign(secret).unwrap()
}

async fn post_room_event(
    app: &TestApp,
    body: &str,
    authorization: Option<String>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/webhooks/livekit")
        .header("content-type", "application/webhook+json");
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    send_raw(
        &app.router,
        request.body(Body::from(body.to_string())).unwrap(),
    )
    .await
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn a_signed_room_finished_stops_the_rooms_livestream(pool: PgPool) {
    let runner = TestRunner::new(Behaviour::GoLive);
    let app = app(pool, runner.clone());
    let alice = bearer(&record_token("alice", None));
    let (_, created) = send(
        &app.router,
        Method::POST,
        "/api/video/livestream",
        Some(&alice),
        Some(json!({ "roomName": "closing" })),
    )
    .await;
    let id = created["livestreamId"].as_str().unwrap().to_string();
    wait_for_status(&app.router, &alice, &id, "active").await;

    let body = json!({
        "event": "room_finished",
        "room": { "sid": "RM_abc", "name": "closing" },
        "id": "EV_1",
        "createdAt": now().to_string()
    })
    .to_string();

    // Wrongly signed, or signed for another body: 401 and nothing changes.
    let tampered = body.replace("closing", "closinG");
    for (payload, authorization) in [
        (body.as_str(), Some(room_webhook(&body, "not-the-secret"))),
        (tampered.as_str(), Some(room_webhook(&body, SECRET))),
        (body.as_str(), None),
    ] {
        let (status, answer) = post_room_event(&app, payload, authorization).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    }
    let still = status_of(&app.router, &alice, &id).await;
    assert_eq!(still["status"], "active");

    // Unknown events are accepted and ignored.
    let other =
        json!({ "event": "participant_joined", "room": { "name": "closing" }, "id": "EV_0" })
            .to_string();
    let (status, _) = post_room_event(&app, &other, Some(room_webhook(&other, SECRET))).await;
    assert_eq!(status, StatusCode::OK);
    let still = status_of(&app.router, &alice, &id).await;
    assert_eq!(still["status"], "active");

    let (status, answer) = post_room_event(&app, &body, Some(room_webhook(&body, SECRET))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let done = status_of(&app.router, &alice, &id).await;
    assert_eq!(done["status"], "completed");
    let reasons = event_field(&done, "reason");
    assert!(reasons.contains(&"room closed"), "{reasons:?}");
    assert_eq!(runner.calls.lock().unwrap().stopped, 1);
}

//! Webhooks in: Mux's signed events and LiveKit-format room events, over the
//! real router and a real Postgres.

mod common;

use axum::http::StatusCode;
use base64::Engine;
use common::*;
use onair::auth::AccessToken;
use onair::mux::webhook::sign;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;

async fn deliver(app: &TestApp, event: &Value) -> Value {
    let body = event.to_string();
    let (status, answer) = post_mux_webhook(
        app,
        body.as_bytes(),
        Some(sign(MUX_WEBHOOK_SECRET, body.as_bytes(), unix_now())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// A livestream that is live and streams to Mux live stream `LS1`.
async fn live_with_mux(app: &TestApp, auth: &str, room: &str) -> String {
    let id = create_livestream(&app.router, auth, room).await;
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
    // One timestamp for every header: a second boundary between two `unix_now()`
    // calls would give the two-v1 header two different `t`s.
    let t = unix_now();
    let valid = sign(MUX_WEBHOOK_SECRET, body, t);
    let (status, _) = post_mux_webhook(&app, body, Some(valid.clone())).await;
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
        let (status, answer) = post_mux_webhook(&app, payload, header).await;
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

    let stopped = stop_livestream(&app.router, &alice, &id).await;
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

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn a_signed_room_finished_stops_the_rooms_livestream(pool: PgPool) {
    let runner = TestRunner::new(Behaviour::GoLive);
    let app = app(pool, runner.clone());
    let alice = bearer(&record_token("alice", None));
    let id = create_livestream(&app.router, &alice, "closing").await;
    wait_for_status(&app.router, &alice, &id, "active").await;

    let body = json!({
        "event": "room_finished",
        "room": { "sid": "RM_abc", "name": "closing" },
        "id": "EV_1",
        "createdAt": unix_now().to_string()
    })
    .to_string();

    // Wrongly signed, or signed for another body: 401 and nothing changes.
    let tampered = body.replace("closing", "closinG");
    for (payload, authorization) in [
        (body.as_str(), Some(room_webhook(&body, "not-the-secret"))),
        (tampered.as_str(), Some(room_webhook(&body, SECRET))),
        (body.as_str(), None),
    ] {
        let (status, answer) = post_room_webhook(&app, payload, authorization).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    }
    let still = status_of(&app.router, &alice, &id).await;
    assert_eq!(still["status"], "active");

    // Unknown events are accepted and ignored.
    let other =
        json!({ "event": "participant_joined", "room": { "name": "closing" }, "id": "EV_0" })
            .to_string();
    let (status, _) = post_room_webhook(&app, &other, Some(room_webhook(&other, SECRET))).await;
    assert_eq!(status, StatusCode::OK);
    let still = status_of(&app.router, &alice, &id).await;
    assert_eq!(still["status"], "active");

    let (status, answer) = post_room_webhook(&app, &body, Some(room_webhook(&body, SECRET))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let done = status_of(&app.router, &alice, &id).await;
    assert_eq!(done["status"], "completed");
    let reasons = event_field(&done, "reason");
    assert!(reasons.contains(&"room closed"), "{reasons:?}");
    assert_eq!(runner.calls.lock().unwrap().stopped, 1);
}

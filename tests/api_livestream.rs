//! The go-live REST API over the real router and a real Postgres.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use onair::auth::{AccessToken, VideoGrant};
use onair::livestream::{NoMediaEngine, RunEvent};
use serde_json::{Value, json};
use sqlx::PgPool;

const LIVESTREAMS: &str = "/api/video/livestream";

fn go_live_body(room: &str) -> Value {
    json!({
        "roomName": room,
        "layout": "gallery",
        "additionalDestinations": [
            { "type": "youtube", "streamKey": "yt-secret-key-1", "name": "YouTube" },
            { "type": "custom", "customRtmpUrl": "rtmp://127.0.0.1:1935/live", "streamKey": "custom-secret-key-2" }
        ]
    })
}

async fn post(app: &TestApp, auth: &str, body: Value) -> (StatusCode, Value) {
    send(
        &app.router,
        Method::POST,
        LIVESTREAMS,
        Some(auth),
        Some(body),
    )
    .await
}

async fn get(app: &TestApp, auth: &str, uri: &str) -> (StatusCode, Value) {
    send(&app.router, Method::GET, uri, Some(auth), None).await
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn go_live_then_stop_walks_the_state_machine(pool: PgPool) {
    let runner = TestRunner::new(Behaviour::GoLive);
    let app = app(pool, runner.clone());
    let alice = bearer(&record_token("alice", None));

    let (status, created) = post(&app, &alice, go_live_body("studio")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["livestreamId"].as_str().unwrap().to_string();
    assert_eq!(created["roomName"], "studio");
    assert_eq!(created["resolution"], "1280x720");
    assert_eq!(created["preset"], "H264_720P_30");
    // The create response is the one place stream keys appear.
    let outputs = created["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 3, "mp4 + two destinations: {created}");
    assert_eq!(outputs[1]["streamKey"], "yt-secret-key-1");
    assert_eq!(outputs[1]["url"], "rtmp://a.rtmp.youtube.com/live2/****");
    assert_eq!(outputs[2]["url"], "rtmp://127.0.0.1:1935/live/****");

    // The runner got the real URLs, keys included.
    {
        let calls = runner.calls.lock().unwrap();
        let spec = &calls.started[0];
        assert_eq!(spec.room_name, "studio");
        let urls: Vec<String> = spec
            .outputs
            .iter()
            .filter_map(|o| match &o.target {
                onair::livestream::OutputTarget::Rtmp { url } => Some(url.expose().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            urls,
            [
                "rtmp://a.rtmp.youtube.com/live2/yt-secret-key-1",
                "rtmp://127.0.0.1:1935/live/custom-secret-key-2"
            ]
        );
    }

    let active = wait_until(
        &app.router,
        &alice,
        &id,
        "active with every output live",
        |body| {
            body["status"] == "active"
                && body["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|o| o["status"] == "live")
        },
    )
    .await;
    assert!(active["startedAt"].is_string());

    let (status, stopped) = send(
        &app.router,
        Method::DELETE,
        LIVESTREAMS,
        Some(&alice),
        Some(json!({ "roomName": "studio" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["status"], "completed");
    assert!(stopped["endedAt"].is_string());
    assert_eq!(runner.calls.lock().unwrap().stopped, 1);

    let (_, final_status) = get(&app, &alice, &format!("{LIVESTREAMS}/status?id={id}")).await;
    let path = event_field(&final_status, "to");
    assert_eq!(
        path,
        ["idle", "starting", "active", "stopping", "completed"]
    );
    assert!(
        final_status["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["reason"].is_string())
    );
    assert!(
        final_status["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "stopped")
    );

    // Stopping again answers with the final state.
    let (status, again) = send(
        &app.router,
        Method::DELETE,
        &format!("{LIVESTREAMS}?id={id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(
        (status, again["status"].as_str()),
        (StatusCode::OK, Some("completed"))
    );
    assert_eq!(runner.calls.lock().unwrap().stopped, 1);
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn credentials_are_required_and_checked(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let now = chrono::Utc::now().timestamp() as u64;
    let token_with = |secret: &str, issuer: &str, exp: u64| {
        let mut token = AccessToken::new(issuer, "alice", Duration::ZERO).with_grant(VideoGrant {
            room_record: true,
            ..VideoGrant::default()
        });
        token.claims.nbf = Some(now - 600);
        token.claims.exp = exp;
        bearer(&token.sign(secret).unwrap())
    };
    let bad = [
        None,
        Some("Bearer".to_string()),
        Some("Bearer garbage".to_string()),
        Some(token_with("wrong-secret", KEY, now + 600)),
        Some(token_with(SECRET, KEY, now - 120)), // expired beyond the 60 s leeway
        Some(token_with(SECRET, "unknown-key", now + 600)),
        Some(basic(KEY, "wrong-secret")),
        Some(basic("unknown-key", SECRET)),
        Some("Digest abc".to_string()),
    ];
    let routes = [
        (Method::POST, LIVESTREAMS.to_string()),
        (Method::GET, LIVESTREAMS.to_string()),
        (Method::GET, format!("{LIVESTREAMS}/status?roomName=r")),
        (Method::DELETE, format!("{LIVESTREAMS}?roomName=r")),
        (
            Method::PATCH,
            format!("{LIVESTREAMS}/{}", uuid::Uuid::new_v4()),
        ),
    ];
    for auth in &bad {
        for (method, uri) in &routes {
            let body = matches!(*method, Method::POST | Method::PATCH).then(|| go_live_body("r"));
            let (status, body) =
                send(&app.router, method.clone(), uri, auth.as_deref(), body).await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
        }
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM livestreams")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);

    // HTTP Basic with the right secret works.
    let (status, body) = post(&app, &basic(KEY, SECRET), go_live_body("basic-room")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn grants_limit_what_a_token_may_do(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let no_record = AccessToken::new(KEY, "alice", Duration::from_secs(60))
        .with_grant(VideoGrant {
            room_join: true,
            room: "r1".into(),
            ..VideoGrant::default()
        })
        .sign(SECRET)
        .unwrap();
    let (status, body) = post(&app, &bearer(&no_record), go_live_body("r1")).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "permission_denied");

    let only_r1 = bearer(&record_token("alice", Some("r1")));
    let (status, body) = post(&app, &only_r1, go_live_body("r2")).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "permission_denied");
    let (status, _) = post(&app, &only_r1, go_live_body("r1")).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn each_validation_rule_answers_with_a_json_error(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let alice = bearer(&record_token("alice", None));
    let with = |patch: Value| {
        let mut body = json!({ "roomName": "valid-room" });
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        body
    };
    let dest = |d: Value| with(json!({ "additionalDestinations": [d] }));
    let cases = [
        (with(json!({ "roomName": "" })), "invalid_room_name"),
        (
            with(json!({ "roomName": "a".repeat(129) })),
            "invalid_room_name",
        ),
        (
            with(json!({ "roomName": "has space" })),
            "invalid_room_name",
        ),
        (
            with(json!({ "roomName": "slash/room" })),
            "invalid_room_name",
        ),
        (with(json!({ "layout": "mosaic" })), "invalid_layout"),
        (with(json!({ "preset": "H264_4K_30" })), "invalid_preset"),
        (
            with(json!({ "preset": "H264_720P_30", "resolution": "1920x1080" })),
            "invalid_preset",
        ),
        (
            with(json!({ "resolution": "1000x1000" })),
            "invalid_resolution",
        ),
        (
            with(json!({ "latencyMode": "instant" })),
            "invalid_latency_mode",
        ),
        (with(json!({ "maxDuration": 0 })), "invalid_max_duration"),
        (
            with(json!({ "maxDuration": 43201 })),
            "invalid_max_duration",
        ),
        (with(json!({ "mux": true })), "mux_not_configured"),
        (with(json!({ "hls": true })), "hls_not_configured"),
        (with(json!({ "mp4": false })), "no_outputs"),
        (
            with(json!({ "audioOnly": true, "videoOnly": true })),
            "conflicting_media",
        ),
        (
            dest(json!({ "type": "periscope", "streamKey": "k" })),
            "invalid_destination",
        ),
        (dest(json!({ "type": "youtube" })), "invalid_destination"),
        (
            dest(json!({ "type": "youtube", "streamKey": "" })),
            "invalid_destination",
        ),
        (
            dest(json!({ "type": "twitch", "streamKey": "   " })),
            "invalid_destination",
        ),
        (
            dest(json!({ "type": "custom", "streamKey": "k" })),
            "invalid_destination",
        ),
        (
            dest(json!({ "type": "custom", "customRtmpUrl": "http://x/app", "streamKey": "k" })),
            "invalid_destination",
        ),
        (
            dest(json!({ "type": "custom", "customRtmpUrl": "srt://x:9000", "streamKey": "k" })),
            "invalid_destination",
        ),
        (
            dest(json!({ "type": "twitch", "streamKey": "k", "twitchIngestServer": "a b" })),
            "invalid_destination",
        ),
        (
            with(json!({ "additionalDestinations": [
                { "type": "youtube", "streamKey": "a" }, { "type": "youtube", "streamKey": "b" },
                { "type": "youtube", "streamKey": "c" }, { "type": "youtube", "streamKey": "d" }
            ] })),
            "too_many_destinations",
        ),
        (
            with(json!({ "additionalDestinations": [
                { "type": "youtube", "streamKey": "same" }, { "type": "youtube", "streamKey": "same" }
            ] })),
            "invalid_destination",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = post(&app, &alice, body.clone()).await;
        assert_error(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, code);
        // Stream keys in the request are never echoed in errors.
        assert!(
            !answer.to_string().contains("streamKey\":\"same"),
            "{answer}"
        );
    }

    // Bodies that are not the request's shape at all: 400.
    for body in [
        json!({ "layout": "gallery" }),
        json!({ "roomName": 5 }),
        json!({ "roomName": "r", "bogus": 1 }),
    ] {
        let (status, answer) = post(&app, &alice, body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_json");
    }
    let request = Request::builder()
        .method(Method::POST)
        .uri(LIVESTREAMS)
        .header("authorization", &alice)
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, answer) = send_raw(&app.router, request).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_json");
    let request = Request::builder()
        .method(Method::POST)
        .uri(LIVESTREAMS)
        .header("authorization", &alice)
        .body(Body::from("roomName=x"))
        .unwrap();
    let (status, answer) = send_raw(&app.router, request).await;
    assert_error(
        status,
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    // Query rules.
    let (status, answer) = get(&app, &alice, &format!("{LIVESTREAMS}?limit=0")).await;
    assert_error(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_limit",
    );
    let (status, answer) = get(&app, &alice, &format!("{LIVESTREAMS}?limit=many")).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_query");
    let (status, answer) = get(&app, &alice, &format!("{LIVESTREAMS}/status")).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "missing_target");
    let (status, answer) = get(&app, &alice, &format!("{LIVESTREAMS}/status?id=not-a-uuid")).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_query");

    // None of it stored anything.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM livestreams")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn a_second_go_live_for_a_room_conflicts(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::StayStarting));
    let alice = bearer(&record_token("alice", None));
    let bob = bearer(&record_token("bob", None));
    let (status, first) = post(&app, &alice, go_live_body("busy")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["status"], "starting");
    for auth in [&alice, &bob] {
        let (status, body) = post(&app, auth, go_live_body("busy")).await;
        assert_error(status, &body, StatusCode::CONFLICT, "already_live");
    }
    // The first is untouched.
    let (_, status_body) = get(&app, &alice, &format!("{LIVESTREAMS}/status?roomName=busy")).await;
    assert_eq!(status_body["livestreamId"], first["livestreamId"]);
    assert_eq!(status_body["status"], "starting");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn callers_see_only_their_own_livestreams(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let alice = bearer(&record_token("alice", None));
    let bob = bearer(&record_token("bob", None));
    let (_, a1) = post(&app, &alice, go_live_body("alice-1")).await;
    let (_, _a2) = post(&app, &alice, go_live_body("alice-2")).await;
    let (_, b1) = post(&app, &bob, go_live_body("bob-1")).await;
    let a1_id = a1["livestreamId"].as_str().unwrap();
    let b1_id = b1["livestreamId"].as_str().unwrap();

    let (status, list) = get(&app, &alice, LIVESTREAMS).await;
    assert_eq!(status, StatusCode::OK);
    let rooms: Vec<&str> = list["livestreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["roomName"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, ["alice-2", "alice-1"], "newest first, alice's only");

    let (_, filtered) = get(
        &app,
        &alice,
        &format!("{LIVESTREAMS}?roomName=alice-1&limit=5"),
    )
    .await;
    assert_eq!(filtered["livestreams"].as_array().unwrap().len(), 1);
    let (_, limited) = get(&app, &alice, &format!("{LIVESTREAMS}?limit=1")).await;
    assert_eq!(limited["livestreams"].as_array().unwrap().len(), 1);

    // Bob's livestream is "not found" for Alice, by id and by room; and she cannot stop or change it.
    for uri in [
        format!("{LIVESTREAMS}/status?id={b1_id}"),
        format!("{LIVESTREAMS}/status?roomName=bob-1"),
    ] {
        let (status, body) = get(&app, &alice, &uri).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, body) = send(
        &app.router,
        Method::DELETE,
        &format!("{LIVESTREAMS}?id={b1_id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = send(
        &app.router,
        Method::PATCH,
        &format!("{LIVESTREAMS}/{b1_id}"),
        Some(&alice),
        Some(json!({ "layout": "crop" })),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, bob_status) = get(&app, &bob, &format!("{LIVESTREAMS}/status?id={b1_id}")).await;
    assert_ne!(bob_status["status"], "stopping");
    assert_ne!(bob_status["status"], "completed");

    // Unknown ids are not found either.
    let (status, _) = get(
        &app,
        &alice,
        &format!("{LIVESTREAMS}/status?id={}", uuid::Uuid::new_v4()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Alice's own status works by id and room.
    let (status, own) = get(&app, &alice, &format!("{LIVESTREAMS}/status?id={a1_id}")).await;
    assert_eq!(
        (status, own["roomName"].as_str()),
        (StatusCode::OK, Some("alice-1"))
    );
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn secrets_never_appear_after_creation(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let alice = bearer(&record_token("alice", None));
    let (_, created) = post(&app, &alice, go_live_body("secret-room")).await;
    let id = created["livestreamId"].as_str().unwrap();
    let (_, status_body) = get(&app, &alice, &format!("{LIVESTREAMS}/status?id={id}")).await;
    let (_, list) = get(&app, &alice, LIVESTREAMS).await;
    let (_, stopped) = send(
        &app.router,
        Method::DELETE,
        &format!("{LIVESTREAMS}?id={id}"),
        Some(&alice),
        None,
    )
    .await;
    for body in [&status_body, &list, &stopped] {
        let text = body.to_string();
        for secret in ["yt-secret-key-1", "custom-secret-key-2", "streamKey"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("****"), "{text}");
    }
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn without_a_media_engine_go_live_is_refused_honestly(pool: PgPool) {
    let app = app(pool, Arc::new(NoMediaEngine));
    let alice = bearer(&record_token("alice", None));
    let (status, body) = post(&app, &alice, go_live_body("no-engine")).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "media_unavailable",
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("media engine not available")
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM livestreams")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn a_start_failure_is_recorded_and_frees_the_room(pool: PgPool) {
    let app = app(
        pool,
        TestRunner::new(Behaviour::FailStart(
            "rtmp://127.0.0.1:1/live: connection refused".into(),
        )),
    );
    let alice = bearer(&record_token("alice", None));
    let (status, body) = post(&app, &alice, go_live_body("doomed")).await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY, "start_failed");
    assert_eq!(body["status"], "failed");
    let id = body["livestreamId"].as_str().unwrap();
    let (_, failed) = get(&app, &alice, &format!("{LIVESTREAMS}/status?id={id}")).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
    assert!(
        failed["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "failed")
    );
    let path = event_field(&failed, "to");
    assert_eq!(path, ["idle", "starting", "failed"]);
    // The room is free again (the test runner fails again, but not with a conflict).
    let (status, _) = post(&app, &alice, go_live_body("doomed")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn update_changes_layout_and_destinations_while_live(pool: PgPool) {
    let runner = TestRunner::new(Behaviour::GoLive);
    let app = app(pool, runner.clone());
    let alice = bearer(&record_token("alice", None));
    let (_, created) = post(&app, &alice, go_live_body("patchy")).await;
    let id = created["livestreamId"].as_str().unwrap().to_string();
    let youtube = created["outputs"][1]["id"].as_str().unwrap().to_string();
    wait_for_status(&app.router, &alice, &id, "active").await;

    let (status, updated) = send(
        &app.router,
        Method::PATCH,
        &format!("{LIVESTREAMS}/{id}"),
        Some(&alice),
        Some(json!({
            "layout": "grid-dark",
            "removeDestinations": [youtube],
            "addDestinations": [{ "type": "twitch", "streamKey": "tw-secret" }]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["layout"], "grid-dark");
    assert!(!updated.to_string().contains("tw-secret"));
    let outputs = updated["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 4);
    assert_eq!(outputs[1]["status"], "removed");
    assert_eq!(outputs[3]["type"], "twitch");
    {
        let calls = runner.calls.lock().unwrap();
        assert_eq!(calls.layouts, ["grid-dark"]);
        assert_eq!(calls.removed.len(), 1);
        assert_eq!(calls.added.len(), 1);
    }

    // Bad updates.
    let uri = format!("{LIVESTREAMS}/{id}");
    let patch = |body: Value| send(&app.router, Method::PATCH, &uri, Some(&alice), Some(body));
    let (status, body) = patch(json!({})).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "empty_update",
    );
    let (status, body) = patch(json!({ "layout": "nope" })).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_layout",
    );
    let (status, body) = patch(json!({ "removeDestinations": [uuid::Uuid::new_v4()] })).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_destination",
    );
    let (status, body) = send(
        &app.router,
        Method::PATCH,
        &format!("{LIVESTREAMS}/xyz"),
        Some(&alice),
        Some(json!({ "layout": "crop" })),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_id");

    // Not live any more → 409.
    send(
        &app.router,
        Method::DELETE,
        &format!("{LIVESTREAMS}?id={id}"),
        Some(&alice),
        None,
    )
    .await;
    let (status, body) = patch(json!({ "layout": "crop" })).await;
    assert_error(status, &body, StatusCode::CONFLICT, "not_live");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn engine_events_update_outputs_and_failures(pool: PgPool) {
    let runner = TestRunner::new(Behaviour::StayStarting);
    let app = app(pool, runner.clone());
    let alice = bearer(&record_token("alice", None));
    let (_, created) = post(&app, &alice, go_live_body("events")).await;
    let id = created["livestreamId"].as_str().unwrap().to_string();
    let mp4: uuid::Uuid = created["outputs"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let rtmp: uuid::Uuid = created["outputs"][2]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let events = runner.events.lock().unwrap().clone().unwrap();
    events
        .send(RunEvent::OutputRetrying {
            output: rtmp,
            error: "connection reset".into(),
        })
        .await
        .unwrap();
    events
        .send(RunEvent::OutputLive { output: mp4 })
        .await
        .unwrap();
    // Active once every output is live or retrying (none is still pending).
    let youtube: uuid::Uuid = created["outputs"][1]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    events
        .send(RunEvent::OutputLive { output: youtube })
        .await
        .unwrap();
    events
        .send(RunEvent::OutputBytes {
            output: mp4,
            bytes: 12345,
        })
        .await
        .unwrap();
    let now = wait_until(
        &app.router,
        &alice,
        &id,
        "active with bytes counted",
        |body| body["status"] == "active" && body["outputs"][0]["bytes"] == 12345,
    )
    .await;
    assert_eq!(now["outputs"][0]["bytes"], 12345);
    assert_eq!(now["outputs"][2]["status"], "retrying");
    assert_eq!(now["outputs"][2]["retries"], 1);
    assert_eq!(now["outputs"][2]["lastError"], "connection reset");

    // The engine dies on its own: the livestream fails with its reason.
    events
        .send(RunEvent::Ended {
            error: Some("pipeline error: encoder crashed".into()),
        })
        .await
        .unwrap();
    let failed = wait_for_status(&app.router, &alice, &id, "failed").await;
    assert_eq!(failed["error"], "pipeline error: encoder crashed");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn max_duration_stops_the_livestream(pool: PgPool) {
    let app = app(pool, TestRunner::new(Behaviour::GoLive));
    let alice = bearer(&record_token("alice", None));
    let mut body = go_live_body("short");
    body["maxDuration"] = json!(1);
    let (_, created) = post(&app, &alice, body).await;
    let id = created["livestreamId"].as_str().unwrap();
    let done = wait_for_status(&app.router, &alice, id, "completed").await;
    let reasons = event_field(&done, "reason");
    assert!(reasons.contains(&"max duration reached"), "{reasons:?}");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn restart_reconciliation_leaves_nothing_stuck(pool: PgPool) {
    let before = app_on_node(pool.clone(), TestRunner::new(Behaviour::GoLive), "node-1");
    let alice = bearer(&record_token("alice", None));
    let (_, live) = post(&before, &alice, go_live_body("crashy")).await;
    let id = live["livestreamId"].as_str().unwrap().to_string();
    wait_for_status(&before.router, &alice, &id, "active").await;
    let other = app_on_node(pool.clone(), TestRunner::new(Behaviour::GoLive), "node-2");
    let (_, elsewhere) = post(&other, &alice, go_live_body("other-node")).await;
    let elsewhere_id = elsewhere["livestreamId"].as_str().unwrap();
    wait_for_status(&other.router, &alice, elsewhere_id, "active").await;

    // "Restart" node-1: a fresh service over the same database.
    let after = app_on_node(pool, TestRunner::new(Behaviour::GoLive), "node-1");
    assert_eq!(after.service.reconcile().await.unwrap(), 1);
    let (_, row) = get(&after, &alice, &format!("{LIVESTREAMS}/status?id={id}")).await;
    assert_eq!(row["status"], "failed");
    assert_eq!(row["error"], "interrupted by restart");
    // Another node's livestream is not touched.
    let (_, other) = get(
        &after,
        &alice,
        &format!("{LIVESTREAMS}/status?id={elsewhere_id}"),
    )
    .await;
    assert_eq!(other["status"], "active");
    // The room can go live again.
    let (status, _) = post(&after, &alice, go_live_body("crashy")).await;
    assert_eq!(status, StatusCode::CREATED);
}

//! Going live with Mux, end to end against a local Mux stand-in that speaks
//! Mux's wire format: the live stream is created, the program reaches its
//! ingest (a real nginx-rtmp), Mux's signed webhooks arrive, DELETE completes
//! the stream and the VOD asset ends up on the row.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mux_standin::{MuxStandIn, recordings_in};
use common::rtmp::NginxRtmp;
use common::sfu::{LiveOptions, SfuOptions, SfuServer, api, publisher};
use onair::config::{MuxConfig, Secret};
use onair::livestream::MuxLive;
use serde_json::{Value, json};
use sqlx::PgPool;

const WEBHOOK_SECRET: &str = "mux-webhook-secret-for-the-stand-in";
const ROOM: &str = "mux-room";

/// Polls the status until `check` holds.
async fn wait_for(server: &SfuServer, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let url = format!(
        "{}/api/video/livestream/status?roomName={ROOM}",
        server.base
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, status) = api(reqwest::Method::GET, &url, None).await;
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "never {what}: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn go_live_with_mux_ends_with_a_vod_asset(pool: PgPool) {
    let nginx = NginxRtmp::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ingest = nginx.url("").trim_end_matches('/').to_string();
    let records = nginx.recording("any").parent().unwrap().to_path_buf();
    let standin = MuxStandIn::start(
        ingest,
        format!("http://127.0.0.1:{port}/webhooks/mux"),
        WEBHOOK_SECRET.into(),
        recordings_in(records),
    )
    .await;
    let mux = MuxLive::from_config(&MuxConfig {
        webhook_secret: Secret::new(WEBHOOK_SECRET),
        token_id: "stand-in-token".into(),
        token_secret: Secret::new("stand-in-secret"),
        base_url: standin.base_url().parse().unwrap(),
        ingest_url: standin.ingest_url(),
        test: false,
    })
    .unwrap()
    .expect("credentials given");
    let recordings = tempfile::tempdir().unwrap();
    let server = SfuServer::start(SfuOptions {
        port,
        live: Some(LiveOptions {
            pool,
            recordings_dir: recordings.path().to_path_buf(),
            mux: Some((Arc::new(mux), WEBHOOK_SECRET.into())),
            storage: None,
        }),
        ..SfuOptions::default()
    })
    .await;
    let mut publisher = publisher(&server, ROOM, "host", 40, "30,90,200", 440);
    publisher.event("connected", Duration::from_secs(20)).await;

    // Mux is on by default when configured: the answer names the stream.
    let url = format!("{}/api/video/livestream", server.base);
    let (code, created) = api(
        reqwest::Method::POST,
        &url,
        Some(json!({ "roomName": ROOM })),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let stream_id = created["muxLiveStreamId"]
        .as_str()
        .expect("muxLiveStreamId")
        .to_string();
    let playback = created["muxPlaybackId"]
        .as_str()
        .expect("muxPlaybackId")
        .to_string();
    assert_eq!(
        created["playbackUrl"],
        format!("https://stream.mux.com/{playback}.m3u8")
    );
    let mux_output = created["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "mux")
        .expect("a mux output")
        .clone();
    assert!(
        mux_output["url"].as_str().unwrap().ends_with("/****"),
        "{mux_output}"
    );
    let created_stream = standin
        .live_stream(&stream_id)
        .expect("the stand-in has the stream");
    assert_eq!(created_stream["passthrough"], created["livestreamId"]);
    assert_eq!(
        created_stream["new_asset_settings"]["playback_policies"],
        json!(["public"])
    );

    // The program reaches Mux's ingest; Mux says so by webhook.
    wait_for(&server, "active on Mux", |s| {
        s["status"] == "active" && s["muxStatus"] == "active"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (code, stopped) = api(
        reqwest::Method::DELETE,
        &format!("{url}?roomName={ROOM}"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{stopped}");
    assert_eq!(stopped["status"], "completed");
    assert!(
        standin.completed(&stream_id),
        "stop must call Mux's complete"
    );

    // The recording's asset arrives (from the stop's lookup and the webhooks).
    let done = wait_for(&server, "with a ready VOD asset", |s| {
        s["vodPlaybackId"].is_string()
            && s["muxAssetId"].is_string()
            && s["vodDuration"].is_number()
    })
    .await;
    let asset = standin
        .asset(done["muxAssetId"].as_str().unwrap())
        .expect("the asset exists");
    assert_eq!(asset["playback_ids"][0]["id"], done["vodPlaybackId"]);
    // Mux's webhooks, each accepted by our endpoint (the stand-in lists only 2xx answers).
    let wanted = [
        "video.live_stream.active",
        "video.live_stream.idle",
        "video.asset.created",
        "video.asset.ready",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wanted
        .iter()
        .all(|w| standin.webhooks_sent().iter().any(|e| e == w))
    {
        assert!(
            Instant::now() < deadline,
            "webhooks accepted: {:?}",
            standin.webhooks_sent()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Mux's idle does not move our completed livestream backwards.
    assert_eq!(done["status"], "completed");
    let (_, list) = api(reqwest::Method::GET, &url, None).await;
    let listed = list
        .as_array()
        .or_else(|| list["livestreams"].as_array())
        .expect("a list");
    assert_eq!(
        listed[0]["playbackUrl"],
        format!("https://stream.mux.com/{playback}.m3u8")
    );
    publisher.child.kill().await.ok();
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn a_mux_that_refuses_fails_the_go_live(pool: PgPool) {
    // Mux answers 401 to bad credentials: no program starts, the row fails.
    let standin_base = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(|| async {
            (
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "error": { "type": "unauthorized", "messages": ["Unauthorized request"] } })),
            )
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    };
    let mux = MuxLive::from_config(&MuxConfig {
        webhook_secret: Secret::new(""),
        token_id: "wrong".into(),
        token_secret: Secret::new("wrong"),
        base_url: standin_base.parse().unwrap(),
        ingest_url: "rtmp://127.0.0.1:9/app".into(),
        test: false,
    })
    .unwrap()
    .unwrap();
    let recordings = tempfile::tempdir().unwrap();
    let server = SfuServer::start(SfuOptions {
        live: Some(LiveOptions {
            pool,
            recordings_dir: recordings.path().to_path_buf(),
            mux: Some((Arc::new(mux), WEBHOOK_SECRET.into())),
            storage: None,
        }),
        ..SfuOptions::default()
    })
    .await;
    let url = format!("{}/api/video/livestream", server.base);
    let (code, body) = api(
        reqwest::Method::POST,
        &url,
        Some(json!({ "roomName": ROOM })),
    )
    .await;
    assert_eq!(
        (code, body["code"].as_str()),
        (502, Some("start_failed")),
        "{body}"
    );
    assert!(body["error"].as_str().unwrap().contains("Mux"), "{body}");
    let status = wait_for(&server, "failed", |s| s["status"] == "failed").await;
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("Mux did not create the live stream"),
        "{status}"
    );
    // mux: false goes live without Mux.
    let (code, body) = api(
        reqwest::Method::POST,
        &url,
        Some(json!({ "roomName": ROOM, "mux": false })),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert!(body["muxLiveStreamId"].is_null());
}

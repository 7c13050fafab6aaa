//! LiveKit's server SDKs drive onair unchanged: the Node recipe apps use to
//! go live (`EgressClient.startRoomCompositeEgress` to RTMP), layout and
//! stream changes while live, stopping, and the egress webhooks verified by
//! the SDK's own `WebhookReceiver` — against aiortc publishers, the real
//! composer, nginx-rtmp and Postgres.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::lk_sdk::SdkDriver;
use common::media::{Frame, duration, probe, stream};
use common::rtmp::NginxRtmp;
use common::sfu::{LiveOptions, Peer, SfuOptions, SfuServer, publisher, webhook_receiver};
use common::{KEY, SECRET};
use onair::layout::{Canvas, LayoutName, ParticipantView, RoomView, VideoView};
use serde_json::{Value, json};
use sqlx::PgPool;

const CONNECT: Duration = Duration::from_secs(20);
/// Going live takes about a second; the margin is for a loaded 2-core machine.
const GO_LIVE: Duration = Duration::from_secs(30);
const COLOURS: [(u8, u8, u8); 2] = [(200, 30, 30), (30, 30, 200)];
const WIDTH: usize = 1920;
const HEIGHT: usize = 1080;

async fn live_server(pool: PgPool, recordings: &Path, webhook_urls: Vec<url::Url>) -> SfuServer {
    SfuServer::start(SfuOptions {
        live: Some(LiveOptions {
            pool,
            recordings_dir: recordings.to_path_buf(),
            mux: None,
            storage: None,
        }),
        webhook_urls,
        ..SfuOptions::default()
    })
    .await
}

async fn join(server: &SfuServer, room: &str, seconds: u32) -> Vec<Peer> {
    let mut peers = Vec::new();
    for (n, (r, g, b)) in COLOURS.iter().enumerate() {
        let colour = format!("{r},{g},{b}");
        let mut peer = publisher(server, room, &format!("person-{n}"), seconds, &colour, 440);
        peer.event("connected", CONNECT).await;
        peers.push(peer);
    }
    peers
}

/// Polls ListEgress until the egress has `status`.
async fn wait_for_egress(sdk: &mut SdkDriver, id: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let list = sdk
            .call("egress", "listEgress", json!([{ "egressId": id }]))
            .await
            .expect("listEgress");
        let info = list.as_array().and_then(|l| l.first()).cloned();
        if let Some(info) = info.as_ref().filter(|i| i["status"] == status) {
            return info.clone();
        }
        assert!(Instant::now() < deadline, "never {status}: {info:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until nginx has started recording `path` (a growing FLV has no
/// duration yet, so wall time measures what it holds).
async fn wait_for_recording(path: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while std::fs::metadata(path).map_or(0, |m| m.len()) < 100_000 {
        assert!(
            Instant::now() < deadline,
            "{} was never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Real time the program runs between checks: several keyframes (2 s apart).
const HOLD: Duration = Duration::from_secs(5);

fn scene(layout: &str) -> Vec<onair::layout::Rect> {
    let participants = (0..2)
        .map(|n| ParticipantView {
            sid: format!("p{n}"),
            identity: format!("p{n}"),
            name: format!("p{n}"),
            camera: Some(VideoView {
                track_sid: format!("t{n}"),
                width: 640,
                height: 360,
                muted: false,
            }),
            screen_share: None,
        })
        .collect();
    let room = RoomView {
        participants,
        active_speakers: Vec::new(),
    };
    let canvas = Canvas {
        width: WIDTH as u32,
        height: HEIGHT as u32,
    };
    let layout: LayoutName = layout.parse().unwrap();
    onair::layout::compose(layout, canvas, &room, None)
        .regions
        .iter()
        .map(|r| r.rect)
        .collect()
}

/// A point well inside a tile of the grid that no tile of the speaker
/// layout covers: a participant under `grid`, background under `speaker`
/// (whoever the active speaker is).
fn point_only_grid_covers() -> (i32, i32) {
    let inside = |r: &onair::layout::Rect, x: i32, y: i32, margin: i32| {
        x >= r.x - margin
            && x < r.x + r.w as i32 + margin
            && y >= r.y - margin
            && y < r.y + r.h as i32 + margin
    };
    let grid = scene("grid");
    let speaker = scene("speaker");
    (0..HEIGHT as i32)
        .step_by(10)
        .flat_map(|y| (0..WIDTH as i32).step_by(10).map(move |x| (x, y)))
        // Away from the name labels at the bottom of the tiles.
        .filter(|&(x, y)| {
            y < HEIGHT as i32 - 200
                && grid.iter().any(|r| inside(r, x, y, -60))
                && !speaker.iter().any(|r| inside(r, x, y, 60))
        })
        .max_by_key(|&(x, y)| {
            // The middle of the uncovered area: farthest from the speaker's tiles.
            speaker
                .iter()
                .map(|r| {
                    let dx = (r.x - x).max(x - (r.x + r.w as i32)).max(0);
                    let dy = (r.y - y).max(y - (r.y + r.h as i32)).max(0);
                    dx * dx + dy * dy
                })
                .min()
                .unwrap_or(0)
        })
        .expect("the speaker layout leaves some of the grid's tiles uncovered")
}

fn is_participant(frame: &Frame, (x, y): (i32, i32)) -> bool {
    COLOURS.iter().any(|c| frame.is_near(x, y, *c, 40))
}

fn probe_1080p(path: &Path) -> f64 {
    let probed = probe(path);
    let video = stream(&probed, "video").expect("a video stream");
    assert_eq!(video["codec_name"], "h264", "{probed}");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(WIDTH as u64), Some(HEIGHT as u64)),
        "{probed}"
    );
    // LiveKit's defaults for EncodingOptions: H.264 Main, AAC at 44.1 kHz.
    assert_eq!(video["profile"], "Main", "{probed}");
    let audio = stream(&probed, "audio").expect("an audio stream");
    assert_eq!(audio["codec_name"], "aac", "{probed}");
    assert_eq!(audio["sample_rate"], "44100", "{probed}");
    duration(&probed)
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn the_node_recipe_goes_live_changes_layout_and_streams_and_stops(pool: PgPool) {
    let recordings = tempfile::tempdir().unwrap();
    let (hook_url, received) = webhook_receiver().await;
    let server = live_server(pool, recordings.path(), vec![hook_url]).await;
    let rtmp = NginxRtmp::start();
    let room = "sdk-recipe";
    let _peers = join(&server, room, 120).await;

    let mut sdk = SdkDriver::node(&server.base, KEY, SECRET);
    // The recipe, as apps write it (videoBitrate in bits per second, as
    // many guides have it: read as 4500 kbps).
    let info = sdk
        .call(
            "egress",
            "startRoomCompositeEgress",
            json!([
                room,
                { "stream": { "protocol": "RTMP", "urls": [rtmp.url("first")] } },
                {
                    "layout": "grid",
                    "encodingOptions": {
                        "width": 1920, "height": 1080,
                        "videoBitrate": 4500000, "audioBitrate": 128000
                    }
                }
            ]),
        )
        .await
        .expect("startRoomCompositeEgress");
    let egress_id = info["egressId"].as_str().unwrap().to_string();
    assert!(
        egress_id.starts_with("EG_") && egress_id.len() == 15,
        "{info}"
    );
    assert_eq!(info["roomName"], room);
    assert_eq!(info["roomComposite"]["layout"], "grid", "{info}");
    let active = wait_for_egress(&mut sdk, &egress_id, "EGRESS_ACTIVE", GO_LIVE).await;
    assert_eq!(active["streamResults"][0]["status"], "ACTIVE", "{active}");
    // Stream keys never come back.
    assert!(!active.to_string().contains("/live/first"), "{active}");

    // The same egress is a livestream for the REST API of the same key.
    let (status, list) = common::sfu::api(
        reqwest::Method::GET,
        &format!("{}/api/video/livestream?roomName={room}", server.base),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");

    let first = rtmp.recording("first");
    wait_for_recording(&first, GO_LIVE).await;
    tokio::time::sleep(HOLD).await;
    let info = sdk
        .call("egress", "updateLayout", json!([egress_id, "speaker"]))
        .await
        .expect("updateLayout");
    assert_eq!(info["roomComposite"]["layout"], "speaker", "{info}");

    // A second URL starts receiving; the first one stops.
    let info = sdk
        .call(
            "egress",
            "updateStream",
            json!([egress_id, [rtmp.url("second")], [rtmp.url("first")]]),
        )
        .await
        .expect("updateStream");
    let streams = info["streamResults"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "{info}");
    let second = rtmp.recording("second");
    wait_for_recording(&second, GO_LIVE).await;
    tokio::time::sleep(HOLD).await;
    let first_size = std::fs::metadata(&first).unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        std::fs::metadata(&first).unwrap().len(),
        first_size,
        "the removed URL still receives"
    );

    let info = sdk
        .call("egress", "stopEgress", json!([egress_id]))
        .await
        .expect("stopEgress");
    assert_eq!(info["status"], "EGRESS_COMPLETE", "{info}");
    let results = info["streamResults"].as_array().unwrap();
    assert!(results.iter().all(|s| s["status"] == "FINISHED"), "{info}");
    assert!(info["endedAt"].as_str().unwrap().parse::<i64>().unwrap() > 0);

    // What went out: H.264 1920×1080 + AAC, grid then speaker.
    assert!(probe_1080p(&first) >= 4.0);
    let second_seconds = probe_1080p(&second);
    assert!(second_seconds >= 4.0);
    let point = point_only_grid_covers();
    // Late in the grid part (the switch came ≥ 5 s after the recording
    // began), past the tiles' warm-up placeholders.
    let before = Frame::at(&first, 4.0, WIDTH, HEIGHT);
    assert!(
        is_participant(&before, point),
        "grid: {point:?} is {:?}",
        before.pixel(point.0, point.1)
    );
    let after = Frame::at(&second, second_seconds - 1.0, WIDTH, HEIGHT);
    assert!(
        !is_participant(&after, point),
        "speaker: {point:?} is {:?}",
        after.pixel(point.0, point.1)
    );

    // The egress webhooks pass the SDK's WebhookReceiver, and the last one
    // carries what ListEgress reports.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        let found = received.lock().unwrap().iter().find_map(|(headers, body)| {
            let text = String::from_utf8_lossy(body).to_string();
            text.contains("egress_ended").then(|| {
                let auth = headers["authorization"].to_str().unwrap().to_string();
                (text, auth)
            })
        });
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no egress_ended webhook");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deliveries: Vec<(String, String)> = received
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, body)| String::from_utf8_lossy(body).contains("\"egressInfo\""))
        .map(|(headers, body)| {
            (
                String::from_utf8_lossy(body).to_string(),
                headers["authorization"].to_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut events = Vec::new();
    for (body, auth) in &deliveries {
        let event = sdk
            .call("webhook", "receive", json!([body, auth]))
            .await
            .expect("WebhookReceiver accepts the egress webhook");
        events.push(event["event"].as_str().unwrap().to_string());
    }
    for wanted in ["egress_started", "egress_updated", "egress_ended"] {
        assert!(events.iter().any(|e| e == wanted), "{events:?}");
    }
    let event = sdk
        .call("webhook", "receive", json!([ended.0, ended.1]))
        .await
        .unwrap();
    let listed = sdk
        .call("egress", "listEgress", json!([{ "egressId": egress_id }]))
        .await
        .unwrap();
    let listed = &listed[0];
    for field in ["egressId", "roomName", "status", "startedAt", "endedAt"] {
        assert_eq!(event["egressInfo"][field], listed[field], "{field}");
    }
    assert_eq!(event["egressInfo"]["status"], "EGRESS_COMPLETE");
    let tampered = ended.0.replace("EGRESS_COMPLETE", "EGRESS_FAILED");
    let refused = sdk
        .call("webhook", "receive", json!([tampered, ended.1]))
        .await;
    assert!(refused.is_err(), "a changed body must fail verification");
}

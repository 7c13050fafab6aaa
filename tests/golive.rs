//! Go live end to end: aiortc publishers in a real room, the REST API, the
//! real composer, an MP4 and a real RTMP server (nginx), a real Postgres.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::media::{Frame, audio_rms, duration, keep, probe, stream};
use common::rtmp::NginxRtmp;
use common::sfu::{LiveOptions, Peer, SfuOptions, SfuServer, api, publisher};
use onair::layout::{Canvas, LayoutName, ParticipantView, RoomView, VideoView};
use onair::sfu::RoomSettings;
use serde_json::{Value, json};
use sqlx::PgPool;

const CONNECT: Duration = Duration::from_secs(20);
const COLOURS: [(u8, u8, u8); 3] = [(200, 30, 30), (30, 200, 30), (30, 30, 200)];

async fn live_server(pool: PgPool, recordings: &Path, rooms: Option<RoomSettings>) -> SfuServer {
    let mut options = SfuOptions {
        live: Some(LiveOptions {
            pool,
            recordings_dir: recordings.to_path_buf(),
            mux: None,
        }),
        ..SfuOptions::default()
    };
    if let Some(rooms) = rooms {
        options.rooms = rooms;
    }
    SfuServer::start(options).await
}

/// Publishers joining one after another (so their gallery order is known).
async fn join(server: &SfuServer, room: &str, seconds: u32) -> Vec<Peer> {
    let mut peers = Vec::new();
    for (n, (r, g, b)) in COLOURS.iter().enumerate() {
        let identity = format!("person-{n}");
        let colour = format!("{r},{g},{b}");
        let tone = 440 + 110 * n as u32;
        let mut peer = publisher(server, room, &identity, seconds, &colour, tone);
        peer.event("connected", CONNECT).await;
        peers.push(peer);
    }
    peers
}

async fn status(server: &SfuServer, room: &str) -> Value {
    let url = format!(
        "{}/api/video/livestream/status?roomName={room}",
        server.base
    );
    api(reqwest::Method::GET, &url, None).await.1
}

async fn wait_for_status(server: &SfuServer, room: &str, want: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let current = status(server, room).await;
        if current["status"] == want {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "never reached `{want}`: {current}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn transitions(status: &Value) -> Vec<String> {
    status["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect()
}

/// The gallery's boxes for three 640x360 cameras on a 1280x720 canvas.
fn gallery_centres() -> Vec<(i32, i32)> {
    let participants = (0..3)
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
    let scene = onair::layout::compose(
        LayoutName::Gallery,
        Canvas {
            width: 1280,
            height: 720,
        },
        &room,
        None,
    );
    scene
        .regions
        .iter()
        .map(|r| {
            (
                r.rect.x + r.rect.w as i32 / 2,
                r.rect.y + r.rect.h as i32 / 2,
            )
        })
        .collect()
}

fn check_recording(path: &Path, wall: f64, colours: bool) {
    let probed = probe(path);
    let video = stream(&probed, "video").expect("a video stream");
    assert_eq!(video["codec_name"], "h264", "{probed}");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(
        stream(&probed, "audio").expect("an audio stream")["codec_name"],
        "aac"
    );
    let seconds = duration(&probed);
    assert!(
        (seconds - wall).abs() <= 1.0,
        "{} lasts {seconds:.2} s, wall time {wall:.2} s",
        path.display()
    );
    assert!(audio_rms(path, 2.0, 3.0) > 0.01, "the program is silent");
    if colours {
        let frame = Frame::at(path, seconds - 2.0, 1280, 720);
        for ((x, y), colour) in gallery_centres().into_iter().zip(COLOURS) {
            assert!(
                frame.is_near(x, y, colour, 40),
                "at ({x},{y}) {:?}, want {colour:?}",
                frame.pixel(x, y)
            );
        }
    }
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn three_aiortc_publishers_go_live_to_mp4_and_rtmp(pool: PgPool) {
    let nginx = NginxRtmp::start();
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    let room = "golive-e2e";
    let mut peers = join(&server, room, 60).await;

    let url = format!("{}/api/video/livestream", server.base);
    let body = json!({
        "roomName": room,
        "layout": "gallery",
        "resolution": "1280x720",
        "additionalDestinations": [{ "type": "custom", "customRtmpUrl": nginx.url("program"), "name": "nginx" }],
    });
    let posted = Instant::now();
    let (code, created) = api(reqwest::Method::POST, &url, Some(body)).await;
    assert_eq!(code, 201, "{created}");
    wait_for_status(&server, room, "active", Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&server, room).await["participantsComposed"] != 3 {
        assert!(
            Instant::now() < deadline,
            "not all three on the program: {}",
            status(&server, room).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep_until((posted + Duration::from_secs(8)).into()).await;
    let (code, stopped) = api(
        reqwest::Method::DELETE,
        &format!("{url}?roomName={room}"),
        None,
    )
    .await;
    let wall = posted.elapsed().as_secs_f64();
    assert_eq!(code, 200, "{stopped}");
    let done = wait_for_status(&server, room, "completed", Duration::from_secs(15)).await;
    assert_eq!(
        transitions(&done),
        ["idle", "starting", "active", "stopping", "completed"],
        "{done}"
    );
    assert!(done["endedAt"].is_string());
    let outputs = done["outputs"].as_array().unwrap();
    assert!(
        outputs
            .iter()
            .all(|o| o["bytes"].as_u64().unwrap() > 10_000),
        "{done}"
    );

    let mp4 = Path::new(outputs[0]["url"].as_str().unwrap()).to_path_buf();
    keep(&mp4);
    check_recording(&mp4, wall, true);
    let flv = nginx.recording("program");
    keep(&flv);
    // The RTMP copy starts when the server accepted the stream, a little
    // after the MP4; its picture is checked through the MP4.
    check_recording(&flv, wall, false);
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "onair_livestreams{status=\"completed\"} 1",
        "onair_programs_running 0",
        "onair_sfu_participants 3",
    ] {
        assert!(metrics.contains(line), "`{line}` missing from:\n{metrics}");
    }
    for peer in &mut peers {
        peer.child.kill().await.ok();
    }
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn an_unreachable_rtmp_destination_fails_the_go_live(pool: PgPool) {
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("{}/api/video/livestream", server.base);
    let body = json!({
        "roomName": "golive-fail",
        "additionalDestinations": [{ "type": "custom", "customRtmpUrl": format!("rtmp://127.0.0.1:{closed}/live"), "streamKey": "k", "name": "closed-port" }],
    });
    let (_, created) = api(reqwest::Method::POST, &url, Some(body)).await;
    let failed = wait_for_status(&server, "golive-fail", "failed", Duration::from_secs(30)).await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("closed-port"),
        "the error names the destination: {failed} (created: {created})"
    );
    // No row is left open: a new go-live on the room is accepted.
    let (code, again) = api(
        reqwest::Method::POST,
        &url,
        Some(json!({ "roomName": "golive-fail" })),
    )
    .await;
    assert_eq!(code, 201, "{again}");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn the_livestream_completes_when_its_room_closes(pool: PgPool) {
    let recordings = tempfile::tempdir().unwrap();
    let rooms = RoomSettings {
        empty_timeout: Duration::from_secs(3),
        departure_timeout: Duration::from_secs(2),
        max_participants: 0,
    };
    let server = live_server(pool, recordings.path(), Some(rooms)).await;
    let room = "golive-close";
    let mut peers = join(&server, room, 6).await;
    let url = format!("{}/api/video/livestream", server.base);
    let (code, created) = api(
        reqwest::Method::POST,
        &url,
        Some(json!({ "roomName": room })),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    wait_for_status(&server, room, "active", Duration::from_secs(10)).await;
    // The publishers leave after their 6 s; the room closes 2 s later.
    for peer in &mut peers {
        peer.event("done", Duration::from_secs(30)).await;
    }
    let done = wait_for_status(&server, room, "completed", Duration::from_secs(20)).await;
    let reasons: Vec<&str> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("room")), "{done}");
}

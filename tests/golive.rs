//! Go live end to end: aiortc publishers in a real room, the REST API, the
//! real composer, an MP4 and a real RTMP server (nginx), a real Postgres.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::media::{Frame, audio_rms, duration, first_picture_type, keep, probe, stream};
use common::rtmp::NginxRtmp;
use common::s3::S3Server;
use common::sfu::{LiveOptions, Peer, SfuOptions, SfuServer, api, publisher, webhook_receiver};
use onair::layout::{Canvas, LayoutName, ParticipantView, RoomView, VideoView};
use onair::sfu::RoomSettings;
use onair::storage::Storage;
use serde_json::{Value, json};
use sqlx::PgPool;

const CONNECT: Duration = Duration::from_secs(20);

/// The tests that compare a recording with wall time run several WebRTC
/// publishers and a composer in real time each: they take turns, so a small
/// machine keeps them in real time.
static REAL_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const COLOURS: [(u8, u8, u8); 3] = [(200, 30, 30), (30, 200, 30), (30, 30, 200)];

async fn live_server(pool: PgPool, recordings: &Path, rooms: Option<RoomSettings>) -> SfuServer {
    live_server_with(pool, recordings, rooms, None, Vec::new()).await
}

async fn live_server_with(
    pool: PgPool,
    recordings: &Path,
    rooms: Option<RoomSettings>,
    storage: Option<Storage>,
    webhook_urls: Vec<url::Url>,
) -> SfuServer {
    let mut options = SfuOptions {
        live: Some(LiveOptions {
            pool,
            recordings_dir: recordings.to_path_buf(),
            mux: None,
            storage,
        }),
        webhook_urls,
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

/// ffprobe's view of `path`, checked to be H.264 1280x720 + AAC.
fn probe_program(path: &Path) -> Value {
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
    probed
}

fn check_recording(path: &Path, wall: f64, colours: bool) {
    let probed = probe_program(path);
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

/// A GET with the recorder's token.
async fn authorized_get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(common::sfu::recorder_token())
        .send()
        .await
        .unwrap()
}

/// The program's thumbnail: a 640x360 JPEG of the program that shows the
/// publishers (once their first frames are decoded).
async fn check_preview(server: &SfuServer, id: &str) {
    let url = format!("{}/api/video/livestream/{id}/preview.jpg", server.base);
    let dir = tempfile::tempdir().unwrap();
    let jpeg = dir.path().join("preview.jpg");
    let (x, y) = gallery_centres()[0];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = authorized_get(&url).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        std::fs::write(&jpeg, response.bytes().await.unwrap()).unwrap();
        let frame = Frame::at(&jpeg, 0.0, 640, 360);
        if frame.is_near(x / 2, y / 2, COLOURS[0], 50) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the preview shows {:?} where the first publisher is",
            frame.pixel(x / 2, y / 2)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// The dashboard's player feed: the encoded program as fragmented MP4 that
/// starts on a keyframe, carries H.264 + AAC at the program's size and
/// shows the publishers. Returns the rest of the stream, read to its end
/// (which comes when the program ends).
/// Checks the first seconds of the live preview, then follows it to its end
/// in the background: the bytes that came and over how long.
async fn check_live_preview(
    server: &SfuServer,
    id: &str,
) -> tokio::task::JoinHandle<(usize, Duration)> {
    let url = format!("{}/api/video/livestream/{id}/preview.mp4", server.base);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 401);
    let mut response = authorized_get(&url).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("video/mp4; codecs=\"avc1.")
            && content_type.ends_with(",mp4a.40.2\""),
        "{content_type}"
    );
    let mut bytes = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let chunk = tokio::time::timeout(Duration::from_secs(2), response.chunk())
            .await
            .expect("the preview stream stalled")
            .unwrap()
            .expect("the preview stream ended while live");
        bytes.extend_from_slice(&chunk);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("preview.mp4");
    std::fs::write(&file, &bytes).unwrap();
    probe_program(&file);
    assert_eq!(
        first_picture_type(&file).as_deref(),
        Some("I"),
        "the preview starts on a delta frame"
    );
    let (x, y) = gallery_centres()[0];
    // It starts at most one keyframe interval (2 s) before it was asked
    // for, when the publishers were on the program (the JPEG showed them).
    let frame = Frame::at(&file, 2.0, 1280, 720);
    assert!(
        frame.is_near(x, y, COLOURS[0], 50),
        "the preview shows {:?} where the first publisher is",
        frame.pixel(x, y)
    );
    tokio::spawn(async move {
        let since = Instant::now();
        let mut rest = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            rest += chunk.len();
        }
        (rest, since.elapsed())
    })
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn three_aiortc_publishers_go_live_to_mp4_and_rtmp(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let nginx = NginxRtmp::start();
    let recordings = tempfile::tempdir().unwrap();
    let (hook, webhooks) = webhook_receiver().await;
    let server = live_server_with(pool, recordings.path(), None, None, vec![hook]).await;
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
    check_preview(&server, created["livestreamId"].as_str().unwrap()).await;
    let player = check_live_preview(&server, created["livestreamId"].as_str().unwrap()).await;
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
    let (rest, over) = tokio::time::timeout(Duration::from_secs(5), player)
        .await
        .expect("the preview stream goes on after the program ended")
        .unwrap();
    // Solid colours with moving squares encode to ~40 kB/s (measured 43 on
    // a quiet machine, 33 under load); a stalled preview carries next to
    // nothing for however long the checks above left it to run.
    let rate = rest as f64 / over.as_secs_f64().max(0.1);
    assert!(
        rest > 0 && rate > 10_000.0,
        "the preview followed the program: {rest} bytes in {over:?}"
    );
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
    // Counters of this process (other tests run alongside: at least, not equal).
    for (series, at_least) in [
        ("onair_program_frames_total{result=\"produced\"}", 200.0),
        ("onair_output_bytes_total{kind=\"rtmp\"}", 10_000.0),
        ("onair_output_bytes_total{kind=\"mp4\"}", 10_000.0),
        (
            "onair_output_status_changes_total{kind=\"rtmp\",status=\"live\"}",
            1.0,
        ),
    ] {
        let value = metric(&metrics, series);
        assert!(value >= at_least, "{series} is {value}");
    }
    check_egress_webhooks(&webhooks, created["egressId"].as_str().unwrap()).await;
    for peer in &mut peers {
        peer.child.kill().await.ok();
    }
}

type Received = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, axum::body::Bytes)>>>;

/// The livestream was announced to the room's webhook URL as a LiveKit
/// egress: started, updated while it ran, ended with its results.
async fn check_egress_webhooks(received: &Received, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let egress = loop {
        let events: Vec<Value> = received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| serde_json::from_slice::<Value>(body).unwrap())
            .filter(|e| e["egressInfo"]["egressId"] == id)
            .collect();
        if events.last().is_some_and(|e| e["event"] == "egress_ended") {
            break events;
        }
        assert!(Instant::now() < deadline, "no egress_ended: {events:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(egress[0]["event"], "egress_started", "{egress:?}");
    let started = egress
        .iter()
        .filter(|e| e["event"] == "egress_started")
        .count();
    assert_eq!(started, 1, "{egress:?}");
    // protojson leaves an enum's zero value out: EGRESS_STARTING.
    let status = egress[0]["egressInfo"].get("status");
    assert!(status.is_none_or(|s| s == "EGRESS_STARTING"), "{egress:?}");
    assert!(
        egress.iter().any(|e| e["event"] == "egress_updated"
            && e["egressInfo"]["status"] == "EGRESS_ACTIVE"
            && e["egressInfo"]["streamResults"][0]
                .get("status")
                .is_none_or(|s| s == "ACTIVE")),
        "{egress:?}"
    );
    let ended = &egress.last().unwrap()["egressInfo"];
    assert_eq!(ended["status"], "EGRESS_COMPLETE", "{ended}");
    assert_eq!(ended["roomName"], "golive-e2e");
    assert_eq!(ended["roomComposite"]["layout"], "gallery");
    assert_eq!(ended["streamResults"][0]["status"], "FINISHED", "{ended}");
    let url = ended["streamResults"][0]["url"].as_str().unwrap();
    assert!(
        url.ends_with("/live/****") && !url.contains("program"),
        "the key stays secret: {url}"
    );
    assert!(
        ended["fileResults"][0]["filename"]
            .as_str()
            .unwrap()
            .ends_with(".mp4")
    );
    assert!(ended["endedAt"].as_str().unwrap().parse::<i64>().unwrap() > 0);
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

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn hls_and_the_recording_go_to_object_storage(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let s3 = S3Server::start();
    let storage = s3.storage("onair").await;
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server_with(
        pool,
        recordings.path(),
        None,
        Some(storage.clone()),
        Vec::new(),
    )
    .await;
    let room = "golive-s3";
    let mut peer = publisher(&server, room, "person-0", 60, "200,30,30", 440);
    peer.event("connected", CONNECT).await;

    let url = format!("{}/api/video/livestream", server.base);
    let (code, created) = api(
        reqwest::Method::POST,
        &url,
        Some(json!({ "roomName": room, "hls": true })),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let id = created["livestreamId"].as_str().unwrap().to_string();
    let hls = created["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "hls")
        .expect("an hls output")
        .clone();
    let playlist_key = format!("hls/{room}/{id}/playlist.m3u8");
    assert_eq!(
        hls["url"],
        format!("s3://onair/{playlist_key}"),
        "{created}"
    );
    wait_for_status(&server, room, "active", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (code, stopped) = api(
        reqwest::Method::DELETE,
        &format!("{url}?roomName={room}"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{stopped}");
    wait_for_status(&server, room, "completed", Duration::from_secs(15)).await;

    // The recording is uploaded after completion; its row learns where.
    let mp4_key = format!("recordings/{room}-{id}.mp4");
    let deadline = Instant::now() + Duration::from_secs(30);
    let recording = loop {
        let current = status(&server, room).await;
        let mp4 = current["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "mp4")
            .unwrap()
            .clone();
        if mp4["uploadedTo"].is_string() {
            break mp4;
        }
        assert!(
            Instant::now() < deadline,
            "the recording was never uploaded: {current}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(recording["uploadedTo"], format!("s3://onair/{mp4_key}"));
    assert!(
        !Path::new(recording["url"].as_str().unwrap()).exists(),
        "the local copy is removed once the store has it"
    );
    let probed = probe(Path::new(&s3.http_url("onair", &mp4_key)));
    assert_eq!(
        stream(&probed, "video").unwrap()["codec_name"],
        "h264",
        "{probed}"
    );
    assert!(duration(&probed) > 5.0, "{probed}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let playlist = loop {
        let text = storage
            .store
            .get(&playlist_key)
            .await
            .map(String::from_utf8);
        if let Ok(Ok(text)) = text
            && text.contains("#EXT-X-ENDLIST")
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no VOD playlist in the bucket");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(playlist.contains("#EXT-X-TARGETDURATION:2"), "{playlist}");
    let probed = probe(Path::new(&s3.http_url("onair", &playlist_key)));
    assert_eq!(
        stream(&probed, "audio").unwrap()["codec_name"],
        "aac",
        "{probed}"
    );
    assert!(duration(&probed) > 5.0, "{probed}");
    peer.child.kill().await.ok();
}

/// The output named `name` in a status answer.
fn output_named<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output {name}: {status}"))
}

async fn wait_for_output(server: &SfuServer, room: &str, name: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let current = status(server, room).await;
        if output_named(&current, name)["status"] == want {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never `{want}`: {current}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn a_platform_going_down_is_retried_while_the_others_keep_receiving(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let mut servers = [NginxRtmp::start(), NginxRtmp::start(), NginxRtmp::start()];
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    let room = "golive-three-destinations";
    let mut peers = join(&server, room, 60).await;
    let destinations: Vec<Value> = servers
        .iter()
        .enumerate()
        .map(|(n, s)| json!({ "type": "custom", "customRtmpUrl": s.url("program"), "name": format!("platform-{n}") }))
        .collect();
    let url = format!("{}/api/video/livestream", server.base);
    let body = json!({ "roomName": room, "mp4": false, "additionalDestinations": destinations });
    let (code, created) = api(reqwest::Method::POST, &url, Some(body)).await;
    assert_eq!(code, 201, "{created}");
    wait_for_status(&server, room, "active", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let retries_before = metric(&scrape(&server).await, RTMP_RETRIES);
    servers[1].kill();
    let down = wait_for_output(&server, room, "platform-1", "retrying").await;
    let retries = metric(&scrape(&server).await, RTMP_RETRIES);
    assert!(
        retries > retries_before,
        "{RTMP_RETRIES}: {retries_before} → {retries}"
    );
    let platform = output_named(&down, "platform-1");
    assert!(platform["retries"].as_i64().unwrap() >= 1, "{platform}");
    assert!(
        platform["lastError"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{platform}"
    );
    assert_eq!(
        down["status"], "active",
        "one platform down does not stop the livestream"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    servers[1].restart();
    let restarted = Instant::now();
    wait_for_output(&server, room, "platform-1", "live").await;
    assert!(
        restarted.elapsed() < Duration::from_secs(5),
        "live again only after {:?}",
        restarted.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, _) = api(
        reqwest::Method::DELETE,
        &format!("{url}?roomName={room}"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    wait_for_status(&server, room, "completed", Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in [0, 2] {
        let recording = servers[n].recording("program");
        let times = common::media::video_packet_times(&recording);
        let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        assert!(
            times.len() > 100 && gap < 0.5,
            "platform-{n}: {} packets, gap {gap:.2} s",
            times.len()
        );
    }
    assert!(duration(&probe(&servers[1].recording("program"))) > 1.0);
    for peer in &mut peers {
        peer.child.kill().await.ok();
    }
}

const RTMP_RETRIES: &str = "onair_output_retries_total{kind=\"rtmp\"}";

async fn scrape(server: &SfuServer) -> String {
    reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one series in a scrape (0 when absent).
fn metric(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

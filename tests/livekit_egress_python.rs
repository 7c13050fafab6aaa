//! LiveKit's Python server SDK (`livekit-api`, binary protobuf) starting
//! onair egresses: a room composite to an MP4 and HLS segments in object
//! storage (s3s-fs), a participant egress that shows only that participant,
//! and an auto egress from CreateRoom that starts when someone joins.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::lk_sdk::SdkDriver;
use common::media::{Frame, audio_samples, duration, probe, stream};
use common::s3::S3Server;
use common::sfu::{LiveOptions, Peer, SfuOptions, SfuServer, join_token, publisher};
use common::{KEY, SECRET};
use onair::storage::Storage;
use serde_json::{Value, json};
use sqlx::PgPool;

const CONNECT: Duration = Duration::from_secs(20);
const GO_LIVE: Duration = Duration::from_secs(30);
/// Program time between going active and stopping: several 2 s segments.
const HOLD: Duration = Duration::from_secs(7);
const RED: (u8, u8, u8) = (200, 30, 30);
/// Each test runs WebRTC publishers and a program in real time; on a small
/// machine they take turns (gaps in a starved publisher's audio broke the
/// tone checks when they ran side by side).
static REAL_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const BLUE: (u8, u8, u8) = (30, 30, 200);

async fn live_server(pool: PgPool, recordings: &Path, storage: Option<Storage>) -> SfuServer {
    SfuServer::start(SfuOptions {
        live: Some(LiveOptions {
            pool,
            recordings_dir: recordings.to_path_buf(),
            mux: None,
            storage,
        }),
        ..SfuOptions::default()
    })
    .await
}

async fn join(server: &SfuServer, room: &str, identity: &str, (r, g, b): (u8, u8, u8)) -> Peer {
    let mut peer = publisher(server, room, identity, 120, &format!("{r},{g},{b}"), 440);
    peer.event("connected", CONNECT).await;
    peer
}

async fn wait_for_egress(sdk: &mut SdkDriver, id: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let list = sdk
            .call("egress", "list_egress", json!([{ "egress_id": id }]))
            .await
            .expect("list_egress");
        let info = list["items"].as_array().and_then(|l| l.first()).cloned();
        if let Some(info) = info.as_ref().filter(|i| i["status"] == status) {
            return info.clone();
        }
        assert!(Instant::now() < deadline, "never {status}: {info:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Lets egress `id` run [`HOLD`] once active, then stops it: the final
/// EgressInfo, which must say COMPLETE.
async fn run_and_stop(sdk: &mut SdkDriver, id: &str) -> Value {
    wait_for_egress(sdk, id, "EGRESS_ACTIVE", GO_LIVE).await;
    tokio::time::sleep(HOLD).await;
    let stopped = sdk
        .call("egress", "stop_egress", json!([{ "egress_id": id }]))
        .await
        .expect("stop_egress");
    assert_eq!(stopped["status"], "EGRESS_COMPLETE", "{stopped}");
    stopped
}

/// Polls until `check` finds what it wants in the egress (e.g. an upload).
async fn wait_for_info(
    sdk: &mut SdkDriver,
    id: &str,
    within: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let list = sdk
            .call("egress", "list_egress", json!([{ "egress_id": id }]))
            .await
            .unwrap();
        let info = list["items"][0].clone();
        if check(&info) {
            return info;
        }
        assert!(Instant::now() < deadline, "never there: {info}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn python_room_composite_to_a_file_and_hls_in_object_storage(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let s3 = S3Server::start();
    let storage = s3.storage("onair").await;
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), Some(storage.clone())).await;
    let room = "py-composite";
    let _alice = join(&server, room, "alice", RED).await;
    let mut py = SdkDriver::python(&server.base, KEY, SECRET);

    let info = py
        .call(
            "egress",
            "start_room_composite_egress",
            json!([{
                "room_name": room,
                "layout": "speaker",
                "preset": "H264_720P_30",
                "file_outputs": [{ "file_type": "MP4", "filepath": "egress/{room_name}.mp4" }],
                "segment_outputs": [{
                    "filename_prefix": "live/{room_name}", "segment_duration": 2,
                    "playlist_name": "full.m3u8", "live_playlist_name": "edge",
                }],
                "image_outputs": [{
                    "capture_interval": 2, "width": 320, "height": 180,
                    "filename_prefix": "stills/{room_name}",
                }],
            }]),
        )
        .await
        .expect("start_room_composite_egress");
    let id = info["egress_id"].as_str().unwrap().to_string();
    assert_eq!(info["room_composite"]["layout"], "speaker", "{info}");
    assert!(
        info["room_id"].as_str().unwrap().starts_with("RM_"),
        "{info}"
    );
    wait_for_egress(&mut py, &id, "EGRESS_ACTIVE", GO_LIVE).await;
    let live_since = Instant::now();
    tokio::time::sleep(HOLD).await;
    let stopped = py
        .call("egress", "stop_egress", json!([{ "egress_id": id }]))
        .await
        .expect("stop_egress");
    let live_for = live_since.elapsed().as_secs_f64();
    assert_eq!(stopped["status"], "EGRESS_COMPLETE", "{stopped}");

    // Stills every 2 s at 320x180, in the bucket under the prefix.
    let images = &stopped["image_results"][0];
    assert_eq!(
        images["filename_prefix"],
        format!("stills/{room}"),
        "{stopped}"
    );
    let count = images["image_count"]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    let expected = live_for / 2.0;
    assert!(
        (count - expected).abs() <= 2.0,
        "{count} images in {live_for:.1} s at one per 2 s"
    );
    for index in 1..=count as usize {
        let key = format!("stills/{room}_{index:05}.jpeg");
        let deadline = Instant::now() + Duration::from_secs(20);
        while storage.store.get(&key).await.is_err() {
            assert!(Instant::now() < deadline, "{key} never uploaded");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let probed = probe(Path::new(&s3.http_url("onair", &key)));
        let still = stream(&probed, "video").unwrap();
        assert_eq!(still["codec_name"], "mjpeg", "{probed}");
        assert_eq!(
            (still["width"].as_u64(), still["height"].as_u64()),
            (Some(320), Some(180))
        );
    }
    let last = format!("stills/{room}_{:05}.jpeg", count as usize);
    let frame = Frame::at(Path::new(&s3.http_url("onair", &last)), 0.0, 320, 180);
    assert!(
        frame.is_near(160, 90, RED, 40),
        "{:?}",
        frame.pixel(160, 90)
    );

    // The file goes to the key its filepath named, and the info says where.
    let key = format!("egress/{room}.mp4");
    let info = wait_for_info(&mut py, &id, Duration::from_secs(30), |i| {
        i["file_results"][0]["location"] != ""
    })
    .await;
    let file = &info["file_results"][0];
    assert_eq!(file["filename"], key.as_str(), "{info}");
    assert_eq!(file["location"], format!("s3://onair/{key}"), "{info}");
    assert!(
        file["size"].as_str().unwrap().parse::<u64>().unwrap() > 100_000,
        "{info}"
    );
    let probed = probe(Path::new(&s3.http_url("onair", &key)));
    let video = stream(&probed, "video").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert!(duration(&probed) > 5.0, "{probed}");

    // HLS under the requested prefix, 2 s segments, closed with ENDLIST.
    let segments = &info["segment_results"][0];
    let playlist_key = format!("live/{room}/full.m3u8");
    assert_eq!(
        segments["playlist_location"],
        format!("s3://onair/{playlist_key}"),
        "{info}"
    );
    assert_eq!(segments["live_playlist_name"], "edge.m3u8", "{info}");
    let count: u32 = segments["segment_count"].as_str().unwrap().parse().unwrap();
    assert!(count >= 3, "{info}");
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
    assert_eq!(
        playlist.matches("#EXTINF").count(),
        count as usize,
        "{playlist}"
    );
    let probed = probe(Path::new(&s3.http_url("onair", &playlist_key)));
    assert_eq!(stream(&probed, "audio").unwrap()["codec_name"], "aac");
    assert!(duration(&probed) > 5.0, "{probed}");
    // The live playlist slides over the last segments.
    let live = storage
        .store
        .get(&format!("live/{room}/edge.m3u8"))
        .await
        .map(String::from_utf8)
        .expect("the live playlist")
        .unwrap();
    assert!(!live.contains("PLAYLIST-TYPE"), "{live}");
    assert!(live.matches("#EXTINF").count() <= 5, "{live}");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn python_participant_egress_shows_only_that_participant(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    let room = "py-participant";
    let _alice = join(&server, room, "alice", RED).await;
    let _bob = join(&server, room, "bob", BLUE).await;
    let mut py = SdkDriver::python(&server.base, KEY, SECRET);

    let info = py
        .call(
            "egress",
            "start_participant_egress",
            json!([{
                "room_name": room,
                "identity": "bob",
                "file_outputs": [{ "filepath": "bob.mp4" }],
            }]),
        )
        .await
        .expect("start_participant_egress");
    let id = info["egress_id"].as_str().unwrap().to_string();
    assert_eq!(info["participant"]["identity"], "bob", "{info}");
    // A room composite may run beside it.
    let composite = py
        .call(
            "egress",
            "start_room_composite_egress",
            json!([{ "room_name": room, "file_outputs": [{ "filepath": "all.mp4" }] }]),
        )
        .await
        .expect("a room composite beside a participant egress");
    let composite_id = composite["egress_id"].as_str().unwrap().to_string();
    wait_for_egress(&mut py, &id, "EGRESS_ACTIVE", GO_LIVE).await;
    tokio::time::sleep(HOLD).await;
    for egress in [&id, &composite_id] {
        let stopped = py
            .call("egress", "stop_egress", json!([{ "egress_id": egress }]))
            .await
            .unwrap();
        assert_eq!(stopped["status"], "EGRESS_COMPLETE", "{stopped}");
    }
    let listed = py
        .call("egress", "list_egress", json!([{ "room_name": room }]))
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    let active = py
        .call(
            "egress",
            "list_egress",
            json!([{ "room_name": room, "active": true }]),
        )
        .await
        .unwrap();
    assert!(
        active["items"].as_array().is_none_or(|i| i.is_empty()),
        "{active}"
    );

    let path = recordings.path().join("bob.mp4");
    let probed = probe(&path);
    let seconds = duration(&probed);
    assert!(seconds > 5.0, "{probed}");
    // Bob fills the picture; Alice is nowhere.
    let frame = Frame::at(&path, seconds - 1.5, 1280, 720);
    for (x, y) in [(320, 360), (640, 200), (960, 360)] {
        assert!(
            frame.is_near(x, y, BLUE, 40),
            "({x},{y}) is {:?}",
            frame.pixel(x, y)
        );
    }
    let reds = (0..1280)
        .step_by(40)
        .flat_map(|x| (0..720).step_by(40).map(move |y| (x, y)))
        .filter(|&(x, y)| frame.is_near(x, y, RED, 40))
        .count();
    assert_eq!(reds, 0, "alice shows in bob's egress");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn auto_egress_from_create_room_records_once_someone_joins(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    let room = "py-auto";
    let mut py = SdkDriver::python(&server.base, KEY, SECRET);
    py.call(
        "room",
        "create_room",
        json!([{
            "name": room,
            "egress": {
                "room": { "file_outputs": [{ "filepath": "auto/{room_name}.mp4" }] },
                "tracks": { "filepath": "auto/{track_type}-{track_id}" },
            },
        }]),
    )
    .await
    .expect("create_room with egress");
    // Nothing runs until someone joins.
    let listed = py
        .call("egress", "list_egress", json!([{ "room_name": room }]))
        .await
        .unwrap();
    assert!(
        listed["items"].as_array().is_none_or(|i| i.is_empty()),
        "{listed}"
    );
    let _alice = join(&server, room, "alice", RED).await;

    // The room composite, and a track egress per published track.
    let deadline = Instant::now() + GO_LIVE;
    let items = loop {
        let listed = py
            .call("egress", "list_egress", json!([{ "room_name": room }]))
            .await
            .unwrap();
        let items = listed["items"].as_array().cloned().unwrap_or_default();
        if items.len() == 3 {
            break items;
        }
        assert!(
            Instant::now() < deadline,
            "the auto egresses never started: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let ids: Vec<String> = items
        .iter()
        .map(|i| i["egress_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        items.iter().filter(|i| i.get("track").is_some()).count(),
        2,
        "{items:?}"
    );
    for id in &ids {
        wait_for_egress(&mut py, id, "EGRESS_ACTIVE", GO_LIVE).await;
    }
    tokio::time::sleep(HOLD).await;
    for id in &ids {
        let stopped = py
            .call("egress", "stop_egress", json!([{ "egress_id": id }]))
            .await
            .unwrap();
        assert_eq!(stopped["status"], "EGRESS_COMPLETE", "{stopped}");
    }
    let path = recordings.path().join(format!("auto/{room}.mp4"));
    let probed = probe(&path);
    assert!(duration(&probed) > 5.0, "{probed}");
    let frame = Frame::at(&path, duration(&probed) - 1.5, 1280, 720);
    assert!(
        frame.is_near(640, 360, RED, 40),
        "{:?}",
        frame.pixel(640, 360)
    );
    let mut files: Vec<String> = std::fs::read_dir(recordings.path().join("auto"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    let codec = |prefix: &str, kind: &str| {
        let name = files.iter().find(|f| f.starts_with(prefix)).unwrap();
        let probed = probe(&recordings.path().join("auto").join(name));
        stream(&probed, kind).unwrap()["codec_name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(codec("audio-TR_", "audio"), "opus");
    assert_eq!(codec("video-TR_", "video"), "vp8");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn python_uploads_go_to_the_requests_own_bucket(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    // A bucket only the request's credentials open; the server has none.
    let s3 = S3Server::start_with_keys("egress-key", "egress-secret-0123456789");
    let storage = s3.storage("their-bucket").await;
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    let room = "py-own-bucket";
    let _alice = join(&server, room, "alice", RED).await;
    let mut py = SdkDriver::python(&server.base, KEY, SECRET);
    let upload = json!({
        "access_key": "egress-key",
        "secret": "egress-secret-0123456789",
        "endpoint": format!("http://127.0.0.1:{}", s3.port),
        "region": "us-east-1",
        "bucket": "their-bucket",
        "force_path_style": true,
    });
    let info = py
        .call(
            "egress",
            "start_room_composite_egress",
            json!([{
                "room_name": room,
                "file_outputs": [{ "filepath": "{room_name}/program.mp4", "s3": upload }],
                "segment_outputs": [{ "filename_prefix": "{room_name}/hls", "segment_duration": 2, "s3": upload }],
            }]),
        )
        .await
        .expect("start_room_composite_egress with s3 settings");
    let id = info["egress_id"].as_str().unwrap().to_string();
    assert!(
        !info.to_string().contains("egress-secret"),
        "the secret came back: {info}"
    );
    run_and_stop(&mut py, &id).await;

    let key = format!("{room}/program.mp4");
    let info = wait_for_info(&mut py, &id, Duration::from_secs(30), |i| {
        i["file_results"][0]["location"] != ""
    })
    .await;
    assert_eq!(
        info["file_results"][0]["location"],
        format!("s3://their-bucket/{key}")
    );
    let local = recordings.path().join("downloaded.mp4");
    std::fs::write(
        &local,
        storage
            .store
            .get(&key)
            .await
            .expect("the MP4 is in their bucket"),
    )
    .unwrap();
    let probed = probe(&local);
    assert_eq!(stream(&probed, "video").unwrap()["codec_name"], "h264");
    assert!(duration(&probed) > 5.0, "{probed}");
    let playlist_key = format!("{room}/hls/playlist.m3u8");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = storage
            .store
            .get(&playlist_key)
            .await
            .map(String::from_utf8);
        if let Ok(Ok(text)) = text
            && text.contains("#EXT-X-ENDLIST")
        {
            assert!(text.contains(".ts"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no VOD playlist in their bucket");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A request without credentials never borrows the server's.
    let refused = py
        .call(
            "egress",
            "start_room_composite_egress",
            json!([{
                "room_name": room,
                "file_outputs": [{ "filepath": "x.mp4", "s3": { "bucket": "their-bucket" } }],
            }]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.code.as_deref(),
        Some("invalid_argument"),
        "{refused}"
    );
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn python_audio_only_egress_writes_ogg_opus(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    let room = "py-audio";
    let _alice = join(&server, room, "alice", RED).await;
    let mut py = SdkDriver::python(&server.base, KEY, SECRET);
    // LiveKit's DEFAULT_FILETYPE for audio only is Ogg (Opus).
    let info = py
        .call(
            "egress",
            "start_room_composite_egress",
            json!([{ "room_name": room, "audio_only": true, "file_outputs": [{ "filepath": "talk" }] }]),
        )
        .await
        .expect("audio-only egress");
    let id = info["egress_id"].as_str().unwrap().to_string();
    let stopped = run_and_stop(&mut py, &id).await;
    assert_eq!(
        stopped["file_results"][0]["filename"], "talk.ogg",
        "{stopped}"
    );
    let path = recordings.path().join("talk.ogg");
    let probed = probe(&path);
    assert!(stream(&probed, "video").is_none(), "{probed}");
    let audio = stream(&probed, "audio").unwrap();
    assert_eq!(audio["codec_name"], "opus", "{probed}");
    assert!(duration(&probed) > 5.0, "{probed}");
    assert!(
        common::media::audio_rms(&path, 2.0, 2.0) > 0.01,
        "the recording is silent"
    );
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn python_track_egress_writes_the_vp8_track_as_it_is(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    let room = "py-track";
    let _alice = join(&server, room, "alice", RED).await;
    let mut py = SdkDriver::python(&server.base, KEY, SECRET);
    let listed = py
        .call("room", "list_participants", json!([{ "room": room }]))
        .await
        .unwrap();
    let tracks = listed["participants"][0]["tracks"]
        .as_array()
        .unwrap()
        .clone();
    let video = tracks.iter().find(|t| t["type"] == "VIDEO").unwrap();
    assert_eq!(video["mime_type"], "video/VP8");
    let track_id = video["sid"].as_str().unwrap().to_string();

    let info = py
        .call(
            "egress",
            "start_track_egress",
            json!([{
                "room_name": room,
                "track_id": track_id,
                "file": { "filepath": "tracks/{publisher_identity}-{track_source}" },
            }]),
        )
        .await
        .expect("start_track_egress");
    let id = info["egress_id"].as_str().unwrap().to_string();
    assert_eq!(info["track"]["track_id"], track_id.as_str(), "{info}");
    let error = py
        .call(
            "egress",
            "update_layout",
            json!([{ "egress_id": id, "layout": "grid" }]),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code.as_deref(), Some("invalid_argument"), "{error}");
    let stopped = run_and_stop(&mut py, &id).await;
    assert_eq!(
        stopped["file_results"][0]["filename"], "tracks/alice-camera.webm",
        "{stopped}"
    );

    let path = recordings.path().join("tracks/alice-camera.webm");
    let probed = probe(&path);
    let video = stream(&probed, "video").unwrap();
    assert_eq!(video["codec_name"], "vp8", "{probed}");
    assert!(stream(&probed, "audio").is_none(), "{probed}");
    assert!(duration(&probed) > 5.0, "{probed}");
    let (width, height) = (
        video["width"].as_u64().unwrap(),
        video["height"].as_u64().unwrap(),
    );
    let frame = Frame::at(&path, 2.0, width as usize, height as usize);
    assert!(
        frame.is_near(width as i32 / 4, height as i32 / 4, RED, 40),
        "{:?}",
        frame.pixel(width as i32 / 4, height as i32 / 4)
    );
    // A track that is not there is the SDK's not-found error.
    let error = py
        .call(
            "egress",
            "start_track_egress",
            json!([{ "room_name": room, "track_id": "TR_none", "file": { "filepath": "x" } }]),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code.as_deref(), Some("not_found"), "{error}");
}

/// The power of `freq` in `samples` (48 kHz), by the Goertzel algorithm.
fn power(samples: &[f64], freq: f64) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * freq / 48000.0).cos();
    let (mut previous, mut before) = (0.0, 0.0);
    for sample in samples {
        let current = sample + coefficient * previous - before;
        before = previous;
        previous = current;
    }
    previous * previous + before * before - coefficient * previous * before
}

/// How much more of 440 Hz than of 880 Hz a channel carries.
fn low_over_high(samples: &[f64]) -> f64 {
    power(samples, 440.0) / power(samples, 880.0).max(1e-9)
}

/// A dual-channel egress of a 440 Hz and an 880 Hz voice: which channel
/// carries the 440 Hz one (the other must carry the 880 Hz one).
async fn dual_channel_tones(pool: PgPool, room: &str, mixing: &str, agent_first: bool) -> usize {
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    // The first voice is an agent when asked (a token with the agent grant).
    let token = join_token(room, "bot", |g| g.agent = agent_first);
    let mut first = Peer::python(
        "whip_publish.py",
        &[
            "--url",
            &server.whip_url(),
            "--token",
            &token,
            "--seconds",
            "120",
            "--color",
            "200,30,30",
            "--tone",
            "440",
        ],
    );
    first.event("connected", CONNECT).await;
    let mut second = publisher(&server, room, "bob", 120, "30,30,200", 880);
    second.event("connected", CONNECT).await;
    let mut py = SdkDriver::python(&server.base, KEY, SECRET);
    let info = py
        .call(
            "egress",
            "start_room_composite_egress",
            json!([{
                "room_name": room,
                "audio_only": true,
                "audio_mixing": mixing,
                "file_outputs": [{ "file_type": "MP4", "filepath": "dual.mp4" }],
            }]),
        )
        .await
        .expect("dual-channel egress");
    let id = info["egress_id"].as_str().unwrap().to_string();
    run_and_stop(&mut py, &id).await;
    let path = recordings.path().join("dual.mp4");
    let ratios = [0, 1].map(|c| low_over_high(&audio_samples(&path, 2.0, 4.0, Some(c))));
    // One voice on each side: one channel mostly 440 Hz, the other 880 Hz.
    let low = if ratios[0] > ratios[1] { 0 } else { 1 };
    assert!(
        ratios[low] > 10.0 && ratios[1 - low] < 0.1,
        "440/880 Hz power per channel: {ratios:?}"
    );
    low
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn python_dual_channel_alternate_puts_voices_on_either_side(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    // Which voice is first depends on the order the tracks reach the program.
    dual_channel_tones(pool, "py-dual", "DUAL_CHANNEL_ALTERNATE", false).await;
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn python_dual_channel_agent_puts_the_agent_on_the_left(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let agent_side = dual_channel_tones(pool, "py-agent", "DUAL_CHANNEL_AGENT", true).await;
    assert_eq!(agent_side, 0, "the agent's 440 Hz voice is not on the left");
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn python_srt_stream_output_carries_the_program(pool: PgPool) {
    let _turn = REAL_TIME.lock().await;
    let recordings = tempfile::tempdir().unwrap();
    let server = live_server(pool, recordings.path(), None).await;
    let room = "py-srt";
    let _alice = join(&server, room, "alice", RED).await;
    // A real SRT listener: GStreamer's srtsrc writing the transport stream.
    let port = common::free_port();
    let received = recordings.path().join("received.ts");
    let mut listener = tokio::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .arg("srtsrc")
        .arg(format!("uri=srt://127.0.0.1:{port}?mode=listener"))
        .arg("!")
        .arg("filesink")
        .arg(format!("location={}", received.display()))
        .kill_on_drop(true)
        .spawn()
        .expect("gst-launch-1.0 runs");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut py = SdkDriver::python(&server.base, KEY, SECRET);
    let url = format!("srt://127.0.0.1:{port}?streamid=program-secret");
    let info = py
        .call(
            "egress",
            "start_room_composite_egress",
            json!([{ "room_name": room, "stream_outputs": [{ "protocol": "SRT", "urls": [url] }] }]),
        )
        .await
        .expect("an SRT stream output");
    assert!(
        !info.to_string().contains("program-secret"),
        "the stream id came back: {info}"
    );
    let id = info["egress_id"].as_str().unwrap().to_string();
    let stopped = run_and_stop(&mut py, &id).await;
    assert_eq!(
        stopped["stream_results"][0]["status"], "FINISHED",
        "{stopped}"
    );
    assert_eq!(
        stopped["room_composite"]["stream_outputs"][0]["protocol"], "SRT",
        "{stopped}"
    );
    listener.kill().await.ok();
    let probed = probe(&received);
    let video = stream(&probed, "video").expect("video over SRT");
    assert_eq!(video["codec_name"], "h264", "{probed}");
    assert_eq!(stream(&probed, "audio").unwrap()["codec_name"], "aac");
    assert!(std::fs::metadata(&received).unwrap().len() > 100_000);
    // A URL that is not SRT under the SRT protocol is refused.
    let refused = py
        .call(
            "egress",
            "start_room_composite_egress",
            json!([{ "room_name": room, "stream_outputs": [{ "protocol": "SRT", "urls": ["rtmp://127.0.0.1/live/x"] }] }]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.code.as_deref(),
        Some("invalid_argument"),
        "{refused}"
    );
}

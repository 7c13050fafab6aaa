//! The dashboard end to end in headless Chromium: two aiortc publishers in a
//! room, a real Postgres and the real composer. The driver
//! (tests/browser/dashboard.mjs) signs in with the dev token on `/`, sees the
//! room with both participants, goes live with `grid` through the Go live
//! form, follows the livestream page to `active`, checks the preview shows
//! moving program frames, switches to `speaker` with the select, stops with
//! the Stop button and waits for `completed`; "Go live again" starts and
//! stops a second one. Then the REST API and the database must agree, and
//! the MP4 must hold video.
//!
//! With `ONAIR_SCREENSHOTS_DIR` set, the screenshots of both pages are left
//! there (`dashboard-home.png`, `livestream.png`).
//!
//! Needs Node, Chromium and the driver's npm packages (`scripts/browser-peers`)
//! and the aiortc venv (`scripts/python-peers`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::browser::{CHROMIUM, require_browser_peers};
use common::media::{probe, stream};
use common::sfu::{LiveOptions, Peer, SfuOptions, SfuServer, publisher};
use common::{KEY, SECRET};
use onair::auth::{AccessToken, VideoGrant};
use serde_json::Value;
use sqlx::PgPool;
use tokio::time::Instant;

const ROOM: &str = "dashboard-room";
/// The dashboard's dev token is for this identity: it owns the livestream.
const DASHBOARD_IDENTITY: &str = "dashboard";
const CONNECT: Duration = Duration::from_secs(20);

/// A token of the dashboard's identity (the livestream's owner) for REST checks.
fn owner_token() -> String {
    AccessToken::new(KEY, DASHBOARD_IDENTITY, Duration::from_secs(600))
        .with_grant(VideoGrant {
            room_record: true,
            room_list: true,
            ..VideoGrant::default()
        })
        .sign(SECRET)
        .unwrap()
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(owner_token())
        .send()
        .await
        .unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

fn event<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["event"] == name)
        .unwrap_or_else(|| panic!("the driver never reported `{name}`: {lines:#?}"))
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"))
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn a_person_takes_a_room_live_and_stops_it_from_the_dashboard(pool: PgPool) {
    require_browser_peers();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let recordings = tempfile::tempdir().unwrap();
    // Dev mode puts the dev key in the key ring, as `onair serve --dev` does,
    // so the dashboard's "Use dev token" works.
    let server = SfuServer::start(SfuOptions {
        dev_mode: true,
        live: Some(LiveOptions {
            pool: pool.clone(),
            recordings_dir: recordings.path().to_path_buf(),
            mux: None,
            storage: None,
        }),
        ..Default::default()
    })
    .await;

    let mut peers = Vec::new();
    for (identity, colour, tone) in [("ana", "200,40,40", 440), ("ben", "40,60,200", 660)] {
        let mut peer = publisher(&server, ROOM, identity, 180, colour, tone);
        peer.event("connected", CONNECT).await;
        peers.push(peer);
    }

    let screenshots = match std::env::var_os("ONAIR_SCREENSHOTS_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("ONAIR_SCREENSHOTS_DIR can be created");
            // Absolute: the driver runs in tests/browser.
            (std::fs::canonicalize(&dir).unwrap(), None)
        }
        None => {
            let temp = tempfile::tempdir().unwrap();
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let screenshots_dir = screenshots.0.to_str().unwrap().to_string();
    let started = Instant::now();
    let mut driver = Peer::node(
        "dashboard.mjs",
        &[
            "--base",
            &server.base,
            "--room",
            ROOM,
            "--participants",
            "2",
            "--layout",
            "grid",
            "--switch-to",
            "speaker",
            "--chromium",
            CHROMIUM,
            "--timeout",
            "150",
            "--screenshots",
            &screenshots_dir,
        ],
    );
    let mut lines: Vec<Value> = Vec::new();
    let deadline = started + Duration::from_secs(180);
    let result = loop {
        let line = tokio::time::timeout_at(deadline, driver.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("the driver did not finish in 180 s: {lines:#?}"));
        let Some(line) = line else {
            panic!("the driver exited without a result: {lines:#?}");
        };
        eprintln!("driver {:>5.1}s: {line}", started.elapsed().as_secs_f64());
        lines.push(line.clone());
        if line["event"] == "result" {
            break line;
        }
    };
    assert_eq!(
        result["ok"], true,
        "the dashboard run failed: {}\nstates seen: {}",
        result["reason"], result["states"]
    );
    assert_eq!(driver.exit_code(Duration::from_secs(30)).await, 0);

    // No script errors on either page (failed resource loads, such as the
    // preview's 503 before the first frame, are the network, not the script).
    let page_errors: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "console" && l["type"] == "pageerror")
        .collect();
    assert!(page_errors.is_empty(), "script errors: {page_errors:?}");

    // `/` showed the room with both publishers and offered the six layouts.
    let room = event(&lines, "room");
    assert_eq!(room["participants"], 2, "{room}");
    assert!(room["tracks"].as_u64().unwrap() >= 4, "{room}");
    assert_eq!(room["name"], ROOM, "{room}");
    assert_eq!(room["link"], format!("/rooms/{ROOM}"), "{room}");
    let form = event(&lines, "form");
    assert_eq!(form["layout"], "grid", "{form}");
    assert_eq!(form["mp4"], true, "{form}");
    assert_eq!(
        form["layouts"],
        serde_json::json!([
            "gallery",
            "active-speaker",
            "crop",
            "grid",
            "speaker",
            "single-speaker"
        ]),
        "{form}"
    );

    // The livestream page went through the states as they happened.
    let id = event(&lines, "golive")["id"].as_str().unwrap().to_string();
    let states: Vec<&str> = result["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let position = |s: &str| states.iter().position(|x| *x == s);
    assert!(
        matches!((position("active"), position("completed")), (Some(a), Some(c)) if a < c),
        "the page's states: {states:?}"
    );
    assert!(!states.contains(&"failed"), "the page's states: {states:?}");

    // The preview played the program as video (Media Source Extensions on
    // the fragmented MP4 stream) at its size, not flat, moving.
    let preview = event(&lines, "preview");
    assert_eq!(preview["kind"], "video", "{preview}");
    assert_eq!(preview["paused"], false, "{preview}");
    assert_eq!(preview["width"], 1280, "{preview}");
    assert_eq!(preview["height"], 720, "{preview}");
    assert!(
        preview["lastStddev"].as_f64().unwrap() > 5.0,
        "a flat preview frame (not the program): {preview}"
    );
    assert!(
        preview["distinct"].as_u64().unwrap() >= 2,
        "the preview never changed: {preview}"
    );
    // About 4 s of 30 fps between the first and the last sample.
    assert!(
        preview["framesLoaded"].as_u64().unwrap() >= 60,
        "the preview did not play: {preview}"
    );

    let layout = event(&lines, "layout");
    assert_eq!(layout["layout"], "speaker", "{layout}");
    let history = event(&lines, "history");
    assert_eq!(
        history["to"],
        serde_json::json!(["idle", "starting", "active", "stopping", "completed"]),
        "the page's state history: {history}"
    );
    assert_eq!(history["again"], true, "{history}");
    assert_eq!(history["stopHidden"], true, "{history}");
    // "Go live again" made a second livestream with the same room and layout.
    let again = event(&lines, "again");
    let again_id = again["id"].as_str().unwrap().to_string();
    assert_ne!(again_id, id, "{again}");
    assert_eq!(again["layout"], "speaker", "{again}");
    let listed = event(&lines, "listed");
    assert_eq!(listed["state"], "completed", "{listed}");
    assert_eq!(listed["link"], format!("/livestreams/{id}"), "{listed}");
    assert!(
        event(&lines, "rejected")["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "a rejected token brings the sign-in form back with a reason"
    );

    // The REST API agrees.
    let (code, status) = get_json(&format!(
        "{}/api/video/livestream/status?id={id}",
        server.base
    ))
    .await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["layout"], "speaker", "{status}");
    assert_eq!(status["roomName"], ROOM, "{status}");
    let mp4 = status["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "mp4")
        .unwrap_or_else(|| panic!("no MP4 output: {status}"));
    assert!(mp4["bytes"].as_u64().unwrap() > 10_000, "{status}");

    // So does the database.
    let uuid: uuid::Uuid = id.parse().unwrap();
    let (db_status, db_layout, owner): (String, String, String) =
        sqlx::query_as("SELECT status, layout, user_id FROM livestreams WHERE id = $1")
            .bind(uuid)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (db_status.as_str(), db_layout.as_str(), owner.as_str()),
        ("completed", "speaker", DASHBOARD_IDENTITY)
    );
    let transitions: Vec<String> = sqlx::query_scalar(
        "SELECT to_status FROM livestream_events WHERE livestream_id = $1 ORDER BY id",
    )
    .bind(uuid)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        transitions,
        ["idle", "starting", "active", "stopping", "completed"]
    );

    let (again_status, again_room): (String, String) =
        sqlx::query_as("SELECT status, room_name FROM livestreams WHERE id = $1")
            .bind(again_id.parse::<uuid::Uuid>().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (again_status.as_str(), again_room.as_str()),
        ("completed", ROOM)
    );

    // The MP4 holds the program's video.
    let path = PathBuf::from(mp4["url"].as_str().unwrap());
    assert!(path.is_file(), "no MP4 at {}", path.display());
    let probed = probe(&path);
    let video = stream(&probed, "video").unwrap_or_else(|| panic!("no video stream: {probed}"));
    assert_eq!(video["codec_name"], "h264", "{probed}");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(1280), Some(720)),
        "{probed}"
    );

    // Both pages were photographed.
    for name in ["dashboard-home.png", "livestream.png"] {
        let file = screenshots.0.join(name);
        assert!(is_png(&file), "no screenshot {}", file.display());
    }

    for peer in &mut peers {
        peer.child.kill().await.ok();
    }
}

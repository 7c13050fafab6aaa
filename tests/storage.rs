//! Uploads left unfinished by an earlier run (a crash, a restart while the
//! store was down) are found on disk and finished, against a real
//! S3-compatible server.

mod common;

use std::time::Duration;

use common::s3::S3Server;
use onair::outputs::hls::HlsJob;
use onair::outputs::{playlist, upload};

#[tokio::test]
async fn uploads_left_by_a_previous_run_are_finished() {
    let s3 = S3Server::start();
    let storage = s3.storage("resume").await;
    let recordings = tempfile::tempdir().unwrap();

    // An HLS output cut two segments; only the first was uploaded before the crash.
    let hls = recordings.path().join("hls").join("a-livestream");
    std::fs::create_dir_all(&hls).unwrap();
    std::fs::write(
        hls.join("upload.json"),
        r#"{"prefix": "hls/room/a-livestream", "segment_secs": 4}"#,
    )
    .unwrap();
    let segments = [
        playlist::Segment {
            name: "segment00000.ts".into(),
            duration: Duration::from_secs(4),
        },
        playlist::Segment {
            name: "segment00001.ts".into(),
            duration: Duration::from_millis(3200),
        },
    ];
    std::fs::write(
        hls.join("playlist.m3u8"),
        playlist::render(&segments, 4, false),
    )
    .unwrap();
    std::fs::write(hls.join("segment00001.ts"), b"second segment").unwrap();
    // A recording whose upload had begun.
    let mp4 = recordings.path().join("room-1.mp4");
    std::fs::write(&mp4, b"recording bytes").unwrap();
    std::fs::write(
        recordings.path().join("room-1.mp4.upload"),
        "recordings/room-1.mp4",
    )
    .unwrap();
    // A recording that was never meant to be uploaded stays.
    std::fs::write(recordings.path().join("other.mp4"), b"keep me").unwrap();

    let mut tasks = HlsJob::resume_all(&recordings.path().join("hls"), &storage.store);
    tasks.extend(upload::resume_all(recordings.path(), &storage.store));
    assert_eq!(tasks.len(), 2);
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .unwrap()
            .unwrap();
    }

    let store = &storage.store;
    assert_eq!(
        store
            .get("hls/room/a-livestream/segment00001.ts")
            .await
            .unwrap(),
        b"second segment"
    );
    let text = String::from_utf8(
        store
            .get("hls/room/a-livestream/playlist.m3u8")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(text, playlist::render(&segments, 4, true));
    assert_eq!(
        store.get("recordings/room-1.mp4").await.unwrap(),
        b"recording bytes"
    );
    assert!(
        !hls.exists() && !mp4.exists(),
        "finished uploads leave nothing behind"
    );
    assert!(!recordings.path().join("room-1.mp4.upload").exists());
    assert!(recordings.path().join("other.mp4").exists());
}

#[tokio::test]
async fn a_large_recording_goes_up_in_parts() {
    let s3 = S3Server::start();
    let storage = s3.storage("parts").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.mp4");
    // Above the 64 MiB single-request threshold: three parts.
    let bytes: Vec<u8> = (0..70 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let url = upload::upload_recording(&storage.store, &file, "big/recording.mp4", true)
        .await
        .unwrap();
    assert_eq!(url, "s3://parts/big/recording.mp4");
    assert!(storage.store.get("big/recording.mp4").await.unwrap() == bytes);
    assert!(!file.exists());
}

//! Lip-sync from sender reports: a flash and a beep made at the same instant
//! reach the composer 300 ms apart (audio late, as on a slower path); the
//! RTCP sender reports map both to the sender's wallclock, and the program
//! must show them together.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::media::{TestRoom, keep};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use onair::composer::{Composer, ProgramSettings, RoomFeed};
use onair::layout::{Canvas, LayoutTemplates};
use onair::livestream::{OutputSpec, OutputTarget};
use onair::sfu::{
    Codec, NtpTime, ParticipantInfo, ParticipantSid, RoomEvent, RtpPacket, TrackInfo, TrackSid,
    TrackSource,
};
use tokio::sync::mpsc;

const AUDIO_DELAY: Duration = Duration::from_millis(300);

/// A 6 s clip: black with a white flash at 3.0–3.2 s, silence with a 1 kHz beep at the same time.
fn make_clip(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("flash.mkv");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("color=c=black:s=320x180:r=30:d=6,drawbox=x=0:y=0:w=320:h=180:color=white:t=fill:enable='between(t,3,3.2)'")
        .args(["-f", "lavfi", "-i"])
        .arg("sine=f=1000:r=48000:d=6,volume='if(between(t,3,3.2),0.8,0)':eval=frame")
        .args(["-c:v", "libvpx", "-deadline", "realtime", "-b:v", "500k", "-g", "30", "-c:a", "libopus", "-ac", "2"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// RTP packets with their presentation time.
type Packets = Vec<(Duration, Vec<u8>)>;

/// The clip's video and audio, payloaded to RTP.
fn packetize(path: &std::path::Path) -> (Packets, Packets) {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! matroskademux name=d \
         d.video_0 ! queue ! rtpvp8pay pt=96 ssrc=11 mtu=1200 ! appsink name=video sync=false \
         d.audio_0 ! queue ! rtpopuspay pt=111 ssrc=22 ! appsink name=audio sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let collected: [Arc<Mutex<Packets>>; 2] = Default::default();
    for (name, store) in ["video", "audio"].iter().zip(&collected) {
        let sink = pipeline
            .by_name(name)
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let store = store.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().unwrap();
                    let pts = Duration::from_nanos(buffer.pts().unwrap().nseconds());
                    store
                        .lock()
                        .unwrap()
                        .push((pts, buffer.map_readable().unwrap().to_vec()));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    bus.timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Eos])
        .unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    let take = |i: usize| std::mem::take(&mut *collected[i].lock().unwrap());
    (take(0), take(1))
}

/// First time (s) the video is bright, and the first time the audio is loud.
fn flash_and_beep(path: &std::path::Path) -> (f64, f64) {
    let video = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", "scale=16:9,format=gray", "-f", "rawvideo", "-"])
        .output()
        .unwrap()
        .stdout;
    let frame = video
        .chunks_exact(16 * 9)
        .position(|f| f.iter().map(|&p| u32::from(p)).sum::<u32>() / 144 > 128)
        .unwrap();
    let audio = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
        .output()
        .unwrap()
        .stdout;
    let samples: Vec<f64> = audio
        .chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
        .collect();
    // The beep is mixed down with the room's silence; any clear tone counts.
    let window = samples
        .chunks(480)
        .position(|w| (w.iter().map(|s| s * s).sum::<f64>() / w.len() as f64).sqrt() > 0.02)
        .unwrap();
    (frame as f64 / 30.0, window as f64 * 0.01)
}

/// Plays the clip into a composer (audio arriving 300 ms late, with or
/// without sender reports) and returns beep time − flash time in the program.
async fn program_skew(with_reports: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (video, audio) = packetize(&make_clip(dir.path()));
    let output = dir.path().join("lipsync.mp4");
    let (room, room_rx) = mpsc::channel(8192);
    let (events_tx, mut events) = mpsc::channel(256);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let handle = TestRoom::default();
    let feed = RoomFeed {
        events: room_rx,
        handle: Arc::new(handle),
    };
    let spec = OutputSpec {
        id: uuid::Uuid::new_v4(),
        name: "rec".into(),
        target: OutputTarget::Mp4 {
            path: output.clone(),
        },
    };
    let settings = ProgramSettings::new(Canvas::new(640, 360), 30, 1500, "single-speaker");
    let composer = Composer::start(
        settings,
        Arc::new(LayoutTemplates::builtin()),
        vec![spec],
        feed,
        events_tx,
    )
    .unwrap();

    let participant = ParticipantSid("PA_lips".into());
    let track = |sid: &str, source, codec, pt| {
        TrackInfo::new(TrackSid(sid.into()), participant.clone(), source, codec, pt)
    };
    room.send(RoomEvent::ParticipantJoined(ParticipantInfo {
        sid: participant.clone(),
        identity: "lips".into(),
        name: "Lips".into(),
        metadata: String::new(),
        agent: false,
    }))
    .await
    .unwrap();
    room.send(RoomEvent::TrackPublished(track(
        "TR_v",
        TrackSource::Camera,
        Codec::Vp8,
        96,
    )))
    .await
    .unwrap();
    room.send(RoomEvent::TrackPublished(track(
        "TR_a",
        TrackSource::Microphone,
        Codec::Opus,
        111,
    )))
    .await
    .unwrap();

    // Sending order: video at its time, audio 300 ms late; a sender report
    // with each track's first packet of every half second.
    let sender_epoch = NtpTime::now();
    let mut timeline: Vec<(Duration, &str, Duration, Vec<u8>)> = Vec::new();
    timeline.extend(video.into_iter().map(|(pts, p)| (pts, "TR_v", pts, p)));
    timeline.extend(
        audio
            .into_iter()
            .map(|(pts, p)| (pts + AUDIO_DELAY, "TR_a", pts, p)),
    );
    timeline.sort_by_key(|(at, ..)| *at);
    let feeder = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let mut last_report = std::collections::HashMap::new();
        for (at, track, pts, data) in timeline {
            if let Some(wait) = (start + at).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let packet = RtpPacket::parse(&data, Instant::now()).unwrap();
            let rtp_time = packet.timestamp;
            room.blocking_send(RoomEvent::Rtp {
                track: TrackSid(track.into()),
                packet,
            })
            .unwrap();
            let half = pts.as_millis() / 500;
            if with_reports && last_report.insert(track, half) != Some(half) {
                let ntp = NtpTime(sender_epoch.0 + ((pts.as_nanos() as u64) << 32) / 1_000_000_000);
                room.blocking_send(RoomEvent::SenderReport {
                    track: TrackSid(track.into()),
                    ntp,
                    rtp_time,
                })
                .unwrap();
            }
        }
        room
    });
    let _room = feeder.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    composer.stop().await.unwrap();
    keep(&output);
    let (flash, beep) = flash_and_beep(&output);
    beep - flash
}

/// Takes turns: each test runs a real-time composer.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_reports_line_up_audio_and_video() {
    let _turn = SERIAL.lock().await;
    let skew = program_skew(true).await;
    assert!(
        skew.abs() < 0.1,
        "with sender reports, audio is {skew:+.3} s off the video"
    );
}

/// The measurement itself: without sender reports the 300 ms arrival gap
/// shows in the program, so the test above would catch broken lip-sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sender_reports_the_arrival_gap_shows() {
    let _turn = SERIAL.lock().await;
    let skew = program_skew(false).await;
    assert!(
        (0.2..0.4).contains(&skew),
        "without sender reports the skew is {skew:+.3} s"
    );
}

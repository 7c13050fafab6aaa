//! Track egress against real GStreamer publishers sending real RTP as room
//! events (no SFU): a VP8 camera into WebM, a VP9 camera into WebM, an Opus
//! microphone into Ogg and an H.264 camera into fragmented MP4, each probed
//! and decoded with ffprobe/ffmpeg; the end of the track reported as the
//! room closing; and the egress's refusals.

#[path = "common/media.rs"]
mod media;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use media::{Publisher, RED, TestRoom, duration, first_picture_type, keep, probe, stream};
use onair::composer::track_egress::{self, Container};
use onair::livestream::{OutputSpec, OutputTarget, RunEvent, RunHandle};
use onair::sfu::{
    Codec, Layer, ParticipantInfo, ParticipantSid, RoomEvent, RoomHandle, RoomSubscription,
    RtpPacket, TrackInfo, TrackSid, TrackSource,
};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Each test runs real-time encoders; on a small machine they take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a recording runs once bytes reach the file.
const RECORD: Duration = Duration::from_secs(4);
/// Generous: a loaded 2-core machine may take a while to start encoders.
const LIVE_DEADLINE: Duration = Duration::from_secs(30);

fn file_output(path: &Path) -> OutputSpec {
    OutputSpec {
        id: Uuid::new_v4(),
        name: "track".into(),
        target: OutputTarget::Mp4 {
            path: path.to_path_buf(),
        },
    }
}

/// A room feed the way the SFU hands it out, and the egress recording `track` from it.
fn start(
    room_rx: mpsc::Receiver<RoomEvent>,
    handle: &(impl RoomHandle + Clone + 'static),
    track: &TrackSid,
    output: &OutputSpec,
) -> RunHandle {
    let subscription = RoomSubscription {
        events: room_rx,
        handle: Arc::new(handle.clone()),
    };
    track_egress::start(subscription, track.clone(), output.clone()).expect("egress starts")
}

/// Waits for the output to go live; every event seen on the way is returned.
async fn wait_for_live(run: &mut RunHandle, output: Uuid) -> Vec<RunEvent> {
    let deadline = tokio::time::Instant::now() + LIVE_DEADLINE;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, run.events.recv()).await {
            Ok(Some(RunEvent::OutputLive { output: id })) if id == output => return seen,
            Ok(Some(RunEvent::Ended { error })) => panic!("egress ended: {error:?}"),
            Ok(Some(event)) => seen.push(event),
            Ok(None) => panic!("egress events closed before going live"),
            Err(_) => panic!("no OutputLive within {LIVE_DEADLINE:?}; saw {seen:?}"),
        }
    }
}

/// Collects the events of the next `span`, failing on an end.
async fn events_for(run: &mut RunHandle, span: Duration) -> Vec<RunEvent> {
    let until = tokio::time::Instant::now() + span;
    let mut seen = Vec::new();
    while let Ok(event) = tokio::time::timeout_at(until, run.events.recv()).await {
        match event {
            Some(RunEvent::Ended { error }) => panic!("egress ended: {error:?}"),
            Some(event) => seen.push(event),
            None => break,
        }
    }
    seen
}

/// Waits for `RoomClosed`.
async fn wait_for_room_closed(run: &mut RunHandle) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, run.events.recv()).await {
            Ok(Some(RunEvent::RoomClosed)) => return,
            Ok(Some(RunEvent::Ended { error })) => panic!("egress ended: {error:?}"),
            Ok(Some(_)) => {}
            other => panic!("no RoomClosed: {other:?}"),
        }
    }
}

/// Records `track` for [`RECORD`] after it goes live and stops; checks the
/// events and the report, and returns the file's probe.
async fn record(
    room_rx: mpsc::Receiver<RoomEvent>,
    handle: &TestRoom,
    track: &TrackSid,
    path: &Path,
) -> serde_json::Value {
    let output = file_output(path);
    let mut run = start(room_rx, handle, track, &output);
    wait_for_live(&mut run, output.id).await;
    let during = events_for(&mut run, RECORD).await;
    let stopped = Instant::now();
    let report = run.control.stop().await.expect("stop");
    eprintln!("{}: stop took {:?}", path.display(), stopped.elapsed());
    assert!(
        during
            .iter()
            .any(|e| matches!(e, RunEvent::OutputBytes { output: id, bytes } if *id == output.id && *bytes > 0)),
        "no OutputBytes while recording: {during:?}"
    );
    let file_len = std::fs::metadata(path).expect("the file exists").len();
    assert_eq!(report.output_bytes.len(), 1, "{report:?}");
    let (id, bytes) = report.output_bytes[0];
    assert_eq!(id, output.id);
    // Muxers rewrite their headers at the end: at least every byte of the
    // file was counted. (A solid colour compresses to a few kB.)
    assert!(
        bytes >= file_len && file_len > 2_000,
        "{bytes} bytes counted, file of {file_len}"
    );
    keep(path);
    decodes_cleanly(path);
    probe(path)
}

/// ffmpeg decodes the whole file without a complaint.
fn decodes_cleanly(path: &Path) {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "decoding {}: {stderr}",
        path.display()
    );
}

fn only_stream<'a>(probe: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    let streams = probe["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 1, "one track, one stream: {probe}");
    stream(probe, kind).unwrap_or_else(|| panic!("a {kind} stream: {probe}"))
}

fn check_video(path: &Path, probe: &serde_json::Value, codec: &str, size: (i64, i64)) {
    let video = only_stream(probe, "video");
    assert_eq!(video["codec_name"], codec, "{probe}");
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(size.0), Some(size.1)),
        "{probe}"
    );
    let seconds = duration(probe);
    assert!(seconds >= 3.0, "{} lasts {seconds} s", path.display());
    assert_eq!(
        first_picture_type(path).as_deref(),
        Some("I"),
        "{} starts on a keyframe",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vp8_camera_is_recorded_to_webm() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!(
        "camera.{}",
        Container::for_codec(Codec::Vp8).unwrap().extension()
    ));
    let (room, room_rx) = mpsc::channel(4096);
    let handle = TestRoom::default();
    // Announced before the egress subscribes, as the SFU replays the room.
    let publisher = Publisher::join(&room, &handle, 0, "Ada", RED, Codec::Vp8, 440).await;
    let probe = record(room_rx, &handle, &publisher.video.sid, &path).await;
    check_video(&path, &probe, "vp8", (640, 360));
    let requests = handle.keyframe_requests.lock().unwrap().clone();
    assert!(
        requests.get(&publisher.video.sid).copied().unwrap_or(0) >= 1,
        "the egress asked for a keyframe: {requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h264_camera_is_recorded_to_fragmented_mp4() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camera.mp4");
    assert_eq!(Container::for_codec(Codec::H264), Some(Container::Mp4));
    let (room, room_rx) = mpsc::channel(4096);
    let handle = TestRoom::default();
    let publisher = Publisher::join(&room, &handle, 1, "Grace", RED, Codec::H264, 440).await;
    let probe = record(room_rx, &handle, &publisher.video.sid, &path).await;
    check_video(&path, &probe, "h264", (640, 360));
    let data = std::fs::read(&path).unwrap();
    let fragments = data.windows(4).filter(|w| w == b"moof").count();
    assert!(
        fragments >= 3,
        "{fragments} fragments in a 4 s fragmented MP4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opus_microphone_is_recorded_to_ogg_until_its_participant_leaves() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mic.ogg");
    assert_eq!(Container::for_codec(Codec::Opus), Some(Container::Ogg));
    let (room, room_rx) = mpsc::channel(4096);
    let handle = TestRoom::default();
    let output = file_output(&path);
    // Subscribed before anyone joins: the track is published later.
    let mut run = {
        let track = TrackSid("TR_a2".into());
        start(room_rx, &handle, &track, &output)
    };
    let publisher = Publisher::join(&room, &handle, 2, "Alan", RED, Codec::Vp8, 440).await;
    assert_eq!(publisher.audio.sid.as_str(), "TR_a2");
    wait_for_live(&mut run, output.id).await;
    events_for(&mut run, RECORD).await;
    let audio = publisher.audio.sid.clone();
    publisher.leave(&room).await;
    wait_for_room_closed(&mut run).await;
    let report = run.control.stop().await.expect("stop");
    assert!(report.output_bytes[0].1 > 10_000, "{report:?}");
    keep(&path);
    decodes_cleanly(&path);
    let probe = probe(&path);
    let stream = only_stream(&probe, "audio");
    assert_eq!(stream["codec_name"], "opus", "{probe}");
    assert_eq!(stream["sample_rate"], "48000", "{probe}");
    let seconds = duration(&probe);
    assert!(seconds >= 3.0, "the Ogg lasts {seconds} s");
    // Audio needs no keyframe: nothing was asked of the publisher for it.
    let requests = handle.keyframe_requests.lock().unwrap().clone();
    assert!(!requests.contains_key(&audio), "{requests:?}");
}

/// Passes keyframe requests to one encoder, and counts them.
#[derive(Clone, Default)]
struct EncoderRoom {
    encoder: Arc<std::sync::Mutex<Option<gst::Element>>>,
    requests: Arc<AtomicUsize>,
}

impl RoomHandle for EncoderRoom {
    fn request_keyframe(&self, _track: &TrackSid) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(encoder) = self.encoder.lock().unwrap().as_ref() {
            let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            encoder.static_pad("src").unwrap().send_event(event);
        }
    }
    fn select_layer(&self, _track: &TrackSid, _layer: Layer) {}
}

/// A moving camera whose size can change mid-stream (as WebRTC senders
/// adapt theirs), in any video codec (the shared test publisher has no VP9).
struct Camera {
    info: TrackInfo,
    pipeline: gst::Pipeline,
}

impl Camera {
    async fn publish(
        room: &mpsc::Sender<RoomEvent>,
        handle: &EncoderRoom,
        codec: Codec,
        (width, height): (u32, u32),
    ) -> Camera {
        gst::init().unwrap();
        let participant = ParticipantInfo {
            sid: ParticipantSid("PA_camera".into()),
            identity: "camera".into(),
            name: "Camera".into(),
            metadata: String::new(),
            agent: false,
        };
        let (pt, encoder) = match codec {
            Codec::Vp8 => (
                96,
                "vp8enc name=venc deadline=1 keyframe-max-dist=60 ! rtpvp8pay",
            ),
            Codec::Vp9 => (
                98,
                "vp9enc name=venc deadline=1 cpu-used=8 keyframe-max-dist=60 ! rtpvp9pay",
            ),
            Codec::H264 => (
                102,
                "x264enc name=venc tune=zerolatency speed-preset=ultrafast key-int-max=60 \
                 ! video/x-h264,profile=constrained-baseline \
                 ! rtph264pay config-interval=-1 aggregate-mode=zero-latency",
            ),
            other => panic!("no camera for {other:?}"),
        };
        let info = TrackInfo::new(
            TrackSid("TR_camera".into()),
            participant.sid.clone(),
            TrackSource::Camera,
            codec,
            pt,
        );
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc is-live=true pattern=ball ! videoscale \
             ! capsfilter name=size caps=video/x-raw,width={width},height={height},framerate=30/1 \
             ! {encoder} pt={pt} ssrc=4242 mtu=1200 ! appsink name=rtp emit-signals=true sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        *handle.encoder.lock().unwrap() = pipeline.by_name("venc");
        room.send(RoomEvent::ParticipantJoined(participant))
            .await
            .unwrap();
        room.send(RoomEvent::TrackPublished(info.clone()))
            .await
            .unwrap();
        let sink = pipeline
            .by_name("rtp")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let (room, track) = (room.clone(), info.sid.clone());
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    if let Some(packet) = RtpPacket::parse(&map, Instant::now()) {
                        let _ = room.blocking_send(RoomEvent::Rtp {
                            track: track.clone(),
                            packet,
                        });
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline.set_state(gst::State::Playing).unwrap();
        Camera { info, pipeline }
    }

    fn resize(&self, width: u32, height: u32) {
        let caps = gst::Caps::builder("video/x-raw")
            .field("width", width as i32)
            .field("height", height as i32)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        self.pipeline
            .by_name("size")
            .unwrap()
            .set_property("caps", caps);
    }

    fn stop(&self) {
        self.pipeline.set_state(gst::State::Null).unwrap();
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vp9_camera_is_recorded_to_webm_until_unpublished() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vp9.webm");
    assert_eq!(Container::for_codec(Codec::Vp9), Some(Container::WebM));
    let (room, room_rx) = mpsc::channel(4096);
    let handle = EncoderRoom::default();
    let camera = Camera::publish(&room, &handle, Codec::Vp9, (320, 240)).await;
    let output = file_output(&path);
    let mut run = start(room_rx, &handle, &camera.info.sid, &output);
    wait_for_live(&mut run, output.id).await;
    events_for(&mut run, RECORD).await;
    camera.stop();
    room.send(RoomEvent::TrackUnpublished {
        track: camera.info.sid.clone(),
    })
    .await
    .unwrap();
    wait_for_room_closed(&mut run).await;
    run.control.stop().await.expect("stop");
    keep(&path);
    decodes_cleanly(&path);
    let probe = probe(&path);
    check_video(&path, &probe, "vp9", (320, 240));
    assert!(handle.requests.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_egress_without_its_track_refuses_what_it_cannot_do_and_stops_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("nothing/never.webm");
    let (room, room_rx) = mpsc::channel(16);
    let handle = TestRoom::default();
    let output = file_output(&path);
    let mut run = start(room_rx, &handle, &TrackSid("TR_absent".into()), &output);

    let error = run.control.set_layout("grid").await.unwrap_err();
    assert!(error.0.contains("no layout"), "{error}");
    assert!(run.control.add_output(output.clone()).await.is_err());
    assert!(run.control.remove_output(output.id).await.is_err());

    room.send(RoomEvent::RoomClosed).await.unwrap();
    wait_for_room_closed(&mut run).await;
    let report = run.control.stop().await.expect("stop");
    assert_eq!(report.output_bytes, vec![(output.id, 0)]);
    assert!(!path.exists(), "nothing was recorded");
    // Stopped once is stopped.
    assert!(run.control.stop().await.is_err());

    // Only files are written.
    let (_room, room_rx) = mpsc::channel(16);
    let rtmp = OutputSpec {
        id: Uuid::new_v4(),
        name: "rtmp".into(),
        target: OutputTarget::Rtmp {
            url: onair::config::Secret::new("rtmp://127.0.0.1/live/key"),
        },
    };
    let subscription = RoomSubscription {
        events: room_rx,
        handle: Arc::new(handle.clone()),
    };
    assert!(track_egress::start(subscription, TrackSid("TR_x".into()), rtmp).is_err());
}

/// A sender adapting its resolution mid-recording: the recording goes on.
async fn resolution_change(codec: Codec, name: &str) {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let (room, room_rx) = mpsc::channel(4096);
    let handle = EncoderRoom::default();
    let camera = Camera::publish(&room, &handle, codec, (640, 360)).await;
    let output = file_output(&path);
    let mut run = start(room_rx, &handle, &camera.info.sid, &output);
    wait_for_live(&mut run, output.id).await;
    events_for(&mut run, RECORD / 2).await;
    camera.resize(320, 180);
    events_for(&mut run, RECORD / 2).await;
    run.control.stop().await.expect("stop");
    camera.stop();
    keep(&path);
    let probe = probe(&path);
    let seconds = duration(&probe);
    assert!(seconds >= 3.0, "{} lasts {seconds} s", path.display());
    decodes_cleanly(&path);
    assert_eq!(
        decoded_sizes(&path),
        [(640, 360), (320, 180)],
        "{}: frames before and after the change",
        path.display()
    );
}

/// The sizes of the decoded video frames, in order, each once per run.
fn decoded_sizes(path: &Path) -> Vec<(u32, u32)> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "frame=width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let mut sizes: Vec<(u32, u32)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',').map(str::trim);
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect();
    sizes.dedup();
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vp8_resolution_change_keeps_recording() {
    resolution_change(Codec::Vp8, "resize.webm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h264_resolution_change_keeps_recording() {
    resolution_change(Codec::H264, "resize.mp4").await;
}

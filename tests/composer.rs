//! The composer against real GStreamer pipelines fed real RTP: four coloured
//! participants into a gallery MP4; people joining, leaving and freezing
//! mid-recording; and a real RTMP server receiving the program.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::media::*;
use common::rtmp::{NginxRtmp, TlsFront};
use common::s3::S3Server;
use onair::composer::{Composer, ProgramSettings, RoomFeed};
use onair::layout::{
    self, Canvas, LayoutName, LayoutTemplates, ParticipantView, Region, RoomView, VideoView,
};
use onair::livestream::{OutputSpec, OutputTarget, ProgramMedia, RunEvent};
use onair::outputs::hls::HlsJob;
use onair::outputs::playlist;
use onair::sfu::{Codec, RoomEvent};
use onair::storage::Storage;
use tokio::sync::mpsc;
use uuid::Uuid;

const CANVAS: Canvas = Canvas::new(1280, 720);

/// Each test runs several encoders and a composer in real time; on a small
/// machine they would starve each other, so they take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const BACKGROUND: (u8, u8, u8) = (0x32, 0x32, 0x32);

struct Harness {
    composer: Composer,
    room: mpsc::Sender<RoomEvent>,
    handle: TestRoom,
    events: mpsc::Receiver<RunEvent>,
    started: Instant,
}

fn start(layout: &str, outputs: Vec<OutputSpec>) -> Harness {
    start_with(ProgramSettings::new(CANVAS, 30, 3000, layout), outputs)
}

fn start_with(settings: ProgramSettings, outputs: Vec<OutputSpec>) -> Harness {
    let (room, room_rx) = mpsc::channel(4096);
    let (events_tx, events) = mpsc::channel(256);
    let handle = TestRoom::default();
    let feed = RoomFeed {
        events: room_rx,
        handle: Arc::new(handle.clone()),
    };
    let layouts = Arc::new(LayoutTemplates::builtin());
    let composer =
        Composer::start(settings, layouts, outputs, feed, events_tx).expect("composer starts");
    Harness {
        composer,
        room,
        handle,
        events,
        started: Instant::now(),
    }
}

fn mp4_output(path: &std::path::Path) -> OutputSpec {
    OutputSpec {
        id: Uuid::new_v4(),
        name: "recording".into(),
        target: OutputTarget::Mp4 {
            path: path.to_path_buf(),
        },
    }
}

async fn sleep_until(started: Instant, seconds: f64) {
    let at = started + Duration::from_secs_f64(seconds);
    tokio::time::sleep_until(at.into()).await;
}

/// The regions the gallery layout promises for these publishers, in join order.
fn expected_regions(publishers: &[&Publisher]) -> Vec<Region> {
    let room = RoomView {
        participants: publishers
            .iter()
            .map(|p| ParticipantView {
                sid: p.info.sid.0.clone(),
                identity: p.info.identity.clone(),
                name: p.info.name.clone(),
                camera: Some(VideoView {
                    track_sid: p.video.sid.0.clone(),
                    width: 640,
                    height: 360,
                    muted: false,
                }),
                screen_share: None,
            })
            .collect(),
        active_speakers: Vec::new(),
    };
    layout::compose(LayoutName::Gallery, CANVAS, &room, None).regions
}

/// The colour at the middle of each region (above the name label).
fn assert_colours(frame: &Frame, regions: &[Region], colours: &[(u8, u8, u8)], context: &str) {
    for (region, colour) in regions.iter().zip(colours) {
        let x = region.rect.x + region.rect.w as i32 / 2;
        let y = region.rect.y + region.rect.h as i32 / 3;
        assert!(
            frame.is_near(x, y, *colour, 40),
            "{context}: region of {} at ({x},{y}) is {:?}, expected {colour:?}",
            region.participant_sid,
            frame.pixel(x, y)
        );
    }
}

fn assert_h264_aac(probe: &serde_json::Value, width: i64, height: i64) {
    let video = stream(probe, "video").expect("a video stream");
    assert_eq!(video["codec_name"], "h264", "{probe}");
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(width), Some(height))
    );
    // Tagged with the colour space it is in (BT.601, as WebRTC senders encode),
    // so players do not guess BT.709 from the size.
    assert_eq!(video["color_space"], "smpte170m", "{probe}");
    let audio = stream(probe, "audio").expect("an audio stream");
    assert_eq!(audio["codec_name"], "aac", "{probe}");
    assert_eq!(audio["sample_rate"], "48000");
}

async fn wait_for_live(events: &mut mpsc::Receiver<RunEvent>, output: Uuid) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(RunEvent::OutputLive { output: id })) if id == output => return,
            Ok(Some(RunEvent::Ended { error })) => panic!("program ended: {error:?}"),
            Ok(Some(_)) => {}
            _ => panic!("output {output} never went live"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_participants_compose_into_a_gallery_mp4() {
    // Real-time tests take turns: this one's four encoders running beside
    // another test's program starved its retry deadlines on 2 cores.
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gallery.mp4");
    let output = mp4_output(&path);
    let mut h = start("gallery", vec![output.clone()]);
    let colours = [RED, GREEN, BLUE, YELLOW];
    let codecs = [Codec::Vp8, Codec::H264, Codec::Vp8, Codec::H264];
    let names = [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        "Edsger Dijkstra",
    ];
    let mut publishers = Vec::new();
    for i in 0..4 {
        publishers.push(
            Publisher::join(
                &h.room,
                &h.handle,
                i as u32,
                names[i],
                colours[i],
                codecs[i],
                300 + 100 * i as u32,
            )
            .await,
        );
    }
    wait_for_live(&mut h.events, output.id).await;
    sleep_until(h.started, 5.0).await;
    let report = h.composer.stop().await.unwrap();
    let bytes = report
        .output_bytes
        .iter()
        .find(|(id, _)| *id == output.id)
        .unwrap()
        .1;
    assert!(bytes > 100_000, "MP4 bytes: {bytes}");

    keep(&path);
    let probe = probe(&path);
    assert_h264_aac(&probe, 1280, 720);
    let video = stream(&probe, "video").unwrap();
    assert_eq!(video["avg_frame_rate"], "30/1", "{video}");
    let seconds = duration(&probe);
    assert!((4.5..=5.5).contains(&seconds), "duration {seconds}");

    let frame = Frame::at(&path, 4.0, 1280, 720);
    let refs: Vec<&Publisher> = publishers.iter().collect();
    let regions = expected_regions(&refs);
    assert_eq!(regions.len(), 4);
    assert_colours(&frame, &regions, &colours, "4 people at 4 s");
    assert!(
        frame.is_near(4, 4, BACKGROUND, 12),
        "background is {:?}",
        frame.pixel(4, 4)
    );
    assert!(
        frame.is_near(640, 360, BACKGROUND, 12),
        "between tiles is {:?}",
        frame.pixel(640, 360)
    );
    let rms = audio_rms(&path, 2.0, 2.0);
    assert!(rms > 0.02, "audio is silent (rms {rms})");
    // Every video input asked its publisher for a keyframe when it joined.
    let requests = h.handle.keyframe_requests.lock().unwrap().clone();
    for publisher in &publishers {
        assert!(
            requests.get(&publisher.video.sid).copied().unwrap_or(0) >= 1,
            "{requests:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_leaves_and_frozen_inputs_never_stall_the_program() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dynamic.mp4");
    let output = mp4_output(&path);
    let mut h = start("gallery", vec![output.clone()]);
    let colours = [RED, GREEN, BLUE, YELLOW, MAGENTA];
    let mut publishers = Vec::new();
    for (i, colour) in colours.iter().take(4).enumerate() {
        publishers.push(
            Publisher::join(
                &h.room,
                &h.handle,
                i as u32,
                &format!("Person {i}"),
                *colour,
                Codec::Vp8,
                440,
            )
            .await,
        );
    }
    wait_for_live(&mut h.events, output.id).await;
    sleep_until(h.started, 2.0).await;
    let fifth = Publisher::join(
        &h.room,
        &h.handle,
        4,
        "Late Comer",
        MAGENTA,
        Codec::H264,
        660,
    )
    .await;
    sleep_until(h.started, 3.0).await;
    publishers[1].go_silent(); // stays in the room, sends nothing more
    sleep_until(h.started, 3.8).await;
    let frame_with_five = {
        let all: Vec<&Publisher> = publishers.iter().chain(std::iter::once(&fifth)).collect();
        expected_regions(&all)
    };
    sleep_until(h.started, 4.5).await;
    let first = publishers.remove(0);
    first.leave(&h.room).await;
    sleep_until(h.started, 6.5).await;
    h.composer.stop().await.unwrap();

    keep(&path);
    let times = video_packet_times(&path);
    assert!(times.len() >= 170, "only {} frames in 6.5 s", times.len());
    let worst = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(
        worst <= 0.1,
        "largest gap between program frames: {worst:.3} s"
    );

    // At 4.0 s: five people. The leave at 4.5 s shows from about 4.3 s of
    // program time (frames are composed 200 ms behind); the frozen one may
    // show its last frame or nothing.
    let frame = Frame::at(&path, 4.0, 1280, 720);
    assert_eq!(frame_with_five.len(), 5);
    let shown: Vec<usize> = vec![0, 2, 3, 4];
    let regions: Vec<Region> = shown.iter().map(|&i| frame_with_five[i].clone()).collect();
    let expected: Vec<(u8, u8, u8)> = shown.iter().map(|&i| colours[i]).collect();
    assert_colours(&frame, &regions, &expected, "five people at 4.0 s");

    // At 6 s: the first has left; the layout is the gallery of the remaining four.
    let remaining: Vec<&Publisher> = publishers.iter().chain(std::iter::once(&fifth)).collect();
    let after = expected_regions(&remaining);
    let frame = Frame::at(&path, 6.0, 1280, 720);
    let regions = [after[1].clone(), after[2].clone(), after[3].clone()];
    assert_colours(
        &frame,
        &regions,
        &[BLUE, YELLOW, MAGENTA],
        "after a leave at 6 s",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_reaches_a_real_rtmp_server() {
    let _turn = SERIAL.lock().await;
    let nginx = NginxRtmp::start();
    let dir = tempfile::tempdir().unwrap();
    let mp4 = mp4_output(&dir.path().join("rtmp.mp4"));
    let rtmp = OutputSpec {
        id: Uuid::new_v4(),
        name: "local nginx".into(),
        target: OutputTarget::Rtmp {
            url: onair::config::Secret::new(nginx.url("program")),
        },
    };
    let mut h = start("active-speaker", vec![mp4, rtmp.clone()]);
    let _a = Publisher::join(&h.room, &h.handle, 0, "Speaker One", RED, Codec::Vp8, 440).await;
    let _b = Publisher::join(&h.room, &h.handle, 1, "Speaker Two", BLUE, Codec::H264, 550).await;
    wait_for_live(&mut h.events, rtmp.id).await;
    sleep_until(h.started, 4.0).await;
    h.composer.set_layout("grid").await.unwrap();
    assert!(h.composer.set_layout("nonsense").await.is_err());
    sleep_until(h.started, 5.0).await;
    h.composer.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // nginx closes the recording

    let recording = nginx.recording("program");
    keep(&recording);
    let probe = probe(&recording);
    assert_h264_aac(&probe, 1280, 720);
    let seconds = duration(&probe);
    assert!(seconds > 3.0, "RTMP recording is {seconds} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_room_shows_the_background_image_and_an_unreachable_destination_fails_alone() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mp4");
    let mp4 = mp4_output(&path);
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = OutputSpec {
        id: Uuid::new_v4(),
        name: "nowhere".into(),
        target: OutputTarget::Rtmp {
            url: onair::config::Secret::new(format!("rtmp://127.0.0.1:{closed_port}/live/key")),
        },
    };
    // A background image (red, 200×100) drawn at the top-left over the colour.
    let image = dir.path().join("background.png");
    let mut picture = onair::render::RgbaImage::new(200, 100);
    picture
        .data
        .chunks_exact_mut(4)
        .for_each(|p| p.copy_from_slice(&[200, 20, 20, 255]));
    std::fs::write(&image, picture.encode_png().unwrap()).unwrap();
    let (room, room_rx) = mpsc::channel(16);
    let (events_tx, events) = mpsc::channel(256);
    let handle = TestRoom::default();
    let mut settings = ProgramSettings::new(CANVAS, 30, 3000, "gallery");
    settings.background_image = Some(image);
    let feed = RoomFeed {
        events: room_rx,
        handle: Arc::new(handle.clone()),
    };
    let layouts = Arc::new(LayoutTemplates::builtin());
    let outputs = vec![mp4.clone(), dead.clone()];
    let composer = Composer::start(settings, layouts, outputs, feed, events_tx).unwrap();
    let mut h = Harness {
        composer,
        room,
        handle,
        events,
        started: Instant::now(),
    };
    let mut failed = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
        if let RunEvent::OutputFailed { output, error } = event {
            assert_eq!(output, dead.id);
            failed = Some(error);
            break;
        }
    }
    let error = failed.expect("the unreachable destination reported a failure");
    assert!(error.contains("nowhere"), "{error}");
    sleep_until(h.started, 3.0).await;
    h.composer.stop().await.unwrap();
    let probe = probe(&path);
    assert_h264_aac(&probe, 1280, 720);
    assert!(duration(&probe) > 2.5);
    let frame = Frame::at(&path, 2.0, 1280, 720);
    assert!(
        frame.is_near(640, 360, BACKGROUND, 12),
        "{:?}",
        frame.pixel(640, 360)
    );
    assert!(
        frame.is_near(100, 50, (200, 20, 20), 30),
        "image: {:?}",
        frame.pixel(100, 50)
    );
    assert!(
        frame.is_near(300, 50, BACKGROUND, 12),
        "beside the image: {:?}",
        frame.pixel(300, 50)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_layout_template_keeps_the_last_scene_on_air() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken-layout.mp4");
    let output = mp4_output(&path);
    let mut layouts = LayoutTemplates::builtin();
    // Parses, but renders nonsense once someone is in the room.
    layouts
        .add(
            "layouts/broken.tera",
            "{% if participants | length > 0 %}not json{% else %}{\"regions\": []}{% endif %}",
        )
        .unwrap();
    let (room, room_rx) = mpsc::channel(4096);
    let (events_tx, mut events) = mpsc::channel(256);
    let handle = TestRoom::default();
    let feed = RoomFeed {
        events: room_rx,
        handle: Arc::new(handle.clone()),
    };
    let settings = ProgramSettings::new(CANVAS, 30, 3000, "gallery");
    let composer = Composer::start(
        settings,
        Arc::new(layouts),
        vec![output.clone()],
        feed,
        events_tx,
    )
    .unwrap();
    let started = Instant::now();
    let publisher = Publisher::join(&room, &handle, 0, "Still Here", RED, Codec::Vp8, 440).await;
    wait_for_live(&mut events, output.id).await;
    sleep_until(started, 2.0).await;
    composer.set_layout("broken").await.unwrap();
    let frames_at_switch = composer
        .stats()
        .program_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    sleep_until(started, 4.0).await;
    let frames_later = composer
        .stats()
        .program_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        frames_later >= frames_at_switch + 50,
        "program stalled: {frames_at_switch} → {frames_later}"
    );
    composer.stop().await.unwrap();
    let regions = expected_regions(&[&publisher]);
    let frame = Frame::at(&path, 3.5, 1280, 720);
    assert_colours(&frame, &regions, &[RED], "the gallery scene stays on air");
}

/// The next run event `want` accepts, within `within`.
async fn next_event(
    events: &mut mpsc::Receiver<RunEvent>,
    within: Duration,
    want: impl Fn(&RunEvent) -> bool,
) -> RunEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) if want(&event) => return event,
            Ok(Some(RunEvent::Ended { error })) => panic!("program ended: {error:?}"),
            Ok(Some(_)) => {}
            _ => panic!("no such event within {within:?}"),
        }
    }
}

/// One RTMP destination per server (`destination-{n}`), to its `program` stream.
fn rtmp_outputs(servers: &[NginxRtmp]) -> Vec<OutputSpec> {
    servers
        .iter()
        .enumerate()
        .map(|(n, server)| OutputSpec {
            id: Uuid::new_v4(),
            name: format!("destination-{n}"),
            target: OutputTarget::Rtmp {
                url: onair::config::Secret::new(server.url("program")),
            },
        })
        .collect()
}

/// Waits until every one of `specs` is live, in whatever order they get there.
async fn wait_for_all_live(events: &mut mpsc::Receiver<RunEvent>, specs: &[OutputSpec]) {
    let mut waiting: Vec<Uuid> = specs.iter().map(|s| s.id).collect();
    while !waiting.is_empty() {
        if let RunEvent::OutputLive { output } = next_event(events, Duration::from_secs(10), |e| {
            matches!(e, RunEvent::OutputLive { .. })
        })
        .await
        {
            waiting.retain(|id| *id != output);
        }
    }
}

/// The longest pause between consecutive video packets of a recording.
fn longest_gap(path: &std::path::Path) -> f64 {
    let times = video_packet_times(path);
    assert!(
        times.len() > 100,
        "{} has {} video packets",
        path.display(),
        times.len()
    );
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_destination_is_retried_while_the_others_keep_receiving() {
    let _turn = SERIAL.lock().await;
    let mut servers = [NginxRtmp::start(), NginxRtmp::start(), NginxRtmp::start()];
    let specs = rtmp_outputs(&servers);
    let mut h = start("gallery", specs.clone());
    let _a = Publisher::join(&h.room, &h.handle, 0, "One", RED, Codec::Vp8, 440).await;
    let _b = Publisher::join(&h.room, &h.handle, 1, "Two", BLUE, Codec::Vp8, 550).await;
    wait_for_all_live(&mut h.events, &specs).await;
    sleep_until(h.started, 3.0).await;

    // The second platform goes down: that destination is retried, alone.
    servers[1].kill();
    let down = specs[1].id;
    next_event(
        &mut h.events,
        Duration::from_secs(10),
        |e| matches!(e, RunEvent::OutputRetrying { output, .. } if *output == down),
    )
    .await;
    sleep_until(h.started, 6.0).await;
    servers[1].restart();
    let restarted = Instant::now();
    next_event(
        &mut h.events,
        Duration::from_secs(10),
        |e| matches!(e, RunEvent::OutputLive { output } if *output == down),
    )
    .await;
    let back_after = restarted.elapsed();
    assert!(
        back_after < Duration::from_secs(5),
        "live again only after {back_after:?}"
    );
    sleep_until(h.started, 10.0).await;
    h.composer.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // nginx closes the recordings

    for n in [0, 2] {
        let recording = servers[n].recording("program");
        keep(&recording);
        let gap = longest_gap(&recording);
        assert!(
            gap < 0.5,
            "destination {n} had a {gap:.2} s gap while another was down"
        );
        assert!(duration(&probe(&recording)) > 8.0);
    }
    // The restarted destination received the program again.
    let again = servers[1].recording("program");
    assert_h264_aac(&probe(&again), 1280, 720);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_stops_taking_data_is_retried() {
    let _turn = SERIAL.lock().await;
    let servers = [NginxRtmp::start(), NginxRtmp::start()];
    let specs = rtmp_outputs(&servers);
    // Noise keeps the encoder at its full bitrate, as real cameras do.
    let mut h = start_with(
        ProgramSettings::new(CANVAS, 30, 4000, "gallery"),
        specs.clone(),
    );
    let _noise = Publisher::join_noisy(&h.room, &h.handle, 0, Codec::Vp8).await;
    wait_for_all_live(&mut h.events, &specs).await;
    sleep_until(h.started, 3.0).await;

    // The first server hangs: its connection stays open, nothing is read,
    // no error ever comes. The stall is noticed and the destination retried.
    servers[0].freeze();
    let frozen = Instant::now();
    let hung = specs[0].id;
    let event = next_event(
        &mut h.events,
        Duration::from_secs(60),
        |e| matches!(e, RunEvent::OutputRetrying { output, .. } if *output == hung),
    )
    .await;
    let detected_after = frozen.elapsed();
    // rtmp2sink's socket timeout (5 s) fires once the kernel's buffers are full.
    assert!(
        matches!(&event, RunEvent::OutputRetrying { error, .. } if error.contains("timed out")),
        "{event:?}"
    );
    assert!(
        detected_after < Duration::from_secs(30),
        "noticed after {detected_after:?}"
    );
    servers[0].thaw();
    next_event(
        &mut h.events,
        Duration::from_secs(15),
        |e| matches!(e, RunEvent::OutputLive { output } if *output == hung),
    )
    .await;
    let total = h.started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.composer.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!("stall noticed {detected_after:?} after the freeze; live again at {total:.1} s");

    // The other destination never noticed.
    let steady = servers[1].recording("program");
    keep(&steady);
    let gap = longest_gap(&steady);
    assert!(gap < 0.5, "the healthy destination had a {gap:.2} s gap");
    assert!(duration(&probe(&steady)) > total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_added_and_removed_while_live_leave_the_others_alone() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("steady.mp4");
    let nginx = NginxRtmp::start();
    let rtmp = |key: &str| OutputSpec {
        id: Uuid::new_v4(),
        name: key.into(),
        target: OutputTarget::Rtmp {
            url: onair::config::Secret::new(nginx.url(key)),
        },
    };
    let (first, added) = (rtmp("first"), rtmp("added"));
    let mut h = start("gallery", vec![mp4_output(&recording), first.clone()]);
    let _a = Publisher::join(&h.room, &h.handle, 0, "One", RED, Codec::Vp8, 440).await;
    wait_for_live(&mut h.events, first.id).await;
    sleep_until(h.started, 3.0).await;

    h.composer.add_output(added.clone()).await.unwrap();
    let added_at = Instant::now();
    wait_for_live(&mut h.events, added.id).await;
    assert!(
        added_at.elapsed() < Duration::from_secs(3),
        "the added destination took {:?}",
        added_at.elapsed()
    );
    sleep_until(h.started, 6.0).await;
    h.composer.remove_output(first.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first_size = std::fs::metadata(nginx.recording("first")).unwrap().len();
    sleep_until(h.started, 9.0).await;
    assert_eq!(
        std::fs::metadata(nginx.recording("first")).unwrap().len(),
        first_size,
        "the removed destination still receives"
    );
    h.composer.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The added one carries the program from when it was added…
    let added_seconds = duration(&probe(&nginx.recording("added")));
    assert!(
        (4.5..=7.0).contains(&added_seconds),
        "added destination has {added_seconds:.1} s"
    );
    // …and the recording never noticed either change.
    assert!(longest_gap(&recording) < 0.5);
    assert!(duration(&probe(&recording)) > 8.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_and_video_only_programs_carry_only_their_stream() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let nginx = NginxRtmp::start();
    for (media, expected) in [
        (ProgramMedia::AudioOnly, "audio"),
        (ProgramMedia::VideoOnly, "video"),
    ] {
        let path = dir.path().join(format!("{expected}.mp4"));
        let rtmp = OutputSpec {
            id: Uuid::new_v4(),
            name: expected.into(),
            target: OutputTarget::Rtmp {
                url: onair::config::Secret::new(nginx.url(expected)),
            },
        };
        let settings = ProgramSettings {
            media,
            ..ProgramSettings::new(CANVAS, 30, 3000, "gallery")
        };
        let mut h = start_with(settings, vec![mp4_output(&path), rtmp.clone()]);
        let _a = Publisher::join(&h.room, &h.handle, 0, "One", RED, Codec::Vp8, 440).await;
        wait_for_live(&mut h.events, rtmp.id).await;
        let mut feed = h
            .composer
            .live_preview()
            .expect("the live preview is ready");
        let codecs = if expected == "audio" {
            "mp4a.40.2"
        } else {
            "avc1."
        };
        assert!(
            feed.content_type
                .starts_with(&format!("{expected}/mp4; codecs=\"{codecs}")),
            "{}",
            feed.content_type
        );
        let mut watched: Vec<u8> = feed.start.concat();
        sleep_until(h.started, 4.0).await;
        while let Ok(fragment) = feed.live.try_recv() {
            watched.extend_from_slice(&fragment);
        }
        let live_preview = dir.path().join(format!("{expected}-preview.mp4"));
        std::fs::write(&live_preview, &watched).unwrap();
        h.composer.stop().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            h.composer.live_preview().is_none(),
            "a viewer after the end"
        );
        for file in [path.clone(), nginx.recording(expected), live_preview] {
            let probe = probe(&file);
            let kinds: Vec<&str> = probe["streams"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["codec_type"].as_str().unwrap())
                .collect();
            assert_eq!(kinds, [expected], "{}: {probe}", file.display());
            assert!(duration(&probe) > 2.5, "{}", file.display());
        }
        if media == ProgramMedia::AudioOnly {
            assert!(
                audio_rms(&path, 1.0, 2.0) > 0.01,
                "the audio-only program is silent"
            );
        }
    }
}

/// An HLS output publishing to `storage` under `prefix`, cutting segments in `dir`.
fn hls_output(
    storage: &Storage,
    dir: &std::path::Path,
    prefix: &str,
) -> (OutputSpec, tokio::task::JoinHandle<()>) {
    let job = HlsJob {
        dir: dir.to_path_buf(),
        prefix: prefix.into(),
        segment_secs: storage.config.hls_segment_secs,
        playlist_name: onair::outputs::hls::DEFAULT_PLAYLIST_NAME.into(),
        live_playlist_name: None,
    };
    let (segments, publishing) = job.start(storage.store.clone()).unwrap();
    let spec = OutputSpec {
        id: Uuid::new_v4(),
        name: "hls".into(),
        target: OutputTarget::Hls {
            dir: dir.to_path_buf(),
            segment_secs: storage.config.hls_segment_secs,
            segments,
        },
    };
    (spec, publishing)
}

/// The published playlist, once its VOD version is up.
async fn published_playlist(storage: &Storage, prefix: &str) -> String {
    let text = storage
        .store
        .get(&format!("{prefix}/playlist.m3u8"))
        .await
        .expect("the playlist is in the bucket");
    String::from_utf8(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_segments_reach_the_bucket_even_across_a_store_outage() {
    let _turn = SERIAL.lock().await;
    let mut s3 = S3Server::start();
    let storage = s3.storage("media").await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("hls");
    let prefix = "hls/outage/live";
    let (hls, publishing) = hls_output(&storage, &dir, prefix);
    let hls_id = hls.id;
    let mut h = start("gallery", vec![hls]);
    let _a = Publisher::join(&h.room, &h.handle, 0, "One", RED, Codec::Vp8, 440).await;
    let _b = Publisher::join(&h.room, &h.handle, 1, "Two", BLUE, Codec::H264, 660).await;
    wait_for_live(&mut h.events, hls_id).await;

    // While it runs, the live playlist lists what is already up.
    sleep_until(h.started, 4.5).await;
    let live = published_playlist(&storage, prefix).await;
    assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{live}");
    assert!(!live.contains("#EXT-X-ENDLIST"), "{live}");

    // The store goes away for 10 s: segments pile up on local disk.
    s3.stop();
    sleep_until(h.started, 14.0).await;
    let spilled = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
        .count();
    assert!(
        spilled >= 4,
        "only {spilled} segments waited on disk during the outage"
    );
    s3.restart();
    sleep_until(h.started, 18.0).await;
    h.composer.stop().await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), publishing)
        .await
        .expect("publishing finishes once the store is back")
        .unwrap();

    let text = published_playlist(&storage, prefix).await;
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    let segments = playlist::parse(&text);
    let keys = storage.store.list(prefix).await.unwrap();
    for segment in &segments {
        assert!(
            keys.contains(&format!("{prefix}/{}", segment.name)),
            "{} is missing from the bucket: {keys:?}",
            segment.name
        );
        // Target 2 s: segments are cut at 2 s (the last one may be shorter).
        assert!(
            segment.duration.as_secs_f64() <= 2.1,
            "{} lasts {:?}",
            segment.name,
            segment.duration
        );
    }
    let numbers: Vec<u32> = segments
        .iter()
        .map(|s| {
            s.name
                .trim_start_matches("segment")
                .trim_end_matches(".ts")
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        numbers,
        (0..segments.len() as u32).collect::<Vec<_>>(),
        "a segment is missing"
    );
    let total: f64 = segments.iter().map(|s| s.duration.as_secs_f64()).sum();
    assert!(
        (16.0..19.5).contains(&total),
        "the playlist covers {total:.1} s of an 18 s program"
    );
    assert!(
        !dir.exists(),
        "the local spill is removed once everything is up"
    );

    // A player reads it straight from the bucket.
    let url = s3.http_url("media", &format!("{prefix}/playlist.m3u8"));
    let probe = probe(std::path::Path::new(&url));
    assert_h264_aac(&probe, 1280, 720);
    assert!(duration(&probe) > 15.0, "{probe}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_hls_carries_only_aac() {
    let _turn = SERIAL.lock().await;
    let s3 = S3Server::start();
    let storage = s3.storage("media").await;
    let work = tempfile::tempdir().unwrap();
    let prefix = "hls/audio-only";
    let (hls, publishing) = hls_output(&storage, &work.path().join("hls"), prefix);
    let settings = ProgramSettings {
        media: ProgramMedia::AudioOnly,
        ..ProgramSettings::new(CANVAS, 30, 3000, "gallery")
    };
    let hls_id = hls.id;
    let mut h = start_with(settings, vec![hls]);
    let _a = Publisher::join(&h.room, &h.handle, 0, "One", RED, Codec::Vp8, 440).await;
    wait_for_live(&mut h.events, hls_id).await;
    sleep_until(h.started, 6.0).await;
    h.composer.stop().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), publishing)
        .await
        .unwrap()
        .unwrap();
    let text = published_playlist(&storage, prefix).await;
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    let url = s3.http_url("media", &format!("{prefix}/playlist.m3u8"));
    let probe = probe(std::path::Path::new(&url));
    let kinds: Vec<&str> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["audio"], "{probe}");
    assert_eq!(stream(&probe, "audio").unwrap()["codec_name"], "aac");
    assert!(duration(&probe) > 4.0, "{probe}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmps_destinations_speak_tls_and_check_the_certificate() {
    let _turn = SERIAL.lock().await;
    let nginx = NginxRtmp::start();
    let tls = TlsFront::start(nginx.port);
    let dir = tempfile::tempdir().unwrap();
    let rtmps = OutputSpec {
        id: Uuid::new_v4(),
        name: "rtmps".into(),
        target: OutputTarget::Rtmp {
            url: onair::config::Secret::new(format!("rtmps://127.0.0.1:{}/live/program", tls.port)),
        },
    };
    let recording = mp4_output(&dir.path().join("program.mp4"));
    let mut h = start("gallery", vec![recording.clone(), rtmps.clone()]);
    // A self-signed certificate is refused, so the destination fails (at
    // once: it never connected) and the recording goes on.
    let event = next_event(
        &mut h.events,
        Duration::from_secs(10),
        |e| matches!(e, RunEvent::OutputFailed { output, .. } if *output == rtmps.id),
    )
    .await;
    assert!(
        matches!(&event, RunEvent::OutputFailed { error, .. } if error.contains("TLS certificate")),
        "{event:?}"
    );
    wait_for_live(&mut h.events, recording.id).await;
    h.composer.stop().await.unwrap();
    assert!(
        !nginx.recording("program").exists(),
        "nothing may reach the server over an unverified connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_stays_down_is_given_up_after_the_retry_budget() {
    let _turn = SERIAL.lock().await;
    let mut servers = [NginxRtmp::start()];
    let specs = rtmp_outputs(&servers);
    let settings = ProgramSettings {
        retry_budget: Duration::from_secs(3),
        ..ProgramSettings::new(CANVAS, 30, 3000, "gallery")
    };
    let mut h = start_with(settings, specs.clone());
    let _a = Publisher::join(&h.room, &h.handle, 0, "One", RED, Codec::Vp8, 440).await;
    let id = specs[0].id;
    wait_for_live(&mut h.events, id).await;
    servers[0].kill();
    let down = Instant::now();
    next_event(
        &mut h.events,
        Duration::from_secs(10),
        |e| matches!(e, RunEvent::OutputRetrying { output, .. } if *output == id),
    )
    .await;
    let event = next_event(
        &mut h.events,
        Duration::from_secs(15),
        |e| matches!(e, RunEvent::OutputFailed { output, .. } if *output == id),
    )
    .await;
    let after = down.elapsed();
    assert!(
        matches!(&event, RunEvent::OutputFailed { error, .. } if error.contains("gave up after 3s")),
        "{event:?}"
    );
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(12)).contains(&after),
        "given up {after:?} after going down"
    );
    h.composer.stop().await.unwrap();
}

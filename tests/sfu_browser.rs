//! Headless Chromium publishes its fake camera and microphone from the room
//! page (templates/room.html, WHIP under the hood) while an in-process room
//! subscriber — what the composer uses — watches: the participant and both
//! tracks are announced, the RTP it hands out decodes with GStreamer to real,
//! moving pictures and to Opus audio, and Leave ends it all at once.
//!
//! Needs Node, Chromium and the driver's npm packages: `scripts/browser-peers`.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::browser::{CHROMIUM, require_browser_peers};
use common::sfu::{Peer, SfuOptions, SfuServer, join_token};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use onair::sfu::{
    Codec, ParticipantSid, RoomEvent, RtpPacket, TrackInfo, TrackKind, TrackSid, TrackSource,
};
use serde_json::Value;
use tokio::time::Instant;

const ROOM: &str = "browser-room";
const IDENTITY: &str = "chromium-cam";
/// How long the page stays published before the driver clicks Leave.
const PUBLISHED_SECONDS: &str = "6";

/// What came out of the video decoder.
#[derive(Default, Debug)]
struct VideoStats {
    frames: usize,
    /// (width, height) → frames.
    sizes: BTreeMap<(u32, u32), usize>,
    /// The largest standard deviation of one frame's luma.
    max_luma_stddev: f64,
    /// Hashes of the frames' luma: a live camera never repeats itself for long.
    distinct: HashSet<u64>,
}

/// What came out of the audio decoder.
#[derive(Default, Debug)]
struct AudioStats {
    buffers: usize,
    samples: usize,
    peak: u16,
}

/// One track's RTP as the subscription delivered it.
#[derive(Default)]
struct RtpCounts {
    packets: usize,
    bytes: usize,
    /// Packets whose payload type is not the one `TrackPublished` announced.
    wrong_pt: usize,
    empty: usize,
    after_unpublish: usize,
    sender_reports: usize,
    /// SR RTP time minus the newest packet's RTP time, in clock ticks (wrapping).
    sr_offsets: Vec<i64>,
    last_timestamp: Option<u32>,
    /// Sequence numbers, unwrapped, in arrival order.
    sequence: Vec<i64>,
}

impl RtpCounts {
    fn record_sequence(&mut self, seq: u16) {
        let next = match self.sequence.last() {
            Some(&last) => last + i64::from(seq.wrapping_sub(last as u16) as i16),
            None => i64::from(seq),
        };
        self.sequence.push(next);
    }

    fn summary(&self) -> String {
        format!(
            "{} packets, {} payload bytes, {} wrong PT, {} empty, {} after unpublish, \
             {} sender reports (RTP time vs newest packet: {:?})",
            self.packets,
            self.bytes,
            self.wrong_pt,
            self.empty,
            self.after_unpublish,
            self.sender_reports,
            self.sr_offsets
        )
    }

    /// (missing, duplicated, out of order) sequence numbers between the first and the last.
    fn continuity(&self) -> (usize, usize, usize) {
        let unique: HashSet<i64> = self.sequence.iter().copied().collect();
        let (Some(min), Some(max)) = (unique.iter().min(), unique.iter().max()) else {
            return (0, 0, 0);
        };
        let span = (max - min + 1) as usize;
        let reordered = self.sequence.windows(2).filter(|w| w[1] < w[0]).count();
        (
            span - unique.len(),
            self.sequence.len() - unique.len(),
            reordered,
        )
    }
}

/// An `appsrc ! rtpjitterbuffer ! <depay/decode> ! appsink` pipeline fed the subscription's RTP.
struct Decoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Decoder {
    fn new(track: &TrackInfo, chain: &str) -> (Decoder, gst_app::AppSink) {
        let description = format!(
            "appsrc name=src is-live=true do-timestamp=true format=time \
             ! rtpjitterbuffer latency=300 ! {chain} ! appsink name=sink sync=false"
        );
        let pipeline = gst::parse::launch(&description)
            .unwrap_or_else(|e| panic!("`{description}`: {e}"))
            .downcast::<gst::Pipeline>()
            .unwrap();
        let src = pipeline
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        src.set_caps(Some(
            &gst::Caps::builder("application/x-rtp")
                .field("media", track.kind.name())
                .field("encoding-name", track.codec.encoding_name())
                .field("clock-rate", i32::try_from(track.clock_rate).unwrap())
                .field("payload", i32::from(track.payload_type))
                .build(),
        ));
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let bus = pipeline.bus().unwrap();
        let seen = errors.clone();
        bus.set_sync_handler(move |_, message| {
            if let gst::MessageView::Error(error) = message.view() {
                seen.lock().unwrap().push(format!(
                    "{}: {} ({:?})",
                    error.src().map(|s| s.path_string()).unwrap_or_default(),
                    error.error(),
                    error.debug()
                ));
            }
            if let gst::MessageView::Eos(_) = message.view() {
                seen.lock().unwrap().push("EOS".into());
            }
            gst::BusSyncReply::Drop
        });
        (
            Decoder {
                pipeline,
                src,
                errors,
            },
            sink,
        )
    }

    fn video(track: &TrackInfo, stats: Arc<Mutex<VideoStats>>) -> Decoder {
        let decode = match track.codec {
            Codec::Vp8 => "rtpvp8depay ! vp8dec",
            Codec::H264 => "rtph264depay ! h264parse ! avdec_h264",
            other => panic!("Chromium published {other:?} video; this test decodes VP8 and H.264"),
        };
        let (decoder, sink) = Decoder::new(
            track,
            &format!("{decode} ! videoconvert ! video/x-raw,format=GRAY8"),
        );
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let info = sample
                        .caps()
                        .and_then(|caps| gst_video::VideoInfo::from_caps(caps).ok())
                        .ok_or(gst::FlowError::NotNegotiated)?;
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let (width, height) = (info.width() as usize, info.height() as usize);
                    let (offset, stride) = (info.offset()[0], info.stride()[0] as usize);
                    let mut hasher = DefaultHasher::new();
                    let (mut sum, mut squares) = (0u64, 0u64);
                    for row in map[offset..].chunks(stride).take(height) {
                        let row = &row[..width];
                        row.hash(&mut hasher);
                        for &luma in row {
                            sum += u64::from(luma);
                            squares += u64::from(luma) * u64::from(luma);
                        }
                    }
                    let n = (width * height).max(1) as f64;
                    let mean = sum as f64 / n;
                    let stddev = (squares as f64 / n - mean * mean).max(0.0).sqrt();
                    let mut stats = stats.lock().unwrap();
                    stats.frames += 1;
                    *stats
                        .sizes
                        .entry((info.width(), info.height()))
                        .or_default() += 1;
                    stats.max_luma_stddev = stats.max_luma_stddev.max(stddev);
                    stats.distinct.insert(hasher.finish());
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        decoder.pipeline.set_state(gst::State::Playing).unwrap();
        decoder
    }

    fn audio(track: &TrackInfo, stats: Arc<Mutex<AudioStats>>) -> Decoder {
        assert_eq!(track.codec, Codec::Opus, "audio codec: {track:?}");
        let (decoder, sink) = Decoder::new(
            track,
            "rtpopusdepay ! opusdec ! audioconvert ! audio/x-raw,format=S16LE",
        );
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let mut stats = stats.lock().unwrap();
                    stats.buffers += 1;
                    for sample in map.chunks_exact(2) {
                        let value = i16::from_le_bytes([sample[0], sample[1]]);
                        stats.samples += 1;
                        stats.peak = stats.peak.max(value.unsigned_abs());
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        decoder.pipeline.set_state(gst::State::Playing).unwrap();
        decoder
    }

    fn push(&self, packet: &RtpPacket) {
        // A flow error shows up on the bus and in the decoded counts.
        let _ = self
            .src
            .push_buffer(gst::Buffer::from_mut_slice(packet.to_bytes()));
    }

    /// Drains the pipeline (EOS through the jitter buffer) and returns its errors.
    async fn finish(self) -> Vec<String> {
        let _ = self.src.end_of_stream();
        // The bus handler records EOS, or the error that ended the stream first.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.errors.lock().unwrap().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.pipeline.set_state(gst::State::Null).unwrap();
        let messages = self.errors.lock().unwrap();
        assert!(
            !messages.is_empty(),
            "the decoder never drained (no EOS within 10 s)"
        );
        messages.iter().filter(|e| *e != "EOS").cloned().collect()
    }
}

/// Everything the subscription said about the browser's participant.
#[derive(Default)]
struct Watch {
    participant: Option<ParticipantSid>,
    video: Option<TrackInfo>,
    audio: Option<TrackInfo>,
    decoders: HashMap<TrackSid, Decoder>,
    rtp: HashMap<TrackSid, RtpCounts>,
    /// Rtp events for tracks never announced.
    unannounced_rtp: usize,
    unpublished: Vec<TrackSid>,
    left: bool,
    /// Events other than media, in order, for the failure messages.
    log: Vec<String>,
    video_stats: Arc<Mutex<VideoStats>>,
    audio_stats: Arc<Mutex<AudioStats>>,
    speaking_seen: bool,
}

impl Watch {
    fn done(&self) -> bool {
        self.left && self.unpublished.len() >= 2
    }

    fn on_event(&mut self, event: RoomEvent) {
        match event {
            RoomEvent::Rtp { track, packet } => {
                let Some(info) = [&self.video, &self.audio]
                    .into_iter()
                    .flatten()
                    .find(|t| t.sid == track)
                else {
                    self.unannounced_rtp += 1;
                    return;
                };
                let counts = self.rtp.entry(track.clone()).or_default();
                counts.packets += 1;
                counts.bytes += packet.payload.len();
                counts.wrong_pt += usize::from(packet.payload_type != info.payload_type);
                counts.empty += usize::from(packet.payload.is_empty());
                counts.after_unpublish += usize::from(self.unpublished.contains(&track));
                counts.last_timestamp = Some(packet.timestamp);
                counts.record_sequence(packet.sequence_number);
                if let Some(decoder) = self.decoders.get(&track) {
                    decoder.push(&packet);
                }
            }
            RoomEvent::SenderReport {
                track, rtp_time, ..
            } => {
                let counts = self.rtp.entry(track).or_default();
                counts.sender_reports += 1;
                if let Some(last) = counts.last_timestamp {
                    counts
                        .sr_offsets
                        .push(i64::from(rtp_time.wrapping_sub(last) as i32));
                }
            }
            RoomEvent::ActiveSpeakers(speakers) => {
                eprintln!("subscription: ActiveSpeakers({speakers:?})");
                if self
                    .participant
                    .as_ref()
                    .is_some_and(|p| speakers.contains(p))
                {
                    self.speaking_seen = true;
                }
            }
            event => {
                eprintln!("subscription: {event:?}");
                self.log.push(format!("{event:?}"));
                self.on_change(event);
            }
        }
    }

    fn on_change(&mut self, event: RoomEvent) {
        match event {
            RoomEvent::ParticipantJoined(info) => {
                assert_eq!(info.identity, IDENTITY, "only the browser joins: {info:?}");
                assert!(
                    self.participant.is_none(),
                    "{IDENTITY} joined twice: {:?}",
                    self.log
                );
                self.participant = Some(info.sid);
            }
            RoomEvent::TrackPublished(info) => {
                assert_eq!(
                    Some(&info.participant),
                    self.participant.as_ref(),
                    "a track published before (or by other than) {IDENTITY}: {:?}",
                    self.log
                );
                let (slot, source, clock_rate) = match info.kind {
                    TrackKind::Video => (&mut self.video, TrackSource::Camera, 90_000),
                    TrackKind::Audio => (&mut self.audio, TrackSource::Microphone, 48_000),
                };
                assert!(slot.is_none(), "a second {:?} track: {info:?}", info.kind);
                assert_eq!(info.source, source, "{info:?}");
                assert_eq!(info.clock_rate, clock_rate, "{info:?}");
                assert!(!info.muted, "published muted: {info:?}");
                let decoder = match info.kind {
                    TrackKind::Video => Decoder::video(&info, self.video_stats.clone()),
                    TrackKind::Audio => Decoder::audio(&info, self.audio_stats.clone()),
                };
                self.decoders.insert(info.sid.clone(), decoder);
                *slot = Some(info);
            }
            RoomEvent::TrackUnpublished { track } => {
                let ours = [&self.video, &self.audio]
                    .into_iter()
                    .flatten()
                    .any(|t| t.sid == track);
                assert!(ours, "unpublished a track never published: {track}");
                assert!(
                    !self.unpublished.contains(&track),
                    "{track} unpublished twice"
                );
                self.unpublished.push(track);
            }
            RoomEvent::ParticipantLeft { participant } => {
                assert_eq!(
                    Some(&participant),
                    self.participant.as_ref(),
                    "{:?}",
                    self.log
                );
                assert_eq!(
                    self.unpublished.len(),
                    2,
                    "both tracks are unpublished before the participant leaves: {:?}",
                    self.log
                );
                self.left = true;
            }
            RoomEvent::RoomClosed => panic!("the room closed under the browser: {:?}", self.log),
            // ParticipantUpdated, TrackMuted: logged above, not expected to matter.
            _ => {}
        }
    }
}

/// The sum of `field` over the driver's outbound-rtp stats of `kind`.
fn outbound(stats: &Value, kind: &str, field: &str) -> u64 {
    stats["outbound"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["kind"] == kind)
                .filter_map(|e| e[field].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_publishes_from_the_room_page_and_the_in_process_subscriber_decodes_it() {
    require_browser_peers();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    gst::init().unwrap();

    let server = SfuServer::start(SfuOptions {
        dev_mode: true,
        ..Default::default()
    })
    .await;
    // Subscribed before anyone joins: everything arrives as it happens.
    let mut subscription = server
        .sfu
        .subscribe_room(ROOM)
        .await
        .expect("in-process subscription");

    let token = join_token(ROOM, IDENTITY, |_| {});
    let url = format!("{}/rooms/{ROOM}?token={token}", server.base);
    let started = Instant::now();
    let mut driver = Peer::node(
        "room_publish.mjs",
        &[
            "--url",
            &url,
            "--seconds",
            PUBLISHED_SECONDS,
            "--timeout",
            "40",
            "--chromium",
            CHROMIUM,
        ],
    );

    // The subscription and the driver's lines together, until the browser has
    // left the room (on the subscription) and the driver has reported.
    let mut watch = Watch::default();
    let mut lines: Vec<Value> = Vec::new();
    let mut driver_open = true;
    let deadline = started + Duration::from_secs(120);
    let result = loop {
        if watch.done()
            && let Some(result) = lines.iter().find(|l| l["event"] == "result")
        {
            break result.clone();
        }
        tokio::select! {
            event = subscription.events.recv() => {
                let event = event.expect("the subscription stays open");
                watch.on_event(event);
            }
            line = driver.lines.recv(), if driver_open => match line {
                Some(line) => {
                    eprintln!("driver {:>5.1}s: {line}", started.elapsed().as_secs_f64());
                    assert!(
                        !(line["event"] == "result" && line["ok"] != true),
                        "the browser failed: {line}\nsubscription: {:?}",
                        watch.log
                    );
                    lines.push(line);
                }
                None => driver_open = false,
            },
            _ = tokio::time::sleep_until(deadline) => panic!(
                "after {:?}: left={} unpublished={:?} driver={lines:?} subscription={:?}",
                started.elapsed(),
                watch.left,
                watch.unpublished,
                watch.log
            ),
        }
    };
    let elapsed = started.elapsed();

    // The driver: published, stayed, clicked Leave, the DELETE succeeded.
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["state"], "left", "{result}");
    assert_eq!(
        result["status"], "You left the room",
        "the page's DELETE of its WHIP session failed: {result}"
    );
    let states: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "state")
        .filter_map(|l| l["state"].as_str())
        .collect();
    assert!(states.contains(&"published"), "states: {states:?}");
    let page_errors: Vec<&Value> = lines.iter().filter(|l| l["event"] == "console").collect();
    assert!(page_errors.is_empty(), "page errors: {page_errors:?}");
    let exit = driver.exit_code(Duration::from_secs(30)).await;
    assert_eq!(exit, 0, "driver exit code");
    let stats = lines
        .iter()
        .find(|l| l["event"] == "stats")
        .cloned()
        .expect("the driver reports outbound stats before leaving");

    // The SFU forgot the participant (the DELETE answered before `left`).
    let snapshot = server.sfu.room(ROOM).await.expect("the room is still open");
    assert!(
        snapshot
            .participants
            .iter()
            .all(|p| p.info.identity != IDENTITY),
        "{IDENTITY} is still in the room after leaving: {:?}",
        snapshot.participants
    );

    // Drain the decoders: nothing more comes from the browser.
    let mut decoder_errors = Vec::new();
    for (track, decoder) in std::mem::take(&mut watch.decoders) {
        for error in decoder.finish().await {
            decoder_errors.push(format!("{track}: {error}"));
        }
    }

    let video = watch.video.clone().expect("a video track was published");
    let audio = watch.audio.clone().expect("an audio track was published");
    let video_rtp = watch.rtp.get(&video.sid).expect("video RTP arrived");
    let audio_rtp = watch.rtp.get(&audio.sid).expect("audio RTP arrived");
    let video_stats = watch.video_stats.lock().unwrap();
    let audio_stats = watch.audio_stats.lock().unwrap();
    eprintln!(
        "after {elapsed:?}: video {video:?}\n  rtp {}\n  decoded {} frames, sizes {:?}, \
         max luma stddev {:.1}, {} distinct\naudio {audio:?}\n  rtp {}\n  decoded {audio_stats:?}\n\
         unannounced rtp {}, speaking seen {}, driver stats {stats}",
        video_rtp.summary(),
        video_stats.frames,
        video_stats.sizes,
        video_stats.max_luma_stddev,
        video_stats.distinct.len(),
        audio_rtp.summary(),
        watch.unannounced_rtp,
        watch.speaking_seen,
    );

    assert!(decoder_errors.is_empty(), "decoders: {decoder_errors:?}");
    assert_eq!(watch.unannounced_rtp, 0, "RTP before TrackPublished");
    for (kind, rtp) in [("video", video_rtp), ("audio", audio_rtp)] {
        assert_eq!(rtp.wrong_pt, 0, "{kind}: packets with another payload type");
        assert_eq!(rtp.empty, 0, "{kind}: empty payloads handed out");
        assert_eq!(rtp.after_unpublish, 0, "{kind}: packets after unpublish");
        assert!(rtp.sender_reports >= 1, "{kind}: no sender report");
        // A sender report's RTP time is the sender's "now": near its newest packets.
        let clock = i64::from(if kind == "video" { 90_000 } else { 48_000 });
        assert!(
            rtp.sr_offsets.iter().all(|o| o.abs() < 5 * clock),
            "{kind}: sender reports far from the media's RTP times: {:?}",
            rtp.sr_offsets
        );
    }

    // Nothing lost or doubled between the browser and the subscriber
    // (loopback; str0m repairs a rare loss with NACK/RTX).
    for (kind, rtp) in [("video", video_rtp), ("audio", audio_rtp)] {
        let (missing, duplicated, reordered) = rtp.continuity();
        eprintln!("{kind}: {missing} missing, {duplicated} duplicated, {reordered} out of order");
        assert!(
            missing * 50 <= rtp.packets,
            "{kind}: {missing} sequence numbers never arrived ({} packets)",
            rtp.packets
        );
        assert_eq!(duplicated, 0, "{kind}: packets handed out twice");
    }
    // And as much as the browser says it sent by the time of its stats (a
    // little before Leave). Video is compared in frames: its packet count
    // includes retransmissions and RTX probes, which the SFU rightly drops.
    let encoded = outbound(&stats, "video", "framesEncoded");
    let sent_audio = outbound(&stats, "audio", "packetsSent");
    assert!(
        encoded > 0 && sent_audio > 0,
        "the browser sent nothing: {stats}"
    );
    assert!(
        video_stats.frames as u64 * 10 >= encoded * 9,
        "video: {} frames decoded of the {encoded} the browser encoded",
        video_stats.frames
    );
    assert!(
        audio_rtp.packets as u64 * 10 >= sent_audio * 9,
        "audio: {} of the {sent_audio} packets the browser sent reached the subscriber",
        audio_rtp.packets
    );
    assert!(audio_rtp.packets > 50, "audio: {}", audio_rtp.summary());

    // Real, moving pictures at the size the page asked for (or the fake camera's own).
    assert!(video_stats.frames >= 30, "decoded frames: {video_stats:?}");
    let largest = video_stats.sizes.keys().max().copied().unwrap();
    assert!(
        [(640, 360), (640, 480)].contains(&largest),
        "frame sizes: {:?}",
        video_stats.sizes
    );
    assert!(
        video_stats
            .sizes
            .keys()
            .all(|&(w, h)| (160..=1920).contains(&w) && (90..=1080).contains(&h)),
        "frame sizes: {:?}",
        video_stats.sizes
    );
    assert!(
        video_stats.max_luma_stddev > 10.0,
        "the pictures are flat (luma stddev {:.1}): not a camera",
        video_stats.max_luma_stddev
    );
    assert!(
        video_stats.distinct.len() >= 10,
        "only {} distinct pictures in {} frames: the video does not move",
        video_stats.distinct.len(),
        video_stats.frames
    );

    // Opus decoded to sound (20 ms packets: 960 samples a channel each).
    assert!(
        audio_stats.buffers > 50 && audio_stats.samples > 50 * 960,
        "decoded audio: {audio_stats:?}"
    );
    assert!(
        audio_stats.peak > 1000,
        "the fake microphone's beeps never came out: {audio_stats:?}"
    );
}

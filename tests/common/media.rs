//! Media helpers for composer tests: synthetic publishers made with GStreamer
//! (solid colours + tones, encoded and packetized to real RTP), a room handle
//! that forwards keyframe requests to them, and probing/decoding of outputs
//! with ffprobe/ffmpeg.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use onair::sfu::{
    Codec, Layer, NtpTime, ParticipantInfo, ParticipantSid, RoomEvent, RoomHandle, RtpPacket,
    TrackInfo, TrackSid, TrackSource,
};
use tokio::sync::mpsc;

/// Colours as (r, g, b) and the ARGB value videotestsrc wants.
pub const RED: (u8, u8, u8) = (230, 30, 30);
pub const GREEN: (u8, u8, u8) = (30, 200, 60);
pub const BLUE: (u8, u8, u8) = (40, 60, 230);
pub const YELLOW: (u8, u8, u8) = (240, 220, 40);
pub const MAGENTA: (u8, u8, u8) = (220, 40, 200);

pub fn argb((r, g, b): (u8, u8, u8)) -> u32 {
    0xff00_0000 | (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b)
}

/// Keyframe requests from the composer go to the publisher's encoder.
#[derive(Default, Clone)]
pub struct TestRoom {
    encoders: Arc<Mutex<HashMap<TrackSid, gst::Element>>>,
    pub keyframe_requests: Arc<Mutex<HashMap<TrackSid, usize>>>,
}

impl RoomHandle for TestRoom {
    fn request_keyframe(&self, track: &TrackSid) {
        *self
            .keyframe_requests
            .lock()
            .unwrap()
            .entry(track.clone())
            .or_default() += 1;
        if let Some(encoder) = self.encoders.lock().unwrap().get(track) {
            // Delivered at the encoder's src pad, as a downstream element's request would be.
            let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            encoder.static_pad("src").unwrap().send_event(event);
        }
    }
    fn select_layer(&self, _track: &TrackSid, _layer: Layer) {}
}

/// A participant publishing a solid-colour camera and a sine tone.
pub struct Publisher {
    pub info: ParticipantInfo,
    pub video: TrackInfo,
    pub audio: TrackInfo,
    pipeline: gst::Pipeline,
}

impl Publisher {
    /// Builds the publisher and announces it (join + two tracks) on `room`.
    pub async fn join(
        room: &mpsc::Sender<RoomEvent>,
        handle: &TestRoom,
        index: u32,
        name: &str,
        colour: (u8, u8, u8),
        codec: Codec,
        tone_hz: u32,
    ) -> Publisher {
        let source = format!(
            "videotestsrc is-live=true pattern=solid-color foreground-color={}",
            argb(colour)
        );
        Publisher::join_source(room, handle, index, name, &source, codec, tone_hz).await
    }

    /// A publisher showing noise: a program at its full bitrate.
    pub async fn join_noisy(
        room: &mpsc::Sender<RoomEvent>,
        handle: &TestRoom,
        index: u32,
        codec: Codec,
    ) -> Publisher {
        let source = "videotestsrc is-live=true pattern=snow";
        Publisher::join_source(room, handle, index, "Noise", source, codec, 440).await
    }

    async fn join_source(
        room: &mpsc::Sender<RoomEvent>,
        handle: &TestRoom,
        index: u32,
        name: &str,
        source: &str,
        codec: Codec,
        tone_hz: u32,
    ) -> Publisher {
        gst::init().unwrap();
        let sid = ParticipantSid(format!("PA_test{index}"));
        let info = ParticipantInfo {
            sid: sid.clone(),
            identity: format!("user-{index}"),
            name: name.to_string(),
            metadata: String::new(),
            agent: false,
        };
        let (video_pt, encoder) = match codec {
            Codec::Vp8 => (
                96,
                "vp8enc name=venc deadline=1 keyframe-max-dist=60 ! rtpvp8pay mtu=1200",
            ),
            Codec::H264 => (
                102,
                "x264enc name=venc tune=zerolatency speed-preset=ultrafast key-int-max=60 ! video/x-h264,profile=constrained-baseline ! rtph264pay mtu=1200 config-interval=-1 aggregate-mode=zero-latency",
            ),
            other => panic!("no test encoder for {other:?}"),
        };
        let description = format!(
            "{source} ! video/x-raw,width=640,height=360,framerate=30/1 \
             ! {encoder} pt={video_pt} ssrc={vssrc} ! appsink name=video emit-signals=true sync=false \
             audiotestsrc is-live=true wave=sine freq={tone_hz} volume=0.5 ! audio/x-raw,rate=48000,channels=2 \
             ! opusenc ! rtpopuspay pt=111 ssrc={assrc} ! appsink name=audio emit-signals=true sync=false",
            vssrc = 1000 + index,
            assrc = 2000 + index,
        );
        let pipeline = gst::parse::launch(&description)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let track = |suffix: &str, source, codec, pt| {
            let track = TrackSid(format!("TR_{suffix}{index}"));
            TrackInfo::new(track, sid.clone(), source, codec, pt)
        };
        let video = track("v", TrackSource::Camera, codec, video_pt);
        let audio = track("a", TrackSource::Microphone, Codec::Opus, 111);
        room.send(RoomEvent::ParticipantJoined(info.clone()))
            .await
            .unwrap();
        room.send(RoomEvent::TrackPublished(video.clone()))
            .await
            .unwrap();
        room.send(RoomEvent::TrackPublished(audio.clone()))
            .await
            .unwrap();
        for (name, track) in [("video", &video), ("audio", &audio)] {
            let sink = pipeline
                .by_name(name)
                .unwrap()
                .downcast::<gst_app::AppSink>()
                .unwrap();
            if name == "video" {
                handle
                    .encoders
                    .lock()
                    .unwrap()
                    .insert(track.sid.clone(), pipeline.by_name("venc").unwrap());
            }
            let room = room.clone();
            let sid = track.sid.clone();
            let mut last_report: Option<Instant> = None;
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                        let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                        if let Some(packet) = RtpPacket::parse(&map, Instant::now()) {
                            // Like a WebRTC sender: a sender report about once a second
                            // mapping this packet's RTP time to the wallclock now.
                            let report =
                                last_report.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
                            let rtp_time = packet.timestamp;
                            // A closed composer just means the test is over.
                            let _ = room.blocking_send(RoomEvent::Rtp {
                                track: sid.clone(),
                                packet,
                            });
                            if report {
                                last_report = Some(Instant::now());
                                let ntp = NtpTime::now();
                                let _ = room.blocking_send(RoomEvent::SenderReport {
                                    track: sid.clone(),
                                    ntp,
                                    rtp_time,
                                });
                            }
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
        pipeline.set_state(gst::State::Playing).unwrap();
        Publisher {
            info,
            video,
            audio,
            pipeline,
        }
    }

    /// Stops sending packets (as a frozen or disconnected peer would) without leaving.
    pub fn go_silent(&self) {
        self.pipeline.set_state(gst::State::Null).unwrap();
    }

    /// Leaves the room.
    pub async fn leave(self, room: &mpsc::Sender<RoomEvent>) {
        self.pipeline.set_state(gst::State::Null).unwrap();
        room.send(RoomEvent::ParticipantLeft {
            participant: self.info.sid.clone(),
        })
        .await
        .unwrap();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// ffprobe's view of a file (or URL).
pub fn probe(path: &Path) -> serde_json::Value {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        output.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

pub fn stream<'a>(probe: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    probe["streams"]
        .as_array()?
        .iter()
        .find(|s| s["codec_type"] == kind)
}

pub fn duration(probe: &serde_json::Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0)
}

/// One ffprobe entry (e.g. `packet=pts_time`) of the first video stream,
/// a line per packet or frame, from at most `packets` packets.
fn video_entries(path: &Path, entry: &str, packets: Option<u32>) -> Vec<String> {
    let mut command = Command::new("ffprobe");
    command.args([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        entry,
    ]);
    if let Some(packets) = packets {
        command.args(["-read_intervals", &format!("%+#{packets}")]);
    }
    let output = command.args(["-of", "csv=p=0"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_string())
        .collect()
}

/// Presentation times (s) of every video packet, in order.
pub fn video_packet_times(path: &Path) -> Vec<f64> {
    let mut times: Vec<f64> = video_entries(path, "packet=pts_time", None)
        .iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times
}

/// The picture type of the first decoded video frame: `I` when it needs no
/// earlier frame (an IDR frame, or the intra frame x264 puts at a scene cut).
pub fn first_picture_type(path: &Path) -> Option<String> {
    video_entries(path, "frame=pict_type", Some(1))
        .into_iter()
        .next()
}

/// One decoded frame at `at` seconds as RGB24.
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Frame {
    pub fn at(path: &Path, at: f64, width: usize, height: usize) -> Frame {
        let output = Command::new("ffmpeg")
            .args(["-v", "error"])
            // A still image has no timeline to seek in.
            .args(if at > 0.0 {
                vec!["-ss".to_string(), format!("{at:.3}")]
            } else {
                Vec::new()
            })
            .arg("-i")
            .arg(path)
            .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "ffmpeg: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.stdout.len(), width * height * 3, "frame size");
        Frame {
            width,
            height,
            rgb: output.stdout,
        }
    }

    pub fn pixel(&self, x: i32, y: i32) -> (u8, u8, u8) {
        let (x, y) = (
            x.clamp(0, self.width as i32 - 1) as usize,
            y.clamp(0, self.height as i32 - 1) as usize,
        );
        let i = (y * self.width + x) * 3;
        (self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
    }

    /// Whether the pixel is within `tolerance` of `colour` on every channel.
    pub fn is_near(&self, x: i32, y: i32, colour: (u8, u8, u8), tolerance: u8) -> bool {
        let (r, g, b) = self.pixel(x, y);
        r.abs_diff(colour.0) <= tolerance
            && g.abs_diff(colour.1) <= tolerance
            && b.abs_diff(colour.2) <= tolerance
    }
}

/// RMS level of the first `seconds` of audio decoded to 16-bit mono, 0..1.
pub fn audio_rms(path: &Path, from: f64, seconds: f64) -> f64 {
    let samples = audio_samples(path, from, seconds, None);
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt()
}

/// `seconds` of audio from `from`, at 48 kHz in -1…1: one `channel` (0 =
/// left), or all channels mixed down.
pub fn audio_samples(path: &Path, from: f64, seconds: f64, channel: Option<usize>) -> Vec<f64> {
    let mix = match channel {
        Some(index) => ["-af".to_string(), format!("pan=mono|c0=c{index}")],
        None => ["-ac".to_string(), "1".to_string()],
    };
    let output = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-ss",
            &format!("{from:.3}"),
            "-t",
            &format!("{seconds:.3}"),
            "-i",
        ])
        .arg(path)
        .arg("-vn")
        .args(&mix)
        .args(["-ar", "48000", "-f", "s16le", "-"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ffmpeg audio: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
        .collect()
}

/// Copies a produced file into `$ONAIR_TEST_ARTIFACTS` (when set) for a person to look at.
pub fn keep(path: &Path) {
    if let Some(dir) = std::env::var_os("ONAIR_TEST_ARTIFACTS") {
        let dir = Path::new(&dir);
        let _ = std::fs::create_dir_all(dir);
        if let Some(name) = path.file_name() {
            let _ = std::fs::copy(path, dir.join(name));
        }
    }
}

//! The fixed part of a program pipeline: live background and silence,
//! compositor and audio mixer, overlay, encoders and the tees outputs hang off.
//!
//! ```text
//! background (live still picture) → compositor → caps(W×H@fps, I420) → overlaycomposition
//!     → program tee → queue → x264enc → h264parse → caps(avc) → video tee
//!                   → [2 fps] queue (leaky, 1 frame) → videoscale (640 wide) → jpegenc → appsink "preview"
//! audiotestsrc(live, silence) → audiomixer → caps(48 kHz stereo) → audioconvert
//!     → avenc_aac → aacparse → audio tee
//! video tee + audio tee → the live preview's fragmented MP4 (`live_preview`)
//! ```

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use super::background::Background;
use super::live_preview::{self, LivePreview};
use super::{ComposerError, JITTER_LATENCY, make};
use crate::layout::{Canvas, Rgba};
use crate::livestream::{AudioMixing, TrackSelection};
use crate::outputs::ProgramMedia;

/// Encoding and canvas settings of one program.
#[derive(Debug, Clone)]
pub struct ProgramSettings {
    pub canvas: Canvas,
    pub fps: u32,
    pub video_bitrate_kbps: u32,
    pub audio_bitrate_bps: u32,
    /// The encoded audio's sample rate (the mix runs at [`AUDIO_RATE`]).
    pub audio_rate: u32,
    /// `baseline`, `main` or `high`; None = x264's choice (high).
    pub h264_profile: Option<String>,
    /// Keyframe every this many seconds (2 s by default; ≤ the HLS segment length).
    pub keyframe_interval_secs: f64,
    pub layout: String,
    /// Drawn at the top-left, at its own size, over the layout's colour.
    pub background_image: Option<PathBuf>,
    /// The streams every output gets.
    pub media: ProgramMedia,
    /// The room's tracks on the program.
    pub selection: TrackSelection,
    /// How voices share the stereo mix.
    pub audio_mixing: AudioMixing,
    /// A destination that was live and then fails is retried for this long
    /// before it is given up (one that never connected fails at once: that
    /// is a wrong URL or key, not an outage).
    pub retry_budget: std::time::Duration,
}

impl ProgramSettings {
    pub fn new(canvas: Canvas, fps: u32, video_bitrate_kbps: u32, layout: &str) -> ProgramSettings {
        ProgramSettings {
            canvas,
            fps,
            video_bitrate_kbps,
            audio_bitrate_bps: 128_000,
            audio_rate: AUDIO_RATE as u32,
            h264_profile: None,
            keyframe_interval_secs: 2.0,
            layout: layout.to_string(),
            background_image: None,
            media: ProgramMedia::AudioVideo,
            selection: TrackSelection::Room,
            audio_mixing: AudioMixing::Default,
            retry_budget: std::time::Duration::from_secs(30),
        }
    }
}

pub const AUDIO_RATE: i32 = 48_000;
pub const AUDIO_CHANNELS: i32 = 2;

/// Handles to the elements the rest of the composer attaches to.
pub struct Program {
    pub pipeline: gst::Pipeline,
    pub compositor: gst::Element,
    pub audiomixer: gst::Element,
    pub background: Background,
    pub overlay: gst::Element,
    pub video_tee: gst::Element,
    pub audio_tee: gst::Element,
    /// The raw program before encoding (image outputs take stills from it).
    pub program_tee: gst::Element,
    /// The raw mix before AAC (Ogg/Opus files encode it themselves).
    pub raw_audio_tee: gst::Element,
    /// The compositor pad the background feeds.
    pub background_pad: gst::Pad,
    /// The encoder's input; counts program frames.
    pub encoder_sink: gst::Pad,
    /// The latest program frame as a small JPEG (a thumbnail).
    pub preview: Arc<Mutex<Option<Vec<u8>>>>,
    /// The encoded program for the dashboard's player.
    pub live_preview: Arc<LivePreview>,
    /// The program's raw video format without size or rate (I420, the
    /// canvas's colorimetry, square pixels): what the compositor copies
    /// from without converting.
    pub video_format: gst::Caps,
}

impl Drop for Program {
    /// A pipeline freed while playing leaves its streaming threads running
    /// on freed elements (a crash): whatever ends the composer — a stop, a
    /// panic, a runtime shutting down — the pipeline goes to NULL first.
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        self.live_preview.close();
    }
}

fn element(factory: &str, name: &str) -> Result<gst::Element, ComposerError> {
    let element = make(factory)?;
    element.set_property("name", name);
    Ok(element)
}

fn caps_filter(name: &str, caps: gst::Caps) -> Result<gst::Element, ComposerError> {
    let filter = element("capsfilter", name)?;
    filter.set_property("caps", caps);
    Ok(filter)
}

pub fn build(settings: &ProgramSettings) -> Result<Program, ComposerError> {
    let pipeline = gst::Pipeline::with_name("program");
    let Canvas { width, height } = settings.canvas;
    let fps = settings.fps as i32;
    let latency = gst::ClockTime::from_nseconds(JITTER_LATENCY.as_nanos() as u64);
    let video_format = video_format(settings.canvas)?;

    // Video: a live background is what keeps the program running with nobody in the room.
    let (background, background_out) = Background::build(
        &pipeline,
        settings.canvas,
        &video_format,
        fps,
        Rgba::MUX_BACKGROUND,
        settings.background_image.as_deref(),
    )?;
    let compositor = element("compositor", "compositor")?;
    compositor.set_property_from_str("background", "black");
    compositor.set_property("ignore-inactive-pads", true);
    compositor.set_property_from_str("start-time-selection", "first");
    compositor.set_property("min-upstream-latency", latency.nseconds());
    let program_caps = caps_filter(
        "program-caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", width as i32)
            .field("height", height as i32)
            .field("framerate", gst::Fraction::new(fps, 1))
            .build(),
    )?;
    let overlay = element("overlaycomposition", "overlay")?;
    let program_tee = element("tee", "program-tee")?;
    let encoder_queue = element("queue", "encoder-queue")?;
    // A few raw frames decouple composing from encoding; more only costs
    // memory (a 1080p frame is 3 MB).
    encoder_queue.set_property("max-size-buffers", 3u32);
    encoder_queue.set_property("max-size-bytes", 0u32);
    encoder_queue.set_property("max-size-time", 0u64);
    let x264 = element("x264enc", "x264")?;
    x264.set_property("bitrate", settings.video_bitrate_kbps);
    x264.set_property_from_str("speed-preset", "veryfast");
    x264.set_property_from_str("tune", "zerolatency");
    let keyframe_frames = (f64::from(settings.fps) * settings.keyframe_interval_secs).round();
    x264.set_property("key-int-max", (keyframe_frames as u32).max(1));
    let h264parse = element("h264parse", "h264parse")?;
    let mut h264 = gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au");
    if let Some(profile) = &settings.h264_profile {
        // x264 follows the profile downstream asks for.
        h264 = h264.field("profile", profile.as_str());
    }
    let h264_caps = caps_filter("h264-caps", h264.build())?;
    let video_tee = element("tee", "video-tee")?;
    video_tee.set_property("allow-not-linked", true);

    // Audio: live silence keeps the mixer producing even when nobody speaks.
    let silence = element("audiotestsrc", "silence")?;
    silence.set_property("is-live", true);
    silence.set_property_from_str("wave", "silence");
    let audiomixer = element("audiomixer", "audiomixer")?;
    audiomixer.set_property("ignore-inactive-pads", true);
    audiomixer.set_property_from_str("start-time-selection", "first");
    audiomixer.set_property("min-upstream-latency", latency.nseconds());
    let mixed_caps = caps_filter(
        "mixed-caps",
        gst::Caps::builder("audio/x-raw")
            .field("rate", AUDIO_RATE)
            .field("channels", AUDIO_CHANNELS)
            .build(),
    )?;
    let audioconvert = element("audioconvert", "mix-convert")?;
    let raw_audio_tee = element("tee", "raw-audio-tee")?;
    let resample = element("audioresample", "encode-resample")?;
    let encode_caps = caps_filter(
        "encode-caps",
        gst::Caps::builder("audio/x-raw")
            .field("rate", settings.audio_rate as i32)
            .build(),
    )?;
    let aac = element("avenc_aac", "aac")?;
    aac.set_property("bitrate", settings.audio_bitrate_bps as i32);
    // FFmpeg's AAC encoder forces mid/side coding by default, which bleeds
    // each channel into the other (a voice panned left came out in both at
    // nearly equal level); unforced, it chooses M/S per band where it helps.
    aac.set_property("aac-ms", false);
    let aacparse = element("aacparse", "aacparse")?;
    let audio_tee = element("tee", "audio-tee")?;
    audio_tee.set_property("allow-not-linked", true);

    let video_chain = [
        &compositor,
        &program_caps,
        &overlay,
        &program_tee,
        &encoder_queue,
        &x264,
        &h264parse,
        &h264_caps,
        &video_tee,
    ];
    let audio_chain = [
        &silence,
        &audiomixer,
        &mixed_caps,
        &audioconvert,
        &raw_audio_tee,
        &resample,
        &encode_caps,
        &aac,
        &aacparse,
        &audio_tee,
    ];
    pipeline.add_many(video_chain)?;
    pipeline.add_many(audio_chain)?;
    gst::Element::link_many(video_chain)?;
    gst::Element::link_many(audio_chain)?;

    // The background is the bottom layer and fills the canvas.
    let background_pad = compositor
        .request_pad_simple("sink_%u")
        .ok_or_else(|| ComposerError::Pipeline("compositor refused the background pad".into()))?;
    background_pad.set_property("zorder", 0u32);
    background_out
        .static_pad("src")
        .ok_or_else(|| ComposerError::Pipeline("background has no src pad".into()))?
        .link(&background_pad)
        .map_err(|e| ComposerError::Pipeline(format!("linking the background: {e:?}")))?;
    let encoder_sink = x264
        .static_pad("sink")
        .ok_or_else(|| ComposerError::Pipeline("x264enc has no sink pad".into()))?;
    let preview = Arc::new(Mutex::new(None));
    if settings.media.has_video() {
        add_preview(&pipeline, &program_tee, settings.canvas, preview.clone())?;
    } else {
        skip_encoding(&encoder_queue)?;
    }
    if !settings.media.has_audio() {
        skip_encoding(&aac)?;
    }
    let live_preview = live_preview::attach(
        &pipeline,
        settings.media.has_video().then_some(&video_tee),
        settings.media.has_audio().then_some(&audio_tee),
    )?;
    Ok(Program {
        pipeline,
        compositor,
        audiomixer,
        background,
        background_pad,
        overlay,
        video_tee,
        audio_tee,
        program_tee,
        raw_audio_tee,
        encoder_sink,
        preview,
        live_preview,
        video_format,
    })
}

/// I420 in BT.601, square pixels. Everything entering the compositor is in
/// this format, so its output is too, and x264 tags the program with it.
/// BT.601 is what WebRTC senders encode (libyuv converts camera frames with
/// it, and VP8 has no other), so their decoded frames enter without a matrix
/// conversion: converting each input to BT.709 cost ~0.7 ms per 640×360 frame
/// (a fifth more CPU for a four-person program) for colours that tagged
/// BT.601 already shows correctly.
fn video_format(canvas: Canvas) -> Result<gst::Caps, ComposerError> {
    let bt601 = gst_video::VideoColorimetry::from_str("bt601")
        .map_err(|e| ComposerError::Pipeline(format!("program colorimetry: {e}")))?;
    let info =
        gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, canvas.width, canvas.height)
            .par(gst::Fraction::new(1, 1))
            .colorimetry(&bt601)
            .build()
            .map_err(|e| ComposerError::Pipeline(format!("program video format: {e}")))?;
    let mut caps = info
        .to_caps()
        .map_err(|e| ComposerError::Pipeline(format!("program video caps: {e}")))?;
    if let Some(structure) = caps.make_mut().structure_mut(0) {
        structure.remove_fields(["width", "height", "framerate"]);
    }
    Ok(caps)
}

/// A stream no output carries (audio-only or video-only programs) is not
/// encoded: its frames are dropped before the encoder.
fn skip_encoding(encoder_input: &gst::Element) -> Result<(), ComposerError> {
    drop_probe_pad(encoder_input)?
        .add_probe(gst::PadProbeType::BUFFER, |_, _| gst::PadProbeReturn::Drop);
    Ok(())
}

/// Where a probe that drops buffers going into `element` goes: the source
/// pad feeding it. gstreamer-rs releases a dropped buffer itself, and
/// GStreamer 1.22 then unrefs the emptied pointer again on a sink pad (a
/// CRITICAL per buffer), not on a source pad.
pub(super) fn drop_probe_pad(element: &gst::Element) -> Result<gst::Pad, ComposerError> {
    element
        .static_pad("sink")
        .and_then(|sink| sink.peer())
        .ok_or_else(|| ComposerError::Pipeline(format!("{} is not linked", element.name())))
}

/// Preview frames per second, and their width.
const PREVIEW_FPS: u64 = 2;
const PREVIEW_WIDTH: u32 = 640;

/// A side branch that keeps the latest program frame as a JPEG. It never
/// holds the program up: its queue keeps one frame and drops the rest. Only
/// the frames it encodes enter it (a probe at the tee lets one through every
/// 1/[`PREVIEW_FPS`] s), so no full-size frame waits in it between two
/// previews (as one did in a `videorate`), and nothing else is scaled.
fn add_preview(
    pipeline: &gst::Pipeline,
    program_tee: &gst::Element,
    canvas: Canvas,
    latest: Arc<Mutex<Option<Vec<u8>>>>,
) -> Result<(), ComposerError> {
    let queue = element("queue", "preview-queue")?;
    queue.set_property("max-size-buffers", 1u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 0u64);
    queue.set_property_from_str("leaky", "downstream");
    let scale = element("videoscale", "preview-scale")?;
    let height = (PREVIEW_WIDTH * canvas.height / canvas.width.max(1)).max(2) & !1;
    let caps = caps_filter(
        "preview-caps",
        gst::Caps::builder("video/x-raw")
            .field("width", PREVIEW_WIDTH as i32)
            .field("height", height as i32)
            .build(),
    )?;
    let jpeg = element("jpegenc", "preview-jpeg")?;
    jpeg.set_property("quality", 75i32);
    let sink = element("appsink", "preview")?;
    sink.set_property("sync", false);
    sink.set_property("async", false);
    sink.set_property("max-buffers", 1u32);
    sink.set_property("drop", true);
    let chain = [&queue, &scale, &caps, &jpeg, &sink];
    pipeline.add_many(chain)?;
    gst::Element::link_many(chain)?;
    program_tee.link(&queue)?;
    let interval = gst::ClockTime::SECOND.nseconds() / PREVIEW_FPS;
    // The PTS from which the next frame is taken; none before the first.
    let next = std::sync::atomic::AtomicU64::new(u64::MAX);
    // On the tee's side of the link, see `drop_probe_pad`.
    drop_probe_pad(&queue)?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        use std::sync::atomic::Ordering;
        let Some(pts) = info.buffer().and_then(|b| b.pts()).map(|t| t.nseconds()) else {
            return gst::PadProbeReturn::Drop;
        };
        let due = next.load(Ordering::Relaxed);
        // A PTS well before the due one: the timeline started over.
        if due == u64::MAX || pts >= due || due - pts > 2 * interval {
            next.store(pts + interval, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        } else {
            gst::PadProbeReturn::Drop
        }
    });
    super::read_appsink(pipeline, "preview", move |_, jpeg| {
        *latest.lock().expect("preview lock") = Some(jpeg.to_vec());
    })
}

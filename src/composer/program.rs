//! The fixed part of a program pipeline: live background and silence,
//! compositor and audio mixer, overlay, encoders and the tees outputs hang off.
//!
//! ```text
//! background (live still picture) → compositor → caps(W×H@fps, I420) → overlaycomposition
//!     → queue → x264enc → h264parse → caps(avc) → video tee
//! audiotestsrc(live, silence) → audiomixer → caps(48 kHz stereo) → audioconvert
//!     → avenc_aac → aacparse → audio tee
//! ```

use std::path::PathBuf;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::background::Background;
use super::{ComposerError, JITTER_LATENCY, make};
use crate::layout::{Canvas, Rgba};
use crate::outputs::ProgramMedia;

/// Encoding and canvas settings of one program.
#[derive(Debug, Clone)]
pub struct ProgramSettings {
    pub canvas: Canvas,
    pub fps: u32,
    pub video_bitrate_kbps: u32,
    pub audio_bitrate_bps: u32,
    /// Keyframe every this many seconds (2 s by default; ≤ the HLS segment length).
    pub keyframe_interval_secs: u32,
    pub layout: String,
    /// Drawn at the top-left, at its own size, over the layout's colour.
    pub background_image: Option<PathBuf>,
    /// The streams every output gets.
    pub media: ProgramMedia,
}

impl ProgramSettings {
    pub fn new(canvas: Canvas, fps: u32, video_bitrate_kbps: u32, layout: &str) -> ProgramSettings {
        ProgramSettings {
            canvas,
            fps,
            video_bitrate_kbps,
            audio_bitrate_bps: 128_000,
            keyframe_interval_secs: 2,
            layout: layout.to_string(),
            background_image: None,
            media: ProgramMedia::AudioVideo,
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
    /// The compositor pad the background feeds.
    pub background_pad: gst::Pad,
    /// The encoder's input; counts program frames.
    pub encoder_sink: gst::Pad,
}

impl Drop for Program {
    /// A pipeline freed while playing leaves its streaming threads running
    /// on freed elements (a crash): whatever ends the composer — a stop, a
    /// panic, a runtime shutting down — the pipeline goes to NULL first.
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
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

    // Video: a live background is what keeps the program running with nobody in the room.
    let (background, background_out) = Background::build(
        &pipeline,
        settings.canvas,
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
    x264.set_property(
        "key-int-max",
        settings.fps * settings.keyframe_interval_secs,
    );
    let h264parse = element("h264parse", "h264parse")?;
    let h264_caps = caps_filter(
        "h264-caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .build(),
    )?;
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
    let aac = element("avenc_aac", "aac")?;
    aac.set_property("bitrate", settings.audio_bitrate_bps as i32);
    let aacparse = element("aacparse", "aacparse")?;
    let audio_tee = element("tee", "audio-tee")?;
    audio_tee.set_property("allow-not-linked", true);

    let video_chain = [
        &compositor,
        &program_caps,
        &overlay,
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
    Ok(Program {
        pipeline,
        compositor,
        audiomixer,
        background,
        background_pad,
        overlay,
        video_tee,
        audio_tee,
        encoder_sink,
    })
}

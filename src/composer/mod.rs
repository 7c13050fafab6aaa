//! The headless participant: one GStreamer pipeline per live room that
//! decodes every track, composes them with a layout, encodes once and fans
//! the program out to outputs (DESIGN §5).
//!
//! Driven only through [`crate::sfu::RoomEvent`]s and talking back through
//! [`crate::sfu::RoomHandle`]; it never sees WebRTC types.

mod actor;
mod background;
mod inputs;
mod live_preview;
mod overlay;
mod program;
mod room;
mod rtcp;
mod runner;
mod scene;
pub mod track_egress;

use std::time::Duration;

pub use actor::{Composer, ComposerStats, RoomFeed};
pub use program::ProgramSettings;
pub use runner::MediaEngine;

#[derive(Debug, thiserror::Error)]
pub enum ComposerError {
    #[error("GStreamer is not usable: {0}")]
    Init(String),
    #[error("missing GStreamer element `{0}` (install the GStreamer plugin packages)")]
    MissingElement(String),
    #[error("pipeline: {0}")]
    Pipeline(String),
    #[error("output `{name}`: {message}")]
    Output { name: String, message: String },
    #[error("layout: {0}")]
    Layout(String),
    #[error("the composer has stopped")]
    Stopped,
}

impl From<gstreamer::glib::BoolError> for ComposerError {
    fn from(error: gstreamer::glib::BoolError) -> Self {
        ComposerError::Pipeline(error.to_string())
    }
}

/// How long the jitter buffers wait for late packets; also the compositor's
/// fixed latency budget, so inputs joining later never change the program's
/// timing.
pub const JITTER_LATENCY: Duration = Duration::from_millis(200);

/// Initializes GStreamer once per process.
pub fn init() -> Result<(), ComposerError> {
    keep_large_blocks_out_of_arenas();
    gstreamer::init().map_err(|e| ComposerError::Init(e.to_string()))
}

/// Allocations from this size on are their own mappings, returned to the
/// system when freed (glibc's default threshold).
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// glibc serves allocations above its mmap threshold from their own
/// mappings, but raises that threshold to the size of the largest such block
/// freed (up to 32 MiB). Video frames (a 1080p frame is 3 MB, a tile a few
/// hundred kB) are then carved from the per-thread arenas of whichever of
/// a program's hundred threads allocates them, and what those arenas held at
/// their fullest stays resident after the frames are freed. Fixing the
/// threshold keeps every frame in its own mapping, so memory follows what is
/// in use: the 9-input 1080p benchmark peaked 12–17 MB lower with it
/// (docs/BENCHMARKS.md). Frames come from buffer pools, so the extra
/// mmap/munmap calls are few.
fn keep_large_blocks_out_of_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only sets an allocator parameter; it is
        // thread-safe and has no memory-safety preconditions.
        ONCE.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        });
    }
}

/// Every element a program may need, so a missing plugin package is
/// reported at startup rather than in the middle of a go-live.
const REQUIRED_ELEMENTS: &[&str] = &[
    "appsrc",
    "rtpbin",
    "rtpvp8depay",
    "vp8dec",
    "rtph264depay",
    "h264parse",
    "avdec_h264",
    "rtpvp9depay",
    "vp9dec",
    "rtpopusdepay",
    "opusdec",
    "videoconvertscale",
    "videocrop",
    "compositor",
    "overlaycomposition",
    "imagefreeze",
    "audiotestsrc",
    "audioconvert",
    "audioresample",
    "audiomixer",
    "x264enc",
    "avenc_aac",
    "aacparse",
    "tee",
    "queue",
    "capsfilter",
    "mp4mux",
    "filesink",
    "flvmux",
    "rtmp2sink",
];

/// Names the first required element this machine's GStreamer lacks.
pub fn check_plugins() -> Result<(), ComposerError> {
    match REQUIRED_ELEMENTS
        .iter()
        .find(|name| gstreamer::ElementFactory::find(name).is_none())
    {
        Some(missing) => Err(ComposerError::MissingElement(missing.to_string())),
        None => Ok(()),
    }
}

/// Calls `on_buffer(pts, bytes)` for every buffer reaching the appsink
/// `name` of `pipeline` (encoded media the demo and the benchmark read out).
pub fn read_appsink(
    pipeline: &gstreamer::Pipeline,
    name: &str,
    on_buffer: impl Fn(Duration, &[u8]) + Send + Sync + 'static,
) -> Result<(), ComposerError> {
    use gstreamer::prelude::*;
    let sink = pipeline
        .by_name(name)
        .and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok())
        .ok_or_else(|| ComposerError::Pipeline(format!("no appsink named `{name}`")))?;
    sink.set_callbacks(
        gstreamer_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gstreamer::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gstreamer::FlowError::Error)?;
                let pts = buffer
                    .pts()
                    .map_or(Duration::ZERO, |t| Duration::from_nanos(t.nseconds()));
                let map = buffer
                    .map_readable()
                    .map_err(|_| gstreamer::FlowError::Error)?;
                on_buffer(pts, &map);
                Ok(gstreamer::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(())
}

/// Builds a GStreamer element by factory name with a readable error.
pub(crate) fn make(factory: &str) -> Result<gstreamer::Element, ComposerError> {
    gstreamer::ElementFactory::make(factory)
        .build()
        .map_err(|_| ComposerError::MissingElement(factory.to_string()))
}

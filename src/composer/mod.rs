//! The headless participant: one GStreamer pipeline per live room that
//! decodes every track, composes them with a layout, encodes once and fans
//! the program out to outputs (DESIGN §5).
//!
//! Driven only through [`crate::sfu::RoomEvent`]s and talking back through
//! [`crate::sfu::RoomHandle`]; it never sees WebRTC types.

mod actor;
mod background;
mod inputs;
mod overlay;
mod program;
mod room;
mod rtcp;
mod scene;

use std::time::Duration;

pub use actor::{Composer, ComposerStats, RoomFeed};
pub use program::ProgramSettings;

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
    gstreamer::init().map_err(|e| ComposerError::Init(e.to_string()))
}

/// Builds a GStreamer element by factory name with a readable error.
pub(crate) fn make(factory: &str) -> Result<gstreamer::Element, ComposerError> {
    gstreamer::ElementFactory::make(factory)
        .build()
        .map_err(|_| ComposerError::MissingElement(factory.to_string()))
}

//! Program outputs: where RTMP destinations point (pure URL logic) and the
//! GStreamer bins that write MP4 files and push RTMP streams.

pub mod destination;
pub mod media;

pub use destination::{Destination, DestinationError, DestinationType};
pub use media::{OutputBin, OutputError, OutputTarget, ProgramMedia};

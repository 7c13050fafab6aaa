//! Program outputs: where RTMP destinations point (pure URL logic) and the
//! GStreamer bins that write MP4 files, push RTMP streams and cut HLS
//! segments, and publishing HLS and recordings to object storage.

pub mod destination;
pub mod fmp4;
pub mod hls;
pub mod images;
pub mod media;
pub mod playlist;
pub mod upload;

pub use destination::{Destination, DestinationError, DestinationType};
pub use media::{OutputBin, OutputError, OutputTarget, ProgramMedia};

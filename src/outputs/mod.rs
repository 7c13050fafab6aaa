//! Program outputs. For now: where RTMP destinations point (pure URL logic);
//! the media side of outputs arrives with the composer.

pub mod destination;

pub use destination::{Destination, DestinationError, DestinationType};

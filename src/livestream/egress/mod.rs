//! Livestreams as LiveKit egresses: every livestream has an `EG_…` id and
//! is reported as an `EgressInfo`; LiveKit's egress requests are turned into
//! go-lives (`request`), so apps' Egress calls start onair programs.

mod info;
mod request;

pub use info::{egress_info, webhook};
pub use request::{
    EgressContext, TrackFacts, participant, room_composite, stream_update, track, track_composite,
};

/// `EG_` and 12 base62 characters, the shape of LiveKit's egress ids.
pub fn new_egress_id() -> String {
    crate::sfu::ids::new_sid("EG_")
}

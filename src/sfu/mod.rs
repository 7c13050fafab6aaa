//! The SFU: rooms, participants, tracks and forwarding. So far only the seam
//! through which a room is delivered to an in-process subscriber (the
//! composer), DESIGN §5.1; the WebRTC side arrives with the SFU issue.

mod events;

pub use events::{
    Codec, Layer, NtpTime, ParticipantInfo, ParticipantSid, RoomEvent, RoomHandle, RtpPacket,
    TrackInfo, TrackKind, TrackSid, TrackSource,
};

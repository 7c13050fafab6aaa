//! Builders shared by the unit tests.

use super::model::{ParticipantView, RoomView, VideoView};

pub(crate) fn video(track_sid: &str, width: u32, height: u32) -> VideoView {
    VideoView {
        track_sid: track_sid.to_owned(),
        width,
        height,
        muted: false,
    }
}

/// Participant `P{i}` named `Person {i}` with a 1280×720 camera `P{i}-cam`.
pub(crate) fn person(i: usize) -> ParticipantView {
    ParticipantView {
        sid: format!("P{i}"),
        identity: format!("person-{i}"),
        name: format!("Person {i}"),
        camera: Some(video(&format!("P{i}-cam"), 1280, 720)),
        screen_share: None,
    }
}

/// `n` people `P1..Pn` in join order, nobody speaking.
pub(crate) fn room_of(n: usize) -> RoomView {
    RoomView {
        participants: (1..=n).map(person).collect(),
        active_speakers: Vec::new(),
    }
}

/// `room_of(n)` with `P1` sharing a 1920×1080 screen `P1-screen`.
pub(crate) fn sharing_room(n: usize) -> RoomView {
    let mut room = room_of(n);
    if let Some(p) = room.participants.first_mut() {
        p.screen_share = Some(video("P1-screen", 1920, 1080));
    }
    room
}

/// `(x, y, w, h)` of a rectangle, for compact assertions.
pub(crate) fn xywh(r: &super::Rect) -> (i32, i32, u32, u32) {
    (r.x, r.y, r.w, r.h)
}

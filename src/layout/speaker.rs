//! Who the speaker is, and who makes it onto a page.

use serde::{Deserialize, Serialize};

use super::model::{ParticipantView, RoomView};

/// Mux shows at most this many participants (`MAX_PARTICIPANTS_PER_PAGE`).
pub const MAX_PARTICIPANTS_PER_PAGE: usize = 10;

/// Mux's active-speaker choice, fed with every room update.
///
/// - The current speaker stays while they are among the active speakers
///   (and while nobody speaks).
/// - Otherwise the loudest active speaker takes over.
/// - With no speaker yet, a screen-sharer becomes the speaker by default,
///   else the first participant with video.
/// - When the speaker leaves, the first remaining participant with video.
///
/// "With video" means an unmuted camera; with none, the first participant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerSelector {
    current: Option<String>,
}

impl SpeakerSelector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The speaker chosen by the last update.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Applies the room's new state and returns the speaker's sid.
    pub fn update(&mut self, room: &RoomView) -> Option<String> {
        let default = match self.current.as_deref() {
            Some(sid) if room.participant(sid).is_some() => Some(sid),
            // The speaker left.
            Some(_) => first_with_video(room),
            None => room
                .screen_sharer()
                .map(|p| p.sid.as_str())
                .or_else(|| first_with_video(room)),
        };
        let chosen = match default {
            Some(sid) if room.speaking_rank(sid).is_some() => Some(sid),
            _ => loudest(room).or(default),
        };
        self.current = chosen.map(str::to_owned);
        self.current.clone()
    }
}

/// The loudest active speaker who is in the room (active speakers that are
/// not shown, such as the recorder, are ignored).
fn loudest(room: &RoomView) -> Option<&str> {
    room.active_speakers
        .iter()
        .map(String::as_str)
        .find(|sid| room.participant(sid).is_some())
}

fn first_with_video(room: &RoomView) -> Option<&str> {
    room.participants
        .iter()
        .find(|p| p.has_live_camera())
        .or_else(|| room.participants.first())
        .map(|p| p.sid.as_str())
}

/// The speaker to show: `speaker` when present in the room, otherwise the
/// selector's fallback (first participant with video).
pub(crate) fn resolve<'a>(
    room: &'a RoomView,
    speaker: Option<&str>,
) -> Option<&'a ParticipantView> {
    speaker
        .and_then(|sid| room.participant(sid))
        .or_else(|| first_with_video(room).and_then(|sid| room.participant(sid)))
}

/// Mux's page: join order, at most [`MAX_PARTICIPANTS_PER_PAGE`]; a
/// speaker at index 9 or beyond moves to the front (Mux: `index >=
/// MAX_PARTICIPANTS_PER_PAGE - 1` → `unshift`). Mux keeps that order
/// afterwards; being pure, this port re-derives it from the current
/// speaker (moved first) and the active speakers (loudest first, each
/// moved in turn, as Mux iterates them).
pub(crate) fn mux_page<'a>(room: &'a RoomView, speaker: Option<&str>) -> Vec<&'a ParticipantView> {
    let mut order: Vec<&ParticipantView> = room.participants.iter().collect();
    let movers = speaker
        .into_iter()
        .chain(room.active_speakers.iter().map(String::as_str));
    for sid in movers {
        if let Some(i) = order.iter().position(|p| p.sid == sid)
            && i + 1 >= MAX_PARTICIPANTS_PER_PAGE
        {
            let p = order.remove(i);
            order.insert(0, p);
        }
    }
    order.truncate(MAX_PARTICIPANTS_PER_PAGE);
    order
}

/// LiveKit's visually stable paging: tiles keep their places, but an
/// active speaker beyond the first `visible` items swaps places with the
/// last visible item that is not speaking (loudest speakers first).
pub(crate) fn swap_speakers_into_view<T>(
    items: &mut [T],
    visible: usize,
    rank: impl Fn(&T) -> Option<usize>,
) {
    let visible = visible.min(items.len());
    let mut hidden: Vec<(usize, usize)> = (visible..items.len())
        .filter_map(|i| rank(&items[i]).map(|r| (r, i)))
        .collect();
    hidden.sort_unstable();
    for (_, i) in hidden {
        if let Some(j) = (0..visible).rev().find(|&j| rank(&items[j]).is_none()) {
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::test_support::*;

    fn sids(page: &[&ParticipantView]) -> Vec<String> {
        page.iter().map(|p| p.sid.clone()).collect()
    }

    #[test]
    fn sticky_while_speaking_then_loudest() {
        let mut room = room_of(3);
        let mut sel = SpeakerSelector::new();
        assert_eq!(sel.update(&room).as_deref(), Some("P1"));
        room.active_speakers = vec!["P2".into()];
        assert_eq!(sel.update(&room).as_deref(), Some("P2"));
        // P2 still speaks: stays although P3 is louder now.
        room.active_speakers = vec!["P3".into(), "P2".into()];
        assert_eq!(sel.update(&room).as_deref(), Some("P2"));
        // Silence keeps the speaker.
        room.active_speakers.clear();
        assert_eq!(sel.update(&room).as_deref(), Some("P2"));
        // P2 stopped, P3 speaks.
        room.active_speakers = vec!["P3".into()];
        assert_eq!(sel.update(&room).as_deref(), Some("P3"));
        assert_eq!(sel.current(), Some("P3"));
    }

    #[test]
    fn unknown_active_speakers_are_ignored() {
        let mut room = room_of(2);
        room.active_speakers = vec!["recorder".into(), "P2".into()];
        assert_eq!(SpeakerSelector::new().update(&room).as_deref(), Some("P2"));
    }

    #[test]
    fn falls_back_to_first_with_video_when_the_speaker_leaves() {
        let mut room = room_of(4);
        room.participants[0].camera = None;
        if let Some(camera) = room.participants[1].camera.as_mut() {
            camera.muted = true;
        }
        let mut sel = SpeakerSelector::new();
        assert_eq!(sel.update(&room).as_deref(), Some("P3"));
        room.active_speakers = vec!["P4".into()];
        assert_eq!(sel.update(&room).as_deref(), Some("P4"));
        room.active_speakers.clear();
        room.participants.retain(|p| p.sid != "P4");
        assert_eq!(sel.update(&room).as_deref(), Some("P3"));
        // Nobody with video: the first participant.
        room.participants.retain(|p| p.sid != "P3");
        assert_eq!(sel.update(&room).as_deref(), Some("P1"));
        room.participants.clear();
        assert_eq!(sel.update(&room), None);
    }

    #[test]
    fn a_screen_sharer_is_the_default_speaker() {
        let mut room = room_of(3);
        room.participants[2].screen_share = Some(video("P3-screen", 1920, 1080));
        let mut sel = SpeakerSelector::new();
        assert_eq!(sel.update(&room).as_deref(), Some("P3"));
        // ...but only by default: speaking still wins.
        room.active_speakers = vec!["P1".into()];
        assert_eq!(sel.update(&room).as_deref(), Some("P1"));
    }

    #[test]
    fn resolve_falls_back() {
        let mut room = room_of(2);
        room.participants[0].camera = None;
        assert_eq!(
            resolve(&room, Some("P1")).map(|p| p.sid.as_str()),
            Some("P1")
        );
        assert_eq!(
            resolve(&room, Some("gone")).map(|p| p.sid.as_str()),
            Some("P2")
        );
        assert_eq!(resolve(&room, None).map(|p| p.sid.as_str()), Some("P2"));
        assert!(resolve(&RoomView::default(), Some("P1")).is_none());
    }

    #[test]
    fn speakers_beyond_the_page_move_to_the_front() {
        let mut room = room_of(12);
        let first_ten: Vec<String> = (1..=10).map(|i| format!("P{i}")).collect();
        assert_eq!(sids(&mux_page(&room, None)), first_ten);
        // The 11th speaks: to the front, P10 drops off.
        room.active_speakers = vec!["P11".into()];
        let page = sids(&mux_page(&room, Some("P11")));
        assert_eq!(
            page,
            ["P11", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9"]
        );
        // 11th and 12th speak (P11 louder): Mux moves P11 then P12 to the front.
        room.active_speakers = vec!["P11".into(), "P12".into()];
        let page = sids(&mux_page(&room, Some("P11")));
        assert_eq!(
            page,
            ["P12", "P11", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8"]
        );
        // A sticky speaker stays on the page after falling silent.
        room.active_speakers.clear();
        assert_eq!(sids(&mux_page(&room, Some("P12")))[0], "P12");
        // Mux's threshold is index ≥ 9: the 10th person moves too.
        assert_eq!(sids(&mux_page(&room, Some("P10")))[0], "P10");
        assert_eq!(sids(&mux_page(&room, Some("P9"))), first_ten);
    }

    #[test]
    fn livekit_swaps_speakers_into_view() {
        let mut items = vec!["a", "b", "c", "d", "e"];
        let speaking = ["e", "d"];
        swap_speakers_into_view(&mut items, 3, |s| speaking.iter().position(|x| x == s));
        assert_eq!(items, ["a", "d", "e", "b", "c"]);
        let mut few = vec!["a"];
        swap_speakers_into_view(&mut few, 9, |_| Some(0));
        assert_eq!(few, ["a"]);
    }
}

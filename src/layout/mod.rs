//! Pure scene computation: (canvas, room state, speaker) → where each video goes.
//!
//! Ports Mux's broadcast layouts (`gallery`, `active-speaker`, `crop`) and
//! LiveKit egress's default template (`grid`, `speaker`, `single-speaker`,
//! with `-light`/`-dark` variants). The numbers come from
//! `reference/mux-broadcast-layouts.md` (DESIGN.md §6); where the browser
//! bent the authors' numbers, the port reproduces what the browser rendered.
//!
//! No IO, no GStreamer, no async: [`compose`] is a pure function and
//! [`SpeakerSelector`] is a small state machine fed by room updates.
//!
//! Geometry is computed in `f64` CSS pixels and rounded once, at the end,
//! by [`Rect`]'s rule: every *edge* is rounded half-up (`floor(v + 0.5)`)
//! and the size is the difference of the rounded edges. Boxes that touch
//! in `f64` therefore touch in pixels (no overlap, no 1 px seam), and
//! equally sized boxes at the same sub-pixel phase keep equal sizes, as in
//! Chromium's pixel snapping.

mod active_speaker;
mod crop;
mod gallery;
mod geometry;
mod label;
mod livekit;
mod model;
mod name;
mod scene;
mod speaker;
mod templates;

pub use label::{
    LABEL_BACKGROUND, LABEL_FONT_FAMILY, LABEL_LINE_HEIGHT_PX, LABEL_PADDING_X_PX, LABEL_RADIUS_PX,
    LABEL_TEXT_COLOR, PLACEHOLDER_BACKGROUND, PLACEHOLDER_ICON_COLOR, PLACEHOLDER_ICON_PX,
    label_text,
};
pub use model::{Canvas, ParticipantView, RoomView, Shape, VideoView};
pub use name::{LayoutName, Theme, UnknownLayout};
pub use scene::{Content, Fit, Label, Rect, Region, Rgba, Scene};
pub use speaker::{MAX_PARTICIPANTS_PER_PAGE, SpeakerSelector};
pub use templates::{LayoutTemplates, TemplateError};

/// Computes the scene for `layout` on `canvas`.
///
/// `room` lists the shown participants in join order (the caller has
/// already dropped hidden/recorder and non-publishing participants);
/// `speaker` is the current speaker's sid, normally from
/// [`SpeakerSelector::update`]. An unknown or missing speaker falls back
/// to the first participant with video. Never panics; an empty room gives
/// a scene with no regions.
pub fn compose(
    layout: LayoutName,
    canvas: Canvas,
    room: &RoomView,
    speaker: Option<&str>,
) -> Scene {
    let tiles = match layout {
        LayoutName::Gallery => gallery::compose(canvas, room, speaker),
        LayoutName::ActiveSpeaker => {
            active_speaker::compose(canvas, room, speaker, active_speaker::Host::ActiveSpeaker)
        }
        LayoutName::Crop => crop::compose(canvas, room, speaker),
        LayoutName::Grid(_) => livekit::grid(canvas, room, speaker),
        LayoutName::Speaker(_) => livekit::speaker(canvas, room, speaker),
        LayoutName::SingleSpeaker(_) => livekit::single_speaker(canvas, room, speaker),
    };
    Scene::from_tiles(canvas, layout.background(), tiles)
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    fn every_layout() -> Vec<LayoutName> {
        LayoutName::all()
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    #[test]
    fn any_input_gives_a_well_formed_scene() {
        let canvases = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 1),
            (1, 3),
            (u32::MAX, 7),
            (1920, 1080),
        ];
        let rooms = [
            RoomView::default(),
            room_of(1),
            room_of(12),
            sharing_room(12),
        ];
        for layout in every_layout() {
            for (w, h) in canvases {
                for room in &rooms {
                    for speaker in [None, Some("P12"), Some("nobody")] {
                        let scene = compose(layout, Canvas::new(w, h), room, speaker);
                        assert_eq!(scene.canvas, Canvas::new(w, h));
                        assert_eq!(scene.background, layout.background());
                        let z: Vec<u32> = scene.regions.iter().map(|r| r.z).collect();
                        assert_eq!(z, (0..scene.regions.len() as u32).collect::<Vec<_>>());
                        assert_eq!(
                            scene.regions.is_empty(),
                            room.participants.is_empty(),
                            "{layout} {w}×{h}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(Canvas::new(1920, 1080).shape(), Shape::Wide);
        assert_eq!(Canvas::new(720, 720).shape(), Shape::Square);
        assert_eq!(Canvas::new(1080, 1920).shape(), Shape::Portrait);
        assert_eq!(Canvas::new(0, 0).shape(), Shape::Square);
    }
}

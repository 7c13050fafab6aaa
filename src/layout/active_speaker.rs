//! Mux `active-speaker`: the speaker alone, or a screen share with the
//! speaker beside it (wide) or overlaid bottom-right (square, portrait,
//! and whenever `crop` or `gallery` fall back to this view).

use super::geometry::{RectF, SIXTEEN_NINE, flex_shrunk, sane_aspect};
use super::label::LabelStyle;
use super::model::{Canvas, ParticipantView, RoomView, Shape};
use super::scene::{Fit, Tile};
use super::speaker;

/// Width of the speaker box beside a share before flex shrinking, and its
/// left margin.
const BESIDE_BASIS: f64 = 400.0;
const BESIDE_MARGIN: f64 = 30.0;

/// Which Mux layout shows this view; it decides overlay and offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    ActiveSpeaker,
    /// `gallery` with a share on a square or portrait canvas.
    Gallery,
    /// `crop` with a share.
    Crop,
}

/// How the speaker's parent box lays out its child: Mux's full-size and
/// beside-share boxes are `display: flex` (`margin: auto` centres both
/// ways, width shrinks to the video); the overlay box is a plain block
/// (the child fills the width and sits at the top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parent {
    Flex,
    Block,
}

pub(crate) fn compose<'a>(
    canvas: Canvas,
    room: &'a RoomView,
    speaker: Option<&str>,
    host: Host,
) -> Vec<Tile<'a>> {
    let speaker = speaker::resolve(room, speaker);
    match room.screen_sharer() {
        None => speaker.map(|p| alone(canvas, p)).into_iter().collect(),
        Some(sharer) if canvas.shape() == Shape::Wide && host != Host::Crop => {
            beside(canvas, sharer, speaker)
        }
        Some(sharer) => overlaid(canvas, sharer, speaker, host),
    }
}

/// A Mux screen share: `width: 100%` video, vertically centred in its box
/// (contained when the share is too tall for the box).
pub(crate) fn mux_share<'a>(sharer: &'a ParticipantView, share_box: RectF) -> Tile<'a> {
    let aspect = sharer
        .screen_share
        .as_ref()
        .map_or(SIXTEEN_NINE, |v| v.aspect());
    Tile::screen_share(
        sharer,
        share_box.contain(aspect),
        Fit::Contain,
        LabelStyle::Normal,
    )
}

/// No share: the speaker fills a 16:9 box in the canvas; the label is
/// large on wide canvases (1 person shown, no share).
fn alone(canvas: Canvas, p: &ParticipantView) -> Tile<'_> {
    let square = canvas.shape() == Shape::Square;
    let rect = speaker_box(
        RectF::canvas(canvas),
        Parent::Flex,
        square,
        p.camera_aspect(),
    );
    Tile::camera(
        p,
        rect,
        Fit::Cover,
        0,
        LabelStyle::mux(canvas.shape() == Shape::Wide, false, 1),
    )
}

/// Wide canvas: the share fills the height on the left; the 400 px box
/// (with its 30 px margin) shrinks with it, to 400·(W−30)/(W+400).
fn beside<'a>(
    canvas: Canvas,
    sharer: &'a ParticipantView,
    speaker: Option<&'a ParticipantView>,
) -> Vec<Tile<'a>> {
    let box_w = flex_shrunk(canvas.w(), BESIDE_BASIS, BESIDE_MARGIN);
    let share_w = (canvas.w() - BESIDE_MARGIN - box_w).max(0.0);
    let mut tiles = vec![mux_share(sharer, RectF::new(0.0, 0.0, share_w, canvas.h()))];
    if let Some(p) = speaker {
        let parent = RectF::new(share_w + BESIDE_MARGIN, 0.0, box_w, canvas.h());
        let rect = speaker_box(parent, Parent::Flex, false, p.camera_aspect());
        tiles.push(Tile::camera(p, rect, Fit::Cover, 0, LabelStyle::Normal));
    }
    tiles
}

/// The share fills the canvas; the speaker sits in a fixed box at the
/// bottom-right: 383×215.44 (wide, crop only), 240×240 square, 360×360
/// portrait; 0 px from the edges for crop, else 60 px square / 36 px.
fn overlaid<'a>(
    canvas: Canvas,
    sharer: &'a ParticipantView,
    speaker: Option<&'a ParticipantView>,
    host: Host,
) -> Vec<Tile<'a>> {
    let mut tiles = vec![mux_share(sharer, RectF::canvas(canvas))];
    if let Some(p) = speaker {
        let shape = canvas.shape();
        let (w, h) = match shape {
            Shape::Wide => (383.0, 215.44),
            Shape::Square => (240.0, 240.0),
            Shape::Portrait => (360.0, 360.0),
        };
        let offset = match (host, shape) {
            (Host::Crop, _) => 0.0,
            (_, Shape::Square) => 60.0,
            _ => 36.0,
        };
        let container = RectF::new(canvas.w() - offset - w, canvas.h() - offset - h, w, h);
        // Mux passes `square = height >= width` to the overlaid speaker.
        let square = canvas.height >= canvas.width;
        let rect = speaker_box(container, Parent::Block, square, p.camera_aspect());
        tiles.push(Tile::camera(p, rect, Fit::Cover, 0, LabelStyle::Normal));
    }
    tiles
}

/// Mux's `ActiveParticipant` sizing inside `parent`, which it measures
/// with `clientWidth`/`clientHeight` (whole pixels):
/// - not square, parent taller than wide: full width, height from the
///   video;
/// - not square, parent wider than 16:9: full height, width = client
///   height · 16/9;
/// - not square otherwise: full width, height = client width · 9/16;
/// - square: full height; width from the video in a flex parent, the
///   parent's width in a block parent.
///
/// Heights are capped at the parent's (the cover-fit video is cropped
/// rather than overflowing).
fn speaker_box(parent: RectF, kind: Parent, square: bool, aspect: f64) -> RectF {
    let aspect = sane_aspect(aspect);
    let (client_w, client_h) = (parent.w.round(), parent.h.round());
    let (w, h) = if !square && client_w > 0.0 && client_h > 0.0 {
        if client_h > client_w {
            (parent.w, parent.w / aspect)
        } else if client_w / client_h > SIXTEEN_NINE {
            (client_h * SIXTEEN_NINE, parent.h)
        } else {
            (parent.w, client_w / SIXTEEN_NINE)
        }
    } else {
        match kind {
            Parent::Flex => (parent.w.min(parent.h * aspect), parent.h),
            Parent::Block => (parent.w, parent.h),
        }
    };
    let h = h.min(parent.h);
    let centred = parent.centre(w, h);
    match kind {
        Parent::Flex => centred,
        Parent::Block => RectF::new(centred.x, parent.y, w, h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::test_support::*;
    use crate::layout::{Content, LayoutName, Scene, compose as compose_scene};

    fn active(canvas: Canvas, room: &RoomView, speaker: Option<&str>) -> Scene {
        compose_scene(LayoutName::ActiveSpeaker, canvas, room, speaker)
    }

    fn rects(scene: &Scene) -> Vec<(i32, i32, u32, u32)> {
        scene.regions.iter().map(|r| xywh(&r.rect)).collect()
    }

    #[test]
    fn the_speaker_alone_fills_a_16_9_box() {
        let room = room_of(3);
        let scene = active(Canvas::new(1920, 1080), &room, Some("P2"));
        assert_eq!(rects(&scene), [(0, 0, 1920, 1080)]);
        let region = &scene.regions[0];
        assert_eq!(region.participant_sid, "P2");
        assert_eq!(region.track_sid.as_deref(), Some("P2-cam"));
        assert_eq!((region.fit, region.rounded), (Fit::Cover, 0));
        // One person on a wide canvas without a share: large label.
        assert_eq!(
            region.label.as_ref().map(|l| (l.large, l.font_px)),
            Some((true, 28))
        );
        // Wider than 16:9: full height, width H·16/9, centred.
        assert_eq!(
            rects(&active(Canvas::new(2560, 1080), &room, Some("P2"))),
            [(320, 0, 1920, 1080)]
        );
        // Narrower than 16:9: full width, height W·9/16, centred.
        assert_eq!(
            rects(&active(Canvas::new(1600, 1200), &room, Some("P2"))),
            [(0, 150, 1600, 900)]
        );
    }

    #[test]
    fn square_and_portrait_without_share() {
        let mut room = room_of(1);
        // Square: full height, width min(W, H·aspect).
        let scene = active(Canvas::new(1080, 1080), &room, None);
        assert_eq!(rects(&scene), [(0, 0, 1080, 1080)]);
        assert_eq!(
            scene.regions[0].label.as_ref().map(|l| l.large),
            Some(false)
        );
        room.participants[0].camera = Some(video("P1-cam", 720, 1280));
        assert_eq!(
            rects(&active(Canvas::new(1080, 1080), &room, None)),
            [(236, 0, 608, 1080)]
        );
        // Portrait: full width, height from the video, centred.
        assert_eq!(
            rects(&active(Canvas::new(1080, 1920), &room, None)),
            [(0, 0, 1080, 1920)]
        );
        room.participants[0].camera = Some(video("P1-cam", 1280, 720));
        assert_eq!(
            rects(&active(Canvas::new(1080, 1920), &room, None)),
            [(0, 656, 1080, 608)]
        );
    }

    #[test]
    fn a_wide_share_has_the_speaker_beside_it() {
        let room = sharing_room(3);
        let scene = active(Canvas::new(1920, 1080), &room, Some("P2"));
        // Box 400·1890/2320 = 325.86 px at x = 1564.14 + 30; share 1564.14 px
        // wide, its 16:9 video 879.8 px tall, centred.
        assert_eq!(rects(&scene), [(0, 100, 1564, 880), (1594, 448, 326, 184)]);
        let share = &scene.regions[0];
        assert_eq!(
            (share.content, share.fit),
            (Content::ScreenShare, Fit::Contain)
        );
        assert_eq!(share.track_sid.as_deref(), Some("P1-screen"));
        assert_eq!(
            share.label.as_ref().map(|l| l.text.as_str()),
            Some("Person 1's Screen")
        );
        assert_eq!(scene.regions[1].participant_sid, "P2");
        assert_eq!(
            scene.regions[1].label.as_ref().map(|l| l.large),
            Some(false)
        );
        // 1280 wide: 400·1250/1680 = 297.6, share 952.4.
        let scene = active(Canvas::new(1280, 720), &room, Some("P2"));
        assert_eq!(rects(&scene), [(0, 92, 952, 536), (982, 276, 298, 168)]);
    }

    #[test]
    fn square_and_portrait_shares_overlay_the_speaker() {
        let room = sharing_room(2);
        let scene = active(Canvas::new(1080, 1080), &room, Some("P2"));
        assert_eq!(rects(&scene), [(0, 236, 1080, 608), (780, 780, 240, 240)]);
        assert_eq!(scene.regions[1].z, 1);
        let scene = active(Canvas::new(1080, 1920), &room, Some("P2"));
        assert_eq!(rects(&scene), [(0, 656, 1080, 608), (684, 1524, 360, 360)]);
        let scene = active(Canvas::new(720, 1280), &room, Some("P2"));
        assert_eq!(rects(&scene), [(0, 438, 720, 405), (324, 884, 360, 360)]);
    }

    #[test]
    fn crop_with_a_share_overlays_at_the_corner() {
        let room = sharing_room(2);
        // Wide: 383×215.44 box at the corner; its 382.22×215.44 content is
        // centred in it (clientHeight 215 → width 215·16/9).
        let scene = compose_scene(LayoutName::Crop, Canvas::new(1920, 1080), &room, Some("P2"));
        assert_eq!(rects(&scene), [(0, 0, 1920, 1080), (1537, 865, 383, 215)]);
        let scene = compose_scene(LayoutName::Crop, Canvas::new(1080, 1080), &room, Some("P2"));
        assert_eq!(rects(&scene)[1], (840, 840, 240, 240));
        let scene = compose_scene(LayoutName::Crop, Canvas::new(1080, 1920), &room, Some("P2"));
        assert_eq!(rects(&scene)[1], (720, 1560, 360, 360));
        let content = speaker_box(
            RectF::new(1537.0, 864.56, 383.0, 215.44),
            Parent::Block,
            false,
            16.0 / 9.0,
        );
        assert!((content.w - 382.222).abs() < 1e-3 && (content.x - 1537.389).abs() < 1e-3);
    }

    #[test]
    fn the_speaker_can_be_the_sharer_and_can_be_camera_off() {
        let mut room = sharing_room(2);
        if let Some(camera) = room.participants[0].camera.as_mut() {
            camera.muted = true;
        }
        let scene = active(Canvas::new(1080, 1080), &room, Some("P1"));
        assert_eq!(scene.regions.len(), 2);
        assert_eq!(scene.regions[1].participant_sid, "P1");
        assert_eq!(scene.regions[1].track_sid, None);
        assert_eq!(
            scene.regions[1].label.as_ref().map(|l| l.text.as_str()),
            Some("Person 1")
        );
    }

    #[test]
    fn nobody_gives_an_empty_scene() {
        for canvas in [
            Canvas::new(1920, 1080),
            Canvas::new(2, 2),
            Canvas::new(0, 0),
            Canvas::new(1, 3),
        ] {
            assert!(
                active(canvas, &RoomView::default(), Some("P1"))
                    .regions
                    .is_empty()
            );
            let scene = active(canvas, &sharing_room(2), None);
            assert_eq!(scene.regions.len(), 2);
        }
    }
}

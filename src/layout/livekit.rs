//! LiveKit egress's default template: `grid`, `speaker`,
//! `single-speaker` (reference "LiveKit egress default template"). The
//! template never sets `data-lk-theme`, so there are no gaps, no padding
//! and no rounded corners. Participant tiles (grid, carousel, focus) get
//! a name label in Mux's normal style; a bare video (one track alone,
//! `single-speaker`) gets none.

use super::geometry::RectF;
use super::label::LabelStyle;
use super::model::{Canvas, ParticipantView, RoomView, VideoView};
use super::scene::{Content, Fit, Tile};
use super::speaker::{self, swap_speakers_into_view};

/// Carousel tiles are 16:10.
const CAROUSEL_ASPECT: f64 = 16.0 / 10.0;
/// An overflowing carousel shows a scrollbar this wide (tall).
const SCROLLBAR: f64 = 15.0;
/// At this canvas width and below the carousel moves under the focus.
const NARROW_MAX_W: f64 = 600.0;

/// One subscribed video track, as LiveKit's `useTracks` lists them.
#[derive(Debug, Clone, Copy)]
struct Track<'a> {
    participant: &'a ParticipantView,
    content: Content,
    video: &'a VideoView,
}

impl<'a> Track<'a> {
    /// Cover for landscape cameras; contain for portrait or square cameras
    /// and for shares (letterbox shows the page background).
    fn fit(&self) -> Fit {
        match self.content {
            Content::Camera if self.video.aspect() > 1.0 => Fit::Cover,
            _ => Fit::Contain,
        }
    }

    fn tile(&self, rect: RectF, label: LabelStyle) -> Tile<'a> {
        Tile {
            participant: self.participant,
            content: self.content,
            rect,
            fit: self.fit(),
            rounded: 0,
            label,
        }
    }
}

/// Cameras and shares in join order (camera before share).
fn tracks(room: &RoomView) -> Vec<Track<'_>> {
    room.participants
        .iter()
        .flat_map(|p| {
            let camera = p.camera.as_ref().map(|video| Track {
                participant: p,
                content: Content::Camera,
                video,
            });
            let share = p.screen_share.as_ref().map(|video| Track {
                participant: p,
                content: Content::ScreenShare,
                video,
            });
            camera.into_iter().chain(share)
        })
        .collect()
}

/// LiveKit's sort for the focus: shares first, then the speaker's camera,
/// then everyone else in join order.
fn sorted_tracks<'a>(room: &'a RoomView, speaker: Option<&str>) -> Vec<Track<'a>> {
    let speaker_sid = speaker::resolve(room, speaker).map(|p| p.sid.as_str());
    let (mut sorted, cameras): (Vec<Track<'a>>, Vec<Track<'a>>) = tracks(room)
        .into_iter()
        .partition(|t| t.content == Content::ScreenShare);
    let (speaking, others): (Vec<Track<'a>>, Vec<Track<'a>>) = cameras
        .into_iter()
        .partition(|t| Some(t.participant.sid.as_str()) == speaker_sid);
    sorted.extend(speaking);
    sorted.extend(others);
    sorted
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Orientation {
    Landscape,
    Portrait,
}

/// `@livekit/components-core` `GRID_LAYOUTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GridDef {
    cols: usize,
    rows: usize,
    orientation: Option<Orientation>,
    min_width: u32,
}

impl GridDef {
    const fn new(
        cols: usize,
        rows: usize,
        orientation: Option<Orientation>,
        min_width: u32,
    ) -> Self {
        Self {
            cols,
            rows,
            orientation,
            min_width,
        }
    }

    const fn max_tiles(&self) -> usize {
        self.cols * self.rows
    }
}

const GRID_LAYOUTS: [GridDef; 7] = [
    GridDef::new(1, 1, None, 0),
    GridDef::new(1, 2, Some(Orientation::Portrait), 0),
    GridDef::new(2, 1, Some(Orientation::Landscape), 0),
    GridDef::new(2, 2, None, 560),
    GridDef::new(3, 3, None, 700),
    GridDef::new(4, 4, None, 960),
    GridDef::new(5, 5, None, 1100),
];

/// `selectGridLayout`: the first layout holding `count` for which no later
/// layout of the same size fits the orientation better; a canvas narrower
/// than its `min_width` falls back to the next smaller layout (showing
/// fewer people).
fn select_grid(canvas: Canvas, count: usize) -> GridDef {
    // Square canvases stack two people: they count as portrait.
    let orientation = if canvas.width > canvas.height {
        Orientation::Landscape
    } else {
        Orientation::Portrait
    };
    let fits = |d: &GridDef| d.orientation.is_none_or(|o| o == orientation);
    let (mut layouts, mut count) = (&GRID_LAYOUTS[..], count);
    loop {
        let Some(&last) = layouts.last() else {
            return GRID_LAYOUTS[0];
        };
        let (index, def) = layouts
            .iter()
            .enumerate()
            .find(|&(i, d)| {
                d.max_tiles() >= count
                    && !layouts[i + 1..]
                        .iter()
                        .any(|l| l.max_tiles() == d.max_tiles() && fits(l))
            })
            .map_or((layouts.len() - 1, last), |(i, d)| (i, *d));
        if canvas.width >= def.min_width || index == 0 {
            return def;
        }
        count = layouts[index - 1].max_tiles();
        layouts = &layouts[..index];
    }
}

/// `grid`: equal cells of W/cols × H/rows-in-use, filled row by row (an
/// incomplete last row stays left-aligned); active speakers beyond the
/// page swap in. With a share it renders as `speaker`.
pub(crate) fn grid<'a>(canvas: Canvas, room: &'a RoomView, speaker: Option<&str>) -> Vec<Tile<'a>> {
    if room.screen_sharer().is_some() {
        return self::speaker(canvas, room, speaker);
    }
    let mut cells = tracks(room);
    let def = select_grid(canvas, cells.len());
    swap_speakers_into_view(&mut cells, def.max_tiles(), |t| {
        room.speaking_rank(&t.participant.sid)
    });
    cells.truncate(def.max_tiles());
    let cols = def.cols.max(1);
    let rows = cells.len().div_ceil(cols).max(1);
    let (w, h) = (canvas.w() / cols as f64, canvas.h() / rows as f64);
    cells
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let rect = RectF::new((i % cols) as f64 * w, (i / cols) as f64 * h, w, h);
            t.tile(rect, LabelStyle::Normal)
        })
        .collect()
}

/// `speaker`: the focus (first sorted track) takes the right 5/6, a
/// carousel of the others the left 1/6 (bottom 1/6 at W ≤ 600); one track
/// alone fills the canvas as a bare video.
pub(crate) fn speaker<'a>(
    canvas: Canvas,
    room: &'a RoomView,
    speaker: Option<&str>,
) -> Vec<Tile<'a>> {
    let mut sorted = sorted_tracks(room, speaker);
    if sorted.is_empty() {
        return Vec::new();
    }
    let focus_track = sorted.remove(0);
    let full = RectF::canvas(canvas);
    if sorted.is_empty() {
        return vec![focus_track.tile(full, LabelStyle::Hidden)];
    }
    let (focus, strip, vertical) = if canvas.w() > NARROW_MAX_W {
        let w = canvas.w() / 6.0;
        (
            RectF::new(w, 0.0, canvas.w() - w, canvas.h()),
            RectF::new(0.0, 0.0, w, canvas.h()),
            true,
        )
    } else {
        let h = canvas.h() / 6.0;
        (
            RectF::new(0.0, 0.0, canvas.w(), canvas.h() - h),
            RectF::new(0.0, canvas.h() - h, canvas.w(), h),
            false,
        )
    };
    let mut tiles = carousel(strip, vertical, sorted, room);
    tiles.push(focus_track.tile(focus, LabelStyle::Normal));
    tiles
}

/// Carousel tiles span the strip's width (height when horizontal) at
/// 16:10, stacked from the start; when they overflow, a 15 px scrollbar
/// narrows them. Tiles that start beyond the strip are not drawn (a
/// partly visible one is, the canvas clips it).
fn carousel<'a>(
    strip: RectF,
    vertical: bool,
    mut items: Vec<Track<'a>>,
    room: &RoomView,
) -> Vec<Tile<'a>> {
    let count = items.len() as f64;
    let (across, along) = if vertical {
        (strip.w, strip.h)
    } else {
        (strip.h, strip.w)
    };
    let step_for = |across: f64| {
        if vertical {
            across / CAROUSEL_ASPECT
        } else {
            across * CAROUSEL_ASPECT
        }
    };
    let (across, step) = if count * step_for(across) > along {
        let narrowed = (across - SCROLLBAR).max(0.0);
        (narrowed, step_for(narrowed))
    } else {
        (across, step_for(across))
    };
    let visible = if step > 0.0 {
        (along / step).ceil() as usize
    } else {
        0
    };
    swap_speakers_into_view(&mut items, visible, |t| {
        room.speaking_rank(&t.participant.sid)
    });
    items.truncate(visible);
    items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let offset = i as f64 * step;
            let rect = if vertical {
                RectF::new(strip.x, strip.y + offset, across, step)
            } else {
                RectF::new(strip.x + offset, strip.y, step, across)
            };
            t.tile(rect, LabelStyle::Normal)
        })
        .collect()
}

/// `single-speaker`: the first sorted track (the share if any, else the
/// speaker) fills the canvas as a bare video.
pub(crate) fn single_speaker<'a>(
    canvas: Canvas,
    room: &'a RoomView,
    speaker: Option<&str>,
) -> Vec<Tile<'a>> {
    sorted_tracks(room, speaker)
        .first()
        .map(|t| t.tile(RectF::canvas(canvas), LabelStyle::Hidden))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::test_support::*;
    use crate::layout::{LayoutName, Rgba, Scene, Theme, compose as compose_scene};

    const GRID: LayoutName = LayoutName::Grid(Theme::Dark);
    const SPEAKER: LayoutName = LayoutName::Speaker(Theme::Dark);
    const SINGLE: LayoutName = LayoutName::SingleSpeaker(Theme::Dark);

    fn scene(layout: LayoutName, w: u32, h: u32, room: &RoomView, speaker: Option<&str>) -> Scene {
        compose_scene(layout, Canvas::new(w, h), room, speaker)
    }

    fn rects(scene: &Scene) -> Vec<(i32, i32, u32, u32)> {
        scene.regions.iter().map(|r| xywh(&r.rect)).collect()
    }

    fn grid_shape(w: u32, h: u32, n: usize) -> (usize, usize) {
        let def = select_grid(Canvas::new(w, h), n);
        (def.cols, def.rows)
    }

    #[test]
    fn grid_selection() {
        assert_eq!(grid_shape(1920, 1080, 1), (1, 1));
        assert_eq!(grid_shape(1920, 1080, 2), (2, 1));
        assert_eq!(grid_shape(1080, 1920, 2), (1, 2));
        assert_eq!(grid_shape(1080, 1080, 2), (1, 2));
        for n in 3..=4 {
            assert_eq!(grid_shape(1920, 1080, n), (2, 2));
        }
        for n in 5..=9 {
            assert_eq!(grid_shape(1920, 1080, n), (3, 3));
        }
        for n in 10..=16 {
            assert_eq!(grid_shape(1920, 1080, n), (4, 4));
        }
        assert_eq!(grid_shape(1920, 1080, 17), (5, 5));
        assert_eq!(grid_shape(1920, 1080, 40), (5, 5));
        // Narrow canvases fall back to the next smaller grid.
        assert_eq!(grid_shape(720, 1280, 10), (3, 3));
        assert_eq!(grid_shape(1080, 1920, 17), (4, 4));
        assert_eq!(grid_shape(500, 900, 3), (1, 2));
        assert_eq!(grid_shape(550, 300, 3), (2, 1));
        assert_eq!(grid_shape(0, 0, 30), (1, 2));
    }

    #[test]
    fn grid_cells() {
        assert_eq!(
            rects(&scene(GRID, 1920, 1080, &room_of(1), None)),
            [(0, 0, 1920, 1080)]
        );
        assert_eq!(
            rects(&scene(GRID, 1920, 1080, &room_of(2), None)),
            [(0, 0, 960, 1080), (960, 0, 960, 1080)]
        );
        assert_eq!(
            rects(&scene(GRID, 1080, 1920, &room_of(2), None)),
            [(0, 0, 1080, 960), (0, 960, 1080, 960)]
        );
        // 3 people: 960×540 cells, bottom-right empty.
        assert_eq!(
            rects(&scene(GRID, 1920, 1080, &room_of(3), None)),
            [(0, 0, 960, 540), (960, 0, 960, 540), (0, 540, 960, 540)]
        );
        // 5 people in a 3×3 grid use 2 rows; 9 use 3.
        let five = rects(&scene(GRID, 1920, 1080, &room_of(5), None));
        assert_eq!(
            five,
            [
                (0, 0, 640, 540),
                (640, 0, 640, 540),
                (1280, 0, 640, 540),
                (0, 540, 640, 540),
                (640, 540, 640, 540)
            ]
        );
        assert_eq!(
            rects(&scene(GRID, 1920, 1080, &room_of(9), None))[8],
            (1280, 720, 640, 360)
        );
        // 10–16 in 4×4: 480 px columns.
        let ten = rects(&scene(GRID, 1920, 1080, &room_of(10), None));
        assert_eq!(
            (ten[3], ten[9]),
            ((1440, 0, 480, 360), (480, 720, 480, 360))
        );
        assert_eq!(
            rects(&scene(GRID, 1920, 1080, &room_of(16), None))[15],
            (1440, 810, 480, 270)
        );
    }

    #[test]
    fn grid_style_labels_and_paging() {
        let mut room = room_of(11);
        room.participants[1].camera = Some(video("P2-cam", 720, 1280));
        room.participants[2].camera = None;
        let s = scene(GRID, 720, 1280, &room, None);
        // 10 cameras want 4×4, which needs 960 px: 3×3, P11 is cut; P3
        // has no camera track and no tile.
        assert_eq!(s.regions.len(), 9);
        assert_eq!(s.regions[1].fit, Fit::Contain);
        assert_eq!(s.regions[0].fit, Fit::Cover);
        assert!(
            s.regions
                .iter()
                .all(|r| r.rounded == 0 && r.label.as_ref().is_some_and(|l| !l.large))
        );
        assert!(
            s.regions
                .iter()
                .all(|r| r.participant_sid != "P3" && r.participant_sid != "P11")
        );
        assert_eq!(s.background, Rgba::BLACK);
        // P11 speaking swaps in for the last visible non-speaker (P9, as
        // P10 speaks too).
        room.active_speakers = vec!["P11".into(), "P10".into()];
        let s = scene(GRID, 720, 1280, &room, None);
        let sids: Vec<&str> = s
            .regions
            .iter()
            .map(|r| r.participant_sid.as_str())
            .collect();
        assert_eq!(
            sids,
            ["P1", "P2", "P4", "P5", "P6", "P7", "P8", "P11", "P10"]
        );
        let light = scene(LayoutName::Grid(Theme::Light), 720, 1280, &room, None);
        assert_eq!(light.background, Rgba::WHITE);
    }

    #[test]
    fn grid_with_a_share_is_speaker() {
        let room = sharing_room(3);
        for theme in [Theme::Dark, Theme::Light] {
            let grid = scene(LayoutName::Grid(theme), 1920, 1080, &room, Some("P2"));
            assert_eq!(
                grid,
                scene(LayoutName::Speaker(theme), 1920, 1080, &room, Some("P2"))
            );
        }
    }

    #[test]
    fn speaker_focus_and_carousel() {
        let room = room_of(3);
        let s = scene(SPEAKER, 1920, 1080, &room, Some("P2"));
        assert_eq!(
            rects(&s),
            [(0, 0, 320, 200), (0, 200, 320, 200), (320, 0, 1600, 1080)]
        );
        let sids: Vec<&str> = s
            .regions
            .iter()
            .map(|r| r.participant_sid.as_str())
            .collect();
        assert_eq!(sids, ["P1", "P3", "P2"]);
        assert!(s.regions.iter().all(|r| {
            r.label
                .as_ref()
                .is_some_and(|l| !l.large && l.font_px == 24)
        }));
        // Without a speaker the first camera with video is the focus.
        assert_eq!(
            scene(SPEAKER, 1920, 1080, &room, None).regions[2].participant_sid,
            "P1"
        );
    }

    #[test]
    fn speaker_carousel_overflow_and_narrow_canvases() {
        // 7 in the carousel at 1920×1080 overflow: 305×190.6 tiles, the
        // 6th partly visible, the 7th below the canvas and not drawn.
        let room = room_of(8);
        let s = scene(SPEAKER, 1920, 1080, &room, Some("P1"));
        let r = rects(&s);
        assert_eq!(r.len(), 7);
        assert_eq!(&r[..2], [(0, 0, 305, 191), (0, 191, 305, 190)]);
        assert_eq!(r[5], (0, 953, 305, 191));
        assert_eq!(r[6], (320, 0, 1600, 1080));
        // 5 in the carousel fit without a scrollbar.
        assert_eq!(
            rects(&scene(SPEAKER, 1920, 1080, &room_of(6), None))[4],
            (0, 800, 320, 200)
        );
        // At W ≤ 600 the carousel runs along the bottom sixth: 320×200
        // tiles, two of which overflow 600 px, so the scrollbar takes 15 px.
        let r = rects(&scene(SPEAKER, 600, 1200, &room_of(3), None));
        assert_eq!(
            r,
            [
                (0, 1000, 296, 185),
                (296, 1000, 296, 185),
                (0, 0, 600, 1000)
            ]
        );
        let r = rects(&scene(SPEAKER, 600, 1200, &room_of(2), None));
        assert_eq!(r, [(0, 1000, 320, 200), (0, 0, 600, 1000)]);
    }

    #[test]
    fn speaker_with_a_share_and_alone() {
        let room = sharing_room(2);
        let s = scene(SPEAKER, 1920, 1080, &room, Some("P2"));
        // Focus: the share (contain); carousel: the speaker, then the rest.
        let focus = &s.regions[2];
        assert_eq!(
            (focus.content, focus.fit, xywh(&focus.rect)),
            (Content::ScreenShare, Fit::Contain, (320, 0, 1600, 1080))
        );
        assert_eq!(
            focus.label.as_ref().map(|l| l.text.as_str()),
            Some("Person 1's Screen")
        );
        let sids: Vec<&str> = s.regions[..2]
            .iter()
            .map(|r| r.participant_sid.as_str())
            .collect();
        assert_eq!(sids, ["P2", "P1"]);
        // One track alone fills the canvas, unlabelled.
        let alone = scene(SPEAKER, 1920, 1080, &room_of(1), None);
        assert_eq!(rects(&alone), [(0, 0, 1920, 1080)]);
        assert_eq!(alone.regions[0].label, None);
        assert!(
            scene(SPEAKER, 1920, 1080, &RoomView::default(), None)
                .regions
                .is_empty()
        );
    }

    #[test]
    fn single_speaker() {
        let room = room_of(3);
        let s = scene(SINGLE, 1920, 1080, &room, Some("P3"));
        assert_eq!(rects(&s), [(0, 0, 1920, 1080)]);
        assert_eq!(
            (
                s.regions[0].participant_sid.as_str(),
                s.regions[0].label.clone()
            ),
            ("P3", None)
        );
        let s = scene(SINGLE, 1280, 720, &sharing_room(3), Some("P3"));
        assert_eq!(
            (s.regions[0].content, s.regions[0].track_sid.as_deref()),
            (Content::ScreenShare, Some("P1-screen"))
        );
        let light = scene(
            LayoutName::SingleSpeaker(Theme::Light),
            1280,
            720,
            &room,
            None,
        );
        assert_eq!(
            (light.background, light.regions[0].participant_sid.as_str()),
            (Rgba::WHITE, "P1")
        );
    }

    #[test]
    fn degenerate_canvases_do_not_panic() {
        for (w, h) in [(0, 0), (1, 1), (2, 2), (600, 1), (u32::MAX, u32::MAX)] {
            for layout in [GRID, SPEAKER, SINGLE] {
                for room in [
                    RoomView::default(),
                    room_of(1),
                    room_of(30),
                    sharing_room(30),
                ] {
                    let s = scene(layout, w, h, &room, Some("P7"));
                    assert!(s.regions.len() <= 31);
                }
            }
        }
    }
}

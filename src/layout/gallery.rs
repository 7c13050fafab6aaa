//! Mux `gallery`: equal boxes of the largest area (Anton Dosov's
//! "optimal boxes", Mux's `calcOptimalBoxes`) flowing like CSS
//! `flex-wrap`; with a screen share on a wide canvas, the share plus a
//! column of people laid out with Mux's grid template areas.

use super::active_speaker::{self, Host, mux_share};
use super::geometry::{RectF, SIXTEEN_NINE, flex_shrunk, grow_tracks};
use super::label::LabelStyle;
use super::model::{Canvas, ParticipantView, RoomView, Shape};
use super::scene::{Fit, Tile};
use super::speaker::mux_page;

/// Mux `Participant`: `min-width: 160px; min-height: 90px`.
const MIN_TILE_W: f64 = 160.0;
const MIN_TILE_H: f64 = 90.0;
/// Rounded corners, wide canvases only.
const WIDE_RADIUS: u32 = 5;

/// Gap, padding and tile aspect by canvas shape (reference table
/// "gallery (no screen share)").
#[derive(Debug, Clone, Copy, PartialEq)]
struct Style {
    gap: f64,
    padding: f64,
    aspect: f64,
    rounded: u32,
}

impl Style {
    fn for_canvas(shape: Shape, people: usize) -> Self {
        match shape {
            Shape::Wide => Self {
                gap: 30.0,
                padding: 60.0,
                aspect: SIXTEEN_NINE,
                rounded: WIDE_RADIUS,
            },
            Shape::Square => Self {
                gap: 10.0,
                padding: 10.0,
                aspect: 1.0,
                rounded: 0,
            },
            Shape::Portrait => Self {
                gap: 10.0,
                padding: 0.0,
                aspect: if people <= 4 { SIXTEEN_NINE } else { 1.0 },
                rounded: 0,
            },
        }
    }
}

pub(crate) fn compose<'a>(
    canvas: Canvas,
    room: &'a RoomView,
    speaker: Option<&str>,
) -> Vec<Tile<'a>> {
    let page = mux_page(room, speaker);
    match room.screen_sharer() {
        None => boxes(canvas, &page),
        Some(sharer) if canvas.shape() == Shape::Wide => share_column(canvas, sharer, &page),
        // Mux renders gallery-with-share as active-speaker off wide canvases.
        Some(_) => active_speaker::compose(canvas, room, speaker, Host::Gallery),
    }
}

/// The box size `calcOptimalBoxes` picks.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BoxSize {
    w: f64,
    h: f64,
}

/// For each column count: rows = ⌈n/cols⌉, take the gaps off, let the
/// limiting dimension decide, floor width and height; keep the first
/// column count with the strictly largest area.
fn optimal_box(frame_w: f64, frame_h: f64, count: usize, aspect: f64, gap: f64) -> BoxSize {
    let mut best = (0.0, BoxSize { w: 0.0, h: 0.0 });
    for cols in 1..=count {
        let rows = count.div_ceil(cols);
        // Clamped at 0 so tiny canvases cannot make a "positive" area from
        // two negative sides.
        let packed_w = (frame_w - gap * (cols - 1) as f64).max(0.0);
        let packed_h = (frame_h - gap * (rows - 1) as f64).max(0.0);
        let (w, h) = if packed_w / (cols as f64 * aspect) <= packed_h / rows as f64 {
            let w = (packed_w / cols as f64).floor();
            (w, (w / aspect).floor())
        } else {
            let h = (packed_h / rows as f64).floor();
            ((h * aspect).floor(), h)
        };
        if w * h > best.0 {
            best = (w * h, BoxSize { w, h });
        }
    }
    best.1
}

/// CSS `flex-wrap: wrap` with `gap`, `justify-content: center` and
/// `align-content: center`: rows fill greedily, each row (the last too)
/// is centred, the block is centred vertically.
fn flex_wrap(frame: RectF, count: usize, size: BoxSize, gap: f64) -> Vec<RectF> {
    let per_row = (((frame.w + gap) / (size.w + gap)).floor() as usize).clamp(1, count.max(1));
    let rows = count.div_ceil(per_row);
    let block_h = rows as f64 * size.h + rows.saturating_sub(1) as f64 * gap;
    let top = frame.y + (frame.h - block_h) / 2.0;
    (0..count)
        .map(|i| {
            let (row, col) = (i / per_row, i % per_row);
            let in_row = per_row.min(count - row * per_row);
            let row_w = in_row as f64 * size.w + (in_row - 1) as f64 * gap;
            let left = frame.x + (frame.w - row_w) / 2.0;
            RectF::new(
                left + col as f64 * (size.w + gap),
                top + row as f64 * (size.h + gap),
                size.w,
                size.h,
            )
        })
        .collect()
}

fn boxes<'a>(canvas: Canvas, page: &[&'a ParticipantView]) -> Vec<Tile<'a>> {
    let shape = canvas.shape();
    let style = Style::for_canvas(shape, page.len());
    let label = LabelStyle::mux(shape == Shape::Wide, false, page.len());
    let tile = |p, rect| Tile::camera(p, rect, Fit::Cover, style.rounded, label);
    // Mux: one portrait camera on a portrait canvas fills the canvas.
    if let [only] = page
        && shape == Shape::Portrait
        && only.camera.as_ref().is_some_and(|c| c.is_portrait())
    {
        return vec![tile(*only, RectF::canvas(canvas))];
    }
    let frame = RectF::new(
        style.padding,
        style.padding,
        (canvas.w() - 2.0 * style.padding).max(0.0),
        (canvas.h() - 2.0 * style.padding).max(0.0),
    );
    let rects = optimal_boxes(frame, page.len(), style.aspect, style.gap);
    page.iter()
        .zip(rects)
        .map(|(p, rect)| tile(*p, rect))
        .collect()
}

/// `count` equal boxes in `frame`: `optimal_box` (at least the 160×90
/// tile minimum) flowed by `flex_wrap`. Also the layout templates'
/// `optimal_boxes` helper.
pub(crate) fn optimal_boxes(frame: RectF, count: usize, aspect: f64, gap: f64) -> Vec<RectF> {
    let best = optimal_box(frame.w, frame.h, count, aspect, gap);
    let size = BoxSize {
        w: best.w.max(MIN_TILE_W),
        h: best.h.max(MIN_TILE_H),
    };
    flex_wrap(frame, count, size, gap)
}

const SHARE_PADDING: f64 = 60.0;
const SHARE_GAP: f64 = 30.0;

/// Mux `generateScreenshareGalleryTemplateAreas`, one string per row.
const AREAS: [&[&str]; 10] = [
    &["A"],
    &["A", "B"],
    &["A", "B", "C"],
    &["A", "B", "C", "D"],
    &["A", "B", "C", "D", "E"],
    &["A B", "C D", "E F"],
    &["A A B B", "C C D D", "E E F F", ". G G ."],
    &["A B", "C D", "E F", "G H"],
    &["A A B B", "C C D D", "E E F F", "G G H H", ". I I ."],
    &["A B", "C D", "E F", "G H", "I J"],
];

/// Where a letter sits in a template: its row and first/last column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Area {
    row: usize,
    first_col: usize,
    last_col: usize,
}

fn area(template: &[&str], letter: &str) -> Option<Area> {
    template.iter().enumerate().find_map(|(row, line)| {
        let cols: Vec<usize> = line
            .split_whitespace()
            .enumerate()
            .filter(|(_, name)| *name == letter)
            .map(|(col, _)| col)
            .collect();
        Some(Area {
            row,
            first_col: *cols.first()?,
            last_col: *cols.last()?,
        })
    })
}

/// Wide canvas with a share: padding 60; the share (`width: 100%`) and
/// the people column (400 px, 600 px above 5 people, `margin-left: 30px`)
/// shrink together, so the column is spec·(W−150)/(W−120+spec).
pub(crate) fn share_column<'a>(
    canvas: Canvas,
    sharer: &'a ParticipantView,
    page: &[&'a ParticipantView],
) -> Vec<Tile<'a>> {
    let inner = RectF::new(
        SHARE_PADDING,
        SHARE_PADDING,
        (canvas.w() - 2.0 * SHARE_PADDING).max(0.0),
        (canvas.h() - 2.0 * SHARE_PADDING).max(0.0),
    );
    let basis = if page.len() > 5 { 600.0 } else { 400.0 };
    let column_w = flex_shrunk(inner.w, basis, SHARE_GAP);
    let share_w = (inner.w - SHARE_GAP - column_w).max(0.0);
    let column = RectF::new(inner.x + share_w + SHARE_GAP, inner.y, column_w, inner.h);
    let mut tiles = vec![mux_share(
        sharer,
        RectF::new(inner.x, inner.y, share_w, inner.h),
    )];
    tiles.extend(column_tiles(column, page));
    tiles
}

/// A person's grid area in the column: its row, left edge and width.
#[derive(Debug, Clone, Copy)]
struct Placed<'a> {
    participant: &'a ParticipantView,
    row: usize,
    x: f64,
    w: f64,
}

/// The column's CSS grid: equal column tracks, people in areas `A`, `B`,
/// ... of Mux's template; rows sized by [`row_tracks`].
fn column_tiles<'a>(column: RectF, page: &[&'a ParticipantView]) -> Vec<Tile<'a>> {
    let Some(template) = page
        .len()
        .checked_sub(1)
        .map(|i| AREAS.get(i).unwrap_or(&AREAS[9]))
    else {
        return Vec::new();
    };
    let cols = template
        .first()
        .map_or(1, |row| row.split_whitespace().count())
        .max(1);
    let track_w = ((column.w - SHARE_GAP * (cols - 1) as f64) / cols as f64).max(0.0);
    let placed: Vec<Placed<'a>> = page
        .iter()
        .zip('A'..='Z')
        .filter_map(|(p, letter)| {
            let area = area(template, &letter.to_string())?;
            let span = (area.last_col - area.first_col) as f64;
            Some(Placed {
                participant: p,
                row: area.row,
                x: column.x + area.first_col as f64 * (track_w + SHARE_GAP),
                w: (span + 1.0) * track_w + span * SHARE_GAP,
            })
        })
        .collect();
    let rows = row_tracks(column, template.len(), &placed);
    placed
        .into_iter()
        .filter_map(|a| {
            let &(top, height) = rows.get(a.row)?;
            let rect = RectF::new(a.x, top, a.w, height);
            Some(Tile::camera(
                a.participant,
                rect,
                Fit::Cover,
                WIDE_RADIUS,
                LabelStyle::Normal,
            ))
        })
        .collect()
}

/// `(top, height)` of each grid row: rows start at the 90 px tile minimum
/// and grow equally up to the video height at their tiles' width; the
/// block is centred vertically (`align-content: center`).
fn row_tracks(column: RectF, rows: usize, placed: &[Placed<'_>]) -> Vec<(f64, f64)> {
    let limits: Vec<f64> = (0..rows)
        .map(|row| {
            placed
                .iter()
                .filter(|a| a.row == row)
                .map(|a| a.w / a.participant.camera_aspect())
                .fold(MIN_TILE_H, f64::max)
        })
        .collect();
    let gaps = SHARE_GAP * rows.saturating_sub(1) as f64;
    let heights = grow_tracks(MIN_TILE_H, &limits, column.h - gaps);
    let block_h = heights.iter().sum::<f64>() + gaps;
    let mut top = column.y + (column.h - block_h) / 2.0;
    heights
        .into_iter()
        .map(|h| {
            let row = (top, h);
            top += h + SHARE_GAP;
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::test_support::*;
    use crate::layout::{Content, LayoutName, Rect, Scene, compose as compose_scene};

    const MUX_CANVASES: [(u32, u32); 6] = [
        (1920, 1080),
        (1280, 720),
        (1080, 1920),
        (720, 1280),
        (1080, 1080),
        (720, 720),
    ];

    fn gallery(w: u32, h: u32, room: &RoomView) -> Scene {
        compose_scene(LayoutName::Gallery, Canvas::new(w, h), room, None)
    }

    fn rects(scene: &Scene) -> Vec<(i32, i32, u32, u32)> {
        scene.regions.iter().map(|r| xywh(&r.rect)).collect()
    }

    fn sizes(w: u32, h: u32) -> Vec<(u32, u32)> {
        (1..=10)
            .map(|n| {
                let scene = gallery(w, h, &room_of(n));
                let first = scene.regions[0].rect;
                assert!(
                    scene
                        .regions
                        .iter()
                        .all(|r| (r.rect.w, r.rect.h) == (first.w, first.h)),
                    "{w}×{h} n={n}"
                );
                (first.w, first.h)
            })
            .collect()
    }

    #[test]
    fn optimal_box_picks_the_largest_area() {
        // 2 people at 1920×1080: frame 1800×960; 1 column gives 826×465,
        // 2 columns 885×497 (1770/2 wide, ⌊885·9/16⌋ high).
        assert_eq!(
            optimal_box(1800.0, 960.0, 2, SIXTEEN_NINE, 30.0),
            BoxSize { w: 885.0, h: 497.0 }
        );
        // A tie keeps the first column count (square, 10 people: 3 and 4
        // columns both give 257×257).
        assert_eq!(
            optimal_box(1060.0, 1060.0, 10, 1.0, 10.0),
            BoxSize { w: 257.0, h: 257.0 }
        );
        assert_eq!(
            optimal_box(0.0, 0.0, 3, 1.0, 10.0),
            BoxSize { w: 0.0, h: 0.0 }
        );
        assert_eq!(
            optimal_box(-18.0, -18.0, 3, 1.0, 10.0),
            BoxSize { w: 0.0, h: 0.0 }
        );
    }

    #[test]
    fn tile_sizes_for_1_to_10_people() {
        assert_eq!(
            sizes(1920, 1080),
            [
                (1706, 960),
                (885, 497),
                (826, 465),
                (826, 465),
                (580, 326),
                (580, 326),
                (533, 300),
                (533, 300),
                (533, 300),
                (427, 240)
            ]
        );
        let square: Vec<(u32, u32)> = [1060, 525, 525, 525, 346, 346, 346, 346, 346, 257]
            .iter()
            .map(|&s| (s, s))
            .collect();
        assert_eq!(sizes(1080, 1080), square);
        assert_eq!(
            sizes(1080, 1920),
            [
                (1080, 607),
                (1080, 607),
                (1080, 607),
                (839, 472),
                (535, 535),
                (535, 535),
                (472, 472),
                (472, 472),
                (376, 376),
                (376, 376)
            ]
        );
    }

    #[test]
    fn wide_positions() {
        assert_eq!(
            rects(&gallery(1920, 1080, &room_of(1))),
            [(107, 60, 1706, 960)]
        );
        assert_eq!(
            rects(&gallery(1920, 1080, &room_of(2))),
            [(60, 292, 885, 497), (975, 292, 885, 497)]
        );
        // 3 people: 2 per row, the last row centred.
        assert_eq!(
            rects(&gallery(1920, 1080, &room_of(3))),
            [
                (119, 60, 826, 465),
                (975, 60, 826, 465),
                (547, 555, 826, 465)
            ]
        );
        // 7 people: rows start at 130.5 px; half-up rounding keeps 533 px.
        assert_eq!(
            rects(&gallery(1920, 1080, &room_of(7))),
            [
                (131, 60, 533, 300),
                (694, 60, 533, 300),
                (1257, 60, 533, 300),
                (131, 390, 533, 300),
                (694, 390, 533, 300),
                (1257, 390, 533, 300),
                (694, 720, 533, 300),
            ]
        );
        // 10 people: 4 + 4 + 2.
        assert_eq!(
            rects(&gallery(1920, 1080, &room_of(10))),
            [
                (61, 150, 427, 240),
                (518, 150, 427, 240),
                (975, 150, 427, 240),
                (1432, 150, 427, 240),
                (61, 420, 427, 240),
                (518, 420, 427, 240),
                (975, 420, 427, 240),
                (1432, 420, 427, 240),
                (518, 690, 427, 240),
                (975, 690, 427, 240),
            ]
        );
    }

    #[test]
    fn square_positions() {
        assert_eq!(
            rects(&gallery(1080, 1080, &room_of(1))),
            [(10, 10, 1060, 1060)]
        );
        assert_eq!(
            rects(&gallery(1080, 1080, &room_of(5))),
            [
                (11, 189, 346, 346),
                (367, 189, 346, 346),
                (723, 189, 346, 346),
                (189, 545, 346, 346),
                (545, 545, 346, 346)
            ]
        );
        // 10 people: 3 columns by the algorithm, but 4 boxes fit a row.
        assert_eq!(
            rects(&gallery(1080, 1080, &room_of(10))),
            [
                (11, 145, 257, 257),
                (278, 145, 257, 257),
                (545, 145, 257, 257),
                (812, 145, 257, 257),
                (11, 412, 257, 257),
                (278, 412, 257, 257),
                (545, 412, 257, 257),
                (812, 412, 257, 257),
                (278, 679, 257, 257),
                (545, 679, 257, 257),
            ]
        );
    }

    #[test]
    fn portrait_positions() {
        assert_eq!(
            rects(&gallery(1080, 1920, &room_of(1))),
            [(0, 657, 1080, 607)]
        );
        assert_eq!(
            rects(&gallery(1080, 1920, &room_of(4))),
            [
                (121, 1, 839, 472),
                (121, 483, 839, 472),
                (121, 965, 839, 472),
                (121, 1447, 839, 472)
            ]
        );
        // Above 4 people the tiles turn square.
        assert_eq!(
            rects(&gallery(1080, 1920, &room_of(5))),
            [
                (0, 148, 535, 535),
                (545, 148, 535, 535),
                (0, 693, 535, 535),
                (545, 693, 535, 535),
                (273, 1238, 535, 535)
            ]
        );
        assert_eq!(
            rects(&gallery(1080, 1920, &room_of(9)))[8],
            (352, 1544, 376, 376)
        );
    }

    #[test]
    fn a_lone_portrait_camera_fills_a_portrait_canvas() {
        let mut room = room_of(1);
        room.participants[0].camera = Some(video("P1-cam", 720, 1280));
        assert_eq!(rects(&gallery(1080, 1920, &room)), [(0, 0, 1080, 1920)]);
        // Not on a square canvas, and not with unknown dimensions.
        assert_eq!(rects(&gallery(1080, 1080, &room)), [(10, 10, 1060, 1060)]);
        room.participants[0].camera = Some(video("P1-cam", 0, 0));
        assert_eq!(rects(&gallery(1080, 1920, &room)), [(0, 657, 1080, 607)]);
    }

    #[test]
    fn tiles_stay_inside_and_never_overlap() {
        for (w, h) in MUX_CANVASES {
            for n in 1..=10 {
                let scene = gallery(w, h, &room_of(n));
                assert_eq!(scene.regions.len(), n);
                let canvas = Rect { x: 0, y: 0, w, h };
                for (i, a) in scene.regions.iter().enumerate() {
                    let r = a.rect;
                    assert!(
                        r.x >= 0
                            && r.y >= 0
                            && r.right() <= canvas.right()
                            && r.bottom() <= canvas.bottom(),
                        "{w}×{h} n={n} {r:?}"
                    );
                    assert!(r.w >= 160 && r.h >= 90, "{w}×{h} n={n} {r:?}");
                    for b in &scene.regions[i + 1..] {
                        assert!(!r.overlaps(&b.rect), "{w}×{h} n={n} {r:?} {:?}", b.rect);
                    }
                }
            }
        }
    }

    #[test]
    fn style_labels_and_placeholders() {
        let mut room = room_of(4);
        room.participants[1].camera = None;
        if let Some(camera) = room.participants[2].camera.as_mut() {
            camera.muted = true;
        }
        room.participants[3].name = "Grace\nHopper".into();
        let scene = gallery(1920, 1080, &room);
        let r = &scene.regions;
        assert_eq!(
            (r[0].rounded, r[0].fit, r[0].content),
            (5, Fit::Cover, Content::Camera)
        );
        assert_eq!(r[0].track_sid.as_deref(), Some("P1-cam"));
        assert_eq!(
            (r[1].track_sid.clone(), r[2].track_sid.clone()),
            (None, None)
        );
        let label = r[3].label.clone().expect("label");
        assert_eq!(
            (label.text.as_str(), label.large, label.font_px),
            ("Grace", true, 28)
        );
        // Tile (975, 555, 826, 465): 10 px in, 50 px tall, 806 px at most.
        assert_eq!(xywh(&label.rect), (985, 960, 806, 50));
        assert_eq!(r.iter().map(|r| r.z).collect::<Vec<_>>(), [0, 1, 2, 3]);
        // Five people: normal labels; square canvas: no rounding, normal.
        let five = gallery(1920, 1080, &room_of(5));
        assert!(five.regions.iter().all(|r| {
            r.label
                .as_ref()
                .is_some_and(|l| !l.large && l.font_px == 24)
        }));
        let square = gallery(1080, 1080, &room_of(2));
        assert!(
            square
                .regions
                .iter()
                .all(|r| r.rounded == 0 && r.label.as_ref().is_some_and(|l| !l.large))
        );
    }

    #[test]
    fn an_eleventh_speaker_is_promoted_onto_the_page() {
        let mut room = room_of(12);
        let on_page = |scene: &Scene| {
            scene
                .regions
                .iter()
                .map(|r| r.participant_sid.clone())
                .collect::<Vec<_>>()
        };
        let scene = gallery(1920, 1080, &room);
        assert_eq!(scene.regions.len(), 10);
        assert!(!on_page(&scene).contains(&"P11".to_string()));
        room.active_speakers = vec!["P11".into()];
        let scene = compose_scene(
            LayoutName::Gallery,
            Canvas::new(1920, 1080),
            &room,
            Some("P11"),
        );
        assert_eq!(on_page(&scene)[..3], ["P11", "P1", "P2"]);
        assert!(!on_page(&scene).contains(&"P10".to_string()));
        room.active_speakers = vec!["P12".into()];
        let scene = compose_scene(
            LayoutName::Gallery,
            Canvas::new(1920, 1080),
            &room,
            Some("P12"),
        );
        assert_eq!(on_page(&scene)[0], "P12");
        assert_eq!(scene.regions.len(), 10);
    }

    #[test]
    fn share_column_numbers() {
        // 5 people at 1920: column 321.8 px from x = 1538.2, rows of 168 px.
        let scene = gallery(1920, 1080, &sharing_room(5));
        assert_eq!(
            rects(&scene),
            [
                (60, 133, 1448, 814),
                (1538, 60, 322, 168),
                (1538, 258, 322, 168),
                (1538, 456, 322, 168),
                (1538, 654, 322, 168),
                (1538, 852, 322, 168),
            ]
        );
        let share = &scene.regions[0];
        assert_eq!(
            (share.content, share.fit, share.rounded),
            (Content::ScreenShare, Fit::Contain, 0)
        );
        assert_eq!(
            share.label.as_ref().map(|l| (l.text.as_str(), l.large)),
            Some(("Person 1's Screen", false))
        );
        assert!(
            scene.regions[1..]
                .iter()
                .all(|r| r.rounded == 5 && r.label.as_ref().is_some_and(|l| !l.large))
        );
        // 2 people: rows reach the video height at the tile's width
        // (321.8·9/16 = 181.0) and the block is centred.
        assert_eq!(
            rects(&gallery(1920, 1080, &sharing_room(2)))[1..],
            [(1538, 344, 322, 181), (1538, 555, 322, 181)]
        );
        // 6 people: the column grows to 442.5 px, two tracks of 206.25.
        assert_eq!(
            rects(&gallery(1920, 1080, &sharing_room(6)))[1..],
            [
                (1418, 336, 206, 116),
                (1654, 336, 206, 116),
                (1418, 482, 206, 116),
                (1654, 482, 206, 116),
                (1418, 628, 206, 116),
                (1654, 628, 206, 116),
            ]
        );
        // 7 people: `. G G .` centres G across the middle two tracks.
        let seven = rects(&gallery(1920, 1080, &sharing_room(7)));
        assert_eq!(seven[1], (1418, 263, 206, 116));
        assert_eq!(seven[7], (1536, 701, 206, 116));
        // 1280×720: column 289.7 px (385.2 above 5 people).
        assert_eq!(
            rects(&gallery(1280, 720, &sharing_room(1))),
            [(60, 124, 840, 472), (930, 279, 290, 162)]
        );
        let ten = rects(&gallery(1280, 720, &sharing_room(10)));
        assert_eq!(ten[1].0, 835);
        assert_eq!(ten[2].0 as u32 + ten[2].2, 1220);
    }

    #[test]
    fn share_column_geometry_in_css_pixels() {
        let column =
            |w: f64, n: usize| flex_shrunk(w - 120.0, if n > 5 { 600.0 } else { 400.0 }, 30.0);
        assert!((column(1920.0, 5) - 321.818).abs() < 1e-3);
        assert!((column(1920.0, 6) - 442.5).abs() < 1e-9);
        assert!((column(1280.0, 5) - 289.744).abs() < 1e-3);
        assert!((1160.0 - 30.0 - column(1280.0, 5) - 840.256).abs() < 1e-3);
        assert!((column(1280.0, 6) - 385.227).abs() < 1e-3);
        assert!((1800.0 - 30.0 - column(1920.0, 5) - 1448.182).abs() < 1e-3);
        assert!((1160.0 - 30.0 - column(1280.0, 6) - 744.773).abs() < 1e-3);
        assert_eq!(
            area(AREAS[8], "I"),
            Some(Area {
                row: 4,
                first_col: 1,
                last_col: 2
            })
        );
        assert_eq!(area(AREAS[8], "J"), None);
    }

    #[test]
    fn off_wide_a_share_renders_as_active_speaker() {
        let room = sharing_room(4);
        let scene = compose_scene(
            LayoutName::Gallery,
            Canvas::new(1080, 1080),
            &room,
            Some("P3"),
        );
        assert_eq!(rects(&scene), [(0, 236, 1080, 608), (780, 780, 240, 240)]);
        assert_eq!(scene.regions[1].participant_sid, "P3");
        let scene = compose_scene(
            LayoutName::Gallery,
            Canvas::new(720, 1280),
            &room,
            Some("P3"),
        );
        assert_eq!(rects(&scene)[1], (324, 884, 360, 360));
    }

    #[test]
    fn degenerate_canvases_do_not_panic() {
        for (w, h) in [
            (0, 0),
            (1, 1),
            (2, 2),
            (2, 1),
            (1, 2),
            (u32::MAX, 1),
            (1, u32::MAX),
        ] {
            assert!(gallery(w, h, &RoomView::default()).regions.is_empty());
            for n in [1, 5, 12] {
                assert_eq!(gallery(w, h, &room_of(n)).regions.len(), n.min(10));
                assert_eq!(
                    gallery(w, h, &sharing_room(n)).regions.len(),
                    if w > h { n.min(10) + 1 } else { 2 }
                );
            }
        }
    }
}

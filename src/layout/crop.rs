//! Mux `crop`: fixed rectangles (fractions of the canvas) per people
//! count, video cropped to fill; with a share it renders as
//! `active-speaker` with the speaker overlaid.

use super::active_speaker::{self, Host};
use super::geometry::RectF;
use super::label::LabelStyle;
use super::model::{Canvas, RoomView, Shape};
use super::scene::{Fit, Tile};
use super::speaker::mux_page;

/// `(x, y, w, h)` as fractions of the canvas.
type Frac = (f64, f64, f64, f64);

// Mux's literal fractions (0.333/0.666 leave a 1–2 px strip at the edge,
// as in the browser).
const T: f64 = 0.333;
const TT: f64 = 0.666;

const WIDE: [&[Frac]; 10] = [
    &[(0.0, 0.0, 1.0, 1.0)],
    &[(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 0.5, 1.0)],
    &[(0.0, 0.0, T, 1.0), (T, 0.0, T, 1.0), (TT, 0.0, T, 1.0)],
    &[
        (0.0, 0.0, 0.5, 0.5),
        (0.5, 0.0, 0.5, 0.5),
        (0.0, 0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5, 0.5),
    ],
    &[
        (0.0, 0.0, T, 0.5),
        (T, 0.0, T, 0.5),
        (TT, 0.0, T, 0.5),
        (0.0, 0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5, 0.5),
    ],
    &[
        (0.0, 0.0, T, 0.5),
        (T, 0.0, T, 0.5),
        (TT, 0.0, T, 0.5),
        (0.0, 0.5, T, 0.5),
        (T, 0.5, T, 0.5),
        (TT, 0.5, T, 0.5),
    ],
    &[
        (0.0, 0.0, 0.25, 0.5),
        (0.25, 0.0, 0.25, 0.5),
        (0.5, 0.0, 0.25, 0.5),
        (0.75, 0.0, 0.25, 0.5),
        (0.0, 0.5, T, 0.5),
        (T, 0.5, T, 0.5),
        (TT, 0.5, T, 0.5),
    ],
    &[
        (0.0, 0.0, 0.25, 0.5),
        (0.25, 0.0, 0.25, 0.5),
        (0.5, 0.0, 0.25, 0.5),
        (0.75, 0.0, 0.25, 0.5),
        (0.0, 0.5, 0.25, 0.5),
        (0.25, 0.5, 0.25, 0.5),
        (0.5, 0.5, 0.25, 0.5),
        (0.75, 0.5, 0.25, 0.5),
    ],
    &[
        (0.0, 0.0, 0.2, 0.5),
        (0.2, 0.0, 0.2, 0.5),
        (0.4, 0.0, 0.2, 0.5),
        (0.6, 0.0, 0.2, 0.5),
        (0.8, 0.0, 0.2, 0.5),
        (0.0, 0.5, 0.25, 0.5),
        (0.25, 0.5, 0.25, 0.5),
        (0.5, 0.5, 0.25, 0.5),
        (0.75, 0.5, 0.25, 0.5),
    ],
    &[
        (0.0, 0.0, 0.2, 0.5),
        (0.2, 0.0, 0.2, 0.5),
        (0.4, 0.0, 0.2, 0.5),
        (0.6, 0.0, 0.2, 0.5),
        (0.8, 0.0, 0.2, 0.5),
        (0.0, 0.5, 0.2, 0.5),
        (0.2, 0.5, 0.2, 0.5),
        (0.4, 0.5, 0.2, 0.5),
        (0.6, 0.5, 0.2, 0.5),
        (0.8, 0.5, 0.2, 0.5),
    ],
];

const SQUARE: [&[Frac]; 9] = [
    &[(0.0, 0.0, 1.0, 1.0)],
    &[(0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 0.5)],
    &[
        (0.0, 0.0, 0.5, 0.5),
        (0.5, 0.0, 0.5, 0.5),
        (0.0, 0.5, 1.0, 0.5),
    ],
    &[
        (0.0, 0.0, 0.5, 0.5),
        (0.5, 0.0, 0.5, 0.5),
        (0.0, 0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5, 0.5),
    ],
    &[
        (0.0, 0.0, T, 0.5),
        (T, 0.0, T, 0.5),
        (TT, 0.0, T, 0.5),
        (0.0, 0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5, 0.5),
    ],
    &[
        (0.0, 0.0, T, 0.5),
        (T, 0.0, T, 0.5),
        (TT, 0.0, T, 0.5),
        (0.0, 0.5, T, 0.5),
        (T, 0.5, T, 0.5),
        (TT, 0.5, T, 0.5),
    ],
    &[
        (0.0, 0.0, 0.25, 0.5),
        (0.25, 0.0, 0.25, 0.5),
        (0.5, 0.0, 0.25, 0.5),
        (0.75, 0.0, 0.25, 0.5),
        (0.0, 0.5, T, 0.5),
        (T, 0.5, T, 0.5),
        (TT, 0.5, T, 0.5),
    ],
    &[
        (0.0, 0.0, T, T),
        (T, 0.0, T, T),
        (TT, 0.0, T, T),
        (0.0, T, T, T),
        (T, T, T, T),
        (TT, T, T, T),
        (0.0, TT, 0.5, T),
        (0.5, TT, 0.5, T),
    ],
    &[
        (0.0, 0.0, T, T),
        (T, 0.0, T, T),
        (TT, 0.0, T, T),
        (0.0, T, T, T),
        (T, T, T, T),
        (TT, T, T, T),
        (0.0, TT, T, T),
        (T, TT, T, T),
        (TT, TT, T, T),
    ],
];

const PORTRAIT: [&[Frac]; 8] = [
    &[(0.0, 0.0, 1.0, 1.0)],
    &[(0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 0.5)],
    &[
        (0.0, 0.0, 0.5, 0.5),
        (0.5, 0.0, 0.5, 0.5),
        (0.0, 0.5, 1.0, 0.5),
    ],
    &[
        (0.0, 0.0, 0.5, 0.5),
        (0.5, 0.0, 0.5, 0.5),
        (0.0, 0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5, 0.5),
    ],
    &[
        (0.0, 0.0, 0.5, T),
        (0.0, T, 0.5, T),
        (0.0, TT, 0.5, T),
        (0.5, 0.0, 0.5, 0.5),
        (0.5, 0.5, 0.5, 0.5),
    ],
    &[
        (0.0, 0.0, 0.5, T),
        (0.0, T, 0.5, T),
        (0.0, TT, 0.5, T),
        (0.5, 0.0, 0.5, T),
        (0.5, T, 0.5, T),
        (0.5, TT, 0.5, T),
    ],
    &[
        (0.0, 0.0, 0.5, 0.25),
        (0.0, 0.25, 0.5, 0.25),
        (0.0, 0.5, 0.5, 0.25),
        (0.0, 0.75, 0.5, 0.25),
        (0.5, 0.0, 0.5, T),
        (0.5, T, 0.5, T),
        (0.5, TT, 0.5, T),
    ],
    &[
        (0.0, 0.0, 0.5, 0.25),
        (0.0, 0.25, 0.5, 0.25),
        (0.0, 0.5, 0.5, 0.25),
        (0.0, 0.75, 0.5, 0.25),
        (0.5, 0.0, 0.5, 0.25),
        (0.5, 0.25, 0.5, 0.25),
        (0.5, 0.5, 0.5, 0.25),
        (0.5, 0.75, 0.5, 0.25),
    ],
];

fn table(shape: Shape) -> &'static [&'static [Frac]] {
    match shape {
        Shape::Wide => &WIDE,
        Shape::Square => &SQUARE,
        Shape::Portrait => &PORTRAIT,
    }
}

pub(crate) fn compose<'a>(
    canvas: Canvas,
    room: &'a RoomView,
    speaker: Option<&str>,
) -> Vec<Tile<'a>> {
    if room.screen_sharer().is_some() {
        return active_speaker::compose(canvas, room, speaker, Host::Crop);
    }
    let page = mux_page(room, speaker);
    // Mux counts the whole page for the large-label rule.
    let label = LabelStyle::mux(canvas.shape() == Shape::Wide, false, page.len());
    page.iter()
        .zip(rects(canvas, page.len()))
        .map(|(p, rect)| Tile::camera(p, rect, Fit::Cover, 0, label))
        .collect()
}

/// The table's rectangles for `count` people on `canvas`; people beyond
/// the table's length are cut. Also the layout templates' `crop_rects`.
pub(crate) fn rects(canvas: Canvas, count: usize) -> Vec<RectF> {
    let table = table(canvas.shape());
    let shown = count.min(table.len());
    let Some(fractions) = shown.checked_sub(1).and_then(|i| table.get(i)) else {
        return Vec::new();
    };
    fractions
        .iter()
        .map(|&(x, y, w, h)| {
            RectF::new(
                x * canvas.w(),
                y * canvas.h(),
                w * canvas.w(),
                h * canvas.h(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::test_support::*;
    use crate::layout::{LayoutName, Scene, compose as compose_scene};

    fn crop(w: u32, h: u32, n: usize) -> Scene {
        compose_scene(LayoutName::Crop, Canvas::new(w, h), &room_of(n), None)
    }

    fn rects(scene: &Scene) -> Vec<(i32, i32, u32, u32)> {
        scene.regions.iter().map(|r| xywh(&r.rect)).collect()
    }

    #[test]
    fn tables_have_one_row_per_count() {
        for (shape, len) in [(Shape::Wide, 10), (Shape::Square, 9), (Shape::Portrait, 8)] {
            let table = table(shape);
            assert_eq!(table.len(), len);
            for (i, row) in table.iter().enumerate() {
                assert_eq!(row.len(), i + 1, "{shape:?} {}", i + 1);
                assert!(
                    row.iter()
                        .all(|&(x, y, w, h)| x + w <= 1.0 + 1e-9 && y + h <= 1.0 + 1e-9)
                );
            }
        }
    }

    #[test]
    fn thirds_at_1920_leave_a_strip() {
        // x = 0, 639, 1279; widths 639, 640, 639; 2 px of background right.
        assert_eq!(
            rects(&crop(1920, 1080, 3)),
            [(0, 0, 639, 1080), (639, 0, 640, 1080), (1279, 0, 639, 1080)]
        );
    }

    #[test]
    fn wide_table_1_to_10() {
        assert_eq!(rects(&crop(1920, 1080, 1)), [(0, 0, 1920, 1080)]);
        assert_eq!(
            rects(&crop(1920, 1080, 2)),
            [(0, 0, 960, 1080), (960, 0, 960, 1080)]
        );
        assert_eq!(
            rects(&crop(1920, 1080, 4)),
            [
                (0, 0, 960, 540),
                (960, 0, 960, 540),
                (0, 540, 960, 540),
                (960, 540, 960, 540)
            ]
        );
        assert_eq!(
            rects(&crop(1920, 1080, 5)),
            [
                (0, 0, 639, 540),
                (639, 0, 640, 540),
                (1279, 0, 639, 540),
                (0, 540, 960, 540),
                (960, 540, 960, 540)
            ]
        );
        assert_eq!(
            rects(&crop(1920, 1080, 6))[3..],
            [
                (0, 540, 639, 540),
                (639, 540, 640, 540),
                (1279, 540, 639, 540)
            ]
        );
        assert_eq!(
            rects(&crop(1920, 1080, 7)),
            [
                (0, 0, 480, 540),
                (480, 0, 480, 540),
                (960, 0, 480, 540),
                (1440, 0, 480, 540),
                (0, 540, 639, 540),
                (639, 540, 640, 540),
                (1279, 540, 639, 540),
            ]
        );
        assert_eq!(rects(&crop(1920, 1080, 8))[7], (1440, 540, 480, 540));
        assert_eq!(
            rects(&crop(1920, 1080, 9)),
            [
                (0, 0, 384, 540),
                (384, 0, 384, 540),
                (768, 0, 384, 540),
                (1152, 0, 384, 540),
                (1536, 0, 384, 540),
                (0, 540, 480, 540),
                (480, 540, 480, 540),
                (960, 540, 480, 540),
                (1440, 540, 480, 540),
            ]
        );
        let ten = rects(&crop(1920, 1080, 10));
        assert_eq!(
            (ten[4], ten[9]),
            ((1536, 0, 384, 540), (1536, 540, 384, 540))
        );
        // 1280×720 thirds: 426.24 px → edges 0, 426, 852, 852, 1279.
        assert_eq!(
            rects(&crop(1280, 720, 3)),
            [(0, 0, 426, 720), (426, 0, 426, 720), (852, 0, 427, 720)]
        );
    }

    #[test]
    fn square_table_1_to_9() {
        assert_eq!(
            rects(&crop(1080, 1080, 2)),
            [(0, 0, 1080, 540), (0, 540, 1080, 540)]
        );
        assert_eq!(
            rects(&crop(1080, 1080, 3)),
            [(0, 0, 540, 540), (540, 0, 540, 540), (0, 540, 1080, 540)]
        );
        assert_eq!(
            rects(&crop(1080, 1080, 8)),
            [
                (0, 0, 360, 360),
                (360, 0, 359, 360),
                (719, 0, 360, 360),
                (0, 360, 360, 359),
                (360, 360, 359, 359),
                (719, 360, 360, 359),
                (0, 719, 540, 360),
                (540, 719, 540, 360),
            ]
        );
        assert_eq!(rects(&crop(1080, 1080, 9))[8], (719, 719, 360, 360));
        // 10 people: cut to the 9-person table.
        let ten = crop(1080, 1080, 10);
        assert_eq!(rects(&ten), rects(&crop(1080, 1080, 9)));
        assert_eq!(ten.regions[8].participant_sid, "P9");
    }

    #[test]
    fn portrait_table_1_to_8() {
        assert_eq!(rects(&crop(1080, 1920, 1)), [(0, 0, 1080, 1920)]);
        assert_eq!(
            rects(&crop(1080, 1920, 5)),
            [
                (0, 0, 540, 639),
                (0, 639, 540, 640),
                (0, 1279, 540, 639),
                (540, 0, 540, 960),
                (540, 960, 540, 960)
            ]
        );
        assert_eq!(
            rects(&crop(1080, 1920, 7)),
            [
                (0, 0, 540, 480),
                (0, 480, 540, 480),
                (0, 960, 540, 480),
                (0, 1440, 540, 480),
                (540, 0, 540, 639),
                (540, 639, 540, 640),
                (540, 1279, 540, 639),
            ]
        );
        // 9 and 10 people: cut to the 8-person table.
        for n in [9, 10] {
            assert_eq!(rects(&crop(1080, 1920, n)), rects(&crop(1080, 1920, 8)));
        }
    }

    #[test]
    fn cover_fit_labels_and_empty() {
        let scene = crop(1920, 1080, 4);
        assert!(
            scene
                .regions
                .iter()
                .all(|r| r.fit == Fit::Cover && r.rounded == 0)
        );
        assert!(
            scene
                .regions
                .iter()
                .all(|r| r.label.as_ref().is_some_and(|l| l.large))
        );
        assert!(
            crop(1920, 1080, 5)
                .regions
                .iter()
                .all(|r| r.label.as_ref().is_some_and(|l| !l.large))
        );
        assert!(
            crop(1080, 1080, 2)
                .regions
                .iter()
                .all(|r| r.label.as_ref().is_some_and(|l| !l.large))
        );
        assert!(crop(1920, 1080, 0).regions.is_empty());
        assert_eq!(crop(2, 2, 9).regions.len(), 9);
    }
}

//! Pure raster rendering of what goes over the videos of a [`Scene`]
//! (name labels, camera-off placeholders, rounded-corner masks) and of
//! whole-scene previews.
//!
//! The live composer lays [`decorations`] over the composed videos (as
//! GStreamer overlay rectangles, see [`RgbaImage::to_bgra_premultiplied`]);
//! `onair layout render` writes a [`preview`] as PNG ([`cli`]).
//!
//! Styles follow the layout module's constants (reference "name label"):
//! labels are a rounded 5 px box of rgba(50,50,50,0.75) with white Noto
//! Sans Bold (embedded, so no font is needed on the machine) on one 40 px
//! line, shrunk to the text plus 5 px padding each side, ellipsized when
//! the text is wider than the label rect allows.
//!
//! No IO (except [`cli::render_layout_png`] writing its file), no
//! GStreamer, no async.
//!
//! [`Scene`]: crate::layout::Scene

pub mod cli;
mod decorations;
mod image;
mod preview;
mod text;

pub use decorations::{Decoration, DecorationKind, decorations};
pub use image::{ImageError, RgbaImage};
pub use preview::preview;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{
        self, Canvas, Content, Fit, LABEL_BACKGROUND, Label, LayoutName, PLACEHOLDER_ICON_COLOR,
        ParticipantView, Rect, Region, Rgba, RoomView, Scene, VideoView,
    };

    const BG: Rgba = Rgba::MUX_BACKGROUND;

    fn close(actual: [u8; 4], want: [u8; 4], tolerance: u8) -> bool {
        actual
            .iter()
            .zip(want)
            .all(|(a, w)| a.abs_diff(w) <= tolerance)
    }

    fn region(z: u32, rect: Rect, track: bool, rounded: u32, label: Option<Label>) -> Region {
        Region {
            participant_sid: format!("P{z}"),
            track_sid: track.then(|| format!("T{z}")),
            content: Content::Camera,
            rect,
            z,
            fit: Fit::Cover,
            rounded,
            label,
        }
    }

    fn rect(x: i32, y: i32, w: u32, h: u32) -> Rect {
        Rect { x, y, w, h }
    }

    /// A normal label on the 400×225 tile at (100, 100): rect x 105,
    /// bottom 320, 390 wide.
    fn labelled(text: &str) -> Scene {
        let tile = rect(100, 100, 400, 225);
        let label = Label {
            text: text.into(),
            large: false,
            rect: rect(105, 280, 390, 40),
            font_px: 24,
        };
        Scene {
            canvas: Canvas::new(640, 360),
            background: BG,
            regions: vec![region(0, tile, true, 0, Some(label))],
        }
    }

    fn only(scene: &Scene, kind: DecorationKind) -> Vec<Decoration> {
        decorations(scene)
            .into_iter()
            .filter(|d| d.kind == kind)
            .collect()
    }

    fn label_of(scene: &Scene) -> Decoration {
        let mut labels = only(scene, DecorationKind::Label);
        assert_eq!(labels.len(), 1);
        labels.remove(0)
    }

    const LABEL_STRAIGHT: [u8; 4] = [
        LABEL_BACKGROUND.r,
        LABEL_BACKGROUND.g,
        LABEL_BACKGROUND.b,
        LABEL_BACKGROUND.a,
    ];

    #[test]
    fn a_label_is_a_translucent_box_with_white_text() {
        let scene = labelled("Ada Lovelace");
        let label = label_of(&scene);
        assert_eq!((label.x, label.y, label.z), (105, 280, 0));
        let img = &label.image;
        assert_eq!(img.height, 40);
        // Inside the box, in the padding left of the text: the box colour.
        assert!(
            close(img.pixel(2, 20), LABEL_STRAIGHT, 2),
            "{:?}",
            img.pixel(2, 20)
        );
        // Rounded corners: the very corner is (nearly) transparent.
        assert!(img.pixel(0, 0)[3] < 100, "{:?}", img.pixel(0, 0));
        // White-ish glyph pixels, only inside the text's line.
        let white: Vec<(u32, u32)> = (0..img.height)
            .flat_map(|y| (0..img.width).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let [r, g, b, a] = img.pixel(x, y);
                r > 240 && g > 240 && b > 240 && a > 240
            })
            .collect();
        assert!(white.len() > 200, "{} white pixels", white.len());
        let top = white.iter().map(|p| p.1).min().unwrap_or(0);
        let bottom = white.iter().map(|p| p.1).max().unwrap_or(0);
        // Cap height ≈ 17 px, baseline 29: ink from ≈ 11 to ≈ 29 (no
        // descender in "Ada Lovelace").
        assert!((9..=14).contains(&top), "ink top {top}");
        assert!((27..=30).contains(&bottom), "ink bottom {bottom}");
        // Outside the box the overlay is transparent (preview shows video).
        let full = preview(&scene, |_| Rgba::rgb(0, 0, 200));
        assert_eq!(full.pixel(105 + img.width + 2, 300), [0, 0, 200, 255]);
        assert_eq!(full.pixel(200, 275), [0, 0, 200, 255]);
    }

    #[test]
    fn large_labels_pad_vertically() {
        let mut scene = labelled("Ada");
        let region = &mut scene.regions[0];
        region.label = Some(Label {
            text: "Ada".into(),
            large: true,
            rect: rect(110, 265, 380, 50),
            font_px: 28,
        });
        let img = label_of(&scene).image;
        assert_eq!(img.height, 50);
        let rows_with_ink: Vec<u32> = (0..50)
            .filter(|&y| (0..img.width).any(|x| img.pixel(x, y)[0] > 200))
            .collect();
        // 28 px caps ≈ 20 px tall, baseline 5 + 31 = 36.
        let (top, bottom) = (rows_with_ink[0], rows_with_ink[rows_with_ink.len() - 1]);
        assert!((13..=18).contains(&top), "ink top {top}");
        assert!((34..=37).contains(&bottom), "ink bottom {bottom}");
    }

    #[test]
    fn label_width_follows_the_text_and_is_capped_with_an_ellipsis() {
        let short = label_of(&labelled("Ada")).image.width;
        let longer = label_of(&labelled("Ada Lovelace")).image.width;
        assert!(short > 40 && short < 70, "Ada: {short}");
        assert!(
            longer > short + 80 && longer < 200,
            "Ada Lovelace: {longer}"
        );
        let long_name = "Augusta Ada King, Countess of Lovelace, née Byron, \
                         Analyst and Metaphysician";
        let long = label_of(&labelled(long_name));
        // Capped at the label rect's width.
        assert_eq!(long.image.width, 390);
        // The ellipsis: the last glyph's ink ends well before the right
        // padding would clip a letter; the far right column is box only.
        let img = &long.image;
        assert!(
            close(img.pixel(387, 20), LABEL_STRAIGHT, 2),
            "{:?}",
            img.pixel(387, 20)
        );
        let fitted = text::fit(long_name, 24.0, 380.0);
        assert!(fitted.text.ends_with('\u{2026}') && fitted.width <= 380.0);
        // Three dots: the ellipsis' ink at the end of the line, bottom
        // rows only (dots sit on the baseline).
        let ink_right = (0..img.width)
            .rev()
            .find(|&x| (0..40).any(|y| img.pixel(x, y)[0] > 200))
            .expect("ink");
        let ink_rows: Vec<u32> = (0..40)
            .filter(|&y| img.pixel(ink_right - 1, y)[0] > 200)
            .collect();
        assert!(ink_rows.iter().all(|&y| y >= 24), "{ink_rows:?}");
    }

    #[test]
    fn a_label_wider_than_its_tile_is_clipped_to_the_tile_and_canvas() {
        let mut scene = labelled("Ada Lovelace");
        scene.canvas = Canvas::new(150, 400);
        let label = label_of(&scene);
        assert_eq!((label.x, label.image.width), (105, 45));
        if let Some(l) = scene.regions[0].label.as_mut() {
            l.rect.w = 0;
        }
        assert!(only(&scene, DecorationKind::Label).is_empty());
    }

    #[test]
    fn the_placeholder_is_black_with_the_icon_in_the_centre() {
        let scene = Scene {
            canvas: Canvas::new(640, 360),
            background: BG,
            regions: vec![region(0, rect(100, 50, 320, 180), false, 0, None)],
        };
        let placeholders = only(&scene, DecorationKind::Placeholder);
        assert_eq!(placeholders.len(), 1);
        let p = &placeholders[0];
        assert_eq!(
            (p.x, p.y, p.image.width, p.image.height),
            (100, 50, 320, 180)
        );
        let icon = [
            PLACEHOLDER_ICON_COLOR.r,
            PLACEHOLDER_ICON_COLOR.g,
            PLACEHOLDER_ICON_COLOR.b,
            255,
        ];
        assert_eq!(p.image.pixel(160, 90), icon);
        assert_eq!(p.image.pixel(0, 0), [0, 0, 0, 255]);
        assert_eq!(p.image.pixel(319, 179), [0, 0, 0, 255]);
        // The icon is 45 px: 30 px off centre is black again.
        assert_eq!(p.image.pixel(160 + 30, 90), [0, 0, 0, 255]);
        // Some icon pixels left of the slash (the camera body).
        assert!(p.image.pixel(160 - 12, 90 + 8)[0] > 200);
        // The preview shows it too, and no fill.
        let full = preview(&scene, |_| Rgba::rgb(255, 0, 0));
        assert_eq!(full.pixel(260, 140), icon);
        assert_eq!(full.pixel(101, 51), [0, 0, 0, 255]);
    }

    #[test]
    fn corner_masks_paint_the_background_outside_the_arc() {
        let scene = Scene {
            canvas: Canvas::new(640, 360),
            background: BG,
            regions: vec![region(0, rect(100, 50, 320, 180), true, 5, None)],
        };
        let masks = only(&scene, DecorationKind::CornerMask);
        let at: Vec<(i32, i32)> = masks.iter().map(|m| (m.x, m.y)).collect();
        assert_eq!(at, [(100, 50), (415, 50), (100, 225), (415, 225)]);
        let bg = [BG.r, BG.g, BG.b, 255];
        for (m, (cx, cy)) in masks.iter().zip([(0, 0), (4, 0), (0, 4), (4, 4)]) {
            assert_eq!((m.image.width, m.image.height), (5, 5));
            assert_eq!(m.image.pixel(cx, cy), bg, "corner at {:?}", (m.x, m.y));
            // Two px in along the diagonal from the corner: inside the arc.
            let (ix, iy) = (cx.abs_diff(4).min(cx) + 2, cy.abs_diff(4).min(cy) + 2);
            assert_eq!(m.image.pixel(ix, iy)[3], 0);
            assert_eq!(m.image.pixel(4 - cx, 4 - cy)[3], 0);
        }
        // A square tile gets no masks.
        let mut square = scene.clone();
        square.regions[0].rounded = 0;
        assert!(only(&square, DecorationKind::CornerMask).is_empty());
    }

    #[test]
    fn higher_regions_punch_holes_and_hidden_decorations_are_dropped() {
        // A camera-off share under a live overlaid speaker (crop with a
        // muted share): the placeholder must not cover the speaker.
        let share = region(0, rect(0, 0, 640, 360), false, 0, None);
        let speaker = region(1, rect(400, 220, 240, 140), true, 0, None);
        let scene = Scene {
            canvas: Canvas::new(640, 360),
            background: BG,
            regions: vec![share, speaker],
        };
        let d = decorations(&scene);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].image.pixel(500, 300), [0, 0, 0, 0]);
        assert_eq!(d[0].image.pixel(100, 300), [0, 0, 0, 255]);
        let full = preview(&scene, |_| Rgba::rgb(0, 200, 0));
        assert_eq!(full.pixel(500, 300), [0, 200, 0, 255]);
        // Entirely covered: nothing.
        let mut covered = scene.clone();
        covered.regions[1].rect = rect(0, 0, 640, 360);
        assert!(decorations(&covered).is_empty());
    }

    #[test]
    fn degenerate_scenes_do_not_panic() {
        let room = RoomView {
            participants: (1..=3)
                .map(|i| ParticipantView {
                    sid: format!("P{i}"),
                    identity: format!("p{i}"),
                    name: format!("Person {i}"),
                    camera: Some(VideoView {
                        track_sid: format!("T{i}"),
                        width: 1280,
                        height: 720,
                        muted: i == 2,
                    }),
                    screen_share: None,
                })
                .collect(),
            active_speakers: Vec::new(),
        };
        for (w, h) in [
            (0, 0),
            (1, 1),
            (3, 1),
            (1, 3),
            (17, 9),
            (160, 90),
            (u32::MAX, 7),
        ] {
            for name in LayoutName::all() {
                let layout: LayoutName = name.parse().expect("valid");
                let scene = layout::compose(layout, Canvas::new(w, h), &room, None);
                let img = preview(&scene, |_| Rgba::WHITE);
                assert_eq!(img.data.len(), (img.width * img.height * 4) as usize);
                for d in decorations(&scene) {
                    assert!(d.x >= 0 && d.y >= 0);
                    assert!(d.x as u64 + u64::from(d.image.width) <= u64::from(w));
                    assert!(d.y as u64 + u64::from(d.image.height) <= u64::from(h));
                }
            }
        }
    }

    #[test]
    fn preview_of_a_gallery_of_four() {
        let room = RoomView {
            participants: (1..=4)
                .map(|i| ParticipantView {
                    sid: format!("P{i}"),
                    identity: format!("p{i}"),
                    name: format!("Person {i}"),
                    camera: Some(VideoView {
                        track_sid: format!("T{i}"),
                        width: 1280,
                        height: 720,
                        muted: false,
                    }),
                    screen_share: None,
                })
                .collect(),
            active_speakers: Vec::new(),
        };
        let scene = layout::compose(LayoutName::Gallery, Canvas::new(1920, 1080), &room, None);
        assert_eq!(scene.regions.len(), 4);
        let colours = [
            Rgba::rgb(200, 60, 60),
            Rgba::rgb(60, 200, 60),
            Rgba::rgb(60, 60, 200),
            Rgba::rgb(200, 200, 60),
        ];
        let fill = |r: &Region| colours[r.z as usize];
        let img = preview(&scene, fill);
        assert_eq!((img.width, img.height), (1920, 1080));
        // Padding 60: the canvas corner is background.
        assert_eq!(img.pixel(10, 10), [BG.r, BG.g, BG.b, 255]);
        for (region, c) in scene.regions.iter().zip(colours) {
            let (cx, cy) = (
                (i64::from(region.rect.x) + i64::from(region.rect.w) / 2) as u32,
                (i64::from(region.rect.y) + i64::from(region.rect.h) / 2) as u32,
            );
            assert_eq!(
                img.pixel(cx, cy),
                [c.r, c.g, c.b, 255],
                "{}",
                region.participant_sid
            );
            // Rounded wide-gallery tiles: background at the very corner.
            assert_eq!(
                img.pixel(region.rect.x as u32, region.rect.y as u32),
                [BG.r, BG.g, BG.b, 255]
            );
            // Large labels, 10 px in from the bottom-left.
            let label = region.label.as_ref().expect("labelled");
            assert!(label.large);
            let lx = (label.rect.x + 2) as u32;
            let ly = (label.rect.y + 25) as u32;
            let [r, g, b, _] = img.pixel(lx, ly);
            let blend =
                |bg: u8, fg: u8| ((f32::from(fg) * 0.75) + f32::from(bg) * 0.25).round() as u8;
            assert!(
                close(
                    [r, g, b, 255],
                    [blend(c.r, 50), blend(c.g, 50), blend(c.b, 50), 255],
                    2
                ),
                "{:?}",
                [r, g, b]
            );
        }
    }
}

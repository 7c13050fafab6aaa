//! A picture of a whole scene, for people to look at.

use tiny_skia::{Paint, Pixmap, Rect as SkRect, Transform};

use super::decorations::{decorations, to_color};
use super::image::{RgbaImage, blend_over};
use crate::layout::{Region, Rgba, Scene};

/// The whole canvas: the background, each region with a video filled with
/// `fill(region)` in `z` order, then [`decorations`] (placeholders for
/// regions without a track, corner masks, labels).
///
/// A canvas tiny-skia cannot allocate (a zero side, or one so large that
/// its rows overflow) gives an empty `0 × 0` image.
pub fn preview(scene: &Scene, fill: impl Fn(&Region) -> Rgba) -> RgbaImage {
    let Some(mut pixmap) = Pixmap::new(scene.canvas.width, scene.canvas.height) else {
        return RgbaImage::new(0, 0);
    };
    pixmap.fill(to_color(scene.background));
    let (cw, ch) = (
        i64::from(scene.canvas.width),
        i64::from(scene.canvas.height),
    );
    for region in scene.regions.iter().filter(|r| r.track_sid.is_some()) {
        let r = region.rect;
        let x0 = i64::from(r.x).clamp(0, cw);
        let y0 = i64::from(r.y).clamp(0, ch);
        let x1 = r.right().clamp(0, cw);
        let y1 = r.bottom().clamp(0, ch);
        let Some(rect) = SkRect::from_ltrb(x0 as f32, y0 as f32, x1 as f32, y1 as f32) else {
            continue;
        };
        let mut paint = Paint::default();
        paint.set_color(to_color(fill(region)));
        paint.anti_alias = false;
        pixmap.fill_rect(rect, &paint, Transform::identity(), None);
    }
    let (width, height) = (pixmap.width(), pixmap.height());
    let data = pixmap.data_mut();
    for decoration in decorations(scene) {
        blend_over(
            data,
            width,
            height,
            &decoration.image,
            i64::from(decoration.x),
            i64::from(decoration.y),
        );
    }
    RgbaImage::from_pixmap(pixmap)
}

//! What is drawn over the videos: camera-off placeholders, rounded-corner
//! masks and name labels.

use tiny_skia::{
    Color, FillRule, LineCap, Paint, Path, PathBuilder, Pixmap, Rect as SkRect, Stroke, Transform,
};

use super::image::RgbaImage;
use super::text;
use crate::layout::{
    LABEL_BACKGROUND, LABEL_LINE_HEIGHT_PX, LABEL_PADDING_X_PX, LABEL_RADIUS_PX, LABEL_TEXT_COLOR,
    Label, PLACEHOLDER_BACKGROUND, PLACEHOLDER_ICON_COLOR, PLACEHOLDER_ICON_PX, Region, Rgba,
    Scene,
};

/// One overlay image, positioned on the canvas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoration {
    /// Top-left corner on the canvas (always inside it).
    pub x: i32,
    pub y: i32,
    pub kind: DecorationKind,
    /// `z` of the region it belongs to.
    pub z: u32,
    pub image: RgbaImage,
}

/// What a [`Decoration`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecorationKind {
    /// Black tile with the video-off icon (region without a track).
    Placeholder,
    /// One corner, background-coloured outside the rounded arc.
    CornerMask,
    /// The name label.
    Label,
}

/// Everything drawn over the videos of `scene`, bottom to top: the
/// camera-off placeholders, then the rounded-corner masks, then the
/// labels, each group in `z` order.
///
/// Every image is clipped to the canvas and to its region, and made
/// transparent where a region with a higher `z` covers it (that region's
/// video or placeholder shows there, as in the browser), so the list can be
/// laid over the composed videos as-is. Fully hidden decorations are left
/// out.
///
/// Corner masks paint the scene background outside the arc, which is
/// right as long as nothing but the background lies under a rounded
/// tile's corners (true of every built-in layout: only non-overlapping
/// gallery tiles are rounded).
pub fn decorations(scene: &Scene) -> Vec<Decoration> {
    let canvas = Area::new(
        0,
        0,
        i64::from(scene.canvas.width),
        i64::from(scene.canvas.height),
    );
    let mut out = Vec::new();
    let mut push = |region_index: usize, kind, area: Area, image: Option<RgbaImage>| {
        let (Some(mut image), Ok(x), Ok(y)) =
            (image, i32::try_from(area.x0), i32::try_from(area.y0))
        else {
            return;
        };
        for above in &scene.regions[region_index + 1..] {
            clear(&mut image, area, Area::of(&above.rect));
        }
        if !image.is_transparent() {
            out.push(Decoration {
                x,
                y,
                kind,
                z: scene.regions[region_index].z,
                image,
            });
        }
    };
    for (i, region) in scene.regions.iter().enumerate() {
        if region.track_sid.is_none() {
            let area = Area::of(&region.rect).intersect(canvas);
            push(
                i,
                DecorationKind::Placeholder,
                area,
                placeholder(region, area),
            );
        }
    }
    for (i, region) in scene.regions.iter().enumerate() {
        for (area, image) in corner_masks(region, scene.background, canvas) {
            push(i, DecorationKind::CornerMask, area, Some(image));
        }
    }
    for (i, region) in scene.regions.iter().enumerate() {
        if let Some((area, image)) = label(region, canvas) {
            push(i, DecorationKind::Label, area, Some(image));
        }
    }
    out
}

/// A half-open pixel rectangle in canvas coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Area {
    x0: i64,
    y0: i64,
    x1: i64,
    y1: i64,
}

impl Area {
    fn new(x0: i64, y0: i64, x1: i64, y1: i64) -> Self {
        Self { x0, y0, x1, y1 }
    }

    fn of(rect: &crate::layout::Rect) -> Self {
        Self::new(
            i64::from(rect.x),
            i64::from(rect.y),
            rect.right(),
            rect.bottom(),
        )
    }

    fn intersect(self, other: Self) -> Self {
        Self::new(
            self.x0.max(other.x0),
            self.y0.max(other.y0),
            self.x1.min(other.x1),
            self.y1.min(other.y1),
        )
    }

    fn is_empty(self) -> bool {
        self.x0 >= self.x1 || self.y0 >= self.y1
    }

    /// A transparent pixmap covering the area; `None` when it is empty
    /// (or too large for tiny-skia).
    fn pixmap(self) -> Option<Pixmap> {
        if self.is_empty() {
            return None;
        }
        Pixmap::new(
            u32::try_from(self.x1 - self.x0).ok()?,
            u32::try_from(self.y1 - self.y0).ok()?,
        )
    }

    /// Where canvas point `(x, y)` lands in this area's pixmap.
    fn local(self, x: i64, y: i64) -> (f32, f32) {
        ((x - self.x0) as f32, (y - self.y0) as f32)
    }
}

/// Makes the part of `image` (placed at `area`) under `hole` transparent.
fn clear(image: &mut RgbaImage, area: Area, hole: Area) {
    let hole = hole.intersect(area);
    if hole.is_empty() {
        return;
    }
    let stride = image.width as usize * 4;
    for y in hole.y0..hole.y1 {
        let row = (y - area.y0) as usize * stride;
        let from = row + (hole.x0 - area.x0) as usize * 4;
        let to = row + (hole.x1 - area.x0) as usize * 4;
        image.data[from..to].fill(0);
    }
}

fn paint(colour: Rgba) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(to_color(colour));
    paint.anti_alias = true;
    paint
}

pub(crate) fn to_color(c: Rgba) -> Color {
    Color::from_rgba8(c.r, c.g, c.b, c.a)
}

/// The camera-off tile (visible part `area`): black, with the video-off
/// icon centred in the whole tile.
fn placeholder(region: &Region, area: Area) -> Option<RgbaImage> {
    let mut pixmap = area.pixmap()?;
    pixmap.fill(to_color(PLACEHOLDER_BACKGROUND));
    let icon = i64::from(PLACEHOLDER_ICON_PX);
    let rect = region.rect;
    let (x, y) = area.local(
        i64::from(rect.x) + (i64::from(rect.w) - icon).div_euclid(2),
        i64::from(rect.y) + (i64::from(rect.h) - icon).div_euclid(2),
    );
    draw_video_off_icon(
        &mut pixmap,
        x,
        y,
        PLACEHOLDER_ICON_PX as f32,
        PLACEHOLDER_ICON_COLOR,
        PLACEHOLDER_BACKGROUND,
    );
    Some(RgbaImage::from_pixmap(pixmap))
}

/// A video-off icon in a `size` px square at `(x, y)`, drawn on a 24-unit
/// grid: a rounded camera body, the lens as a trapezoid on its right, and
/// a diagonal slash from top-left to bottom-right, set apart from the
/// camera by a `gap`-coloured band.
pub(crate) fn draw_video_off_icon(
    pixmap: &mut Pixmap,
    x: f32,
    y: f32,
    size: f32,
    colour: Rgba,
    gap: Rgba,
) {
    let unit = size / 24.0;
    let transform = Transform::from_row(unit, 0.0, 0.0, unit, x, y);
    let ink = paint(colour);
    if let Some(body) = rounded_rect(2.0, 6.0, 13.5, 12.0, 2.0) {
        pixmap.fill_path(&body, &ink, FillRule::Winding, transform, None);
    }
    let mut lens = PathBuilder::new();
    lens.move_to(16.5, 10.0);
    lens.line_to(22.0, 6.5);
    lens.line_to(22.0, 17.5);
    lens.line_to(16.5, 14.0);
    lens.close();
    if let Some(lens) = lens.finish() {
        pixmap.fill_path(&lens, &ink, FillRule::Winding, transform, None);
    }
    let mut slash = PathBuilder::new();
    slash.move_to(3.0, 3.0);
    slash.line_to(21.0, 21.0);
    let Some(slash) = slash.finish() else {
        return;
    };
    let band = Stroke {
        width: 5.0,
        line_cap: LineCap::Butt,
        ..Stroke::default()
    };
    let mut gap_paint = paint(gap);
    gap_paint.blend_mode = tiny_skia::BlendMode::Source;
    pixmap.stroke_path(&slash, &gap_paint, &band, transform, None);
    let line = Stroke {
        width: 2.0,
        line_cap: LineCap::Round,
        ..Stroke::default()
    };
    pixmap.stroke_path(&slash, &ink, &line, transform, None);
}

/// Cubic Bézier handle length for a quarter circle of radius 1.
const KAPPA: f32 = 0.552_284_8;

/// A rectangle with circular corners of radius `r` (clamped to half the
/// shorter side, as CSS does).
fn rounded_rect(x: f32, y: f32, w: f32, h: f32, r: f32) -> Option<Path> {
    let r = r.min(w / 2.0).min(h / 2.0).max(0.0);
    if r == 0.0 {
        return Some(PathBuilder::from_rect(SkRect::from_xywh(x, y, w, h)?));
    }
    let k = r * (1.0 - KAPPA);
    let (x1, y1) = (x + w, y + h);
    let mut pb = PathBuilder::new();
    pb.move_to(x + r, y);
    pb.line_to(x1 - r, y);
    pb.cubic_to(x1 - k, y, x1, y + k, x1, y + r);
    pb.line_to(x1, y1 - r);
    pb.cubic_to(x1, y1 - k, x1 - k, y1, x1 - r, y1);
    pb.line_to(x + r, y1);
    pb.cubic_to(x + k, y1, x, y1 - k, x, y1 - r);
    pb.line_to(x, y + r);
    pb.cubic_to(x, y + k, x + k, y, x + r, y);
    pb.close();
    pb.finish()
}

/// The four corners of a rounded region: `r × r` images (r = the radius,
/// clamped to half the shorter side) painted in `background` outside the
/// arc, each clipped to the canvas.
fn corner_masks(region: &Region, background: Rgba, canvas: Area) -> Vec<(Area, RgbaImage)> {
    let rect = region.rect;
    let r = region.rounded.min(rect.w / 2).min(rect.h / 2);
    if r == 0 {
        return Vec::new();
    }
    let Some(top_left) = corner_top_left(r, background) else {
        return Vec::new();
    };
    let tile = Area::of(&rect);
    let r64 = i64::from(r);
    let corners = [
        (tile.x0, tile.y0, false, false),
        (tile.x1 - r64, tile.y0, true, false),
        (tile.x0, tile.y1 - r64, false, true),
        (tile.x1 - r64, tile.y1 - r64, true, true),
    ];
    corners
        .into_iter()
        .filter_map(|(x, y, flip_x, flip_y)| {
            let full = Area::new(x, y, x + r64, y + r64);
            let visible = full.intersect(canvas);
            if visible.is_empty() {
                return None;
            }
            let image = crop(&mirror(&top_left, flip_x, flip_y), full, visible);
            Some((visible, image))
        })
        .collect()
}

/// The top-left corner mask: background between the corner and the arc of
/// the circle of radius `r` centred at `(r, r)`.
fn corner_top_left(r: u32, background: Rgba) -> Option<RgbaImage> {
    let mut pixmap = Pixmap::new(r, r)?;
    let rf = r as f32;
    let k = rf * (1.0 - KAPPA);
    let mut pb = PathBuilder::new();
    pb.move_to(0.0, 0.0);
    pb.line_to(rf, 0.0);
    pb.cubic_to(k, 0.0, 0.0, k, 0.0, rf);
    pb.close();
    let path = pb.finish()?;
    pixmap.fill_path(
        &path,
        &paint(background),
        FillRule::Winding,
        Transform::identity(),
        None,
    );
    Some(RgbaImage::from_pixmap(pixmap))
}

fn mirror(image: &RgbaImage, flip_x: bool, flip_y: bool) -> RgbaImage {
    let (w, h) = (image.width as usize, image.height as usize);
    let mut out = RgbaImage::new(image.width, image.height);
    for y in 0..h {
        for x in 0..w {
            let sx = if flip_x { w - 1 - x } else { x };
            let sy = if flip_y { h - 1 - y } else { y };
            let (s, d) = ((sy * w + sx) * 4, (y * w + x) * 4);
            out.data[d..d + 4].copy_from_slice(&image.data[s..s + 4]);
        }
    }
    out
}

/// The part `visible` of `image`, which is placed at `full`.
fn crop(image: &RgbaImage, full: Area, visible: Area) -> RgbaImage {
    if full == visible {
        return image.clone();
    }
    let w = (visible.x1 - visible.x0) as u32;
    let h = (visible.y1 - visible.y0) as u32;
    let mut out = RgbaImage::new(w, h);
    let n = w as usize * 4;
    for row in 0..h as usize {
        let sy = (visible.y0 - full.y0) as usize + row;
        let sx = (visible.x0 - full.x0) as usize;
        let s = (sy * image.width as usize + sx) * 4;
        out.data[row * n..(row + 1) * n].copy_from_slice(&image.data[s..s + n]);
    }
    out
}

/// The label box: as wide as the text plus the padding (at most the
/// label rect's width, the text then ellipsized), the rect's height,
/// anchored at the rect's bottom-left; clipped to the region and canvas.
fn label(region: &Region, canvas: Area) -> Option<(Area, RgbaImage)> {
    let label: &Label = region.label.as_ref()?;
    let rect = label.rect;
    if rect.w == 0 || rect.h == 0 || label.text.is_empty() {
        return None;
    }
    let padding = LABEL_PADDING_X_PX as f32;
    let font_px = label.font_px as f32;
    let line = text::fit(
        &label.text,
        font_px,
        (rect.w as f32 - 2.0 * padding).max(0.0),
    );
    // Overflowing text keeps the box at its maximum width.
    let box_w = if line.text == label.text {
        ((line.width + 2.0 * padding).ceil() as u32).min(rect.w)
    } else {
        rect.w
    };
    let full = Area::new(
        i64::from(rect.x),
        i64::from(rect.y),
        i64::from(rect.x) + i64::from(box_w),
        rect.bottom(),
    );
    let area = full.intersect(Area::of(&region.rect)).intersect(canvas);
    let mut pixmap = area.pixmap()?;
    let (x, y) = area.local(full.x0, full.y0);
    let h = rect.h as f32;
    if let Some(path) = rounded_rect(x, y, box_w as f32, h, LABEL_RADIUS_PX as f32) {
        pixmap.fill_path(
            &path,
            &paint(LABEL_BACKGROUND),
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }
    // The line box sits between the vertical paddings (5 px each in the
    // large variant, none otherwise).
    let line_height = LABEL_LINE_HEIGHT_PX as f32;
    let line_top = y + ((h - line_height) / 2.0).round();
    let baseline = line_top + text::baseline_in_line(font_px, line_height);
    text::draw(&mut pixmap, &line, x + padding, baseline, LABEL_TEXT_COLOR);
    Some((area, RgbaImage::from_pixmap(pixmap)))
}

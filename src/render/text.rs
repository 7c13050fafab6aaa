//! One line of label text: shaping (rustybuzz, so GPOS kerning applies as
//! in a browser), ellipsis fitting and glyph rasterising (ab_glyph) in the
//! embedded Noto Sans Bold.

use std::sync::LazyLock;

use ab_glyph::{Font as _, FontRef, GlyphId, PxScale, point};
use rustybuzz::{Direction, UnicodeBuffer};
use tiny_skia::Pixmap;

use crate::layout::Rgba;

/// Noto Sans Bold (SIL Open Font License 1.1, `assets/fonts/`), compiled in
/// so the binary needs no font on the machine.
static FONT_DATA: &[u8] = include_bytes!("../../assets/fonts/NotoSans-Bold.ttf");

/// CSS `text-overflow: ellipsis` appends U+2026.
const ELLIPSIS: &str = "\u{2026}";

struct Font {
    raster: FontRef<'static>,
    shaper: rustybuzz::Face<'static>,
    units_per_em: f32,
    /// hhea ascent and descent (positive down), font units.
    ascent: f32,
    descent: f32,
}

static FONT: LazyLock<Font> = LazyLock::new(|| {
    let raster = FontRef::try_from_slice(FONT_DATA).expect("the embedded font parses");
    let shaper = rustybuzz::Face::from_slice(FONT_DATA, 0).expect("the embedded font parses");
    let units_per_em = raster.units_per_em().unwrap_or(1000.0);
    Font {
        ascent: raster.ascent_unscaled(),
        descent: -raster.descent_unscaled(),
        raster,
        shaper,
        units_per_em,
    }
});

/// A glyph placed on the line, in pixels from the line's start and
/// baseline (y grows downwards).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Placed {
    id: u16,
    x: f32,
    y: f32,
}

/// A shaped single line at one font size.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    /// What is drawn (the input, or a prefix of it plus "…").
    pub text: String,
    /// Advance width in pixels.
    pub width: f32,
    font_px: f32,
    glyphs: Vec<Placed>,
    /// Byte offsets where a cluster (what must not be split) starts.
    cluster_starts: Vec<usize>,
}

/// Shapes `text` left to right at `font_px` (the CSS font size, px per em).
pub(crate) fn shape(text: &str, font_px: f32) -> Line {
    let font = &*FONT;
    let mut buffer = UnicodeBuffer::new();
    buffer.push_str(text);
    buffer.guess_segment_properties();
    buffer.set_direction(Direction::LeftToRight);
    let shaped = rustybuzz::shape(&font.shaper, &[], buffer);
    let scale = font_px / font.units_per_em;
    let mut pen = 0i64;
    let mut glyphs = Vec::with_capacity(shaped.len());
    let mut cluster_starts = Vec::with_capacity(shaped.len());
    for (info, pos) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
        glyphs.push(Placed {
            id: u16::try_from(info.glyph_id).unwrap_or(0),
            x: (pen + i64::from(pos.x_offset)) as f32 * scale,
            y: -(pos.y_offset as f32) * scale,
        });
        pen += i64::from(pos.x_advance);
        let cluster = info.cluster as usize;
        if cluster_starts.last() != Some(&cluster) {
            cluster_starts.push(cluster);
        }
    }
    Line {
        text: text.to_owned(),
        width: pen as f32 * scale,
        font_px,
        glyphs,
        cluster_starts,
    }
}

/// `text` on one line no wider than `max_width` px: the whole text when it
/// fits, else its longest prefix (cut between clusters, trailing spaces
/// dropped) followed by "…". When not even "…" fits, "…" alone (the
/// caller clips it).
pub(crate) fn fit(text: &str, font_px: f32, max_width: f32) -> Line {
    let full = shape(text, font_px);
    if full.width <= max_width {
        return full;
    }
    let mut cuts = full.cluster_starts.clone();
    cuts.sort_unstable();
    cuts.dedup();
    let candidate = |k: usize| shape(&format!("{}{ELLIPSIS}", text[..k].trim_end()), font_px);
    // The widths grow with the prefix, so binary-search the longest prefix
    // (cuts[i] bytes) that fits; cuts[0] is 0, the bare ellipsis.
    let (mut lo, mut hi) = (0usize, cuts.len());
    let mut best = candidate(0);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        let line = candidate(cuts[mid]);
        if line.width <= max_width {
            lo = mid;
            best = line;
        } else {
            hi = mid;
        }
    }
    best
}

/// Distance from the top of a `line_height` px line box to the baseline,
/// whole pixels: CSS centres the font's ascent + descent in the line
/// (half-leading on both sides).
pub(crate) fn baseline_in_line(font_px: f32, line_height: f32) -> f32 {
    let font = &*FONT;
    let scale = font_px / font.units_per_em;
    let ascent = font.ascent * scale;
    let content = (font.ascent + font.descent) * scale;
    ((line_height - content) / 2.0 + ascent).round()
}

/// Paints `line` in `colour` with its start at `x` and its baseline at
/// `baseline` (pixmap pixels), clipped to the pixmap.
pub(crate) fn draw(pixmap: &mut Pixmap, line: &Line, x: f32, baseline: f32, colour: Rgba) {
    let font = &*FONT;
    let scale = PxScale::from(line.font_px * font.raster.height_unscaled() / font.units_per_em);
    let (width, height) = (pixmap.width() as i64, pixmap.height() as i64);
    let data = pixmap.data_mut();
    let alpha = f32::from(colour.a) / 255.0;
    let src = [colour.r, colour.g, colour.b].map(|c| f32::from(c) * alpha);
    for placed in &line.glyphs {
        let glyph = GlyphId(placed.id)
            .with_scale_and_position(scale, point(x + placed.x, baseline + placed.y));
        let Some(outlined) = font.raster.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outlined.px_bounds();
        let (left, top) = (bounds.min.x as i64, bounds.min.y as i64);
        outlined.draw(|gx, gy, coverage| {
            let (px, py) = (left + i64::from(gx), top + i64::from(gy));
            if px < 0 || py < 0 || px >= width || py >= height {
                return;
            }
            let coverage = coverage.clamp(0.0, 1.0);
            if coverage <= 0.0 {
                return;
            }
            // Premultiplied source-over of the colour at this coverage.
            let i = ((py * width + px) * 4) as usize;
            let pixel = &mut data[i..i + 4];
            let keep = 1.0 - coverage * alpha;
            for (c, s) in src.iter().enumerate() {
                pixel[c] = (s * coverage + f32::from(pixel[c]) * keep)
                    .round()
                    .min(255.0) as u8;
            }
            pixel[3] = (255.0 * coverage * alpha + f32::from(pixel[3]) * keep)
                .round()
                .min(255.0) as u8;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_has_the_expected_metrics() {
        let font = &*FONT;
        assert_eq!(font.units_per_em, 1000.0);
        assert_eq!((font.ascent, font.descent), (1069.0, 293.0));
        // 24 px in a 40 px line: half-leading 3.66 + ascent 25.66.
        assert_eq!(baseline_in_line(24.0, 40.0), 29.0);
        assert_eq!(baseline_in_line(28.0, 40.0), 31.0);
    }

    #[test]
    fn widths_grow_with_text_and_kerning_applies() {
        let a = shape("Ada", 24.0);
        let b = shape("Ada Lovelace", 24.0);
        assert!(
            a.width > 30.0 && b.width > a.width,
            "{} {}",
            a.width,
            b.width
        );
        // GPOS kerning pulls "AV" together compared with the glyphs apart.
        let pair = shape("AV", 24.0).width;
        let apart = shape("A", 24.0).width + shape("V", 24.0).width;
        assert!(pair < apart - 0.5, "{pair} vs {apart}");
    }

    #[test]
    fn fit_keeps_short_text_and_ellipsizes_long_text() {
        assert_eq!(fit("Ada", 24.0, 500.0).text, "Ada");
        let long = fit("Ada Lovelace, Countess of Lovelace", 24.0, 150.0);
        assert!(long.text.ends_with('\u{2026}'), "{}", long.text);
        assert!(long.text.starts_with("Ada"), "{}", long.text);
        assert!(long.width <= 150.0);
        // One more cluster would not have fitted.
        let prefix = long.text.trim_end_matches('\u{2026}');
        let next = "Ada Lovelace, Countess of Lovelace"[prefix.len()..]
            .chars()
            .next()
            .expect("cut before the end");
        assert!(shape(&format!("{prefix}{next}\u{2026}"), 24.0).width > 150.0);
        // Not even the ellipsis fits: the ellipsis alone.
        assert_eq!(fit("Ada", 24.0, 1.0).text, "\u{2026}");
        // No trailing space before the ellipsis.
        assert!(!fit("Ada Lovelace", 24.0, 70.0).text.contains(" \u{2026}"));
    }
}

//! The raster type the renderer hands out, and its conversions.

use std::fmt;

use tiny_skia::{IntSize, Pixmap};

/// An 8-bit RGBA raster, rows top to bottom without padding, colour
/// premultiplied by alpha (the layout tiny-skia draws in).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    /// `width × height × 4` bytes: R, G, B, A, with R, G, B ≤ A.
    pub data: Vec<u8>,
}

/// Why an [`RgbaImage`] could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("a {width}×{height} image cannot be encoded as PNG")]
    BadSize { width: u32, height: u32 },
    #[error("image data is {actual} bytes; {width}×{height} RGBA needs {expected}")]
    BadLength {
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

impl fmt::Debug for RgbaImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RgbaImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("data", &format_args!("[{} bytes]", self.data.len()))
            .finish()
    }
}

impl RgbaImage {
    /// A fully transparent image.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            data: vec![0; byte_len(width, height)],
        }
    }

    /// The straight (not premultiplied) RGBA of one pixel.
    ///
    /// # Panics
    /// When `(x, y)` is outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) is outside the {}×{} image",
            self.width,
            self.height
        );
        let i = (y as usize * self.width as usize + x as usize) * 4;
        let p = &self.data[i..i + 4];
        demultiply([p[0], p[1], p[2], p[3]])
    }

    /// Straight-alpha RGBA bytes (what PNG and most image APIs expect).
    pub fn to_straight_rgba(&self) -> Vec<u8> {
        self.data
            .chunks_exact(4)
            .flat_map(|p| demultiply([p[0], p[1], p[2], p[3]]))
            .collect()
    }

    /// Premultiplied B, G, R, A bytes: GStreamer's overlay-composition
    /// format (`GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB`, i.e. `BGRA` on
    /// little-endian machines) with
    /// `GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA`.
    pub fn to_bgra_premultiplied(&self) -> Vec<u8> {
        self.data
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0], p[3]])
            .collect()
    }

    /// The image as a PNG file (8-bit RGBA, straight alpha).
    pub fn encode_png(&self) -> Result<Vec<u8>, ImageError> {
        let expected = byte_len(self.width, self.height);
        if self.data.len() != expected {
            return Err(ImageError::BadLength {
                width: self.width,
                height: self.height,
                expected,
                actual: self.data.len(),
            });
        }
        let bad_size = ImageError::BadSize {
            width: self.width,
            height: self.height,
        };
        let size = IntSize::from_wh(self.width, self.height).ok_or(bad_size.clone())?;
        let pixmap = Pixmap::from_vec(self.data.clone(), size).ok_or(bad_size)?;
        pixmap
            .encode_png()
            .map_err(|e| ImageError::Png(e.to_string()))
    }

    /// Whether every pixel is fully transparent.
    pub fn is_transparent(&self) -> bool {
        self.data.chunks_exact(4).all(|p| p[3] == 0)
    }

    pub(crate) fn from_pixmap(pixmap: Pixmap) -> Self {
        Self {
            width: pixmap.width(),
            height: pixmap.height(),
            data: pixmap.take(),
        }
    }

    /// Draws `src` over this image (premultiplied source-over) with its
    /// top-left corner at `(x, y)`; whatever falls outside is clipped.
    pub fn draw_over(&mut self, src: &RgbaImage, x: i64, y: i64) {
        blend_over(&mut self.data, self.width, self.height, src, x, y);
    }
}

/// Premultiplied source-over of `src` onto a `width × height` RGBA8
/// buffer, `src`'s top-left at `(x, y)`, clipped to the buffer.
pub(crate) fn blend_over(dst: &mut [u8], width: u32, height: u32, src: &RgbaImage, x: i64, y: i64) {
    let x0 = x.max(0);
    let y0 = y.max(0);
    let x1 = (x + i64::from(src.width)).min(i64::from(width));
    let y1 = (y + i64::from(src.height)).min(i64::from(height));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    for row in y0..y1 {
        let sy = (row - y) as usize;
        let sx = (x0 - x) as usize;
        let n = (x1 - x0) as usize * 4;
        let s = (sy * src.width as usize + sx) * 4;
        let d = (row as usize * width as usize + x0 as usize) * 4;
        for (dp, sp) in dst[d..d + n]
            .chunks_exact_mut(4)
            .zip(src.data[s..s + n].chunks_exact(4))
        {
            let inv = 255 - u32::from(sp[3]);
            for c in 0..4 {
                dp[c] = (u32::from(sp[c]) + div255(u32::from(dp[c]) * inv)).min(255) as u8;
            }
        }
    }
}

/// `v / 255` rounded, for `v ≤ 255 × 255`.
fn div255(v: u32) -> u32 {
    let t = v + 128;
    (t + (t >> 8)) >> 8
}

fn demultiply([r, g, b, a]: [u8; 4]) -> [u8; 4] {
    match a {
        0 => [0, 0, 0, 0],
        255 => [r, g, b, a],
        _ => {
            let a16 = u32::from(a);
            let f = |c: u8| ((u32::from(c) * 255 + a16 / 2) / a16).min(255) as u8;
            [f(r), f(g), f(b), a]
        }
    }
}

fn byte_len(width: u32, height: u32) -> usize {
    width as usize * height as usize * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_pixel(p: [u8; 4]) -> RgbaImage {
        RgbaImage {
            width: 1,
            height: 1,
            data: p.to_vec(),
        }
    }

    #[test]
    fn conversions_demultiply_and_swizzle() {
        // 50% red, premultiplied.
        let img = one_pixel([128, 0, 64, 128]);
        assert_eq!(img.pixel(0, 0), [255, 0, 128, 128]);
        assert_eq!(img.to_straight_rgba(), vec![255, 0, 128, 128]);
        assert_eq!(img.to_bgra_premultiplied(), vec![64, 0, 128, 128]);
        assert_eq!(one_pixel([0, 0, 0, 0]).pixel(0, 0), [0, 0, 0, 0]);
    }

    #[test]
    fn png_round_trips_and_bad_images_are_errors() {
        let img = one_pixel([128, 0, 64, 128]);
        let png = img.encode_png().expect("encodes");
        assert_eq!(&png[1..4], b"PNG");
        let decoded = Pixmap::decode_png(&png).expect("decodes");
        assert_eq!(decoded.data(), img.data.as_slice());
        assert!(matches!(
            RgbaImage::new(0, 3).encode_png(),
            Err(ImageError::BadSize { .. })
        ));
        let short = RgbaImage {
            width: 2,
            height: 2,
            data: vec![0; 4],
        };
        assert!(matches!(
            short.encode_png(),
            Err(ImageError::BadLength { expected: 16, .. })
        ));
    }

    #[test]
    fn draw_over_blends_and_clips() {
        let mut dst = RgbaImage::new(3, 1);
        dst.data.copy_from_slice(&[0, 0, 255, 255].repeat(3));
        // Half-transparent white, 2 px wide, hanging off the left edge.
        let src = RgbaImage {
            width: 2,
            height: 1,
            data: [128, 128, 128, 128].repeat(2),
        };
        dst.draw_over(&src, -1, 0);
        assert_eq!(dst.pixel(0, 0), [128, 128, 255, 255]);
        assert_eq!(dst.pixel(1, 0), [0, 0, 255, 255]);
        dst.draw_over(&src, 5, 5);
        assert_eq!(dst.pixel(2, 0), [0, 0, 255, 255]);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn pixel_outside_panics() {
        RgbaImage::new(2, 2).pixel(2, 0);
    }
}

//! `f64` rectangles, the single rounding rule, and the few CSS sizing
//! behaviours the layouts depend on.

use super::model::Canvas;
use super::scene::Rect;

pub(crate) const SIXTEEN_NINE: f64 = 16.0 / 9.0;

/// A rectangle in (fractional) CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RectF {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl RectF {
    pub const fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        Self { x, y, w, h }
    }

    pub fn canvas(canvas: Canvas) -> Self {
        Self::new(0.0, 0.0, canvas.w(), canvas.h())
    }

    /// A `w`×`h` box centred in `self` (also when it overflows, as CSS
    /// `center` alignment does).
    pub fn centre(self, w: f64, h: f64) -> Self {
        Self::new(
            self.x + (self.w - w) / 2.0,
            self.y + (self.h - h) / 2.0,
            w,
            h,
        )
    }

    /// The largest box of `aspect` (w/h) inside `self`, centred: how a
    /// contain-fitted video sits in its box.
    pub fn contain(self, aspect: f64) -> Self {
        let aspect = sane_aspect(aspect);
        let (w, h) = if self.w / aspect <= self.h {
            (self.w, self.w / aspect)
        } else {
            (self.h * aspect, self.h)
        };
        self.centre(w, h)
    }

    /// The one rounding rule: round each edge half-up, size = difference
    /// of the rounded edges.
    pub fn to_pixels(self) -> Rect {
        let (x0, x1) = (snap(self.x), snap(self.x + self.w));
        let (y0, y1) = (snap(self.y), snap(self.y + self.h));
        Rect {
            x: x0,
            y: y0,
            w: span(x0, x1),
            h: span(y0, y1),
        }
    }
}

/// Rounds a coordinate half-up; non-finite values become 0 and huge ones
/// saturate (`as` never panics).
fn snap(v: f64) -> i32 {
    let r = (v + 0.5).floor();
    if r.is_nan() { 0 } else { r as i32 }
}

fn span(from: i32, to: i32) -> u32 {
    u32::try_from(i64::from(to) - i64::from(from)).unwrap_or(0)
}

/// Width/height ratio usable as a divisor: 16:9 for 0, negative or NaN.
pub(crate) fn sane_aspect(aspect: f64) -> f64 {
    if aspect.is_finite() && aspect > 0.0 {
        aspect
    } else {
        SIXTEEN_NINE
    }
}

/// CSS flexbox shrink of a row holding a `width: 100%` item and a
/// `basis`-wide item with a fixed `margin` before it, in a `container`
/// that cannot hold both: both shrink in proportion to their base sizes
/// (reference "What a browser actually renders"). Returns the shrunk
/// width of the `basis` item; the 100 % item gets
/// `container − margin − result`.
pub(crate) fn flex_shrunk(container: f64, basis: f64, margin: f64) -> f64 {
    let container = container.max(0.0);
    let total = container + basis;
    if total <= 0.0 {
        return 0.0;
    }
    // overflow = container + basis + margin − container = basis + margin
    (basis - (basis + margin) * basis / total).max(0.0)
}

/// CSS grid "maximize tracks": every track starts at `base` and free space
/// is shared equally, a track stopping at its `limit`.
pub(crate) fn grow_tracks(base: f64, limits: &[f64], space: f64) -> Vec<f64> {
    let mut sizes = vec![base; limits.len()];
    let mut free = space - base * limits.len() as f64;
    // Each pass freezes at least one track or spends all free space.
    for _ in 0..=limits.len() {
        let growing: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i] < limits[i]).collect();
        if growing.is_empty() || free <= 1e-9 {
            break;
        }
        let share = free / growing.len() as f64;
        for i in growing {
            let add = share.min(limits[i] - sizes[i]);
            sizes[i] += add;
            free -= add;
        }
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_round_half_up_and_sizes_follow_edges() {
        // Crop thirds at 1920: 0.333·1920 = 639.36.
        let r = RectF::new(639.36, 0.0, 639.36, 1080.0).to_pixels();
        assert_eq!(
            r,
            Rect {
                x: 639,
                y: 0,
                w: 640,
                h: 1080
            }
        );
        // A half-pixel phase keeps the size (130.5 → 131, 663.5 → 664).
        let r = RectF::new(130.5, 59.5, 533.0, 300.0).to_pixels();
        assert_eq!(
            r,
            Rect {
                x: 131,
                y: 60,
                w: 533,
                h: 300
            }
        );
        // Negative coordinates round the same way (−0.5 → 0).
        let r = RectF::new(-0.5, -1.5, 2.0, 2.0).to_pixels();
        assert_eq!(
            r,
            Rect {
                x: 0,
                y: -1,
                w: 2,
                h: 2
            }
        );
    }

    #[test]
    fn rounding_never_panics() {
        let r = RectF::new(f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300).to_pixels();
        assert_eq!(r.x, 0);
        let r = RectF::new(-1e12, 0.0, 3e12, 1.0).to_pixels();
        assert_eq!((r.x, r.w), (i32::MIN, u32::MAX));
    }

    #[test]
    fn contain_centres_the_video() {
        let share = RectF::new(60.0, 60.0, 1600.0, 960.0).contain(16.0 / 9.0);
        assert_eq!(share, RectF::new(60.0, 90.0, 1600.0, 900.0));
        let tall = RectF::new(0.0, 0.0, 1920.0, 1080.0).contain(0.0);
        assert_eq!(tall, RectF::new(0.0, 0.0, 1920.0, 1080.0));
        let portrait = RectF::new(0.0, 0.0, 1920.0, 1080.0).contain(0.5);
        assert_eq!(portrait, RectF::new(690.0, 0.0, 540.0, 1080.0));
    }

    #[test]
    fn flex_shrink_matches_the_browser() {
        // Share column at 1920: 400·1770/2200 and 600·1770/2400.
        assert!((flex_shrunk(1800.0, 400.0, 30.0) - 321.818_181).abs() < 1e-4);
        assert!((flex_shrunk(1800.0, 600.0, 30.0) - 442.5).abs() < 1e-9);
        assert!((flex_shrunk(1160.0, 400.0, 30.0) - 289.743_589).abs() < 1e-4);
        // Active speaker box beside a share: 400·1890/2320.
        assert!((flex_shrunk(1920.0, 400.0, 30.0) - 325.862_068).abs() < 1e-4);
        assert_eq!(flex_shrunk(0.0, 0.0, 30.0), 0.0);
        assert_eq!(flex_shrunk(2.0, 400.0, 30.0), 0.0);
    }

    #[test]
    fn tracks_grow_equally_up_to_their_limits() {
        assert_eq!(grow_tracks(90.0, &[181.0; 5], 840.0), vec![168.0; 5]);
        assert_eq!(
            grow_tracks(90.0, &[100.0, 300.0], 500.0),
            vec![100.0, 300.0]
        );
        assert_eq!(
            grow_tracks(90.0, &[100.0, 300.0], 300.0),
            vec![100.0, 200.0]
        );
        assert_eq!(grow_tracks(90.0, &[300.0], 50.0), vec![90.0]);
        assert!(grow_tracks(90.0, &[], 50.0).is_empty());
    }
}

//! Puts a layout scene on the compositor: pad geometry, z-order, visibility,
//! and the crop that turns "scale to fill" into cover-fit.

use gstreamer::prelude::*;

use super::inputs::Input;
use crate::layout::{Fit, Region, Scene};

/// Crop (left, right, top, bottom) so a `source` frame scaled into `target`
/// fills it without distortion (CSS `object-fit: cover`). Even values keep
/// 4:2:0 chroma aligned.
pub fn cover_crop(source: (u32, u32), target: (u32, u32)) -> (u32, u32, u32, u32) {
    let (sw, sh) = (u64::from(source.0), u64::from(source.1));
    let (tw, th) = (u64::from(target.0), u64::from(target.1));
    if sw == 0 || sh == 0 || tw == 0 || th == 0 {
        return (0, 0, 0, 0);
    }
    let even = |v: u64| (v / 2 * 2) as u32;
    if sw * th > sh * tw {
        // Source is wider: keep the middle columns.
        let excess = sw - (sh * tw + th / 2) / th;
        let left = even(excess / 2);
        (left, even(excess - u64::from(left)), 0, 0)
    } else {
        let excess = sh - (sw * th + tw / 2) / tw;
        let top = even(excess / 2);
        (0, 0, top, even(excess - u64::from(top)))
    }
}

/// Applies `scene` to one video input (hidden when no region shows it).
pub fn place(input: &Input, scene: &Scene, size: Option<(u32, u32)>) {
    let region = scene
        .regions
        .iter()
        .find(|r| r.track_sid.as_deref() == Some(input.track.as_str()));
    let pad = &input.mixer_pad;
    let Some(region) = region else {
        pad.set_property("alpha", 0.0f64);
        return;
    };
    set_geometry(pad, region);
    if let Some(crop) = &input.crop {
        let (left, right, top, bottom) = match (region.fit, size) {
            (Fit::Cover, Some(size)) => cover_crop(size, (region.rect.w, region.rect.h)),
            _ => (0, 0, 0, 0),
        };
        for (property, value) in [
            ("left", left),
            ("right", right),
            ("top", top),
            ("bottom", bottom),
        ] {
            if crop.property::<i32>(property) != value as i32 {
                crop.set_property(property, value as i32);
            }
        }
    }
    let policy = match region.fit {
        Fit::Cover => "none",
        Fit::Contain => "keep-aspect-ratio",
    };
    pad.set_property_from_str("sizing-policy", policy);
}

fn set_geometry(pad: &gstreamer::Pad, region: &Region) {
    pad.set_property("xpos", region.rect.x);
    pad.set_property("ypos", region.rect.y);
    pad.set_property("width", region.rect.w as i32);
    pad.set_property("height", region.rect.h as i32);
    // The background holds zorder 0.
    pad.set_property("zorder", region.z + 1);
    pad.set_property("alpha", 1.0f64);
}

#[cfg(test)]
mod tests {
    use super::cover_crop;

    #[test]
    fn cover_crop_keeps_the_centre() {
        // 16:9 into a square: crop the sides.
        assert_eq!(cover_crop((1280, 720), (500, 500)), (280, 280, 0, 0));
        // 16:9 into 16:9: nothing.
        assert_eq!(cover_crop((1280, 720), (640, 360)), (0, 0, 0, 0));
        // Portrait into landscape: crop top and bottom.
        assert_eq!(cover_crop((720, 1280), (1280, 720)), (0, 0, 436, 438));
        // Unknown sizes: no crop, no panic.
        assert_eq!(cover_crop((0, 0), (100, 100)), (0, 0, 0, 0));
        assert_eq!(cover_crop((100, 100), (0, 10)), (0, 0, 0, 0));
    }
}

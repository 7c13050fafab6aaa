//! Puts a layout scene on the compositor: pad geometry, z-order, visibility,
//! and the crop that turns "scale to fill" into cover-fit.

use gstreamer::prelude::*;

use super::inputs::{Fitting, Input};
use crate::layout::{Content, Fit, Rect, Region, Scene};

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
///
/// The input's chain crops and scales its frames to the size they are shown
/// at, so the compositor copies them without converting; until the decoded
/// size is known, a contained input is left to the compositor to fit. An
/// input not shown yet is fitted to the placeholder of its `owner` (the
/// participant and what the track is), whose place it takes once its frames
/// are on screen: the frames queued meanwhile then need no conversion either.
pub fn place(input: &Input, scene: &Scene, size: Option<(u32, u32)>, owner: (&str, Content)) {
    let pad = &input.mixer_pad;
    let showing = scene
        .regions
        .iter()
        .find(|r| r.track_sid.as_deref() == Some(input.track.as_str()));
    let Some(region) = showing else {
        pad.set_property("alpha", 0.0f64);
        let placeholder = scene.regions.iter().find(|r| {
            r.track_sid.is_none() && r.participant_sid == owner.0 && r.content == owner.1
        });
        if let (Some(fitting), Some(placeholder)) = (&input.fitting, placeholder) {
            fit(fitting, placeholder, size);
        }
        return;
    };
    let Some(fitting) = &input.fitting else {
        set_geometry(pad, region.rect, region.z, false);
        return;
    };
    match fit(fitting, region, size) {
        Some(rect) => set_geometry(pad, rect, region.z, false),
        None => set_geometry(pad, region.rect, region.z, region.fit == Fit::Contain),
    }
}

/// Crops and sizes an input's frames for `region`; returns where they go, or
/// None when the compositor has to fit them (contained, size unknown).
fn fit(fitting: &Fitting, region: &Region, size: Option<(u32, u32)>) -> Option<Rect> {
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
        if fitting.crop.property::<i32>(property) != value as i32 {
            fitting.crop.set_property(property, value as i32);
        }
    }
    let shown = match (region.fit, size) {
        (Fit::Cover, _) => Some(region.rect),
        (Fit::Contain, Some(size)) => contain_rect(size, region.rect),
        (Fit::Contain, None) => None,
    };
    fitting.set_size(shown.map(|rect| (rect.w, rect.h)));
    shown
}

/// Where a `source`-sized frame goes inside `region` with `object-fit:
/// contain`: centred, as large as fits (the compositor's own
/// keep-aspect-ratio arithmetic, `gst_video_center_rect`).
pub fn contain_rect(source: (u32, u32), region: Rect) -> Option<Rect> {
    let (sw, sh) = source;
    if sw == 0 || sh == 0 || region.w == 0 || region.h == 0 {
        return None;
    }
    let source_ratio = f64::from(sw) / f64::from(sh);
    let region_ratio = f64::from(region.w) / f64::from(region.h);
    let (w, h) = if source_ratio > region_ratio {
        (region.w, (f64::from(region.w) / source_ratio) as u32)
    } else if source_ratio < region_ratio {
        ((f64::from(region.h) * source_ratio) as u32, region.h)
    } else {
        (region.w, region.h)
    };
    if w == 0 || h == 0 {
        return None;
    }
    Some(Rect {
        x: region.x + ((region.w - w) / 2) as i32,
        y: region.y + ((region.h - h) / 2) as i32,
        w,
        h,
    })
}

/// Frames fill `rect` (stretched if they are not fitted yet), or with
/// `keep_aspect` the compositor fits them inside it.
fn set_geometry(pad: &gstreamer::Pad, rect: Rect, z: u32, keep_aspect: bool) {
    pad.set_property("xpos", rect.x);
    pad.set_property("ypos", rect.y);
    pad.set_property("width", rect.w as i32);
    pad.set_property("height", rect.h as i32);
    // The background holds zorder 0.
    pad.set_property("zorder", z + 1);
    let policy = if keep_aspect {
        "keep-aspect-ratio"
    } else {
        "none"
    };
    pad.set_property_from_str("sizing-policy", policy);
    pad.set_property("alpha", 1.0f64);
}

#[cfg(test)]
mod tests {
    use super::{contain_rect, cover_crop};
    use crate::layout::Rect;

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

    #[test]
    fn contain_centres_inside_the_region() {
        let region = Rect {
            x: 100,
            y: 50,
            w: 800,
            h: 800,
        };
        // 16:9 into a square: full width, centred vertically.
        assert_eq!(
            contain_rect((1280, 720), region),
            Some(Rect {
                x: 100,
                y: 225,
                w: 800,
                h: 450
            })
        );
        // Portrait into the square: full height, centred horizontally.
        assert_eq!(
            contain_rect((720, 1280), region),
            Some(Rect {
                x: 275,
                y: 50,
                w: 450,
                h: 800
            })
        );
        assert_eq!(contain_rect((800, 800), region), Some(region));
        assert_eq!(contain_rect((0, 720), region), None);
    }
}

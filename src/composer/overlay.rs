//! Labels, placeholders and rounded corners drawn over the composed video by
//! `overlaycomposition`: small pre-rendered images blended only where they
//! are, so their cost follows their area, not the canvas.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use crate::layout::Scene;

/// The current overlay, swapped whenever the scene changes.
#[derive(Clone, Default)]
pub struct Overlay {
    current: Arc<Mutex<Option<gst_video::VideoOverlayComposition>>>,
}

impl Overlay {
    /// Hooks the `draw` signal of an `overlaycomposition` element.
    pub fn attach(&self, element: &gst::Element) {
        let current = self.current.clone();
        element.connect("draw", false, move |_| {
            let composition = current.lock().expect("overlay lock").clone();
            Some(composition.to_value())
        });
    }

    /// Renders the decorations of `scene` and makes them the overlay.
    pub fn update(&self, scene: &Scene) {
        let rectangles: Vec<gst_video::VideoOverlayRectangle> = crate::render::decorations(scene)
            .into_iter()
            .filter_map(|decoration| {
                let (width, height) = (decoration.image.width, decoration.image.height);
                if width == 0 || height == 0 {
                    return None;
                }
                let mut buffer =
                    gst::Buffer::from_mut_slice(decoration.image.to_bgra_premultiplied());
                gst_video::VideoMeta::add(
                    buffer.get_mut()?,
                    gst_video::VideoFrameFlags::empty(),
                    gst_video::VideoFormat::Bgra,
                    width,
                    height,
                )
                .ok()?;
                Some(gst_video::VideoOverlayRectangle::new_raw(
                    &buffer,
                    decoration.x,
                    decoration.y,
                    width,
                    height,
                    gst_video::VideoOverlayFormatFlags::PREMULTIPLIED_ALPHA,
                ))
            })
            .collect();
        let composition = if rectangles.is_empty() {
            None
        } else {
            gst_video::VideoOverlayComposition::new(rectangles.iter()).ok()
        };
        *self.current.lock().expect("overlay lock") = composition;
    }
}

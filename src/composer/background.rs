//! The program's bottom layer: a live solid colour (the layout's background)
//! with an optional image at the top-left, at its own size, as Mux draws a
//! broadcast's background image — so the program runs with nobody in the room.
//!
//! `videotestsrc` is not safe against property changes while it fills a
//! frame, so a new colour is handed over to its streaming thread, which
//! applies it between two frames.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::{ComposerError, make};
use crate::layout::{Canvas, Rgba};

/// The background rarely changes: a few frames a second suffice (the
/// compositor holds each for its duration) and keep fewer full-canvas frames
/// queued inside the compositor's latency window. A colour change shows
/// within 1/5 s.
const BACKGROUND_FPS: i32 = 5;

pub struct Background {
    pending: Arc<Mutex<Option<u32>>>,
    current: Option<Rgba>,
}

impl Background {
    /// Adds the background source to `pipeline`; returns it and its last element.
    pub fn build(
        pipeline: &gst::Pipeline,
        canvas: Canvas,
        initial: Rgba,
        image: Option<&Path>,
    ) -> Result<(Background, gst::Element), ComposerError> {
        let src = make("videotestsrc")?;
        src.set_property("name", "background");
        src.set_property("is-live", true);
        src.set_property_from_str("pattern", "solid-color");
        src.set_property("foreground-color", argb(initial));
        let caps = make("capsfilter")?;
        caps.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", canvas.width as i32)
                .field("height", canvas.height as i32)
                .field("framerate", gst::Fraction::new(BACKGROUND_FPS, 1))
                .build(),
        );
        pipeline.add_many([&src, &caps])?;
        src.link(&caps)?;
        let mut last = caps;
        if let Some(path) = image {
            if !path.is_file() {
                return Err(ComposerError::Pipeline(format!(
                    "background image {} does not exist",
                    path.display()
                )));
            }
            let overlay = make("gdkpixbufoverlay")?;
            overlay.set_property("location", path.to_string_lossy().as_ref());
            pipeline.add(&overlay)?;
            last.link(&overlay)?;
            last = overlay;
        }
        let pending: Arc<Mutex<Option<u32>>> = Arc::default();
        let handover = pending.clone();
        let source = src.clone();
        src.static_pad("src")
            .ok_or_else(|| ComposerError::Pipeline("background has no src pad".into()))?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if let Some(colour) = handover.lock().expect("background colour").take() {
                    source.set_property("foreground-color", colour);
                }
                gst::PadProbeReturn::Ok
            });
        Ok((
            Background {
                pending,
                current: Some(initial),
            },
            last,
        ))
    }

    /// Shows `colour` from the next frame on; a no-op when unchanged.
    pub fn show(&mut self, colour: Rgba) {
        if self.current == Some(colour) {
            return;
        }
        self.current = Some(colour);
        *self.pending.lock().expect("background colour") = Some(argb(colour));
    }
}

/// ARGB as `videotestsrc`'s `foreground-color` wants it.
fn argb(colour: Rgba) -> u32 {
    (u32::from(colour.a) << 24)
        | (u32::from(colour.r) << 16)
        | (u32::from(colour.g) << 8)
        | u32::from(colour.b)
}

#[cfg(test)]
mod tests {
    use super::argb;
    use crate::layout::Rgba;

    #[test]
    fn argb_packing() {
        assert_eq!(argb(Rgba::rgb(0x32, 0x33, 0x34)), 0xff32_3334);
    }
}

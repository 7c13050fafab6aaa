//! The program's bottom layer: a live solid colour (the layout's background)
//! with an optional image at the top-left, at its own size, as Mux draws a
//! broadcast's background image — so the program runs with nobody in the room.
//!
//! ```text
//! appsrc (one frame per colour) → [gdkpixbufoverlay] → imagefreeze (live) → caps(fps)
//!     → queue (delay line) → compositor
//! ```
//!
//! The picture is still, so it exists once: `imagefreeze` sends that one
//! frame again at the program's frame rate, every copy sharing its memory
//! (a live `videotestsrc` filled a new full-canvas frame for every one, and
//! the compositor held several). A new colour is a new frame pushed into the
//! `appsrc`; `imagefreeze` sends it from its next frame on.
//!
//! The frames are sent at the program's rate and reach the compositor
//! [`JITTER_LATENCY`] after their time (a queue as a delay line): the
//! compositor has the background's frame for time t, and composes frame t,
//! only at t plus its latency window, when every input's frame for t has had
//! the whole window to arrive (a jitter buffer may hold one back that long
//! waiting for a lost packet). Composing earlier would drop such late
//! frames; a background at a few frames per second gave between none and
//! all of the window, depending on its phase.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::{ComposerError, JITTER_LATENCY, make};
use crate::layout::{Canvas, Rgba};

pub struct Background {
    src: gst_app::AppSrc,
    /// The canvas in the program's raw format.
    info: gst_video::VideoInfo,
    current: Option<Rgba>,
}

impl Background {
    /// Adds the background source to `pipeline`; returns it and its last
    /// element. `format` is the program's raw format (see `program.rs`).
    pub fn build(
        pipeline: &gst::Pipeline,
        canvas: Canvas,
        format: &gst::Caps,
        fps: i32,
        initial: Rgba,
        image: Option<&Path>,
    ) -> Result<(Background, gst::Element), ComposerError> {
        let mut frame_caps = format.clone();
        if let Some(structure) = frame_caps.make_mut().structure_mut(0) {
            structure.set("width", canvas.width as i32);
            structure.set("height", canvas.height as i32);
            structure.set("framerate", gst::Fraction::new(0, 1));
        }
        let info = gst_video::VideoInfo::from_caps(&frame_caps)
            .map_err(|e| ComposerError::Pipeline(format!("background format: {e}")))?;
        let src = gst_app::AppSrc::builder()
            .name("background")
            .caps(&frame_caps)
            .format(gst::Format::Time)
            .build();
        let freeze = make("imagefreeze")?;
        freeze.set_property("name", "background-freeze");
        freeze.set_property("is-live", true);
        freeze.set_property("allow-replace", true);
        // The delay line (see the module notes). The queue adds the window
        // to the latency it reports, and holds references to the one frame.
        let window = gst::ClockTime::from_nseconds(JITTER_LATENCY.as_nanos() as u64);
        let delay = make("queue")?;
        delay.set_property("name", "background-delay");
        delay.set_property("min-threshold-time", window.nseconds());
        delay.set_property("max-size-time", 2 * window.nseconds());
        delay.set_property("max-size-buffers", 0u32);
        delay.set_property("max-size-bytes", 0u32);
        let rate = make("capsfilter")?;
        rate.set_property("name", "background-rate");
        rate.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("framerate", gst::Fraction::new(fps, 1))
                .build(),
        );
        pipeline.add_many([src.upcast_ref(), &freeze, &rate, &delay])?;
        let mut last = src.clone().upcast::<gst::Element>();
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
        gst::Element::link_many([&last, &freeze, &rate, &delay])?;
        let mut background = Background {
            src,
            info,
            current: None,
        };
        background.show(initial);
        Ok((background, delay))
    }

    /// Shows `colour` from the next frame on; a no-op when unchanged.
    pub fn show(&mut self, colour: Rgba) {
        if self.current == Some(colour) {
            return;
        }
        match solid_frame(&self.info, colour) {
            Ok(frame) => {
                self.current = Some(colour);
                // Fails only while the pipeline shuts down.
                let _ = self.src.push_buffer(frame);
            }
            Err(error) => tracing::warn!(%error, "cannot draw the background colour"),
        }
    }
}

/// A frame of `info` filled with `colour`, converted as GStreamer converts
/// RGB to the program's format.
fn solid_frame(info: &gst_video::VideoInfo, colour: Rgba) -> Result<gst::Buffer, ComposerError> {
    let failed = |what: &str| ComposerError::Pipeline(format!("background frame: {what}"));
    // One 2×2 ARGB block converted to the program's format gives the plane values.
    let argb = gst_video::VideoInfo::builder(gst_video::VideoFormat::Argb, 2, 2)
        .build()
        .map_err(|_| failed("ARGB format"))?;
    let block_info = gst_video::VideoInfo::builder(info.format(), 2, 2)
        .colorimetry(&info.colorimetry())
        .chroma_site(info.chroma_site())
        .build()
        .map_err(|_| failed("block format"))?;
    let mut rgb = gst::Buffer::with_size(argb.size()).map_err(|_| failed("ARGB buffer"))?;
    {
        let rgb = rgb.get_mut().ok_or_else(|| failed("ARGB buffer"))?;
        let mut map = rgb.map_writable().map_err(|_| failed("ARGB map"))?;
        for pixel in map.chunks_exact_mut(4) {
            pixel.copy_from_slice(&[colour.a, colour.r, colour.g, colour.b]);
        }
    }
    let rgb = gst_video::VideoFrame::from_buffer_readable(rgb, &argb)
        .map_err(|_| failed("ARGB frame"))?;
    let block = gst::Buffer::with_size(block_info.size()).map_err(|_| failed("block buffer"))?;
    let mut block = gst_video::VideoFrame::from_buffer_writable(block, &block_info)
        .map_err(|_| failed("block frame"))?;
    gst_video::VideoConverter::new(&argb, &block_info, None)
        .map_err(|_| failed("converter"))?
        .frame(&rgb, &mut block);
    let values: Vec<u8> = (0..block_info.n_planes())
        .map(|plane| block.plane_data(plane).map(|data| data[0]))
        .collect::<Result<_, _>>()
        .map_err(|_| failed("block planes"))?;

    let frame = gst::Buffer::with_size(info.size()).map_err(|_| failed("frame buffer"))?;
    let mut frame =
        gst_video::VideoFrame::from_buffer_writable(frame, info).map_err(|_| failed("frame"))?;
    for (plane, value) in values.into_iter().enumerate() {
        frame
            .plane_data_mut(plane as u32)
            .map_err(|_| failed("frame plane"))?
            .fill(value);
    }
    Ok(frame.into_buffer())
}

#[cfg(test)]
mod tests {
    use super::solid_frame;
    use crate::layout::Rgba;
    use gstreamer_video as gst_video;

    #[test]
    fn a_solid_frame_has_the_colour_in_every_plane() {
        gstreamer::init().unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 64, 36)
            .build()
            .unwrap();
        let frame = solid_frame(&info, Rgba::rgb(0x32, 0x32, 0x32)).unwrap();
        let frame = gst_video::VideoFrame::from_buffer_readable(frame, &info).unwrap();
        // A grey: Y about 16 + 219 × 0x32 / 255, no chroma.
        let y = frame.plane_data(0).unwrap();
        assert!(
            y.iter().all(|&v| v == y[0]) && (55..=60).contains(&y[0]),
            "{}",
            y[0]
        );
        for plane in 1..3 {
            let c = frame.plane_data(plane).unwrap();
            assert!(c.iter().all(|&v| v == 128), "plane {plane}: {}", c[0]);
        }
    }
}

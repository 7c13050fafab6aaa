//! Still images of the program (LiveKit's image outputs): a JPEG every
//! `interval` at `width`×`height`, written under the recordings directory
//! and, when object storage is configured, uploaded as each one is taken.
//!
//! ```text
//! program tee (raw) → queue (leaky) → videorate → videoscale → caps(W×H @ 1/interval)
//!     → jpegenc → appsink → file [→ bucket]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::media::OutputError;
use crate::storage::{ObjectStore, until_stored};

/// How each image's name ends (LiveKit's `ImageFileSuffix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSuffix {
    /// `_00001`, `_00002`, …
    Index,
    /// The capture time, `_20261207T101500123`.
    Timestamp,
    /// No suffix: each image replaces the last.
    Overwrite,
}

/// What an image output takes and where it puts it.
#[derive(Debug, Clone)]
pub struct ImageJob {
    /// Local directory the images go to.
    pub dir: PathBuf,
    /// File name prefix (LiveKit's `filename_prefix`, its last part).
    pub name: String,
    /// Seconds between images.
    pub interval_secs: u32,
    pub width: u32,
    pub height: u32,
    pub suffix: ImageSuffix,
    /// Uploads: the store and the object key prefix (`…/name`).
    pub upload: Option<(ObjectStore, String)>,
    /// Images taken so far.
    pub count: Arc<AtomicU64>,
}

impl ImageJob {
    fn file_name(&self, index: u64) -> String {
        match self.suffix {
            ImageSuffix::Index => format!("{}_{index:05}.jpeg", self.name),
            ImageSuffix::Timestamp => format!(
                "{}_{}.jpeg",
                self.name,
                chrono::Utc::now().format("%Y%m%dT%H%M%S%3f")
            ),
            ImageSuffix::Overwrite => format!("{}.jpeg", self.name),
        }
    }

    /// Writes one image (and queues its upload); runs on the streaming thread.
    fn take(&self, jpeg: &[u8], runtime: Option<&tokio::runtime::Handle>) {
        let index = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let name = self.file_name(index);
        let path = self.dir.join(&name);
        if let Err(error) = std::fs::write(&path, jpeg) {
            tracing::warn!(image = %path.display(), %error, "image not written");
            return;
        }
        if let (Some((store, prefix)), Some(runtime)) = (&self.upload, runtime) {
            let key = match prefix.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/{name}"),
                None => name,
            };
            let (store, body) = (store.clone(), jpeg.to_vec());
            runtime.spawn(async move {
                until_stored("image", &key, || {
                    let body = body.clone();
                    let store = store.clone();
                    let key = key.clone();
                    async move { store.put_bytes(&key, body, "image/jpeg").await }
                })
                .await;
            });
        }
    }
}

/// The elements from the ghost pad `video` to the appsink, in `bin`.
/// Returns the appsink.
pub fn build(bin: &gst::Bin, key: &str, job: &ImageJob) -> Result<gst::Element, OutputError> {
    std::fs::create_dir_all(&job.dir)
        .map_err(|e| OutputError::Build(format!("cannot create {}: {e}", job.dir.display())))?;
    let make = |factory: &str| {
        gst::ElementFactory::make(factory)
            .name(format!("{factory}-{key}"))
            .build()
            .map_err(|_| OutputError::MissingElement(factory.to_string()))
    };
    let queue = make("queue")?;
    // Stills never hold the program back: at most one raw frame waits.
    queue.set_property("max-size-buffers", 1u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 0u64);
    queue.set_property_from_str("leaky", "downstream");
    let rate = make("videorate")?;
    rate.set_property("drop-only", true);
    let scale = make("videoscale")?;
    let caps = make("capsfilter")?;
    caps.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("width", job.width as i32)
            .field("height", job.height as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .field(
                "framerate",
                gst::Fraction::new(1, job.interval_secs.max(1) as i32),
            )
            .build(),
    );
    let encoder = make("jpegenc")?;
    let sink = make("appsink")?;
    let appsink = sink
        .clone()
        .downcast::<gst_app::AppSink>()
        .map_err(|_| OutputError::Build("appsink is not an AppSink".into()))?;
    appsink.set_property("sync", false);
    appsink.set_property("async", false);
    let chain = [&queue, &rate, &scale, &caps, &encoder, &sink];
    bin.add_many(chain)?;
    gst::Element::link_many(chain)?;
    let runtime = tokio::runtime::Handle::try_current().ok();
    let job = job.clone();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(buffer) = sample.buffer()
                    && let Ok(map) = buffer.map_readable()
                {
                    job.take(map.as_slice(), runtime.as_ref());
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let target = queue
        .static_pad("sink")
        .ok_or_else(|| OutputError::Build("queue without sink pad".into()))?;
    let ghost = gst::GhostPad::builder_with_target(&target)?
        .name("video")
        .build();
    bin.add_pad(&ghost)?;
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(suffix: ImageSuffix) -> ImageJob {
        ImageJob {
            dir: PathBuf::from("/tmp"),
            name: "thumb".into(),
            interval_secs: 5,
            width: 640,
            height: 360,
            suffix,
            upload: None,
            count: Arc::default(),
        }
    }

    #[test]
    fn names_follow_the_suffix_rule() {
        assert_eq!(job(ImageSuffix::Index).file_name(7), "thumb_00007.jpeg");
        assert_eq!(job(ImageSuffix::Overwrite).file_name(7), "thumb.jpeg");
        let stamped = job(ImageSuffix::Timestamp).file_name(7);
        assert!(
            stamped.starts_with("thumb_2") && stamped.ends_with(".jpeg"),
            "{stamped}"
        );
    }
}

//! Output bins that hang off the program's encoder tees. Each has a ghost
//! sink pad per stream of the program (`video`, `audio`) and counts the
//! bytes it hands to its sink.
//!
//! ```text
//! MP4:  queue → mp4mux (fragmented, 1 s fragments: a crash loses at most the last fragment) → filesink
//! RTMP: queue (leaky) → flvmux (streamable) → rtmp2sink
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::config::Secret;

/// Where one output of a program goes.
#[derive(Debug, Clone)]
pub enum OutputTarget {
    /// Full publish URL including the stream key.
    Rtmp {
        url: Secret,
    },
    Mp4 {
        path: PathBuf,
    },
    Hls,
}

/// What a program carries (LiveKit's `audio_only` / `video_only`); every
/// output of the program gets exactly these streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgramMedia {
    #[default]
    AudioVideo,
    AudioOnly,
    VideoOnly,
}

impl ProgramMedia {
    /// The stored name (`audio_video`, `audio_only`, `video_only`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProgramMedia::AudioVideo => "audio_video",
            ProgramMedia::AudioOnly => "audio_only",
            ProgramMedia::VideoOnly => "video_only",
        }
    }

    pub fn parse(name: &str) -> Option<ProgramMedia> {
        [
            ProgramMedia::AudioVideo,
            ProgramMedia::AudioOnly,
            ProgramMedia::VideoOnly,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
    }

    pub fn has_video(self) -> bool {
        self != ProgramMedia::AudioOnly
    }

    pub fn has_audio(self) -> bool {
        self != ProgramMedia::VideoOnly
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("missing GStreamer element `{0}`")]
    MissingElement(String),
    #[error("{0}")]
    Build(String),
    #[error("{0}")]
    Unsupported(String),
}

impl From<gst::glib::BoolError> for OutputError {
    fn from(error: gst::glib::BoolError) -> Self {
        OutputError::Build(error.to_string())
    }
}

/// MP4 fragment length: the most a crash can lose.
const MP4_FRAGMENT_MS: u32 = 1000;

/// An output bin ready to be linked to the tees.
pub struct OutputBin {
    pub bin: gst::Bin,
    /// The element that finally writes (filesink, rtmp2sink).
    pub sink: gst::Element,
    pub bytes: Arc<AtomicU64>,
    /// RTMP: only bytes the server received count as flowing.
    network: bool,
}

impl OutputBin {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Whether program data has really left: bytes reached the file, or the
    /// RTMP server acknowledged/received them.
    pub fn is_flowing(&self) -> bool {
        if self.network {
            let stats = self.sink.property::<Option<gst::Structure>>("stats");
            return stats
                .and_then(|s| s.get::<u64>("out-bytes-total").ok())
                .is_some_and(|bytes| bytes > 0)
                && self.bytes() > 0;
        }
        self.bytes() > 0
    }
}

fn make(factory: &str, name: &str) -> Result<gst::Element, OutputError> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|_| OutputError::MissingElement(factory.to_string()))
}

/// Builds the bin for `target`; `key` names its elements uniquely.
pub fn build(
    key: &str,
    target: &OutputTarget,
    media: ProgramMedia,
) -> Result<OutputBin, OutputError> {
    let bin = gst::Bin::with_name(&format!("output-{key}"));
    let (mux, sink, leaky, pads) = match target {
        OutputTarget::Mp4 { path } => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    OutputError::Build(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mux = make("mp4mux", &format!("mux-{key}"))?;
            mux.set_property("fragment-duration", MP4_FRAGMENT_MS);
            let sink = make("filesink", &format!("sink-{key}"))?;
            sink.set_property("location", path.to_string_lossy().as_ref());
            sink.set_property("async", false);
            (mux, sink, false, ["video_%u", "audio_%u"])
        }
        OutputTarget::Rtmp { url } => {
            let mux = make("flvmux", &format!("mux-{key}"))?;
            mux.set_property("streamable", true);
            let sink = make("rtmp2sink", &format!("sink-{key}"))?;
            sink.set_property("location", url.expose());
            sink.set_property("async", false);
            (mux, sink, true, ["video", "audio"])
        }
        OutputTarget::Hls => {
            return Err(OutputError::Unsupported(
                "HLS output is not available in this build yet".into(),
            ));
        }
    };
    bin.add_many([&mux, &sink])?;
    mux.link(&sink)?;
    let wanted = [media.has_video(), media.has_audio()];
    for ((kind, template), _) in ["video", "audio"]
        .into_iter()
        .zip(pads)
        .zip(wanted)
        .filter(|(_, wanted)| *wanted)
    {
        let queue = make("queue", &format!("queue-{kind}-{key}"))?;
        // A slow network destination drops old data instead of holding up the
        // program; a file keeps everything (up to 5 s of disk stall).
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 5_000_000_000u64);
        if leaky {
            queue.set_property_from_str("leaky", "downstream");
        }
        bin.add(&queue)?;
        let mux_pad = mux
            .request_pad_simple(template)
            .ok_or_else(|| OutputError::Build(format!("{} refused a {kind} pad", mux.name())))?;
        queue
            .static_pad("src")
            .ok_or_else(|| OutputError::Build("queue without src pad".into()))?
            .link(&mux_pad)
            .map_err(|e| OutputError::Build(format!("linking {kind}: {e:?}")))?;
        let target = queue
            .static_pad("sink")
            .ok_or_else(|| OutputError::Build("queue without sink pad".into()))?;
        let ghost = gst::GhostPad::builder_with_target(&target)?
            .name(kind)
            .build();
        bin.add_pad(&ghost)?;
    }
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = bytes.clone();
    sink.static_pad("sink")
        .ok_or_else(|| OutputError::Build("sink without sink pad".into()))?
        .add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                let size = match &info.data {
                    Some(gst::PadProbeData::Buffer(buffer)) => buffer.size(),
                    Some(gst::PadProbeData::BufferList(list)) => list.calculate_size(),
                    _ => 0,
                };
                counter.fetch_add(size as u64, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            },
        );
    Ok(OutputBin {
        bin,
        sink,
        bytes,
        network: leaky,
    })
}

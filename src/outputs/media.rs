//! Output bins that hang off the program's encoder tees. Each has a ghost
//! sink pad per stream of the program (`video`, `audio`) and counts the
//! bytes it hands to its sink.
//!
//! ```text
//! MP4:  queue → mp4mux (fragmented, 1 s fragments: a crash loses at most the last fragment) → filesink
//! RTMP: queue (leaky) → flvmux (streamable) → rtmp2sink
//! HLS:  queue → [h264parse → byte-stream] → splitmuxsink (mpegtsmux → filesink, keyframe-aligned segments)
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::hls::HlsSegments;
use super::images::ImageJob;
use super::playlist::Segment;
use crate::config::Secret;

/// Where one output of a program goes.
#[derive(Debug, Clone)]
pub enum OutputTarget {
    /// Full publish URL including the stream key.
    Rtmp {
        url: Secret,
    },
    /// `srt://host:port?…` (MPEG-TS over SRT, caller mode).
    Srt {
        url: Secret,
    },
    Mp4 {
        path: PathBuf,
    },
    /// Opus in Ogg, encoded from the raw mix (LiveKit's audio-only files).
    Ogg {
        path: PathBuf,
        bitrate_bps: u32,
    },
    /// Segments are cut into `dir` and handed to `segments` as they close.
    Hls {
        dir: PathBuf,
        segment_secs: u32,
        segments: HlsSegments,
    },
    /// Stills of the raw program (fed from the program tee, not the encoders).
    Images(ImageJob),
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
}

impl From<gst::glib::BoolError> for OutputError {
    fn from(error: gst::glib::BoolError) -> Self {
        OutputError::Build(error.to_string())
    }
}

/// How long an RTMP connection may be unable to write before it counts as failed.
const STALL_TIMEOUT_SECS: u32 = 5;

/// MP4 fragment length: the most a crash can lose.
const MP4_FRAGMENT_MS: u32 = 1000;

/// An output bin ready to be linked to the tees.
pub struct OutputBin {
    pub bin: gst::Bin,
    /// The element that finally writes (filesink, rtmp2sink).
    pub sink: gst::Element,
    pub bytes: Arc<AtomicU64>,
    /// Images taken or HLS segments closed.
    pub items: Arc<AtomicU64>,
    /// The end of stream has been written out (the file is complete).
    pub finished: Arc<AtomicBool>,
    /// RTMP: only bytes the server received count as flowing.
    network: bool,
    hls: Option<HlsState>,
}

/// Follows the segment muxer's messages to hand closed segments on.
struct HlsState {
    segments: HlsSegments,
    /// Running time at which the open segment started.
    opened_at: Option<u64>,
    /// End of stream reached the segment muxer: the next close is the last.
    input_ended: Arc<AtomicBool>,
}

impl OutputBin {
    /// Handles an element message from inside this bin (the HLS segment
    /// muxer's `splitmuxsink-fragment-opened/closed`).
    pub fn on_element_message(&mut self, structure: &gst::StructureRef) {
        let Some(hls) = self.hls.as_mut() else {
            return;
        };
        let running_time = structure.get::<u64>("running-time").ok();
        match structure.name().as_str() {
            "splitmuxsink-fragment-opened" => hls.opened_at = running_time,
            "splitmuxsink-fragment-closed" => {
                let location = structure.get::<String>("location").unwrap_or_default();
                let name = std::path::Path::new(&location)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                self.items.fetch_add(1, Ordering::Relaxed);
                if let (Some(name), Some(opened), Some(closed)) =
                    (name, hls.opened_at.take(), running_time)
                {
                    hls.segments.closed(Segment {
                        name,
                        duration: Duration::from_nanos(closed.saturating_sub(opened)),
                    });
                }
                if hls.input_ended.load(Ordering::SeqCst) {
                    hls.segments.end();
                    self.finished.store(true, Ordering::SeqCst);
                }
            }
            _ => {}
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Whether program data has really left: bytes reached the file, or the
    /// RTMP server acknowledged/received them.
    pub fn is_flowing(&self) -> bool {
        if self.network {
            return self.network_bytes() > 0 && self.bytes() > 0;
        }
        self.bytes() > 0
    }

    /// Bytes the connection has written to its socket (rtmp2sink's or
    /// srtsink's statistics).
    fn network_bytes(&self) -> u64 {
        let stats = self.sink.property::<Option<gst::Structure>>("stats");
        stats
            .and_then(|s| {
                s.get::<u64>("out-bytes-total")
                    .or_else(|_| s.get::<u64>("bytes-sent-total"))
                    .ok()
            })
            .unwrap_or(0)
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
    if let OutputTarget::Images(job) = target {
        let sink = super::images::build(&bin, key, job)?;
        let mut output = finish_bin(bin, sink, false, None);
        output.items = job.count.clone();
        return Ok(output);
    }
    let (mux, sink, leaky, pads) = match target {
        OutputTarget::Images(_) => unreachable!("handled above"),
        OutputTarget::Mp4 { path } => {
            let mux = make("mp4mux", &format!("mux-{key}"))?;
            mux.set_property("fragment-duration", MP4_FRAGMENT_MS);
            (mux, file_sink(key, path)?, false, ["video_%u", "audio_%u"])
        }
        OutputTarget::Ogg { path, .. } => {
            let mux = make("oggmux", &format!("mux-{key}"))?;
            (mux, file_sink(key, path)?, false, ["video_%u", "audio_%u"])
        }
        OutputTarget::Rtmp { url } => {
            let mux = make("flvmux", &format!("mux-{key}"))?;
            mux.set_property("streamable", true);
            let sink = make("rtmp2sink", &format!("sink-{key}"))?;
            sink.set_property("location", url.expose());
            // A server that stops reading (hung, overloaded) blocks the
            // socket; after this many seconds that is an error, and the
            // destination is retried like one that dropped the connection.
            sink.set_property("timeout", STALL_TIMEOUT_SECS);
            sink.set_property("async", false);
            (mux, sink, true, ["video", "audio"])
        }
        OutputTarget::Srt { url } => {
            let mux = make("mpegtsmux", &format!("mux-{key}"))?;
            let sink = make("srtsink", &format!("sink-{key}"))?;
            sink.set_property("uri", url.expose());
            // Connecting is not waited for: a listener that is not there
            // is an error (and a retry), not a blocked program.
            sink.set_property("wait-for-connection", false);
            sink.set_property("async", false);
            (mux, sink, true, ["sink_%d", "sink_%d"])
        }
        OutputTarget::Hls {
            dir, segment_secs, ..
        } => {
            std::fs::create_dir_all(dir)
                .map_err(|e| OutputError::Build(format!("cannot create {}: {e}", dir.display())))?;
            let mux = make("splitmuxsink", &format!("mux-{key}"))?;
            let muxer = make("mpegtsmux", &format!("tsmux-{key}"))?;
            let sink = make("filesink", &format!("sink-{key}"))?;
            sink.set_property("async", false);
            mux.set_property("muxer", &muxer);
            mux.set_property("sink", &sink);
            mux.set_property(
                "location",
                dir.join("segment%05d.ts").to_string_lossy().as_ref(),
            );
            mux.set_property("max-size-time", u64::from(*segment_secs) * 1_000_000_000);
            // Asks the encoder for a keyframe where each segment should start.
            mux.set_property("send-keyframe-requests", true);
            (mux, sink, false, ["video", "audio_%u"])
        }
    };
    let hls = matches!(target, OutputTarget::Hls { .. });
    if hls {
        // splitmuxsink owns its muxer and sink.
        bin.add(&mux)?;
    } else {
        bin.add_many([&mux, &sink])?;
        mux.link(&sink)?;
    }
    let ogg_bitrate = match target {
        OutputTarget::Ogg { bitrate_bps, .. } => Some(*bitrate_bps),
        _ => None,
    };
    let wanted = match ogg_bitrate {
        Some(_) => [false, true],
        None => [media.has_video(), media.has_audio()],
    };
    let mut mux_pads = Vec::new();
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
        let mut chain = vec![queue.clone()];
        let transport_stream = hls || matches!(target, OutputTarget::Srt { .. });
        if transport_stream && kind == "video" {
            // MPEG-TS carries H.264 as a byte stream with SPS/PPS before
            // every keyframe, so each segment decodes on its own.
            let parse = make("h264parse", &format!("parse-{key}"))?;
            parse.set_property("config-interval", -1i32);
            let caps = make("capsfilter", &format!("bytestream-{key}"))?;
            caps.set_property(
                "caps",
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            );
            chain.extend([parse, caps]);
        }
        if let (Some(bitrate), "audio") = (ogg_bitrate, kind) {
            let convert = make("audioconvert", &format!("convert-{key}"))?;
            let resample = make("audioresample", &format!("resample-{key}"))?;
            let opus = make("opusenc", &format!("opus-{key}"))?;
            opus.set_property("bitrate", bitrate as i32);
            chain.extend([convert, resample, opus]);
        }
        bin.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        let mux_pad = mux
            .request_pad_simple(template)
            .ok_or_else(|| OutputError::Build(format!("{} refused a {kind} pad", mux.name())))?;
        chain[chain.len() - 1]
            .static_pad("src")
            .ok_or_else(|| OutputError::Build("chain without src pad".into()))?
            .link(&mux_pad)
            .map_err(|e| OutputError::Build(format!("linking {kind}: {e:?}")))?;
        let target = queue
            .static_pad("sink")
            .ok_or_else(|| OutputError::Build("queue without sink pad".into()))?;
        let ghost = gst::GhostPad::builder_with_target(&target)?
            .name(kind)
            .build();
        bin.add_pad(&ghost)?;
        mux_pads.push(mux_pad);
    }
    let hls = match target {
        OutputTarget::Hls { segments, .. } => {
            let input_ended = Arc::new(AtomicBool::new(false));
            if let Some(pad) = mux_pads.first() {
                on_eos(pad, input_ended.clone());
            }
            Some(HlsState {
                segments: segments.clone(),
                opened_at: None,
                input_ended,
            })
        }
        _ => None,
    };
    Ok(finish_bin(bin, sink, leaky, hls))
}

/// A filesink writing `path` (its directory made first).
fn file_sink(key: &str, path: &std::path::Path) -> Result<gst::Element, OutputError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| OutputError::Build(format!("cannot create {}: {e}", dir.display())))?;
    }
    let sink = make("filesink", &format!("sink-{key}"))?;
    sink.set_property("location", path.to_string_lossy().as_ref());
    sink.set_property("async", false);
    Ok(sink)
}

/// Counts the bytes reaching `sink` and notes the end of stream there.
fn finish_bin(
    bin: gst::Bin,
    sink: gst::Element,
    network: bool,
    hls: Option<HlsState>,
) -> OutputBin {
    let finished = Arc::new(AtomicBool::new(false));
    if hls.is_none()
        && let Some(pad) = sink.static_pad("sink")
    {
        on_eos(&pad, finished.clone());
    }
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = bytes.clone();
    if let Some(pad) = sink.static_pad("sink") {
        pad.add_probe(
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
    }
    OutputBin {
        bin,
        sink,
        bytes,
        items: Arc::default(),
        finished,
        network,
        hls,
    }
}

/// Raises `flag` when end of stream passes `pad`.
fn on_eos(pad: &gst::Pad, flag: Arc<AtomicBool>) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(event)) = &info.data
            && event.type_() == gst::EventType::Eos
        {
            flag.store(true, Ordering::SeqCst);
        }
        gst::PadProbeReturn::Ok
    });
}

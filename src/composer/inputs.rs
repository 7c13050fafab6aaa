//! One input chain per subscribed track, fed by the SFU's RTP packets:
//!
//! ```text
//! appsrc(rtp)  → rtpbin.recv_rtp_sink_N  ┐ jitter buffer, lip-sync from SRs
//! appsrc(rtcp) → rtpbin.recv_rtcp_sink_N ┘
//! rtpbin.recv_rtp_src_N_* → depay → [h264parse] → decoder → videocrop → videoconvertscale
//!                              → caps(region size, program colorimetry) → compositor
//!                         → rtpopusdepay → opusdec → audioconvert → audioresample → audiomixer
//! ```
//!
//! A video input reaches the compositor already at the size and in the
//! colours of the program, so the compositor only copies it into place. Left
//! to the compositor, the scaling and colour conversion would happen on every
//! output frame, each into a temporary buffer as large as the whole canvas
//! (GStreamer 1.22 allocates `max(tile, canvas)` per pad and frame), and the
//! frames the compositor queues for its latency window would be decoded size
//! instead of tile size.
//!
//! Inputs come and go while the program runs; nothing here ever blocks the
//! caller: the appsrcs drop the oldest data when a chain falls behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::mpsc::UnboundedSender;

use super::{ComposerError, JITTER_LATENCY, make};
use crate::sfu::{Codec, TrackInfo, TrackKind, TrackSid};

/// What input chains report to the composer's loop.
#[derive(Debug)]
pub enum InputSignal {
    /// A decoder downstream asked for a keyframe (loss, or a decoder start).
    KeyframeWanted(TrackSid),
    /// A video input's decoded size is known or changed.
    VideoSize {
        track: TrackSid,
        width: u32,
        height: u32,
    },
    /// The first frame of a video input was decoded.
    FirstFrame(TrackSid),
}

/// Bytes an input's appsrc may hold before it drops the oldest.
const APPSRC_MAX_BYTES: u64 = 4 * 1024 * 1024;

pub struct Input {
    pub track: TrackSid,
    pub kind: TrackKind,
    session: u32,
    rtp_src: gst_app::AppSrc,
    /// Made when the first sender report arrives: most tracks of a small
    /// room never need it, and each appsrc is a thread.
    rtcp_src: Option<gst_app::AppSrc>,
    /// depay … last element, in order.
    chain: Vec<gst::Element>,
    /// The compositor or audiomixer pad this input feeds.
    pub mixer_pad: gst::Pad,
    /// Video only: what fits decoded frames to their region.
    pub fitting: Option<Fitting>,
}

impl Input {
    pub fn push_rtp(&self, data: Vec<u8>) {
        // Errors mean the chain is shutting down; the packet is simply dropped.
        let _ = self.rtp_src.push_buffer(gst::Buffer::from_mut_slice(data));
    }
}

/// The elements of a video input that fit its frames to the region showing them.
pub struct Fitting {
    /// Crops for cover-fit.
    pub crop: gst::Element,
    /// After `videoconvertscale`: the program's raw format, and the size the
    /// region shows the frames at (none while it is not known).
    size: gst::Element,
    /// The program's raw format, without a size.
    format: gst::Caps,
}

impl Fitting {
    /// Frames leave the chain at `size`, or at their own size with `None`
    /// (the compositor then scales them).
    pub fn set_size(&self, size: Option<(u32, u32)>) {
        let mut caps = self.format.clone();
        if let Some((width, height)) = size.filter(|(w, h)| *w > 0 && *h > 0) {
            let caps = caps.make_mut();
            caps.set("width", width.min(i32::MAX as u32) as i32);
            caps.set("height", height.min(i32::MAX as u32) as i32);
        }
        if self.size.property::<gst::Caps>("caps") != caps {
            self.size.set_property("caps", caps);
        }
    }
}

/// Owns the shared rtpbin and creates/removes input chains.
pub struct Inputs {
    pipeline: gst::Pipeline,
    rtpbin: gst::Element,
    /// The program's raw video format without a size (see [`Fitting`]).
    video_format: gst::Caps,
    next_session: u32,
    /// session → the element rtpbin's output pad for that session links to.
    depays: Arc<Mutex<HashMap<u32, gst::Element>>>,
    signals: UnboundedSender<InputSignal>,
}

impl Inputs {
    pub fn new(
        pipeline: &gst::Pipeline,
        video_format: gst::Caps,
        signals: UnboundedSender<InputSignal>,
    ) -> Result<Inputs, ComposerError> {
        let rtpbin = make("rtpbin")?;
        rtpbin.set_property("name", "rtpbin");
        rtpbin.set_property("latency", JITTER_LATENCY.as_millis() as u32);
        rtpbin.set_property("do-lost", true);
        rtpbin.set_property("drop-on-latency", true);
        rtpbin.set_property("autoremove", true);
        pipeline.add(&rtpbin)?;
        let depays: Arc<Mutex<HashMap<u32, gst::Element>>> = Arc::default();
        let links = depays.clone();
        rtpbin.connect_pad_added(move |_, pad| link_session_output(&links, pad));
        Ok(Inputs {
            pipeline: pipeline.clone(),
            rtpbin,
            video_format,
            next_session: 0,
            depays,
            signals,
        })
    }

    /// Builds and starts the chain for `track`, feeding `mixer` (compositor or audiomixer).
    /// `pan` places an audio input in the stereo mix (-1 left … 1 right;
    /// None = both channels).
    pub fn add(
        &mut self,
        track: &TrackInfo,
        mixer: &gst::Element,
        pan: Option<f32>,
    ) -> Result<Input, ComposerError> {
        let session = self.next_session;
        self.next_session += 1;
        let chain = decode_chain(track, &self.video_format, pan)?;
        let depay = chain[0].clone();
        let last = chain[chain.len() - 1].clone();
        let fitting = (track.kind == TrackKind::Video).then(|| Fitting {
            crop: chain[chain.len() - 3].clone(),
            size: last.clone(),
            format: self.video_format.clone(),
        });

        let media = match track.kind {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        };
        let rtp_caps = gst::Caps::builder("application/x-rtp")
            .field("media", media)
            .field("encoding-name", track.codec.encoding_name())
            .field("clock-rate", track.clock_rate as i32)
            .field("payload", i32::from(track.payload_type))
            .build();
        let rtp_src = appsrc(&format!("rtp-{}", track.sid), rtp_caps);

        self.pipeline.add(&rtp_src)?;
        self.pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        let mixer_pad = mixer
            .request_pad_simple("sink_%u")
            .ok_or_else(|| ComposerError::Pipeline("mixer refused a new input pad".into()))?;
        if track.kind == TrackKind::Video {
            mixer_pad.set_property("alpha", 0.0f64); // hidden until the scene places it
        }
        last.static_pad("src")
            .ok_or_else(|| ComposerError::Pipeline("input chain has no src pad".into()))?
            .link(&mixer_pad)
            .map_err(|e| ComposerError::Pipeline(format!("linking input to mixer: {e:?}")))?;

        self.depays
            .lock()
            .expect("depay map")
            .insert(session, depay.clone());
        link_request_pad(&self.rtpbin, &rtp_src, &format!("recv_rtp_sink_{session}"))?;
        self.watch(track, &chain)?;

        for element in chain.iter().rev() {
            element.sync_state_with_parent()?;
        }
        rtp_src.sync_state_with_parent()?;
        Ok(Input {
            track: track.sid.clone(),
            kind: track.kind,
            session,
            rtp_src,
            rtcp_src: None,
            chain,
            mixer_pad,
            fitting,
        })
    }

    /// Stops and removes an input; the program keeps running.
    pub fn remove(&mut self, input: Input, mixer: &gst::Element) {
        if let Some(src) = input.chain.last().and_then(|e| e.static_pad("src")) {
            let _ = src.unlink(&input.mixer_pad);
        }
        mixer.release_request_pad(&input.mixer_pad);
        self.depays
            .lock()
            .expect("depay map")
            .remove(&input.session);
        let sources = std::iter::once(input.rtp_src.upcast_ref::<gst::Element>())
            .chain(input.rtcp_src.as_ref().map(|src| src.upcast_ref()));
        for element in sources.chain(input.chain.iter()) {
            let _ = element.set_state(gst::State::Null);
            let _ = self.pipeline.remove(element);
        }
        for name in [
            format!("recv_rtp_sink_{}", input.session),
            format!("recv_rtcp_sink_{}", input.session),
        ] {
            if let Some(pad) = self.rtpbin.static_pad(&name) {
                self.rtpbin.release_request_pad(&pad);
            }
        }
    }

    /// Hands an RTCP packet to the input's rtpbin session (for lip-sync),
    /// creating its RTCP source on first use.
    pub fn push_rtcp(&self, input: &mut Input, data: Vec<u8>) -> Result<(), ComposerError> {
        if input.rtcp_src.is_none() {
            let src = appsrc(
                &format!("rtcp-{}", input.track),
                gst::Caps::new_empty_simple("application/x-rtcp"),
            );
            self.pipeline.add(&src)?;
            link_request_pad(
                &self.rtpbin,
                &src,
                &format!("recv_rtcp_sink_{}", input.session),
            )?;
            src.sync_state_with_parent()?;
            input.rtcp_src = Some(src);
        }
        if let Some(src) = &input.rtcp_src {
            let _ = src.push_buffer(gst::Buffer::from_mut_slice(data));
        }
        Ok(())
    }

    /// Probes that report keyframe requests, decoded sizes and the first frame.
    fn watch(&self, track: &TrackInfo, chain: &[gst::Element]) -> Result<(), ComposerError> {
        let depay_sink = chain[0]
            .static_pad("sink")
            .ok_or_else(|| ComposerError::Pipeline("depayloader has no sink pad".into()))?;
        // Until rtpbin links its output for this session (first packet), the
        // chain has no upstream; answer latency queries for it so the mixer
        // stays live instead of waiting on a pad that cannot answer.
        depay_sink.add_probe(gst::PadProbeType::QUERY_UPSTREAM, |pad, info| {
            if pad.peer().is_none()
                && let Some(gst::PadProbeData::Query(query)) = &mut info.data
                && let gst::QueryViewMut::Latency(latency) = query.view_mut()
            {
                latency.set(true, gst::ClockTime::ZERO, gst::ClockTime::NONE);
                return gst::PadProbeReturn::Handled;
            }
            gst::PadProbeReturn::Ok
        });
        let signals = self.signals.clone();
        let sid = track.sid.clone();
        depay_sink.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(event)) = &info.data
                && event
                    .structure()
                    .is_some_and(|s| s.name() == "GstForceKeyUnit")
            {
                let _ = signals.send(InputSignal::KeyframeWanted(sid.clone()));
            }
            gst::PadProbeReturn::Ok
        });
        if track.kind != TrackKind::Video {
            return Ok(());
        }
        // The decoder's output: its caps give the size, its first buffer proves decoding works.
        let decoded = chain
            .iter()
            .find(|e| e.name().starts_with("dec-"))
            .and_then(|e| e.static_pad("src"))
            .ok_or_else(|| ComposerError::Pipeline("decoder has no src pad".into()))?;
        let signals = self.signals.clone();
        let sid = track.sid.clone();
        decoded.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(event)) = &info.data
                && let gst::EventView::Caps(caps) = event.view()
                && let Some(s) = caps.caps().structure(0)
                && let (Ok(width), Ok(height)) = (s.get::<i32>("width"), s.get::<i32>("height"))
            {
                let _ = signals.send(InputSignal::VideoSize {
                    track: sid.clone(),
                    width: width.max(0) as u32,
                    height: height.max(0) as u32,
                });
            }
            gst::PadProbeReturn::Ok
        });
        // A decoder that starts mid-GOP would paint garbage: start on a keyframe.
        let decoder = chain
            .iter()
            .find(|e| e.name().starts_with("dec-"))
            .ok_or_else(|| ComposerError::Pipeline("no decoder".into()))?;
        let decoder_input = super::program::drop_probe_pad(decoder)?;
        decoder_input.add_probe(gst::PadProbeType::BUFFER, |_, info| match &info.data {
            Some(gst::PadProbeData::Buffer(buffer))
                if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) =>
            {
                gst::PadProbeReturn::Drop
            }
            _ => gst::PadProbeReturn::Remove,
        });
        let signals = self.signals.clone();
        let sid = track.sid.clone();
        decoded.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let _ = signals.send(InputSignal::FirstFrame(sid.clone()));
            gst::PadProbeReturn::Remove
        });
        Ok(())
    }
}

fn appsrc(name: &str, caps: gst::Caps) -> gst_app::AppSrc {
    let src = gst_app::AppSrc::builder()
        .name(name)
        .caps(&caps)
        .format(gst::Format::Time)
        .is_live(true)
        .do_timestamp(true)
        .max_bytes(APPSRC_MAX_BYTES)
        .block(false)
        .build();
    src.set_property_from_str("leaky-type", "downstream");
    src
}

fn link_request_pad(
    rtpbin: &gst::Element,
    src: &gst_app::AppSrc,
    pad_name: &str,
) -> Result<(), ComposerError> {
    let sink = rtpbin
        .request_pad_simple(pad_name)
        .ok_or_else(|| ComposerError::Pipeline(format!("rtpbin refused {pad_name}")))?;
    src.static_pad("src")
        .ok_or_else(|| ComposerError::Pipeline("appsrc has no src pad".into()))?
        .link(&sink)
        .map_err(|e| ComposerError::Pipeline(format!("linking {pad_name}: {e:?}")))?;
    Ok(())
}

/// rtpbin names its output pads `recv_rtp_src_<session>_<ssrc>_<pt>`. A new
/// SSRC in a session (a publisher restart, a simulcast switch) replaces the
/// old link.
fn link_session_output(depays: &Mutex<HashMap<u32, gst::Element>>, pad: &gst::Pad) {
    let name = pad.name();
    let Some(session) = name
        .strip_prefix("recv_rtp_src_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|s| s.parse::<u32>().ok())
    else {
        return;
    };
    let Some(depay) = depays.lock().expect("depay map").get(&session).cloned() else {
        return;
    };
    let Some(sink) = depay.static_pad("sink") else {
        return;
    };
    if let Some(old) = sink.peer() {
        let _ = old.unlink(&sink);
    }
    if let Err(error) = pad.link(&sink) {
        tracing::warn!(%name, ?error, "could not link an RTP session to its decoder");
    }
}

/// depay → decoder (→ crop → convert and scale → size) for the track's codec.
fn decode_chain(
    track: &TrackInfo,
    video_format: &gst::Caps,
    pan: Option<f32>,
) -> Result<Vec<gst::Element>, ComposerError> {
    let named = |factory: &str, role: &str| -> Result<gst::Element, ComposerError> {
        let element = make(factory)?;
        element.set_property("name", format!("{role}-{}", track.sid));
        Ok(element)
    };
    let mut chain = Vec::new();
    match track.codec {
        Codec::Opus => {
            chain.push(named("rtpopusdepay", "depay")?);
            let decoder = named("opusdec", "dec")?;
            decoder.set_property("plc", true);
            chain.push(decoder);
            chain.push(named("audioconvert", "convert")?);
            if let Some(pan) = pan {
                let panorama = named("audiopanorama", "pan")?;
                panorama.set_property("panorama", pan);
                chain.push(panorama);
            }
            chain.push(named("audioresample", "resample")?);
            return Ok(chain);
        }
        Codec::Vp8 => {
            chain.push(named("rtpvp8depay", "depay")?);
            chain.push(named("vp8dec", "dec")?);
        }
        Codec::Vp9 => {
            chain.push(named("rtpvp9depay", "depay")?);
            chain.push(named("vp9dec", "dec")?);
        }
        Codec::H264 => {
            chain.push(named("rtph264depay", "depay")?);
            chain.push(named("h264parse", "parse")?);
            let decoder = named("avdec_h264", "dec")?;
            // Frame threading delays output by a frame per thread and upsets
            // timestamps at the start; one thread keeps frames in time.
            decoder.set_property("max-threads", 1i32);
            chain.push(decoder);
        }
        Codec::Av1 => {
            return Err(ComposerError::Pipeline(
                "AV1 decoding needs GStreamer's rtpav1depay, which 1.22 does not ship".into(),
            ));
        }
    }
    if let Some(depay) = chain.first() {
        // On loss: drop the broken frames and ask the publisher for a keyframe.
        for property in ["request-keyframe", "wait-for-keyframe"] {
            if depay.has_property(property) {
                depay.set_property(property, true);
            }
        }
    }
    // Fitting (see the module notes): the last three, in this order.
    chain.push(named("videocrop", "crop")?);
    let scale = named("videoconvertscale", "scale")?;
    // The compositor's own converter defaults (Mitchell-Netravali cubic),
    // so a tile looks as it did when the compositor scaled it.
    scale.set_property_from_str("method", "mitchell");
    // Stretch as the compositor did (cover-fit crops first), no black bars.
    scale.set_property("add-borders", false);
    chain.push(scale);
    let size = named("capsfilter", "size")?;
    size.set_property("caps", video_format.clone());
    chain.push(size);
    Ok(chain)
}

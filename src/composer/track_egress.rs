//! Track egress (LiveKit's `TrackEgress`): one published track of a room
//! recorded to a file as it arrives, without decoding or encoding.
//!
//! ```text
//! appsrc(rtp) → rtpjitterbuffer → depay → [parse] → mux → filesink
//!   VP8:  rtpvp8depay                       → webmmux
//!   VP9:  rtpvp9depay  → vp9parse           → webmmux
//!   AV1:  rtpav1depay  → av1parse           → webmmux   (only where rtpav1depay exists)
//!   H264: rtph264depay → h264parse          → mp4mux (fragmented: 1 s fragments)
//!   Opus: rtpopusdepay → opusparse          → oggmux
//! ```
//!
//! A video file starts on a keyframe: until the first one reaches the muxer
//! everything else is dropped, and the publisher is asked for one every
//! second. Every container survives a killed recorder: the file is written
//! unbuffered, WebM blocks and Ogg pages go out as they are made, and the
//! MP4 is fragmented (a crash loses at most the last second).
//!
//! One task consumes the subscription's events and owns the pipeline; the
//! GStreamer calls that may block (state changes) run on the blocking pool,
//! and whatever ends the task leaves the pipeline in NULL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{ComposerError, JITTER_LATENCY, make};
use crate::livestream::{
    OutputSpec, OutputTarget, RunControl, RunError, RunEvent, RunHandle, RunReport,
};
use crate::sfu::{Codec, ParticipantSid, RoomEvent, RoomHandle, RoomSubscription, TrackInfo};
use crate::sfu::{TrackKind, TrackSid};

/// The container a track is recorded in without transcoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    WebM,
    Ogg,
    Mp4,
}

impl Container {
    /// VP8, VP9 (and AV1 where GStreamer has an AV1 depayloader, which the
    /// 1.22 Debian packages do not) → WebM, Opus → Ogg, H.264 → MP4.
    pub fn for_codec(codec: Codec) -> Option<Container> {
        match codec {
            Codec::Vp8 | Codec::Vp9 => Some(Container::WebM),
            Codec::Opus => Some(Container::Ogg),
            Codec::H264 => Some(Container::Mp4),
            Codec::Av1 => av1_supported().then_some(Container::WebM),
        }
    }

    /// The file name extension (without the dot).
    /// The extension `codec` is recorded with, if it can be (for
    /// [`crate::livestream::AutoEgress`]).
    pub fn extension_for(codec: Codec) -> Option<&'static str> {
        Container::for_codec(codec).map(|c| c.extension())
    }

    pub fn extension(&self) -> &'static str {
        match self {
            Container::WebM => "webm",
            Container::Ogg => "ogg",
            Container::Mp4 => "mp4",
        }
    }
}

/// AV1 over RTP needs `rtpav1depay` (gst-plugins-rs), which GStreamer 1.22
/// itself does not ship.
fn av1_supported() -> bool {
    super::init().is_ok()
        && ["rtpav1depay", "av1parse", "webmmux"]
            .iter()
            .all(|name| gst::ElementFactory::find(name).is_some())
}

/// What any track egress may need; checked when one starts, so a missing
/// plugin fails the request instead of the recording.
const REQUIRED_ELEMENTS: &[&str] = &[
    "appsrc",
    "rtpjitterbuffer",
    "rtpvp8depay",
    "rtpvp9depay",
    "vp9parse",
    "rtph264depay",
    "h264parse",
    "rtpopusdepay",
    "opusparse",
    "webmmux",
    "oggmux",
    "mp4mux",
    "filesink",
];

const NO_LAYOUT: &str =
    "a track egress records one track as it is; it has no layout or other outputs";

/// How long a stop waits for the file to be finalized.
const FINALIZE_TIMEOUT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(250);
/// Ticks between two `OutputBytes` reports (about a second).
const BYTES_REPORT_EVERY: u32 = 4;
/// Until the first keyframe is recorded, a keyframe is asked for this often.
const KEYFRAME_RETRY: Duration = Duration::from_secs(1);
/// Keyframe requests from the depayloader (after loss) are passed on at most this often.
const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(500);
/// MP4 fragment length: the most a crash can lose.
const MP4_FRAGMENT_MS: u32 = 1000;
/// Bytes the appsrc may hold before it drops the oldest.
const APPSRC_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Run events unread at once; they are few (live, bytes once a second, the end).
const RUN_EVENTS: usize = 64;

/// Records `track` of the subscribed room into `output` (its target is
/// `OutputTarget::Mp4 { path }`, whose path is used for every container:
/// name it with [`Container::extension`]) until stopped or the room closes.
///
/// Call inside a tokio runtime: the recorder runs as a task of it.
pub fn start(
    subscription: RoomSubscription,
    track: TrackSid,
    output: OutputSpec,
) -> Result<RunHandle, ComposerError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        ComposerError::Pipeline("a track egress must be started inside a tokio runtime".into())
    })?;
    super::init()?;
    if let Some(missing) = REQUIRED_ELEMENTS
        .iter()
        .find(|name| gst::ElementFactory::find(name).is_none())
    {
        return Err(ComposerError::MissingElement(missing.to_string()));
    }
    let path = match &output.target {
        OutputTarget::Mp4 { path } => path.clone(),
        _ => {
            return Err(ComposerError::Output {
                name: output.name.clone(),
                message: "a track egress writes a file: its target must be a file path".into(),
            });
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ComposerError::Output {
            name: output.name.clone(),
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
    }
    let (events, events_rx) = mpsc::channel(RUN_EVENTS);
    let (commands, command_rx) = mpsc::channel(4);
    let (signals, signal_rx) = mpsc::unbounded_channel();
    let recorder = Recorder {
        track,
        output: output.id,
        path,
        handle: subscription.handle,
        events,
        signals,
        recording: None,
        bytes: Arc::new(AtomicU64::new(0)),
        live: false,
        room_closed: false,
        ticks: 0,
        last_keyframe_request: None,
    };
    runtime.spawn(recorder.run(subscription.events, command_rx, signal_rx));
    Ok(RunHandle {
        control: Arc::new(TrackEgressControl { commands }),
        events: events_rx,
    })
}

enum Command {
    Stop(oneshot::Sender<RunReport>),
}

struct TrackEgressControl {
    commands: mpsc::Sender<Command>,
}

#[async_trait]
impl RunControl for TrackEgressControl {
    async fn set_layout(&self, _layout: &str) -> Result<(), RunError> {
        Err(RunError(NO_LAYOUT.into()))
    }

    async fn add_output(&self, _output: OutputSpec) -> Result<(), RunError> {
        Err(RunError(NO_LAYOUT.into()))
    }

    async fn remove_output(&self, _output: Uuid) -> Result<(), RunError> {
        Err(RunError(NO_LAYOUT.into()))
    }

    async fn stop(&self) -> Result<RunReport, RunError> {
        let stopped = || RunError(ComposerError::Stopped.to_string());
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Stop(reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }
}

/// What the pipeline's threads tell the recorder's task.
enum Signal {
    /// The depayloader lost data and wants a keyframe.
    KeyframeWanted,
    /// A bus message: an error, a warning or the end of stream.
    Bus(gst::Message),
}

/// The pipeline of a track being recorded.
struct Recording {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    payload_type: u8,
    participant: ParticipantSid,
    kind: TrackKind,
    /// The first keyframe reached the muxer (always true for audio).
    keyframe_recorded: Arc<AtomicBool>,
}

impl Drop for Recording {
    /// A pipeline freed while playing leaves its streaming threads running
    /// on freed elements: however the recorder ends, the pipeline goes to
    /// NULL first (normally it already is, and this returns at once).
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

struct Recorder {
    track: TrackSid,
    output: Uuid,
    path: PathBuf,
    handle: Arc<dyn RoomHandle>,
    events: mpsc::Sender<RunEvent>,
    signals: mpsc::UnboundedSender<Signal>,
    recording: Option<Recording>,
    /// Bytes handed to the file.
    bytes: Arc<AtomicU64>,
    live: bool,
    room_closed: bool,
    ticks: u32,
    last_keyframe_request: Option<Instant>,
}

/// How the recording loop ended.
enum Outcome {
    Stop(oneshot::Sender<RunReport>),
    /// Every handle is gone: nobody can stop the recorder any more.
    Abandoned,
    Failed(String),
}

impl Recorder {
    async fn run(
        mut self,
        mut room: mpsc::Receiver<RoomEvent>,
        mut commands: mpsc::Receiver<Command>,
        mut signals: mpsc::UnboundedReceiver<Signal>,
    ) {
        let outcome = self.record(&mut room, &mut commands, &mut signals).await;
        // Nothing more is read from the room: the SFU drops what a closed
        // subscription would have received.
        drop(room);
        match outcome {
            Outcome::Stop(reply) => {
                let report = self.finish(&mut signals).await;
                let _ = reply.send(report);
            }
            Outcome::Abandoned => self.shut_down().await,
            Outcome::Failed(error) => {
                tracing::warn!(track = %self.track, %error, "track egress failed");
                self.shut_down().await;
                let _ = self
                    .events
                    .send(RunEvent::Ended { error: Some(error) })
                    .await;
                // A stop still gets what was written.
                while let Some(Command::Stop(reply)) = commands.recv().await {
                    let _ = reply.send(self.report());
                }
            }
        }
    }

    async fn record(
        &mut self,
        room: &mut mpsc::Receiver<RoomEvent>,
        commands: &mut mpsc::Receiver<Command>,
        signals: &mut mpsc::UnboundedReceiver<Signal>,
    ) -> Outcome {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut room_open = true;
        loop {
            tokio::select! {
                event = room.recv(), if room_open => match event {
                    Some(event) => {
                        if let Err(error) = self.on_room_event(event).await {
                            // The pipeline's own error says more, when it posted one.
                            return Outcome::Failed(posted_error(signals).unwrap_or(error));
                        }
                    }
                    None => {
                        room_open = false;
                        self.close_room("the room subscription ended").await;
                    }
                },
                command = commands.recv() => match command {
                    Some(Command::Stop(reply)) => return Outcome::Stop(reply),
                    None => return Outcome::Abandoned,
                },
                Some(signal) = signals.recv() => match signal {
                    Signal::KeyframeWanted => self.request_keyframe(KEYFRAME_MIN_INTERVAL),
                    Signal::Bus(message) => {
                        if let Some(error) = self.on_bus(&message) {
                            return Outcome::Failed(error);
                        }
                    }
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }
    }

    async fn on_room_event(&mut self, event: RoomEvent) -> Result<(), String> {
        match event {
            RoomEvent::Rtp { track, packet } if track == self.track => {
                if let Some(recording) = &self.recording
                    && packet.payload_type == recording.payload_type
                {
                    // Errors mean the pipeline is shutting down; the packet is dropped.
                    let buffer = gst::Buffer::from_mut_slice(packet.to_bytes());
                    let _ = recording.src.push_buffer(buffer);
                }
            }
            RoomEvent::TrackPublished(info)
                if info.sid == self.track && self.recording.is_none() && !self.room_closed =>
            {
                self.begin(&info).await?;
            }
            RoomEvent::TrackUnpublished { track } if track == self.track => {
                self.close_room("the track was unpublished").await;
            }
            RoomEvent::ParticipantLeft { participant }
                if self
                    .recording
                    .as_ref()
                    .is_some_and(|r| r.participant == participant) =>
            {
                self.close_room("its participant left").await;
            }
            RoomEvent::RoomClosed => self.close_room("the room closed").await,
            _ => {}
        }
        Ok(())
    }

    /// Reports once that there is nothing more to record; the service stops the run.
    async fn close_room(&mut self, why: &str) {
        if self.room_closed {
            return;
        }
        self.room_closed = true;
        tracing::info!(track = %self.track, "track egress has nothing more to record: {why}");
        let _ = self.events.send(RunEvent::RoomClosed).await;
    }

    /// Builds the pipeline for the published track and starts it.
    async fn begin(&mut self, info: &TrackInfo) -> Result<(), String> {
        let recording = build(
            info,
            &self.path,
            self.bytes.clone(),
            self.signals.clone(),
            &self.track,
        )
        .map_err(|e| e.to_string())?;
        let started = {
            let pipeline = recording.pipeline.clone();
            tokio::task::spawn_blocking(move || pipeline.set_state(gst::State::Playing)).await
        };
        let kind = info.kind;
        self.recording = Some(recording);
        if !matches!(started, Ok(Ok(_))) {
            return Err("the track egress pipeline refused to play".into());
        }
        tracing::info!(track = %self.track, codec = ?info.codec, path = %self.path.display(), "track egress recording");
        if kind == TrackKind::Video {
            self.request_keyframe(Duration::ZERO);
        }
        Ok(())
    }

    /// Returns the error that ends the recording, if `message` is one.
    fn on_bus(&mut self, message: &gst::Message) -> Option<String> {
        match message.view() {
            gst::MessageView::Error(error) => {
                let source = message
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                Some(format!("{} (in {source})", error.error()))
            }
            gst::MessageView::Warning(warning) => {
                tracing::debug!(track = %self.track, warning = %warning.error(), "track egress warning");
                None
            }
            _ => None,
        }
    }

    async fn on_tick(&mut self) {
        self.ticks = self.ticks.wrapping_add(1);
        let bytes = self.bytes.load(Ordering::Relaxed);
        if !self.live && bytes > 0 {
            self.live = true;
            let _ = self
                .events
                .send(RunEvent::OutputLive {
                    output: self.output,
                })
                .await;
        }
        if self.live && self.ticks.is_multiple_of(BYTES_REPORT_EVERY) {
            let _ = self.events.try_send(RunEvent::OutputBytes {
                output: self.output,
                bytes,
            });
        }
        let waiting_for_keyframe = self
            .recording
            .as_ref()
            .is_some_and(|r| !r.keyframe_recorded.load(Ordering::Relaxed));
        if waiting_for_keyframe && !self.room_closed {
            self.request_keyframe(KEYFRAME_RETRY);
        }
    }

    /// Asks the publisher for a keyframe unless one was asked for within `interval`.
    fn request_keyframe(&mut self, interval: Duration) {
        if self
            .recording
            .as_ref()
            .is_none_or(|r| r.kind != TrackKind::Video)
        {
            return;
        }
        if self
            .last_keyframe_request
            .is_some_and(|at| at.elapsed() < interval)
        {
            return;
        }
        self.last_keyframe_request = Some(Instant::now());
        self.handle.request_keyframe(&self.track);
    }

    /// Stop: end the stream, wait (bounded) for the muxer to finalize the
    /// file, then stop the pipeline.
    async fn finish(&mut self, signals: &mut mpsc::UnboundedReceiver<Signal>) -> RunReport {
        if let Some(recording) = &self.recording {
            let _ = recording.src.end_of_stream();
            let deadline = tokio::time::Instant::now() + FINALIZE_TIMEOUT;
            loop {
                match tokio::time::timeout_at(deadline, signals.recv()).await {
                    Ok(Some(Signal::Bus(message))) => match message.view() {
                        gst::MessageView::Eos(_) => break,
                        gst::MessageView::Error(error) => {
                            tracing::warn!(track = %self.track, error = %error.error(), "track egress failed while finishing");
                            break;
                        }
                        _ => {}
                    },
                    Ok(Some(Signal::KeyframeWanted)) => {}
                    Ok(None) | Err(_) => {
                        tracing::warn!(track = %self.track, "the recording was not finalized within {FINALIZE_TIMEOUT:?}; stopping anyway");
                        break;
                    }
                }
            }
        }
        self.shut_down().await;
        tracing::info!(track = %self.track, bytes = self.bytes.load(Ordering::Relaxed), "track egress stopped");
        self.report()
    }

    /// Sets the pipeline to NULL off the async threads and drops it.
    async fn shut_down(&mut self) {
        if let Some(recording) = self.recording.take() {
            let pipeline = recording.pipeline.clone();
            let _ = tokio::task::spawn_blocking(move || pipeline.set_state(gst::State::Null)).await;
            // Already NULL: the drop does not block.
            drop(recording);
        }
    }

    fn report(&self) -> RunReport {
        RunReport {
            output_bytes: vec![(self.output, self.bytes.load(Ordering::Relaxed))],
            ..RunReport::default()
        }
    }
}

/// The first error the pipeline has posted so far, if any.
fn posted_error(signals: &mut mpsc::UnboundedReceiver<Signal>) -> Option<String> {
    while let Ok(signal) = signals.try_recv() {
        if let Signal::Bus(message) = signal
            && let gst::MessageView::Error(error) = message.view()
        {
            return Some(error.error().to_string());
        }
    }
    None
}

/// Builds (without starting) the pipeline recording `info` into `path`.
fn build(
    info: &TrackInfo,
    path: &Path,
    bytes: Arc<AtomicU64>,
    signals: mpsc::UnboundedSender<Signal>,
    sid: &TrackSid,
) -> Result<Recording, ComposerError> {
    let container = Container::for_codec(info.codec).ok_or_else(|| {
        ComposerError::Pipeline(format!(
            "{} tracks cannot be recorded on this node (GStreamer has no depayloader for them)",
            info.codec.encoding_name()
        ))
    })?;
    let pipeline = gst::Pipeline::with_name(&format!("track-egress-{sid}"));

    let rtp_caps = gst::Caps::builder("application/x-rtp")
        .field("media", info.kind.name())
        .field("encoding-name", info.codec.encoding_name())
        .field("clock-rate", info.clock_rate as i32)
        .field("payload", i32::from(info.payload_type))
        .build();
    let src = gst_app::AppSrc::builder()
        .caps(&rtp_caps)
        .format(gst::Format::Time)
        .is_live(true)
        .do_timestamp(true)
        .max_bytes(APPSRC_MAX_BYTES)
        .block(false)
        .build();
    src.set_property_from_str("leaky-type", "downstream");

    let jitter = make("rtpjitterbuffer")?;
    jitter.set_property("latency", JITTER_LATENCY.as_millis() as u32);
    jitter.set_property("do-lost", true);
    jitter.set_property("drop-on-latency", true);

    let (depay, parser) = match info.codec {
        Codec::Vp8 => ("rtpvp8depay", None),
        Codec::Vp9 => ("rtpvp9depay", Some("vp9parse")),
        Codec::Av1 => ("rtpav1depay", Some("av1parse")),
        Codec::H264 => ("rtph264depay", Some("h264parse")),
        Codec::Opus => ("rtpopusdepay", Some("opusparse")),
    };
    let depay = make(depay)?;
    // On loss: drop the broken frames and ask the publisher for a keyframe.
    for property in ["request-keyframe", "wait-for-keyframe"] {
        if depay.has_property(property) {
            depay.set_property(property, true);
        }
    }
    let mux = match container {
        Container::WebM => {
            let mux = make("webmmux")?;
            // The file starts at 0, not at the pipeline's running time when
            // the first keyframe came.
            mux.set_property("offset-to-zero", true);
            mux
        }
        Container::Ogg => make("oggmux")?,
        Container::Mp4 => {
            let mux = make("mp4mux")?;
            mux.set_property("fragment-duration", MP4_FRAGMENT_MS);
            mux
        }
    };
    let sink = make("filesink")?;
    sink.set_property("location", path.to_string_lossy().as_ref());
    sink.set_property("async", false);
    // Unbuffered: what the muxer wrote is in the file at once, so a killed
    // recorder leaves everything up to the last cluster, page or fragment
    // (a 64 kB write buffer would hold seconds of a low-bitrate track).
    sink.set_property_from_str("buffer-mode", "unbuffered");

    let mut chain: Vec<gst::Element> = vec![src.clone().upcast(), jitter, depay.clone()];
    if let Some(parser) = parser {
        chain.push(make(parser)?);
    }
    if info.codec == Codec::H264 {
        // Senders change resolution as they adapt (new SPS/PPS). mp4mux
        // would add a sample description for the new caps and, rewriting
        // its grown header at the end, overwrite the first fragment. As
        // avc3 the parameter sets travel with every keyframe, so the new
        // caps are kept from the muxer (see `keep_first_caps`).
        let parser = chain[chain.len() - 1].clone();
        parser.set_property("config-interval", -1i32);
        let caps = make("capsfilter")?;
        caps.set_property(
            "caps",
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "avc3")
                .field("alignment", "au")
                .build(),
        );
        keep_first_caps(&caps)?;
        chain.push(caps);
    }
    let last = chain[chain.len() - 1].clone();
    chain.extend([mux.clone(), sink.clone()]);
    pipeline.add_many(&chain)?;
    // The muxers' pads are request pads, which link_many finds by caps.
    gst::Element::link_many(&chain)?;

    forward_bus(&pipeline, signals.clone());
    // The depayloader asks upstream for a keyframe after loss.
    if let Some(pad) = depay.static_pad("sink") {
        pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, probe| {
            if let Some(gst::PadProbeData::Event(event)) = &probe.data
                && event
                    .structure()
                    .is_some_and(|s| s.name() == "GstForceKeyUnit")
            {
                let _ = signals.send(Signal::KeyframeWanted);
            }
            gst::PadProbeReturn::Ok
        });
    }
    let keyframe_recorded = Arc::new(AtomicBool::new(info.kind != TrackKind::Video));
    if info.kind == TrackKind::Video {
        start_on_keyframe(&last, keyframe_recorded.clone())?;
    }
    count_bytes(&sink, bytes)?;
    Ok(Recording {
        pipeline,
        src,
        payload_type: info.payload_type,
        participant: info.participant.clone(),
        kind: info.kind,
        keyframe_recorded,
    })
}

/// Drops what `element` sends to the muxer until the first keyframe, so the
/// file starts with a picture that decodes on its own.
fn start_on_keyframe(
    element: &gst::Element,
    recorded: Arc<AtomicBool>,
) -> Result<(), ComposerError> {
    let pad = element
        .static_pad("src")
        .ok_or_else(|| ComposerError::Pipeline(format!("{} has no src pad", element.name())))?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, probe| {
        match &probe.data {
            Some(gst::PadProbeData::Buffer(buffer))
                if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) =>
            {
                gst::PadProbeReturn::Drop
            }
            _ => {
                recorded.store(true, Ordering::Relaxed);
                gst::PadProbeReturn::Remove
            }
        }
    });
    Ok(())
}

/// Lets only the first caps `element` sends on through: the stream's later
/// changes are in-band (H.264 as avc3).
fn keep_first_caps(element: &gst::Element) -> Result<(), ComposerError> {
    let pad = element
        .static_pad("src")
        .ok_or_else(|| ComposerError::Pipeline(format!("{} has no src pad", element.name())))?;
    let sent = AtomicBool::new(false);
    pad.add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, probe| match &probe.data {
            Some(gst::PadProbeData::Event(event)) if event.type_() == gst::EventType::Caps => {
                if sent.swap(true, Ordering::Relaxed) {
                    tracing::debug!(?event, "in-band caps change kept from the muxer");
                    return gst::PadProbeReturn::Drop;
                }
                gst::PadProbeReturn::Ok
            }
            _ => gst::PadProbeReturn::Ok,
        },
    );
    Ok(())
}

/// Counts the bytes the muxer hands to the file.
fn count_bytes(sink: &gst::Element, bytes: Arc<AtomicU64>) -> Result<(), ComposerError> {
    let pad = sink
        .static_pad("sink")
        .ok_or_else(|| ComposerError::Pipeline("filesink has no sink pad".into()))?;
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, probe| {
            let size = match &probe.data {
                Some(gst::PadProbeData::Buffer(buffer)) => buffer.size(),
                Some(gst::PadProbeData::BufferList(list)) => list.calculate_size(),
                _ => 0,
            };
            bytes.fetch_add(size as u64, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        },
    );
    Ok(())
}

/// Sends errors, warnings and the end of stream to the recorder's task, from
/// whichever thread posts them.
fn forward_bus(pipeline: &gst::Pipeline, to: mpsc::UnboundedSender<Signal>) {
    let Some(bus) = pipeline.bus() else {
        return;
    };
    bus.set_sync_handler(move |_, message| {
        use gst::MessageView;
        if matches!(
            message.view(),
            MessageView::Error(_) | MessageView::Warning(_) | MessageView::Eos(_)
        ) {
            let _ = to.send(Signal::Bus(message.clone()));
        }
        gst::BusSyncReply::Drop
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_follow_the_codec() {
        assert_eq!(Container::for_codec(Codec::Vp8), Some(Container::WebM));
        assert_eq!(Container::for_codec(Codec::Vp9), Some(Container::WebM));
        assert_eq!(Container::for_codec(Codec::Opus), Some(Container::Ogg));
        assert_eq!(Container::for_codec(Codec::H264), Some(Container::Mp4));
        let extensions: Vec<_> = [Container::WebM, Container::Ogg, Container::Mp4]
            .iter()
            .map(Container::extension)
            .collect();
        assert_eq!(extensions, ["webm", "ogg", "mp4"]);
    }
}

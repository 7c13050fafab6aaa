//! The composer's loop: one task owns the pipeline and applies room events,
//! control commands and pipeline signals in order, so no state is shared
//! between threads except through messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::inputs::{Input, InputSignal, Inputs};
use super::overlay::Overlay;
use super::program::{self, Program, ProgramSettings};
use super::room::RoomState;
use super::{ComposerError, rtcp, scene};
use crate::layout::{self, Content, LayoutName, LayoutTemplates, Scene, SpeakerSelector};
use crate::livestream::{AudioMixing, OutputSpec, RunEvent, RunReport};
use crate::metrics;
use crate::outputs::{self, OutputBin, OutputTarget};
use crate::sfu::{RoomEvent, RoomHandle, TrackKind, TrackSid, TrackSource};

/// Until its first frame decodes, a new video input asks for a keyframe this often.
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);
/// How long a stop waits for files to be finalized.
const FINALIZE_TIMEOUT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(250);
const BYTES_REPORT_EVERY: u32 = 8; // ticks
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(8);

/// A room subscription as the composer consumes it.
pub struct RoomFeed {
    pub events: mpsc::Receiver<RoomEvent>,
    pub handle: Arc<dyn RoomHandle>,
}

/// Numbers about a running program, readable from any thread.
#[derive(Debug, Default)]
pub struct ComposerStats {
    /// Frames handed to the video encoder.
    pub program_frames: AtomicU64,
    /// Participants currently in the room.
    pub participants: AtomicU64,
}

enum Command {
    SetLayout(String, oneshot::Sender<Result<(), ComposerError>>),
    AddOutput(OutputSpec, oneshot::Sender<Result<(), ComposerError>>),
    RemoveOutput(Uuid, oneshot::Sender<Result<(), ComposerError>>),
    Stop(oneshot::Sender<RunReport>),
}

/// A running composition. Dropping it without `stop` tears the pipeline down
/// without finalizing files.
pub struct Composer {
    commands: mpsc::Sender<Command>,
    stats: Arc<ComposerStats>,
    preview: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
    live_preview: Arc<super::live_preview::LivePreview>,
}

impl Composer {
    /// Builds the program pipeline with its first outputs and starts playing.
    /// Room events arrive on `room.events`; `events` receives output health and the end.
    pub fn start(
        settings: ProgramSettings,
        layouts: Arc<LayoutTemplates>,
        outputs: Vec<OutputSpec>,
        room: RoomFeed,
        events: mpsc::Sender<RunEvent>,
    ) -> Result<Composer, ComposerError> {
        super::init()?;
        layouts
            .check_name(&settings.layout)
            .map_err(|e| ComposerError::Layout(e.to_string()))?;
        let program = program::build(&settings)?;
        let (signal_tx, signal_rx) = mpsc::unbounded_channel();
        let (bus_tx, bus_rx) = mpsc::unbounded_channel();
        let inputs = Inputs::new(&program.pipeline, program.video_format.clone(), signal_tx)?;
        let stats = Arc::new(ComposerStats::default());
        count_frames(&program.encoder_sink, stats.clone());
        forward_bus(&program.pipeline, bus_tx);
        let overlay = Overlay::default();
        overlay.attach(&program.overlay);
        let preview = program.preview.clone();
        let live_preview = program.live_preview.clone();

        let mut actor = Actor {
            layout: settings.layout.clone(),
            settings,
            layouts,
            layout_error: None,
            program,
            inputs,
            tracks: HashMap::new(),
            room: RoomState::default(),
            speaker: SpeakerSelector::new(),
            scene: None,
            overlay,
            outputs: HashMap::new(),
            retrying: HashMap::new(),
            handle: room.handle,
            events,
            stats: stats.clone(),
            ticks: 0,
            audio_inputs_added: 0,
            first_frame: None,
            frames_missing: 0,
        };
        for spec in outputs {
            actor.attach_output(spec, false)?;
        }
        actor.recompose();
        actor
            .program
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| {
                ComposerError::Pipeline(
                    actor
                        .first_error()
                        .unwrap_or_else(|| "the program pipeline refused to play".into()),
                )
            })?;
        let (commands, command_rx) = mpsc::channel(16);
        tokio::spawn(actor.run(room.events, command_rx, signal_rx, bus_rx));
        Ok(Composer {
            commands,
            stats,
            preview,
            live_preview,
        })
    }

    /// The latest program frame as a JPEG (640 px wide, refreshed twice a
    /// second); None before the first frame and for audio-only programs.
    pub fn preview(&self) -> Option<Vec<u8>> {
        self.preview.lock().expect("preview lock").clone()
    }

    /// A new viewer of the encoded program as fragmented MP4; None before
    /// the first fragment is ready and once the program has ended.
    pub fn live_preview(&self) -> Option<crate::livestream::PreviewFeed> {
        self.live_preview.subscribe()
    }

    pub fn stats(&self) -> &Arc<ComposerStats> {
        &self.stats
    }

    pub async fn set_layout(&self, layout: &str) -> Result<(), ComposerError> {
        self.ask(|reply| Command::SetLayout(layout.to_string(), reply))
            .await?
    }

    pub async fn add_output(&self, output: OutputSpec) -> Result<(), ComposerError> {
        self.ask(|reply| Command::AddOutput(output, reply)).await?
    }

    pub async fn remove_output(&self, output: Uuid) -> Result<(), ComposerError> {
        self.ask(|reply| Command::RemoveOutput(output, reply))
            .await?
    }

    /// Ends the program: drains the encoders, finalizes files, stops the pipeline.
    pub async fn stop(&self) -> Result<RunReport, ComposerError> {
        self.ask(Command::Stop).await
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ComposerError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| ComposerError::Stopped)?;
        answer.await.map_err(|_| ComposerError::Stopped)
    }
}

struct AttachedOutput {
    spec: OutputSpec,
    bin: OutputBin,
    /// The encoder tees' pads feeding this output (video first when present).
    tee_pads: Vec<(gst::Element, gst::Pad)>,
    live: bool,
    /// Set while this is a retry that has not delivered yet: since when the
    /// destination has been failing, and the delay before the next retry.
    failing: Option<(Instant, Duration)>,
    /// Bytes already added to the output-bytes metric.
    reported_bytes: u64,
}

/// A destination torn down after an error, to be attached again at `due`.
struct Retry {
    spec: OutputSpec,
    due: Instant,
    failing_since: Instant,
    delay: Duration,
}

struct Actor {
    settings: ProgramSettings,
    layouts: Arc<LayoutTemplates>,
    /// The layout's name as given (a template, maybe with a theme suffix).
    layout: String,
    /// The last layout error, so a broken template is reported once, not per event.
    layout_error: Option<String>,
    program: Program,
    inputs: Inputs,
    tracks: HashMap<TrackSid, TrackInput>,
    room: RoomState,
    speaker: SpeakerSelector,
    scene: Option<Scene>,
    overlay: Overlay,
    outputs: HashMap<Uuid, AttachedOutput>,
    /// Destinations waiting to be attached again.
    retrying: HashMap<Uuid, Retry>,
    handle: Arc<dyn RoomHandle>,
    events: mpsc::Sender<RunEvent>,
    stats: Arc<ComposerStats>,
    ticks: u32,
    /// Audio inputs added so far (alternate mixing puts them left, right, …).
    audio_inputs_added: u32,
    /// When the first program frame was counted, and how many were then.
    first_frame: Option<(Instant, u64)>,
    /// Program frames missing so far (counted as dropped).
    frames_missing: u64,
}

/// An input chain plus what the loop tracks about it.
struct TrackInput {
    input: Input,
    last_ssrc: Option<u32>,
    cname: String,
    last_keyframe_request: Option<Instant>,
}

impl Actor {
    async fn run(
        mut self,
        mut room: mpsc::Receiver<RoomEvent>,
        mut commands: mpsc::Receiver<Command>,
        mut signals: mpsc::UnboundedReceiver<InputSignal>,
        mut bus: mpsc::UnboundedReceiver<gst::Message>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        let mut room_open = true;
        loop {
            tokio::select! {
                event = room.recv(), if room_open => match event {
                    Some(event) => self.on_room_event(event).await,
                    None => room_open = false,
                },
                command = commands.recv() => match command {
                    Some(Command::Stop(reply)) => {
                        let report = self.finish(&mut bus).await;
                        let _ = reply.send(report);
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        // Every handle is gone: nobody can stop us cleanly any more.
                        let _ = self.program.pipeline.set_state(gst::State::Null);
                        return;
                    }
                },
                Some(signal) = signals.recv() => self.on_signal(signal),
                Some(message) = bus.recv() => {
                    if let Some(fatal) = self.on_bus(&message) {
                        tracing::error!(error = %fatal, "program pipeline failed");
                        let _ = self.program.pipeline.set_state(gst::State::Null);
                        let _ = self.events.send(RunEvent::Ended { error: Some(fatal) }).await;
                        return;
                    }
                }
                _ = tick.tick() => self.on_tick().await,
            }
        }
    }

    async fn on_room_event(&mut self, event: RoomEvent) {
        match event {
            RoomEvent::Rtp { track, packet } => {
                if let Some(input) = self.tracks.get_mut(&track) {
                    input.last_ssrc = Some(packet.ssrc);
                    input.input.push_rtp(packet.to_bytes());
                }
                return; // the hot path: no recompose
            }
            RoomEvent::SenderReport {
                track,
                ntp,
                rtp_time,
            } => {
                if let Some(input) = self.tracks.get_mut(&track)
                    && let Some(ssrc) = input.last_ssrc
                {
                    let report = rtcp::sender_report(ssrc, ntp, rtp_time, &input.cname);
                    if let Err(error) = self.inputs.push_rtcp(&mut input.input, report) {
                        tracing::warn!(%track, %error, "sender report dropped");
                    }
                }
                return;
            }
            RoomEvent::ParticipantJoined(info) => self.room.join(info),
            RoomEvent::ParticipantUpdated(info) => self.room.update(info),
            RoomEvent::ParticipantLeft { participant } => {
                for track in self.room.leave(&participant) {
                    self.remove_input(&track);
                }
            }
            RoomEvent::TrackPublished(track) => {
                let identity = self
                    .room
                    .identity_of(&track.participant)
                    .unwrap_or_default();
                if !self
                    .settings
                    .selection
                    .admits(identity, track.sid.as_str(), track.source)
                {
                    return; // not on this program (a participant or track egress)
                }
                self.room.publish(track.clone());
                self.add_input(&track);
            }
            RoomEvent::TrackUnpublished { track } => {
                self.room.tracks.remove(&track);
                self.remove_input(&track);
            }
            RoomEvent::TrackMuted { track, muted } => {
                if let Some(state) = self.room.tracks.get_mut(&track) {
                    state.muted = muted;
                }
                if let Some(input) = self.tracks.get(&track)
                    && input.input.kind == TrackKind::Audio
                {
                    input.input.mixer_pad.set_property("mute", muted);
                }
            }
            RoomEvent::ActiveSpeakers(speakers) => self.room.active_speakers = speakers,
            RoomEvent::RoomClosed => {
                let _ = self.events.send(RunEvent::RoomClosed).await;
            }
        }
        self.stats
            .participants
            .store(self.room.participant_count() as u64, Ordering::Relaxed);
        self.recompose();
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::SetLayout(name, reply) => {
                let result = self
                    .layouts
                    .check_name(&name)
                    .map_err(|e| ComposerError::Layout(e.to_string()))
                    .map(|()| {
                        tracing::info!(layout = %name, "layout switched");
                        self.layout = name;
                        self.recompose();
                    });
                let _ = reply.send(result);
            }
            Command::AddOutput(spec, reply) => {
                let _ = reply.send(self.attach_output(spec, true));
            }
            Command::RemoveOutput(id, reply) => {
                let result = match self.outputs.remove(&id) {
                    Some(output) => {
                        self.detach_output(output);
                        Ok(())
                    }
                    None if self.retrying.remove(&id).is_some() => Ok(()),
                    None => Err(ComposerError::Output {
                        name: id.to_string(),
                        message: "no such output".into(),
                    }),
                };
                let _ = reply.send(result);
            }
            Command::Stop(_) => unreachable!("handled by the loop"),
        }
    }

    fn on_signal(&mut self, signal: InputSignal) {
        match signal {
            InputSignal::KeyframeWanted(track) => self.request_keyframe(&track),
            InputSignal::VideoSize {
                track,
                width,
                height,
            } => {
                if let Some(state) = self.room.tracks.get_mut(&track) {
                    state.size = Some((width, height));
                }
                self.recompose();
                // The crop (and a contained input's size) follow the decoded
                // size even when the scene stays the same.
                if let Some(scene) = self.scene.take() {
                    self.place(&track, &scene);
                    self.scene = Some(scene);
                }
            }
            InputSignal::FirstFrame(track) => {
                if let Some(state) = self.room.tracks.get_mut(&track) {
                    state.first_frame = Some(Instant::now());
                }
                tracing::debug!(%track, "first frame decoded");
            }
        }
    }

    /// Returns an error message when the failure takes the whole program down.
    fn on_bus(&mut self, message: &gst::Message) -> Option<String> {
        use gst::MessageView;
        match message.view() {
            MessageView::Latency(_) => {
                let _ = self.program.pipeline.recalculate_latency();
                None
            }
            MessageView::Error(error) => {
                let text = error.error().to_string();
                let source = message
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                if let Some(id) = self.output_of(message) {
                    if let Some(output) = self.outputs.remove(&id) {
                        self.output_failed(output, &text);
                    }
                    return None;
                }
                if message
                    .src()
                    .is_some_and(|src| is_output_element(&src.name()))
                {
                    // Its streaming thread was still pushing while it was torn
                    // down (the bin may already be gone: no parent to find).
                    tracing::debug!(error = %text, %source, "error from a detached output; ignored");
                    return None;
                }
                if let Some(track) = self.track_of(message) {
                    tracing::warn!(%track, error = %text, %source, "input failed; dropping it from the program");
                    self.remove_input(&track);
                    self.recompose();
                    return None;
                }
                Some(format!("{text} (in {source})"))
            }
            MessageView::Warning(warning) => {
                tracing::debug!(warning = %warning.error(), "pipeline warning");
                None
            }
            MessageView::Element(element) => {
                if let (Some(structure), Some(id)) = (element.structure(), self.output_of(message))
                    && let Some(output) = self.outputs.get_mut(&id)
                {
                    output.bin.on_element_message(structure);
                }
                None
            }
            _ => None,
        }
    }

    async fn on_tick(&mut self) {
        self.ticks = self.ticks.wrapping_add(1);
        let mut live = Vec::new();
        for (id, output) in &mut self.outputs {
            if !output.live && output.bin.is_flowing() {
                output.live = true;
                output.failing = None;
                live.push(*id);
                metrics::output_status(target_kind(&output.spec.target), "live");
            }
        }
        self.count_dropped_frames();
        self.retry_due_outputs();
        for output in live {
            let _ = self.events.send(RunEvent::OutputLive { output }).await;
        }
        if self.ticks.is_multiple_of(BYTES_REPORT_EVERY) {
            for (id, output) in &mut self.outputs {
                let bytes = output.bin.bytes();
                metrics::output_bytes(
                    target_kind(&output.spec.target),
                    bytes.saturating_sub(output.reported_bytes),
                );
                output.reported_bytes = bytes;
                let _ = self
                    .events
                    .try_send(RunEvent::OutputBytes { output: *id, bytes });
                let items = output.bin.items.load(Ordering::Relaxed);
                if items > 0 {
                    let _ = self
                        .events
                        .try_send(RunEvent::OutputItems { output: *id, items });
                }
            }
        }
        let waiting: Vec<TrackSid> = self
            .tracks
            .iter()
            .filter(|(sid, t)| {
                t.input.kind == TrackKind::Video
                    && self
                        .room
                        .tracks
                        .get(*sid)
                        .is_some_and(|s| s.first_frame.is_none())
            })
            .map(|(sid, _)| sid.clone())
            .collect();
        for track in waiting {
            self.request_keyframe(&track);
        }
        // A track whose first frame was decoded a moment ago replaces its
        // placeholder once that frame is on screen.
        if self.room.tracks.values().any(|t| t.is_warming_up()) {
            self.recompose();
        }
    }

    fn add_input(&mut self, track: &crate::sfu::TrackInfo) {
        let media = self.settings.media;
        let carried = match track.kind {
            TrackKind::Video => media.has_video(),
            TrackKind::Audio => media.has_audio(),
        };
        if !carried {
            // Nothing of it reaches an output: not even decoded.
            return;
        }
        let mixer = match track.kind {
            TrackKind::Video => self.program.compositor.clone(),
            TrackKind::Audio => self.program.audiomixer.clone(),
        };
        let pan = match (track.kind, self.settings.audio_mixing) {
            (TrackKind::Audio, AudioMixing::Alternate) => {
                // Each new audio input goes to the other side.
                self.audio_inputs_added += 1;
                Some(if self.audio_inputs_added % 2 == 1 {
                    -1.0
                } else {
                    1.0
                })
            }
            (TrackKind::Audio, AudioMixing::Agent) => {
                let agent = self.room.is_agent(&track.participant);
                Some(if agent { -1.0 } else { 1.0 })
            }
            _ => None,
        };
        match self.inputs.add(track, &mixer, pan) {
            Ok(input) => {
                let cname = track.participant.0.clone();
                self.tracks.insert(
                    track.sid.clone(),
                    TrackInput {
                        input,
                        last_ssrc: None,
                        cname,
                        last_keyframe_request: None,
                    },
                );
                if track.kind == TrackKind::Video {
                    self.request_keyframe(&track.sid);
                }
                tracing::info!(track = %track.sid, participant = %track.participant, codec = ?track.codec, "input added");
            }
            Err(error) => tracing::warn!(track = %track.sid, %error, "cannot compose this track"),
        }
    }

    fn remove_input(&mut self, track: &TrackSid) {
        if let Some(input) = self.tracks.remove(track) {
            let mixer = match input.input.kind {
                TrackKind::Video => self.program.compositor.clone(),
                TrackKind::Audio => self.program.audiomixer.clone(),
            };
            self.inputs.remove(input.input, &mixer);
            tracing::info!(%track, "input removed");
        }
    }

    /// Asks the publisher for a keyframe, at most every [`KEYFRAME_RETRY`].
    fn request_keyframe(&mut self, track: &TrackSid) {
        let Some(input) = self.tracks.get_mut(track) else {
            return;
        };
        if input
            .last_keyframe_request
            .is_some_and(|at| at.elapsed() < KEYFRAME_RETRY)
        {
            return;
        }
        input.last_keyframe_request = Some(Instant::now());
        self.handle.request_keyframe(track);
    }

    /// Recomputes the scene from the room and applies it (geometry and
    /// overlay). A layout template that fails keeps the last good scene on
    /// air (the built-in gallery if there is none yet) and is reported once.
    fn recompose(&mut self) {
        let view = self.room.view();
        let speaker = self.speaker.update(&view);
        let canvas = self.settings.canvas;
        let scene = match self
            .layouts
            .compose(&self.layout, canvas, &view, speaker.as_deref())
        {
            Ok(scene) => {
                self.layout_error = None;
                scene
            }
            Err(error) => {
                let message = error.to_string();
                if self.layout_error.as_ref() != Some(&message) {
                    tracing::error!(layout = %self.layout, error = %message, "layout failed; keeping the last scene");
                    self.layout_error = Some(message);
                }
                match &self.scene {
                    Some(_) => return,
                    None => layout::compose(LayoutName::Gallery, canvas, &view, speaker.as_deref()),
                }
            }
        };
        if self.scene.as_ref() == Some(&scene) {
            return;
        }
        for sid in self.tracks.keys() {
            self.place(sid, &scene);
        }
        self.overlay.update(&scene);
        self.program.background.show(scene.background);
        self.scene = Some(scene);
    }

    /// Puts a video input where `scene` shows it (or will, see [`scene::place`]).
    fn place(&self, track: &TrackSid, scene: &Scene) {
        let (Some(input), Some(state)) = (self.tracks.get(track), self.room.tracks.get(track))
        else {
            return;
        };
        if input.input.kind != TrackKind::Video {
            return;
        }
        let content = match state.info.source {
            TrackSource::ScreenShare => Content::ScreenShare,
            _ => Content::Camera,
        };
        let owner = (state.info.participant.0.as_str(), content);
        scene::place(&input.input, scene, state.size, owner);
    }

    fn attach_output(&mut self, spec: OutputSpec, live: bool) -> Result<(), ComposerError> {
        let failed = |message: String| ComposerError::Output {
            name: spec.name.clone(),
            message,
        };
        let media = self.settings.media;
        let bin = outputs::media::build(&spec.id.simple().to_string(), &spec.target, media)
            .map_err(|e| failed(e.to_string()))?;
        self.program
            .pipeline
            .add(&bin.bin)
            .map_err(|e| failed(e.to_string()))?;
        let mut tee_pads = Vec::with_capacity(2);
        let images = matches!(spec.target, OutputTarget::Images(_));
        let streams = if images {
            [
                (&self.program.program_tee, "video", true),
                (&self.program.audio_tee, "audio", false),
            ]
        } else if matches!(spec.target, OutputTarget::Ogg { .. }) {
            [
                (&self.program.video_tee, "video", false),
                (&self.program.raw_audio_tee, "audio", true),
            ]
        } else {
            [
                (&self.program.video_tee, "video", media.has_video()),
                (&self.program.audio_tee, "audio", media.has_audio()),
            ]
        };
        for (tee, kind, _) in streams.into_iter().filter(|(_, _, wanted)| *wanted) {
            let tee_pad = tee
                .request_pad_simple("src_%u")
                .ok_or_else(|| failed("the encoder tee refused a pad".into()))?;
            let sink = bin
                .bin
                .static_pad(kind)
                .ok_or_else(|| failed(format!("no {kind} pad")))?;
            tee_pad
                .link(&sink)
                .map_err(|e| failed(format!("linking {kind}: {e:?}")))?;
            tee_pads.push((tee.clone(), tee_pad));
        }
        if live {
            bin.bin
                .sync_state_with_parent()
                .map_err(|e| failed(e.to_string()))?;
        }
        if live && media.has_video() && !images && !tee_pads.is_empty() {
            // A late joiner must start on a keyframe.
            let event = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            tee_pads[0].1.send_event(event);
        }
        tracing::info!(output = %spec.name, kind = target_kind(&spec.target), "output attached");
        metrics::output_status(target_kind(&spec.target), "connecting");
        self.outputs.insert(
            spec.id,
            AttachedOutput {
                spec,
                bin,
                tee_pads,
                live: false,
                failing: None,
                reported_bytes: 0,
            },
        );
        Ok(())
    }

    /// An output's bin reported an error: it is torn down; a destination
    /// that had delivered (or is being retried) is retried with backoff
    /// until the program's retry budget runs out, anything else fails for good.
    fn output_failed(&mut self, output: AttachedOutput, text: &str) {
        let id = output.spec.id;
        let error = format!("{}: {text}", output.spec.name);
        let retriable = matches!(
            output.spec.target,
            OutputTarget::Rtmp { .. } | OutputTarget::Srt { .. }
        ) && (output.live || output.failing.is_some());
        let now = Instant::now();
        let (failing_since, delay) = output.failing.unwrap_or((now, FIRST_RETRY_DELAY));
        let spec = output.spec.clone();
        self.detach_output(output);
        let budget = self.settings.retry_budget;
        if retriable && now.duration_since(failing_since) < budget {
            tracing::warn!(output = %spec.name, error = %text, retry_in = ?delay, "output failed; retrying");
            metrics::output_retry(target_kind(&spec.target));
            metrics::output_status(target_kind(&spec.target), "retrying");
            self.retrying.insert(
                id,
                Retry {
                    spec,
                    due: now + delay,
                    failing_since,
                    delay,
                },
            );
            let _ = self
                .events
                .try_send(RunEvent::OutputRetrying { output: id, error });
        } else {
            let error = if retriable {
                format!("{error} (gave up after {}s of retries)", budget.as_secs())
            } else {
                error
            };
            tracing::warn!(output = %spec.name, %error, "output failed");
            metrics::output_status(target_kind(&spec.target), "failed");
            let _ = self
                .events
                .try_send(RunEvent::OutputFailed { output: id, error });
        }
    }

    /// Counts program frames that never came: the program has a fixed frame
    /// rate, so frames short of elapsed time × fps were dropped (an
    /// overloaded machine). Half a second of slack absorbs scheduling jitter.
    fn count_dropped_frames(&mut self) {
        let produced = self.stats.program_frames.load(Ordering::Relaxed);
        let Some((since, at_start)) = self.first_frame else {
            if produced > 0 {
                self.first_frame = Some((Instant::now(), produced));
            }
            return;
        };
        let fps = f64::from(self.settings.fps);
        let expected = at_start + (since.elapsed().as_secs_f64() * fps) as u64;
        let missing = expected.saturating_sub(produced + self.frames_missing);
        if missing as f64 > fps / 2.0 {
            for _ in 0..missing {
                metrics::program_frame(false);
            }
            self.frames_missing += missing;
        }
    }

    /// Attaches again the destinations whose retry is due.
    fn retry_due_outputs(&mut self) {
        let now = Instant::now();
        let due: Vec<Uuid> = self
            .retrying
            .iter()
            .filter(|(_, retry)| retry.due <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(retry) = self.retrying.remove(&id) else {
                continue;
            };
            let next_delay = (retry.delay * 2).min(MAX_RETRY_DELAY);
            match self.attach_output(retry.spec.clone(), true) {
                Ok(()) => {
                    if let Some(output) = self.outputs.get_mut(&id) {
                        output.failing = Some((retry.failing_since, next_delay));
                    }
                }
                Err(error)
                    if now.duration_since(retry.failing_since) >= self.settings.retry_budget =>
                {
                    let _ = self.events.try_send(RunEvent::OutputFailed {
                        output: id,
                        error: format!(
                            "{error} (gave up after {}s of retries)",
                            self.settings.retry_budget.as_secs()
                        ),
                    });
                }
                Err(error) => {
                    tracing::warn!(output = %retry.spec.name, %error, "retry could not attach");
                    self.retrying.insert(
                        id,
                        Retry {
                            due: now + next_delay,
                            delay: next_delay,
                            ..retry
                        },
                    );
                }
            }
        }
    }

    /// Unhooks an output from the tees, ends its stream and removes it.
    fn detach_output(&mut self, output: AttachedOutput) {
        for (tee, pad) in &output.tee_pads {
            if let Some(peer) = pad.peer() {
                let _ = pad.unlink(&peer);
                peer.send_event(gst::event::Eos::new());
            }
            tee.release_request_pad(pad);
        }
        let _ = output.bin.bin.set_state(gst::State::Null);
        let _ = self.program.pipeline.remove(&output.bin.bin);
        tracing::info!(output = %output.spec.name, "output detached");
    }

    /// Stop: end every input and source, wait for the files to be finalized,
    /// then stop the pipeline.
    async fn finish(&mut self, bus: &mut mpsc::UnboundedReceiver<gst::Message>) -> RunReport {
        // End each input at the mixer: a jitter buffer still waiting for its
        // first packet would otherwise hold back the end of stream.
        for input in self.tracks.values() {
            input.input.mixer_pad.send_event(gst::event::Eos::new());
        }
        self.program
            .background_pad
            .send_event(gst::event::Eos::new());
        self.program.pipeline.send_event(gst::event::Eos::new());
        let deadline = tokio::time::Instant::now() + FINALIZE_TIMEOUT;
        loop {
            let files_done = self
                .outputs
                .values()
                .filter(|o| {
                    !matches!(
                        o.spec.target,
                        OutputTarget::Rtmp { .. } | OutputTarget::Srt { .. }
                    )
                })
                .all(|o| o.bin.finished.load(Ordering::SeqCst));
            if files_done {
                break;
            }
            match tokio::time::timeout_at(deadline, bus.recv()).await {
                Ok(Some(message)) if matches!(message.view(), gst::MessageView::Eos(_)) => break,
                Ok(Some(message)) if is_segment_message(&message) => {
                    // Segments closed by the end of stream still go out.
                    self.on_bus(&message);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    tracing::warn!(
                        "outputs did not finish within {FINALIZE_TIMEOUT:?}; stopping anyway"
                    );
                    break;
                }
            }
        }
        let _ = self.program.pipeline.set_state(gst::State::Null);
        RunReport {
            output_bytes: self
                .outputs
                .iter()
                .map(|(id, o)| (*id, o.bin.bytes()))
                .collect(),
            output_items: self
                .outputs
                .iter()
                .map(|(id, o)| (*id, o.bin.items.load(Ordering::Relaxed)))
                .filter(|(_, items)| *items > 0)
                .collect(),
        }
    }

    /// The attached output whose bin a message came from. A retried output
    /// gets a new bin of the same name, so the bin itself is compared: a late
    /// message from the torn-down one must not fail its successor.
    fn output_of(&self, message: &gst::Message) -> Option<Uuid> {
        let bin = output_bin_of(message)?;
        self.outputs
            .iter()
            .find(|(_, o)| o.bin.bin.upcast_ref::<gst::Object>() == &bin)
            .map(|(id, _)| *id)
    }

    /// The input track whose chain a message came from (elements are named `role-<track sid>`).
    fn track_of(&self, message: &gst::Message) -> Option<TrackSid> {
        let name = message.src()?.name();
        self.tracks
            .keys()
            .find(|sid| name.ends_with(&format!("-{sid}")))
            .cloned()
    }

    fn first_error(&self) -> Option<String> {
        let bus = self.program.pipeline.bus()?;
        let message = bus.pop_filtered(&[gst::MessageType::Error])?;
        match message.view() {
            gst::MessageView::Error(error) => Some(error.error().to_string()),
            _ => None,
        }
    }
}

fn target_kind(target: &OutputTarget) -> &'static str {
    match target {
        OutputTarget::Rtmp { .. } => "rtmp",
        OutputTarget::Srt { .. } => "srt",
        OutputTarget::Mp4 { .. } => "mp4",
        OutputTarget::Ogg { .. } => "ogg",
        OutputTarget::Hls { .. } => "hls",
        OutputTarget::Images(_) => "images",
    }
}

/// Counts frames entering the encoder (the program's frame rate, live).
fn count_frames(pad: &gst::Pad, stats: Arc<ComposerStats>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        stats.program_frames.fetch_add(1, Ordering::Relaxed);
        metrics::program_frame(true);
        gst::PadProbeReturn::Ok
    });
}

/// Sends the bus messages the loop cares about to it, from whichever thread posts them.
fn forward_bus(pipeline: &gst::Pipeline, to: mpsc::UnboundedSender<gst::Message>) {
    let Some(bus) = pipeline.bus() else {
        return;
    };
    bus.set_sync_handler(move |_, message| {
        use gst::MessageView;
        if matches!(
            message.view(),
            MessageView::Error(_)
                | MessageView::Warning(_)
                | MessageView::Eos(_)
                | MessageView::Latency(_)
        ) || is_segment_message(message)
        {
            let _ = to.send(message.clone());
        }
        gst::BusSyncReply::Drop
    });
}

/// Output elements are named `<role>-<output id, 32 hex digits>`; input
/// chains end in a track sid and the program's own elements in a word.
fn is_output_element(name: &str) -> bool {
    name.rsplit('-')
        .next()
        .is_some_and(|key| key.len() == 32 && Uuid::try_parse(key).is_ok())
}

/// The output bin (`output-<id>`) an element belongs to, while it has one.
fn output_bin_of(message: &gst::Message) -> Option<gst::Object> {
    let mut object = message.src().cloned();
    while let Some(current) = object {
        if current.name().starts_with("output-") {
            return Some(current);
        }
        object = current.parent();
    }
    None
}

/// The HLS segment muxer's notices that a segment opened or closed.
fn is_segment_message(message: &gst::Message) -> bool {
    message.type_() == gst::MessageType::Element
        && message
            .structure()
            .is_some_and(|s| s.name().starts_with("splitmuxsink-fragment-"))
}

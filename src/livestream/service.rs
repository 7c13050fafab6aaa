//! Go-live, stop, update, list and status: the orchestration behind the REST API.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use super::address_check;
use super::egress;
use super::mux_live::MuxLive;
use super::preset::EncodingPreset;
use super::request::{
    Capabilities, FileKind, GoLive, GoLiveRequest, HlsNaming, ImagePlan, NamedDestination,
    UpdateRequest, ValidationError,
};
use super::runner::{
    LiveSpec, OutputSpec, OutputTarget, RunControl, RunEvent, Runner, StartError, TrackSelection,
};
use super::state::{Status, TransitionError, parse_stored, transition};
use crate::auth::Caller;
use crate::config::LimitsConfig;
use crate::layout::LayoutTemplates;
use crate::outputs::DestinationType;
use crate::outputs::hls::{DEFAULT_PLAYLIST_NAME, HlsJob};
use crate::outputs::images::ImageJob;
use crate::outputs::upload::upload_recording;
use crate::sfu::webhook::WebhookNotifier;
use crate::storage::{ObjectPath, Storage};
use crate::store::{
    EventRow, LivestreamRow, NewLivestream, NewOutput, OutputRow, OutputUpdate, Store, StoreError,
};

/// Output kinds that are finished files, uploaded on completion.
const RECORDING_KINDS: [&str; 3] = ["mp4", "ogg", "webm"];

/// Why a program was stopped when nobody asked (`stop_reason`).
pub const STOP_MAX_DURATION: &str = "max duration reached";
pub const STOP_ROOM_CLOSED: &str = "room closed";

#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub node_id: String,
    pub limits: LimitsConfig,
    pub recordings_dir: PathBuf,
    pub capabilities: Capabilities,
    /// Built-in and user layout templates, to validate layout names.
    pub layouts: Arc<LayoutTemplates>,
    /// Going live to Mux, when Mux credentials are configured.
    pub mux: Option<Arc<MuxLive>>,
    /// Object storage for HLS and recording uploads, when configured.
    pub storage: Option<Storage>,
    /// Room webhooks: livestreams are announced as LiveKit egress events.
    pub webhooks: WebhookNotifier,
}

/// A livestream with its outputs and transition history.
#[derive(Debug, Clone)]
pub struct LivestreamDetails {
    pub row: LivestreamRow,
    pub outputs: Vec<OutputRow>,
    pub events: Vec<EventRow>,
    /// Participants on the program now (running livestreams on this node).
    pub participants_composed: Option<u64>,
}

impl LivestreamDetails {
    pub fn status(&self) -> Status {
        parse_stored(&self.row.status)
    }
}

/// How a caller names a livestream.
#[derive(Debug, Clone)]
pub enum Target {
    Id(Uuid),
    /// The caller's newest livestream in this room (an open one first).
    Room(String),
    /// A LiveKit egress id (`EG_…`) of the caller's API key.
    Egress(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LivestreamError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    Forbidden(String),
    #[error("livestream not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotLive(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Overloaded(String),
    #[error("livestream {livestream_id} failed to start: {message}")]
    StartFailed {
        livestream_id: Uuid,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transition(TransitionError),
}

impl From<TransitionError> for LivestreamError {
    fn from(error: TransitionError) -> Self {
        match error {
            TransitionError::Store(e) => LivestreamError::Store(e),
            TransitionError::NotFound(_) => LivestreamError::NotFound,
            illegal => LivestreamError::Transition(illegal),
        }
    }
}

/// A program this node is running.
struct ActiveRun {
    control: Arc<dyn RunControl>,
    /// Set once a stop has begun, so the event watcher leaves the ending to it.
    stopping: AtomicBool,
    /// Outputs of the go-live that have not received program data yet: the
    /// livestream is `active` once every one has.
    awaiting: Mutex<HashSet<Uuid>>,
}

impl ActiveRun {
    /// Records `output` as live; true when it was the last one awaited.
    fn output_live(&self, output: Uuid) -> bool {
        let mut awaiting = self.awaiting.lock().expect("awaiting lock");
        awaiting.remove(&output) && awaiting.is_empty()
    }

    fn went_live(&self) -> bool {
        self.awaiting.lock().expect("awaiting lock").is_empty()
    }
}

pub struct LivestreamService {
    store: Store,
    runner: Arc<dyn Runner>,
    settings: ServiceSettings,
    runs: Mutex<HashMap<Uuid, Arc<ActiveRun>>>,
    /// Egress requests' own webhook URLs, until their livestream ends.
    request_webhooks: Mutex<HashMap<Uuid, WebhookNotifier>>,
    /// Egress requests' own buckets for their MP4, until it is uploaded.
    request_uploads: Mutex<HashMap<Uuid, Storage>>,
}

impl LivestreamService {
    pub fn new(store: Store, runner: Arc<dyn Runner>, settings: ServiceSettings) -> Arc<Self> {
        Arc::new(LivestreamService {
            store,
            runner,
            settings,
            runs: Mutex::new(HashMap::new()),
            request_webhooks: Mutex::new(HashMap::new()),
            request_uploads: Mutex::new(HashMap::new()),
        })
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates the livestream and starts its program. Answers once the media
    /// engine has accepted it (`starting`); `active` follows when program data
    /// reaches an output.
    pub async fn go_live(
        self: &Arc<Self>,
        caller: &Caller,
        request: GoLiveRequest,
    ) -> Result<LivestreamDetails, LivestreamError> {
        let go_live = request.validate(
            &self.settings.limits,
            self.settings.capabilities,
            &self.settings.layouts,
        )?;
        self.start(caller, go_live).await
    }

    /// Starts an already validated go-live (a REST request or a LiveKit
    /// egress request).
    pub async fn start(
        self: &Arc<Self>,
        caller: &Caller,
        go_live: GoLive,
    ) -> Result<LivestreamDetails, LivestreamError> {
        let allow_private = self.settings.limits.allow_private_destinations;
        address_check::check_public(&go_live.destinations, allow_private).await?;
        for config in request_storages(&go_live) {
            if !config.endpoint.is_empty() {
                address_check::check_endpoint(&config.endpoint, allow_private).await?;
            }
        }
        if !caller.may_record(Some(&go_live.room_name)) {
            return Err(LivestreamError::Forbidden(format!(
                "this token may not record room `{}` (needs the roomRecord grant for it)",
                go_live.room_name
            )));
        }
        self.runner
            .availability()
            .map_err(LivestreamError::Unavailable)?;
        self.check_capacity()?;

        let id = Uuid::new_v4();
        let outputs = self.plan_outputs(id, &go_live)?;
        let own_bucket = go_live
            .mp4_upload
            .as_ref()
            .map(request_storage)
            .transpose()?;
        let new = NewLivestream {
            id,
            user_id: caller.user_id.clone(),
            room_name: go_live.room_name.clone(),
            layout: go_live.layout.clone(),
            preset: go_live.preset.name.clone(),
            width: go_live.preset.width as i32,
            height: go_live.preset.height as i32,
            fps: go_live.preset.fps as i32,
            video_bitrate_kbps: go_live.preset.video_bitrate_kbps as i32,
            latency_mode: go_live.latency_mode.clone(),
            max_duration_secs: go_live.max_duration_secs.map(|s| s as i32),
            owner_node: self.settings.node_id.clone(),
            media: go_live.media.as_str().to_string(),
            egress_id: egress::new_egress_id(),
            api_key: caller.api_key.clone(),
            source_type: go_live.source_type.to_string(),
            audio_bitrate_kbps: go_live.preset.audio_bitrate_kbps as i32,
            keyframe_interval_secs: go_live.preset.keyframe_interval_secs,
            source_identity: None,
            source_screen_share: false,
            source_audio_track: None,
            source_video_track: None,
            room_sid: go_live.room_sid.clone(),
        };
        let new = with_selection(new, &go_live.selection);
        let rows: Vec<NewOutput> = outputs.iter().map(|(row, _)| row.clone()).collect();
        self.store
            .create_livestream(&new, &rows)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => LivestreamError::Conflict(format!(
                    "room `{}` already has a livestream that has not ended; stop it first",
                    go_live.room_name
                )),
                other => other.into(),
            })?;
        tracing::info!(livestream = %id, room = %go_live.room_name, layout = %go_live.layout, preset = %go_live.preset.name, outputs = rows.len(), "go-live requested");
        if let Some(storage) = own_bucket {
            self.request_uploads
                .lock()
                .expect("uploads lock")
                .insert(id, storage);
        }
        if let Some(hooks) = &go_live.webhooks {
            let notifier = WebhookNotifier::start(
                hooks.urls.clone(),
                hooks.api_key.clone(),
                hooks.api_secret.expose().to_string(),
            );
            self.request_webhooks
                .lock()
                .expect("webhooks lock")
                .insert(id, notifier);
        }
        transition(
            &self.store,
            id,
            Status::Starting,
            &format!("go-live requested by {}", caller.user_id),
            None,
        )
        .await?;
        self.announce(id).await;

        let mut outputs: Vec<OutputSpec> = outputs.into_iter().map(|(_, spec)| spec).collect();
        if go_live.mux {
            outputs.push(self.create_mux_stream(id, &go_live).await?);
        }
        let spec = LiveSpec {
            livestream_id: id,
            room_name: go_live.room_name.clone(),
            layout: go_live.layout.clone(),
            preset: keyframes_within_segments(&go_live, self.settings.storage.as_ref()),
            max_duration: go_live
                .max_duration_secs
                .map(|s| Duration::from_secs(s.into())),
            outputs,
            media: go_live.media,
            selection: go_live.selection.clone(),
            audio_mixing: go_live.audio_mixing,
        };
        let output_ids: HashSet<Uuid> = spec.outputs.iter().map(|o| o.id).collect();
        match self.runner.start(spec).await {
            Ok(handle) => {
                let run = Arc::new(ActiveRun {
                    control: handle.control,
                    stopping: AtomicBool::new(false),
                    awaiting: Mutex::new(output_ids),
                });
                self.runs.lock().expect("runs lock").insert(id, run.clone());
                tokio::spawn(
                    self.clone()
                        .watch(id, run, handle.events, go_live.max_duration_secs),
                );
            }
            Err(error) => {
                let message = match &error {
                    StartError::Unavailable(m) | StartError::Failed(m) => m.clone(),
                };
                tracing::warn!(livestream = %id, error = %message, "program failed to start");
                self.fail(id, &format!("failed to start: {message}")).await;
                return Err(LivestreamError::StartFailed {
                    livestream_id: id,
                    message,
                });
            }
        }
        self.details(self.row(id).await?).await
    }

    /// Creates the Mux live stream of livestream `id` and its output. A Mux
    /// that refuses fails the go-live (502), naming Mux.
    async fn create_mux_stream(
        &self,
        id: Uuid,
        go_live: &GoLive,
    ) -> Result<OutputSpec, LivestreamError> {
        let mux = self.settings.mux.as_ref().ok_or_else(|| {
            LivestreamError::Unavailable("Mux is not configured on this server".into())
        })?;
        let stream = match mux
            .create(id, &go_live.latency_mode, go_live.max_duration_secs)
            .await
        {
            Ok(stream) => stream,
            Err(error) => {
                let message = format!("Mux did not create the live stream: {error}");
                tracing::warn!(livestream = %id, %error, "Mux live stream not created");
                self.fail(id, &message).await;
                return Err(LivestreamError::StartFailed {
                    livestream_id: id,
                    message,
                });
            }
        };
        self.store
            .set_mux_live_stream(
                id,
                &stream.id,
                stream.playback_id.as_deref(),
                stream.stream_key.expose(),
            )
            .await?;
        let named = NamedDestination {
            name: "mux".into(),
            destination: mux.destination(&stream.stream_key),
        };
        let (row, spec) = rtmp_output(&named);
        self.store.add_outputs(id, &[row]).await?;
        tracing::info!(livestream = %id, mux_live_stream = %stream.id, "Mux live stream created");
        Ok(spec)
    }

    /// Completes the Mux live stream (the recording is finalized now, not
    /// after the reconnect window) and records its asset when Mux has it;
    /// webhooks fill in the rest. Failures are logged, never fatal: the
    /// program has already stopped.
    async fn complete_mux_stream(&self, id: Uuid) {
        let (Some(mux), Ok(Some(row))) =
            (self.settings.mux.as_ref(), self.store.livestream(id).await)
        else {
            return;
        };
        let Some(live_stream) = row.mux_live_stream_id else {
            return;
        };
        if let Err(error) = mux.complete(&live_stream).await {
            tracing::warn!(livestream = %id, %error, "Mux live stream not completed");
            return;
        }
        match mux.recording(&live_stream).await {
            Ok(Some(change)) => {
                if let Err(error) = self.store.apply_mux_change(id, &change).await {
                    tracing::warn!(livestream = %id, %error, "could not record the Mux asset");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(livestream = %id, %error, "Mux asset not found yet"),
        }
    }

    /// Stops a livestream: `stopping`, then the engine drains and finalizes,
    /// then `completed` (or `failed` if finalizing fails). Stopping one that has
    /// already ended answers with its final state.
    pub async fn stop(
        self: &Arc<Self>,
        caller: &Caller,
        target: Target,
    ) -> Result<LivestreamDetails, LivestreamError> {
        let row = self.find(caller, target).await?;
        if !caller.may_record(Some(&row.room_name)) {
            return Err(LivestreamError::Forbidden(format!(
                "this token may not record room `{}`",
                row.room_name
            )));
        }
        let status = parse_stored(&row.status);
        if status.is_terminal() {
            return self.details(row).await;
        }
        self.stop_run(row.id, &format!("stop requested by {}", caller.user_id))
            .await?;
        self.details(self.row(row.id).await?).await
    }

    /// Changes the layout or destinations of a live program.
    pub async fn update(
        self: &Arc<Self>,
        caller: &Caller,
        target: Target,
        request: UpdateRequest,
    ) -> Result<LivestreamDetails, LivestreamError> {
        let row = self.find(caller, target).await?;
        let outputs = self.store.outputs_of(&[row.id]).await?;
        self.apply_update(caller, row, outputs, request).await
    }

    /// LiveKit's UpdateStream: stream URLs to add and to remove (matched
    /// with their secret part against the egress's outputs).
    pub async fn update_stream(
        self: &Arc<Self>,
        caller: &Caller,
        target: Target,
        add_urls: &[String],
        remove_urls: &[String],
    ) -> Result<LivestreamDetails, LivestreamError> {
        let row = self.find(caller, target).await?;
        let outputs = self.store.outputs_of(&[row.id]).await?;
        let request = egress::stream_update(add_urls, remove_urls, &outputs)?;
        self.apply_update(caller, row, outputs, request).await
    }

    async fn apply_update(
        self: &Arc<Self>,
        caller: &Caller,
        row: LivestreamRow,
        outputs: Vec<OutputRow>,
        request: UpdateRequest,
    ) -> Result<LivestreamDetails, LivestreamError> {
        let id = row.id;
        if row.source_type == "track" {
            return Err(ValidationError {
                code: "invalid_argument",
                message: "a track egress records one track as it is: it has no layout or other outputs to change".into(),
            }
            .into());
        }
        let destinations = outputs
            .iter()
            .filter(|o| is_stream(o) && o.status != "removed")
            .count();
        let update =
            request.validate(&self.settings.limits, destinations, &self.settings.layouts)?;
        let allow_private = self.settings.limits.allow_private_destinations;
        address_check::check_public(&update.add, allow_private).await?;
        if !caller.may_record(Some(&row.room_name)) {
            return Err(LivestreamError::Forbidden(format!(
                "this token may not record room `{}`",
                row.room_name
            )));
        }
        if let Some(unknown) = update
            .remove
            .iter()
            .find(|r| !outputs.iter().any(|o| o.id == **r && is_stream(o)))
        {
            return Err(ValidationError {
                code: "unknown_destination",
                message: format!(
                    "removeDestinations: {unknown} is not a destination of this livestream"
                ),
            }
            .into());
        }
        let run = self.live_run(&row)?;
        if let Some(layout) = &update.layout {
            run.control
                .set_layout(layout)
                .await
                .map_err(|e| LivestreamError::Unavailable(e.0))?;
            self.store.set_layout(id, layout).await?;
            tracing::info!(livestream = %id, layout = %layout, "layout changed");
        }
        for removed in &update.remove {
            run.control
                .remove_output(*removed)
                .await
                .map_err(|e| LivestreamError::Unavailable(e.0))?;
            self.store
                .update_output(
                    *removed,
                    &OutputUpdate {
                        status: Some("removed".into()),
                        ..Default::default()
                    },
                )
                .await?;
        }
        let added: Vec<(NewOutput, OutputSpec)> = update.add.iter().map(rtmp_output).collect();
        let rows: Vec<NewOutput> = added.iter().map(|(row, _)| row.clone()).collect();
        self.store.add_outputs(id, &rows).await?;
        for (_, spec) in added {
            let output = spec.id;
            if let Err(error) = run.control.add_output(spec).await {
                self.output_update(id, output, "failed", Some(error.0), 0)
                    .await;
            }
        }
        self.details(self.row(id).await?).await
    }

    pub async fn status(
        &self,
        caller: &Caller,
        target: Target,
    ) -> Result<LivestreamDetails, LivestreamError> {
        let row = self.find(caller, target).await?;
        self.details(row).await
    }

    /// ListEgress: the caller's API key's livestreams, newest first.
    pub async fn list_egresses(
        &self,
        caller: &Caller,
        room_name: Option<&str>,
        egress_id: Option<&str>,
        active: bool,
    ) -> Result<Vec<LivestreamDetails>, LivestreamError> {
        const MAX_LISTED: i64 = 500;
        let rows = self
            .store
            .list_egresses(&caller.api_key, room_name, egress_id, active, MAX_LISTED)
            .await?;
        self.with_outputs(rows).await
    }

    pub async fn list(
        &self,
        caller: &Caller,
        room_name: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LivestreamDetails>, LivestreamError> {
        let rows = self
            .store
            .list_livestreams(&caller.user_id, room_name, limit)
            .await?;
        self.with_outputs(rows).await
    }

    /// Rows with their outputs (one query for all of them).
    async fn with_outputs(
        &self,
        rows: Vec<LivestreamRow>,
    ) -> Result<Vec<LivestreamDetails>, LivestreamError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut outputs = self.store.outputs_of(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let (mine, rest): (Vec<_>, Vec<_>) =
                    outputs.drain(..).partition(|o| o.livestream_id == row.id);
                outputs = rest;
                LivestreamDetails {
                    row,
                    outputs: mine,
                    events: Vec::new(),
                    participants_composed: None,
                }
            })
            .collect())
    }

    /// Stops a livestream because its room closed (a room event, not a user).
    pub async fn stop_for_room_end(self: &Arc<Self>, id: Uuid) -> Result<(), LivestreamError> {
        match self.stop_run(id, STOP_ROOM_CLOSED).await {
            Err(LivestreamError::Transition(TransitionError::Illegal { .. })) => Ok(()), // already ending
            other => other,
        }
    }

    /// Marks livestreams this node owned but is no longer running as failed
    /// (called at start-up, before serving).
    pub async fn reconcile(&self) -> Result<usize, LivestreamError> {
        const REASON: &str = "interrupted by restart";
        let rows = self
            .store
            .open_livestreams_owned_by(&self.settings.node_id)
            .await?;
        for row in &rows {
            if parse_stored(&row.status) == Status::Idle {
                transition(&self.store, row.id, Status::Starting, REASON, None).await?;
            }
            self.fail(row.id, REASON).await;
            tracing::warn!(livestream = %row.id, room = %row.room_name, "marked failed: {REASON}");
        }
        Ok(rows.len())
    }

    /// Stops every running program (graceful shutdown).
    pub async fn shutdown(self: &Arc<Self>) {
        let ids: Vec<Uuid> = self
            .runs
            .lock()
            .expect("runs lock")
            .keys()
            .copied()
            .collect();
        for id in ids {
            if let Err(error) = self.stop_run(id, "server shutting down").await {
                tracing::warn!(livestream = %id, %error, "could not stop cleanly at shutdown");
            }
        }
    }

    /// How many programs this node is running.
    pub fn running(&self) -> usize {
        self.runs.lock().expect("runs lock").len()
    }

    fn check_capacity(&self) -> Result<(), LivestreamError> {
        let max = self.settings.limits.max_livestreams as usize;
        if self.running() >= max {
            return Err(LivestreamError::Overloaded(format!(
                "this node is already running {max} livestreams (limits.max_livestreams)"
            )));
        }
        Ok(())
    }

    /// Rows and media specs for every output a go-live asks for.
    fn plan_outputs(
        &self,
        id: Uuid,
        go_live: &GoLive,
    ) -> Result<Vec<(NewOutput, OutputSpec)>, LivestreamError> {
        let mut outputs = Vec::new();
        if go_live.mp4 {
            let kind = go_live.file_kind;
            let file = match &go_live.mp4_path {
                Some(path) => path.clone(),
                None => format!("{}-{id}.{}", go_live.room_name, kind.as_str()),
            };
            let path = self.settings.recordings_dir.join(file);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    LivestreamError::Unavailable(format!(
                        "cannot create the recording's directory: {e}"
                    ))
                })?;
            }
            let target = match kind {
                // A track egress's recorder picks the container from the codec.
                _ if matches!(go_live.selection, TrackSelection::Track { .. }) => {
                    OutputTarget::Mp4 { path: path.clone() }
                }
                FileKind::Mp4 | FileKind::WebM => OutputTarget::Mp4 { path: path.clone() },
                FileKind::Ogg => OutputTarget::Ogg {
                    path: path.clone(),
                    bitrate_bps: go_live.preset.audio_bitrate_kbps * 1000,
                },
            };
            let (mut row, spec) = file_output(
                kind.as_str(),
                "recording",
                path.display().to_string(),
                target,
            );
            // An egress request's filepath is also the object key it uploads to.
            row.object_key = go_live.mp4_path.clone();
            outputs.push((row, spec));
        }
        if go_live.hls {
            let naming = go_live.hls_naming.clone().unwrap_or_default();
            outputs.push(self.plan_hls(id, &go_live.room_name, &naming)?);
        }
        outputs.extend(go_live.destinations.iter().map(rtmp_output));
        for plan in &go_live.images {
            outputs.push(self.plan_images(plan)?);
        }
        Ok(outputs)
    }

    /// Stills under the recordings directory, uploaded to the bucket (when
    /// one is configured) under the same prefix.
    fn plan_images(&self, plan: &ImagePlan) -> Result<(NewOutput, OutputSpec), LivestreamError> {
        let local = self.settings.recordings_dir.join(&plan.prefix);
        let (dir, name) = match (local.parent(), local.file_name()) {
            (Some(dir), Some(name)) => (dir.to_path_buf(), name.to_string_lossy().into_owned()),
            _ => (self.settings.recordings_dir.clone(), "image".to_string()),
        };
        let storage = match &plan.upload {
            Some(config) => Some(request_storage(config)?),
            None => self.settings.storage.clone(),
        };
        let upload = storage.map(|s| (s.store, plan.prefix.clone()));
        let job = ImageJob {
            dir,
            name,
            interval_secs: plan.interval_secs,
            width: plan.width,
            height: plan.height,
            suffix: plan.suffix,
            upload,
            count: Default::default(),
        };
        let (mut row, spec) = file_output(
            "images",
            "images",
            local.display().to_string(),
            OutputTarget::Images(job),
        );
        row.object_key = Some(plan.prefix.clone());
        Ok((row, spec))
    }

    /// Segments are cut under the recordings directory and published to the
    /// bucket as they close.
    fn plan_hls(
        &self,
        id: Uuid,
        room_name: &str,
        naming: &HlsNaming,
    ) -> Result<(NewOutput, OutputSpec), LivestreamError> {
        // A request's own bucket is not the server's: its segments are cut
        // where a restart does not resume them into the server's bucket.
        let (storage, local_root) = match &naming.upload {
            Some(config) => (request_storage(config)?, "hls-request"),
            None => (
                self.settings.storage.clone().ok_or_else(|| {
                    LivestreamError::Unavailable("HLS needs object storage (storage.bucket)".into())
                })?,
                "hls",
            ),
        };
        let prefix = naming.prefix.clone().unwrap_or_else(|| {
            ObjectPath {
                room_name,
                livestream_id: id,
                time: chrono::Utc::now(),
            }
            .render(&storage.config.hls_path)
        });
        let job = HlsJob {
            dir: self
                .settings
                .recordings_dir
                .join(local_root)
                .join(id.to_string()),
            prefix,
            segment_secs: naming
                .segment_secs
                .unwrap_or(storage.config.hls_segment_secs),
            playlist_name: naming
                .playlist_name
                .clone()
                .unwrap_or_else(|| DEFAULT_PLAYLIST_NAME.to_string()),
            live_playlist_name: naming.live_playlist_name.clone(),
        };
        let url = storage.store.describe(&job.playlist_key());
        // For HLS, `object_key` holds the live playlist's address, if any.
        let live_url = job
            .live_playlist_key()
            .map(|key| storage.store.describe(&key));
        let (dir, segment_secs) = (job.dir.clone(), job.segment_secs);
        let (segments, _publishing) = job.start(storage.store.clone()).map_err(|e| {
            LivestreamError::Unavailable(format!("cannot prepare the HLS output: {e}"))
        })?;
        let (mut row, spec) = file_output(
            "hls",
            "hls",
            url,
            OutputTarget::Hls {
                dir,
                segment_secs,
                segments,
            },
        );
        row.object_key = live_url;
        Ok((row, spec))
    }

    /// Uploads the livestream's finished MP4 recordings in the background
    /// (when configured); each output row learns its object's address once
    /// the store confirms it.
    async fn upload_recordings(&self, id: Uuid) {
        let own = self
            .request_uploads
            .lock()
            .expect("uploads lock")
            .remove(&id);
        // A request's own bucket, else the server's when it uploads MP4s.
        let storage = match own.clone() {
            Some(storage) => storage,
            None => match self.settings.storage.clone() {
                Some(storage) if storage.config.upload_mp4 => storage,
                _ => return,
            },
        };
        // Only uploads to the server's bucket are resumed after a restart
        // (the marker would have to hold the request's credentials).
        let resumable = own.is_none();
        let (row, outputs) = match (
            self.store.livestream(id).await,
            self.store.outputs_of(&[id]).await,
        ) {
            (Ok(Some(row)), Ok(outputs)) => (row, outputs),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(livestream = %id, %error, "cannot look up recordings to upload");
                return;
            }
            (Ok(None), _) => return,
        };
        for output in outputs
            .into_iter()
            .filter(|o| RECORDING_KINDS.contains(&o.kind.as_str()))
        {
            let file = PathBuf::from(&output.url);
            if !file.exists() {
                continue;
            }
            let key = output.object_key.clone().unwrap_or_else(|| {
                ObjectPath {
                    room_name: &row.room_name,
                    livestream_id: id,
                    time: row.created_at,
                }
                .render(&storage.config.mp4_path)
            });
            let (storage, db) = (storage.clone(), self.store.clone());
            tokio::spawn(async move {
                match upload_recording(&storage.store, &file, &key, resumable).await {
                    Ok(url) => {
                        if let Err(error) = db.set_output_uploaded(output.id, &url).await {
                            tracing::warn!(output = %output.id, %error, "could not record the upload");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(recording = %file.display(), %error, "cannot start the upload; the recording stays local")
                    }
                }
            });
        }
    }

    /// The running program's latest frame as a JPEG.
    pub async fn preview(&self, caller: &Caller, id: Uuid) -> Result<Vec<u8>, LivestreamError> {
        self.caller_run(caller, id)
            .await?
            .control
            .preview()
            .ok_or_else(|| LivestreamError::Unavailable("the program has no picture yet".into()))
    }

    /// A new viewer of the running program's encoded stream (fragmented MP4).
    pub async fn live_preview(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<super::PreviewFeed, LivestreamError> {
        self.caller_run(caller, id)
            .await?
            .control
            .live_preview()
            .ok_or_else(|| LivestreamError::Unavailable("the program has no stream yet".into()))
    }

    /// Follows a run's events until it ends: output health, `starting → active`,
    /// the max-duration stop, and failure when the engine ends on its own.
    async fn watch(
        self: Arc<Self>,
        id: Uuid,
        run: Arc<ActiveRun>,
        mut events: tokio::sync::mpsc::Receiver<RunEvent>,
        max_duration_secs: Option<u32>,
    ) {
        let deadline =
            max_duration_secs.map(|s| tokio::time::Instant::now() + Duration::from_secs(s.into()));
        let max_duration = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(max_duration);
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = &mut max_duration => {
                    if let Err(error) = self.stop_run(id, STOP_MAX_DURATION).await {
                        tracing::warn!(livestream = %id, %error, "max-duration stop failed");
                    }
                    return;
                }
            };
            let ended = match event {
                Some(RunEvent::RoomClosed) => {
                    if let Err(error) = self.stop_for_room_end(id).await {
                        tracing::warn!(livestream = %id, %error, "stop after room close failed");
                    }
                    return;
                }
                Some(RunEvent::Ended { error }) => Some(error),
                None => Some(None),
                Some(RunEvent::OutputFailed { output, error }) if !run.went_live() => {
                    self.output_update(id, output, "failed", Some(error.clone()), 0)
                        .await;
                    let reason = format!("an output failed before the program went live: {error}");
                    self.abort_start(id, &run, &reason).await;
                    return;
                }
                Some(event) => {
                    self.on_run_event(id, &run, event).await;
                    None
                }
            };
            if let Some(error) = ended {
                if !run.stopping.load(Ordering::SeqCst) {
                    self.runs.lock().expect("runs lock").remove(&id);
                    let reason = error
                        .unwrap_or_else(|| "media engine ended the program unexpectedly".into());
                    tracing::warn!(livestream = %id, %reason, "program ended by itself");
                    self.fail(id, &reason).await;
                }
                return;
            }
        }
    }

    async fn on_run_event(&self, id: Uuid, run: &ActiveRun, event: RunEvent) {
        match event {
            RunEvent::OutputLive { output } => {
                self.output_update(id, output, "live", None, 0).await;
                if run.output_live(output) {
                    self.mark_active(id).await;
                }
            }
            RunEvent::OutputRetrying { output, error } => {
                self.output_update(id, output, "retrying", Some(error), 1)
                    .await;
                // A destination that is retrying no longer holds the program back.
                if run.output_live(output) {
                    self.mark_active(id).await;
                }
            }
            RunEvent::OutputFailed { output, error } => {
                self.output_update(id, output, "failed", Some(error), 0)
                    .await
            }
            RunEvent::OutputBytes { output, bytes } => {
                let update = OutputUpdate {
                    bytes_sent: Some(bytes as i64),
                    ..Default::default()
                };
                if let Err(error) = self.store.update_output(output, &update).await {
                    tracing::warn!(livestream = %id, %error, "could not record output bytes");
                }
            }
            RunEvent::OutputItems { output, items } => {
                let update = OutputUpdate {
                    items: Some(items as i64),
                    ..Default::default()
                };
                if let Err(error) = self.store.update_output(output, &update).await {
                    tracing::warn!(livestream = %id, %error, "could not record output items");
                }
            }
            RunEvent::ProgramStalled => tracing::warn!(livestream = %id, "program stalled"),
            RunEvent::RoomClosed => {}
            RunEvent::Ended { .. } => {}
        }
    }

    async fn output_update(
        &self,
        id: Uuid,
        output: Uuid,
        status: &str,
        error: Option<String>,
        add_retries: i32,
    ) {
        let update = OutputUpdate {
            status: Some(status.into()),
            last_error: error,
            add_retries,
            ..Default::default()
        };
        if let Err(error) = self.store.update_output(output, &update).await {
            tracing::warn!(%output, %error, "could not record output status");
        }
        self.announce(id).await;
    }

    /// Sends the livestream's state as a LiveKit egress webhook (when room
    /// webhooks are configured).
    async fn announce(&self, id: Uuid) {
        let own = self
            .request_webhooks
            .lock()
            .expect("webhooks lock")
            .get(&id)
            .cloned();
        if !self.settings.webhooks.is_enabled() && own.is_none() {
            return;
        }
        match self.row(id).await {
            Ok(row) => match self.details(row).await {
                Ok(details) => {
                    let event = egress::webhook(&details);
                    if details.status().is_terminal() {
                        // The last event: the workers deliver it, then end.
                        self.request_webhooks
                            .lock()
                            .expect("webhooks lock")
                            .remove(&id);
                    }
                    if let Some(own) = own {
                        own.notify(event.clone());
                    }
                    self.settings.webhooks.notify(event);
                }
                Err(error) => {
                    tracing::warn!(livestream = %id, %error, "cannot announce the egress")
                }
            },
            Err(error) => tracing::warn!(livestream = %id, %error, "cannot announce the egress"),
        }
    }

    /// `stopping` → engine stop → `completed`, or `failed` if the engine cannot finalize.
    async fn stop_run(self: &Arc<Self>, id: Uuid, reason: &str) -> Result<(), LivestreamError> {
        transition(&self.store, id, Status::Stopping, reason, None).await?;
        self.announce(id).await;
        let run = self.runs.lock().expect("runs lock").remove(&id);
        let Some(run) = run else {
            self.fail(id, "no program was running for it on this node")
                .await;
            return Ok(());
        };
        run.stopping.store(true, Ordering::SeqCst);
        match run.control.stop().await {
            Ok(report) => {
                for (output, bytes) in report.output_bytes {
                    let update = OutputUpdate {
                        bytes_sent: Some(bytes as i64),
                        ..Default::default()
                    };
                    self.store.update_output(output, &update).await?;
                }
                for (output, items) in report.output_items {
                    let update = OutputUpdate {
                        items: Some(items as i64),
                        ..Default::default()
                    };
                    self.store.update_output(output, &update).await?;
                }
                self.store.finish_outputs(id, "stopped").await?;
                self.upload_recordings(id).await;
                self.complete_mux_stream(id).await;
                transition(
                    &self.store,
                    id,
                    Status::Completed,
                    "program finalized",
                    None,
                )
                .await?;
                tracing::info!(livestream = %id, "livestream completed");
                self.announce(id).await;
            }
            Err(error) => {
                self.fail(id, &format!("stopping failed: {}", error.0))
                    .await;
            }
        }
        Ok(())
    }

    async fn mark_active(&self, id: Uuid) {
        let reason = "program reached every output";
        match transition(&self.store, id, Status::Active, reason, None).await {
            Ok(_) => {
                tracing::info!(livestream = %id, "livestream is active");
                self.announce(id).await;
            }
            Err(TransitionError::Illegal { .. }) => {} // already active, or stopping
            Err(error) => tracing::warn!(livestream = %id, %error, "could not mark active"),
        }
    }

    /// A go-live that cannot reach every output it asked for fails (with the
    /// output named), rather than going on air without it; the recording
    /// made so far is still finalized.
    async fn abort_start(&self, id: Uuid, run: &ActiveRun, reason: &str) {
        self.runs.lock().expect("runs lock").remove(&id);
        run.stopping.store(true, Ordering::SeqCst);
        if let Err(error) = run.control.stop().await {
            tracing::warn!(livestream = %id, error = %error.0, "stopping the failed program");
        }
        tracing::warn!(livestream = %id, reason, "go-live failed");
        self.fail(id, reason).await;
        self.upload_recordings(id).await;
    }

    /// Best effort: mark failed with `reason` and close its outputs.
    async fn fail(&self, id: Uuid, reason: &str) {
        match transition(&self.store, id, Status::Failed, reason, Some(reason)).await {
            Ok(_) | Err(TransitionError::Illegal { .. }) => {}
            Err(error) => tracing::error!(livestream = %id, %error, "could not mark failed"),
        }
        if let Err(error) = self.store.finish_outputs(id, "failed").await {
            tracing::error!(livestream = %id, %error, "could not close outputs");
        }
        self.announce(id).await;
    }

    /// The running program of the caller's livestream `id`.
    async fn caller_run(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Arc<ActiveRun>, LivestreamError> {
        let row = self.find(caller, Target::Id(id)).await?;
        self.live_run(&row)
    }

    fn live_run(&self, row: &LivestreamRow) -> Result<Arc<ActiveRun>, LivestreamError> {
        let status = parse_stored(&row.status);
        let run = self.runs.lock().expect("runs lock").get(&row.id).cloned();
        match run {
            Some(run) if matches!(status, Status::Starting | Status::Active) => Ok(run),
            _ => Err(LivestreamError::NotLive(format!(
                "livestream {} is {status}, not live",
                row.id
            ))),
        }
    }

    /// Finds a livestream the caller owns; other users' livestreams are "not found".
    async fn find(
        &self,
        caller: &Caller,
        target: Target,
    ) -> Result<LivestreamRow, LivestreamError> {
        let row = match target {
            Target::Id(id) => self.store.livestream(id).await?,
            Target::Room(room) => {
                self.store
                    .latest_livestream_for_room(&caller.user_id, &room)
                    .await?
            }
            // An egress belongs to the API key that started it.
            Target::Egress(egress_id) => {
                let row = self.store.livestream_by_egress_id(&egress_id).await?;
                return row
                    .filter(|r| r.api_key.as_deref() == Some(caller.api_key.as_str()))
                    .ok_or(LivestreamError::NotFound);
            }
        };
        row.filter(|r| r.user_id == caller.user_id)
            .ok_or(LivestreamError::NotFound)
    }

    async fn row(&self, id: Uuid) -> Result<LivestreamRow, LivestreamError> {
        self.store
            .livestream(id)
            .await?
            .ok_or(LivestreamError::NotFound)
    }

    async fn details(&self, row: LivestreamRow) -> Result<LivestreamDetails, LivestreamError> {
        let outputs = self.store.outputs_of(&[row.id]).await?;
        let events = self.store.events(row.id).await?;
        let participants_composed = self
            .runs
            .lock()
            .expect("runs lock")
            .get(&row.id)
            .and_then(|run| run.control.participants_composed());
        Ok(LivestreamDetails {
            row,
            outputs,
            events,
            participants_composed,
        })
    }
}

/// The buckets an egress request named for its outputs.
fn request_storages(go_live: &GoLive) -> impl Iterator<Item = &crate::config::StorageConfig> {
    go_live
        .mp4_upload
        .iter()
        .chain(go_live.hls_naming.iter().flat_map(|n| n.upload.iter()))
        .chain(go_live.images.iter().flat_map(|i| i.upload.iter()))
}

fn request_storage(config: &crate::config::StorageConfig) -> Result<Storage, LivestreamError> {
    Storage::from_config(config).ok_or_else(|| {
        LivestreamError::Invalid(ValidationError {
            code: "invalid_argument",
            message: "s3: the upload settings name no bucket".into(),
        })
    })
}

/// The selection's columns.
fn with_selection(new: NewLivestream, selection: &TrackSelection) -> NewLivestream {
    match selection.clone() {
        TrackSelection::Room => new,
        TrackSelection::Participant {
            identity,
            screen_share,
        } => NewLivestream {
            source_identity: Some(identity),
            source_screen_share: screen_share,
            ..new
        },
        TrackSelection::Tracks { audio, video } => NewLivestream {
            source_audio_track: audio,
            source_video_track: video,
            ..new
        },
        TrackSelection::Track { track, audio: true } => NewLivestream {
            source_audio_track: Some(track),
            ..new
        },
        TrackSelection::Track {
            track,
            audio: false,
        } => NewLivestream {
            source_video_track: Some(track),
            ..new
        },
    }
}

/// With HLS, keyframes must come at least once per segment (LiveKit uses
/// the segment length as the keyframe interval).
fn keyframes_within_segments(go_live: &GoLive, storage: Option<&Storage>) -> EncodingPreset {
    let mut preset = go_live.preset.clone();
    if go_live.hls {
        let segment_secs = go_live
            .hls_naming
            .as_ref()
            .and_then(|n| n.segment_secs)
            .or(storage.map(|s| s.config.hls_segment_secs));
        if let Some(secs) = segment_secs {
            preset.keyframe_interval_secs = preset.keyframe_interval_secs.min(f64::from(secs));
        }
    }
    preset
}

fn file_output(
    kind: &str,
    name: &str,
    url: String,
    target: OutputTarget,
) -> (NewOutput, OutputSpec) {
    let id = Uuid::new_v4();
    let row = NewOutput {
        id,
        kind: kind.into(),
        destination_type: None,
        name: name.into(),
        url,
        stream_key: None,
        object_key: None,
    };
    (
        row,
        OutputSpec {
            id,
            name: name.into(),
            target,
        },
    )
}

/// An output that streams to a destination (RTMP or SRT).
pub fn is_stream(output: &OutputRow) -> bool {
    matches!(output.kind.as_str(), "rtmp" | "srt")
}

/// A destination's output: RTMP, or MPEG-TS over SRT.
fn rtmp_output(named: &NamedDestination) -> (NewOutput, OutputSpec) {
    let id = Uuid::new_v4();
    let destination = &named.destination;
    let srt = destination.kind == DestinationType::Srt;
    let row = NewOutput {
        id,
        kind: if srt { "srt" } else { "rtmp" }.into(),
        destination_type: (!srt).then(|| destination.kind.to_string()),
        name: named.name.clone(),
        url: destination.redacted_url(),
        stream_key: destination
            .stream_key
            .as_ref()
            .map(|k| k.expose().to_string()),
        object_key: None,
    };
    let target = if srt {
        OutputTarget::Srt {
            url: destination.full_url(),
        }
    } else {
        OutputTarget::Rtmp {
            url: destination.full_url(),
        }
    };
    (
        row,
        OutputSpec {
            id,
            name: named.name.clone(),
            target,
        },
    )
}

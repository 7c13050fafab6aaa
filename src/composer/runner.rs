//! The media engine behind the livestream service: each go-live subscribes
//! to its room in-process (a hidden recorder: it never keeps the room open)
//! and composes it with a [`Composer`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Composer, ComposerError, ProgramSettings, RoomFeed};
use crate::layout::{Canvas, LayoutTemplates};
use crate::livestream::TrackSelection;
use crate::livestream::{
    LiveSpec, OutputSpec, PreviewFeed, RunControl, RunError, RunHandle, RunReport, Runner,
    StartError,
};
use crate::sfu::{Sfu, TrackSid};

/// Run events a program may have unread; they are few (output health, the end).
const RUN_EVENTS: usize = 64;

pub struct MediaEngine {
    sfu: Sfu,
    layouts: Arc<LayoutTemplates>,
    retry_budget: std::time::Duration,
}

impl MediaEngine {
    /// Fails when GStreamer or the plugins the composer needs are missing.
    pub fn new(sfu: Sfu, layouts: Arc<LayoutTemplates>) -> Result<MediaEngine, ComposerError> {
        super::init()?;
        super::check_plugins()?;
        Ok(MediaEngine {
            sfu,
            layouts,
            retry_budget: std::time::Duration::from_secs(30),
        })
    }

    /// How long a destination that was live is retried (`media.output_retry_secs`).
    pub fn with_retry_budget(mut self, budget: std::time::Duration) -> MediaEngine {
        self.retry_budget = budget;
        self
    }
}

#[async_trait]
impl Runner for MediaEngine {
    async fn start(&self, spec: LiveSpec) -> Result<RunHandle, StartError> {
        let room = self
            .sfu
            .subscribe_room(&spec.room_name)
            .await
            .map_err(|e| {
                StartError::Failed(format!("cannot join room `{}`: {e}", spec.room_name))
            })?;
        if let TrackSelection::Track { track, .. } = &spec.selection {
            let [output] = <[OutputSpec; 1]>::try_from(spec.outputs.clone()).map_err(|_| {
                StartError::Failed("a track egress has exactly one file output".into())
            })?;
            tracing::info!(livestream = %spec.livestream_id, room = %spec.room_name, %track, "track egress joined the room");
            return super::track_egress::start(room, TrackSid(track.clone()), output)
                .map_err(|e| StartError::Failed(e.to_string()));
        }
        let preset = &spec.preset;
        let mut settings = ProgramSettings::new(
            Canvas {
                width: preset.width,
                height: preset.height,
            },
            preset.fps,
            preset.video_bitrate_kbps,
            &spec.layout,
        );
        settings.media = spec.media;
        settings.selection = spec.selection.clone();
        settings.audio_mixing = spec.audio_mixing;
        settings.audio_bitrate_bps = preset.audio_bitrate_kbps * 1000;
        settings.keyframe_interval_secs = preset.keyframe_interval_secs;
        settings.audio_rate = preset.audio_rate;
        settings.h264_profile = preset.h264_profile.clone();
        settings.retry_budget = self.retry_budget;
        let (events, events_rx) = mpsc::channel(RUN_EVENTS);
        let feed = RoomFeed {
            events: room.events,
            handle: room.handle,
        };
        let composer = Composer::start(settings, self.layouts.clone(), spec.outputs, feed, events)
            .map_err(|e| StartError::Failed(e.to_string()))?;
        tracing::info!(livestream = %spec.livestream_id, room = %spec.room_name, "composer joined the room");
        Ok(RunHandle {
            control: Arc::new(ComposerControl { composer }),
            events: events_rx,
        })
    }
}

struct ComposerControl {
    composer: Composer,
}

fn run_error(error: ComposerError) -> RunError {
    RunError(error.to_string())
}

#[async_trait]
impl RunControl for ComposerControl {
    async fn set_layout(&self, layout: &str) -> Result<(), RunError> {
        self.composer.set_layout(layout).await.map_err(run_error)
    }

    async fn add_output(&self, output: OutputSpec) -> Result<(), RunError> {
        self.composer.add_output(output).await.map_err(run_error)
    }

    async fn remove_output(&self, output: Uuid) -> Result<(), RunError> {
        self.composer.remove_output(output).await.map_err(run_error)
    }

    async fn stop(&self) -> Result<RunReport, RunError> {
        self.composer.stop().await.map_err(run_error)
    }

    fn participants_composed(&self) -> Option<u64> {
        Some(self.composer.stats().participants.load(Ordering::Relaxed))
    }

    fn preview(&self) -> Option<Vec<u8>> {
        self.composer.preview()
    }

    fn live_preview(&self) -> Option<PreviewFeed> {
        self.composer.live_preview()
    }
}

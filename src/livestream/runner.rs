//! The seam between the control plane and the media engine (DESIGN §5.1):
//! `livestream` owns these traits; the composer and outputs implement them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::preset::EncodingPreset;
pub use crate::outputs::{OutputTarget, ProgramMedia};
use crate::sfu::TrackSource;

/// A viewer of the encoded program: a content type for the player (with
/// RFC 6381 codecs), the bytes to start with (a fragmented MP4's init
/// segment and the fragments since the last keyframe), then each new
/// fragment; the channel closes when the program ends.
pub struct PreviewFeed {
    pub content_type: String,
    pub start: Vec<bytes::Bytes>,
    pub live: tokio::sync::broadcast::Receiver<bytes::Bytes>,
}

/// Which of the room's tracks a program shows and mixes (LiveKit's room
/// composite, participant and track composite egresses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrackSelection {
    /// Everyone's camera, microphone and screen share.
    #[default]
    Room,
    /// One participant's camera and microphone, or their screen share and
    /// its audio.
    Participant {
        identity: String,
        screen_share: bool,
    },
    /// These tracks (by sid) alone.
    Tracks {
        audio: Option<String>,
        video: Option<String>,
    },
    /// One track recorded as it is, without a program (track egress).
    Track { track: String, audio: bool },
}

impl TrackSelection {
    /// Whether a track of `identity` (sid `track`, from `source`) is on the program.
    pub fn admits(&self, identity: &str, track: &str, source: TrackSource) -> bool {
        match self {
            TrackSelection::Room => true,
            TrackSelection::Participant {
                identity: wanted,
                screen_share,
            } => {
                let is_share = matches!(
                    source,
                    TrackSource::ScreenShare | TrackSource::ScreenShareAudio
                );
                wanted == identity && is_share == *screen_share
            }
            TrackSelection::Tracks { audio, video } => {
                audio.as_deref() == Some(track) || video.as_deref() == Some(track)
            }
            TrackSelection::Track { track: wanted, .. } => wanted == track,
        }
    }
}

/// How a program's voices share the stereo mix (LiveKit's `audio_mixing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AudioMixing {
    /// Everyone in both channels.
    #[default]
    Default,
    /// Each new voice on the other side: left, right, left, …
    Alternate,
    /// Agents on the left, everyone else on the right.
    Agent,
}

/// Everything the media engine needs to put a room on air.
#[derive(Debug, Clone)]
pub struct LiveSpec {
    pub livestream_id: Uuid,
    pub room_name: String,
    pub layout: String,
    pub preset: EncodingPreset,
    pub max_duration: Option<Duration>,
    pub outputs: Vec<OutputSpec>,
    pub media: ProgramMedia,
    pub selection: TrackSelection,
    pub audio_mixing: AudioMixing,
}

#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// The `livestream_outputs` row this output reports on.
    pub id: Uuid,
    pub name: String,
    pub target: OutputTarget,
}

/// What happens to a running program, reported by the media engine.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// Program data reached this output.
    OutputLive {
        output: Uuid,
    },
    OutputRetrying {
        output: Uuid,
        error: String,
    },
    OutputFailed {
        output: Uuid,
        error: String,
    },
    OutputBytes {
        output: Uuid,
        bytes: u64,
    },
    /// Images or HLS segments an output has made so far.
    OutputItems {
        output: Uuid,
        items: u64,
    },
    ProgramStalled,
    /// The room closed (last participant gone): the program should be stopped.
    RoomClosed,
    /// The run ended by itself (not through `stop`); `error` says why if it failed.
    Ended {
        error: Option<String>,
    },
}

/// What a finished run leaves behind.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Bytes written per output.
    pub output_bytes: Vec<(Uuid, u64)>,
    /// Images or HLS segments made per output (those that make any).
    pub output_items: Vec<(Uuid, u64)>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StartError {
    /// No media engine in this process (answered as 503).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct RunError(pub String);

#[async_trait]
pub trait Runner: Send + Sync + 'static {
    /// `Err` with a reason when this runner cannot start programs at all.
    fn availability(&self) -> Result<(), String> {
        Ok(())
    }

    async fn start(&self, spec: LiveSpec) -> Result<RunHandle, StartError>;
}

/// Controls one running program.
#[async_trait]
pub trait RunControl: Send + Sync + 'static {
    async fn set_layout(&self, layout: &str) -> Result<(), RunError>;
    async fn add_output(&self, output: OutputSpec) -> Result<(), RunError>;
    async fn remove_output(&self, output: Uuid) -> Result<(), RunError>;
    /// Ends the program: drains the encoders and finalizes files.
    async fn stop(&self) -> Result<RunReport, RunError>;
    /// How many participants the program shows now, when the engine knows.
    fn participants_composed(&self) -> Option<u64> {
        None
    }
    /// The latest program frame as a JPEG, when the engine has one.
    fn preview(&self) -> Option<Vec<u8>> {
        None
    }
    /// A new viewer of the encoded program (fragmented MP4), when the
    /// engine has one ready.
    fn live_preview(&self) -> Option<PreviewFeed> {
        None
    }
}

pub struct RunHandle {
    pub control: Arc<dyn RunControl>,
    pub events: mpsc::Receiver<RunEvent>,
}

/// The runner of a build without a media engine: it says so instead of
/// pretending to go live.
pub struct NoMediaEngine;

#[async_trait]
impl Runner for NoMediaEngine {
    fn availability(&self) -> Result<(), String> {
        Err("media engine not available on this node: GStreamer or one of its plugins is missing (see the server log)".into())
    }

    async fn start(&self, _spec: LiveSpec) -> Result<RunHandle, StartError> {
        Err(StartError::Unavailable(
            self.availability().err().unwrap_or_default(),
        ))
    }
}

//! Livestreams: the state machine, go-live/stop orchestration over a media
//! [`Runner`], and reconciliation after a restart.

mod address_check;
mod auto_egress;
pub mod egress;
mod mux_live;
mod preset;
mod request;
mod runner;
mod service;
mod state;
mod webhooks;

pub use auto_egress::AutoEgress;
pub use mux_live::{MuxLive, MuxStream};
pub use preset::{DEFAULT_PRESET, EncodingPreset};
pub use request::{
    Capabilities, DestinationRequest, GoLive, GoLiveRequest, UpdateRequest, ValidationError,
    validate_layout, validate_room_name,
};
pub use runner::{
    AudioMixing, LiveSpec, NoMediaEngine, OutputSpec, OutputTarget, PreviewFeed, ProgramMedia,
    RunControl, RunError, RunEvent, RunHandle, RunReport, Runner, StartError, TrackSelection,
};
pub use service::{
    LivestreamDetails, LivestreamError, LivestreamService, ServiceSettings, Target, is_stream,
};
pub use state::{Status, Transition, TransitionError, transition};
pub use webhooks::WebhookOutcome;

//! Client for Mux's Video API and Mux webhooks.
//!
//! * [`MuxClient`]: typed async client for live streams and assets, shaped
//!   like Mux's official SDKs (`client.live_streams().create(…)`). HTTP Basic
//!   auth with an access token, responses unwrapped from `{"data": …}`, Mux's
//!   error bodies as [`MuxError`], retries with backoff (see [`retry`]), and a
//!   live stream create that never makes a duplicate (see
//!   [`LiveStreams::create`]).
//! * [`webhook`]: `Mux-Signature` verification and signing, and the webhook
//!   event types.
//! * [`playback_url`] and [`thumbnail_url`] for public playback IDs.
//!
//! Secrets (the token secret, stream keys, SRT passphrases, simulcast keys)
//! are [`crate::config::Secret`]s: no `Debug`, `Display` or log line of this
//! module shows them.

mod assets;
mod client;
mod error;
mod live_streams;
pub mod retry;
mod types;
pub mod webhook;

pub use assets::Assets;
pub use client::{DEFAULT_BASE_URL, DEFAULT_TIMEOUT, MuxClient, MuxConfig};
pub use error::MuxError;
pub use live_streams::LiveStreams;
pub use types::{
    Asset, AssetErrors, AssetStatus, CreateLiveStream, CreateSimulcastTarget, LatencyMode,
    ListLiveStreams, LiveStream, LiveStreamStatus, NewAssetSettings, PlaybackId, PlaybackPolicy,
    SimulcastTarget, SimulcastTargetStatus, UpdateLiveStream,
};

/// HLS URL of a public playback ID: `https://stream.mux.com/{id}.m3u8`.
/// (A `signed` playback ID also needs `?token=<JWT>`.)
pub fn playback_url(playback_id: &str) -> String {
    format!("https://stream.mux.com/{playback_id}.m3u8")
}

/// Thumbnail URL of a public playback ID:
/// `https://image.mux.com/{id}/thumbnail.jpg` (add `?time=<s>` etc. as needed).
pub fn thumbnail_url(playback_id: &str) -> String {
    format!("https://image.mux.com/{playback_id}/thumbnail.jpg")
}

#[cfg(test)]
mod tests {
    #[test]
    fn playback_and_thumbnail_urls() {
        assert_eq!(
            super::playback_url("abc"),
            "https://stream.mux.com/abc.m3u8"
        );
        assert_eq!(
            super::thumbnail_url("abc"),
            "https://image.mux.com/abc/thumbnail.jpg"
        );
    }
}

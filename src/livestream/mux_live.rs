//! The Mux side of a livestream: a Mux live stream that receives the
//! program and records it as a VOD asset, completed when the program stops.

use uuid::Uuid;

use crate::config::{MuxConfig as MuxSettings, Secret};
use crate::mux::{
    Asset, CreateLiveStream, LatencyMode, MuxClient, MuxConfig, MuxError, NewAssetSettings,
    PlaybackPolicy,
};
use crate::outputs::{Destination, DestinationType};
use crate::store::MuxChange;

/// Mux's default (and maximum) reconnect window is 60 s for standard
/// latency; a few seconds is enough for an encoder on the same network path.
const RECONNECT_WINDOW_SECS: f64 = 10.0;

#[derive(Debug)]
pub struct MuxLive {
    client: MuxClient,
    ingest_url: String,
    test: bool,
}

/// A live stream as created for one livestream.
pub struct MuxStream {
    pub id: String,
    pub stream_key: Secret,
    pub playback_id: Option<String>,
}

impl MuxLive {
    /// None when no Mux credentials are configured.
    pub fn from_config(settings: &MuxSettings) -> Result<Option<MuxLive>, MuxError> {
        if !settings.has_credentials() {
            return Ok(None);
        }
        let mut config = MuxConfig::new(settings.token_id.clone(), settings.token_secret.clone());
        config.base_url = settings.base_url.to_string();
        Ok(Some(MuxLive {
            client: MuxClient::new(config)?,
            ingest_url: settings.ingest_url.trim_end_matches('/').to_string(),
            test: settings.test,
        }))
    }

    /// Creates the live stream with public playback and public recordings.
    /// The livestream id rides along as `passthrough`, which is what keeps a
    /// retried create from making a second stream.
    pub async fn create(
        &self,
        livestream: Uuid,
        latency_mode: &str,
        max_duration_secs: Option<u32>,
    ) -> Result<MuxStream, MuxError> {
        let request = CreateLiveStream {
            playback_policies: vec![PlaybackPolicy::Public],
            new_asset_settings: Some(NewAssetSettings {
                playback_policies: vec![PlaybackPolicy::Public],
                passthrough: Some(livestream.to_string()),
                ..NewAssetSettings::default()
            }),
            latency_mode: Some(latency(latency_mode)),
            reconnect_window: Some(RECONNECT_WINDOW_SECS),
            max_continuous_duration: max_duration_secs.map(u64::from),
            passthrough: Some(livestream.to_string()),
            test: self.test.then_some(true),
            ..CreateLiveStream::default()
        };
        let stream = self.client.live_streams().create(&request).await?;
        Ok(MuxStream {
            playback_id: stream.playback_ids.first().map(|p| p.id.clone()),
            id: stream.id,
            stream_key: stream.stream_key,
        })
    }

    /// Where the program goes: the configured ingest plus the stream key.
    pub fn destination(&self, stream_key: &Secret) -> Destination {
        Destination {
            kind: DestinationType::Mux,
            base_url: self.ingest_url.clone(),
            stream_key: Some(stream_key.clone()),
        }
    }

    /// Tells Mux the broadcast is over, so the recording is finalized now
    /// rather than after the reconnect window.
    pub async fn complete(&self, live_stream_id: &str) -> Result<(), MuxError> {
        self.client.live_streams().complete(live_stream_id).await
    }

    /// The recording so far, when Mux has one: the stream's newest asset.
    pub async fn recording(&self, live_stream_id: &str) -> Result<Option<MuxChange>, MuxError> {
        let stream = self.client.live_streams().retrieve(live_stream_id).await?;
        let Some(asset_id) = stream.recent_asset_ids.last() else {
            return Ok(None);
        };
        let asset = self.client.assets().retrieve(asset_id).await?;
        Ok(Some(asset_change(&asset)))
    }
}

fn latency(mode: &str) -> LatencyMode {
    match mode {
        "low" => LatencyMode::Low,
        "reduced" => LatencyMode::Reduced,
        _ => LatencyMode::Standard,
    }
}

fn asset_change(asset: &Asset) -> MuxChange {
    MuxChange {
        asset_id: Some(asset.id.clone()),
        asset_status: Some(asset.status.as_str().to_string()),
        vod_playback_id: asset.playback_ids.first().map(|p| p.id.clone()),
        vod_duration_secs: asset.duration,
        ..MuxChange::default()
    }
}

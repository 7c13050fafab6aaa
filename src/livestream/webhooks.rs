//! What webhooks from Mux and from rooms do to livestreams. They only ever
//! fill in Mux's side (status, asset, VOD playback) or stop a room's
//! livestream: none can move a livestream backwards in our state machine.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::service::{LivestreamError, LivestreamService};
use crate::mux::webhook::{AssetEventKind, MuxEvent, WebhookEvent, redacted};
use crate::store::{MuxChange, NewWebhookEvent};

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookOutcome {
    /// Seen before: nothing changed.
    pub duplicate: bool,
    /// The livestream it was about, if it is one of ours.
    pub livestream_id: Option<Uuid>,
}

impl LivestreamService {
    /// Stores a verified Mux event and applies it to its livestream (once).
    pub async fn handle_mux_event(
        &self,
        event: &WebhookEvent,
    ) -> Result<WebhookOutcome, LivestreamError> {
        let occurred_at = DateTime::parse_from_rfc3339(&event.created_at)
            .map(|t| t.with_timezone(&Utc))
            .ok();
        let (live_stream_id, passthrough, change) = match event.typed() {
            MuxEvent::LiveStream(live) => {
                let status = format!("{:?}", live.status).to_lowercase();
                let change = MuxChange {
                    status: Some((status, occurred_at.unwrap_or_else(Utc::now))),
                    ..MuxChange::default()
                };
                (Some(live.live_stream_id), live.passthrough, Some(change))
            }
            MuxEvent::Asset(asset) => {
                let mut change = MuxChange {
                    asset_id: Some(asset.asset_id.clone()),
                    asset_status: asset.status.map(|s| format!("{s:?}").to_lowercase()),
                    ..MuxChange::default()
                };
                match asset.kind {
                    AssetEventKind::Ready => {
                        change.vod_playback_id = asset.playback_ids.first().map(|p| p.id.clone());
                        change.vod_duration_secs = asset.duration;
                    }
                    AssetEventKind::Errored => {
                        change.asset_error = Some(
                            asset
                                .errors
                                .as_ref()
                                .map(|e| e.messages.join("; "))
                                .filter(|m| !m.is_empty())
                                .unwrap_or_else(|| "Mux reported the asset as errored".into()),
                        );
                    }
                    AssetEventKind::Created | AssetEventKind::LiveStreamCompleted => {}
                }
                (asset.live_stream_id, asset.passthrough, Some(change))
            }
            MuxEvent::Other { .. } => (None, None, None),
        };
        let passthrough = passthrough.and_then(|p| p.parse::<Uuid>().ok());
        let livestream = self
            .store()
            .livestream_for_mux(live_stream_id.as_deref(), passthrough)
            .await?;
        let livestream_id = livestream.map(|row| row.id);
        let stored = NewWebhookEvent {
            source: "mux",
            id: event.id.clone(),
            event_type: event.event_type.clone(),
            object_id: Some(event.object.id.clone()),
            livestream_id,
            payload: redacted(&serde_json::json!({
                "type": event.event_type,
                "object": { "type": event.object.kind, "id": event.object.id },
                "created_at": event.created_at,
                "data": event.data,
            })),
            occurred_at,
        };
        let fresh = self
            .store()
            .record_webhook(&stored, change.as_ref())
            .await?;
        tracing::info!(event = %event.event_type, id = %event.id, livestream = ?livestream_id, duplicate = !fresh, "Mux webhook");
        Ok(WebhookOutcome {
            duplicate: !fresh,
            livestream_id,
        })
    }

    /// Stores a verified room event (LiveKit webhook format); `room_finished`
    /// stops the room's livestream.
    pub async fn handle_room_event(
        self: &std::sync::Arc<Self>,
        body: &serde_json::Value,
    ) -> Result<WebhookOutcome, LivestreamError> {
        let event = body["event"].as_str().unwrap_or_default().to_string();
        let room = body["room"]["name"].as_str().map(str::to_string);
        let id = body["id"].as_str().map(str::to_string).unwrap_or_else(|| {
            format!(
                "{event}:{}:{}",
                room.clone().unwrap_or_default(),
                body["createdAt"]
            )
        });
        let open = match &room {
            Some(room) => self.store().open_livestream_for_room(room).await?,
            None => None,
        };
        let stored = NewWebhookEvent {
            source: "livekit",
            id,
            event_type: event.clone(),
            object_id: room.clone(),
            livestream_id: open.as_ref().map(|row| row.id),
            payload: body.clone(),
            occurred_at: body["createdAt"]
                .as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| body["createdAt"].as_i64())
                .and_then(|secs| DateTime::from_timestamp(secs, 0)),
        };
        let fresh = self.store().record_webhook(&stored, None).await?;
        let livestream_id = open.as_ref().map(|row| row.id);
        if fresh
            && event == "room_finished"
            && let Some(row) = open
        {
            tracing::info!(room = %row.room_name, livestream = %row.id, "room finished: stopping its livestream");
            self.stop_for_room_end(row.id).await?;
        }
        Ok(WebhookOutcome {
            duplicate: !fresh,
            livestream_id,
        })
    }
}

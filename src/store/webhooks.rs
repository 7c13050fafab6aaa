use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::livestreams::LivestreamRow;
use super::{Store, StoreError};

/// A webhook as stored.
#[derive(Debug, Clone)]
pub struct NewWebhookEvent {
    pub source: &'static str,
    pub id: String,
    pub event_type: String,
    pub object_id: Option<String>,
    pub livestream_id: Option<Uuid>,
    pub payload: serde_json::Value,
    pub occurred_at: Option<DateTime<Utc>>,
}

/// What a Mux event changes on its livestream's row (`None` = leave as is).
#[derive(Debug, Clone, Default)]
pub struct MuxChange {
    /// The Mux live stream status and when Mux reported it.
    pub status: Option<(String, DateTime<Utc>)>,
    pub asset_id: Option<String>,
    pub asset_status: Option<String>,
    pub asset_error: Option<String>,
    pub vod_playback_id: Option<String>,
    pub vod_duration_secs: Option<f64>,
}

impl Store {
    /// Applies what Mux says (e.g. an asset looked up at stop) to a livestream.
    pub async fn apply_mux_change(&self, id: Uuid, change: &MuxChange) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        apply_mux_change(&mut tx, id, change).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a webhook and applies `change` to its livestream, atomically.
    /// Returns `false` (and changes nothing) when the event was seen before.
    pub async fn record_webhook(
        &self,
        event: &NewWebhookEvent,
        change: Option<&MuxChange>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO webhook_events (source, id, event_type, object_id, livestream_id, payload, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (source, id) DO NOTHING",
        )
        .bind(event.source)
        .bind(&event.id)
        .bind(&event.event_type)
        .bind(&event.object_id)
        .bind(event.livestream_id)
        .bind(&event.payload)
        .bind(event.occurred_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(false);
        }
        if let (Some(change), Some(id)) = (change, event.livestream_id) {
            apply_mux_change(&mut tx, id, change).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The livestream a Mux object belongs to: by live stream id, else by
    /// `passthrough` (onair's livestream id).
    pub async fn livestream_for_mux(
        &self,
        live_stream_id: Option<&str>,
        passthrough: Option<Uuid>,
    ) -> Result<Option<LivestreamRow>, StoreError> {
        Ok(sqlx::query_as::<_, LivestreamRow>(
            "SELECT * FROM livestreams
             WHERE ($1::text IS NOT NULL AND mux_live_stream_id = $1) OR id = $2
             ORDER BY (mux_live_stream_id = $1) DESC NULLS LAST LIMIT 1",
        )
        .bind(live_stream_id)
        .bind(passthrough)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Webhook ids and types received for a livestream, oldest first.
    pub async fn webhooks_of(
        &self,
        livestream_id: Uuid,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as::<_, (String, String)>(
            "SELECT id, event_type FROM webhook_events WHERE livestream_id = $1 ORDER BY received_at, id",
        )
        .bind(livestream_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

async fn apply_mux_change(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    change: &MuxChange,
) -> Result<(), StoreError> {
    if let Some((status, at)) = &change.status {
        sqlx::query(
            "UPDATE livestreams SET mux_status = $2, mux_status_at = $3, updated_at = now()
             WHERE id = $1 AND (mux_status_at IS NULL OR mux_status_at <= $3)",
        )
        .bind(id)
        .bind(status)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE livestreams SET
            mux_asset_id = COALESCE($2, mux_asset_id),
            mux_asset_status = COALESCE($3, mux_asset_status),
            mux_asset_error = COALESCE($4, mux_asset_error),
            vod_playback_id = COALESCE($5, vod_playback_id),
            vod_duration_secs = COALESCE($6, vod_duration_secs),
            updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&change.asset_id)
    .bind(&change.asset_status)
    .bind(&change.asset_error)
    .bind(&change.vod_playback_id)
    .bind(change.vod_duration_secs)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

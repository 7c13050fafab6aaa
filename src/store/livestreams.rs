use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::outputs::{NewOutput, insert_outputs};
use super::{Store, StoreError, classify};

#[derive(Debug, Clone, FromRow)]
pub struct LivestreamRow {
    pub id: Uuid,
    pub user_id: String,
    pub room_name: String,
    pub status: String,
    pub layout: String,
    pub preset: String,
    pub width: i32,
    pub height: i32,
    pub fps: i32,
    pub video_bitrate_kbps: i32,
    pub latency_mode: String,
    pub max_duration_secs: Option<i32>,
    pub mux_live_stream_id: Option<String>,
    pub mux_playback_id: Option<String>,
    pub mux_stream_key: Option<String>,
    pub mux_asset_id: Option<String>,
    pub vod_playback_id: Option<String>,
    pub mux_status: Option<String>,
    pub mux_status_at: Option<DateTime<Utc>>,
    pub mux_asset_status: Option<String>,
    pub mux_asset_error: Option<String>,
    pub vod_duration_secs: Option<f64>,
    pub error: Option<String>,
    pub owner_node: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub media: String,
    /// `EG_…`: the livestream as a LiveKit egress.
    pub egress_id: String,
    /// The API key of the caller that started it (None on rows from before).
    pub api_key: Option<String>,
    pub source_type: String,
    pub audio_bitrate_kbps: i32,
    pub keyframe_interval_secs: f64,
    /// A participant egress's participant.
    pub source_identity: Option<String>,
    pub source_screen_share: bool,
    /// A track composite egress's tracks.
    pub source_audio_track: Option<String>,
    pub source_video_track: Option<String>,
    pub stop_reason: Option<String>,
    pub room_sid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewLivestream {
    pub id: Uuid,
    pub user_id: String,
    pub room_name: String,
    pub layout: String,
    pub preset: String,
    pub width: i32,
    pub height: i32,
    pub fps: i32,
    pub video_bitrate_kbps: i32,
    pub latency_mode: String,
    pub max_duration_secs: Option<i32>,
    pub owner_node: String,
    /// `audio_video`, `audio_only` or `video_only`.
    pub media: String,
    pub egress_id: String,
    pub api_key: String,
    pub source_type: String,
    pub audio_bitrate_kbps: i32,
    pub keyframe_interval_secs: f64,
    pub source_identity: Option<String>,
    pub source_screen_share: bool,
    pub source_audio_track: Option<String>,
    pub source_video_track: Option<String>,
    pub room_sid: Option<String>,
}

/// Column changes that ride along with a status change.
#[derive(Debug, Clone, Default)]
pub struct TransitionChanges {
    pub error: Option<String>,
    pub stamp_started_at: bool,
    pub stamp_ended_at: bool,
}

#[derive(Debug)]
pub enum TransitionOutcome {
    Applied {
        from: String,
        row: Box<LivestreamRow>,
    },
    /// The row is in `current`, from which this transition is not allowed; nothing changed.
    NotAllowed {
        current: String,
    },
    NotFound,
}

/// Statuses a livestream can still leave; the partial unique index uses the same set.
pub const OPEN_STATUSES: [&str; 4] = ["idle", "starting", "active", "stopping"];

impl Store {
    /// Inserts the livestream (status `idle`), its outputs and the creation event in
    /// one transaction. A room that already has an open livestream → `Conflict`.
    pub async fn create_livestream(
        &self,
        new: &NewLivestream,
        outputs: &[NewOutput],
    ) -> Result<LivestreamRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as::<_, LivestreamRow>(
            "INSERT INTO livestreams (id, user_id, room_name, status, layout, preset, width, height, fps,
                video_bitrate_kbps, latency_mode, max_duration_secs, owner_node, media, egress_id,
                api_key, source_type, audio_bitrate_kbps, keyframe_interval_secs, source_identity,
                source_screen_share, source_audio_track, source_video_track, room_sid)
             VALUES ($1, $2, $3, 'idle', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                $16, $17, $18, $19, $20, $21, $22, $23)
             RETURNING *",
        )
        .bind(new.id)
        .bind(&new.user_id)
        .bind(&new.room_name)
        .bind(&new.layout)
        .bind(&new.preset)
        .bind(new.width)
        .bind(new.height)
        .bind(new.fps)
        .bind(new.video_bitrate_kbps)
        .bind(&new.latency_mode)
        .bind(new.max_duration_secs)
        .bind(&new.owner_node)
        .bind(&new.media)
        .bind(&new.egress_id)
        .bind(&new.api_key)
        .bind(&new.source_type)
        .bind(new.audio_bitrate_kbps)
        .bind(new.keyframe_interval_secs)
        .bind(&new.source_identity)
        .bind(new.source_screen_share)
        .bind(&new.source_audio_track)
        .bind(&new.source_video_track)
        .bind(&new.room_sid)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        insert_outputs(&mut tx, new.id, outputs).await?;
        insert_event(&mut tx, new.id, None, "idle", "created").await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Moves a livestream to `to` if its current status is one of `allowed_from`:
    /// the row is locked, then changed with a conditional UPDATE, and the event row
    /// is written, all in one transaction. Of two racing callers exactly one wins.
    pub async fn transition(
        &self,
        id: Uuid,
        allowed_from: &[&str],
        to: &str,
        reason: &str,
        changes: &TransitionChanges,
    ) -> Result<TransitionOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM livestreams WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(current) = current else {
            return Ok(TransitionOutcome::NotFound);
        };
        if !allowed_from.contains(&current.as_str()) {
            return Ok(TransitionOutcome::NotAllowed { current });
        }
        let row = sqlx::query_as::<_, LivestreamRow>(
            "UPDATE livestreams SET
                status = $2,
                error = COALESCE($4, error),
                started_at = CASE WHEN $5 THEN COALESCE(started_at, now()) ELSE started_at END,
                ended_at = CASE WHEN $6 THEN now() ELSE ended_at END,
                stop_reason = CASE WHEN $2 = 'stopping' THEN $7 ELSE stop_reason END,
                updated_at = now()
             WHERE id = $1 AND status = $3
             RETURNING *",
        )
        .bind(id)
        .bind(to)
        .bind(&current)
        .bind(&changes.error)
        .bind(changes.stamp_started_at)
        .bind(changes.stamp_ended_at)
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            // Unreachable while the row lock is held; answer as a lost race all the same.
            return Ok(TransitionOutcome::NotAllowed { current });
        };
        insert_event(&mut tx, id, Some(&current), to, reason).await?;
        tx.commit().await?;
        Ok(TransitionOutcome::Applied {
            from: current,
            row: Box::new(row),
        })
    }

    pub async fn livestream_by_egress_id(
        &self,
        egress_id: &str,
    ) -> Result<Option<LivestreamRow>, StoreError> {
        Ok(
            sqlx::query_as::<_, LivestreamRow>("SELECT * FROM livestreams WHERE egress_id = $1")
                .bind(egress_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// ListEgress: an API key's livestreams, newest first, optionally of one
    /// room, one egress, or only those that have not ended.
    pub async fn list_egresses(
        &self,
        api_key: &str,
        room_name: Option<&str>,
        egress_id: Option<&str>,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<LivestreamRow>, StoreError> {
        Ok(sqlx::query_as::<_, LivestreamRow>(
            "SELECT * FROM livestreams
             WHERE api_key = $1
               AND ($2::text IS NULL OR room_name = $2)
               AND ($3::text IS NULL OR egress_id = $3)
               AND (NOT $4 OR status = ANY($5))
             ORDER BY created_at DESC LIMIT $6",
        )
        .bind(api_key)
        .bind(room_name)
        .bind(egress_id)
        .bind(open_only)
        .bind(&OPEN_STATUSES[..])
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn livestream(&self, id: Uuid) -> Result<Option<LivestreamRow>, StoreError> {
        Ok(
            sqlx::query_as::<_, LivestreamRow>("SELECT * FROM livestreams WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The room's livestream that has not ended yet, if any.
    pub async fn open_livestream_for_room(
        &self,
        room_name: &str,
    ) -> Result<Option<LivestreamRow>, StoreError> {
        Ok(sqlx::query_as::<_, LivestreamRow>(
            "SELECT * FROM livestreams
             WHERE room_name = $1 AND status = ANY($2) AND source_type = 'room_composite'",
        )
        .bind(room_name)
        .bind(&OPEN_STATUSES[..])
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The newest livestream of `user_id` in `room_name` (open ones first).
    pub async fn latest_livestream_for_room(
        &self,
        user_id: &str,
        room_name: &str,
    ) -> Result<Option<LivestreamRow>, StoreError> {
        Ok(sqlx::query_as::<_, LivestreamRow>(
            "SELECT * FROM livestreams WHERE user_id = $1 AND room_name = $2
             ORDER BY (status = ANY($3)) DESC, (source_type = 'room_composite') DESC,
                created_at DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(room_name)
        .bind(&OPEN_STATUSES[..])
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A user's livestreams, newest first, optionally in one room.
    pub async fn list_livestreams(
        &self,
        user_id: &str,
        room_name: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LivestreamRow>, StoreError> {
        Ok(sqlx::query_as::<_, LivestreamRow>(
            "SELECT * FROM livestreams WHERE user_id = $1 AND ($2::text IS NULL OR room_name = $2)
             ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(user_id)
        .bind(room_name)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Livestreams this node owned that had not ended (for reconciliation at start).
    pub async fn open_livestreams_owned_by(
        &self,
        node: &str,
    ) -> Result<Vec<LivestreamRow>, StoreError> {
        Ok(sqlx::query_as::<_, LivestreamRow>(
            "SELECT * FROM livestreams WHERE owner_node = $1 AND status = ANY($2) ORDER BY created_at",
        )
        .bind(node)
        .bind(&OPEN_STATUSES[..])
        .fetch_all(&self.pool)
        .await?)
    }

    /// The Mux live stream a livestream sends to (its key kept apart, as stream keys are).
    pub async fn set_mux_live_stream(
        &self,
        id: Uuid,
        live_stream_id: &str,
        playback_id: Option<&str>,
        stream_key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE livestreams SET mux_live_stream_id = $2, mux_playback_id = $3,
                mux_stream_key = $4, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(live_stream_id)
        .bind(playback_id)
        .bind(stream_key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many livestreams are in each state (for metrics).
    pub async fn livestream_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM livestreams GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn set_layout(&self, id: Uuid, layout: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE livestreams SET layout = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(layout)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

pub(super) async fn insert_event(
    tx: &mut sqlx::PgConnection,
    livestream_id: Uuid,
    from: Option<&str>,
    to: &str,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO livestream_events (livestream_id, from_status, to_status, reason)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(livestream_id)
    .bind(from)
    .bind(to)
    .bind(reason)
    .execute(tx)
    .await?;
    Ok(())
}

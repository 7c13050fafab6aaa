use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{Store, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct OutputRow {
    pub id: Uuid,
    pub seq: i64,
    pub livestream_id: Uuid,
    pub kind: String,
    pub destination_type: Option<String>,
    pub name: String,
    pub url: String,
    pub stream_key: Option<String>,
    pub status: String,
    pub last_error: Option<String>,
    pub retries: i32,
    pub bytes_sent: i64,
    /// `s3://bucket/key` of the uploaded file, once the store confirmed it.
    pub uploaded_to: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub object_key: Option<String>,
    pub items: i64,
}

#[derive(Debug, Clone)]
pub struct NewOutput {
    pub id: Uuid,
    pub kind: String,
    pub destination_type: Option<String>,
    pub name: String,
    /// The URL with its secret part removed.
    pub url: String,
    pub stream_key: Option<String>,
    /// Where an upload of this file goes, when the request named it.
    pub object_key: Option<String>,
}

/// A health report for one output; `None` fields keep their stored value.
#[derive(Debug, Clone, Default)]
pub struct OutputUpdate {
    pub status: Option<String>,
    pub last_error: Option<String>,
    pub add_retries: i32,
    pub bytes_sent: Option<i64>,
    /// Images or HLS segments made so far.
    pub items: Option<i64>,
}

pub(super) async fn insert_outputs(
    tx: &mut sqlx::PgConnection,
    livestream_id: Uuid,
    outputs: &[NewOutput],
) -> Result<(), StoreError> {
    for output in outputs {
        sqlx::query(
            "INSERT INTO livestream_outputs (id, livestream_id, kind, destination_type, name, url, stream_key, object_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(output.id)
        .bind(livestream_id)
        .bind(&output.kind)
        .bind(&output.destination_type)
        .bind(&output.name)
        .bind(&output.url)
        .bind(&output.stream_key)
        .bind(&output.object_key)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Outputs of several livestreams at once (for list pages), in creation order.
    pub async fn outputs_of(&self, livestream_ids: &[Uuid]) -> Result<Vec<OutputRow>, StoreError> {
        Ok(sqlx::query_as::<_, OutputRow>(
            "SELECT * FROM livestream_outputs WHERE livestream_id = ANY($1) ORDER BY seq",
        )
        .bind(livestream_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn add_outputs(
        &self,
        livestream_id: Uuid,
        outputs: &[NewOutput],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_outputs(&mut tx, livestream_id, outputs).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_output(&self, id: Uuid, update: &OutputUpdate) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE livestream_outputs SET
                status = COALESCE($2, status),
                last_error = COALESCE($3, last_error),
                retries = retries + $4,
                bytes_sent = COALESCE($5, bytes_sent),
                items = COALESCE($6, items),
                updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(&update.status)
        .bind(&update.last_error)
        .bind(update.add_retries)
        .bind(update.bytes_sent)
        .bind(update.items)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_output_uploaded(&self, id: Uuid, object: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE livestream_outputs SET uploaded_to = $2, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(object)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks every output of a livestream that is still running as `status`.
    pub async fn finish_outputs(
        &self,
        livestream_id: Uuid,
        status: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE livestream_outputs SET status = $2, updated_at = now()
             WHERE livestream_id = $1 AND status IN ('pending', 'connecting', 'live', 'retrying')",
        )
        .bind(livestream_id)
        .bind(status)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{Store, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: i64,
    pub livestream_id: Uuid,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl Store {
    /// A livestream's transitions in the order they happened.
    pub async fn events(&self, livestream_id: Uuid) -> Result<Vec<EventRow>, StoreError> {
        Ok(sqlx::query_as::<_, EventRow>(
            "SELECT * FROM livestream_events WHERE livestream_id = $1 ORDER BY id",
        )
        .bind(livestream_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

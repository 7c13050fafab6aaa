//! Object storage: an S3-compatible bucket for HLS segments and uploaded
//! recordings, object keys from templates, and retrying until the store
//! takes an object.

mod path;
mod s3;

use std::future::Future;
use std::time::Duration;

pub use path::ObjectPath;
pub use s3::{ObjectStore, StorageError};

use crate::config::StorageConfig;

/// The configured bucket and what goes into it.
#[derive(Debug, Clone)]
pub struct Storage {
    pub store: ObjectStore,
    pub config: StorageConfig,
}

impl Storage {
    /// None when no bucket is configured.
    pub fn from_config(config: &StorageConfig) -> Option<Storage> {
        Some(Storage {
            store: ObjectStore::from_config(config)?,
            config: config.clone(),
        })
    }
}

const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Runs `attempt` until it succeeds, waiting 0.5 s, 1 s, 2 s … 10 s between
/// failures: uploads never give up while the process lives (what is not yet
/// uploaded stays on local disk, and is resumed after a restart).
/// `kind` labels the upload metric (`hls_segment`, `hls_playlist`, `mp4`).
pub async fn until_stored<F, Fut>(kind: &str, what: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), StorageError>>,
{
    let mut delay = FIRST_RETRY;
    let mut failures = 0u32;
    loop {
        let result = attempt().await;
        crate::metrics::object_upload(kind, result.is_ok());
        match result {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(%what, failures, "object store took it after retries");
                }
                return;
            }
            Err(error) => {
                failures += 1;
                // Every failure is logged at first, then one in ten.
                if failures <= 3 || failures.is_multiple_of(10) {
                    tracing::warn!(%what, %error, failures, retry_in = ?delay, "upload failed; retrying");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY);
            }
        }
    }
}

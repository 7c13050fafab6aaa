//! Uploading finished MP4 recordings to object storage. A marker file next to
//! the recording (`<file>.upload`, holding the object key) is written before
//! the first attempt and removed with the local file once the store confirms
//! the upload, so a restart finds and finishes every interrupted upload.

use std::path::{Path, PathBuf};

use crate::storage::{ObjectStore, until_stored};

const MARKER_SUFFIX: &str = "upload";

fn marker_of(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".{MARKER_SUFFIX}"));
    PathBuf::from(name)
}

/// Uploads `file` to `key`, retrying until the store takes it, then deletes
/// the local copy. Returns the object's `s3://` address. A `resumable`
/// upload leaves a marker so a restart finishes it (into the server's
/// bucket: uploads to other buckets are not resumable).
pub async fn upload_recording(
    store: &ObjectStore,
    file: &Path,
    key: &str,
    resumable: bool,
) -> std::io::Result<String> {
    if resumable {
        std::fs::write(marker_of(file), key)?;
    }
    finish(store, file, key).await;
    Ok(store.describe(key))
}

async fn finish(store: &ObjectStore, file: &Path, key: &str) {
    let what = store.describe(key);
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("ogg") => "audio/ogg",
        Some("webm") => "video/webm",
        _ => "video/mp4",
    };
    until_stored("mp4", &what, || store.put_file(key, file, content_type)).await;
    tracing::info!(recording = %file.display(), object = %what, "recording uploaded; local copy removed");
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(marker_of(file));
}

/// Finishes the uploads a previous run left in `dir` and its
/// subdirectories (an egress's `filepath` may name one), but not in the
/// HLS working directories.
pub fn resume_all(dir: &Path, store: &ObjectStore) -> Vec<tokio::task::JoinHandle<()>> {
    let mut markers = Vec::new();
    find_markers(dir, &mut markers);
    let mut tasks = Vec::new();
    for marker in markers {
        let file = marker.with_extension("");
        let Ok(key) = std::fs::read_to_string(&marker) else {
            continue;
        };
        if !file.exists() {
            // Uploaded and deleted; only the marker's removal was cut short.
            let _ = std::fs::remove_file(&marker);
            continue;
        }
        tracing::info!(recording = %file.display(), object = %store.describe(&key), "resuming an unfinished recording upload");
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            finish(&store, &file, key.trim()).await
        }));
    }
    tasks
}

fn find_markers(dir: &Path, markers: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        let name = path.file_name().unwrap_or_default();
        if path.is_dir() && name != "hls" && name != "hls-request" {
            find_markers(&path, markers);
        } else if path.extension().is_some_and(|e| e == MARKER_SUFFIX) {
            markers.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_sits_next_to_the_file() {
        assert_eq!(
            marker_of(Path::new("/r/demo-1.mp4")),
            PathBuf::from("/r/demo-1.mp4.upload")
        );
        assert_eq!(
            marker_of(Path::new("/r/demo-1.mp4")).with_extension(""),
            PathBuf::from("/r/demo-1.mp4")
        );
    }
}

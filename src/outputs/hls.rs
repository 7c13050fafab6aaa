//! Publishing an HLS output to object storage. The GStreamer bin cuts
//! keyframe-aligned MPEG-TS segments into a local directory; this task uploads
//! each segment as it closes, then the live playlist, and at the end the VOD
//! playlist. The local directory is the spill: a segment is deleted only once
//! the store has it, so a store outage (or a crash) loses nothing — uploads
//! resume when the store returns or the service restarts.
//!
//! ```text
//! <recordings>/hls/<livestream id>/
//!     upload.json      where the objects go (written first)
//!     playlist.m3u8    every closed segment, with durations (the local record)
//!     segment00042.ts  closed, not yet uploaded
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::playlist::{self, Segment};
use crate::storage::{ObjectStore, until_stored};

const JOB_FILE: &str = "upload.json";
const PLAYLIST: &str = "playlist.m3u8";

/// Where an HLS output's segments are cut and where they are published.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HlsJob {
    /// The local working directory.
    #[serde(skip)]
    pub dir: PathBuf,
    /// Object key prefix; the playlist is `<prefix>/<playlist_name>`.
    pub prefix: String,
    pub segment_secs: u32,
    /// The full playlist (EVENT while live, VOD at the end).
    #[serde(default = "default_playlist_name")]
    pub playlist_name: String,
    /// Also a sliding-window live playlist under this name.
    #[serde(default)]
    pub live_playlist_name: Option<String>,
}

pub const DEFAULT_PLAYLIST_NAME: &str = PLAYLIST;

fn default_playlist_name() -> String {
    PLAYLIST.to_string()
}

/// Hands closed segments to the publishing task; `None` ends the output
/// (so does dropping every clone): the VOD playlist follows the last segment.
#[derive(Debug, Clone)]
pub struct HlsSegments(mpsc::UnboundedSender<Option<Segment>>);

impl HlsSegments {
    pub fn closed(&self, segment: Segment) {
        let _ = self.0.send(Some(segment));
    }

    /// The last segment has closed.
    pub fn end(&self) {
        let _ = self.0.send(None);
    }
}

impl HlsJob {
    pub fn playlist_key(&self) -> String {
        format!("{}/{}", self.prefix, self.playlist_name)
    }

    pub fn live_playlist_key(&self) -> Option<String> {
        self.live_playlist_name
            .as_ref()
            .map(|name| format!("{}/{name}", self.prefix))
    }

    /// Records the job on disk and starts publishing; segments are handed
    /// over through the returned sender.
    pub fn start(
        self,
        store: ObjectStore,
    ) -> std::io::Result<(HlsSegments, tokio::task::JoinHandle<()>)> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(
            self.dir.join(JOB_FILE),
            serde_json::to_vec_pretty(&self).map_err(std::io::Error::other)?,
        )?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(Publisher::new(self, store, Vec::new()).run(Some(rx)));
        Ok((HlsSegments(tx), task))
    }

    /// Finishes the publishing of every HLS directory a previous run left
    /// under `root` (a crash or restart mid-upload): its segments, then a VOD
    /// playlist.
    pub fn resume_all(root: &Path, store: &ObjectStore) -> Vec<tokio::task::JoinHandle<()>> {
        let Ok(entries) = std::fs::read_dir(root) else {
            return Vec::new();
        };
        let mut tasks = Vec::new();
        for dir in entries.filter_map(Result::ok).map(|e| e.path()) {
            let Ok(job) = std::fs::read(dir.join(JOB_FILE)) else {
                continue;
            };
            let Ok(mut job) = serde_json::from_slice::<HlsJob>(&job) else {
                tracing::warn!(dir = %dir.display(), "unreadable HLS upload job; left on disk");
                continue;
            };
            job.dir = dir;
            let segments = std::fs::read_to_string(job.dir.join(PLAYLIST))
                .map(|text| playlist::parse(&text))
                .unwrap_or_default();
            tracing::info!(
                playlist = %store.describe(&job.playlist_key()),
                segments = segments.len(),
                "resuming an unfinished HLS upload"
            );
            tasks.push(tokio::spawn(
                Publisher::new(job, store.clone(), segments).run(None),
            ));
        }
        tasks
    }
}

struct Publisher {
    job: HlsJob,
    store: ObjectStore,
    /// Every closed segment, in order.
    segments: Vec<Segment>,
    /// How many of them the store has.
    uploaded: usize,
    ended: bool,
}

impl Publisher {
    fn new(job: HlsJob, store: ObjectStore, segments: Vec<Segment>) -> Publisher {
        Publisher {
            job,
            store,
            segments,
            uploaded: 0,
            ended: false,
        }
    }

    /// `segments: None` = nothing more will come (resuming after a restart).
    async fn run(mut self, mut incoming: Option<mpsc::UnboundedReceiver<Option<Segment>>>) {
        if incoming.is_none() {
            self.ended = true;
        }
        let mut final_playlist_stored = false;
        loop {
            // Take whatever closed while the last upload ran.
            while let Some(rx) = incoming.as_mut() {
                match rx.try_recv() {
                    Ok(Some(segment)) => self.add(segment),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Ok(None) | Err(mpsc::error::TryRecvError::Disconnected) => {
                        incoming = None;
                        self.end();
                    }
                }
            }
            if self.uploaded < self.segments.len() {
                self.upload_next().await;
                final_playlist_stored = self.store_playlist().await;
                continue;
            }
            if self.ended {
                // Nothing was cut (a go-live that failed at once): nothing to publish.
                if !final_playlist_stored && !self.segments.is_empty() {
                    self.store_playlist().await;
                }
                break;
            }
            match incoming.as_mut() {
                Some(rx) => match rx.recv().await {
                    Some(Some(segment)) => self.add(segment),
                    Some(None) | None => {
                        incoming = None;
                        self.end();
                    }
                },
                None => self.end(),
            }
        }
        tracing::info!(
            playlist = %self.store.describe(&self.job.playlist_key()),
            segments = self.segments.len(),
            "HLS output published"
        );
        if let Err(error) = std::fs::remove_dir_all(&self.job.dir) {
            tracing::warn!(dir = %self.job.dir.display(), %error, "could not remove the HLS working directory");
        }
    }

    fn add(&mut self, segment: Segment) {
        self.segments.push(segment);
        self.write_local_playlist();
    }

    fn end(&mut self) {
        self.ended = true;
        self.write_local_playlist();
    }

    /// The local record, rewritten as segments close, is what a restart resumes from.
    fn write_local_playlist(&self) {
        let text = playlist::render(&self.segments, self.job.segment_secs, self.ended);
        if let Err(error) = std::fs::write(self.job.dir.join(PLAYLIST), text) {
            tracing::warn!(dir = %self.job.dir.display(), %error, "could not write the local HLS playlist");
        }
    }

    async fn upload_next(&mut self) {
        let segment = &self.segments[self.uploaded];
        let path = self.job.dir.join(&segment.name);
        let key = format!("{}/{}", self.job.prefix, segment.name);
        if path.exists() {
            until_stored("hls_segment", &self.store.describe(&key), || {
                self.store.put_file(&key, &path, "video/mp2t")
            })
            .await;
            let _ = std::fs::remove_file(&path);
        }
        // A missing file was uploaded before a restart (files go only once stored).
        self.uploaded += 1;
    }

    /// Stores the playlist of the uploaded segments; VOD once everything is
    /// up and nothing more will come. Returns whether that was the final one.
    async fn store_playlist(&self) -> bool {
        let last = self.ended && self.uploaded == self.segments.len();
        let text = playlist::render(&self.segments[..self.uploaded], self.job.segment_secs, last);
        self.put_playlist(&self.job.playlist_key(), text).await;
        if let Some(key) = self.job.live_playlist_key() {
            let uploaded = &self.segments[..self.uploaded];
            let text = playlist::render_live(uploaded, self.job.segment_secs, last);
            self.put_playlist(&key, text).await;
        }
        last
    }

    async fn put_playlist(&self, key: &str, text: String) {
        until_stored("hls_playlist", &self.store.describe(key), || {
            self.store.put_bytes(
                key,
                text.clone().into_bytes(),
                "application/vnd.apple.mpegurl",
            )
        })
        .await;
    }
}

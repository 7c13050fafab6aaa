//! The dashboard's live player feed: the encoded program muxed once more as
//! fragmented MP4 — no second encode — and handed to any number of HTTP
//! viewers, who play it with Media Source Extensions. A viewer who joins
//! late gets the init segment and the fragments since the last video
//! keyframe, so its picture starts at once.
//!
//! ```text
//! video tee → queue (leaky) ┐
//! audio tee → queue (leaky) ┴→ mp4mux (fragmented, streamable) → appsink "live-preview"
//! ```

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::broadcast;

use super::{ComposerError, make};
use crate::livestream::PreviewFeed;
use crate::outputs::fmp4::{BoxSplitter, InitInfo, starts_with_keyframe};

/// Fragment length: about what the player lags behind the program. Video
/// fragments also end at every keyframe.
const FRAGMENT_MS: u32 = 500;
/// Fragments a viewer may fall behind before its stream is ended (the
/// player reconnects and starts again from a keyframe): about 16 s.
const VIEWER_BACKLOG: usize = 64;
/// At most this many fragments are kept for late joiners (a keyframe every
/// 2 s makes 8–10; the bound only matters if keyframes stop).
const MAX_SINCE_KEYFRAME: usize = 64;

pub struct LivePreview {
    hub: Mutex<Hub>,
}

#[derive(Default)]
struct Hub {
    splitter: BoxSplitter,
    ftyp: Vec<u8>,
    init: Option<(Bytes, InitInfo)>,
    moof: Option<Vec<u8>>,
    since_keyframe: Vec<Bytes>,
    /// `None` once the program has ended: every viewer's stream ends.
    sender: Option<broadcast::Sender<Bytes>>,
}

impl LivePreview {
    fn new() -> LivePreview {
        let hub = Hub {
            sender: Some(broadcast::channel(VIEWER_BACKLOG).0),
            ..Hub::default()
        };
        LivePreview {
            hub: Mutex::new(hub),
        }
    }

    /// A new viewer's feed; `None` before the muxer wrote its init segment
    /// and after the program ended.
    pub fn subscribe(&self) -> Option<PreviewFeed> {
        let hub = self.hub.lock().expect("live preview lock");
        let (init, info) = hub.init.as_ref()?;
        let live = hub.sender.as_ref()?.subscribe();
        let kind = if info.video_track.is_some() {
            "video"
        } else {
            "audio"
        };
        let mut start = vec![init.clone()];
        start.extend(hub.since_keyframe.iter().cloned());
        Some(PreviewFeed {
            content_type: format!("{kind}/mp4; codecs=\"{}\"", info.codecs.join(",")),
            start,
            live,
        })
    }

    /// Ends every viewer's stream; no new viewers.
    pub fn close(&self) {
        self.hub.lock().expect("live preview lock").sender = None;
    }

    /// Takes the muxer's output as it comes, in chunks of any size.
    fn push(&self, bytes: &[u8]) {
        let mut hub = self.hub.lock().expect("live preview lock");
        for (kind, whole) in hub.splitter.push(bytes) {
            match &kind {
                b"ftyp" => hub.ftyp = whole,
                b"moov" => {
                    let info = InitInfo::parse(&whole);
                    let init = [std::mem::take(&mut hub.ftyp), whole].concat();
                    hub.init = Some((Bytes::from(init), info));
                }
                b"moof" => hub.moof = Some(whole),
                b"mdat" => {
                    if let Some(moof) = hub.moof.take() {
                        hub.fragment(moof, whole);
                    }
                }
                // `mfra` at the end, and anything else: players need none.
                _ => {}
            }
        }
    }
}

impl Hub {
    fn fragment(&mut self, mut moof: Vec<u8>, mdat: Vec<u8>) {
        let video_track = self.init.as_ref().and_then(|(_, info)| info.video_track);
        // Audio alone can be started anywhere; video at a keyframe.
        let start_point = video_track.is_none_or(|track| starts_with_keyframe(&moof, track));
        if start_point || self.since_keyframe.len() >= MAX_SINCE_KEYFRAME {
            self.since_keyframe.clear();
        }
        moof.extend_from_slice(&mdat);
        let fragment = Bytes::from(moof);
        if start_point || !self.since_keyframe.is_empty() {
            self.since_keyframe.push(fragment.clone());
        }
        if let Some(sender) = &self.sender {
            // No viewers is not an error.
            let _ = sender.send(fragment);
        }
    }
}

/// Adds the muxing branch to the program's encoded streams (either may be
/// missing: audio-only and video-only programs).
pub fn attach(
    pipeline: &gst::Pipeline,
    video_tee: Option<&gst::Element>,
    audio_tee: Option<&gst::Element>,
) -> Result<Arc<LivePreview>, ComposerError> {
    let mux = make("mp4mux")?;
    mux.set_property("name", "live-preview-mux");
    mux.set_property("fragment-duration", FRAGMENT_MS);
    mux.set_property("streamable", true);
    let sink = make("appsink")?;
    sink.set_property("name", "live-preview");
    sink.set_property("sync", false);
    sink.set_property("async", false);
    pipeline.add_many([&mux, &sink])?;
    mux.link(&sink)?;
    for (tee, name) in [(video_tee, "video"), (audio_tee, "audio")] {
        let Some(tee) = tee else { continue };
        let queue = make("queue")?;
        queue.set_property("name", format!("live-preview-{name}-queue"));
        // Never hold the program up: a stuck branch drops, outputs go on.
        queue.set_property_from_str("leaky", "downstream");
        pipeline.add(&queue)?;
        tee.link(&queue)?;
        let pad = mux
            .request_pad_simple(&format!("{name}_%u"))
            .ok_or_else(|| ComposerError::Pipeline(format!("mp4mux refused a {name} pad")))?;
        queue
            .static_pad("src")
            .ok_or_else(|| ComposerError::Pipeline("queue has no src pad".into()))?
            .link(&pad)
            .map_err(|e| ComposerError::Pipeline(format!("linking the live preview: {e:?}")))?;
    }
    let preview = Arc::new(LivePreview::new());
    let feed = preview.clone();
    super::read_appsink(pipeline, "live-preview", move |_, bytes| feed.push(bytes))?;
    Ok(preview)
}

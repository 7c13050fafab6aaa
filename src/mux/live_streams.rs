//! `/video/v1/live-streams` operations.

use reqwest::Method;

use super::client::{Attempt, Call, MuxClient, decode_data, encode_body};
use super::error::MuxError;
use super::types::{
    CreateLiveStream, CreateSimulcastTarget, ListLiveStreams, LiveStream, SimulcastTarget,
    UpdateLiveStream,
};

const LIVE_STREAMS: [&str; 3] = ["video", "v1", "live-streams"];

/// Page size used when looking a live stream up by `passthrough`.
const LOOKUP_PAGE_SIZE: u32 = 100;

/// Pages (newest streams first) searched when looking up by `passthrough`.
const LOOKUP_MAX_PAGES: u32 = 5;

/// Live stream operations; from [`MuxClient::live_streams`].
#[derive(Debug, Clone, Copy)]
pub struct LiveStreams<'a> {
    client: &'a MuxClient,
}

impl<'a> LiveStreams<'a> {
    pub(crate) fn new(client: &'a MuxClient) -> LiveStreams<'a> {
        LiveStreams { client }
    }

    fn call<'s>(method: Method, segments: &'s [&'s str], body: Option<Vec<u8>>) -> Call<'s> {
        Call {
            method,
            segments,
            query: Vec::new(),
            body,
        }
    }

    /// `POST /video/v1/live-streams`.
    ///
    /// Never creates a duplicate: when an attempt fails in a way that may have
    /// created the stream anyway (a timeout or a 5xx), the next step first
    /// lists live streams and returns the one whose `passthrough` equals
    /// `req.passthrough`, if any, instead of posting again; the same lookup is
    /// made once more before giving up after the last attempt. Without a
    /// `passthrough` such a failure is returned at once, unretried. 408, 429
    /// and failed connections (the request was not processed) are retried
    /// without a lookup.
    pub async fn create(&self, req: &CreateLiveStream) -> Result<LiveStream, MuxError> {
        let body = encode_body(req)?;
        let call = Self::call(Method::POST, &LIVE_STREAMS, Some(body));
        let passthrough = req.passthrough.as_deref().filter(|p| !p.is_empty());
        let mut uncertain = false;
        let mut attempt = 1;
        loop {
            if uncertain
                && let Some(passthrough) = passthrough
                && let Some(existing) = self.find_by_passthrough(passthrough).await?
            {
                tracing::debug!(
                    live_stream_id = %existing.id,
                    attempt,
                    "mux create: reusing the live stream an earlier attempt created"
                );
                return Ok(existing);
            }
            match self.client.attempt(&call, attempt).await {
                Attempt::Done(result) => return decode_data(&result?),
                Attempt::Retry {
                    error,
                    retry_after,
                    may_have_applied,
                } => {
                    if may_have_applied {
                        if passthrough.is_none() {
                            // Without a passthrough a retry could make a second stream.
                            return Err(error);
                        }
                        uncertain = true;
                    }
                    let Some(delay) = MuxClient::retry_delay(attempt, retry_after) else {
                        // Out of attempts: the stream may exist all the same.
                        if uncertain
                            && let Some(passthrough) = passthrough
                            && let Ok(Some(existing)) = self.find_by_passthrough(passthrough).await
                        {
                            return Ok(existing);
                        }
                        return Err(error);
                    };
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// The newest live stream whose `passthrough` equals `passthrough`, if any.
    ///
    /// Mux cannot filter by `passthrough`, so this lists live streams (newest
    /// first, up to 500) and compares on this side.
    pub async fn find_by_passthrough(
        &self,
        passthrough: &str,
    ) -> Result<Option<LiveStream>, MuxError> {
        for page in 1..=LOOKUP_MAX_PAGES {
            let streams = self
                .list(&ListLiveStreams {
                    limit: Some(LOOKUP_PAGE_SIZE),
                    page: Some(page),
                    ..ListLiveStreams::default()
                })
                .await?;
            let short_page = streams.len() < LOOKUP_PAGE_SIZE as usize;
            if let Some(found) = streams
                .into_iter()
                .find(|s| s.passthrough.as_deref() == Some(passthrough))
            {
                return Ok(Some(found));
            }
            if short_page {
                break;
            }
        }
        Ok(None)
    }

    /// `GET /video/v1/live-streams/{id}`.
    pub async fn retrieve(&self, id: &str) -> Result<LiveStream, MuxError> {
        let segments = [LIVE_STREAMS[0], LIVE_STREAMS[1], LIVE_STREAMS[2], id];
        self.client
            .send_data(&Self::call(Method::GET, &segments, None))
            .await
    }

    /// `GET /video/v1/live-streams?limit=&page=&status=&stream_key=`: one page,
    /// newest first.
    pub async fn list(&self, query: &ListLiveStreams) -> Result<Vec<LiveStream>, MuxError> {
        let mut call = Self::call(Method::GET, &LIVE_STREAMS, None);
        if let Some(limit) = query.limit {
            call.query.push(("limit", limit.to_string()));
        }
        if let Some(page) = query.page {
            call.query.push(("page", page.to_string()));
        }
        if let Some(status) = query.status {
            call.query.push(("status", status.as_str().to_owned()));
        }
        if let Some(stream_key) = &query.stream_key {
            call.query
                .push(("stream_key", stream_key.expose().to_owned()));
        }
        self.client.send_data(&call).await
    }

    /// `PATCH /video/v1/live-streams/{id}`.
    pub async fn update(&self, id: &str, req: &UpdateLiveStream) -> Result<LiveStream, MuxError> {
        let segments = [LIVE_STREAMS[0], LIVE_STREAMS[1], LIVE_STREAMS[2], id];
        let body = encode_body(req)?;
        self.client
            .send_data(&Self::call(Method::PATCH, &segments, Some(body)))
            .await
    }

    /// `PUT /video/v1/live-streams/{id}/complete`: ends the current recording
    /// now instead of after the reconnect window (Mux closes the encoder
    /// connection 60 s later).
    pub async fn complete(&self, id: &str) -> Result<(), MuxError> {
        self.put_action(id, "complete").await
    }

    /// `PUT /video/v1/live-streams/{id}/disable`: rejects ingest until enabled
    /// and ends an active recording.
    pub async fn disable(&self, id: &str) -> Result<(), MuxError> {
        self.put_action(id, "disable").await
    }

    /// `PUT /video/v1/live-streams/{id}/enable`.
    pub async fn enable(&self, id: &str) -> Result<(), MuxError> {
        self.put_action(id, "enable").await
    }

    async fn put_action(&self, id: &str, action: &str) -> Result<(), MuxError> {
        let segments = [
            LIVE_STREAMS[0],
            LIVE_STREAMS[1],
            LIVE_STREAMS[2],
            id,
            action,
        ];
        self.client
            .send_unit(&Self::call(Method::PUT, &segments, None))
            .await
    }

    /// `DELETE /video/v1/live-streams/{id}`.
    pub async fn delete(&self, id: &str) -> Result<(), MuxError> {
        let segments = [LIVE_STREAMS[0], LIVE_STREAMS[1], LIVE_STREAMS[2], id];
        self.client
            .send_unit(&Self::call(Method::DELETE, &segments, None))
            .await
    }

    /// `POST /video/v1/live-streams/{id}/reset-stream-key`: the old key stops
    /// working at once.
    pub async fn reset_stream_key(&self, id: &str) -> Result<LiveStream, MuxError> {
        let segments = [
            LIVE_STREAMS[0],
            LIVE_STREAMS[1],
            LIVE_STREAMS[2],
            id,
            "reset-stream-key",
        ];
        self.client
            .send_data(&Self::call(Method::POST, &segments, None))
            .await
    }

    /// `POST /video/v1/live-streams/{id}/simulcast-targets` (only while the
    /// stream is idle).
    pub async fn create_simulcast_target(
        &self,
        id: &str,
        req: &CreateSimulcastTarget,
    ) -> Result<SimulcastTarget, MuxError> {
        let segments = [
            LIVE_STREAMS[0],
            LIVE_STREAMS[1],
            LIVE_STREAMS[2],
            id,
            "simulcast-targets",
        ];
        let body = encode_body(req)?;
        self.client
            .send_data(&Self::call(Method::POST, &segments, Some(body)))
            .await
    }

    /// `DELETE /video/v1/live-streams/{id}/simulcast-targets/{target_id}`
    /// (only while the stream is idle).
    pub async fn delete_simulcast_target(&self, id: &str, target_id: &str) -> Result<(), MuxError> {
        let segments = [
            LIVE_STREAMS[0],
            LIVE_STREAMS[1],
            LIVE_STREAMS[2],
            id,
            "simulcast-targets",
            target_id,
        ];
        self.client
            .send_unit(&Self::call(Method::DELETE, &segments, None))
            .await
    }
}

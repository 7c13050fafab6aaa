//! `/video/v1/assets` operations.

use reqwest::Method;

use super::client::{Call, MuxClient};
use super::error::MuxError;
use super::types::Asset;

/// Asset operations; from [`MuxClient::assets`].
#[derive(Debug, Clone, Copy)]
pub struct Assets<'a> {
    client: &'a MuxClient,
}

impl<'a> Assets<'a> {
    pub(crate) fn new(client: &'a MuxClient) -> Assets<'a> {
        Assets { client }
    }

    /// `GET /video/v1/assets/{id}`. Mux rate-limits this endpoint: follow
    /// assets through webhooks and call this only to reconcile.
    pub async fn retrieve(&self, id: &str) -> Result<Asset, MuxError> {
        let segments = ["video", "v1", "assets", id];
        self.client
            .send_data(&Call {
                method: Method::GET,
                segments: &segments,
                query: Vec::new(),
                body: None,
            })
            .await
    }
}

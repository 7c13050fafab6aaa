//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, written by
//! hand in `openapi/onair.json` and kept in sync with the routers by
//! `tests/openapi.rs`. Unauthenticated: it describes the API and holds no data.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

/// The document as served.
pub const OPENAPI_JSON: &str = include_str!("../../openapi/onair.json");

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use super::OPENAPI_JSON;

    #[test]
    fn the_document_is_json() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    }
}

//! `GET /metrics` in Prometheus' text format: the SFU's rooms and packets,
//! livestreams by state, running programs, HTTP requests by route, then the
//! process-wide families of [`crate::metrics`] (webhooks, transitions, Mux
//! calls, outputs, CPU and memory).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::metrics::{Kind, write_header, write_sample};

/// How long a scrape waits for the livestream counts.
const DATABASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

/// (route template, method, status).
type RequestKey = (String, String, u16);

/// Requests and their total duration in seconds, per route, method and status.
#[derive(Clone, Default)]
pub struct HttpMetrics {
    requests: Arc<Mutex<BTreeMap<RequestKey, (u64, f64)>>>,
}

impl HttpMetrics {
    fn record(&self, route: String, method: String, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().expect("metrics lock");
        let entry = requests.entry((route, method, status)).or_default();
        entry.0 += 1;
        entry.1 += seconds;
    }
}

/// Middleware: times every request under its route template (not the raw
/// path, so ids and room names do not explode the label set).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    state
        .http_metrics
        .record(route, method, response.status().as_u16(), seconds);
    response
}

async fn render(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    if let Some(sfu) = &state.sfu {
        let rooms = sfu.rooms().await.unwrap_or_default();
        gauge(
            &mut out,
            "onair_sfu_rooms",
            "Open rooms.",
            rooms.len() as f64,
        );
        let participants: u32 = rooms.iter().map(|r| r.num_participants).sum();
        gauge(
            &mut out,
            "onair_sfu_participants",
            "Participants in all rooms.",
            participants.into(),
        );
        let tracks: u32 = rooms.iter().map(|r| r.num_tracks).sum();
        gauge(
            &mut out,
            "onair_sfu_tracks",
            "Published tracks in all rooms.",
            tracks.into(),
        );
        let stats = sfu.stats();
        let packets = [
            ("received", stats.received.load(Relaxed)),
            ("forwarded", stats.forwarded.load(Relaxed)),
            ("dropped", stats.dropped.load(Relaxed)),
        ];
        write_header(
            &mut out,
            "onair_sfu_packets_total",
            "RTP packets by what happened to them.",
            Kind::Counter,
        );
        for (what, count) in packets {
            write_sample(
                &mut out,
                "onair_sfu_packets_total",
                &[("event", what)],
                count,
            );
        }
    }
    gauge(
        &mut out,
        "onair_programs_running",
        "Programs (compositions) this node runs.",
        state.livestreams.running() as f64,
    );
    // A slow database must not stall the scrape (nor Prometheus' timeout).
    let counts = tokio::time::timeout(DATABASE_WAIT, state.store.livestream_counts()).await;
    if let Ok(Ok(counts)) = counts {
        write_header(
            &mut out,
            "onair_livestreams",
            "Livestreams by state.",
            Kind::Gauge,
        );
        for (status, count) in counts {
            write_sample(&mut out, "onair_livestreams", &[("status", &status)], count);
        }
    }
    let requests = state
        .http_metrics
        .requests
        .lock()
        .expect("metrics lock")
        .clone();
    write_header(
        &mut out,
        "onair_http_requests_total",
        "HTTP requests by route, method and status.",
        Kind::Counter,
    );
    for ((route, method, status), (count, _)) in &requests {
        let status = status.to_string();
        let labels = [
            ("route", route.as_str()),
            ("method", method),
            ("status", &status),
        ];
        write_sample(&mut out, "onair_http_requests_total", &labels, count);
    }
    write_header(
        &mut out,
        "onair_http_request_duration_seconds_sum",
        "Total time spent answering, by route, method and status.",
        Kind::Counter,
    );
    for ((route, method, status), (_, seconds)) in &requests {
        let status = status.to_string();
        let labels = [
            ("route", route.as_str()),
            ("method", method),
            ("status", &status),
        ];
        write_sample(
            &mut out,
            "onair_http_request_duration_seconds_sum",
            &labels,
            format_args!("{seconds:.6}"),
        );
    }
    crate::metrics::global().render(&mut out);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    write_header(out, name, help, Kind::Gauge);
    write_sample(out, name, &[], value);
}

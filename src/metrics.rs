//! Process-wide metrics: labelled counter families with small, fixed label
//! sets, rendered in Prometheus' text format by `GET /metrics`, plus the
//! process' CPU and memory, read from `/proc` at scrape time.
//!
//! Every label has a closed list of values; anything else is counted under
//! `other`, so no caller can grow a family with room names, ids or URLs.
//! A family is a flat array of atomics (one per combination of label values),
//! so recording is an index computation and one relaxed `fetch_add`.
//!
//! Reach the families through [`global()`] or the free functions below
//! ([`program_frame`], [`output_bytes`], …).

use std::fmt::Write;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The value every label accepts besides its listed ones; unknown values land here.
pub const OTHER: &str = "other";

/// What a family's samples mean to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One label of a family: its name and the values it may take (`other` is
/// always accepted on top of these).
#[derive(Debug, Clone, Copy)]
pub struct Label {
    pub name: &'static str,
    pub values: &'static [&'static str],
}

impl Label {
    pub const fn new(name: &'static str, values: &'static [&'static str]) -> Label {
        Label { name, values }
    }

    /// Cells this label spans: its values and `other`.
    fn width(&self) -> usize {
        self.values.len() + 1
    }

    /// The position of `value`, `other` (the last one) when not listed.
    fn position(&self, value: &str) -> usize {
        self.values
            .iter()
            .position(|v| *v == value)
            .unwrap_or(self.values.len())
    }

    fn value_at(&self, position: usize) -> &'static str {
        self.values.get(position).copied().unwrap_or(OTHER)
    }
}

/// A metric family: a name, help text, a kind and up to a few labels, with
/// one atomic cell per combination of label values.
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [Label],
    /// Show every listed combination, at 0 before it is first counted (so
    /// `rate()` sees the series start). Otherwise only combinations that
    /// were counted are shown.
    dense: bool,
    cells: Box<[AtomicU64]>,
}

impl Family {
    /// A family whose series appear once counted.
    pub fn new(
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &'static [Label],
    ) -> Family {
        let size = labels.iter().map(Label::width).product::<usize>();
        Family {
            name,
            help,
            kind,
            labels,
            dense: false,
            cells: (0..size).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Shows every combination of listed values from the start, at 0.
    pub fn dense(mut self) -> Family {
        self.dense = true;
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The cell of `values` (one per label, in order); unknown values map to
    /// `other`. `None` when the number of values is wrong.
    fn cell(&self, values: &[&str]) -> Option<&AtomicU64> {
        debug_assert_eq!(
            values.len(),
            self.labels.len(),
            "{}: label values",
            self.name
        );
        if values.len() != self.labels.len() {
            return None;
        }
        let mut index = 0;
        for (label, value) in self.labels.iter().zip(values) {
            index = index * label.width() + label.position(value);
        }
        self.cells.get(index)
    }

    /// Adds `n` to the series of `values`.
    pub fn add(&self, values: &[&str], n: u64) {
        if let Some(cell) = self.cell(values) {
            cell.fetch_add(n, Relaxed);
        }
    }

    /// Adds one to the series of `values`.
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// Sets the series of `values` (for gauges).
    pub fn set(&self, values: &[&str], value: u64) {
        if let Some(cell) = self.cell(values) {
            cell.store(value, Relaxed);
        }
    }

    /// The current value of the series of `values` (0 if never counted).
    pub fn get(&self, values: &[&str]) -> u64 {
        self.cell(values).map_or(0, |cell| cell.load(Relaxed))
    }

    /// The label values of cell `index`.
    fn values_of(&self, mut index: usize) -> Vec<&'static str> {
        let mut values = vec![""; self.labels.len()];
        for (slot, label) in values.iter_mut().zip(self.labels).rev() {
            *slot = label.value_at(index % label.width());
            index /= label.width();
        }
        values
    }

    /// Appends HELP, TYPE and the family's series.
    pub fn render(&self, out: &mut String) {
        write_header(out, self.name, self.help, self.kind);
        for (index, cell) in self.cells.iter().enumerate() {
            let value = cell.load(Relaxed);
            let values = self.values_of(index);
            let listed = !values.contains(&OTHER);
            if value == 0 && !(self.dense && listed) {
                continue;
            }
            let pairs: Vec<(&str, &str)> = self
                .labels
                .iter()
                .map(|l| l.name)
                .zip(values.iter().copied())
                .collect();
            write_sample(out, self.name, &pairs, value);
        }
    }
}

/// Appends `# HELP` and `# TYPE` for a family.
pub fn write_header(out: &mut String, name: &str, help: &str, kind: Kind) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
}

/// Appends one sample line, `name{label="value",…} value`.
pub fn write_sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
pub fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// HELP text as the text format wants it: `\` and newlines escaped.
pub fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Checks `text` against the rules of the text exposition format this
/// module relies on, for tests: every family has `# HELP` then `# TYPE`,
/// once each, before its samples, which are contiguous; metric and label
/// names are valid; label values are quoted with only `\\`, `\"` and `\n`
/// escapes; sample values are numbers. Returns the family names in order.
pub fn check_exposition(text: &str) -> Result<Vec<String>, String> {
    fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    /// Parses `{a="x",b="y"}` at the start of `text`; returns what follows.
    fn labels(text: &str) -> Option<&str> {
        let mut rest = text.strip_prefix('{')?;
        loop {
            let (name, after) = rest.split_once('=')?;
            if !valid_name(name) {
                return None;
            }
            let mut chars = after.strip_prefix('"')?.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        '\\' | '"' | 'n' => {}
                        _ => return None,
                    },
                    (i, '"') => break i,
                    (_, '\n') => return None,
                    _ => {}
                }
            };
            rest = &after[1 + end + 1..];
            if let Some(next) = rest.strip_prefix(',') {
                rest = next;
            } else {
                return rest.strip_prefix('}');
            }
        }
    }
    let mut helped: Vec<String> = Vec::new();
    let mut typed: Vec<String> = Vec::new();
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    for line in text.lines() {
        let bad = |why: &str| Err(format!("{why}: `{line}`"));
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !valid_name(name) || helped.iter().any(|f| f == name) {
                return bad("HELP of an invalid or repeated name");
            }
            helped.push(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let Some((name, kind)) = rest.split_once(' ') else {
                return bad("TYPE without a kind");
            };
            if helped.last().map(String::as_str) != Some(name) || typed.iter().any(|t| t == name) {
                return bad("TYPE not right after its HELP, or repeated");
            }
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return bad("unknown TYPE");
            }
            typed.push(name.to_string());
        } else if line.starts_with('#') || line.is_empty() {
            return bad("stray line");
        } else {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..name_end];
            if typed.last().map(String::as_str) != Some(name) || helped.len() != typed.len() {
                return bad("sample outside its family");
            }
            let mut rest = &line[name_end..];
            if rest.starts_with('{') {
                let Some(after) = labels(rest) else {
                    return bad("malformed labels");
                };
                rest = after;
            }
            let value = rest.strip_prefix(' ').unwrap_or("?");
            if value.parse::<f64>().is_err() && !["+Inf", "-Inf", "NaN"].contains(&value) {
                return bad("bad value");
            }
        }
    }
    if helped != typed {
        return Err("a HELP without its TYPE".into());
    }
    Ok(typed)
}

// ---------------------------------------------------------------------------
// The families.
// ---------------------------------------------------------------------------

const STATUSES: &[&str] = &[
    "idle",
    "starting",
    "active",
    "stopping",
    "completed",
    "failed",
];
const WEBHOOK_SOURCES: &[&str] = &["mux", "livekit"];
/// `error`: the webhook was valid but storing or acting on it failed (a 5xx).
const WEBHOOK_RESULTS: &[&str] = &["accepted", "duplicate", "rejected", "error"];
/// One name per Mux API call (see `mux::client`).
pub const MUX_OPERATIONS: &[&str] = &[
    "create_live_stream",
    "list_live_streams",
    "retrieve_live_stream",
    "update_live_stream",
    "delete_live_stream",
    "complete",
    "disable",
    "enable",
    "reset_stream_key",
    "create_simulcast_target",
    "delete_simulcast_target",
    "retrieve_asset",
];
const OK_ERROR: &[&str] = &["ok", "error"];
const DELIVERY: &[&str] = &["delivered", "failed"];
const FRAME_RESULTS: &[&str] = &["produced", "dropped"];
const OUTPUT_KINDS: &[&str] = &["rtmp", "mp4", "hls"];
const OUTPUT_STATUSES: &[&str] = &["connecting", "live", "retrying", "failed", "stopped"];
const UPLOAD_KINDS: &[&str] = &["hls_segment", "hls_playlist", "mp4"];

const TRANSITION_LABELS: &[Label] = &[Label::new("from", STATUSES), Label::new("to", STATUSES)];
const WEBHOOK_LABELS: &[Label] = &[
    Label::new("source", WEBHOOK_SOURCES),
    Label::new("result", WEBHOOK_RESULTS),
];
const MUX_REQUEST_LABELS: &[Label] = &[
    Label::new("operation", MUX_OPERATIONS),
    Label::new("outcome", OK_ERROR),
];
const MUX_RETRY_LABELS: &[Label] = &[Label::new("operation", MUX_OPERATIONS)];
const ROOM_WEBHOOK_LABELS: &[Label] = &[Label::new("result", DELIVERY)];
const FRAME_LABELS: &[Label] = &[Label::new("result", FRAME_RESULTS)];
const OUTPUT_LABELS: &[Label] = &[Label::new("kind", OUTPUT_KINDS)];
const OUTPUT_STATUS_LABELS: &[Label] = &[
    Label::new("kind", OUTPUT_KINDS),
    Label::new("status", OUTPUT_STATUSES),
];
const UPLOAD_LABELS: &[Label] = &[
    Label::new("kind", UPLOAD_KINDS),
    Label::new("result", OK_ERROR),
];

/// Every family of this process.
#[derive(Debug)]
pub struct Metrics {
    pub livestream_transitions: Family,
    pub webhooks_received: Family,
    pub mux_api_requests: Family,
    pub mux_api_retries: Family,
    pub room_webhooks_sent: Family,
    pub program_frames: Family,
    pub output_bytes: Family,
    pub output_retries: Family,
    pub output_status_changes: Family,
    pub object_uploads: Family,
}

impl Metrics {
    fn new() -> Metrics {
        use Kind::Counter;
        Metrics {
            livestream_transitions: Family::new(
                "onair_livestream_transitions_total",
                "Livestream state changes committed, by from and to state.",
                Counter,
                TRANSITION_LABELS,
            ),
            webhooks_received: Family::new(
                "onair_webhooks_received_total",
                "Webhooks received, by source and result (rejected: bad signature, body or timestamp; duplicate: an event already stored; error: failed while handling).",
                Counter,
                WEBHOOK_LABELS,
            )
            .dense(),
            mux_api_requests: Family::new(
                "onair_mux_api_requests_total",
                "HTTP requests to Mux's Video API (every attempt, retries included), by operation and outcome.",
                Counter,
                MUX_REQUEST_LABELS,
            ),
            mux_api_retries: Family::new(
                "onair_mux_api_retries_total",
                "Mux API requests that were retries of a failed attempt, by operation.",
                Counter,
                MUX_RETRY_LABELS,
            ),
            room_webhooks_sent: Family::new(
                "onair_room_webhooks_sent_total",
                "Outgoing room webhooks (LiveKit format), one per event and receiving URL: delivered, or failed after its retries (events dropped from a full queue are not counted).",
                Counter,
                ROOM_WEBHOOK_LABELS,
            )
            .dense(),
            program_frames: Family::new(
                "onair_program_frames_total",
                "Composed program frames that reached the video encoder (produced) or were dropped before it.",
                Counter,
                FRAME_LABELS,
            )
            .dense(),
            output_bytes: Family::new(
                "onair_output_bytes_total",
                "Bytes written by program outputs, by kind.",
                Counter,
                OUTPUT_LABELS,
            ),
            output_retries: Family::new(
                "onair_output_retries_total",
                "Output reconnects/restarts, by kind.",
                Counter,
                OUTPUT_LABELS,
            ),
            output_status_changes: Family::new(
                "onair_output_status_changes_total",
                "Output status changes, by kind and the status entered.",
                Counter,
                OUTPUT_STATUS_LABELS,
            ),
            object_uploads: Family::new(
                "onair_object_uploads_total",
                "Uploads to object storage, by kind and result.",
                Counter,
                UPLOAD_LABELS,
            ),
        }
    }

    fn families(&self) -> [&Family; 10] {
        [
            &self.livestream_transitions,
            &self.webhooks_received,
            &self.mux_api_requests,
            &self.mux_api_retries,
            &self.room_webhooks_sent,
            &self.program_frames,
            &self.output_bytes,
            &self.output_retries,
            &self.output_status_changes,
            &self.object_uploads,
        ]
    }

    /// Appends every family, then the process metrics read from `/proc`.
    pub fn render(&self, out: &mut String) {
        for family in self.families() {
            family.render(out);
        }
        process::render(out);
    }
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process' metrics.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// Everything `GET /metrics` shows from this module, in the text format.
pub fn render() -> String {
    let mut out = String::new();
    global().render(&mut out);
    out
}

// ---------------------------------------------------------------------------
// Recording.
// ---------------------------------------------------------------------------

/// A livestream transition committed (`from`, `to`: status names).
pub fn livestream_transition(from: &str, to: &str) {
    global().livestream_transitions.inc(&[from, to]);
}

/// A webhook came in from `source` (`mux`, `livekit`) with `result`
/// (`accepted`, `duplicate`, `rejected`, `error`).
pub fn webhook_received(source: &str, result: &str) {
    global().webhooks_received.inc(&[source, result]);
}

/// One HTTP request to Mux's API finished (`ok` = a 2xx answer).
pub fn mux_api_request(operation: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    global().mux_api_requests.inc(&[operation, outcome]);
}

/// A Mux API request was a retry of a failed attempt.
pub fn mux_api_retry(operation: &str) {
    global().mux_api_retries.inc(&[operation]);
}

/// An outgoing room webhook was delivered, or given up on.
pub fn room_webhook_sent(delivered: bool) {
    let result = if delivered { "delivered" } else { "failed" };
    global().room_webhooks_sent.inc(&[result]);
}

/// A composed program frame reached the encoder (`produced`) or was dropped before it.
pub fn program_frame(produced: bool) {
    let result = if produced { "produced" } else { "dropped" };
    global().program_frames.inc(&[result]);
}

/// `bytes` more were written by an output of `kind` (`rtmp`, `mp4`, `hls`).
pub fn output_bytes(kind: &str, bytes: u64) {
    global().output_bytes.add(&[kind], bytes);
}

/// An output of `kind` is being retried (reconnect, restart).
pub fn output_retry(kind: &str) {
    global().output_retries.inc(&[kind]);
}

/// An output of `kind` entered `status` (`connecting`, `live`, `retrying`,
/// `failed`, `stopped`).
pub fn output_status(kind: &str, status: &str) {
    global().output_status_changes.inc(&[kind, status]);
}

/// An upload to object storage of `kind` (`hls_segment`, `hls_playlist`,
/// `mp4`) finished.
pub fn object_upload(kind: &str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    global().object_uploads.inc(&[kind, result]);
}

// ---------------------------------------------------------------------------
// The process, from /proc at scrape time.
// ---------------------------------------------------------------------------

/// CPU and memory of this process and of its video encoder threads.
pub mod process {
    use super::{Kind, write_header, write_sample};

    /// Thread names (`/proc/self/task/*/comm`) of program encoder threads.
    ///
    /// x264 starts its threads from the thread that opens the encoder, and a
    /// new Linux thread inherits its creator's name; the encoder is opened in
    /// the streaming thread of the queue in front of `x264enc`
    /// (`encoder-queue`), which GStreamer names `encoder-queue:src`,
    /// truncated by the kernel to 15 bytes: `encoder-queue:s`. That thread
    /// feeds x264 and runs its main encoding work; x264's lookahead and
    /// frame threads carry the same name.
    pub const ENCODER_THREAD_NAMES: &[&str] = &["encoder-queue:s"];

    /// Appends the process metrics; a family whose `/proc` file cannot be
    /// read (not Linux) is left out.
    pub fn render(out: &mut String) {
        if let Some(seconds) = cpu_seconds() {
            write_header(
                out,
                "onair_process_cpu_seconds_total",
                "User and system CPU time of this process, in seconds.",
                Kind::Counter,
            );
            write_sample(out, "onair_process_cpu_seconds_total", &[], seconds);
        }
        if let Some(bytes) = resident_memory_bytes() {
            write_header(
                out,
                "onair_process_resident_memory_bytes",
                "Resident memory of this process, in bytes.",
                Kind::Gauge,
            );
            write_sample(out, "onair_process_resident_memory_bytes", &[], bytes);
        }
        if let Some(seconds) = encoder_cpu_seconds() {
            write_header(
                out,
                "onair_encoder_cpu_seconds_total",
                "CPU time of the live program video encoder threads (x264, by thread name encoder-queue:s), in seconds. Summed over threads alive at scrape time: the time of threads that have exited (programs that ended) is lost, so this can go down; use rate() over running programs.",
                Kind::Counter,
            );
            write_sample(out, "onair_encoder_cpu_seconds_total", &[], seconds);
        }
    }

    /// User + system CPU of the whole process (exited threads included).
    pub fn cpu_seconds() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        Some(stat_cpu_ticks(&stat)? as f64 / clock_ticks_per_second())
    }

    /// Resident set size: `/proc/self/statm`'s second field, in pages.
    pub fn resident_memory_bytes() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * page_size())
    }

    /// CPU time of the threads named in [`ENCODER_THREAD_NAMES`] now alive.
    pub fn encoder_cpu_seconds() -> Option<f64> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        let mut total = 0.0;
        for task in tasks.flatten() {
            let dir = task.path();
            let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
                continue; // exited meanwhile
            };
            if !ENCODER_THREAD_NAMES.contains(&comm.trim_end_matches('\n')) {
                continue;
            }
            total += thread_cpu_seconds(&dir).unwrap_or(0.0);
        }
        Some(total)
    }

    /// One thread's CPU time: schedstat's nanoseconds on a CPU, else
    /// user + system ticks from its stat.
    fn thread_cpu_seconds(dir: &std::path::Path) -> Option<f64> {
        if let Some(ns) = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            return Some(ns as f64 / 1e9);
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        Some(stat_cpu_ticks(&stat)? as f64 / clock_ticks_per_second())
    }

    /// utime + stime (fields 14 and 15 of proc_pid_stat(5)) of a stat line.
    pub(crate) fn stat_cpu_ticks(stat: &str) -> Option<u64> {
        // The command name (field 2) may hold spaces and parentheses; what
        // follows its last `)` does not. fields[0] is field 3.
        let (_, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(utime + stime)
    }

    fn clock_ticks_per_second() -> f64 {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 { ticks as f64 } else { 100.0 }
    }

    fn page_size() -> u64 {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 { size as u64 } else { 4096 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: &[Label] = &[
        Label::new("kind", &["rtmp", "mp4"]),
        Label::new("result", &["ok", "error"]),
    ];

    fn family() -> Family {
        Family::new(
            "test_things_total",
            "Things.\nWith a \\ in it.",
            Kind::Counter,
            LABELS,
        )
    }

    #[test]
    fn counts_by_label_and_maps_unknown_values_to_other() {
        let f = family();
        f.inc(&["rtmp", "ok"]);
        f.add(&["mp4", "error"], 5);
        f.inc(&["srt://room-1234/secret", "ok"]);
        f.inc(&["rtp", "maybe"]);
        assert_eq!(f.get(&["rtmp", "ok"]), 1);
        assert_eq!(f.get(&["mp4", "error"]), 5);
        assert_eq!(f.get(&["other", "ok"]), 1);
        assert_eq!(
            f.get(&["anything", "ok"]),
            1,
            "every unknown value is one series"
        );
        assert_eq!(f.get(&["other", "other"]), 1);
        assert_eq!(
            f.cells.len(),
            9,
            "3 kinds × 3 results, whatever was counted"
        );
        let mut out = String::new();
        f.render(&mut out);
        assert_eq!(
            out,
            "# HELP test_things_total Things.\\nWith a \\\\ in it.\n\
             # TYPE test_things_total counter\n\
             test_things_total{kind=\"rtmp\",result=\"ok\"} 1\n\
             test_things_total{kind=\"mp4\",result=\"error\"} 5\n\
             test_things_total{kind=\"other\",result=\"ok\"} 1\n\
             test_things_total{kind=\"other\",result=\"other\"} 1\n"
        );
        check_exposition(&out).unwrap();
    }

    #[test]
    fn dense_families_show_listed_series_at_zero() {
        let f = family().dense();
        let mut out = String::new();
        f.render(&mut out);
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "test_things_total{kind=\"rtmp\",result=\"ok\"} 0",
                "test_things_total{kind=\"rtmp\",result=\"error\"} 0",
                "test_things_total{kind=\"mp4\",result=\"ok\"} 0",
                "test_things_total{kind=\"mp4\",result=\"error\"} 0",
            ]
        );
    }

    #[test]
    fn a_wrong_number_of_values_counts_nothing() {
        let f = family();
        if cfg!(debug_assertions) {
            let caught = std::panic::catch_unwind(|| f.inc(&["rtmp"]));
            assert!(caught.is_err(), "debug builds say so loudly");
        } else {
            f.inc(&["rtmp"]);
        }
        assert!(f.cells.iter().all(|c| c.load(Relaxed) == 0));
    }

    #[test]
    fn unlabelled_families_have_one_series() {
        static NONE: &[Label] = &[];
        let f = Family::new("test_gauge", "A gauge.", Kind::Gauge, NONE);
        f.set(&[], 42);
        let mut out = String::new();
        f.render(&mut out);
        assert_eq!(
            out,
            "# HELP test_gauge A gauge.\n# TYPE test_gauge gauge\ntest_gauge 42\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        write_header(&mut out, "test_routes_total", "Routes.", Kind::Counter);
        write_sample(
            &mut out,
            "test_routes_total",
            &[("route", "/a\"b\\c\nd")],
            1,
        );
        assert!(
            out.contains(r#"test_routes_total{route="/a\"b\\c\nd"} 1"#),
            "{out}"
        );
        check_exposition(&out).unwrap();
    }

    #[test]
    fn the_free_functions_count_in_the_global_registry() {
        let before = global().output_bytes.get(&["hls"]);
        output_bytes("hls", 1000);
        assert!(global().output_bytes.get(&["hls"]) >= before + 1000);
        let before = global().object_uploads.get(&["s3://bucket/key", "error"]);
        object_upload("s3://bucket/key", false);
        assert!(global().object_uploads.get(&["other", "error"]) > before);
        let before = global().output_status_changes.get(&["rtmp", "live"]);
        output_status("rtmp", "live");
        assert!(global().output_status_changes.get(&["rtmp", "live"]) > before);
        let before = global().program_frames.get(&["dropped"]);
        program_frame(false);
        assert!(global().program_frames.get(&["dropped"]) > before);
        output_retry("mp4");
        assert!(global().output_retries.get(&["mp4"]) >= 1);
    }

    #[test]
    fn the_whole_rendering_is_valid_exposition() {
        livestream_transition("starting", "active");
        webhook_received("mux", "rejected");
        mux_api_request("complete", true);
        mux_api_retry("create_live_stream");
        room_webhook_sent(true);
        let text = render();
        let families = check_exposition(&text).unwrap();
        for name in [
            "onair_livestream_transitions_total",
            "onair_webhooks_received_total",
            "onair_mux_api_requests_total",
            "onair_mux_api_retries_total",
            "onair_room_webhooks_sent_total",
            "onair_program_frames_total",
            "onair_output_bytes_total",
            "onair_output_retries_total",
            "onair_output_status_changes_total",
            "onair_object_uploads_total",
            "onair_process_cpu_seconds_total",
            "onair_process_resident_memory_bytes",
            "onair_encoder_cpu_seconds_total",
        ] {
            assert!(
                families.iter().any(|f| f == name),
                "{name} missing from\n{text}"
            );
        }
        assert!(
            text.contains(
                "onair_webhooks_received_total{source=\"livekit\",result=\"duplicate\"} "
            )
        );
        assert!(
            text.contains("onair_livestream_transitions_total{from=\"starting\",to=\"active\"} ")
        );
    }

    #[test]
    fn the_checker_refuses_broken_text() {
        let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n";
        assert_eq!(check_exposition(good).unwrap(), ["a_total"]);
        for bad in [
            "a_total 1\n",
            "# HELP a_total A.\na_total 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\n# HELP a_total A.\n# TYPE a_total counter\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"a\"b\"} 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"a\\qb\"} 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} many\n",
            "# HELP a_total A.\n# TYPE a_total counter\nb_total 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1",
        ] {
            assert!(check_exposition(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn process_metrics_come_from_proc() {
        let rss = process::resident_memory_bytes().expect("statm");
        assert!(rss > 1 << 20, "at least a MiB resident: {rss}");
        // Burn some CPU so the counter is visibly above zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process::cpu_seconds().expect("stat") > 0.0);
        assert!(process::encoder_cpu_seconds().is_some());
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "1234 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0\n";
        assert_eq!(process::stat_cpu_ticks(line), Some(300));
        assert_eq!(process::stat_cpu_ticks("garbage"), None);
    }
}

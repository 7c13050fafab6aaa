//! LiveKit's official server SDKs as child processes, so that a test calls
//! onair exactly as a LiveKit application would: `livekit-server-sdk` (Node,
//! `tests/browser/lk_server_sdk.mjs`, installed by `scripts/browser-peers`) and
//! `livekit-api` (Python, `tests/peers/lk_api.py`, in the venv of
//! `scripts/python-peers`).
//!
//! Both drivers speak JSON lines: the test sends
//! `{"id", "service", "method", "args"}` and gets `{"id", "ok"}` or
//! `{"id", "error": {"name", "message", "status", "code", …}}`. Method names and
//! arguments are each SDK's own:
//!
//! ```ignore
//! let mut node = SdkDriver::node(&url, KEY, SECRET);
//! let room = node.call("room", "createRoom", json!([{"name": "studio"}])).await?;
//! node.call("egress", "startRoomCompositeEgress", json!(["studio",
//!     {"stream": {"protocol": "RTMP", "urls": ["rtmp://127.0.0.1/live/k"]}},
//!     {"layout": "grid", "encodingOptions": {"width": 1920, "height": 1080}}])).await?;
//!
//! let mut py = SdkDriver::python(&url, KEY, SECRET);
//! let rooms = py.call("room", "list_rooms", json!([{"names": ["studio"]}])).await?;
//! ```
//!
//! Node results are protojson with lowerCamelCase names (`egressId`), Python
//! results with proto names (`egress_id`); both include default values and
//! give enums as names and int64 as strings. See the two scripts' headers for
//! how arguments become SDK objects.

use std::fmt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long one call may take unless [`SdkDriver::set_timeout`] says otherwise
/// (generous: the first call also loads the SDK on a loaded 2-core machine).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Which official SDK a driver runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sdk {
    /// `livekit-server-sdk` 2.19.2 for Node (camelCase methods: `createRoom`).
    Node,
    /// `livekit-api` 1.2.2 for Python (snake_case methods: `create_room`,
    /// one protojson request as the only argument).
    Python,
}

/// An error the SDK raised (or the driver's own `BadArgument` for a command it
/// could not turn into an SDK call).
#[derive(Clone, Debug, PartialEq)]
pub struct SdkError {
    /// Node: the error's `name` (a `TwirpError`/`ServerError` carries the HTTP
    /// status text, e.g. `"Not Found"`); Python: the exception type
    /// (`"ServerError"`).
    pub name: String,
    /// The server's Twirp `msg` for server errors, else the exception message.
    pub message: String,
    /// HTTP status of a server error.
    pub status: Option<u16>,
    /// Twirp code of a server error (`"not_found"`, `"unauthenticated"`…).
    pub code: Option<String>,
    /// Twirp `meta` of a server error.
    pub metadata: Option<Value>,
    /// The whole `error` object as the driver sent it (Node adds `cause`,
    /// Python `text` = `str(e)`).
    pub raw: Value,
}

impl SdkError {
    fn from_json(error: &Value) -> SdkError {
        let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
        SdkError {
            name: text("name").unwrap_or_default(),
            message: text("message").unwrap_or_default(),
            status: error
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            code: match error.get("code") {
                Some(Value::String(code)) => Some(code.clone()),
                Some(Value::Number(code)) => Some(code.to_string()),
                _ => None,
            },
            metadata: error.get("metadata").filter(|m| !m.is_null()).cloned(),
            raw: error.clone(),
        }
    }
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)?;
        if let Some(status) = self.status {
            write!(f, " (status {status}")?;
            if let Some(code) = &self.code {
                write!(f, ", code {code}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl std::error::Error for SdkError {}

/// One long-lived SDK driver process (killed when dropped).
pub struct SdkDriver {
    sdk: Sdk,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    timeout: Duration,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl SdkDriver {
    /// The Node SDK (`node tests/browser/lk_server_sdk.mjs`).
    pub fn node(url: &str, key: &str, secret: &str) -> SdkDriver {
        SdkDriver::spawn(Sdk::Node, url, key, secret, &[])
    }

    /// The Python SDK (`tests/peers/lk_api.py` under `ONAIR_TEST_PYTHON`, else
    /// the venv of `scripts/python-peers`).
    pub fn python(url: &str, key: &str, secret: &str) -> SdkDriver {
        SdkDriver::spawn(Sdk::Python, url, key, secret, &[])
    }

    /// Either driver; `extra` goes to the script's command line (e.g.
    /// `["--request-timeout", "30"]` to lengthen the SDK's own 10 s HTTP timeout).
    /// `url` is the server's HTTP base, e.g. `http://127.0.0.1:7880`.
    /// Panics (never skips) when the SDK is not installed.
    pub fn spawn(sdk: Sdk, url: &str, key: &str, secret: &str, extra: &[&str]) -> SdkDriver {
        let mut command = match sdk {
            Sdk::Node => {
                let dir = repo().join("tests/browser");
                let installed = dir.join("node_modules/livekit-server-sdk/package.json");
                assert!(
                    installed.is_file(),
                    "no {}: run scripts/browser-peers first (it runs `npm ci` in tests/browser; CI runs it)",
                    installed.display()
                );
                let mut command = Command::new("node");
                command.current_dir(dir).arg("lk_server_sdk.mjs");
                command
            }
            Sdk::Python => {
                let mut command = Command::new(super::sfu::python());
                command.arg(repo().join("tests/peers/lk_api.py"));
                command
            }
        };
        command
            .args(["--url", url, "--key", key, "--secret", secret])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("the {sdk:?} SDK driver starts: {error}"));
        let stdin = child.stdin.take().expect("driver stdin");
        let stdout = BufReader::new(child.stdout.take().expect("driver stdout")).lines();
        SdkDriver {
            sdk,
            child,
            stdin,
            stdout,
            next_id: 1,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn sdk(&self) -> Sdk {
        self.sdk
    }

    /// The time limit of later [`call`](Self::call)s.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Calls `method` of `service` (`room`, `egress`, `webhook`, `token`) with
    /// `args` (a JSON array; `null` = none). `Ok` holds the result as plain
    /// JSON (`null` for calls that return nothing), `Err` the error the SDK
    /// raised. Panics when the driver dies or does not answer in time: those
    /// are never SDK behaviour.
    pub async fn call(
        &mut self,
        service: &str,
        method: &str,
        args: Value,
    ) -> Result<Value, SdkError> {
        let timeout = self.timeout;
        self.call_within(service, method, args, timeout).await
    }

    /// [`call`](Self::call) with its own time limit.
    pub async fn call_within(
        &mut self,
        service: &str,
        method: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<Value, SdkError> {
        let args = match args {
            Value::Null => json!([]),
            Value::Array(_) => args,
            other => panic!("SdkDriver::call: args must be a JSON array, got {other}"),
        };
        let id = self.next_id;
        self.next_id += 1;
        let sdk = self.sdk;
        let what = format!("{sdk:?} SDK {service}.{method}");
        let mut line =
            json!({"id": id, "service": service, "method": method, "args": args}).to_string();
        line.push('\n');
        if let Err(error) = self.stdin.write_all(line.as_bytes()).await {
            panic!("{what}: the driver does not take commands ({error}); it exited?");
        }
        self.stdin
            .flush()
            .await
            .unwrap_or_else(|error| panic!("{what}: {error}"));

        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("{what}: no reply within {timeout:?}"));
            let text = match next {
                Ok(Some(text)) => text,
                Ok(None) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!("{what}: the driver exited before replying ({status:?})")
                }
                Err(error) => panic!("{what}: reading the driver's stdout: {error}"),
            };
            let reply: Value = match serde_json::from_str(&text) {
                Ok(reply) => reply,
                Err(_) => {
                    eprintln!("{sdk:?} SDK driver (not JSON): {text}");
                    continue;
                }
            };
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                // A reply to an earlier command (none is left pending normally).
                eprintln!("{sdk:?} SDK driver: skipping reply {reply}");
                continue;
            }
            if let Some(error) = reply.get("error") {
                return Err(SdkError::from_json(error));
            }
            return match reply.get("ok") {
                Some(ok) => Ok(ok.clone()),
                None => panic!("{what}: reply without ok or error: {reply}"),
            };
        }
    }

    /// Closes stdin and waits (up to 10 s) for the driver to exit on its own;
    /// dropping the driver kills it instead.
    pub async fn close(mut self) {
        let _ = self.stdin.shutdown().await;
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

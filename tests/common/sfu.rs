//! A real HTTP server with a real SFU on 127.0.0.1, and peers from other
//! WebRTC stacks (Python aiortc, headless Chromium) run as child processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use onair::api::{self, AppState};
use onair::auth::{AccessToken, KeyRing, VideoGrant};
use onair::composer::MediaEngine;
use onair::config::{DEV_API_KEY, DEV_API_SECRET, Secret};
use onair::livestream::{Capabilities, LivestreamService, MuxLive, Runner, ServiceSettings};
use onair::sfu::webhook::WebhookNotifier;
use onair::sfu::{RoomSettings, Sfu, SfuSettings};
use onair::storage::Storage;
use onair::store::Store;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::{Behaviour, KEY, SECRET, TestRunner, limits};

pub struct SfuOptions {
    /// HTTP port on 127.0.0.1; 0 = any (set when a peer must know it first).
    pub port: u16,
    pub rooms: RoomSettings,
    pub webhook_urls: Vec<url::Url>,
    /// Dev mode, as `onair serve --dev`: the dev-token routes answer, and the
    /// dev key pair (`DEV_API_KEY`/`DEV_API_SECRET`) joins the key ring.
    pub dev_mode: bool,
    /// A real database and the real media engine (go-live tests); without
    /// it the REST routes are backed by a test runner and an unused pool.
    pub live: Option<LiveOptions>,
}

pub struct LiveOptions {
    pub pool: sqlx::PgPool,
    pub recordings_dir: PathBuf,
    /// Going live to a (stand-in) Mux, and the secret its webhooks are signed with.
    pub mux: Option<(Arc<MuxLive>, String)>,
    /// Object storage for HLS and recording uploads.
    pub storage: Option<Storage>,
}

impl Default for SfuOptions {
    fn default() -> SfuOptions {
        SfuOptions {
            port: 0,
            rooms: RoomSettings {
                empty_timeout: Duration::from_secs(300),
                departure_timeout: Duration::from_secs(20),
                max_participants: 0,
            },
            webhook_urls: Vec::new(),
            dev_mode: false,
            live: None,
        }
    }
}

pub struct SfuServer {
    pub base: String,
    pub sfu: Sfu,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SfuServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl SfuServer {
    /// The signaling routes need no database; the pool is never connected.
    pub async fn start(options: SfuOptions) -> SfuServer {
        let sfu = Sfu::start(SfuSettings {
            rooms: options.rooms,
            node_ips: Vec::new(),
            udp_port: 0,
            public_ip: None,
        })
        .await
        .expect("SFU starts");
        let webhooks = WebhookNotifier::start(options.webhook_urls, KEY.into(), SECRET.into());
        onair::sfu::forward_to_webhooks(sfu.notices(), webhooks.clone());
        let layouts = Arc::new(onair::layout::LayoutTemplates::builtin());
        let mut mux = None;
        let mut mux_webhook_secret = String::new();
        let mut storage = None;
        let (store, runner, recordings_dir): (Store, Arc<dyn Runner>, PathBuf) = match options.live
        {
            Some(live) => {
                if let Some((client, secret)) = live.mux {
                    mux = Some(client);
                    mux_webhook_secret = secret;
                }
                storage = live.storage;
                (
                    Store::from_pool(live.pool),
                    Arc::new(
                        MediaEngine::new(sfu.clone(), layouts.clone()).expect("GStreamer works"),
                    ),
                    live.recordings_dir,
                )
            }
            None => (
                Store::from_pool(
                    sqlx::PgPool::connect_lazy("postgres://unused@127.0.0.1:1/unused").unwrap(),
                ),
                TestRunner::new(Behaviour::GoLive),
                PathBuf::from("/tmp/onair-test-recordings"),
            ),
        };
        let service = LivestreamService::new(
            store.clone(),
            runner,
            ServiceSettings {
                node_id: "sfu-test".into(),
                limits: limits(),
                recordings_dir,
                capabilities: Capabilities {
                    mux: mux.is_some(),
                    hls: storage.is_some(),
                },
                layouts,
                mux,
                storage,
                webhooks,
            },
        );
        let mut keys = std::collections::BTreeMap::new();
        keys.insert(KEY.to_string(), Secret::new(SECRET));
        if options.dev_mode {
            // As `onair serve --dev`: the dev key signs the dev-token routes' tokens.
            keys.insert(DEV_API_KEY.to_string(), Secret::new(DEV_API_SECRET));
        }
        let keys = KeyRing::new(keys);
        let auto_egress = onair::livestream::AutoEgress::new(
            service.clone(),
            keys.clone(),
            onair::composer::track_egress::Container::extension_for,
        );
        auto_egress.clone().follow(sfu.notices());
        let router = api::router(AppState {
            keys,
            store,
            livestreams: service,
            mux_webhook_secret: Secret::new(mux_webhook_secret),
            sfu: Some(sfu.clone()),
            ice_servers: Arc::new(vec!["stun:stun.example.net".into()]),
            dev_mode: options.dev_mode,
            room_defaults: options.rooms,
            http_metrics: Default::default(),
            auto_egress: Some(auto_egress),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        SfuServer { base, sfu, server }
    }

    pub fn whip_url(&self) -> String {
        format!("{}/whip/v1", self.base)
    }

    pub fn whep_url(&self, room: &str, identity: &str) -> String {
        format!("{}/whep/v1/rooms/{room}/participants/{identity}", self.base)
    }
}

/// A token with `roomRecord` (go live, stop, status) for every room.
pub fn recorder_token() -> String {
    AccessToken::new(KEY, "producer", Duration::from_secs(600))
        .with_grant(VideoGrant {
            room_record: true,
            ..VideoGrant::default()
        })
        .sign(SECRET)
        .unwrap()
}

/// A REST call with [`recorder_token`]: the status and the JSON body.
pub async fn api(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(recorder_token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// An aiortc publisher through WHIP: a solid `colour` ("R,G,B") with a
/// moving square, and a sine `tone` in Hz.
pub fn publisher(
    server: &SfuServer,
    room: &str,
    identity: &str,
    seconds: u32,
    colour: &str,
    tone: u32,
) -> Peer {
    let token = join_token(room, identity, |_| {});
    Peer::python(
        "whip_publish.py",
        &[
            "--url",
            &server.whip_url(),
            "--token",
            &token,
            "--seconds",
            &seconds.to_string(),
            "--color",
            colour,
            "--tone",
            &tone.to_string(),
        ],
    )
}

/// A token joining `room` as `identity`; `adjust` changes the grant.
pub fn join_token(room: &str, identity: &str, adjust: impl FnOnce(&mut VideoGrant)) -> String {
    let mut grant = VideoGrant {
        room_join: true,
        room: room.to_string(),
        ..VideoGrant::default()
    };
    adjust(&mut grant);
    AccessToken::new(KEY, identity, Duration::from_secs(600))
        .with_grant(grant)
        .sign(SECRET)
        .unwrap()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv Python with aiortc (`scripts/python-peers`), set up once.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(path) = std::env::var("ONAIR_TEST_PYTHON") {
                return PathBuf::from(path);
            }
            let out = std::process::Command::new(repo().join("scripts/python-peers"))
                .stderr(Stdio::inherit())
                .output()
                .expect("scripts/python-peers runs");
            assert!(out.status.success(), "scripts/python-peers failed");
            let stdout = String::from_utf8(out.stdout).unwrap();
            PathBuf::from(stdout.lines().last().expect("python path").trim())
        })
        .clone()
}

/// A child process printing JSON lines, collected as they come.
pub struct Peer {
    pub child: Child,
    pub lines: mpsc::UnboundedReceiver<Value>,
}

impl Peer {
    fn spawn(mut command: Command) -> Peer {
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("peer process starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        let _ = tx.send(value);
                    }
                    Err(_) => eprintln!("peer: {line}"),
                }
            }
        });
        Peer { child, lines }
    }

    /// `tests/peers/<script>` under the aiortc venv.
    pub fn python(script: &str, args: &[&str]) -> Peer {
        let mut command = Command::new(python());
        command
            .arg(repo().join("tests/peers").join(script))
            .args(args);
        Peer::spawn(command)
    }

    /// `tests/browser/<script>` under Node (set up by `scripts/browser-peers`).
    pub fn node(script: &str, args: &[&str]) -> Peer {
        let mut command = Command::new("node");
        command
            .current_dir(repo().join("tests/browser"))
            .arg(script)
            .args(args);
        Peer::spawn(command)
    }

    /// The next line whose `event` is `name`, skipping others.
    pub async fn event(&mut self, name: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no `{name}` event within {within:?}"))
                .unwrap_or_else(|| panic!("peer exited before a `{name}` event"));
            if line["event"] == name {
                return line;
            }
            if line["event"] == "error" {
                panic!("peer reported an error waiting for `{name}`: {line}");
            }
        }
    }

    pub async fn exit_code(&mut self, within: Duration) -> i32 {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("peer exits in time")
            .unwrap();
        status.code().unwrap_or(-1)
    }
}

/// Records every webhook POST: (headers, body).
pub async fn webhook_receiver() -> (url::Url, Arc<std::sync::Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let received: Arc<std::sync::Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

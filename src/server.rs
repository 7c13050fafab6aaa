//! Wiring for `onair serve`: database (external or embedded), migrations,
//! reconciliation, the HTTP server and graceful shutdown.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::auth::KeyRing;
use crate::composer::MediaEngine;
use crate::config::Config;
use crate::layout::LayoutTemplates;
use crate::livestream::{
    Capabilities, LivestreamService, MuxLive, NoMediaEngine, Runner, ServiceSettings,
};
use crate::outputs::hls::HlsJob;
use crate::sfu::webhook::WebhookNotifier;
use crate::sfu::{RoomSettings, Sfu, SfuSettings};
use crate::storage::Storage;
use crate::store::Store;
use crate::store::embedded::EmbeddedPostgres;

/// The database the server runs on, and the private Postgres if we started one.
pub struct Database {
    pub store: Store,
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`/`database.url`, or starts the embedded Postgres.
    pub async fn open(config: &Config) -> anyhow::Result<Database> {
        let max = config.database.max_connections;
        match config.database_url() {
            Some(url) => {
                let store = Store::connect(url, max).await.context(
                    "cannot connect to the database given by DATABASE_URL / database.url",
                )?;
                Ok(Database {
                    store,
                    embedded: None,
                })
            }
            None => {
                let pg = EmbeddedPostgres::start(&config.database.embedded_dir)
                    .await
                    .context(
                        "cannot start the private Postgres (set DATABASE_URL to use your own)",
                    )?;
                let store = Store::connect_with(pg.connect_options(), max).await?;
                Ok(Database {
                    store,
                    embedded: Some(pg),
                })
            }
        }
    }

    pub async fn close(self) {
        self.store.close().await;
        if let Some(pg) = self.embedded
            && let Err(error) = pg.stop().await
        {
            tracing::error!(%error, "private Postgres did not stop cleanly");
        }
    }
}

pub fn announce_dev_mode(config: &Config) {
    if config.server.dev {
        tracing::warn!("================================================================");
        tracing::warn!(" DEVELOPMENT MODE: API key `devkey` / secret `secret` is enabled. ");
        tracing::warn!(" Anyone who knows it controls this server. Never use in production.");
        tracing::warn!("================================================================");
    }
    for key in config.weak_keys() {
        tracing::warn!(key, "API secret is shorter than 32 characters");
    }
}

/// Runs the service until SIGTERM/SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    serve_until(config, shutdown_signal()).await
}

/// Runs the service until `shutdown` completes (`onair demo` runs it in-process).
pub async fn serve_until(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    announce_dev_mode(&config);
    let database = Database::open(&config).await?;
    let result = run(&config, &database, shutdown).await;
    database.close().await;
    result
}

async fn run(
    config: &Config,
    database: &Database,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = database.store.clone();
    store
        .migrate()
        .await
        .context("database migrations failed")?;
    let webhooks = webhook_notifier(config);
    let sfu = start_sfu(config, webhooks.clone()).await?;
    let layouts = Arc::new(load_layouts(&config.media.layouts_dir));
    let runner: Arc<dyn Runner> = match MediaEngine::new(sfu.clone(), layouts.clone()) {
        Ok(engine) => Arc::new(engine.with_retry_budget(std::time::Duration::from_secs(
            config.media.output_retry_secs.into(),
        ))),
        Err(error) => {
            tracing::warn!(%error, "media engine not available; go-live requests will be answered with 503");
            Arc::new(NoMediaEngine)
        }
    };
    let mux = MuxLive::from_config(&config.mux)
        .context("the Mux client could not be set up (mux.*)")?
        .map(Arc::new);
    if mux.is_some() {
        tracing::info!("Mux is configured: go-live sends to a new Mux live stream by default");
    }
    let storage = Storage::from_config(&config.storage);
    if let Some(storage) = &storage {
        resume_uploads(storage, &config.media.recordings_dir);
    }
    let livestreams = LivestreamService::new(
        store.clone(),
        runner,
        ServiceSettings {
            node_id: config.server.node_id.clone(),
            limits: config.limits.clone(),
            recordings_dir: config.media.recordings_dir.clone(),
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
    let reconciled = livestreams.reconcile().await?;
    if reconciled > 0 {
        tracing::warn!(
            count = reconciled,
            "livestreams interrupted by the last restart were marked failed"
        );
    }
    let keys = KeyRing::new(config.keys.clone());
    let auto_egress = crate::livestream::AutoEgress::new(
        livestreams.clone(),
        keys.clone(),
        crate::composer::track_egress::Container::extension_for,
    );
    auto_egress.clone().follow(sfu.notices());
    let state = AppState {
        keys,
        store,
        livestreams: livestreams.clone(),
        mux_webhook_secret: config.mux.webhook_secret.clone(),
        sfu: Some(sfu.clone()),
        ice_servers: Arc::new(config.sfu.ice_servers.clone()),
        dev_mode: config.server.dev,
        room_defaults: room_settings(config),
        http_metrics: Default::default(),
        auto_egress: Some(auto_egress),
    };
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {} (server.listen)", config.server.listen))?;
    tracing::info!(
        listen = %config.server.listen,
        public_url = %config.server.public_url,
        node = %config.server.node_id,
        "onair is serving"
    );
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server failed")?;
    tracing::info!("shutting down: stopping running livestreams");
    livestreams.shutdown().await;
    sfu.shutdown().await;
    Ok(())
}

/// The SFU on `sfu.udp_port`, its room events going out through `webhooks`.
pub async fn start_sfu(config: &Config, webhooks: WebhookNotifier) -> anyhow::Result<Sfu> {
    let settings = &config.sfu;
    let sfu = Sfu::start(SfuSettings {
        rooms: room_settings(config),
        node_ips: settings.node_ips.clone(),
        udp_port: settings.udp_port,
        public_ip: settings.public_ip(),
    })
    .await
    .with_context(|| {
        format!(
            "cannot bind the SFU's UDP port {} (sfu.udp_port)",
            settings.udp_port
        )
    })?;
    crate::sfu::forward_to_webhooks(sfu.notices(), webhooks);
    Ok(sfu)
}

fn room_settings(config: &Config) -> RoomSettings {
    let settings = &config.sfu;
    RoomSettings {
        empty_timeout: std::time::Duration::from_secs(settings.empty_timeout_secs),
        departure_timeout: std::time::Duration::from_secs(settings.departure_timeout_secs),
        max_participants: settings.max_participants,
    }
}

fn webhook_notifier(config: &Config) -> WebhookNotifier {
    let urls = config.sfu.webhook_urls.clone();
    let key = config.webhook_api_key();
    match (
        urls.is_empty(),
        key.and_then(|k| config.keys.get(k).map(|s| (k, s))),
    ) {
        (false, Some((key, secret))) => {
            tracing::info!(urls = urls.len(), key, "room webhooks enabled");
            WebhookNotifier::start(urls, key.to_string(), secret.expose().to_string())
        }
        _ => WebhookNotifier::disabled(),
    }
}

/// The built-in layouts plus every `*.tera` file in `dir` (a user's file
/// replaces the built-in of the same name). Broken files are logged and skipped.
pub fn load_layouts(dir: &Path) -> LayoutTemplates {
    let mut layouts = LayoutTemplates::builtin();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return layouts;
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tera"))
        .collect();
    files.sort();
    for path in files {
        let name = path.display().to_string();
        let loaded = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|source| layouts.add(&name, &source).map_err(|e| e.to_string()));
        match loaded {
            Ok(()) => tracing::info!(file = %name, "layout loaded"),
            Err(error) => tracing::error!(file = %name, %error, "layout skipped"),
        }
    }
    layouts
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown signal received");
}

/// Finishes HLS and recording uploads that an earlier run left on disk.
fn resume_uploads(storage: &Storage, recordings_dir: &Path) {
    let hls = HlsJob::resume_all(&recordings_dir.join("hls"), &storage.store);
    let recordings = crate::outputs::upload::resume_all(recordings_dir, &storage.store);
    if !hls.is_empty() || !recordings.is_empty() {
        tracing::info!(
            hls = hls.len(),
            recordings = recordings.len(),
            "resuming uploads left by the last run"
        );
    }
}

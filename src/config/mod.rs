//! Typed configuration: `config/default.toml` (compiled in), an optional file,
//! then `ONAIR_*` environment variables and `DATABASE_URL`.

mod secret;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Deserialize;

pub use secret::Secret;

/// The defaults shipped in the repository, compiled in so the binary runs from anywhere.
const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The API key pair that exists only in development mode (as LiveKit's `--dev`).
pub const DEV_API_KEY: &str = "devkey";
pub const DEV_API_SECRET: &str = "secret";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub keys: BTreeMap<String, Secret>,
    pub database: DatabaseConfig,
    pub media: MediaConfig,
    pub mux: MuxConfig,
    pub limits: LimitsConfig,
    pub sfu: SfuConfig,
    pub storage: StorageConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: url::Url,
    pub node_id: String,
    pub dev: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Empty means "start the embedded Postgres".
    pub url: Secret,
    pub embedded_dir: PathBuf,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub recordings_dir: PathBuf,
    pub layouts_dir: PathBuf,
    /// Seconds a destination that was live is retried after failing.
    pub output_retry_secs: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuxConfig {
    /// Verifies `Mux-Signature` on incoming webhooks; empty = not configured.
    pub webhook_secret: Secret,
    /// A Mux access token (Video read/write); both set = go-live sends to Mux.
    pub token_id: String,
    pub token_secret: Secret,
    pub base_url: url::Url,
    /// Where the program is sent; the stream key is appended.
    pub ingest_url: String,
    /// Create Mux test streams (free, watermarked, 5 minutes).
    pub test: bool,
}

impl MuxConfig {
    /// Whether go-live can create Mux live streams.
    pub fn has_credentials(&self) -> bool {
        !self.token_id.is_empty() && !self.token_secret.expose().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_livestreams: u32,
    pub max_duration_secs: u32,
    pub max_destinations: u32,
    /// Custom RTMP URLs may point at loopback/private addresses.
    pub allow_private_destinations: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfuConfig {
    /// The one UDP port all WebRTC media uses; 0 = any free port (tests).
    pub udp_port: u16,
    /// Addresses bound for media and announced as ICE candidates; empty =
    /// every IPv4 address of this machine's interfaces.
    pub node_ips: Vec<std::net::IpAddr>,
    pub empty_timeout_secs: u64,
    pub departure_timeout_secs: u64,
    /// 0 = unlimited.
    pub max_participants: u32,
    pub webhook_urls: Vec<url::Url>,
    /// The API key that signs outgoing webhooks; empty = the first configured key.
    pub webhook_api_key: String,
    /// STUN/TURN URLs advertised to WHIP/WHEP clients in `Link` headers.
    pub ice_servers: Vec<String>,
    /// The address peers reach this node at through 1:1 NAT (a container's
    /// published port, a cloud VM's public IP); empty = none.
    pub public_ip: String,
}

impl SfuConfig {
    /// `public_ip`, checked at load time.
    pub fn public_ip(&self) -> Option<std::net::IpAddr> {
        self.public_ip.trim().parse().ok()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// S3 API endpoint (MinIO, s3s-fs, R2, …); empty = AWS S3 for `region`.
    pub endpoint: String,
    pub region: String,
    /// Empty = no object storage: HLS is refused and MP4s stay local.
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// `endpoint/bucket/key` instead of `bucket.endpoint/key` (MinIO, s3s-fs).
    pub path_style: bool,
    /// HLS segment length in seconds (segments cut on keyframes).
    pub hls_segment_secs: u32,
    /// Object key prefix of a livestream's HLS playlist and segments.
    pub hls_path: String,
    /// Upload MP4 recordings when a livestream completes.
    pub upload_mp4: bool,
    /// Object key of an uploaded MP4.
    pub mp4_path: String,
}

impl StorageConfig {
    pub fn is_configured(&self) -> bool {
        !self.bucket.trim().is_empty()
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if !self.endpoint.is_empty()
            && !url::Url::parse(&self.endpoint)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return invalid(
                "storage.endpoint",
                "must be an http:// or https:// URL".into(),
            );
        }
        if self.access_key_id.is_empty() != self.secret_access_key.expose().is_empty() {
            return invalid(
                "storage.secret_access_key",
                "set both storage.access_key_id and storage.secret_access_key, or neither".into(),
            );
        }
        if !(1..=10).contains(&self.hls_segment_secs) {
            return invalid(
                "storage.hls_segment_secs",
                "must be between 1 and 10".into(),
            );
        }
        for (key, template) in [
            ("storage.hls_path", &self.hls_path),
            ("storage.mp4_path", &self.mp4_path),
        ] {
            if let Err(message) = crate::storage::ObjectPath::check(template) {
                return invalid(key, message);
            }
        }
        Ok(())
    }
}

/// What can go wrong loading configuration; the message always names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(String),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Overrides given on the command line; applied after the environment.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CliOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Loads defaults, then `file` (if any), then the process environment, then CLI overrides.
    pub fn load(file: Option<&Path>, cli: &CliOverrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Parse(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only `ONAIR_<SECTION>__<KEY>` names configuration; other ONAIR_*
        // variables (ONAIR_LOG, ONAIR_KEYS, the tests' own) are not keys.
        figment = figment.merge(
            Env::prefixed("ONAIR_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        if let Some(server) = server_overrides(cli) {
            figment = figment.merge(Serialized::default("server", server));
        }
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(describe_figment_error(e)))?;

        if let Ok(keys) = std::env::var("ONAIR_KEYS") {
            config.keys.extend(parse_key_list(&keys)?);
        }
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.trim().is_empty()
        {
            config.database.url = Secret::new(url);
        }
        config.finish()
    }

    /// Applies derived defaults (dev key, node id) and checks cross-field rules.
    fn finish(mut self) -> Result<Config, ConfigError> {
        if self.server.dev {
            self.keys
                .entry(DEV_API_KEY.to_string())
                .or_insert_with(|| Secret::new(DEV_API_SECRET));
        }
        if self.keys.is_empty() {
            return Err(ConfigError::Invalid {
                key: "keys",
                message: "no API keys configured: add `[keys]` entries, set ONAIR_KEYS=\"key: secret\", or run in dev mode (--dev)".into(),
            });
        }
        if let Some((key, _)) = self
            .keys
            .iter()
            .find(|(k, s)| k.is_empty() || s.expose().is_empty())
        {
            return Err(ConfigError::Invalid {
                key: "keys",
                message: format!("API key `{key}` has an empty name or secret"),
            });
        }
        if !matches!(self.server.public_url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                key: "server.public_url",
                message: "must be an http:// or https:// URL".into(),
            });
        }
        if self.server.node_id.trim().is_empty() {
            self.server.node_id = nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "onair".into());
        }
        let positive = [
            ("database.max_connections", self.database.max_connections),
            ("limits.max_livestreams", self.limits.max_livestreams),
            ("limits.max_duration_secs", self.limits.max_duration_secs),
            ("limits.max_destinations", self.limits.max_destinations),
            ("media.output_retry_secs", self.media.output_retry_secs),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid {
                key,
                message: "must be greater than zero".into(),
            });
        }
        if self.mux.token_id.is_empty() != self.mux.token_secret.expose().is_empty() {
            return Err(ConfigError::Invalid {
                key: "mux.token_secret",
                message: "set both mux.token_id and mux.token_secret, or neither".into(),
            });
        }
        if !(self.mux.ingest_url.starts_with("rtmp://")
            || self.mux.ingest_url.starts_with("rtmps://"))
        {
            return Err(ConfigError::Invalid {
                key: "mux.ingest_url",
                message: "must be an rtmp:// or rtmps:// URL".into(),
            });
        }
        if !self.sfu.webhook_api_key.is_empty()
            && !self.keys.contains_key(&self.sfu.webhook_api_key)
        {
            return Err(ConfigError::Invalid {
                key: "sfu.webhook_api_key",
                message: format!(
                    "`{}` is not one of the configured API keys",
                    self.sfu.webhook_api_key
                ),
            });
        }
        if self.sfu.empty_timeout_secs == 0 || self.sfu.departure_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "sfu.empty_timeout_secs",
                message: "room timeouts must be at least one second".into(),
            });
        }
        if !self.sfu.public_ip.trim().is_empty() && self.sfu.public_ip().is_none() {
            return Err(ConfigError::Invalid {
                key: "sfu.public_ip",
                message: format!("`{}` is not an IP address", self.sfu.public_ip),
            });
        }
        self.storage.check()?;
        Ok(self)
    }

    /// The database URL, if one is configured (otherwise the embedded Postgres is used).
    pub fn database_url(&self) -> Option<&str> {
        let url = self.database.url.expose();
        (!url.trim().is_empty()).then_some(url)
    }

    /// Keys whose secrets are too short to resist brute force, for a start-up warning.
    /// The key that signs room webhooks: `sfu.webhook_api_key`, else the first key.
    pub fn webhook_api_key(&self) -> Option<&str> {
        if self.sfu.webhook_api_key.is_empty() {
            self.keys.keys().next().map(String::as_str)
        } else {
            Some(self.sfu.webhook_api_key.as_str())
        }
    }

    pub fn weak_keys(&self) -> Vec<&str> {
        self.keys
            .iter()
            .filter(|(k, s)| s.expose().len() < 32 && !(self.server.dev && *k == DEV_API_KEY))
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

fn server_overrides(cli: &CliOverrides) -> Option<serde_json::Value> {
    let value = serde_json::to_value(cli).ok()?;
    (value.as_object().is_some_and(|o| !o.is_empty())).then_some(value)
}

/// Parses LiveKit's `LIVEKIT_KEYS` format: `key1: secret1, key2: secret2`.
pub fn parse_key_list(list: &str) -> Result<BTreeMap<String, Secret>, ConfigError> {
    let mut keys = BTreeMap::new();
    for pair in list
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let Some((key, secret)) = pair.split_once(':') else {
            return Err(ConfigError::Invalid {
                key: "ONAIR_KEYS",
                message: "expected `key: secret` pairs separated by commas".into(),
            });
        };
        let (key, secret) = (key.trim(), secret.trim());
        if key.is_empty() || secret.is_empty() {
            return Err(ConfigError::Invalid {
                key: "ONAIR_KEYS",
                message: "an API key or secret is empty".into(),
            });
        }
        keys.insert(key.to_string(), Secret::new(secret));
    }
    Ok(keys)
}

/// figment's messages name the key and where its value came from; keep all of them.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;

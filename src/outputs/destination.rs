//! Stream destinations — RTMP(S) platform ingest URLs and SRT — keeping the
//! secret part (stream key, SRT stream id and passphrase) apart from the URL
//! so the URL can be shown and logged.

use std::fmt;
use std::str::FromStr;

use crate::config::Secret;

/// Mux's RTMPS ingest (RTMP is also offered on port 5222).
pub const MUX_RTMPS_INGEST: &str = "rtmps://global-live.mux.com:443/app";
pub const YOUTUBE_INGEST: &str = "rtmp://a.rtmp.youtube.com/live2";
pub const TWITCH_DEFAULT_INGEST: &str = "live.twitch.tv";

/// What replaces the stream key wherever a URL is shown.
pub const REDACTED: &str = "****";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationType {
    Mux,
    Youtube,
    Twitch,
    Custom,
    /// An `srt://host:port?…` URL (MPEG-TS over SRT, caller mode).
    Srt,
}

impl DestinationType {
    pub const ALL: [DestinationType; 5] = [
        DestinationType::Mux,
        DestinationType::Youtube,
        DestinationType::Twitch,
        DestinationType::Custom,
        DestinationType::Srt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DestinationType::Mux => "mux",
            DestinationType::Youtube => "youtube",
            DestinationType::Twitch => "twitch",
            DestinationType::Custom => "custom",
            DestinationType::Srt => "srt",
        }
    }
}

impl fmt::Display for DestinationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DestinationType {
    type Err = DestinationError;
    fn from_str(s: &str) -> Result<Self, DestinationError> {
        DestinationType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| DestinationError::UnknownType(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DestinationError {
    #[error("unknown destination type `{0}` (expected mux, youtube, twitch, custom or srt)")]
    UnknownType(String),
    #[error("a {0} destination needs a non-empty streamKey")]
    MissingKey(DestinationType),
    #[error("streamKey must not be empty or contain spaces, `/` or control characters")]
    BadKey,
    #[error("a custom destination needs customRtmpUrl")]
    MissingUrl,
    #[error("customRtmpUrl must be an rtmp:// or rtmps:// URL with a host: {0}")]
    BadUrl(String),
    #[error("twitchIngestServer must be a host name (optionally with :port)")]
    BadIngestServer,
    #[error("customRtmpUrl is only for custom and srt destinations")]
    UrlNotAllowed,
    #[error(
        "an srt destination needs customRtmpUrl `srt://host:port[?streamid=…&passphrase=…]`: {0}"
    )]
    BadSrtUrl(String),
}

/// A resolved destination: a displayable base URL plus the secret key.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub kind: DestinationType,
    /// `scheme://host[:port]/app` — safe to show.
    pub base_url: String,
    /// Stream key (the path after the RTMP application, plus any query).
    pub stream_key: Option<Secret>,
}

impl Destination {
    /// The host and port the destination connects to (RTMP 1935, RTMPS 443 by default).
    pub fn host_port(&self) -> Option<(String, u16)> {
        let url = url::Url::parse(&self.base_url).ok()?;
        let default = if url.scheme() == "rtmps" { 443 } else { 1935 };
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Some((host, url.port().unwrap_or(default)))
    }

    /// Builds a destination from the fields of a go-live request.
    pub fn resolve(
        kind: DestinationType,
        stream_key: Option<&str>,
        custom_rtmp_url: Option<&str>,
        twitch_ingest_server: Option<&str>,
    ) -> Result<Destination, DestinationError> {
        let key = stream_key.map(str::trim);
        if key.is_some_and(|k| !valid_key(k)) {
            return Err(DestinationError::BadKey);
        }
        if !matches!(kind, DestinationType::Custom | DestinationType::Srt)
            && custom_rtmp_url.is_some()
        {
            return Err(DestinationError::UrlNotAllowed);
        }
        let required_key = || {
            key.map(Secret::new)
                .ok_or(DestinationError::MissingKey(kind))
        };
        match kind {
            DestinationType::Mux => Ok(Destination {
                kind,
                base_url: MUX_RTMPS_INGEST.to_string(),
                stream_key: Some(required_key()?),
            }),
            DestinationType::Youtube => Ok(Destination {
                kind,
                base_url: YOUTUBE_INGEST.to_string(),
                stream_key: Some(required_key()?),
            }),
            DestinationType::Twitch => {
                let host = twitch_ingest_server
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .unwrap_or(TWITCH_DEFAULT_INGEST);
                if !valid_host(host) {
                    return Err(DestinationError::BadIngestServer);
                }
                Ok(Destination {
                    kind,
                    base_url: format!("rtmp://{host}/app"),
                    stream_key: Some(required_key()?),
                })
            }
            DestinationType::Srt => {
                if key.is_some() {
                    return Err(DestinationError::BadSrtUrl(
                        "the stream id goes in the URL's query, not in streamKey".into(),
                    ));
                }
                let url = custom_rtmp_url
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .ok_or(DestinationError::MissingUrl)?;
                let (base_url, query) = split_srt_url(url)?;
                Ok(Destination {
                    kind,
                    base_url,
                    stream_key: query.map(Secret::new),
                })
            }
            DestinationType::Custom => {
                let url = custom_rtmp_url
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .ok_or(DestinationError::MissingUrl)?;
                let (base_url, embedded_key) = split_rtmp_url(url)?;
                let stream_key = match (key, embedded_key) {
                    (Some(key), Some(path)) => Some(Secret::new(format!("{path}/{key}"))),
                    (Some(key), None) => Some(Secret::new(key)),
                    (None, embedded) => embedded.map(Secret::new),
                };
                Ok(Destination {
                    kind,
                    base_url,
                    stream_key,
                })
            }
        }
    }

    /// The URL to publish to, key included. Never log this.
    pub fn full_url(&self) -> Secret {
        match &self.stream_key {
            Some(key) => Secret::new(format!(
                "{}{}{}",
                self.base_url,
                self.separator(),
                key.expose()
            )),
            None => Secret::new(self.base_url.clone()),
        }
    }

    /// The URL as shown in responses, logs and the database.
    pub fn redacted_url(&self) -> String {
        match &self.stream_key {
            Some(_) => format!("{}{}{REDACTED}", self.base_url, self.separator()),
            None => self.base_url.clone(),
        }
    }

    /// Between the shown URL and its secret: RTMP's key is a path, SRT's a query.
    fn separator(&self) -> char {
        if self.kind == DestinationType::Srt {
            '?'
        } else {
            '/'
        }
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 512
        && !key
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// Splits `rtmp://host/app/key?query` into `rtmp://host/app` and `key?query`:
/// by RTMP convention the first path segment is the application and the rest
/// is the stream name, which platforms use as the secret key.
/// `srt://host:port?query` → (`srt://host:port`, the query). SRT has no
/// default port, so it must be given.
fn split_srt_url(url: &str) -> Result<(String, Option<String>), DestinationError> {
    let bad = |why: &str| DestinationError::BadSrtUrl(why.to_string());
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains spaces or control characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "srt" {
        return Err(bad("the scheme is not srt"));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("it has no host"))?;
    let port = parsed.port().ok_or_else(|| bad("it has no port"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("credentials belong in the passphrase query parameter"));
    }
    if !matches!(parsed.path(), "" | "/") {
        return Err(bad(
            "SRT URLs have no path; put the stream id in ?streamid=",
        ));
    }
    let query = parsed.query().filter(|q| !q.is_empty()).map(str::to_string);
    Ok((format!("srt://{host}:{port}"), query))
}

fn split_rtmp_url(url: &str) -> Result<(String, Option<String>), DestinationError> {
    let bad = |why: &str| DestinationError::BadUrl(why.to_string());
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains spaces or control characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "rtmp" | "rtmps") {
        return Err(bad("the scheme is not rtmp or rtmps"));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("it has no host"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "credentials in the URL are not supported; put the secret in streamKey",
        ));
    }
    let authority = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let path = parsed.path().trim_matches('/');
    let (app, rest) = path.split_once('/').unwrap_or((path, ""));
    let base = if app.is_empty() {
        format!("{}://{authority}", parsed.scheme())
    } else {
        format!("{}://{authority}/{app}", parsed.scheme())
    };
    let mut secret = rest.to_string();
    if let Some(query) = parsed.query() {
        secret = format!("{secret}?{query}");
    }
    Ok((base, (!secret.is_empty()).then_some(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        kind: &str,
        key: Option<&str>,
        url: Option<&str>,
        twitch: Option<&str>,
    ) -> Result<Destination, DestinationError> {
        Destination::resolve(kind.parse()?, key, url, twitch)
    }

    #[test]
    fn srt_keeps_its_query_secret_and_needs_a_port() {
        let srt = resolve(
            "srt",
            None,
            Some("srt://ingest.example.com:9000?streamid=abc&passphrase=p4ss"),
            None,
        )
        .unwrap();
        assert_eq!(srt.redacted_url(), "srt://ingest.example.com:9000?****");
        assert_eq!(
            srt.full_url().expose(),
            "srt://ingest.example.com:9000?streamid=abc&passphrase=p4ss"
        );
        assert_eq!(srt.host_port(), Some(("ingest.example.com".into(), 9000)));
        let bare = resolve("srt", None, Some("srt://10.0.0.1:9000"), None).unwrap();
        assert_eq!(bare.redacted_url(), "srt://10.0.0.1:9000");
        for bad in ["srt://host", "rtmp://host:1935/app", "srt://host:9000/path"] {
            assert!(
                matches!(
                    resolve("srt", None, Some(bad), None),
                    Err(DestinationError::BadSrtUrl(_))
                ),
                "{bad}"
            );
        }
        assert!(resolve("srt", Some("key"), Some("srt://host:9000"), None).is_err());
    }

    #[test]
    fn platform_urls() {
        let yt = resolve("youtube", Some("abcd-1234"), None, None).unwrap();
        assert_eq!(
            yt.full_url().expose(),
            "rtmp://a.rtmp.youtube.com/live2/abcd-1234"
        );
        assert_eq!(yt.redacted_url(), "rtmp://a.rtmp.youtube.com/live2/****");
        let tw = resolve("twitch", Some("live_1"), None, None).unwrap();
        assert_eq!(tw.full_url().expose(), "rtmp://live.twitch.tv/app/live_1");
        let tw = resolve(
            "twitch",
            Some("live_1"),
            None,
            Some("ingest.example.net:1935"),
        )
        .unwrap();
        assert_eq!(
            tw.full_url().expose(),
            "rtmp://ingest.example.net:1935/app/live_1"
        );
        let mux = resolve("mux", Some("k"), None, None).unwrap();
        assert_eq!(
            mux.full_url().expose(),
            "rtmps://global-live.mux.com:443/app/k"
        );
    }

    #[test]
    fn custom_urls_keep_the_key_apart() {
        let d = resolve(
            "custom",
            Some("key1"),
            Some("rtmp://127.0.0.1:1935/live"),
            None,
        )
        .unwrap();
        assert_eq!(d.full_url().expose(), "rtmp://127.0.0.1:1935/live/key1");
        assert_eq!(d.redacted_url(), "rtmp://127.0.0.1:1935/live/****");
        // A key inside the URL is found and hidden too.
        let d = resolve(
            "custom",
            None,
            Some("rtmps://ingest.example.com/app/secret-key?x=1"),
            None,
        )
        .unwrap();
        assert_eq!(d.redacted_url(), "rtmps://ingest.example.com/app/****");
        assert_eq!(
            d.full_url().expose(),
            "rtmps://ingest.example.com/app/secret-key?x=1"
        );
        // Only an application: nothing secret.
        let d = resolve("custom", None, Some("rtmp://host/live"), None).unwrap();
        assert_eq!(d.stream_key, None);
        assert_eq!(d.redacted_url(), "rtmp://host/live");
    }

    #[test]
    fn refusals() {
        assert_eq!(
            resolve("periscope", None, None, None),
            Err(DestinationError::UnknownType("periscope".into()))
        );
        assert_eq!(
            resolve("youtube", None, None, None),
            Err(DestinationError::MissingKey(DestinationType::Youtube))
        );
        assert_eq!(
            resolve("youtube", Some(""), None, None),
            Err(DestinationError::BadKey)
        );
        assert_eq!(
            resolve("youtube", Some("a b"), None, None),
            Err(DestinationError::BadKey)
        );
        assert_eq!(
            resolve("custom", Some("k"), None, None),
            Err(DestinationError::MissingUrl)
        );
        assert!(matches!(
            resolve("custom", Some("k"), Some("http://x/app"), None),
            Err(DestinationError::BadUrl(_))
        ));
        assert!(matches!(
            resolve("custom", Some("k"), Some("rtmp://u:p@x/app"), None),
            Err(DestinationError::BadUrl(_))
        ));
        assert!(matches!(
            resolve("custom", Some("k"), Some("not a url"), None),
            Err(DestinationError::BadUrl(_))
        ));
        assert_eq!(
            resolve("twitch", Some("k"), None, Some("bad host/x")),
            Err(DestinationError::BadIngestServer)
        );
        assert_eq!(
            resolve("youtube", Some("k"), Some("rtmp://x/app"), None),
            Err(DestinationError::UrlNotAllowed)
        );
    }
}

//! LiveKit egress requests turned into onair go-lives. What onair cannot do
//! is refused with a reason (`invalid_argument`), never silently dropped.

use chrono::{DateTime, Utc};
use livekit_protocol as proto;

use crate::auth::KeyRing;
use crate::config::{LimitsConfig, Secret, StorageConfig};
use crate::layout::LayoutTemplates;
use crate::livestream::preset::{DEFAULT_PRESET, EncodingPreset};
use crate::livestream::request::{
    Capabilities, DEFAULT_LATENCY_MODE, FileKind, GoLive, HlsNaming, ImagePlan, NamedDestination,
    RequestWebhooks, ValidationError, validate_layout, validate_room_name,
};
use crate::livestream::request::{DestinationRequest, UpdateRequest};
use crate::livestream::runner::{AudioMixing, TrackSelection};
use crate::livestream::service::is_stream;
use crate::outputs::{Destination, DestinationType, ProgramMedia};
use crate::store::OutputRow;

/// The layout LiveKit's default web template draws when a request names
/// none (`template-default` falls back to its grid).
pub const DEFAULT_EGRESS_LAYOUT: &str = "grid";

/// What a translation needs besides the request.
pub struct EgressContext<'a> {
    pub limits: &'a LimitsConfig,
    pub capabilities: Capabilities,
    pub layouts: &'a LayoutTemplates,
    /// The room's sid, for `{room_id}` in file names.
    pub room_id: String,
    pub now: DateTime<Utc>,
    /// To sign per-request webhooks with the key they name.
    pub keys: &'a KeyRing,
}

fn invalid(message: impl Into<String>) -> ValidationError {
    ValidationError {
        code: "invalid_argument",
        message: message.into(),
    }
}

/// StartRoomCompositeEgress → a go-live of the whole room.
pub fn room_composite(
    request: proto::RoomCompositeEgressRequest,
    context: &EgressContext,
) -> Result<GoLive, ValidationError> {
    use proto::room_composite_egress_request::{Options, Output};
    if !request.custom_base_url.is_empty() {
        return Err(invalid(format!(
            "custom_base_url: onair composes rooms natively, without a web page; choose one of its layouts instead: {}",
            context.layouts.names().join(", ")
        )));
    }
    let layout = if request.layout.is_empty() {
        DEFAULT_EGRESS_LAYOUT.to_string()
    } else {
        validate_layout(&request.layout, context.layouts)?
    };
    let media = match (request.audio_only, request.video_only) {
        (true, true) => return Err(invalid("audio_only and video_only cannot both be set")),
        (true, false) => ProgramMedia::AudioOnly,
        (false, true) => ProgramMedia::VideoOnly,
        (false, false) => ProgramMedia::AudioVideo,
    };
    let audio_mixing = match proto::AudioMixing::try_from(request.audio_mixing) {
        Ok(proto::AudioMixing::DefaultMixing) => AudioMixing::Default,
        Ok(proto::AudioMixing::DualChannelAlternate) => AudioMixing::Alternate,
        Ok(proto::AudioMixing::DualChannelAgent) => AudioMixing::Agent,
        Err(_) => return Err(invalid("audio_mixing: unknown mixing mode")),
    };
    let mut outputs = Outputs {
        streams: request.stream_outputs,
        files: request.file_outputs,
        segments: request.segment_outputs,
        images: request.image_outputs,
    };
    #[allow(deprecated)]
    match request.output {
        Some(Output::File(file)) => outputs.files.push(file),
        Some(Output::Stream(stream)) => outputs.streams.push(stream),
        Some(Output::Segments(segments)) => outputs.segments.push(segments),
        None => {}
    }
    let encoding = match request.options {
        None => Encoding::Default,
        Some(Options::Preset(preset)) => Encoding::Preset(preset),
        Some(Options::Advanced(options)) => Encoding::Advanced(options),
    };
    let program = Program {
        room_name: request.room_name,
        layout,
        media,
        selection: TrackSelection::Room,
        source_type: "room_composite",
        audio_mixing,
    };
    go_live(program, encoding, outputs, &request.webhooks, context)
}

/// StartParticipantEgress → one participant's camera and microphone (or
/// screen share and its audio), filling the picture.
pub fn participant(
    request: proto::ParticipantEgressRequest,
    context: &EgressContext,
) -> Result<GoLive, ValidationError> {
    use proto::participant_egress_request::Options;
    if request.identity.is_empty() {
        return Err(invalid("identity is required"));
    }
    let encoding = match request.options {
        None => Encoding::Default,
        Some(Options::Preset(preset)) => Encoding::Preset(preset),
        Some(Options::Advanced(options)) => Encoding::Advanced(options),
    };
    let outputs = Outputs {
        streams: request.stream_outputs,
        files: request.file_outputs,
        segments: request.segment_outputs,
        images: request.image_outputs,
    };
    let program = Program {
        room_name: request.room_name,
        layout: SINGLE_LAYOUT.to_string(),
        media: ProgramMedia::AudioVideo,
        selection: TrackSelection::Participant {
            identity: request.identity,
            screen_share: request.screen_share,
        },
        source_type: "participant",
        audio_mixing: AudioMixing::Default,
    };
    go_live(program, encoding, outputs, &request.webhooks, context)
}

/// StartTrackCompositeEgress → the given audio and video tracks.
pub fn track_composite(
    request: proto::TrackCompositeEgressRequest,
    context: &EgressContext,
) -> Result<GoLive, ValidationError> {
    use proto::track_composite_egress_request::{Options, Output};
    let audio = Some(request.audio_track_id).filter(|t| !t.is_empty());
    let video = Some(request.video_track_id).filter(|t| !t.is_empty());
    let media = match (&audio, &video) {
        (None, None) => return Err(invalid("give audio_track_id, video_track_id or both")),
        (Some(_), None) => ProgramMedia::AudioOnly,
        (None, Some(_)) => ProgramMedia::VideoOnly,
        (Some(_), Some(_)) => ProgramMedia::AudioVideo,
    };
    let encoding = match request.options {
        None => Encoding::Default,
        Some(Options::Preset(preset)) => Encoding::Preset(preset),
        Some(Options::Advanced(options)) => Encoding::Advanced(options),
    };
    let mut outputs = Outputs {
        streams: request.stream_outputs,
        files: request.file_outputs,
        segments: request.segment_outputs,
        images: request.image_outputs,
    };
    #[allow(deprecated)]
    match request.output {
        Some(Output::File(file)) => outputs.files.push(file),
        Some(Output::Stream(stream)) => outputs.streams.push(stream),
        Some(Output::Segments(segments)) => outputs.segments.push(segments),
        None => {}
    }
    let program = Program {
        room_name: request.room_name,
        layout: SINGLE_LAYOUT.to_string(),
        media,
        selection: TrackSelection::Tracks { audio, video },
        source_type: "track_composite",
        audio_mixing: AudioMixing::Default,
    };
    go_live(program, encoding, outputs, &request.webhooks, context)
}

/// What a track egress needs to know of its track (from the SFU).
pub struct TrackFacts {
    pub sid: String,
    pub audio: bool,
    /// `camera`, `microphone`, `screen_share`, …
    pub source: String,
    pub publisher_identity: String,
    /// The container its codec is recorded in without transcoding.
    pub extension: &'static str,
}

/// StartTrackEgress → one track written as it is (no program): VP8/VP9 to
/// WebM, H.264 to MP4, Opus to Ogg, under the recordings directory or the
/// request's bucket.
pub fn track(
    request: proto::TrackEgressRequest,
    facts: &TrackFacts,
    context: &EgressContext,
) -> Result<GoLive, ValidationError> {
    use proto::direct_file_output::Output as Upload;
    use proto::track_egress_request::Output;
    validate_room_name(&request.room_name)?;
    let file = match &request.output {
        Some(Output::File(file)) => file,
        Some(Output::WebsocketUrl(_)) => {
            return Err(invalid(
                "websocket_url: track egress to a WebSocket is not supported; give a file",
            ));
        }
        None => return Err(invalid("give the track egress a file output")),
    };
    let upload = match &file.output {
        None => None,
        Some(Upload::S3(s3)) => Some(storage_config(s3, "file")?),
        Some(_) => return Err(unsupported_storage("file")),
    };
    let webhooks = request_webhooks(&request.webhooks, context.keys)?;
    let template = if file.filepath.is_empty() || file.filepath.ends_with('/') {
        format!("{}{{room_name}}-{{track_id}}-{{time}}", file.filepath)
    } else {
        file.filepath.clone()
    };
    let mut path = render(&template, &request.room_name, context)
        .replace("{track_id}", &facts.sid)
        .replace("{track_type}", if facts.audio { "audio" } else { "video" })
        .replace("{track_source}", &facts.source)
        .replace("{publisher_identity}", &facts.publisher_identity);
    let extension = format!(".{}", facts.extension);
    if !path.to_ascii_lowercase().ends_with(&extension) {
        path.push_str(&extension);
    }
    check_relative(&path)?;
    let file_kind = match facts.extension {
        "ogg" => FileKind::Ogg,
        "webm" => FileKind::WebM,
        _ => FileKind::Mp4,
    };
    let preset = EncodingPreset::by_name(DEFAULT_PRESET)
        .ok_or_else(|| invalid("the default preset is missing"))?;
    Ok(GoLive {
        room_name: request.room_name,
        layout: SINGLE_LAYOUT.to_string(),
        preset,
        latency_mode: DEFAULT_LATENCY_MODE.to_string(),
        max_duration_secs: None,
        mux: false,
        destinations: Vec::new(),
        hls: false,
        mp4: true,
        media: if facts.audio {
            ProgramMedia::AudioOnly
        } else {
            ProgramMedia::VideoOnly
        },
        mp4_path: Some(path),
        file_kind,
        mp4_upload: upload,
        hls_naming: None,
        source_type: "track",
        audio_mixing: AudioMixing::Default,
        selection: TrackSelection::Track {
            track: facts.sid.clone(),
            audio: facts.audio,
        },
        room_sid: Some(context.room_id.clone()),
        webhooks,
        images: Vec::new(),
    })
}

/// A participant or track composite shows one person: the single-speaker
/// layout fills the picture with them.
const SINGLE_LAYOUT: &str = "single-speaker";

/// What a program composes, whatever request asked for it.
struct Program {
    room_name: String,
    layout: String,
    media: ProgramMedia,
    selection: TrackSelection,
    source_type: &'static str,
    audio_mixing: AudioMixing,
}

enum Encoding {
    Default,
    Preset(i32),
    Advanced(proto::EncodingOptions),
}

struct Outputs {
    streams: Vec<proto::StreamOutput>,
    files: Vec<proto::EncodedFileOutput>,
    segments: Vec<proto::SegmentedFileOutput>,
    images: Vec<proto::ImageOutput>,
}

fn go_live(
    program: Program,
    encoding: Encoding,
    outputs: Outputs,
    webhooks: &[proto::WebhookConfig],
    context: &EgressContext,
) -> Result<GoLive, ValidationError> {
    validate_room_name(&program.room_name)?;
    let webhooks = request_webhooks(webhooks, context.keys)?;
    let preset = preset(encoding)?;
    let images = images(&outputs.images, &program, &preset, context)?;
    let room_name = &program.room_name;
    let destinations = stream_destinations(&outputs.streams, context.limits)?;
    let (mp4_path, file_kind, mp4_upload) =
        match file_path(&outputs.files, room_name, program.media, context)? {
            Some((path, kind, upload)) => (Some(path), kind, upload),
            None => (None, FileKind::Mp4, None),
        };
    let hls = segments(&outputs.segments, room_name, context)?;
    if destinations.is_empty() && mp4_path.is_none() && hls.is_none() && images.is_empty() {
        return Err(invalid(
            "no outputs: give stream_outputs, file_outputs, segment_outputs or image_outputs",
        ));
    }
    Ok(GoLive {
        room_name: program.room_name,
        layout: program.layout,
        preset,
        latency_mode: DEFAULT_LATENCY_MODE.to_string(),
        max_duration_secs: None,
        mux: false,
        destinations,
        hls: hls.is_some(),
        mp4: mp4_path.is_some(),
        media: program.media,
        mp4_path,
        file_kind,
        mp4_upload,
        hls_naming: hls,
        source_type: program.source_type,
        selection: program.selection,
        audio_mixing: program.audio_mixing,
        room_sid: Some(context.room_id.clone()),
        webhooks,
        images,
    })
}

/// Image outputs: JPEG stills of the program, by default at its size.
fn images(
    outputs: &[proto::ImageOutput],
    program: &Program,
    preset: &EncodingPreset,
    context: &EgressContext,
) -> Result<Vec<ImagePlan>, ValidationError> {
    use crate::outputs::images::ImageSuffix;
    if outputs.len() > 4 {
        return Err(invalid("image_outputs: at most 4 per egress"));
    }
    if !outputs.is_empty() && !program.media.has_video() {
        return Err(invalid(
            "image_outputs need video; this egress is audio only",
        ));
    }
    outputs
        .iter()
        .map(|output| {
            use proto::image_output::Output as Upload;
            let upload = match &output.output {
                None => None,
                Some(Upload::S3(s3)) => Some(storage_config(s3, "image_outputs")?),
                Some(_) => return Err(unsupported_storage("image_outputs")),
            };
            match proto::ImageCodec::try_from(output.image_codec) {
                Ok(proto::ImageCodec::IcDefault | proto::ImageCodec::IcJpeg) => {}
                _ => return Err(invalid("image_outputs: image_codec must be JPEG")),
            }
            let suffix = match proto::ImageFileSuffix::try_from(output.filename_suffix) {
                Ok(proto::ImageFileSuffix::ImageSuffixIndex) => ImageSuffix::Index,
                Ok(proto::ImageFileSuffix::ImageSuffixTimestamp) => ImageSuffix::Timestamp,
                Ok(proto::ImageFileSuffix::ImageSuffixNoneOverwrite) => ImageSuffix::Overwrite,
                Err(_) => return Err(invalid("image_outputs: unknown filename_suffix")),
            };
            let or = |value: i32, default: u32| if value == 0 { default } else { value as u32 };
            let (width, height) = (
                or(output.width, preset.width),
                or(output.height, preset.height),
            );
            if !(16..=3840).contains(&width)
                || !(16..=3840).contains(&height)
                || output.width < 0
                || output.height < 0
            {
                return Err(invalid("image_outputs: width and height must be 16–3840"));
            }
            let interval_secs = match output.capture_interval {
                0 => 10,
                secs @ 1..=3600 => secs,
                _ => return Err(invalid("image_outputs: capture_interval must be 1–3600 s")),
            };
            let template = if output.filename_prefix.is_empty() {
                "{room_name}"
            } else {
                &output.filename_prefix
            };
            let prefix = render(template, &program.room_name, context);
            let prefix = prefix.trim_matches('/').to_string();
            check_relative(&prefix)?;
            Ok(ImagePlan {
                prefix,
                interval_secs,
                width,
                height,
                suffix,
                upload,
            })
        })
        .collect()
}

/// An egress request's own webhook URLs; LiveKit signs them with the API
/// key each names, so all must name the same configured key.
fn request_webhooks(
    webhooks: &[proto::WebhookConfig],
    keys: &KeyRing,
) -> Result<Option<RequestWebhooks>, ValidationError> {
    let Some(first) = webhooks.first() else {
        return Ok(None);
    };
    if webhooks.len() > 8 {
        return Err(invalid("webhooks: at most 8 per egress"));
    }
    if webhooks.iter().any(|w| w.signing_key != first.signing_key) {
        return Err(invalid(
            "webhooks: every URL must name the same signing_key",
        ));
    }
    let api_secret = keys.secret(&first.signing_key).cloned().ok_or_else(|| {
        invalid("webhooks: signing_key must name an API key configured on this server")
    })?;
    let urls = webhooks
        .iter()
        .map(|w| {
            url::Url::parse(&w.url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| invalid("webhooks: every url must be an http(s) URL"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(RequestWebhooks {
        urls,
        api_key: first.signing_key.clone(),
        api_secret,
    }))
}

/// LiveKit encodes egress audio at 44.1 kHz unless told otherwise.
const EGRESS_AUDIO_RATE: u32 = 44_100;

/// A preset by name, or EncodingOptions over LiveKit's documented defaults.
fn preset(encoding: Encoding) -> Result<EncodingPreset, ValidationError> {
    let preset = match encoding {
        Encoding::Default => EncodingPreset::by_name(DEFAULT_PRESET),
        Encoding::Preset(value) => proto::EncodingOptionsPreset::try_from(value)
            .ok()
            .filter(|p| *p != proto::EncodingOptionsPreset::Passthrough)
            .and_then(|p| EncodingPreset::by_name(p.as_str_name())),
        Encoding::Advanced(advanced) => return advanced_options(&advanced),
    };
    preset
        .map(|preset| EncodingPreset {
            audio_rate: EGRESS_AUDIO_RATE,
            ..preset
        })
        .ok_or_else(|| {
            invalid("preset: not a transcoding preset (PASSTHROUGH needs a track egress)")
        })
}

/// LiveKit's video bitrates are kbps; a value above this is read as bits per
/// second (a common mistake that would otherwise ask for gigabits).
const MAX_KBPS: i32 = 100_000;

fn advanced_options(options: &proto::EncodingOptions) -> Result<EncodingPreset, ValidationError> {
    let or = |value: i32, default: i32| if value == 0 { default } else { value };
    let (width, height) = (or(options.width, 1920), or(options.height, 1080));
    let fps = or(options.framerate, 30);
    let kbps = |value: i32| {
        if value > MAX_KBPS {
            value / 1000
        } else {
            value
        }
    };
    let video_kbps = kbps(or(options.video_bitrate, 4500));
    let audio_kbps = kbps(or(options.audio_bitrate, 128));
    if !(16..=3840).contains(&width)
        || !(16..=3840).contains(&height)
        || width % 2 + height % 2 != 0
    {
        return Err(invalid(
            "encoding: width and height must be even numbers from 16 to 3840",
        ));
    }
    if !(1..=60).contains(&fps) {
        return Err(invalid("encoding: framerate must be 1–60"));
    }
    if !(100..=MAX_KBPS).contains(&video_kbps) || !(16..=512).contains(&audio_kbps) {
        return Err(invalid(
            "encoding: video_bitrate must be 100–100000 kbps and audio_bitrate 16–512 kbps",
        ));
    }
    use proto::VideoCodec as V;
    let h264_profile = match V::try_from(options.video_codec) {
        Ok(V::DefaultVc | V::H264Main) => "main",
        Ok(V::H264Baseline) => "baseline",
        Ok(V::H264High) => "high",
        _ => {
            return Err(invalid(
                "encoding: video_codec must be one of the H.264 profiles",
            ));
        }
    };
    let audio_rate = match options.audio_frequency {
        0 => EGRESS_AUDIO_RATE,
        rate @ (44_100 | 48_000) => rate as u32,
        _ => return Err(invalid("encoding: audio_frequency must be 44100 or 48000")),
    };
    use proto::AudioCodec as A;
    match A::try_from(options.audio_codec) {
        Ok(A::DefaultAc | A::Opus | A::Aac) => {}
        _ => return Err(invalid("encoding: audio_codec must be OPUS or AAC")),
    }
    let keyframe = options.key_frame_interval;
    if !(keyframe == 0.0 || (0.5..=20.0).contains(&keyframe)) {
        return Err(invalid("encoding: key_frame_interval must be 0.5–20 s"));
    }
    Ok(EncodingPreset {
        name: format!("{width}x{height}@{fps}"),
        width: width as u32,
        height: height as u32,
        fps: fps as u32,
        video_bitrate_kbps: video_kbps as u32,
        audio_bitrate_kbps: audio_kbps as u32,
        keyframe_interval_secs: if keyframe == 0.0 { 4.0 } else { keyframe },
        audio_rate,
        h264_profile: Some(h264_profile.to_string()),
    })
}

/// Each RTMP(S) URL becomes a destination; LiveKit's `mux://KEY` and
/// `twitch://KEY` shorthands name those platforms' ingest.
fn stream_destinations(
    streams: &[proto::StreamOutput],
    limits: &LimitsConfig,
) -> Result<Vec<NamedDestination>, ValidationError> {
    let mut destinations: Vec<NamedDestination> = Vec::new();
    for stream in streams {
        let srt = match proto::StreamProtocol::try_from(stream.protocol) {
            Ok(proto::StreamProtocol::Srt) => true,
            Ok(proto::StreamProtocol::DefaultProtocol | proto::StreamProtocol::Rtmp) => false,
            _ => {
                return Err(invalid(
                    "stream_outputs: the protocol must be RTMP or SRT (WebSocket is not supported)",
                ));
            }
        };
        if stream.urls.is_empty() {
            return Err(invalid("stream_outputs: give at least one URL"));
        }
        for url in &stream.urls {
            let destination = stream_url(url)?;
            if srt != (destination.kind == DestinationType::Srt) {
                return Err(invalid(format!(
                    "stream_outputs: `{}` does not match the protocol",
                    destination.redacted_url()
                )));
            }
            if destinations.iter().any(|d| d.destination == destination) {
                return Err(invalid("stream_outputs: the same URL is listed twice"));
            }
            destinations.push(NamedDestination {
                name: destination.kind.to_string(),
                destination,
            });
        }
    }
    if destinations.len() > limits.max_destinations as usize {
        return Err(invalid(format!(
            "stream_outputs: at most {} URLs per egress",
            limits.max_destinations
        )));
    }
    Ok(destinations)
}

/// UpdateStream as an update of the livestream: added URLs become
/// destinations, removed ones name the outputs sending to them.
pub fn stream_update(
    add_urls: &[String],
    remove_urls: &[String],
    outputs: &[OutputRow],
) -> Result<UpdateRequest, ValidationError> {
    let add_destinations = add_urls
        .iter()
        .map(|url| {
            let destination = stream_url(url)?;
            Ok(match destination.kind {
                DestinationType::Custom | DestinationType::Srt => DestinationRequest {
                    kind: destination.kind.to_string(),
                    custom_rtmp_url: Some(url.trim().to_string()),
                    ..Default::default()
                },
                kind => DestinationRequest {
                    kind: kind.to_string(),
                    stream_key: destination.stream_key.map(|k| k.expose().to_string()),
                    ..Default::default()
                },
            })
        })
        .collect::<Result<_, ValidationError>>()?;
    let remove_destinations = remove_urls
        .iter()
        .map(|url| {
            let wanted = stream_url(url)?;
            let key = wanted.stream_key.as_ref().map(|k| k.expose().to_string());
            outputs
                .iter()
                .find(|o| {
                    is_stream(o)
                        && o.status != "removed"
                        && o.url == wanted.redacted_url()
                        && o.stream_key == key
                })
                .map(|o| o.id)
                .ok_or_else(|| {
                    invalid(format!(
                        "remove_output_urls: {} is not an output of this egress",
                        wanted.redacted_url()
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(UpdateRequest {
        layout: None,
        add_destinations,
        remove_destinations,
    })
}

/// One stream URL as a destination.
fn stream_url(url: &str) -> Result<Destination, ValidationError> {
    let url = url.trim();
    let resolved = if let Some(key) = url.strip_prefix("mux://") {
        Destination::resolve(DestinationType::Mux, Some(key), None, None)
    } else if let Some(key) = url.strip_prefix("twitch://") {
        Destination::resolve(DestinationType::Twitch, Some(key), None, None)
    } else if url.starts_with("srt://") {
        Destination::resolve(DestinationType::Srt, None, Some(url), None)
    } else {
        Destination::resolve(DestinationType::Custom, None, Some(url), None)
    };
    resolved.map_err(|e| invalid(format!("stream URL: {e}")))
}

/// The MP4's path under the recordings directory, from the file output's
/// `filepath` template (LiveKit's `{room_name}`, `{room_id}`, `{time}`,
/// `{utc}`; a path ending in `/` or empty gets `{room_name}-{time}.mp4`).
fn file_path(
    files: &[proto::EncodedFileOutput],
    room_name: &str,
    media: ProgramMedia,
    context: &EgressContext,
) -> Result<Option<(String, FileKind, Option<StorageConfig>)>, ValidationError> {
    let file = match files {
        [] => return Ok(None),
        [file] => file,
        _ => return Err(invalid("file_outputs: at most one file output per egress")),
    };
    // LiveKit's DEFAULT_FILETYPE: Ogg (Opus) for audio only, else MP4.
    use proto::EncodedFileType as F;
    let kind = match F::try_from(file.file_type) {
        Ok(F::Mp4) => FileKind::Mp4,
        Ok(F::Ogg) if media == ProgramMedia::AudioOnly => FileKind::Ogg,
        Ok(F::DefaultFiletype) if media == ProgramMedia::AudioOnly => FileKind::Ogg,
        Ok(F::DefaultFiletype) => FileKind::Mp4,
        Ok(F::Ogg) => {
            return Err(invalid(
                "file_outputs: OGG files are for audio-only egresses",
            ));
        }
        _ => {
            return Err(invalid(
                "file_outputs: file_type must be MP4 or (audio only) OGG; MP3 is not supported",
            ));
        }
    };
    use proto::encoded_file_output::Output as Upload;
    let upload = match &file.output {
        None => None,
        Some(Upload::S3(s3)) => Some(storage_config(s3, "file_outputs")?),
        Some(_) => return Err(unsupported_storage("file_outputs")),
    };
    let mut path = render(&file.filepath, room_name, context);
    if path.is_empty() || path.ends_with('/') {
        path.push_str(&render("{room_name}-{time}", room_name, context));
    }
    let extension = format!(".{}", kind.as_str());
    if !path.to_ascii_lowercase().ends_with(&extension) {
        path.push_str(&extension);
    }
    check_relative(&path)?;
    Ok(Some((path, kind, upload)))
}

/// HLS naming: `filename_prefix` (a template) becomes the object prefix,
/// `segment_duration` the segment length.
fn segments(
    segments: &[proto::SegmentedFileOutput],
    room_name: &str,
    context: &EgressContext,
) -> Result<Option<HlsNaming>, ValidationError> {
    let segment = match segments {
        [] => return Ok(None),
        [segment] => segment,
        _ => return Err(invalid("segment_outputs: at most one per egress")),
    };
    use proto::segmented_file_output::Output as Upload;
    let upload = match &segment.output {
        None => None,
        Some(Upload::S3(s3)) => Some(storage_config(s3, "segment_outputs")?),
        Some(_) => return Err(unsupported_storage("segment_outputs")),
    };
    if upload.is_none() && !context.capabilities.hls {
        return Err(invalid(
            "segment_outputs: give s3 upload settings; this server has no object storage configured (storage.bucket)",
        ));
    }
    let prefix = render(&segment.filename_prefix, room_name, context);
    let prefix = prefix.trim_matches('/').to_string();
    if !prefix.is_empty() {
        check_relative(&prefix)?;
    }
    let segment_secs = match segment.segment_duration {
        0 => None,
        secs @ 1..=60 => Some(secs),
        _ => return Err(invalid("segment_outputs: segment_duration must be 1–60 s")),
    };
    let playlist_name = playlist_file(&segment.playlist_name, "playlist_name")?;
    let live_playlist_name = playlist_file(&segment.live_playlist_name, "live_playlist_name")?;
    if playlist_name.is_some() && playlist_name == live_playlist_name {
        return Err(invalid(
            "segment_outputs: playlist_name and live_playlist_name must differ",
        ));
    }
    Ok(Some(HlsNaming {
        prefix: Some(prefix).filter(|p| !p.is_empty()),
        segment_secs,
        playlist_name,
        live_playlist_name,
        upload,
    }))
}

/// A playlist's file name (`.m3u8` added when missing); empty = none.
fn playlist_file(name: &str, what: &str) -> Result<Option<String>, ValidationError> {
    if name.is_empty() {
        return Ok(None);
    }
    let ok = name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !ok {
        return Err(invalid(format!(
            "segment_outputs: {what} must be a file name of A–Z, a–z, 0–9, `-`, `_`, `.`"
        )));
    }
    Ok(Some(if name.ends_with(".m3u8") {
        name.to_string()
    } else {
        format!("{name}.m3u8")
    }))
}

/// A request's own S3 upload settings as a storage configuration. Its
/// credentials must be given: the server's ambient AWS credentials never go
/// to a bucket a request names.
fn storage_config(s3: &proto::S3Upload, what: &str) -> Result<StorageConfig, ValidationError> {
    if s3.bucket.is_empty() || s3.access_key.is_empty() || s3.secret.is_empty() {
        return Err(invalid(format!(
            "{what}.s3: bucket, access_key and secret are required"
        )));
    }
    if !s3.session_token.is_empty() || !s3.assume_role_arn.is_empty() || s3.proxy.is_some() {
        return Err(invalid(format!(
            "{what}.s3: session tokens, assumed roles and proxies are not supported"
        )));
    }
    let config = StorageConfig {
        endpoint: s3.endpoint.clone(),
        region: if s3.region.is_empty() {
            "us-east-1".into()
        } else {
            s3.region.clone()
        },
        bucket: s3.bucket.clone(),
        access_key_id: s3.access_key.clone(),
        secret_access_key: Secret::new(s3.secret.clone()),
        path_style: s3.force_path_style,
        // Keys come from the request, not from these templates.
        hls_segment_secs: 4,
        hls_path: String::new(),
        upload_mp4: true,
        mp4_path: String::new(),
    };
    if !config.endpoint.is_empty()
        && !url::Url::parse(&config.endpoint).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return Err(invalid(format!(
            "{what}.s3: endpoint must be an http(s) URL"
        )));
    }
    Ok(config)
}

fn unsupported_storage(what: &str) -> ValidationError {
    invalid(format!(
        "{what}: only s3 upload settings are supported (S3 and S3-compatible stores); gcp, azure and aliOSS are not"
    ))
}

fn render(template: &str, room_name: &str, context: &EgressContext) -> String {
    template
        .replace("{room_name}", room_name)
        .replace("{room_id}", &context.room_id)
        .replace("{time}", &context.now.format("%Y-%m-%dT%H%M%S").to_string())
        .replace("{utc}", &context.now.format("%Y%m%d%H%M%S").to_string())
}

/// Files stay inside the recordings directory.
fn check_relative(path: &str) -> Result<(), ValidationError> {
    let ok = !path.starts_with('/')
        && path.len() <= 512
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && !path.chars().any(|c| c.is_control() || c == '\\');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{path}`: file paths are relative to the server's recordings directory, without `..` or empty parts"
        )))
    }
}

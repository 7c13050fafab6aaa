//! Encoding presets: LiveKit's named presets and Mux Broadcast's resolutions.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncodingPreset {
    /// A LiveKit preset name (`H264_720P_30`) or a resolution (`1080x1080`).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_bitrate_kbps: u32,
    pub audio_bitrate_kbps: u32,
    /// At most this long between keyframes.
    pub keyframe_interval_secs: f64,
    /// The encoded audio's sample rate.
    pub audio_rate: u32,
    /// `baseline`, `main` or `high`; None = the encoder's choice.
    pub h264_profile: Option<String>,
}

/// The program's own sample rate (Opus from WebRTC is 48 kHz).
pub const DEFAULT_AUDIO_RATE: u32 = 48_000;

/// AAC at 128 kbps, as LiveKit's presets.
pub const DEFAULT_AUDIO_KBPS: u32 = 128;
/// Short enough for 2–6 s HLS segments and a quick start for late viewers.
pub const DEFAULT_KEYFRAME_SECS: f64 = 2.0;

/// LiveKit's `EncodingOptionsPreset` values (livekit_egress.proto).
const LIVEKIT_PRESETS: [(&str, u32, u32, u32, u32); 8] = [
    ("H264_720P_30", 1280, 720, 30, 3000),
    ("H264_720P_60", 1280, 720, 60, 4500),
    ("H264_1080P_30", 1920, 1080, 30, 4500),
    ("H264_1080P_60", 1920, 1080, 60, 6000),
    ("PORTRAIT_H264_720P_30", 720, 1280, 30, 3000),
    ("PORTRAIT_H264_720P_60", 720, 1280, 60, 4500),
    ("PORTRAIT_H264_1080P_30", 1080, 1920, 30, 4500),
    ("PORTRAIT_H264_1080P_60", 1080, 1920, 60, 6000),
];

/// Mux Broadcast's resolutions, at 30 fps; square bitrates scale with pixel count.
const MUX_RESOLUTIONS: [(u32, u32, u32); 6] = [
    (1920, 1080, 4500),
    (1280, 720, 3000),
    (1080, 1920, 4500),
    (720, 1280, 3000),
    (1080, 1080, 3500),
    (720, 720, 2000),
];

/// LiveKit's default preset.
pub const DEFAULT_PRESET: &str = "H264_720P_30";

impl EncodingPreset {
    pub fn by_name(name: &str) -> Option<EncodingPreset> {
        LIVEKIT_PRESETS
            .iter()
            .find(|p| p.0.eq_ignore_ascii_case(name))
            .map(|&(name, width, height, fps, kbps)| EncodingPreset {
                name: name.to_string(),
                width,
                height,
                fps,
                video_bitrate_kbps: kbps,
                audio_bitrate_kbps: DEFAULT_AUDIO_KBPS,
                keyframe_interval_secs: DEFAULT_KEYFRAME_SECS,
                audio_rate: DEFAULT_AUDIO_RATE,
                h264_profile: None,
            })
    }

    /// `1920x1080` and the other Mux Broadcast resolutions.
    pub fn by_resolution(resolution: &str) -> Option<EncodingPreset> {
        let (w, h) = resolution.trim().split_once(['x', 'X'])?;
        let (w, h): (u32, u32) = (w.parse().ok()?, h.parse().ok()?);
        MUX_RESOLUTIONS
            .iter()
            .find(|r| r.0 == w && r.1 == h)
            .map(|&(width, height, kbps)| EncodingPreset {
                name: format!("{width}x{height}"),
                width,
                height,
                fps: 30,
                video_bitrate_kbps: kbps,
                audio_bitrate_kbps: DEFAULT_AUDIO_KBPS,
                keyframe_interval_secs: DEFAULT_KEYFRAME_SECS,
                audio_rate: DEFAULT_AUDIO_RATE,
                h264_profile: None,
            })
    }

    /// The stored form back: a preset name or a resolution.
    pub fn from_stored(name: &str) -> Option<EncodingPreset> {
        Self::by_name(name).or_else(|| Self::by_resolution(name))
    }

    pub fn preset_names() -> Vec<&'static str> {
        LIVEKIT_PRESETS.iter().map(|p| p.0).collect()
    }

    pub fn resolutions() -> Vec<String> {
        MUX_RESOLUTIONS
            .iter()
            .map(|r| format!("{}x{}", r.0, r.1))
            .collect()
    }

    pub fn resolution(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_resolutions() {
        let p = EncodingPreset::by_name(DEFAULT_PRESET).unwrap();
        assert_eq!(
            (p.width, p.height, p.fps, p.video_bitrate_kbps),
            (1280, 720, 30, 3000)
        );
        let p = EncodingPreset::by_name("portrait_h264_1080p_60").unwrap();
        assert_eq!(
            (p.width, p.height, p.fps, p.video_bitrate_kbps),
            (1080, 1920, 60, 6000)
        );
        let r = EncodingPreset::by_resolution("1080x1080").unwrap();
        assert_eq!((r.width, r.height, r.fps), (1080, 1080, 30));
        assert_eq!(EncodingPreset::from_stored("1080x1080"), Some(r));
        assert!(EncodingPreset::by_resolution("1000x1000").is_none());
        assert!(EncodingPreset::by_resolution("big").is_none());
        assert!(EncodingPreset::by_name("H264_4K").is_none());
        assert_eq!(EncodingPreset::resolutions().len(), 6);
    }
}

//! What an in-process room subscriber receives, and the handle it talks back
//! through. The composer never sees WebRTC types; the SFU never sees GStreamer.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

macro_rules! sid_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.to_string())
            }
        }
    };
}

sid_type!(ParticipantSid, "A participant's server id (`PA_…`).");
sid_type!(TrackSid, "A track's server id (`TR_…`).");

#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantInfo {
    pub sid: ParticipantSid,
    pub identity: String,
    /// Display name; may be empty (then the identity is shown).
    pub name: String,
    pub metadata: String,
    /// An agent (LiveKit's participant kind AGENT): a bot, not a person.
    pub agent: bool,
}

impl ParticipantInfo {
    pub fn display_name(&self) -> &str {
        if self.name.trim().is_empty() {
            &self.identity
        } else {
            &self.name
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Audio,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackSource {
    Camera,
    Microphone,
    ScreenShare,
    ScreenShareAudio,
    Unknown,
}

impl TrackSource {
    /// LiveKit's lowercase name (`camera`, `screen_share`…), as in tokens' `canPublishSources`.
    pub fn name(self) -> &'static str {
        match self {
            TrackSource::Camera => "camera",
            TrackSource::Microphone => "microphone",
            TrackSource::ScreenShare => "screen_share",
            TrackSource::ScreenShareAudio => "screen_share_audio",
            TrackSource::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> TrackSource {
        match name.to_ascii_lowercase().as_str() {
            "camera" => TrackSource::Camera,
            "microphone" => TrackSource::Microphone,
            "screen_share" => TrackSource::ScreenShare,
            "screen_share_audio" => TrackSource::ScreenShareAudio,
            _ => TrackSource::Unknown,
        }
    }
}

impl TrackKind {
    pub fn name(self) -> &'static str {
        match self {
            TrackKind::Audio => "audio",
            TrackKind::Video => "video",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    Vp8,
    /// H.264 with packetization-mode 1.
    H264,
    Vp9,
    Av1,
}

impl Codec {
    /// The RTP encoding name as in SDP (`a=rtpmap`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Opus => "OPUS",
            Codec::Vp8 => "VP8",
            Codec::H264 => "H264",
            Codec::Vp9 => "VP9",
            Codec::Av1 => "AV1",
        }
    }
}

/// A simulcast layer, highest quality = highest number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Layer(pub u8);

#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    pub sid: TrackSid,
    pub participant: ParticipantSid,
    pub kind: TrackKind,
    pub source: TrackSource,
    pub codec: Codec,
    pub payload_type: u8,
    pub clock_rate: u32,
    pub muted: bool,
    pub simulcast_layers: Vec<Layer>,
}

impl TrackInfo {
    /// A track as published: kind and RTP clock rate follow from the codec
    /// (Opus is audio at 48 kHz, video codecs run at 90 kHz).
    pub fn new(
        sid: TrackSid,
        participant: ParticipantSid,
        source: TrackSource,
        codec: Codec,
        payload_type: u8,
    ) -> TrackInfo {
        let (kind, clock_rate) = match codec {
            Codec::Opus => (TrackKind::Audio, 48_000),
            Codec::Vp8 | Codec::H264 | Codec::Vp9 | Codec::Av1 => (TrackKind::Video, 90_000),
        };
        TrackInfo {
            sid,
            participant,
            kind,
            source,
            codec,
            payload_type,
            clock_rate,
            muted: false,
            simulcast_layers: Vec::new(),
        }
    }
}

/// One RTP packet as received (SRTP already removed).
#[derive(Debug, Clone, PartialEq)]
pub struct RtpPacket {
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Bytes,
    pub arrival: Instant,
}

impl RtpPacket {
    /// Serializes a plain RTP header (no CSRCs, no extensions) and the payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.payload.len());
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses a serialized RTP packet (skipping CSRCs, extensions and padding).
    pub fn parse(data: &[u8], arrival: Instant) -> Option<RtpPacket> {
        if data.len() < 12 || data[0] >> 6 != 2 {
            return None;
        }
        let csrc_count = usize::from(data[0] & 0x0f);
        let mut offset = 12 + 4 * csrc_count;
        if data[0] & 0x10 != 0 {
            let words = u16::from_be_bytes([*data.get(offset + 2)?, *data.get(offset + 3)?]);
            offset += 4 + 4 * usize::from(words);
        }
        let mut end = data.len();
        if data[0] & 0x20 != 0 {
            end = end.checked_sub(usize::from(*data.last()?))?;
        }
        if offset > end {
            return None;
        }
        Some(RtpPacket {
            payload_type: data[1] & 0x7f,
            marker: data[1] & 0x80 != 0,
            sequence_number: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: Bytes::copy_from_slice(&data[offset..end]),
            arrival,
        })
    }
}

/// An NTP timestamp (RFC 3550): seconds since 1900 in 32.32 fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NtpTime(pub u64);

/// Seconds between 1900-01-01 (NTP) and 1970-01-01 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

impl NtpTime {
    pub fn from_system_time(time: SystemTime) -> NtpTime {
        let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
        let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime((seconds << 32) | fraction)
    }

    pub fn now() -> NtpTime {
        NtpTime::from_system_time(SystemTime::now())
    }
}

/// Everything a room subscription delivers, in order, on one bounded channel.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    ParticipantJoined(ParticipantInfo),
    ParticipantUpdated(ParticipantInfo),
    ParticipantLeft {
        participant: ParticipantSid,
    },
    TrackPublished(TrackInfo),
    TrackMuted {
        track: TrackSid,
        muted: bool,
    },
    TrackUnpublished {
        track: TrackSid,
    },
    Rtp {
        track: TrackSid,
        packet: RtpPacket,
    },
    /// From an RTCP sender report: this NTP wallclock corresponds to this RTP time.
    SenderReport {
        track: TrackSid,
        ntp: NtpTime,
        rtp_time: u32,
    },
    /// Participants currently speaking, loudest first.
    ActiveSpeakers(Vec<ParticipantSid>),
    RoomClosed,
}

/// How a subscriber talks back to the room.
pub trait RoomHandle: Send + Sync {
    /// Asks the publisher of `track` for a keyframe (PLI/FIR); rate-limited by the SFU.
    fn request_keyframe(&self, track: &TrackSid);
    /// Chooses the simulcast layer this subscriber receives.
    fn select_layer(&self, track: &TrackSid, layer: Layer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_round_trip() {
        let packet = RtpPacket {
            payload_type: 96,
            sequence_number: 65535,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
            marker: true,
            payload: Bytes::from_static(b"payload"),
            arrival: Instant::now(),
        };
        let bytes = packet.to_bytes();
        assert_eq!(bytes[1], 0x80 | 96);
        assert_eq!(RtpPacket::parse(&bytes, packet.arrival), Some(packet));
    }

    #[test]
    fn rtp_parse_skips_extensions_and_padding() {
        let mut data = vec![0x80 | 0x10 | 0x20, 111, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        data.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // one-byte header ext, 1 word
        data.extend_from_slice(b"opus");
        data.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let packet = RtpPacket::parse(&data, Instant::now()).unwrap();
        assert_eq!(&packet.payload[..], b"opus");
        assert!(RtpPacket::parse(&data[..5], Instant::now()).is_none());
    }

    #[test]
    fn ntp_epoch() {
        let ntp = NtpTime::from_system_time(UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(ntp.0 >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(ntp.0 & 0xffff_ffff, 1 << 31);
    }
}

//! One WebRTC session (a WHIP publisher or a WHEP viewer): its str0m
//! instance and what its media sections carry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::Codec as RtcCodec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Pt, Rid};
use str0m::net::Transmit;
use str0m::{Event, Output, Rtc};
use tokio::net::UdpSocket;

use super::events::{Codec, ParticipantSid, TrackKind, TrackSid, TrackSource};
use super::forward::{KeyframeThrottle, SeqRewriter, layer_rank};

/// A WHIP/WHEP session id: the last segment of its resource URL. Random, so
/// the URL itself is the capability to PATCH or DELETE it (RFC 9725 §4.3).
pub type SessionId = String;

/// Upstream keyframe requests per track at most this often.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

pub struct Peer {
    pub id: SessionId,
    pub rtc: Rtc,
    pub room: String,
    pub role: Role,
    pub next_timeout: Instant,
    pub created: Instant,
    pub connected: bool,
    /// The remote ICE ufrag: a PATCH with another one is an ICE restart.
    pub remote_ufrag: String,
}

pub enum Role {
    Publisher(Publisher),
    Viewer(Viewer),
}

pub struct Publisher {
    pub participant: ParticipantSid,
    pub tracks: HashMap<Mid, PublishedTrack>,
}

/// A media section a publisher sends on.
pub struct PublishedTrack {
    pub sid: TrackSid,
    pub kind: TrackKind,
    pub source: TrackSource,
    /// Set once the first packet told us the codec; the track is announced then.
    pub codec: Option<(Codec, u8)>,
    pub muted: bool,
    /// Simulcast rids seen so far; the best one is forwarded.
    pub layers: Vec<Rid>,
    pub throttle: KeyframeThrottle,
}

impl PublishedTrack {
    /// `layers` are the simulcast rids the offer declared (none without simulcast):
    /// the best of them is forwarded from the first packet on, so subscribers
    /// never switch streams mid-way.
    pub fn new(kind: TrackKind, source: TrackSource, layers: Vec<Rid>) -> PublishedTrack {
        PublishedTrack {
            sid: TrackSid(super::ids::new_sid("TR_")),
            kind,
            source,
            codec: None,
            muted: false,
            layers,
            throttle: KeyframeThrottle::new(KEYFRAME_INTERVAL),
        }
    }

    /// Records `rid` and says whether its packets are forwarded: subscribers
    /// get the highest layer the publisher declared (or, undeclared, sends).
    pub fn forwards_layer(&mut self, rid: Option<Rid>) -> bool {
        let Some(rid) = rid else {
            return true;
        };
        if !self.layers.contains(&rid) {
            self.layers.push(rid);
        }
        self.best_layer() == Some(rid)
    }

    pub fn best_layer(&self) -> Option<Rid> {
        self.layers
            .iter()
            .copied()
            .max_by_key(|rid| layer_rank(rid))
    }
}

pub struct Viewer {
    /// The identity whose tracks this viewer receives.
    pub target: String,
    pub slots: Vec<Slot>,
}

/// A media section a viewer receives on, and the track it carries now.
pub struct Slot {
    pub mid: Mid,
    pub kind: TrackKind,
    pub track: Option<TrackSid>,
    pub seq: SeqRewriter,
    /// The payload type this viewer negotiated for each codec.
    pub pts: HashMap<Codec, Pt>,
}

impl Peer {
    pub fn new(id: SessionId, rtc: Rtc, room: &str, role: Role, remote_ufrag: String) -> Peer {
        let now = Instant::now();
        Peer {
            id,
            rtc,
            room: room.to_string(),
            role,
            next_timeout: now,
            created: now,
            connected: false,
            remote_ufrag,
        }
    }

    /// Drains str0m's output: sends datagrams and returns the events, until
    /// it asks for the next timeout.
    pub fn poll(&mut self, sockets: &HashMap<SocketAddr, Arc<UdpSocket>>) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            if !self.rtc.is_alive() {
                self.next_timeout = Instant::now() + Duration::from_secs(3600);
                return events;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.next_timeout = at;
                    return events;
                }
                Ok(Output::Transmit(transmit)) => send(sockets, &transmit),
                Ok(Output::Event(event)) => events.push(event),
                Err(error) => {
                    tracing::warn!(session = %self.id, %error, "WebRTC session failed");
                    self.rtc.disconnect();
                }
            }
        }
    }

    pub fn request_keyframe(&mut self, mid: Mid, now: Instant) -> bool {
        let Role::Publisher(publisher) = &mut self.role else {
            return false;
        };
        let Some(track) = publisher.tracks.get_mut(&mid) else {
            return false;
        };
        if track.kind != TrackKind::Video || !track.throttle.allow(now) {
            return false;
        }
        let rid = track.best_layer();
        self.send_pli(mid, rid)
    }

    /// Sends the keyframe requests that were throttled earlier and are due;
    /// true when one went out.
    pub fn send_deferred_keyframe_requests(&mut self, now: Instant) -> bool {
        let Role::Publisher(publisher) = &mut self.role else {
            return false;
        };
        let due: Vec<(Mid, Option<Rid>)> = publisher
            .tracks
            .iter_mut()
            .filter_map(|(mid, track)| {
                track
                    .throttle
                    .deferred_due(now)
                    .then(|| (*mid, track.best_layer()))
            })
            .collect();
        let mut sent = false;
        for (mid, rid) in due {
            sent |= self.send_pli(mid, rid);
        }
        sent
    }

    fn send_pli(&mut self, mid: Mid, rid: Option<Rid>) -> bool {
        let mut api = self.rtc.direct_api();
        match api.stream_rx_by_mid(mid, rid) {
            Some(stream) => {
                stream.request_keyframe(KeyframeRequestKind::Pli);
                true
            }
            None => false,
        }
    }

    /// The payload types this session negotiated on `mid`, by codec.
    pub fn negotiated_pts(&self, mid: Mid) -> HashMap<Codec, Pt> {
        let Some(media) = self.rtc.media(mid) else {
            return HashMap::new();
        };
        let mut pts = HashMap::new();
        for params in self.rtc.codec_config().params() {
            if !media.remote_pts().contains(&params.pt()) {
                continue;
            }
            if let Some(codec) = codec_of(params.spec().codec) {
                pts.entry(codec).or_insert(params.pt());
            }
        }
        pts
    }
}

/// Our codec for payload type `pt` as the session negotiated it.
pub fn codec_for_pt(rtc: &Rtc, pt: Pt) -> Option<Codec> {
    let params = rtc.codec_config().params().iter().find(|p| p.pt() == pt)?;
    codec_of(params.spec().codec)
}

fn send(sockets: &HashMap<SocketAddr, Arc<UdpSocket>>, transmit: &Transmit) {
    let Some(socket) = sockets
        .get(&transmit.source)
        .or_else(|| sockets.values().next())
    else {
        return;
    };
    // A full socket buffer drops the datagram: media never waits for the network.
    if let Err(error) = socket.try_send_to(&transmit.contents, transmit.destination)
        && error.kind() != std::io::ErrorKind::WouldBlock
    {
        tracing::debug!(%error, destination = %transmit.destination, "UDP send failed");
    }
}

pub fn codec_of(codec: RtcCodec) -> Option<Codec> {
    match codec {
        RtcCodec::Opus => Some(Codec::Opus),
        RtcCodec::Vp8 => Some(Codec::Vp8),
        RtcCodec::H264 => Some(Codec::H264),
        RtcCodec::Vp9 => Some(Codec::Vp9),
        RtcCodec::Av1 => Some(Codec::Av1),
        _ => None,
    }
}

pub fn kind_of(kind: MediaKind) -> TrackKind {
    match kind {
        MediaKind::Audio => TrackKind::Audio,
        MediaKind::Video => TrackKind::Video,
    }
}

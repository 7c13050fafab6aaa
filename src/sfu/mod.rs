//! The SFU (DESIGN §4): rooms, participants and tracks; WebRTC sessions on
//! str0m (WHIP to publish, WHEP to view) sharing one UDP port; forwarding to
//! WebRTC viewers and to in-process subscribers (the composer); active
//! speakers; room events on a bus and as LiveKit-format webhooks.

mod engine;
mod events;
mod forward;
pub(crate) mod ids;
mod net;
pub(crate) mod notify;
mod peer;
mod room;
mod sdp;
mod sink;
mod speaker;
pub mod webhook;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Once};
use std::time::{Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};

pub use engine::SINK_CAPACITY;
pub use events::{
    Codec, Layer, NtpTime, ParticipantInfo, ParticipantSid, RoomEvent, RoomHandle, RtpPacket,
    TrackInfo, TrackKind, TrackSid, TrackSource,
};
pub use net::interface_addresses;
pub use notify::forward_to_webhooks;
pub use room::{Permissions, RoomSettings};
pub use sdp::SdpFrag;

use engine::{Command, Datagram, Engine};

/// Who joins, from a verified access token.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub room: String,
    pub identity: String,
    pub name: String,
    pub metadata: String,
    /// The token's `attributes`.
    pub attributes: std::collections::BTreeMap<String, String>,
    pub permissions: Permissions,
}

/// What RoomService UpdateParticipant changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ParticipantChange {
    pub name: Option<String>,
    pub metadata: Option<String>,
    /// Set or (with an empty value) remove these keys; others stay.
    pub attributes: Vec<(String, String)>,
    pub permissions: Option<Permissions>,
}

/// A WHEP viewer of one participant's tracks.
#[derive(Debug, Clone)]
pub struct ViewRequest {
    pub room: String,
    /// The identity whose tracks are played.
    pub target: String,
}

/// A WHIP/WHEP session as created: the resource id and the SDP answer.
#[derive(Debug, Clone)]
pub struct SessionCreated {
    pub session: String,
    pub answer: String,
    pub etag: String,
    pub room_sid: String,
    /// The participant a publisher became; None for viewers.
    pub participant: Option<ParticipantInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOutcome {
    /// Candidates were added (204).
    Trickled,
    /// New ICE credentials (200 with this fragment and ETag).
    Restarted { etag: String, frag: String },
}

#[derive(Debug, Clone)]
pub struct RoomSummary {
    pub sid: String,
    pub name: String,
    pub metadata: String,
    pub created_at: SystemTime,
    pub num_participants: u32,
    pub num_publishers: u32,
    pub num_tracks: u32,
    pub settings: RoomSettings,
    /// A program (an in-process subscriber) is recording the room.
    pub active_recording: bool,
}

#[derive(Debug, Clone)]
pub struct ParticipantSummary {
    pub info: ParticipantInfo,
    pub joined_at: SystemTime,
    pub permissions: Permissions,
    pub tracks: Vec<TrackInfo>,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub version: u32,
}

#[derive(Debug, Clone)]
pub struct RoomSnapshot {
    pub room: RoomSummary,
    pub participants: Vec<ParticipantSummary>,
}

/// Room changes on the in-process bus (and, from there, webhooks).
#[derive(Debug, Clone)]
pub enum RoomNotice {
    RoomStarted(RoomSummary),
    RoomFinished(RoomSummary),
    ParticipantJoined(RoomSummary, ParticipantSummary),
    ParticipantLeft(RoomSummary, ParticipantSummary),
    TrackPublished(RoomSummary, ParticipantSummary, TrackInfo),
    TrackUnpublished(RoomSummary, ParticipantSummary, TrackInfo),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SfuError {
    #[error("bad SDP: {0}")]
    BadSdp(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    RoomFull(String),
    #[error("no such session")]
    UnknownSession,
    #[error("no room named `{0}`")]
    UnknownRoom(String),
    #[error("no participant `{identity}` in room `{room}`")]
    UnknownParticipant { room: String, identity: String },
    #[error("no track `{0}`")]
    UnknownTrack(TrackSid),
    #[error("the SFU is not running")]
    Stopped,
}

#[derive(Debug, Clone)]
pub struct SfuSettings {
    pub rooms: RoomSettings,
    /// Addresses to bind and announce; empty = [`interface_addresses`].
    pub node_ips: Vec<IpAddr>,
    pub udp_port: u16,
    /// Announced instead of the first non-loopback node address (1:1 NAT).
    pub public_ip: Option<IpAddr>,
}

/// Packet counters, readable from any thread (metrics, benchmarks).
#[derive(Debug, Default)]
pub struct SfuStats {
    /// RTP packets received from publishers.
    pub received: AtomicU64,
    /// RTP packets handed to subscribers (WebRTC viewers and in-process).
    pub forwarded: AtomicU64,
    /// Packets an in-process subscriber was too slow to take.
    pub dropped: AtomicU64,
}

/// An in-process room subscription: the events, and the way to talk back.
pub struct RoomSubscription {
    pub events: mpsc::Receiver<RoomEvent>,
    pub handle: Arc<dyn RoomHandle>,
}

/// The running SFU. Cheap to clone; every call is a message to its loop.
#[derive(Clone)]
pub struct Sfu {
    commands: mpsc::Sender<Command>,
    notices: broadcast::Sender<RoomNotice>,
    media_addresses: Arc<Vec<SocketAddr>>,
    stats: Arc<SfuStats>,
}

/// Datagrams waiting for the loop; beyond this they are dropped (UDP semantics).
const DATAGRAM_QUEUE: usize = 8192;

impl Sfu {
    /// Binds the media sockets and starts the loop. Call inside a tokio runtime.
    pub async fn start(settings: SfuSettings) -> std::io::Result<Sfu> {
        install_crypto();
        let ips = if settings.node_ips.is_empty() {
            interface_addresses()
        } else {
            settings.node_ips.clone()
        };
        let sockets = net::announce_public_ip(
            net::bind_media_sockets(&ips, settings.udp_port).await?,
            settings.public_ip,
        );
        let (datagram_tx, datagram_rx) = mpsc::channel(DATAGRAM_QUEUE);
        for (local, socket) in &sockets {
            tokio::spawn(read_datagrams(*local, socket.clone(), datagram_tx.clone()));
        }
        let (notices, _) = broadcast::channel(1024);
        let (commands, command_rx) = mpsc::channel(256);
        let stats = Arc::new(SfuStats::default());
        let engine = Engine::new(settings.rooms, &sockets, notices.clone(), stats.clone());
        tokio::spawn(engine.run(command_rx, datagram_rx));
        let media_addresses = Arc::new(sockets.iter().map(|(addr, _)| *addr).collect::<Vec<_>>());
        tracing::info!(addresses = ?media_addresses, "SFU media sockets bound");
        Ok(Sfu {
            commands,
            notices,
            media_addresses,
            stats,
        })
    }

    /// The local addresses peers send media to (the ICE host candidates).
    pub fn media_addresses(&self) -> &[SocketAddr] {
        &self.media_addresses
    }

    pub fn stats(&self) -> &SfuStats {
        &self.stats
    }

    /// Room changes as they happen.
    pub fn notices(&self) -> broadcast::Receiver<RoomNotice> {
        self.notices.subscribe()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SfuError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| SfuError::Stopped)?;
        answer.await.map_err(|_| SfuError::Stopped)
    }

    /// WHIP: joins `join.room` as `join.identity` and publishes what `offer` sends.
    pub async fn publish(
        &self,
        join: JoinRequest,
        offer: &str,
    ) -> Result<SessionCreated, SfuError> {
        let offer = offer.to_string();
        self.ask(|reply| Command::Publish { join, offer, reply })
            .await?
    }

    /// WHEP: plays one participant's tracks.
    pub async fn view(&self, view: ViewRequest, offer: &str) -> Result<SessionCreated, SfuError> {
        let offer = offer.to_string();
        self.ask(|reply| Command::View { view, offer, reply })
            .await?
    }

    pub async fn patch(&self, session: &str, frag: SdpFrag) -> Result<PatchOutcome, SfuError> {
        let session = session.to_string();
        self.ask(|reply| Command::Patch {
            session,
            frag,
            reply,
        })
        .await?
    }

    pub async fn leave(&self, session: &str) -> Result<(), SfuError> {
        let session = session.to_string();
        self.ask(|reply| Command::Leave { session, reply }).await?
    }

    /// Subscribes in-process to a whole room as a hidden recorder: the room's
    /// participants and tracks now, then every change, RTP packet and sender
    /// report. Creates the room if needed; a subscriber never keeps it open.
    pub async fn subscribe_room(&self, room: &str) -> Result<RoomSubscription, SfuError> {
        self.subscribe_room_with_capacity(room, SINK_CAPACITY).await
    }

    /// [`Sfu::subscribe_room`] with room for `capacity` unread events before
    /// media is dropped.
    pub async fn subscribe_room_with_capacity(
        &self,
        room: &str,
        capacity: usize,
    ) -> Result<RoomSubscription, SfuError> {
        let room = room.to_string();
        let capacity = capacity.max(1);
        let (_, events) = self
            .ask(|reply| Command::Subscribe {
                room,
                capacity,
                reply,
            })
            .await??;
        Ok(RoomSubscription {
            events,
            handle: Arc::new(SubscriberHandle {
                commands: self.commands.clone(),
            }),
        })
    }

    pub async fn rooms(&self) -> Result<Vec<RoomSummary>, SfuError> {
        self.ask(|reply| Command::Rooms { reply }).await
    }

    /// Creates `name` (LiveKit's CreateRoom): its own timeouts and capacity
    /// when given; an existing room is returned as it is.
    pub async fn create_room(
        &self,
        name: &str,
        settings: Option<RoomSettings>,
        metadata: &str,
    ) -> Result<RoomSummary, SfuError> {
        let (name, metadata) = (name.to_string(), metadata.to_string());
        self.ask(|reply| Command::CreateRoom {
            name,
            settings,
            metadata,
            reply,
        })
        .await
    }

    /// Closes `name` at once: everyone is disconnected, `room_finished` is sent.
    pub async fn delete_room(&self, name: &str) -> Result<(), SfuError> {
        let name = name.to_string();
        self.ask(|reply| Command::DeleteRoom { name, reply })
            .await?
    }

    pub async fn room(&self, room: &str) -> Result<RoomSnapshot, SfuError> {
        let room = room.to_string();
        self.ask(|reply| Command::Room { room, reply }).await?
    }

    pub async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), SfuError> {
        let (room, identity) = (room.to_string(), identity.to_string());
        self.ask(|reply| Command::RemoveParticipant {
            room,
            identity,
            reply,
        })
        .await?
    }

    pub async fn mute_track(
        &self,
        room: &str,
        identity: &str,
        track: &TrackSid,
        muted: bool,
    ) -> Result<TrackInfo, SfuError> {
        let (room, identity, track) = (room.to_string(), identity.to_string(), track.clone());
        self.ask(|reply| Command::MuteTrack {
            room,
            identity,
            track,
            muted,
            reply,
        })
        .await?
    }

    pub async fn update_room_metadata(
        &self,
        room: &str,
        metadata: &str,
    ) -> Result<RoomSummary, SfuError> {
        let (room, metadata) = (room.to_string(), metadata.to_string());
        self.ask(|reply| Command::UpdateRoomMetadata {
            room,
            metadata,
            reply,
        })
        .await?
    }

    pub async fn update_participant(
        &self,
        room: &str,
        identity: &str,
        change: ParticipantChange,
    ) -> Result<ParticipantSummary, SfuError> {
        let (room, identity) = (room.to_string(), identity.to_string());
        self.ask(|reply| Command::UpdateParticipant {
            room,
            identity,
            change,
            reply,
        })
        .await?
    }

    /// Ends every session and stops the loop.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }
}

struct SubscriberHandle {
    commands: mpsc::Sender<Command>,
}

impl RoomHandle for SubscriberHandle {
    fn request_keyframe(&self, track: &TrackSid) {
        // Never blocks the caller (a GStreamer thread); the SFU throttles anyway.
        let _ = self.commands.try_send(Command::KeyframeRequest {
            track: track.clone(),
        });
    }

    fn select_layer(&self, _track: &TrackSid, _layer: Layer) {
        // Subscribers get the best layer the publisher sends.
    }
}

async fn read_datagrams(
    local: SocketAddr,
    socket: Arc<tokio::net::UdpSocket>,
    to_engine: mpsc::Sender<Datagram>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, source)) => {
                let datagram = Datagram {
                    data: buf[..len].to_vec(),
                    source,
                    destination: local,
                    at: Instant::now(),
                };
                if let Err(mpsc::error::TrySendError::Closed(_)) = to_engine.try_send(datagram) {
                    return;
                }
            }
            // ICMP errors (a peer went away) surface here on Linux; keep reading.
            Err(error) => tracing::trace!(%error, %local, "UDP receive error"),
        }
    }
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

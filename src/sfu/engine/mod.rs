//! The SFU loop: one task owns every room, WebRTC session and in-process
//! subscriber, so forwarding needs no locks. Signaling reaches it as
//! commands; datagrams from the media sockets as they arrive.

mod closing;
mod commands;
mod publishing;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::events::{NtpTime, ParticipantInfo, RoomEvent, TrackInfo, TrackSid};
use super::peer::{Peer, Role, SessionId};
use super::room::{Participant, Room, RoomSettings};
use super::sdp::SdpFrag;
use super::sink::Sink;
use super::speaker::ActiveSpeakers;
use super::{
    JoinRequest, ParticipantChange, ParticipantSummary, PatchOutcome, RoomNotice, RoomSnapshot,
    RoomSummary, SessionCreated, SfuError, SfuStats, ViewRequest,
};

/// A session whose ICE has not connected by then is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Events an in-process subscriber may have unread before media is dropped
/// (about a second of a small room's packets).
pub const SINK_CAPACITY: usize = 2048;

pub type SinkId = u64;

pub enum Command {
    Publish {
        join: JoinRequest,
        offer: String,
        reply: oneshot::Sender<Result<SessionCreated, SfuError>>,
    },
    View {
        view: ViewRequest,
        offer: String,
        reply: oneshot::Sender<Result<SessionCreated, SfuError>>,
    },
    Patch {
        session: SessionId,
        frag: SdpFrag,
        reply: oneshot::Sender<Result<PatchOutcome, SfuError>>,
    },
    Leave {
        session: SessionId,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Subscribe {
        room: String,
        capacity: usize,
        reply: oneshot::Sender<Result<(SinkId, mpsc::Receiver<RoomEvent>), SfuError>>,
    },
    KeyframeRequest {
        track: TrackSid,
    },
    Rooms {
        reply: oneshot::Sender<Vec<RoomSummary>>,
    },
    CreateRoom {
        name: String,
        settings: Option<RoomSettings>,
        metadata: String,
        reply: oneshot::Sender<RoomSummary>,
    },
    DeleteRoom {
        name: String,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Room {
        room: String,
        reply: oneshot::Sender<Result<RoomSnapshot, SfuError>>,
    },
    RemoveParticipant {
        room: String,
        identity: String,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    MuteTrack {
        room: String,
        identity: String,
        track: TrackSid,
        muted: bool,
        reply: oneshot::Sender<Result<TrackInfo, SfuError>>,
    },
    UpdateRoomMetadata {
        room: String,
        metadata: String,
        reply: oneshot::Sender<Result<RoomSummary, SfuError>>,
    },
    UpdateParticipant {
        room: String,
        identity: String,
        change: ParticipantChange,
        reply: oneshot::Sender<Result<ParticipantSummary, SfuError>>,
    },
    Shutdown,
}

/// A UDP datagram as read from a media socket.
pub struct Datagram {
    pub data: Vec<u8>,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub at: Instant,
}

struct RoomState {
    room: Room,
    speakers: ActiveSpeakers<super::ParticipantSid>,
    viewers: Vec<SessionId>,
    sinks: Vec<SinkId>,
    sessions: HashMap<super::ParticipantSid, SessionId>,
}

/// Sessions written to while handling one input, to be polled; each once
/// per round (a set: with many viewers a list search per packet was quadratic).
#[derive(Default)]
struct Dirty {
    queue: Vec<SessionId>,
    queued: HashSet<SessionId>,
}

impl Dirty {
    fn mark(&mut self, id: &SessionId) {
        if self.queued.insert(id.clone()) {
            self.queue.push(id.clone());
        }
    }

    fn pop(&mut self) -> Option<SessionId> {
        let id = self.queue.pop()?;
        self.queued.remove(&id);
        Some(id)
    }
}

pub struct Engine {
    settings: RoomSettings,
    sockets: HashMap<SocketAddr, Arc<UdpSocket>>,
    candidates: Vec<Candidate>,
    rooms: BTreeMap<String, RoomState>,
    peers: HashMap<SessionId, Peer>,
    /// (remote, local) → session, learnt from `Rtc::accepts`.
    routes: HashMap<(SocketAddr, SocketAddr), SessionId>,
    /// Published track → (publisher session, media section).
    tracks: HashMap<TrackSid, (SessionId, Mid)>,
    sinks: HashMap<SinkId, Sink>,
    next_sink: SinkId,
    notices: broadcast::Sender<RoomNotice>,
    stats: Arc<SfuStats>,
    /// The earliest str0m timer of any session (see `next_timeout`).
    wake_at: Instant,
}

/// "No timer pending".
pub(super) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

impl Engine {
    pub fn new(
        settings: RoomSettings,
        sockets: &[(SocketAddr, Arc<UdpSocket>)],
        notices: broadcast::Sender<RoomNotice>,
        stats: Arc<SfuStats>,
    ) -> Engine {
        let candidates = sockets
            .iter()
            .filter_map(|(addr, _)| Candidate::host(*addr, "udp").ok())
            .collect();
        Engine {
            settings,
            sockets: sockets.iter().cloned().collect(),
            candidates,
            rooms: BTreeMap::new(),
            peers: HashMap::new(),
            routes: HashMap::new(),
            tracks: HashMap::new(),
            sinks: HashMap::new(),
            next_sink: 1,
            notices,
            stats,
            wake_at: far_future(),
        }
    }

    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut datagrams: mpsc::Receiver<Datagram>,
    ) {
        let mut housekeeping = tokio::time::interval(Duration::from_millis(100));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let deadline = self.next_timeout();
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.command(command),
                },
                Some(datagram) = datagrams.recv() => self.receive(datagram),
                _ = tokio::time::sleep_until(deadline.into()) => self.timeouts(Instant::now()),
                _ = housekeeping.tick() => self.housekeeping(Instant::now()),
            }
        }
        self.shutdown();
    }

    /// When the loop must wake for str0m's timers (at most 100 ms away).
    /// Kept as a running minimum: rescanning every session per datagram
    /// would put O(sessions) work on the forwarding path. A session whose
    /// timer moved later only causes one early wake-up, which rescans.
    fn next_timeout(&self) -> Instant {
        self.wake_at
            .min(Instant::now() + Duration::from_millis(100))
    }

    // ---- network ----

    fn receive(&mut self, datagram: Datagram) {
        let Ok(contents) = datagram.data.as_slice().try_into() else {
            return;
        };
        let input = Input::Receive(
            datagram.at,
            Receive {
                proto: Protocol::Udp,
                source: datagram.source,
                destination: datagram.destination,
                contents,
            },
        );
        let route = (datagram.source, datagram.destination);
        let known = self
            .routes
            .get(&route)
            .filter(|id| self.peers.get(*id).is_some_and(|p| p.rtc.accepts(&input)))
            .cloned();
        let Some(id) = known.or_else(|| {
            let id = self
                .peers
                .values()
                .find(|p| p.rtc.accepts(&input))?
                .id
                .clone();
            self.routes.insert(route, id.clone());
            Some(id)
        }) else {
            return;
        };
        if let Some(peer) = self.peers.get_mut(&id)
            && let Err(error) = peer.rtc.handle_input(input)
        {
            tracing::debug!(session = %id, %error, "input rejected; closing the session");
            peer.rtc.disconnect();
        }
        self.drive(&id);
    }

    fn timeouts(&mut self, now: Instant) {
        self.wake_at = far_future();
        let due: Vec<SessionId> = self
            .peers
            .values()
            .filter(|p| p.next_timeout <= now)
            .map(|p| p.id.clone())
            .collect();
        for id in due {
            if let Some(peer) = self.peers.get_mut(&id)
                && let Err(error) = peer.rtc.handle_input(Input::Timeout(now))
            {
                tracing::debug!(session = %id, %error, "timeout handling failed");
                peer.rtc.disconnect();
            }
            self.drive(&id);
        }
        let pending = self.peers.values().map(|p| p.next_timeout).min();
        self.wake_at = pending.map_or(self.wake_at, |t| t.min(self.wake_at));
    }

    /// Polls `first` and every session its events write to, until all wait.
    fn drive(&mut self, first: &SessionId) {
        let mut dirty = Dirty::default();
        dirty.mark(first);
        while let Some(id) = dirty.pop() {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            let events = peer.poll(&self.sockets);
            self.wake_at = self.wake_at.min(peer.next_timeout);
            for event in events {
                self.on_event(&id, event, &mut dirty);
            }
        }
    }

    fn on_event(&mut self, id: &SessionId, event: Event, dirty: &mut Dirty) {
        match event {
            Event::Connected => {
                if let Some(peer) = self.peers.get_mut(id) {
                    peer.connected = true;
                    tracing::info!(session = %id, room = %peer.room, "WebRTC session connected");
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                tracing::info!(session = %id, "ICE disconnected");
                if let Some(peer) = self.peers.get_mut(id) {
                    peer.rtc.disconnect();
                }
            }
            Event::MediaAdded(added) => {
                self.media_added(id, added.mid, added.kind, added.direction, dirty)
            }
            Event::RtpPacket(packet) => self.forward(id, packet, dirty),
            Event::SenderFeedback(feedback) => {
                let Some(track) = self.published_track(id, feedback.mid) else {
                    return;
                };
                let report = RoomEvent::SenderReport {
                    track: track.clone(),
                    ntp: NtpTime::from_system_time(feedback.sender_info.ntp_time),
                    rtp_time: feedback.sender_info.rtp_time.numer() as u32,
                };
                self.send_media_to_sinks(id, &track, report);
            }
            Event::KeyframeRequest(request) => {
                let track = self.peers.get(id).and_then(|peer| match &peer.role {
                    Role::Viewer(viewer) => viewer
                        .slots
                        .iter()
                        .find(|s| s.mid == request.mid)?
                        .track
                        .clone(),
                    Role::Publisher(_) => None,
                });
                if let Some(track) = track {
                    self.request_keyframe(&track, dirty);
                }
            }
            Event::StreamPaused(paused) => self.stream_paused(id, paused.mid, paused.paused),
            _ => {}
        }
    }
}

pub fn room_summary(room: &Room) -> RoomSummary {
    RoomSummary {
        sid: room.sid.clone(),
        name: room.name.clone(),
        metadata: room.metadata.clone(),
        created_at: room.created_at,
        num_participants: room.visible().count() as u32,
        num_publishers: room.visible().filter(|p| !p.tracks.is_empty()).count() as u32,
        num_tracks: room.visible().map(|p| p.tracks.len()).sum::<usize>() as u32,
        settings: room.settings,
        active_recording: false,
    }
}

/// As [`room_summary`], knowing whether a program is recording the room.
fn summarize(state: &RoomState) -> RoomSummary {
    RoomSummary {
        active_recording: !state.sinks.is_empty(),
        ..room_summary(&state.room)
    }
}

pub fn participant_summary(participant: &Participant) -> ParticipantSummary {
    ParticipantSummary {
        info: ParticipantInfo::clone(&participant.info),
        joined_at: participant.joined_at,
        permissions: participant.permissions.clone(),
        tracks: participant.tracks.values().cloned().collect(),
        attributes: participant.attributes.clone(),
        version: participant.version,
    }
}

//! The SFU loop: one task owns every room, WebRTC session and in-process
//! subscriber, so forwarding needs no locks. Signaling reaches it as
//! commands; datagrams from the media sockets as they arrive.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind, Mid, Rids};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket as RtcPacket, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::events::{
    Codec, Layer, NtpTime, ParticipantInfo, RoomEvent, RtpPacket, TrackInfo, TrackKind, TrackSid,
    TrackSource,
};
use super::peer::{
    Peer, PublishedTrack, Publisher, Role, SessionId, Slot, Viewer, codec_for_pt, kind_of,
};
use super::room::{Participant, Room, RoomSettings};
use super::sdp::{OfferedMedia, SdpFrag};
use super::sink::{Delivery, Sink};
use super::speaker::{ActiveSpeakers, SpeakerConfig};
use super::{
    JoinRequest, ParticipantSummary, PatchOutcome, RoomNotice, RoomSnapshot, RoomSummary,
    SessionCreated, SfuError, SfuStats, ViewRequest,
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
fn far_future() -> Instant {
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

    // ---- publishing ----

    fn media_added(
        &mut self,
        id: &SessionId,
        mid: Mid,
        kind: MediaKind,
        direction: Direction,
        dirty: &mut Dirty,
    ) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let pts = peer.negotiated_pts(mid);
        let layers = match peer.rtc.media(mid).map(|m| m.rids_rx()) {
            Some(Rids::Specific(rids)) => rids.clone(),
            _ => Vec::new(),
        };
        match &mut peer.role {
            Role::Publisher(publisher) if direction.is_receiving() => {
                let kind = kind_of(kind);
                let same_kind = publisher.tracks.values().filter(|t| t.kind == kind).count();
                let source = source_for(kind, same_kind);
                publisher
                    .tracks
                    .insert(mid, PublishedTrack::new(kind, source, layers));
            }
            Role::Viewer(viewer) if direction.is_sending() => {
                let start = 1 + (uuid::Uuid::new_v4().as_u128() % 30_000) as u16;
                viewer.slots.push(Slot {
                    mid,
                    kind: kind_of(kind),
                    track: None,
                    seq: super::forward::SeqRewriter::new(start),
                    pts,
                });
                let room = peer.room.clone();
                self.assign_viewer_slots(&room, dirty);
            }
            _ => {}
        }
    }

    /// The track published on `mid` of publisher `id`, once announced.
    fn published_track(&self, id: &SessionId, mid: Mid) -> Option<TrackSid> {
        match &self.peers.get(id)?.role {
            Role::Publisher(publisher) => {
                let track = publisher.tracks.get(&mid)?;
                track.codec.map(|_| track.sid.clone())
            }
            Role::Viewer(_) => None,
        }
    }

    fn forward(&mut self, id: &SessionId, packet: RtcPacket, dirty: &mut Dirty) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        self.stats.received.fetch_add(1, Relaxed);
        let ssrc = packet.header.ssrc;
        let Some((mid, rid)) = peer
            .rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| (s.mid(), s.rid()))
        else {
            return;
        };
        let pt = packet.header.payload_type;
        let Role::Publisher(publisher) = &mut peer.role else {
            return;
        };
        let participant = publisher.participant.clone();
        let Some(track) = publisher.tracks.get_mut(&mid) else {
            return;
        };
        if !track.forwards_layer(rid) {
            return;
        }
        // The codec is looked up once, on the track's first packet.
        let newly_announced = track.codec.is_none();
        if newly_announced {
            let Some(codec) = codec_for_pt(&peer.rtc, pt) else {
                return;
            };
            track.codec = Some((codec, *pt));
        }
        let Some((codec, _)) = track.codec else {
            return;
        };
        let (sid, kind, muted) = (track.sid.clone(), track.kind, track.muted);
        let track_layers = track.layers.len();
        let room_name = peer.room.clone();
        if newly_announced {
            let mut info =
                TrackInfo::new(sid.clone(), participant.clone(), track.source, codec, *pt);
            info.simulcast_layers = (0..track_layers).map(|n| Layer(n as u8)).collect();
            self.tracks.insert(sid.clone(), (id.clone(), mid));
            self.track_published(&room_name, &participant, info, dirty);
        }
        if muted {
            return;
        }
        if let (Some(level), Some(state)) = (
            packet.header.ext_vals.audio_level,
            self.rooms.get_mut(&room_name),
        ) {
            state
                .speakers
                .observe(&participant, level.unsigned_abs(), packet.timestamp);
        }
        self.send_to_viewers(&room_name, (&sid, kind, codec), &packet, dirty);
        let event = RoomEvent::Rtp {
            track: sid.clone(),
            packet: RtpPacket {
                payload_type: *pt,
                sequence_number: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                ssrc: *ssrc,
                marker: packet.header.marker,
                payload: Bytes::from_owner(packet.payload.clone()),
                arrival: packet.timestamp,
            },
        };
        if self.send_media_to_sinks(id, &sid, event) && kind == TrackKind::Video {
            self.request_keyframe(&sid, dirty);
        }
    }

    /// Sends a media event to the room's in-process subscribers; true when
    /// one of them caught up after drops and needs a keyframe.
    fn send_media_to_sinks(
        &mut self,
        publisher: &SessionId,
        track: &TrackSid,
        event: RoomEvent,
    ) -> bool {
        let Some(room) = self.peers.get(publisher).map(|p| p.room.clone()) else {
            return false;
        };
        let Some(state) = self.rooms.get(&room) else {
            return false;
        };
        let mut resumed = false;
        for sink_id in &state.sinks {
            if let Some(sink) = self.sinks.get_mut(sink_id) {
                let delivery = sink.media(track, event.clone());
                resumed |= delivery == Delivery::Resumed;
                match delivery {
                    Delivery::Sent | Delivery::Resumed => &self.stats.forwarded,
                    Delivery::Dropped | Delivery::Closed => &self.stats.dropped,
                }
                .fetch_add(1, Relaxed);
            }
        }
        resumed
    }

    fn send_to_viewers(
        &mut self,
        room: &str,
        (track, kind, codec): (&TrackSid, TrackKind, Codec),
        packet: &RtcPacket,
        dirty: &mut Dirty,
    ) {
        let Some(state) = self.rooms.get(room) else {
            return;
        };
        for viewer_id in &state.viewers {
            let Some(peer) = self.peers.get_mut(viewer_id) else {
                continue;
            };
            let Role::Viewer(viewer) = &mut peer.role else {
                continue;
            };
            let Some(slot) = viewer
                .slots
                .iter_mut()
                .find(|s| s.track.as_ref() == Some(track))
            else {
                continue;
            };
            let (Some(&pt), Some(seq)) = (slot.pts.get(&codec), slot.seq.rewrite(*packet.seq_no))
            else {
                continue;
            };
            let mid = slot.mid;
            let ext_vals = ExtensionValues {
                audio_level: packet.header.ext_vals.audio_level,
                voice_activity: packet.header.ext_vals.voice_activity,
                ..ExtensionValues::default()
            };
            let mut api = peer.rtc.direct_api();
            let Some(stream) = api.stream_tx_by_mid(mid, None) else {
                continue;
            };
            stream.write_rtp(
                RtpWrite::new(
                    pt,
                    seq.into(),
                    packet.header.timestamp,
                    packet.timestamp,
                    packet.payload.clone(),
                )
                .marker(packet.header.marker)
                .ext_vals(ext_vals)
                .nackable(kind == TrackKind::Video),
            );
            self.stats.forwarded.fetch_add(1, Relaxed);
            dirty.mark(viewer_id);
        }
    }

    fn request_keyframe(&mut self, track: &TrackSid, dirty: &mut Dirty) {
        let Some((publisher, mid)) = self.tracks.get(track).cloned() else {
            return;
        };
        if let Some(peer) = self.peers.get_mut(&publisher)
            && peer.request_keyframe(mid, Instant::now())
        {
            dirty.mark(&publisher);
        }
    }

    fn stream_paused(&mut self, id: &SessionId, mid: Mid, paused: bool) {
        let Some(track) = self.published_track(id, mid) else {
            return;
        };
        let room = self
            .peers
            .get(id)
            .map(|p| p.room.clone())
            .unwrap_or_default();
        self.set_muted(&room, &track, paused);
    }

    fn set_muted(&mut self, room: &str, track: &TrackSid, muted: bool) -> Option<TrackInfo> {
        let state = self.rooms.get_mut(room)?;
        let owner = state.room.track_owner(track)?.sid().clone();
        let participant = state.room.participant_mut(&owner)?;
        let info = participant.tracks.get_mut(track)?;
        if info.muted == muted {
            return Some(info.clone());
        }
        info.muted = muted;
        let info = info.clone();
        if let Some((publisher, mid)) = self.tracks.get(track)
            && let Some(Role::Publisher(p)) = self.peers.get_mut(publisher).map(|p| &mut p.role)
            && let Some(published) = p.tracks.get_mut(mid)
        {
            published.muted = muted;
        }
        self.send_to_sinks(
            room,
            RoomEvent::TrackMuted {
                track: track.clone(),
                muted,
            },
        );
        Some(info)
    }

    fn track_published(
        &mut self,
        room: &str,
        participant: &super::ParticipantSid,
        info: TrackInfo,
        dirty: &mut Dirty,
    ) {
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(p) = state.room.participant_mut(participant) else {
            return;
        };
        p.tracks.insert(info.sid.clone(), info.clone());
        let hidden = p.hidden();
        tracing::info!(room, track = %info.sid, codec = ?info.codec, source = info.source.name(), "track published");
        if !hidden {
            let summary =
                participant_summary(state.room.participant(participant).expect("present"));
            let _ = self.notices.send(RoomNotice::TrackPublished(
                room_summary(&state.room),
                summary,
                info.clone(),
            ));
            self.send_to_sinks(room, RoomEvent::TrackPublished(info.clone()));
        }
        self.assign_viewer_slots(room, dirty);
        // New subscribers start from a keyframe.
        if info.kind == TrackKind::Video {
            self.request_keyframe(&info.sid, dirty);
        }
    }

    /// Gives each viewer's free slots the target's tracks of the same kind.
    fn assign_viewer_slots(&mut self, room: &str, dirty: &mut Dirty) {
        let Some(state) = self.rooms.get(room) else {
            return;
        };
        let mut wants_keyframe = Vec::new();
        for viewer_id in &state.viewers {
            let Some(peer) = self.peers.get_mut(viewer_id) else {
                continue;
            };
            let Role::Viewer(viewer) = &mut peer.role else {
                continue;
            };
            let Some(target) = state.room.by_identity(&viewer.target) else {
                continue;
            };
            for track in target.tracks.values() {
                if viewer
                    .slots
                    .iter()
                    .any(|s| s.track.as_ref() == Some(&track.sid))
                {
                    continue;
                }
                if let Some(slot) = viewer
                    .slots
                    .iter_mut()
                    .find(|s| s.track.is_none() && s.kind == track.kind)
                {
                    slot.track = Some(track.sid.clone());
                    wants_keyframe.push(track.sid.clone());
                }
            }
        }
        for track in wants_keyframe {
            self.request_keyframe(&track, dirty);
        }
    }

    // ---- commands ----

    fn command(&mut self, command: Command) {
        match command {
            Command::Publish { join, offer, reply } => {
                let result = self.publish(join, &offer);
                self.answer_and_start(result, reply);
            }
            Command::View { view, offer, reply } => {
                let result = self.view(view, &offer);
                self.answer_and_start(result, reply);
            }
            Command::Patch {
                session,
                frag,
                reply,
            } => {
                let _ = reply.send(self.patch(&session, frag));
                self.drive(&session);
            }
            Command::Leave { session, reply } => {
                let found = self.peers.contains_key(&session);
                if found {
                    self.remove_peer(&session, "left (DELETE)");
                }
                let _ = reply.send(if found {
                    Ok(())
                } else {
                    Err(SfuError::UnknownSession)
                });
            }
            Command::Subscribe {
                room,
                capacity,
                reply,
            } => {
                let _ = reply.send(Ok(self.subscribe(&room, capacity)));
            }
            Command::KeyframeRequest { track } => {
                let mut dirty = Dirty::default();
                self.request_keyframe(&track, &mut dirty);
                while let Some(id) = dirty.pop() {
                    self.drive(&id);
                }
            }
            Command::Rooms { reply } => {
                let _ = reply.send(self.rooms.values().map(|s| room_summary(&s.room)).collect());
            }
            Command::CreateRoom {
                name,
                settings,
                metadata,
                reply,
            } => {
                let existed = self.rooms.contains_key(&name);
                let state = self.room_or_create(&name);
                // LiveKit: creating an existing room returns it unchanged.
                if !existed {
                    if let Some(settings) = settings {
                        state.room.settings = settings;
                    }
                    state.room.metadata = metadata;
                }
                let _ = reply.send(room_summary(&state.room));
            }
            Command::DeleteRoom { name, reply } => {
                let found = self.rooms.contains_key(&name);
                if found {
                    self.close_room(&name);
                }
                let _ = reply.send(if found {
                    Ok(())
                } else {
                    Err(SfuError::UnknownRoom(name))
                });
            }
            Command::Room { room, reply } => {
                let snapshot = self.rooms.get(&room).map(|s| RoomSnapshot {
                    room: room_summary(&s.room),
                    participants: s.room.visible().map(participant_summary).collect(),
                });
                let _ = reply.send(snapshot.ok_or(SfuError::UnknownRoom(room)));
            }
            Command::RemoveParticipant {
                room,
                identity,
                reply,
            } => {
                let session = self.session_of(&room, &identity);
                let result = match session {
                    Some(session) => {
                        self.remove_peer(&session, "removed by an admin");
                        Ok(())
                    }
                    None => Err(SfuError::UnknownParticipant { room, identity }),
                };
                let _ = reply.send(result);
            }
            Command::MuteTrack {
                room,
                identity,
                track,
                muted,
                reply,
            } => {
                let owned = self
                    .rooms
                    .get(&room)
                    .and_then(|s| s.room.by_identity(&identity))
                    .is_some_and(|p| p.tracks.contains_key(&track));
                let result = if owned {
                    self.set_muted(&room, &track, muted)
                        .ok_or(SfuError::UnknownTrack(track))
                } else {
                    Err(SfuError::UnknownTrack(track))
                };
                let _ = reply.send(result);
            }
            Command::Shutdown => {}
        }
    }

    /// Answers the signaling request first (the client needs the SDP answer
    /// to start ICE), then lets the new session produce its first output.
    fn answer_and_start(
        &mut self,
        result: Result<SessionCreated, SfuError>,
        reply: oneshot::Sender<Result<SessionCreated, SfuError>>,
    ) {
        let session = result.as_ref().ok().map(|created| created.session.clone());
        let _ = reply.send(result);
        if let Some(session) = session {
            self.drive(&session);
        }
    }

    fn session_of(&self, room: &str, identity: &str) -> Option<SessionId> {
        let state = self.rooms.get(room)?;
        let participant = state.room.by_identity(identity)?;
        state.sessions.get(participant.sid()).cloned()
    }

    fn new_rtc(&self) -> Rtc {
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            .enable_vp9(true)
            .enable_av1(true)
            .build(Instant::now());
        for candidate in &self.candidates {
            rtc.add_local_candidate(candidate.clone());
        }
        rtc
    }

    fn accept(&self, offer: &str) -> Result<(Rtc, String, String), SfuError> {
        let parsed =
            SdpOffer::from_sdp_string(offer).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let mut rtc = self.new_rtc();
        let answer = rtc
            .sdp_api()
            .accept_offer(parsed)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let remote_ufrag = offer
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
            .unwrap_or_default()
            .to_string();
        Ok((rtc, answer.to_sdp_string(), remote_ufrag))
    }

    fn room_or_create(&mut self, name: &str) -> &mut RoomState {
        if !self.rooms.contains_key(name) {
            let room = Room::new(name, self.settings, Instant::now());
            tracing::info!(room = name, sid = %room.sid, "room started");
            let _ = self
                .notices
                .send(RoomNotice::RoomStarted(room_summary(&room)));
            self.rooms.insert(
                name.to_string(),
                RoomState {
                    room,
                    speakers: ActiveSpeakers::new(SpeakerConfig::default()),
                    viewers: Vec::new(),
                    sinks: Vec::new(),
                    sessions: HashMap::new(),
                },
            );
        }
        self.rooms.get_mut(name).expect("inserted above")
    }

    fn publish(&mut self, join: JoinRequest, offer: &str) -> Result<SessionCreated, SfuError> {
        let media = OfferedMedia::parse(offer);
        if !media.sends_any() {
            return Err(SfuError::BadSdp(
                "the offer sends no audio or video (WHIP publishes media)".into(),
            ));
        }
        check_may_publish(&join, &media)?;
        let (mut rtc, answer, remote_ufrag) = self.accept(offer)?;

        // A second session with the same identity replaces the first.
        if let Some(old) = self.session_of(&join.room, &join.identity) {
            self.remove_peer(&old, "replaced by a newer session with the same identity");
        }
        let participant = Participant::new(
            &join.identity,
            &join.name,
            &join.metadata,
            join.permissions.clone(),
        );
        let participant_sid = participant.sid().clone();
        let now = Instant::now();
        let state = self.room_or_create(&join.room);
        state
            .room
            .join(participant, now)
            .map_err(|e| SfuError::RoomFull(e.to_string()))?;
        let session = super::ids::new_sid("");
        state
            .sessions
            .insert(participant_sid.clone(), session.clone());
        let room_sid = state.room.sid.clone();
        let joined = state
            .room
            .participant(&participant_sid)
            .expect("just joined");
        let info = joined.info.clone();
        let notice = (!joined.hidden()).then(|| {
            RoomNotice::ParticipantJoined(room_summary(&state.room), participant_summary(joined))
        });
        if let Some(notice) = notice {
            let _ = self.notices.send(notice);
            self.send_to_sinks(&join.room, RoomEvent::ParticipantJoined(info.clone()));
        }
        tracing::info!(room = %join.room, identity = %join.identity, participant = %participant_sid, session, "participant joined (WHIP)");
        let etag = etag(&mut rtc);
        let role = Role::Publisher(Publisher {
            participant: participant_sid.clone(),
            tracks: HashMap::new(),
        });
        self.peers.insert(
            session.clone(),
            Peer::new(session.clone(), rtc, &join.room, role, remote_ufrag),
        );
        Ok(SessionCreated {
            session,
            answer,
            etag,
            room_sid,
            participant: Some(info),
        })
    }

    fn view(&mut self, view: ViewRequest, offer: &str) -> Result<SessionCreated, SfuError> {
        let media = OfferedMedia::parse(offer);
        if !media.receives_any() {
            return Err(SfuError::BadSdp(
                "the offer receives no audio or video (WHEP plays media)".into(),
            ));
        }
        let state = self
            .rooms
            .get(&view.room)
            .ok_or_else(|| SfuError::UnknownRoom(view.room.clone()))?;
        if state
            .room
            .by_identity(&view.target)
            .is_none_or(|p| p.hidden())
        {
            return Err(SfuError::UnknownParticipant {
                room: view.room.clone(),
                identity: view.target.clone(),
            });
        }
        let room_sid = state.room.sid.clone();
        let (mut rtc, answer, remote_ufrag) = self.accept(offer)?;
        let session = super::ids::new_sid("");
        let etag = etag(&mut rtc);
        let role = Role::Viewer(Viewer {
            target: view.target.clone(),
            slots: Vec::new(),
        });
        self.peers.insert(
            session.clone(),
            Peer::new(session.clone(), rtc, &view.room, role, remote_ufrag),
        );
        if let Some(state) = self.rooms.get_mut(&view.room) {
            state.viewers.push(session.clone());
        }
        tracing::info!(room = %view.room, target = %view.target, session, "viewer joined (WHEP)");
        Ok(SessionCreated {
            session,
            answer,
            etag,
            room_sid,
            participant: None,
        })
    }

    fn patch(&mut self, session: &SessionId, frag: SdpFrag) -> Result<PatchOutcome, SfuError> {
        let candidates: Vec<String> = self.candidates.iter().map(|c| c.to_sdp_string()).collect();
        let peer = self
            .peers
            .get_mut(session)
            .ok_or(SfuError::UnknownSession)?;
        let restart = match (&frag.ufrag, &frag.pwd) {
            (Some(ufrag), Some(pwd)) if *ufrag != peer.remote_ufrag => {
                Some((ufrag.clone(), pwd.clone()))
            }
            _ => None,
        };
        for line in &frag.candidates {
            match Candidate::from_sdp_string(line) {
                Ok(candidate) => peer.rtc.add_remote_candidate(candidate),
                Err(error) => {
                    return Err(SfuError::BadSdp(format!("bad candidate `{line}`: {error}")));
                }
            }
        }
        let Some((ufrag, pwd)) = restart else {
            return Ok(PatchOutcome::Trickled);
        };
        let local = IceCreds::new();
        let mut api = peer.rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: ufrag.clone(),
            pass: pwd,
        });
        api.set_local_ice_credentials(local.clone());
        peer.remote_ufrag = ufrag;
        tracing::info!(session, "ICE restart");
        Ok(PatchOutcome::Restarted {
            etag: format!("\"{}\"", local.ufrag),
            frag: SdpFrag::answer(&local.ufrag, &local.pass, &candidates),
        })
    }

    fn subscribe(&mut self, room: &str, capacity: usize) -> (SinkId, mpsc::Receiver<RoomEvent>) {
        let (tx, rx) = mpsc::channel(capacity);
        let id = self.next_sink;
        self.next_sink += 1;
        let mut sink = Sink::new(room, tx);
        let state = self.room_or_create(room);
        // The room as it is now, then live changes.
        for participant in state.room.visible() {
            sink.control(RoomEvent::ParticipantJoined(participant.info.clone()));
            for track in participant.tracks.values() {
                sink.control(RoomEvent::TrackPublished(track.clone()));
            }
        }
        let speakers = state.speakers.current().to_vec();
        if !speakers.is_empty() {
            sink.control(RoomEvent::ActiveSpeakers(speakers));
        }
        state.sinks.push(id);
        let video: Vec<TrackSid> = state
            .room
            .visible()
            .flat_map(|p| p.tracks.values())
            .filter(|t| t.kind == TrackKind::Video)
            .map(|t| t.sid.clone())
            .collect();
        self.sinks.insert(id, sink);
        tracing::info!(room, sink = id, "in-process subscriber attached");
        let mut dirty = Dirty::default();
        for track in video {
            self.request_keyframe(&track, &mut dirty);
        }
        while let Some(peer) = dirty.pop() {
            self.drive(&peer);
        }
        (id, rx)
    }

    // ---- leaving and closing ----

    fn remove_peer(&mut self, id: &SessionId, reason: &str) {
        let Some(mut peer) = self.peers.remove(id) else {
            return;
        };
        peer.rtc.disconnect();
        let _ = peer.poll(&self.sockets);
        self.routes.retain(|_, session| session != id);
        match peer.role {
            Role::Publisher(publisher) => {
                self.participant_left(&peer.room, &publisher.participant, reason)
            }
            Role::Viewer(_) => {
                if let Some(state) = self.rooms.get_mut(&peer.room) {
                    state.viewers.retain(|v| v != id);
                }
                tracing::info!(session = %id, reason, "viewer left");
            }
        }
    }

    fn participant_left(&mut self, room: &str, sid: &super::ParticipantSid, reason: &str) {
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        state.sessions.remove(sid);
        let summary = room_summary(&state.room);
        let Some(participant) = state.room.leave(sid, Instant::now()) else {
            return;
        };
        state.speakers.remove(sid);
        tracing::info!(room, identity = %participant.info.identity, reason, "participant left");
        let hidden = participant.hidden();
        let left = participant_summary(&participant);
        let (sinks, viewers) = (state.sinks.clone(), state.viewers.clone());
        for track in participant.tracks.values() {
            self.tracks.remove(&track.sid);
            for sink_id in &sinks {
                if let Some(sink) = self.sinks.get_mut(sink_id) {
                    sink.forget_track(&track.sid);
                }
            }
            for viewer in &viewers {
                if let Some(Role::Viewer(v)) = self.peers.get_mut(viewer).map(|p| &mut p.role) {
                    for slot in v
                        .slots
                        .iter_mut()
                        .filter(|s| s.track.as_ref() == Some(&track.sid))
                    {
                        slot.track = None;
                        slot.seq = super::forward::SeqRewriter::new(1);
                    }
                }
            }
            if !hidden {
                let _ = self.notices.send(RoomNotice::TrackUnpublished(
                    summary.clone(),
                    left.clone(),
                    track.clone(),
                ));
                self.send_to_sinks(
                    room,
                    RoomEvent::TrackUnpublished {
                        track: track.sid.clone(),
                    },
                );
            }
        }
        if !hidden {
            let summary = self
                .rooms
                .get(room)
                .map(|s| room_summary(&s.room))
                .unwrap_or(summary);
            let _ = self
                .notices
                .send(RoomNotice::ParticipantLeft(summary, left));
            self.send_to_sinks(
                room,
                RoomEvent::ParticipantLeft {
                    participant: sid.clone(),
                },
            );
        }
    }

    fn send_to_sinks(&mut self, room: &str, event: RoomEvent) {
        let Some(state) = self.rooms.get(room) else {
            return;
        };
        for sink_id in &state.sinks {
            if let Some(sink) = self.sinks.get_mut(sink_id) {
                sink.control(event.clone());
            }
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        // Sessions that died or never connected leave.
        let gone: Vec<SessionId> = self
            .peers
            .values()
            .filter(|p| {
                !p.rtc.is_alive()
                    || (!p.connected && now.duration_since(p.created) > CONNECT_TIMEOUT)
            })
            .map(|p| p.id.clone())
            .collect();
        for id in gone {
            self.remove_peer(&id, "connection closed");
        }
        // Subscribers that went away; the rest get their backlog.
        let closed: Vec<SinkId> = self
            .sinks
            .iter()
            .filter(|(_, s)| s.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in closed {
            if let Some(sink) = self.sinks.remove(&id) {
                tracing::info!(room = %sink.room, sink = id, dropped = sink.dropped_packets, "in-process subscriber detached");
                if let Some(state) = self.rooms.get_mut(&sink.room) {
                    state.sinks.retain(|s| *s != id);
                }
            }
        }
        for sink in self.sinks.values_mut() {
            sink.flush();
        }
        let deferred: Vec<SessionId> = self
            .peers
            .values_mut()
            .filter_map(|p| p.send_deferred_keyframe_requests(now).then(|| p.id.clone()))
            .collect();
        for id in deferred {
            self.drive(&id);
        }
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for name in names {
            let Some(state) = self.rooms.get_mut(&name) else {
                continue;
            };
            if let Some(speakers) = state.speakers.tick(now) {
                tracing::debug!(room = %name, ?speakers, "active speakers");
                self.send_to_sinks(&name, RoomEvent::ActiveSpeakers(speakers));
            }
            if self
                .rooms
                .get(&name)
                .is_some_and(|s| s.room.is_due_to_close(now))
            {
                self.close_room(&name);
            }
        }
    }

    fn close_room(&mut self, name: &str) {
        let sessions: Vec<SessionId> = self
            .peers
            .values()
            .filter(|p| p.room == name)
            .map(|p| p.id.clone())
            .collect();
        for id in sessions {
            self.remove_peer(&id, "room closed");
        }
        self.send_to_sinks(name, RoomEvent::RoomClosed);
        let Some(state) = self.rooms.remove(name) else {
            return;
        };
        for sink in &state.sinks {
            if let Some(mut sink) = self.sinks.remove(sink) {
                sink.flush();
            }
        }
        tracing::info!(room = name, sid = %state.room.sid, "room finished");
        let _ = self
            .notices
            .send(RoomNotice::RoomFinished(room_summary(&state.room)));
    }

    fn shutdown(&mut self) {
        let ids: Vec<SessionId> = self.peers.keys().cloned().collect();
        for id in ids {
            self.remove_peer(&id, "server shutting down");
        }
    }
}

/// The ETag of a WHIP/WHEP resource names its ICE session (RFC 9725 §4.3.1).
fn etag(rtc: &mut Rtc) -> String {
    format!("\"{}\"", rtc.direct_api().local_ice_credentials().ufrag)
}

/// WHIP carries no track sources: a publisher's first audio is its
/// microphone and first video its camera; a second one is a screen share.
fn source_for(kind: TrackKind, earlier_of_kind: usize) -> TrackSource {
    match (kind, earlier_of_kind) {
        (TrackKind::Audio, 0) => TrackSource::Microphone,
        (TrackKind::Audio, _) => TrackSource::ScreenShareAudio,
        (TrackKind::Video, 0) => TrackSource::Camera,
        (TrackKind::Video, _) => TrackSource::ScreenShare,
    }
}

fn check_may_publish(join: &JoinRequest, media: &OfferedMedia) -> Result<(), SfuError> {
    if !join.permissions.can_publish {
        return Err(SfuError::Forbidden(
            "the token does not allow publishing (canPublish is false)".into(),
        ));
    }
    let wanted = (0..media.audio_send)
        .map(|n| source_for(TrackKind::Audio, n))
        .chain((0..media.video_send).map(|n| source_for(TrackKind::Video, n)));
    for source in wanted {
        if !join.permissions.may_publish(source) {
            return Err(SfuError::Forbidden(format!(
                "the token does not allow publishing {} (canPublishSources)",
                source.name()
            )));
        }
    }
    Ok(())
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
    }
}

pub fn participant_summary(participant: &Participant) -> ParticipantSummary {
    ParticipantSummary {
        info: ParticipantInfo::clone(&participant.info),
        joined_at: participant.joined_at,
        permissions: participant.permissions.clone(),
        tracks: participant.tracks.values().cloned().collect(),
    }
}

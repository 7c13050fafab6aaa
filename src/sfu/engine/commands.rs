//! Signaling commands: publish, view, patch, subscribe and the room service
//! queries, each answered from the loop that owns the rooms.

use std::collections::HashMap;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::{Candidate, IceCreds, Rtc};
use tokio::sync::{mpsc, oneshot};

use super::publishing::source_for;
use super::{
    Command, Dirty, Engine, RoomState, SinkId, participant_summary, room_summary, summarize,
};
use crate::sfu::events::{RoomEvent, TrackKind, TrackSid};
use crate::sfu::peer::{Peer, Publisher, Role, SessionId, Viewer};
use crate::sfu::room::{Participant, Room};
use crate::sfu::sdp::{OfferedMedia, SdpFrag};
use crate::sfu::sink::Sink;
use crate::sfu::speaker::{ActiveSpeakers, SpeakerConfig};
use crate::sfu::{
    JoinRequest, ParticipantChange, ParticipantSummary, PatchOutcome, RoomNotice, RoomSnapshot,
    SessionCreated, SfuError, ViewRequest,
};

impl Engine {
    pub(super) fn command(&mut self, command: Command) {
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
                let _ = reply.send(self.rooms.values().map(summarize).collect());
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
                    room: summarize(s),
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
            Command::UpdateRoomMetadata {
                room,
                metadata,
                reply,
            } => {
                let result = match self.rooms.get_mut(&room) {
                    Some(state) => {
                        state.room.metadata = metadata;
                        Ok(summarize(state))
                    }
                    None => Err(SfuError::UnknownRoom(room)),
                };
                let _ = reply.send(result);
            }
            Command::UpdateParticipant {
                room,
                identity,
                change,
                reply,
            } => {
                let _ = reply.send(self.update_participant(&room, &identity, change));
            }
            Command::Shutdown => {}
        }
    }

    /// Answers the signaling request first (the client needs the SDP answer
    /// to start ICE), then lets the new session produce its first output.
    pub(super) fn answer_and_start(
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

    pub(super) fn session_of(&self, room: &str, identity: &str) -> Option<SessionId> {
        let state = self.rooms.get(room)?;
        let participant = state.room.by_identity(identity)?;
        state.sessions.get(participant.sid()).cloned()
    }

    pub(super) fn new_rtc(&self) -> Rtc {
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

    pub(super) fn accept(&self, offer: &str) -> Result<(Rtc, String, String), SfuError> {
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

    pub(super) fn room_or_create(&mut self, name: &str) -> &mut RoomState {
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

    pub(super) fn publish(
        &mut self,
        join: JoinRequest,
        offer: &str,
    ) -> Result<SessionCreated, SfuError> {
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
        let mut participant = Participant::new(
            &join.identity,
            &join.name,
            &join.metadata,
            join.permissions.clone(),
        );
        participant.attributes = join.attributes.clone();
        let participant_sid = participant.sid().clone();
        let now = Instant::now();
        let state = self.room_or_create(&join.room);
        state
            .room
            .join(participant, now)
            .map_err(|e| SfuError::RoomFull(e.to_string()))?;
        let session = crate::sfu::ids::new_sid("");
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

    pub(super) fn view(
        &mut self,
        view: ViewRequest,
        offer: &str,
    ) -> Result<SessionCreated, SfuError> {
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
        let session = crate::sfu::ids::new_sid("");
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

    pub(super) fn patch(
        &mut self,
        session: &SessionId,
        frag: SdpFrag,
    ) -> Result<PatchOutcome, SfuError> {
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

    /// UpdateParticipant: name, metadata and attributes (an empty value
    /// removes an attribute, as in LiveKit), and permissions. Programs see
    /// the change at once (name labels follow it).
    fn update_participant(
        &mut self,
        room: &str,
        identity: &str,
        change: ParticipantChange,
    ) -> Result<ParticipantSummary, SfuError> {
        let unknown = || SfuError::UnknownParticipant {
            room: room.to_string(),
            identity: identity.to_string(),
        };
        let state = self.rooms.get_mut(room).ok_or_else(unknown)?;
        let sid = state
            .room
            .by_identity(identity)
            .ok_or_else(unknown)?
            .sid()
            .clone();
        let participant = state.room.participant_mut(&sid).ok_or_else(unknown)?;
        if let Some(name) = change.name {
            participant.info.name = name;
        }
        if let Some(metadata) = change.metadata {
            participant.info.metadata = metadata;
        }
        for (key, value) in change.attributes {
            if value.is_empty() {
                participant.attributes.remove(&key);
            } else {
                participant.attributes.insert(key, value);
            }
        }
        if let Some(permissions) = change.permissions {
            participant.permissions = permissions;
        }
        participant.version += 1;
        let summary = participant_summary(participant);
        let hidden = participant.hidden();
        if !hidden {
            self.send_to_sinks(room, RoomEvent::ParticipantUpdated(summary.info.clone()));
        }
        Ok(summary)
    }

    pub(super) fn subscribe(
        &mut self,
        room: &str,
        capacity: usize,
    ) -> (SinkId, mpsc::Receiver<RoomEvent>) {
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
}

/// The ETag of a WHIP/WHEP resource names its ICE session (RFC 9725 §4.3.1).
pub(super) fn etag(rtc: &mut Rtc) -> String {
    format!("\"{}\"", rtc.direct_api().local_ice_credentials().ufrag)
}

pub(super) fn check_may_publish(join: &JoinRequest, media: &OfferedMedia) -> Result<(), SfuError> {
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

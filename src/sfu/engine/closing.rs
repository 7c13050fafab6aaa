//! Leaving and closing: sessions removed, participants announced as gone,
//! rooms closed by their timeouts, and the shutdown of every session.

use std::time::Instant;

use super::{CONNECT_TIMEOUT, Engine, SinkId, participant_summary, room_summary};
use crate::sfu::RoomNotice;
use crate::sfu::events::RoomEvent;
use crate::sfu::peer::{Role, SessionId};

impl Engine {
    pub(super) fn remove_peer(&mut self, id: &SessionId, reason: &str) {
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

    pub(super) fn participant_left(
        &mut self,
        room: &str,
        sid: &crate::sfu::ParticipantSid,
        reason: &str,
    ) {
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
                        slot.seq = crate::sfu::forward::SeqRewriter::new(1);
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

    pub(super) fn send_to_sinks(&mut self, room: &str, event: RoomEvent) {
        let Some(state) = self.rooms.get(room) else {
            return;
        };
        for sink_id in &state.sinks {
            if let Some(sink) = self.sinks.get_mut(sink_id) {
                sink.control(event.clone());
            }
        }
    }

    pub(super) fn housekeeping(&mut self, now: Instant) {
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

    pub(super) fn close_room(&mut self, name: &str) {
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

    pub(super) fn shutdown(&mut self) {
        let ids: Vec<SessionId> = self.peers.keys().cloned().collect();
        for id in ids {
            self.remove_peer(&id, "server shutting down");
        }
    }
}

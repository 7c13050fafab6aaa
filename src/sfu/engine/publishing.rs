//! Publishing and forwarding: tracks announced as their media arrives, RTP
//! fanned out to viewers and in-process subscribers, keyframe requests.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bytes::Bytes;
use str0m::media::{Direction, MediaKind, Mid, Rids};
use str0m::rtp::{ExtensionValues, RtpPacket as RtcPacket, RtpWrite};

use super::{Dirty, Engine, participant_summary, room_summary};
use crate::sfu::RoomNotice;
use crate::sfu::events::{
    Codec, Layer, RoomEvent, RtpPacket, TrackInfo, TrackKind, TrackSid, TrackSource,
};
use crate::sfu::peer::{PublishedTrack, Role, SessionId, Slot, codec_for_pt, kind_of};
use crate::sfu::sink::Delivery;

impl Engine {
    pub(super) fn media_added(
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
                    seq: crate::sfu::forward::SeqRewriter::new(start),
                    pts,
                });
                let room = peer.room.clone();
                self.assign_viewer_slots(&room, dirty);
            }
            _ => {}
        }
    }

    /// The track published on `mid` of publisher `id`, once announced.
    pub(super) fn published_track(&self, id: &SessionId, mid: Mid) -> Option<TrackSid> {
        match &self.peers.get(id)?.role {
            Role::Publisher(publisher) => {
                let track = publisher.tracks.get(&mid)?;
                track.codec.map(|_| track.sid.clone())
            }
            Role::Viewer(_) => None,
        }
    }

    pub(super) fn forward(&mut self, id: &SessionId, packet: RtcPacket, dirty: &mut Dirty) {
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
    pub(super) fn send_media_to_sinks(
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

    pub(super) fn send_to_viewers(
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

    pub(super) fn request_keyframe(&mut self, track: &TrackSid, dirty: &mut Dirty) {
        let Some((publisher, mid)) = self.tracks.get(track).cloned() else {
            return;
        };
        if let Some(peer) = self.peers.get_mut(&publisher)
            && peer.request_keyframe(mid, Instant::now())
        {
            dirty.mark(&publisher);
        }
    }

    pub(super) fn stream_paused(&mut self, id: &SessionId, mid: Mid, paused: bool) {
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

    pub(super) fn set_muted(
        &mut self,
        room: &str,
        track: &TrackSid,
        muted: bool,
    ) -> Option<TrackInfo> {
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

    pub(super) fn track_published(
        &mut self,
        room: &str,
        participant: &crate::sfu::ParticipantSid,
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
    pub(super) fn assign_viewer_slots(&mut self, room: &str, dirty: &mut Dirty) {
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
}

/// WHIP carries no track sources: a publisher's first audio is its
/// microphone and first video its camera; a second one is a screen share.
pub(super) fn source_for(kind: TrackKind, earlier_of_kind: usize) -> TrackSource {
    match (kind, earlier_of_kind) {
        (TrackKind::Audio, 0) => TrackSource::Microphone,
        (TrackKind::Audio, _) => TrackSource::ScreenShareAudio,
        (TrackKind::Video, 0) => TrackSource::Camera,
        (TrackKind::Video, _) => TrackSource::ScreenShare,
    }
}

//! The composer's picture of the room: who is there, what they publish, and
//! the layout module's view of it.

use std::collections::HashMap;
use std::time::Instant;

use super::JITTER_LATENCY;

use crate::layout::{ParticipantView, RoomView, VideoView};
use crate::sfu::{ParticipantInfo, ParticipantSid, TrackInfo, TrackKind, TrackSid, TrackSource};

#[derive(Debug, Clone)]
pub struct TrackState {
    pub info: TrackInfo,
    pub muted: bool,
    /// Decoded size once known.
    pub size: Option<(u32, u32)>,
    /// When the first frame was decoded; the tile shows a placeholder until
    /// that frame can have reached the compositor.
    pub first_frame: Option<Instant>,
}

/// Longer than the composer's tick, so one tick always sees a track showing.
const WARM_UP_MARGIN: std::time::Duration = std::time::Duration::from_millis(600);

impl TrackState {
    /// Whether decoded frames are reaching the compositor (they wait there
    /// for the jitter latency after decoding).
    pub fn is_showing(&self) -> bool {
        self.first_frame
            .is_some_and(|at| at.elapsed() >= JITTER_LATENCY)
    }

    /// Decoding started recently: the scene must be recomputed until (and
    /// just after) its frames are on screen.
    pub fn is_warming_up(&self) -> bool {
        self.first_frame
            .is_some_and(|at| at.elapsed() < JITTER_LATENCY + WARM_UP_MARGIN)
    }
}

#[derive(Debug, Default)]
pub struct RoomState {
    /// In join order.
    participants: Vec<ParticipantInfo>,
    pub tracks: HashMap<TrackSid, TrackState>,
    pub active_speakers: Vec<ParticipantSid>,
}

impl RoomState {
    pub fn join(&mut self, info: ParticipantInfo) {
        match self.participants.iter_mut().find(|p| p.sid == info.sid) {
            Some(existing) => *existing = info,
            None => self.participants.push(info),
        }
    }

    pub fn update(&mut self, info: ParticipantInfo) {
        self.join(info);
    }

    /// Removes the participant and returns their tracks' sids.
    pub fn leave(&mut self, sid: &ParticipantSid) -> Vec<TrackSid> {
        self.participants.retain(|p| &p.sid != sid);
        self.active_speakers.retain(|s| s != sid);
        let gone: Vec<TrackSid> = self
            .tracks
            .values()
            .filter(|t| &t.info.participant == sid)
            .map(|t| t.info.sid.clone())
            .collect();
        for track in &gone {
            self.tracks.remove(track);
        }
        gone
    }

    pub fn publish(&mut self, info: TrackInfo) {
        self.tracks.insert(
            info.sid.clone(),
            TrackState {
                muted: info.muted,
                info,
                size: None,
                first_frame: None,
            },
        );
    }

    pub fn identity_of(&self, sid: &ParticipantSid) -> Option<&str> {
        self.participants
            .iter()
            .find(|p| &p.sid == sid)
            .map(|p| p.identity.as_str())
    }

    pub fn is_agent(&self, sid: &ParticipantSid) -> bool {
        self.participants.iter().any(|p| &p.sid == sid && p.agent)
    }

    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// The layout module's view: participants that publish something, in join
    /// order, with their camera and screen share.
    pub fn view(&self) -> RoomView {
        let participants = self
            .participants
            .iter()
            .filter_map(|p| {
                let mine: Vec<&TrackState> = self
                    .tracks
                    .values()
                    .filter(|t| t.info.participant == p.sid)
                    .collect();
                if mine.is_empty() {
                    return None;
                }
                let video = |sources: &[TrackSource]| {
                    mine.iter()
                        .filter(|t| {
                            t.info.kind == TrackKind::Video && sources.contains(&t.info.source)
                        })
                        .min_by(|a, b| a.info.sid.cmp(&b.info.sid))
                        .map(|t| video_view(t))
                };
                Some(ParticipantView {
                    sid: p.sid.0.clone(),
                    identity: p.identity.clone(),
                    name: p.display_name().to_string(),
                    camera: video(&[TrackSource::Camera, TrackSource::Unknown]),
                    screen_share: video(&[TrackSource::ScreenShare]),
                })
            })
            .collect();
        RoomView {
            participants,
            active_speakers: self.active_speakers.iter().map(|s| s.0.clone()).collect(),
        }
    }
}

fn video_view(track: &TrackState) -> VideoView {
    let (width, height) = track.size.unwrap_or((0, 0));
    VideoView {
        track_sid: track.info.sid.0.clone(),
        width,
        height,
        // Until a frame is on screen the tile shows the camera-off placeholder.
        muted: track.muted || !track.is_showing(),
    }
}

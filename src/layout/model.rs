//! Inputs: the canvas and a snapshot of the room.

use serde::{Deserialize, Serialize};

use super::geometry::SIXTEEN_NINE;

/// Output frame size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
}

/// Canvas shape; it picks each Mux layout's variant (reference: "Canvas
/// shape decides the variant").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// width > height
    Wide,
    /// width = height
    Square,
    /// width < height
    Portrait,
}

impl Canvas {
    pub const fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }

    pub const fn shape(self) -> Shape {
        if self.width > self.height {
            Shape::Wide
        } else if self.width == self.height {
            Shape::Square
        } else {
            Shape::Portrait
        }
    }

    pub(crate) fn w(self) -> f64 {
        f64::from(self.width)
    }

    pub(crate) fn h(self) -> f64 {
        f64::from(self.height)
    }
}

/// One published video track.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VideoView {
    pub track_sid: String,
    /// Frame size; 0 while unknown (then 16:9 is assumed).
    pub width: u32,
    pub height: u32,
    pub muted: bool,
}

impl VideoView {
    /// Width / height, 16:9 while the size is unknown.
    pub fn aspect(&self) -> f64 {
        if self.width == 0 || self.height == 0 {
            SIXTEEN_NINE
        } else {
            f64::from(self.width) / f64::from(self.height)
        }
    }

    /// Whether the frame size is known and taller than wide.
    pub fn is_portrait(&self) -> bool {
        self.width > 0 && self.height > 0 && self.width < self.height
    }
}

/// One shown participant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParticipantView {
    pub sid: String,
    pub identity: String,
    /// Display name; only its first line is drawn.
    pub name: String,
    pub camera: Option<VideoView>,
    pub screen_share: Option<VideoView>,
}

impl ParticipantView {
    /// "With video" for the speaker fallback: an unmuted camera.
    pub fn has_live_camera(&self) -> bool {
        self.camera.as_ref().is_some_and(|c| !c.muted)
    }

    /// Aspect of the camera, 16:9 when it is off or its size is unknown.
    pub(crate) fn camera_aspect(&self) -> f64 {
        self.camera.as_ref().map_or(SIXTEEN_NINE, VideoView::aspect)
    }
}

/// Snapshot of a room as the layouts need it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomView {
    /// Shown participants in join order.
    pub participants: Vec<ParticipantView>,
    /// Sids of the participants speaking now, loudest first.
    pub active_speakers: Vec<String>,
}

impl RoomView {
    pub fn participant(&self, sid: &str) -> Option<&ParticipantView> {
        self.participants.iter().find(|p| p.sid == sid)
    }

    /// The screen share on stage: Mux shows one share at a time; this port
    /// takes the first sharer in join order (muted or not, as Mux keeps a
    /// subscribed share on stage while it is muted).
    pub fn screen_sharer(&self) -> Option<&ParticipantView> {
        self.participants.iter().find(|p| p.screen_share.is_some())
    }

    /// Rank of `sid` among the active speakers (0 = loudest).
    pub(crate) fn speaking_rank(&self, sid: &str) -> Option<usize> {
        self.active_speakers.iter().position(|s| s == sid)
    }
}

//! Outputs: the scene a renderer draws.

use serde::{Deserialize, Serialize};

use super::geometry::RectF;
use super::label::{LabelStyle, label_for_tile, label_text};
use super::model::{Canvas, ParticipantView, VideoView};

/// 8-bit RGBA colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rgba {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl Rgba {
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b, a: 255 }
    }

    pub const BLACK: Self = Self::rgb(0, 0, 0);
    pub const WHITE: Self = Self::rgb(255, 255, 255);
    /// Mux's stage background, `#323232`.
    pub const MUX_BACKGROUND: Self = Self::rgb(0x32, 0x32, 0x32);
}

/// Integer pixel rectangle; `x`/`y` may be negative or reach past the
/// canvas where the browser let a box overflow (the canvas clips it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    pub fn right(&self) -> i64 {
        i64::from(self.x) + i64::from(self.w)
    }

    pub fn bottom(&self) -> i64 {
        i64::from(self.y) + i64::from(self.h)
    }

    /// Whether the two rectangles share any pixel.
    pub fn overlaps(&self, other: &Rect) -> bool {
        i64::from(self.x) < other.right()
            && i64::from(other.x) < self.right()
            && i64::from(self.y) < other.bottom()
            && i64::from(other.y) < self.bottom()
    }
}

/// Which of the participant's tracks a region shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    Camera,
    ScreenShare,
}

/// How the video is scaled into its rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Fill the rectangle, cropping the overflow (CSS `object-fit: cover`).
    Cover,
    /// Fit inside, centred; uncovered parts show what is below.
    Contain,
}

/// A name label box, drawn over its region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Label {
    pub text: String,
    /// Mux's large variant (28 px text, 10 px inset, 5 px vertical padding).
    pub large: bool,
    /// The largest box the label may take, anchored bottom-left in its
    /// tile. The renderer draws one line of `text` (ellipsis when too long)
    /// and may shrink the width to the text plus 2 × 5 px padding, keeping
    /// `x`.
    pub rect: Rect,
    pub font_px: u32,
}

/// One video (or placeholder) on the canvas.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Region {
    pub participant_sid: String,
    /// `None` draws the camera-off placeholder (black tile, video-off icon).
    pub track_sid: Option<String>,
    pub content: Content,
    pub rect: Rect,
    /// Draw order, ascending; equals the index in [`Scene::regions`].
    pub z: u32,
    pub fit: Fit,
    /// Corner radius in pixels.
    pub rounded: u32,
    pub label: Option<Label>,
}

/// Everything drawn on one canvas, back to front.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scene {
    pub canvas: Canvas,
    pub background: Rgba,
    pub regions: Vec<Region>,
}

/// A region before rounding: what the layout modules produce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tile<'a> {
    pub participant: &'a ParticipantView,
    pub content: Content,
    pub rect: RectF,
    pub fit: Fit,
    pub rounded: u32,
    pub label: LabelStyle,
}

impl<'a> Tile<'a> {
    pub fn camera(
        participant: &'a ParticipantView,
        rect: RectF,
        fit: Fit,
        rounded: u32,
        label: LabelStyle,
    ) -> Self {
        Self {
            participant,
            content: Content::Camera,
            rect,
            fit,
            rounded,
            label,
        }
    }

    pub fn screen_share(
        participant: &'a ParticipantView,
        rect: RectF,
        fit: Fit,
        label: LabelStyle,
    ) -> Self {
        Self {
            participant,
            content: Content::ScreenShare,
            rect,
            fit,
            rounded: 0,
            label,
        }
    }

    fn video(&self) -> Option<&VideoView> {
        match self.content {
            Content::Camera => self.participant.camera.as_ref(),
            Content::ScreenShare => self.participant.screen_share.as_ref(),
        }
    }

    fn into_region(self, z: u32) -> Region {
        let rect = self.rect.to_pixels();
        let track_sid = self
            .video()
            .filter(|v| !v.muted)
            .map(|v| v.track_sid.clone());
        let label = label_text(&self.participant.name, self.content)
            .and_then(|text| label_for_tile(rect, text, self.label));
        Region {
            participant_sid: self.participant.sid.clone(),
            track_sid,
            content: self.content,
            rect,
            z,
            fit: self.fit,
            rounded: self.rounded,
            label,
        }
    }
}

impl Scene {
    /// Rounds the tiles and numbers them in draw order.
    pub(crate) fn from_tiles(canvas: Canvas, background: Rgba, tiles: Vec<Tile<'_>>) -> Self {
        let regions = (0u32..)
            .zip(tiles)
            .map(|(z, tile)| tile.into_region(z))
            .collect();
        Self {
            canvas,
            background,
            regions,
        }
    }
}

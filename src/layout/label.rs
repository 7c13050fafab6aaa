//! Name labels and the camera-off placeholder, as Mux draws them
//! (reference "name label").

use super::scene::{Content, Label, Rect, Rgba};

/// `rgba(50, 50, 50, 0.75)`.
pub const LABEL_BACKGROUND: Rgba = Rgba {
    r: 50,
    g: 50,
    b: 50,
    a: 191,
};
pub const LABEL_TEXT_COLOR: Rgba = Rgba::WHITE;
pub const LABEL_FONT_FAMILY: &str = "Noto Sans Bold";
pub const LABEL_RADIUS_PX: u32 = 5;
pub const LABEL_PADDING_X_PX: u32 = 5;
pub const LABEL_LINE_HEIGHT_PX: u32 = 40;
/// Camera-off tiles are black with a 45 px `#E8E8E8` video-off icon.
pub const PLACEHOLDER_BACKGROUND: Rgba = Rgba::BLACK;
pub const PLACEHOLDER_ICON_COLOR: Rgba = Rgba::rgb(0xE8, 0xE8, 0xE8);
pub const PLACEHOLDER_ICON_PX: u32 = 45;

/// Whether and how a tile is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelStyle {
    /// A bare video element (LiveKit's lone `VideoTrack`) has no label.
    Hidden,
    Normal,
    Large,
}

impl LabelStyle {
    /// Mux: large when there is no screen share AND at most 4 people are
    /// shown AND the canvas is wide.
    pub fn mux(wide: bool, sharing: bool, shown: usize) -> Self {
        if wide && !sharing && shown <= 4 {
            Self::Large
        } else {
            Self::Normal
        }
    }
}

/// The label text: the first line of the display name, or "Name's Screen"
/// ("Names' Screen" when the name ends in "s") on a share; `None` when the
/// first line is empty, as Mux then draws no label.
pub fn label_text(name: &str, content: Content) -> Option<String> {
    let first = name.split('\n').next().unwrap_or_default();
    if first.is_empty() {
        return None;
    }
    Some(match content {
        Content::Camera => first.to_owned(),
        Content::ScreenShare if first.ends_with('s') => format!("{first}' Screen"),
        Content::ScreenShare => format!("{first}'s Screen"),
    })
}

/// Box geometry: bottom-left, 5 px from the edges (10 when large); one
/// 40 px line plus 5 px vertical padding each side when large; at most the
/// tile's width − 10 px (− 20 when large).
pub(crate) fn label_for_tile(tile: Rect, text: String, style: LabelStyle) -> Option<Label> {
    let (inset, height, shrink, font_px, large) = match style {
        LabelStyle::Hidden => return None,
        LabelStyle::Normal => (5, LABEL_LINE_HEIGHT_PX, 10, 24, false),
        LabelStyle::Large => (10, LABEL_LINE_HEIGHT_PX + 10, 20, 28, true),
    };
    let x = i64::from(tile.x) + i64::from(inset);
    let y = tile.bottom() - i64::from(inset) - i64::from(height);
    Some(Label {
        text,
        large,
        rect: Rect {
            x: clamp_i32(x),
            y: clamp_i32(y),
            w: tile.w.saturating_sub(shrink),
            h: height,
        },
        font_px,
    })
}

fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_the_first_line_and_shares_are_possessive() {
        assert_eq!(
            label_text("Ada\nLovelace", Content::Camera).as_deref(),
            Some("Ada")
        );
        assert_eq!(
            label_text("Ada", Content::ScreenShare).as_deref(),
            Some("Ada's Screen")
        );
        assert_eq!(
            label_text("James\nx", Content::ScreenShare).as_deref(),
            Some("James' Screen")
        );
        // JavaScript's endsWith("s") is case-sensitive.
        assert_eq!(
            label_text("JAMES", Content::ScreenShare).as_deref(),
            Some("JAMES's Screen")
        );
        assert_eq!(label_text("", Content::Camera), None);
        assert_eq!(label_text("\nsecond", Content::ScreenShare), None);
    }

    #[test]
    fn normal_and_large_boxes() {
        let tile = Rect {
            x: 119,
            y: 60,
            w: 826,
            h: 465,
        };
        let normal = label_for_tile(tile, "Ada".into(), LabelStyle::Normal);
        assert_eq!(
            normal,
            Some(Label {
                text: "Ada".into(),
                large: false,
                rect: Rect {
                    x: 124,
                    y: 480,
                    w: 816,
                    h: 40
                },
                font_px: 24,
            })
        );
        let large = label_for_tile(tile, "Ada".into(), LabelStyle::Large);
        assert_eq!(
            large.map(|l| (l.rect, l.font_px, l.large)),
            Some((
                Rect {
                    x: 129,
                    y: 465,
                    w: 806,
                    h: 50
                },
                28,
                true
            ))
        );
        assert_eq!(label_for_tile(tile, "Ada".into(), LabelStyle::Hidden), None);
        // A tile narrower than the padding never underflows.
        let tiny = Rect {
            x: 0,
            y: 0,
            w: 4,
            h: 4,
        };
        assert_eq!(
            label_for_tile(tiny, "A".into(), LabelStyle::Large).map(|l| l.rect),
            Some(Rect {
                x: 10,
                y: -56,
                w: 0,
                h: 50
            })
        );
    }

    #[test]
    fn large_only_wide_without_share_up_to_four() {
        assert_eq!(LabelStyle::mux(true, false, 4), LabelStyle::Large);
        assert_eq!(LabelStyle::mux(true, false, 5), LabelStyle::Normal);
        assert_eq!(LabelStyle::mux(true, true, 1), LabelStyle::Normal);
        assert_eq!(LabelStyle::mux(false, false, 1), LabelStyle::Normal);
    }
}

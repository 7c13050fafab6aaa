//! Layout names as users and the LiveKit API spell them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::scene::Rgba;

/// LiveKit template theme: dark unless the name ends in `-light`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    Dark,
    Light,
}

/// A built-in layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LayoutName {
    /// Mux's default layout.
    #[default]
    Gallery,
    ActiveSpeaker,
    Crop,
    Grid(Theme),
    Speaker(Theme),
    SingleSpeaker(Theme),
}

/// Every accepted name; `grid`/`grid-dark` (and so on) are the same layout.
const NAMES: [&str; 12] = [
    "gallery",
    "active-speaker",
    "crop",
    "grid",
    "grid-light",
    "grid-dark",
    "speaker",
    "speaker-light",
    "speaker-dark",
    "single-speaker",
    "single-speaker-light",
    "single-speaker-dark",
];

/// A layout name that is not one of [`LayoutName::all`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown layout `{name}`; valid layouts: {valid}", valid = NAMES.join(", "))]
pub struct UnknownLayout {
    pub name: String,
}

impl UnknownLayout {
    pub fn valid_names(&self) -> &'static [&'static str] {
        LayoutName::all()
    }
}

impl LayoutName {
    /// Every accepted name, for validation and help texts.
    pub const fn all() -> &'static [&'static str] {
        &NAMES
    }

    /// Page background: Mux `#323232`; LiveKit black, white for `-light`.
    pub const fn background(self) -> Rgba {
        match self {
            Self::Gallery | Self::ActiveSpeaker | Self::Crop => Rgba::MUX_BACKGROUND,
            Self::Grid(theme) | Self::Speaker(theme) | Self::SingleSpeaker(theme) => match theme {
                Theme::Dark => Rgba::BLACK,
                Theme::Light => Rgba::WHITE,
            },
        }
    }
}

impl FromStr for LayoutName {
    type Err = UnknownLayout;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (base, theme, themed) = if let Some(base) = s.strip_suffix("-light") {
            (base, Theme::Light, true)
        } else if let Some(base) = s.strip_suffix("-dark") {
            (base, Theme::Dark, true)
        } else {
            (s, Theme::Dark, false)
        };
        match base {
            "gallery" if !themed => Ok(Self::Gallery),
            "active-speaker" if !themed => Ok(Self::ActiveSpeaker),
            "crop" if !themed => Ok(Self::Crop),
            "grid" => Ok(Self::Grid(theme)),
            "speaker" => Ok(Self::Speaker(theme)),
            "single-speaker" => Ok(Self::SingleSpeaker(theme)),
            _ => Err(UnknownLayout { name: s.to_owned() }),
        }
    }
}

impl fmt::Display for LayoutName {
    /// The canonical name: dark LiveKit layouts print without a suffix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (base, theme) = match self {
            Self::Gallery => ("gallery", Theme::Dark),
            Self::ActiveSpeaker => ("active-speaker", Theme::Dark),
            Self::Crop => ("crop", Theme::Dark),
            Self::Grid(t) => ("grid", *t),
            Self::Speaker(t) => ("speaker", *t),
            Self::SingleSpeaker(t) => ("single-speaker", *t),
        };
        match theme {
            Theme::Dark => f.write_str(base),
            Theme::Light => write!(f, "{base}-light"),
        }
    }
}

impl TryFrom<String> for LayoutName {
    type Error = UnknownLayout;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<LayoutName> for String {
    fn from(name: LayoutName) -> Self {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_prints_canonically() {
        let parsed: Vec<String> = LayoutName::all()
            .iter()
            .map(|n| n.parse::<LayoutName>().map(|l| l.to_string()))
            .collect::<Result<_, _>>()
            .expect("all names parse");
        assert_eq!(
            parsed,
            [
                "gallery",
                "active-speaker",
                "crop",
                "grid",
                "grid-light",
                "grid",
                "speaker",
                "speaker-light",
                "speaker",
                "single-speaker",
                "single-speaker-light",
                "single-speaker",
            ]
        );
        assert_eq!("grid-dark".parse(), Ok(LayoutName::Grid(Theme::Dark)));
        assert_eq!(
            "speaker-light".parse(),
            Ok(LayoutName::Speaker(Theme::Light))
        );
        assert_eq!(
            "single-speaker".parse(),
            Ok(LayoutName::SingleSpeaker(Theme::Dark))
        );
    }

    #[test]
    fn values_round_trip_through_strings() {
        let all = [
            LayoutName::Gallery,
            LayoutName::ActiveSpeaker,
            LayoutName::Crop,
            LayoutName::Grid(Theme::Dark),
            LayoutName::Grid(Theme::Light),
            LayoutName::Speaker(Theme::Dark),
            LayoutName::Speaker(Theme::Light),
            LayoutName::SingleSpeaker(Theme::Dark),
            LayoutName::SingleSpeaker(Theme::Light),
        ];
        for name in all {
            assert_eq!(name.to_string().parse(), Ok(name));
            assert_eq!(LayoutName::try_from(String::from(name)), Ok(name));
        }
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        for bad in [
            "",
            "Gallery",
            "gallery-light",
            "crop-dark",
            "grid-",
            "-light",
            "grid-light-dark",
        ] {
            let err = bad.parse::<LayoutName>().expect_err(bad);
            assert_eq!(err.name, bad);
            assert_eq!(err.valid_names().len(), 12);
        }
        let err = "mosaic".parse::<LayoutName>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown layout `mosaic`; valid layouts: gallery, active-speaker, crop, grid, grid-light, \
             grid-dark, speaker, speaker-light, speaker-dark, single-speaker, single-speaker-light, \
             single-speaker-dark"
        );
    }

    #[test]
    fn backgrounds() {
        assert_eq!(LayoutName::Crop.background(), Rgba::rgb(0x32, 0x32, 0x32));
        assert_eq!(LayoutName::Grid(Theme::Dark).background(), Rgba::BLACK);
        assert_eq!(
            LayoutName::SingleSpeaker(Theme::Light).background(),
            Rgba::WHITE
        );
        assert_eq!(LayoutName::default(), LayoutName::Gallery);
    }
}

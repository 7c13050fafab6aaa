//! `onair layout render`: a preview PNG of a layout with a synthetic room.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::preview::preview;
use crate::layout::{
    self, Canvas, Content, LayoutName, ParticipantView, Rgba, RoomView, SpeakerSelector, VideoView,
};

/// Most participants the synthetic room may hold.
pub const MAX_RENDER_PARTICIPANTS: usize = 25;
/// Largest canvas side accepted, in pixels.
pub const MAX_RENDER_SIDE_PX: u32 = 8192;

/// Arguments of `onair layout render`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRenderArgs {
    /// A layout name, e.g. `gallery` or `speaker-light`.
    pub layout: String,
    /// People in the room, 1 to 25.
    pub participants: usize,
    /// Whether the first participant also shares a 1920×1080 screen.
    pub screen_share: bool,
    /// The active speaker, 1-based; `None` lets the layout choose (the
    /// sharer, else the first participant).
    pub speaker: Option<usize>,
    /// Canvas size, `WIDTHxHEIGHT` such as `1920x1080`.
    pub size: String,
    /// Where the PNG goes.
    pub output: PathBuf,
}

/// Display names of the synthetic participants, in join order.
const NAMES: [&str; MAX_RENDER_PARTICIPANTS] = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Dennis Ritchie",
    "Margaret Hamilton",
    "Claude Shannon",
    "Barbara Liskov",
    "Edsger Dijkstra",
    "Frances Allen",
    "John von Neumann",
    "Hedy Lamarr",
    "Donald Knuth",
    "Radia Perlman",
    "Tim Berners-Lee",
    "Annie Easley",
    "Ken Thompson",
    "Mary Jackson",
    "Niklaus Wirth",
    "Sophie Wilson",
    "Tony Hoare",
    "Jean Bartik",
    "Vint Cerf",
    "Evelyn Boyd Granville",
    "Bjarne Stroustrup",
];

/// Fill of a screen share in the preview.
const SHARE_FILL: Rgba = Rgba::rgb(0x8C, 0x8C, 0x8C);

/// Renders the layout for the synthetic room described by `args` and
/// writes it as a PNG to `args.output`.
pub fn render_layout_png(args: &LayoutRenderArgs) -> anyhow::Result<()> {
    let png = render(args)?
        .encode_png()
        .context("encoding the preview as PNG")?;
    std::fs::write(&args.output, png)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(())
}

/// The preview image for `args` (everything but the file).
fn render(args: &LayoutRenderArgs) -> anyhow::Result<super::RgbaImage> {
    let layout: LayoutName = args.layout.parse()?;
    let canvas = parse_size(&args.size)?;
    let n = args.participants;
    if !(1..=MAX_RENDER_PARTICIPANTS).contains(&n) {
        bail!("--participants must be between 1 and {MAX_RENDER_PARTICIPANTS}, got {n}");
    }
    if let Some(s) = args.speaker
        && !(1..=n).contains(&s)
    {
        bail!("--speaker {s} is out of range: choose 1 to {n} (the room has {n} participants)");
    }
    let mut room = synthetic_room(n, args.screen_share);
    if let Some(s) = args.speaker {
        room.active_speakers = vec![room.participants[s - 1].sid.clone()];
    }
    let speaker = SpeakerSelector::new().update(&room);
    let scene = layout::compose(layout, canvas, &room, speaker.as_deref());
    Ok(preview(&scene, |region| match region.content {
        Content::ScreenShare => SHARE_FILL,
        Content::Camera => room
            .participants
            .iter()
            .position(|p| p.sid == region.participant_sid)
            .map_or(SHARE_FILL, participant_fill),
    }))
}

/// `1920x1080` (also `1920X1080`, `1920×1080`).
fn parse_size(size: &str) -> anyhow::Result<Canvas> {
    let parsed = size
        .split_once(['x', 'X', '×'])
        .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((w, h))
            if (1..=MAX_RENDER_SIDE_PX).contains(&w) && (1..=MAX_RENDER_SIDE_PX).contains(&h) =>
        {
            Ok(Canvas::new(w, h))
        }
        Some(_) => bail!(
            "invalid --size `{size}`: width and height must be 1 to {MAX_RENDER_SIDE_PX} pixels"
        ),
        None => bail!("invalid --size `{size}`: expected WIDTHxHEIGHT, such as 1920x1080"),
    }
}

/// `n` people with 1280×720 cameras; with `screen_share`, the first one
/// also shares a 1920×1080 screen.
fn synthetic_room(n: usize, screen_share: bool) -> RoomView {
    let video = |track_sid: String, width, height| VideoView {
        track_sid,
        width,
        height,
        muted: false,
    };
    let participants = NAMES
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, name)| ParticipantView {
            sid: format!("PA_{}", i + 1),
            identity: name.to_lowercase().replace(' ', "-"),
            name: (*name).to_owned(),
            camera: Some(video(format!("TR_camera_{}", i + 1), 1280, 720)),
            screen_share: (screen_share && i == 0)
                .then(|| video(format!("TR_screen_{}", i + 1), 1920, 1080)),
        })
        .collect();
    RoomView {
        participants,
        active_speakers: Vec::new(),
    }
}

/// A distinct, mid-light colour per participant: hues a golden angle
/// apart, so neighbours differ and 25 people stay distinguishable.
fn participant_fill(index: usize) -> Rgba {
    let hue = (210.0 + index as f64 * 137.507_764) % 360.0;
    hsl(hue, 0.55, 0.52)
}

fn hsl(hue: f64, saturation: f64, lightness: f64) -> Rgba {
    let c = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let h = hue / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = lightness - c / 2.0;
    let to8 = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgba::rgb(to8(r), to8(g), to8(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        layout: &str,
        participants: usize,
        speaker: Option<usize>,
        size: &str,
    ) -> LayoutRenderArgs {
        LayoutRenderArgs {
            layout: layout.into(),
            participants,
            screen_share: false,
            speaker,
            size: size.into(),
            output: PathBuf::from("unused.png"),
        }
    }

    fn error(a: &LayoutRenderArgs) -> String {
        render(a).expect_err("invalid arguments").to_string()
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        assert!(error(&args("mosaic", 3, None, "1920x1080")).contains("unknown layout `mosaic`"));
        assert!(error(&args("gallery", 3, None, "big")).contains("expected WIDTHxHEIGHT"));
        assert!(error(&args("gallery", 3, None, "0x1080")).contains("1 to 8192"));
        assert!(error(&args("gallery", 3, None, "9000x10")).contains("1 to 8192"));
        assert!(error(&args("gallery", 0, None, "1920x1080")).contains("between 1 and 25, got 0"));
        assert!(error(&args("gallery", 26, None, "1920x1080")).contains("got 26"));
        assert!(error(&args("gallery", 3, Some(4), "1920x1080")).contains("--speaker 4"));
        assert!(error(&args("gallery", 3, Some(0), "1920x1080")).contains("--speaker 0"));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1920x1080").ok(), Some(Canvas::new(1920, 1080)));
        assert_eq!(parse_size("1080X1920").ok(), Some(Canvas::new(1080, 1920)));
        assert_eq!(parse_size("720×720").ok(), Some(Canvas::new(720, 720)));
        assert!(parse_size("1920x").is_err());
        assert!(parse_size("-1x5").is_err());
    }

    #[test]
    fn the_speaker_is_the_big_one_in_active_speaker() {
        let image = render(&args("active-speaker", 3, Some(2), "1280x720")).expect("renders");
        assert_eq!((image.width, image.height), (1280, 720));
        // The speaker fills the 16:9 canvas.
        let [r, g, b, _] = image.pixel(640, 200);
        let want = participant_fill(1);
        assert_eq!((r, g, b), (want.r, want.g, want.b));
    }

    #[test]
    fn colours_are_distinct_and_not_the_share_grey() {
        let fills: Vec<Rgba> = (0..MAX_RENDER_PARTICIPANTS).map(participant_fill).collect();
        for (i, a) in fills.iter().enumerate() {
            assert_ne!(*a, SHARE_FILL);
            for b in &fills[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn writes_a_png() {
        let dir = std::env::temp_dir().join(format!("onair-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut a = args("crop", 3, None, "640x360");
        a.screen_share = true;
        a.output = dir.join("crop.png");
        render_layout_png(&a).expect("writes");
        let png = std::fs::read(&a.output).expect("written");
        assert_eq!(&png[1..4], b"PNG");
        a.output = dir.join("missing-dir").join("x.png");
        assert!(
            render_layout_png(&a)
                .unwrap_err()
                .to_string()
                .contains("writing")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

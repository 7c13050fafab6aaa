//! HLS media playlists (RFC 8216): the live one grows as segments close
//! (`EVENT`, so players can seek back to the start); the final one is `VOD`
//! and ends with `EXT-X-ENDLIST`.

use std::time::Duration;

/// One closed segment: its file name and exact duration.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub name: String,
    pub duration: Duration,
}

pub fn render(segments: &[Segment], target_secs: u32, ended: bool) -> String {
    // The target duration must be at least every segment's duration rounded
    // to the nearest second (RFC 8216 §4.3.3.1).
    let longest = segments
        .iter()
        .map(|s| s.duration.as_secs_f64().round() as u32)
        .max()
        .unwrap_or(0);
    let target = target_secs.max(longest);
    let kind = if ended { "VOD" } else { "EVENT" };
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{kind}\n"
    );
    for segment in segments {
        out.push_str(&format!(
            "#EXTINF:{:.3},\n{}\n",
            segment.duration.as_secs_f64(),
            segment.name
        ));
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// Segments a live (sliding-window) playlist lists: a player joining it
/// starts near the live edge.
pub const LIVE_WINDOW: usize = 5;

/// A live playlist of the last [`LIVE_WINDOW`] segments (no playlist type,
/// the media sequence counting the segments that slid out); `ENDLIST` once
/// the output ended.
pub fn render_live(segments: &[Segment], target_secs: u32, ended: bool) -> String {
    let first = segments.len().saturating_sub(LIVE_WINDOW);
    let full = render(&segments[first..], target_secs, ended);
    full.replace(
        "#EXT-X-MEDIA-SEQUENCE:0\n",
        &format!("#EXT-X-MEDIA-SEQUENCE:{first}\n"),
    )
    .replace("#EXT-X-PLAYLIST-TYPE:EVENT\n", "")
    .replace("#EXT-X-PLAYLIST-TYPE:VOD\n", "")
}

/// Reads back a playlist this module wrote (resuming uploads after a restart).
pub fn parse(text: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut duration = None;
    for line in text.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("#EXTINF:") {
            duration = value
                .trim_end_matches(',')
                .split(',')
                .next()
                .and_then(|d| d.parse::<f64>().ok())
                .filter(|d| d.is_finite() && *d >= 0.0)
                .map(Duration::from_secs_f64);
        } else if !line.is_empty()
            && !line.starts_with('#')
            && let Some(duration) = duration.take()
        {
            segments.push(Segment {
                name: line.to_string(),
                duration,
            });
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(name: &str, ms: u64) -> Segment {
        Segment {
            name: name.into(),
            duration: Duration::from_millis(ms),
        }
    }

    #[test]
    fn the_live_playlist_slides_over_the_last_segments() {
        let segments: Vec<Segment> = (0..8)
            .map(|n| segment(&format!("segment{n:05}.ts"), 2000))
            .collect();
        let live = render_live(&segments, 2, false);
        assert!(live.contains("#EXT-X-MEDIA-SEQUENCE:3\n"), "{live}");
        assert!(!live.contains("PLAYLIST-TYPE"), "{live}");
        assert!(!live.contains("segment00002.ts") && live.contains("segment00003.ts"));
        assert_eq!(live.matches("#EXTINF").count(), LIVE_WINDOW);
        assert!(render_live(&segments, 2, true).ends_with("#EXT-X-ENDLIST\n"));
        let few = render_live(&segments[..2], 2, false);
        assert!(few.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{few}");
    }

    #[test]
    fn live_then_vod() {
        let segments = [
            segment("segment00000.ts", 4000),
            segment("segment00001.ts", 3520),
        ];
        let live = render(&segments, 4, false);
        assert_eq!(
            live,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:4.000,\nsegment00000.ts\n#EXTINF:3.520,\nsegment00001.ts\n"
        );
        let vod = render(&segments, 4, true);
        assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(vod.ends_with("segment00001.ts\n#EXT-X-ENDLIST\n"));
        assert_eq!(parse(&vod), segments);
    }

    #[test]
    fn target_covers_a_long_segment() {
        let text = render(&[segment("a.ts", 5600)], 4, false);
        assert!(text.contains("#EXT-X-TARGETDURATION:6\n"));
        // 4.4 s rounds to 4: still within a 4 s target.
        let text = render(&[segment("a.ts", 4400)], 4, false);
        assert!(text.contains("#EXT-X-TARGETDURATION:4\n"));
    }

    #[test]
    fn parse_skips_garbage() {
        assert!(parse("#EXTM3U\n#EXTINF:abc,\nx.ts\nno-duration.ts\n").is_empty());
    }
}

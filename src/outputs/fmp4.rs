//! Reading a fragmented MP4 byte stream (ISO/IEC 14496-12) as it is written:
//! cutting it into top-level boxes, finding the codecs of its init segment
//! (for a Media Source Extensions `codecs=` type) and whether a fragment
//! starts on a video keyframe (where a late viewer can begin).

/// Cuts a byte stream into whole top-level boxes, however it was chunked.
#[derive(Debug, Default)]
pub struct BoxSplitter {
    pending: Vec<u8>,
}

impl BoxSplitter {
    /// Appends `bytes` and returns every box completed by them, in order,
    /// each as its type and its whole bytes (header included).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
        self.pending.extend_from_slice(bytes);
        let mut boxes = Vec::new();
        let mut start = 0;
        while let Some(Header { kind, size, .. }) = header(&self.pending[start..]) {
            if self.pending.len() - start < size {
                break;
            }
            boxes.push((kind, self.pending[start..start + size].to_vec()));
            start += size;
        }
        self.pending.drain(..start);
        boxes
    }
}

/// A box header: its type, its total size and its own length.
struct Header {
    kind: [u8; 4],
    size: usize,
    len: usize,
}

/// A box's header; `None` until the header is complete. A size of 0 ("to
/// the end of the file") cannot be cut from a stream and is never written
/// by muxers for streams.
fn header(data: &[u8]) -> Option<Header> {
    let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
    let (size, len) = match u32_at(data, 0)? {
        1 => (u64::from_be_bytes(data.get(8..16)?.try_into().ok()?), 16),
        size => (u64::from(size), 8),
    };
    // A size smaller than its own header is corrupt: take the header alone
    // so the stream moves on instead of stalling.
    Some(Header {
        kind,
        size: (size as usize).max(len),
        len,
    })
}

/// The child boxes of a box's payload: `(type, payload)`.
fn children(parent: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = parent;
    std::iter::from_fn(move || {
        let Header { kind, size, len } = header(rest)?;
        let whole = rest.get(..size)?;
        rest = &rest[size..];
        Some((kind, &whole[len..]))
    })
}

fn child<'a>(payload: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(payload).find(|(k, _)| k == kind).map(|(_, p)| p)
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// The payload of a whole box (its bytes as [`BoxSplitter`] returns them).
fn payload(whole: &[u8]) -> &[u8] {
    header(whole).map_or(&[], |h| whole.get(h.len..).unwrap_or_default())
}

/// What a player needs to know about an init segment's tracks.
#[derive(Debug, Clone, PartialEq)]
pub struct InitInfo {
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: Vec<String>,
    /// The track ID of the video track, if there is one.
    pub video_track: Option<u32>,
}

impl InitInfo {
    /// Reads the `moov` box (its whole bytes).
    pub fn parse(moov: &[u8]) -> InitInfo {
        let mut info = InitInfo {
            codecs: Vec::new(),
            video_track: None,
        };
        for (_, trak) in children(payload(moov)).filter(|(k, _)| k == b"trak") {
            let Some(track_id) = child(trak, b"tkhd").and_then(track_id) else {
                continue;
            };
            let Some(mdia) = child(trak, b"mdia") else {
                continue;
            };
            let handler = child(mdia, b"hdlr").and_then(|h| h.get(8..12));
            let entry = child(mdia, b"minf")
                .and_then(|m| child(m, b"stbl"))
                .and_then(|s| child(s, b"stsd"))
                .and_then(|s| s.get(8..))
                .and_then(|entries| children(entries).next());
            let Some((format, entry)) = entry else {
                continue;
            };
            if handler == Some(b"vide") {
                info.video_track = Some(track_id);
            }
            if let Some(codec) = codec(&format, entry) {
                info.codecs.push(codec);
            }
        }
        info
    }
}

/// `tkhd` (a full box): the track ID follows two times of 4 or 8 bytes.
fn track_id(tkhd: &[u8]) -> Option<u32> {
    match tkhd.first()? {
        0 => u32_at(tkhd, 12),
        _ => u32_at(tkhd, 20),
    }
}

/// A sample entry's RFC 6381 codec. H.264: `avc1.` and the profile,
/// constraint flags and level of its `avcC`. AAC is always AAC-LC here (the
/// program's encoder makes nothing else), `mp4a.40.2`.
fn codec(format: &[u8; 4], entry: &[u8]) -> Option<String> {
    match format {
        b"avc1" | b"avc3" => {
            // A visual sample entry's fixed fields are 78 bytes.
            let avcc = child(entry.get(78..)?, b"avcC")?;
            let [_, profile, constraints, level] = avcc.get(0..4)?.try_into().ok()?;
            Some(format!(
                "{}.{profile:02x}{constraints:02x}{level:02x}",
                std::str::from_utf8(format).ok()?
            ))
        }
        b"mp4a" => Some("mp4a.40.2".to_string()),
        _ => None,
    }
}

const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x02;
const TFHD_DEFAULT_DURATION: u32 = 0x08;
const TFHD_DEFAULT_SIZE: u32 = 0x10;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
const TRUN_DATA_OFFSET: u32 = 0x01;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x04;
const TRUN_SAMPLE_DURATION: u32 = 0x100;
const TRUN_SAMPLE_SIZE: u32 = 0x200;
const TRUN_SAMPLE_FLAGS: u32 = 0x400;
/// `sample_is_non_sync_sample` in sample flags.
const NON_SYNC_SAMPLE: u32 = 0x0001_0000;

/// Whether the fragment whose `moof` this is (its whole bytes) carries
/// `track`'s samples starting with a sync sample (a keyframe). `false` when
/// the fragment does not say.
pub fn starts_with_keyframe(moof: &[u8], track: u32) -> bool {
    children(payload(moof))
        .filter(|(k, _)| k == b"traf")
        .find_map(|(_, traf)| first_sample_flags(traf, track))
        .is_some_and(|flags| flags & NON_SYNC_SAMPLE == 0)
}

/// The first sample's flags of a `traf` of `track`: `trun`'s
/// first-sample flags, else its first sample's own, else `tfhd`'s default.
fn first_sample_flags(traf: &[u8], track: u32) -> Option<u32> {
    let tfhd = child(traf, b"tfhd")?;
    let tfhd_flags = u32_at(tfhd, 0)? & 0x00ff_ffff;
    if u32_at(tfhd, 4)? != track {
        return None;
    }
    let trun = child(traf, b"trun")?;
    let trun_flags = u32_at(trun, 0)? & 0x00ff_ffff;
    if u32_at(trun, 4)? == 0 {
        return None;
    }
    let mut at = 8;
    if trun_flags & TRUN_DATA_OFFSET != 0 {
        at += 4;
    }
    if trun_flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
        return u32_at(trun, at);
    }
    if trun_flags & TRUN_SAMPLE_FLAGS != 0 {
        let skip = [TRUN_SAMPLE_DURATION, TRUN_SAMPLE_SIZE]
            .iter()
            .filter(|f| trun_flags & **f != 0)
            .count();
        return u32_at(trun, at + 4 * skip);
    }
    if tfhd_flags & TFHD_DEFAULT_FLAGS != 0 {
        let mut at = 8;
        if tfhd_flags & TFHD_BASE_DATA_OFFSET != 0 {
            at += 8;
        }
        at += 4 * [
            TFHD_SAMPLE_DESCRIPTION_INDEX,
            TFHD_DEFAULT_DURATION,
            TFHD_DEFAULT_SIZE,
        ]
        .iter()
        .filter(|f| tfhd_flags & **f != 0)
        .count();
        return u32_at(tfhd, at);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    fn full(version: u8, flags: u32, rest: &[u8]) -> Vec<u8> {
        let mut out = (flags & 0x00ff_ffff | (version as u32) << 24)
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(rest);
        out
    }

    fn be(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    fn trak(id: u32, handler: &[u8; 4], entry: Vec<u8>) -> Vec<u8> {
        let tkhd = boxed(b"tkhd", &full(0, 7, &be(&[0, 0, id, 0])));
        let hdlr = boxed(b"hdlr", &full(0, 0, &[&be(&[0])[..], handler].concat()));
        let stsd = boxed(b"stsd", &full(0, 0, &[be(&[1]), entry].concat()));
        let stbl = boxed(b"stbl", &stsd);
        let minf = boxed(b"minf", &stbl);
        let mdia = boxed(b"mdia", &[hdlr, minf].concat());
        boxed(b"trak", &[tkhd, mdia].concat())
    }

    fn moov() -> Vec<u8> {
        let avcc = boxed(b"avcC", &[1, 0x64, 0x00, 0x1f, 0xff]);
        let avc1 = boxed(b"avc1", &[vec![0; 78], avcc].concat());
        let mp4a = boxed(b"mp4a", &[0; 28]);
        let mvhd = boxed(b"mvhd", &full(0, 0, &[0; 96]));
        boxed(
            b"moov",
            &[mvhd, trak(1, b"vide", avc1), trak(2, b"soun", mp4a)].concat(),
        )
    }

    fn moof(track: u32, trun_flags: u32, samples: &[u32]) -> Vec<u8> {
        let tfhd = boxed(b"tfhd", &full(0, 0, &be(&[track])));
        let trun = boxed(b"trun", &full(0, trun_flags, &be(samples)));
        let traf = boxed(b"traf", &[tfhd, trun].concat());
        boxed(
            b"moof",
            &[boxed(b"mfhd", &full(0, 0, &be(&[1]))), traf].concat(),
        )
    }

    #[test]
    fn the_init_segment_names_its_codecs_and_video_track() {
        let info = InitInfo::parse(&moov());
        assert_eq!(info.codecs, ["avc1.64001f", "mp4a.40.2"]);
        assert_eq!(info.video_track, Some(1));
    }

    #[test]
    fn an_audio_only_init_segment_has_no_video_track() {
        let mp4a = boxed(b"mp4a", &[0; 28]);
        let info = InitInfo::parse(&boxed(b"moov", &trak(1, b"soun", mp4a)));
        assert_eq!(info.codecs, ["mp4a.40.2"]);
        assert_eq!(info.video_track, None);
    }

    #[test]
    fn keyframes_are_read_from_the_first_samples_flags() {
        // data offset, duration, size and flags per sample (as mp4mux writes).
        let flags = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE | TRUN_SAMPLE_FLAGS;
        let key = moof(1, flags, &[2, 100, 3000, 500, 0x0200_0000]);
        let delta = moof(1, flags, &[2, 100, 3000, 500, 0x0101_0000]);
        assert!(starts_with_keyframe(&key, 1));
        assert!(!starts_with_keyframe(&delta, 1));
        // Another track's fragment says nothing about the video track.
        assert!(!starts_with_keyframe(&key, 2));
        // First-sample flags take precedence over the per-sample ones.
        let first = moof(
            1,
            TRUN_FIRST_SAMPLE_FLAGS | TRUN_SAMPLE_FLAGS,
            &[2, 0x0200_0000, 0x0101_0000, 0x0101_0000],
        );
        assert!(starts_with_keyframe(&first, 1));
        // A fragment that says nothing is not a place to start.
        assert!(!starts_with_keyframe(&moof(1, 0, &[1]), 1));
    }

    #[test]
    fn boxes_are_cut_whole_however_the_stream_is_chunked() {
        let stream = [
            boxed(b"ftyp", b"isom"),
            moov(),
            moof(1, 0, &[1]),
            boxed(b"mdat", &[7; 1000]),
        ]
        .concat();
        for chunk in [1, 3, 7, 64, 5000] {
            let mut splitter = BoxSplitter::default();
            let boxes: Vec<_> = stream
                .chunks(chunk)
                .flat_map(|c| splitter.push(c))
                .collect();
            let kinds: Vec<&[u8; 4]> = boxes.iter().map(|(k, _)| k).collect();
            assert_eq!(
                kinds,
                [b"ftyp", b"moov", b"moof", b"mdat"],
                "chunks of {chunk}"
            );
            let joined: Vec<u8> = boxes.iter().flat_map(|(_, b)| b.clone()).collect();
            assert_eq!(joined, stream, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_large_size_header_is_read() {
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend_from_slice(b"mdat");
        large.extend_from_slice(&20u64.to_be_bytes());
        large.extend_from_slice(&[9; 4]);
        let mut splitter = BoxSplitter::default();
        let boxes = splitter.push(&large);
        assert_eq!(boxes.len(), 1);
        assert_eq!(payload(&boxes[0].1), [9; 4]);
    }
}

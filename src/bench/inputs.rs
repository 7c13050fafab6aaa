//! The bench's participants: encoded once to files (VP8 + Opus in Matroska),
//! packetized once to RTP files, then read and fed to the composer at their
//! real pace. The worker reads its packets as it sends them, as an SFU
//! receives them: twenty seconds of nine participants' media held in memory
//! (about 20 MB) would be counted as the composer's.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::mpsc;

use super::ComposeBench;
use crate::layout::{ParticipantView, RoomView, VideoView};
use crate::sfu::{
    Codec, ParticipantInfo, ParticipantSid, RoomEvent, RtpPacket, TrackInfo, TrackSid, TrackSource,
};

/// Each participant sends 640×360, a typical middle simulcast layer.
pub const INPUT_WIDTH: u32 = 640;
pub const INPUT_HEIGHT: u32 = 360;
const VIDEO_PT: u8 = 96;
const AUDIO_PT: u8 = 111;

pub fn paths(bench: &ComposeBench) -> Vec<PathBuf> {
    (0..bench.inputs)
        .map(|i| {
            bench
                .work_dir
                .join(format!("input{i}-{}s-{}fps.mkv", bench.seconds, bench.fps))
        })
        .collect()
}

/// The RTP packets of an input file, in the order they are sent.
fn rtp_path(input: &Path) -> PathBuf {
    input.with_extension("rtp")
}

/// Encodes and packetizes every input file that is not there yet.
pub fn encode_all(bench: &ComposeBench) -> anyhow::Result<Vec<PathBuf>> {
    let paths = paths(bench);
    for (i, path) in paths.iter().enumerate() {
        if !path.exists() {
            encode(i, path, bench).with_context(|| format!("encoding input {i}"))?;
        }
        let rtp = rtp_path(path);
        if !rtp.exists() {
            packetize(i, path, &rtp).with_context(|| format!("packetizing input {i}"))?;
        }
    }
    Ok(paths)
}

fn encode(index: usize, path: &Path, bench: &ComposeBench) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    let colour = 0xff00_0000u32
        | (0x40 + 0x30 * index as u32 % 0xc0) << 16
        | (0x90 + 0x50 * index as u32 % 0x70) << 8
        | 0x60;
    let description = format!(
        "videotestsrc pattern=ball background-color={colour} num-buffers={frames} \
         ! video/x-raw,width={INPUT_WIDTH},height={INPUT_HEIGHT},framerate={fps}/1 \
         ! vp8enc deadline=1 target-bitrate=800000 keyframe-max-dist={key} ! queue ! matroskamux name=mux ! filesink location={out} \
         audiotestsrc wave=sine freq={freq} samplesperbuffer=960 num-buffers={audio_buffers} \
         ! audio/x-raw,rate=48000,channels=2 ! opusenc ! queue ! mux.",
        frames = bench.fps * bench.seconds,
        fps = bench.fps,
        key = bench.fps * 2,
        out = partial.display(),
        freq = 300 + 70 * index,
        audio_buffers = bench.seconds * 50,
    );
    run_to_end(
        &gst::parse::launch(&description)?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow::anyhow!("not a pipeline"))?,
    )?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

fn run_to_end(pipeline: &gst::Pipeline) -> anyhow::Result<()> {
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().context("pipeline bus")?;
    let result = match bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    ) {
        Some(message) => match message.view() {
            gst::MessageView::Error(error) => Err(anyhow::anyhow!("{}", error.error())),
            _ => Ok(()),
        },
        None => Err(anyhow::anyhow!("pipeline bus closed")),
    };
    pipeline.set_state(gst::State::Null)?;
    result
}

/// Whose packet a record of an RTP file is.
const VIDEO: u8 = 0;
const AUDIO: u8 = 1;

/// One packet of an RTP file: time from the start, [`VIDEO`] or [`AUDIO`], the packet.
type Record = (Duration, u8, Vec<u8>);

/// One participant's announcement and its RTP file.
pub struct EncodedInput {
    participant: ParticipantInfo,
    video: TrackInfo,
    audio: TrackInfo,
    packets: PathBuf,
}

impl EncodedInput {
    /// Input `index` of the bench, whose packets [`encode_all`] left next to `path`.
    pub fn open(index: usize, path: &Path) -> anyhow::Result<EncodedInput> {
        let packets = rtp_path(path);
        anyhow::ensure!(
            packets.is_file(),
            "{} is missing (`onair bench compose` makes it)",
            packets.display()
        );
        let participant = participant(index);
        let track = |tag: &str, source, codec, pt| {
            let sid = TrackSid(format!("TR_bench{tag}{index}"));
            TrackInfo::new(sid, participant.sid.clone(), source, codec, pt)
        };
        let video = track("v", TrackSource::Camera, Codec::Vp8, VIDEO_PT);
        let audio = track("a", TrackSource::Microphone, Codec::Opus, AUDIO_PT);
        Ok(EncodedInput {
            participant,
            video,
            audio,
            packets,
        })
    }

    pub fn announce(&self) -> Vec<RoomEvent> {
        vec![
            RoomEvent::ParticipantJoined(self.participant.clone()),
            RoomEvent::TrackPublished(self.video.clone()),
            RoomEvent::TrackPublished(self.audio.clone()),
        ]
    }
}

fn participant(index: usize) -> ParticipantInfo {
    ParticipantInfo {
        sid: ParticipantSid(format!("PA_bench{index}")),
        identity: format!("bench-{index}"),
        name: format!("Participant {}", index + 1),
        metadata: String::new(),
        agent: false,
    }
}

/// The room the bench composes, as the layout sees it once every input decodes.
pub fn synthetic_room(inputs: usize) -> RoomView {
    RoomView {
        participants: (0..inputs)
            .map(|i| {
                let p = participant(i);
                ParticipantView {
                    sid: p.sid.0,
                    identity: p.identity,
                    name: p.name,
                    camera: Some(VideoView {
                        track_sid: format!("TR_benchv{i}"),
                        width: INPUT_WIDTH,
                        height: INPUT_HEIGHT,
                        muted: false,
                    }),
                    screen_share: None,
                }
            })
            .collect(),
        active_speakers: Vec::new(),
    }
}

/// A record of an RTP file: time from the start (ns, u64 LE), [`VIDEO`] or
/// [`AUDIO`] (u8), length (u32 LE), the packet.
fn write_record(out: &mut impl Write, at: Duration, kind: u8, data: &[u8]) -> std::io::Result<()> {
    out.write_all(&(at.as_nanos() as u64).to_le_bytes())?;
    out.write_all(&[kind])?;
    out.write_all(&(data.len() as u32).to_le_bytes())?;
    out.write_all(data)
}

/// The next record, or None at the end of the file.
fn read_record(input: &mut impl Read) -> anyhow::Result<Option<Record>> {
    let mut head = [0u8; 13];
    match input.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let at = Duration::from_nanos(u64::from_le_bytes(head[..8].try_into()?));
    let len = u32::from_le_bytes(head[9..].try_into()?) as usize;
    let mut data = vec![0; len];
    input.read_exact(&mut data)?;
    Ok(Some((at, head[8], data)))
}

/// Reads an input file and payloads it to RTP into `out`, in sending order
/// (as fast as possible; done once, outside the measured worker).
fn packetize(index: usize, path: &Path, out: &Path) -> anyhow::Result<()> {
    let description = format!(
        "filesrc location={} ! matroskademux name=d \
         d.video_0 ! queue ! rtpvp8pay pt={VIDEO_PT} mtu=1200 ssrc={} ! appsink name=video sync=false \
         d.audio_0 ! queue ! rtpopuspay pt={AUDIO_PT} ssrc={} ! appsink name=audio sync=false",
        path.display(),
        10_000 + index,
        20_000 + index
    );
    let pipeline = gst::parse::launch(&description)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let packets: Arc<Mutex<Vec<Record>>> = Arc::default();
    for (name, kind) in [("video", VIDEO), ("audio", AUDIO)] {
        let packets = packets.clone();
        crate::composer::read_appsink(&pipeline, name, move |at, data| {
            packets
                .lock()
                .expect("packets")
                .push((at, kind, data.to_vec()));
        })?;
    }
    run_to_end(&pipeline)?;
    let mut packets = std::mem::take(&mut *packets.lock().expect("packets"));
    packets.sort_by_key(|(at, _, _)| *at);
    let partial = out.with_extension("partial");
    let mut file = BufWriter::new(File::create(&partial)?);
    for (at, kind, data) in &packets {
        write_record(&mut file, *at, *kind, data)?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&partial, out)?;
    Ok(())
}

/// An input's packets as they are read, one ahead.
struct Reader {
    video: TrackSid,
    audio: TrackSid,
    file: BufReader<File>,
    next: Option<Record>,
}

impl Reader {
    fn open(input: EncodedInput) -> anyhow::Result<Reader> {
        let mut file = BufReader::new(File::open(&input.packets)?);
        let next = read_record(&mut file)?;
        Ok(Reader {
            video: input.video.sid,
            audio: input.audio.sid,
            file,
            next,
        })
    }
}

/// Sends every input's packets at the time they belong to, for `duration`,
/// reading them from their files as it goes.
pub fn feed_in_real_time(
    inputs: Vec<EncodedInput>,
    room: mpsc::Sender<RoomEvent>,
    duration: Duration,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::task::spawn_blocking(move || {
        let mut readers: Vec<Reader> = inputs
            .into_iter()
            .map(Reader::open)
            .collect::<anyhow::Result<_>>()?;
        let start = Instant::now();
        // Always the input whose next packet is due first.
        while let Some(reader) = readers
            .iter_mut()
            .filter(|r| r.next.is_some())
            .min_by_key(|r| r.next.as_ref().map(|(at, _, _)| *at))
        {
            let Some((at, kind, data)) = reader.next.take() else {
                break;
            };
            reader.next = read_record(&mut reader.file)?;
            if at > duration {
                break;
            }
            let track = if kind == VIDEO {
                reader.video.clone()
            } else {
                reader.audio.clone()
            };
            if let Some(wait) = (start + at).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if let Some(packet) = RtpPacket::parse(&data, Instant::now()) {
                room.blocking_send(RoomEvent::Rtp { track, packet })
                    .map_err(|_| anyhow::anyhow!("the composer stopped early"))?;
            }
        }
        if let Some(rest) = (start + duration).checked_duration_since(Instant::now()) {
            std::thread::sleep(rest);
        }
        Ok(())
    })
}

//! `onair bench compose`: CPU and memory of a composition, side by side with a
//! bare `gst-launch-1.0` pipeline doing the same decode + composite + encode,
//! in the same run (DESIGN §10). Not a test: it prints figures.

mod inputs;
mod measure;
mod sfu;

pub use sfu::{SfuBench, run_sfu};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use crate::composer::{Composer, ProgramSettings, RoomFeed};
use crate::layout::{self, Canvas, LayoutName, LayoutTemplates};
use crate::livestream::{OutputSpec, OutputTarget};
use crate::sfu::{Layer, RoomHandle, TrackSid};
use inputs::EncodedInput;
use measure::Usage;

#[derive(Debug, Clone)]
pub struct ComposeBench {
    pub inputs: usize,
    pub canvas: Canvas,
    pub fps: u32,
    pub seconds: u32,
    /// Runs of each side, alternating; the medians are compared.
    pub runs: u32,
    pub work_dir: PathBuf,
}

/// Where the worker leaves the CPU seconds of its composition window.
const WORKER_CPU_FILE: &str = "worker-cpu-seconds";

/// Runs both sides and prints the comparison.
pub fn run_compose(bench: &ComposeBench) -> anyhow::Result<()> {
    crate::composer::init()?;
    std::fs::create_dir_all(&bench.work_dir)?;
    println!(
        "bench compose: {} inputs → {}x{}@{} for {} s (work dir {})",
        bench.inputs,
        bench.canvas.width,
        bench.canvas.height,
        bench.fps,
        bench.seconds,
        bench.work_dir.display()
    );
    let started = Instant::now();
    let files = inputs::encode_all(bench)?;
    println!(
        "  encoded and packetized {} inputs once in {:.1} s",
        files.len(),
        started.elapsed().as_secs_f64()
    );

    let exe = std::env::current_exe()?;
    let (mut onair_runs, mut bare_runs) = (Vec::new(), Vec::new());
    for run in 1..=bench.runs {
        let mut onair = measure::run_child(
            std::process::Command::new(&exe)
                .args(["bench", "compose-worker"])
                .args(worker_args(bench)),
        )?;
        // Only the composition counts, not the worker reading its input files.
        let window: f64 = std::fs::read_to_string(bench.work_dir.join(WORKER_CPU_FILE))?
            .trim()
            .parse()?;
        onair.user = Duration::from_secs_f64(window);
        onair.system = Duration::ZERO;
        let bare = measure::run_child(&mut bare_pipeline(bench, &files))?;
        println!(
            "  run {run}/{}: onair {:.3} CPU-s, {:.0} MB peak; bare {:.3} CPU-s, {:.0} MB peak",
            bench.runs,
            onair.cpu_seconds(),
            onair.max_rss_bytes as f64 / 1e6,
            bare.cpu_seconds(),
            bare.max_rss_bytes as f64 / 1e6
        );
        onair_runs.push(onair);
        bare_runs.push(bare);
    }
    let program = f64::from(bench.seconds);
    // CPU and wall time of the median-CPU run; peak RSS is its own median
    // (a run's peak is noisier than its CPU time).
    let onair = Usage {
        max_rss_bytes: measure::median_rss(&onair_runs),
        ..measure::median(&onair_runs)
    };
    let bare = Usage {
        max_rss_bytes: measure::median_rss(&bare_runs),
        ..measure::median(&bare_runs)
    };
    report(bench, program, &onair, &bare);
    Ok(())
}

fn worker_args(bench: &ComposeBench) -> Vec<String> {
    vec![
        "--runs".into(),
        "1".into(),
        "--inputs".into(),
        bench.inputs.to_string(),
        "--size".into(),
        format!("{}x{}", bench.canvas.width, bench.canvas.height),
        "--fps".into(),
        bench.fps.to_string(),
        "--seconds".into(),
        bench.seconds.to_string(),
        "--work-dir".into(),
        bench.work_dir.display().to_string(),
    ]
}

fn report(bench: &ComposeBench, program_seconds: f64, onair: &Usage, bare: &Usage) {
    let per_second = |u: &Usage| u.cpu_seconds() / program_seconds;
    let ratio = per_second(onair) / per_second(bare);
    println!();
    println!("medians of {} alternating runs:", bench.runs);
    println!("| pipeline | CPU-s per program s | real-time factor | peak RSS |");
    println!("|---|---|---|---|");
    for (name, usage) in [
        ("onair composer (RTP in, live)", onair),
        ("bare gst-launch-1.0 (files in, real-time paced)", bare),
    ] {
        println!(
            "| {name} | {:.3} | {:.2} | {:.0} MB |",
            per_second(usage),
            program_seconds / usage.wall.as_secs_f64(),
            usage.max_rss_bytes as f64 / 1e6
        );
    }
    println!();
    println!(
        "ratio onair / bare: {ratio:.3} (target ≤ 1.15); onair peak RSS {:.0} MB (target ≤ 200 MB); {} inputs at {}x{}",
        onair.max_rss_bytes as f64 / 1e6,
        bench.inputs,
        bench.canvas.width,
        bench.canvas.height
    );
}

/// The composer side, in its own process so its CPU and RSS are its own.
pub fn run_compose_worker(bench: &ComposeBench) -> anyhow::Result<()> {
    crate::composer::init()?;
    let files = inputs::paths(bench);
    let encoded: Vec<EncodedInput> = files
        .iter()
        .enumerate()
        .map(|(i, path)| EncodedInput::open(i, path))
        .collect::<anyhow::Result<_>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (room, room_rx) = mpsc::channel(8192);
        let (events, mut events_rx) = mpsc::channel(256);
        let settings = ProgramSettings::new(bench.canvas, bench.fps, 3000, "gallery");
        let output = OutputSpec {
            id: uuid::Uuid::new_v4(),
            name: "bench".into(),
            target: OutputTarget::Mp4 {
                path: bench.work_dir.join("onair.mp4"),
            },
        };
        let feed = RoomFeed {
            events: room_rx,
            handle: Arc::new(NoFeedback),
        };
        let layouts = Arc::new(LayoutTemplates::builtin());
        let composer = Composer::start(settings, layouts, vec![output], feed, events)?;
        tokio::spawn(async move { while events_rx.recv().await.is_some() {} });
        let progress = tokio::spawn(show_progress(composer.stats().clone(), bench.seconds));
        for input in &encoded {
            for event in input.announce() {
                room.send(event).await?;
            }
        }
        let cpu_before = measure::own_cpu();
        let feeder =
            inputs::feed_in_real_time(encoded, room, Duration::from_secs(bench.seconds.into()));
        feeder.await.context("feeding inputs")??;
        progress.abort();
        composer.stop().await?;
        let cpu = measure::own_cpu() - cpu_before;
        std::fs::write(
            bench.work_dir.join(WORKER_CPU_FILE),
            cpu.as_secs_f64().to_string(),
        )?;
        anyhow::Ok(())
    })
}

/// A line a second while the worker composes: program frames and the
/// recording's bit rate so far (outputs report their bytes every 2 s).
async fn show_progress(stats: Arc<crate::composer::ComposerStats>, seconds: u32) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let elapsed = started.elapsed().as_secs_f64();
        let frames = stats
            .program_frames
            .load(std::sync::atomic::Ordering::Relaxed);
        let bytes = crate::metrics::global().output_bytes.get(&["mp4"]);
        eprintln!(
            "    onair {elapsed:>3.0}/{seconds} s  {frames} program frames ({:.1} fps)  mp4 {:.0} kbit/s",
            frames as f64 / elapsed,
            bytes as f64 * 8.0 / 1000.0 / elapsed
        );
    }
}

/// The bench's publishers are files: keyframe requests have nowhere to go.
struct NoFeedback;

impl RoomHandle for NoFeedback {
    fn request_keyframe(&self, _track: &TrackSid) {}
    fn select_layer(&self, _track: &TrackSid, _layer: Layer) {}
}

/// The same work as the composer, written as one gst-launch-1.0 line: decode
/// every input, place it where the gallery layout puts it, encode H.264 + AAC
/// with the same settings into a fragmented MP4, paced in real time by the
/// sink as a live program is.
fn bare_pipeline(bench: &ComposeBench, files: &[PathBuf]) -> std::process::Command {
    let Canvas { width, height } = bench.canvas;
    let fps = bench.fps;
    let regions = gallery_regions(bench.inputs, bench.canvas);
    let mut pads = String::new();
    let mut branches = String::new();
    for (i, (file, rect)) in files.iter().zip(&regions).enumerate() {
        let pad = i + 1;
        pads.push_str(&format!(
            " sink_{pad}::xpos={} sink_{pad}::ypos={} sink_{pad}::width={} sink_{pad}::height={} sink_{pad}::zorder={pad}",
            rect.x, rect.y, rect.w, rect.h
        ));
        branches.push_str(&format!(
            " filesrc location={file} ! matroskademux name=d{i} \
             d{i}.video_0 ! vp8dec ! videoconvert ! c.sink_{pad} \
             d{i}.audio_0 ! opusdec ! audioconvert ! audioresample ! a.",
            file = file.display()
        ));
    }
    let line = format!(
        "compositor name=c background=black{pads} \
         ! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 \
         ! x264enc bitrate=3000 speed-preset=veryfast tune=zerolatency key-int-max={key} \
         ! h264parse ! mp4mux name=m fragment-duration=1000 ! filesink sync=true location={out} \
         audiomixer name=a ! audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac bitrate=128000 ! aacparse ! m. \
         videotestsrc pattern=solid-color foreground-color=0xff323232 num-buffers={frames} \
         ! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 ! c.sink_0{branches}",
        key = fps * 2,
        out = bench.work_dir.join("bare.mp4").display(),
        frames = fps * bench.seconds,
    );
    let mut command = std::process::Command::new("gst-launch-1.0");
    command.arg("-q").args(line.split_whitespace());
    command
}

fn gallery_regions(inputs: usize, canvas: Canvas) -> Vec<layout::Rect> {
    let room = inputs::synthetic_room(inputs);
    layout::compose(LayoutName::Gallery, canvas, &room, None)
        .regions
        .into_iter()
        .map(|r| r.rect)
        .collect()
}

pub fn default_work_dir() -> PathBuf {
    std::env::temp_dir().join("onair-bench")
}

pub fn parse_size(size: &str) -> anyhow::Result<Canvas> {
    let (w, h) = size
        .split_once(['x', 'X'])
        .ok_or_else(|| anyhow::anyhow!("size must be WIDTHxHEIGHT, e.g. 1280x720"))?;
    let canvas = Canvas::new(w.trim().parse()?, h.trim().parse()?);
    anyhow::ensure!(
        canvas.width >= 16 && canvas.height >= 16,
        "size is too small"
    );
    Ok(canvas)
}

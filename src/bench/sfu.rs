//! `onair bench sfu`: one publisher to K WebRTC viewers through the SFU, every
//! peer a real str0m session over UDP on 127.0.0.1. Measures what forwarding
//! costs (packets per second per core of the SFU's own thread) and how long a
//! frame takes from the publisher's write to a viewer's assembled frame.
//!
//! The SFU runs alone on one OS thread (a current-thread runtime: its datagram
//! readers and its loop are all tokio tasks there), so that thread's CPU time
//! is the SFU's. All clients share the calling thread, another runtime.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec as RtcCodec;
use str0m::media::{Direction, Frequency, MediaData, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};

use crate::sfu::{JoinRequest, Permissions, RoomSettings, Sfu, SfuSettings, ViewRequest};

#[derive(Debug, Clone)]
pub struct SfuBench {
    /// WHEP viewers of the one publisher.
    pub subscribers: usize,
    /// Length of the measured window.
    pub seconds: u32,
    pub bitrate_kbps: u32,
    pub fps: u32,
    /// Independent runs, each with a fresh SFU; medians are reported.
    pub runs: u32,
}

impl SfuBench {
    /// Every frame has the same size: the bitrate spread evenly over frames.
    pub fn frame_bytes(&self) -> usize {
        let bytes = u64::from(self.bitrate_kbps) * 1000 / 8 / u64::from(self.fps.max(1));
        (bytes as usize).max(FRAME_HEADER)
    }
}

const ROOM: &str = "bench-sfu";
const PUBLISHER: &str = "bench-publisher";
/// After every viewer has its first frame: keyframe requests, NACKs and
/// socket buffers settle before anything is counted.
const WARM_UP: Duration = Duration::from_secs(2);
/// ICE + DTLS for all viewers; the SFU itself gives up after 20 s.
const CONNECT_WITHIN: Duration = Duration::from_secs(30);
/// Frames written at the end of the window are still in flight this long.
const DRAIN: Duration = Duration::from_secs(1);

/// Runs the bench and prints per-run lines and a table of medians.
pub fn run_sfu(bench: &SfuBench) -> anyhow::Result<()> {
    println!(
        "bench sfu: 1 publisher → {} viewers, VP8 {} kbps at {} fps ({} B frames), \
         {} s window after {} s warm-up, {} run(s)",
        bench.subscribers,
        bench.bitrate_kbps,
        bench.fps,
        bench.frame_bytes(),
        bench.seconds,
        WARM_UP.as_secs(),
        bench.runs
    );
    let mut runs = Vec::new();
    for run in 1..=bench.runs {
        let figures = run_once(bench).with_context(|| format!("run {run}"))?;
        println!("  run {run}/{}: {}", bench.runs, figures.summary());
        runs.push(figures);
    }
    report(bench, &runs);
    Ok(())
}

/// One run: a fresh SFU thread, the clients on this thread.
fn run_once(bench: &SfuBench) -> anyhow::Result<Figures> {
    let sfu = SfuThread::start()?;
    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = clients.block_on(measure(bench, &sfu));
    // The clients go first so the SFU does not log them timing out.
    drop(clients);
    sfu.stop();
    result
}

// ---- the SFU on its own thread ----

struct SfuThread {
    sfu: Sfu,
    tid: libc::pid_t,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl SfuThread {
    fn start() -> anyhow::Result<SfuThread> {
        let (started_tx, started) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-sfu".into())
            .spawn(move || serve_sfu(started_tx, stopped))?;
        let (sfu, tid) = started
            .recv()
            .context("the SFU thread ended before starting")??;
        Ok(SfuThread {
            sfu,
            tid,
            stop,
            thread,
        })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::warn!("the bench SFU thread panicked");
        }
    }
}

type Started = anyhow::Result<(Sfu, libc::pid_t)>;

/// The SFU thread's body: start the SFU, report it, run until told to stop.
fn serve_sfu(started: std::sync::mpsc::Sender<Started>, stopped: oneshot::Receiver<()>) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = started.send(Err(error.into()));
            return;
        }
    };
    runtime.block_on(async move {
        let settings = SfuSettings {
            rooms: RoomSettings {
                empty_timeout: Duration::from_secs(300),
                departure_timeout: Duration::from_secs(20),
                max_participants: 0,
            },
            node_ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            udp_port: 0,
        };
        match Sfu::start(settings).await {
            Ok(sfu) => {
                let _ = started.send(Ok((sfu.clone(), tid)));
                let _ = stopped.await;
                sfu.shutdown().await;
            }
            Err(error) => {
                let _ = started.send(Err(anyhow::Error::new(error).context("starting the SFU")));
            }
        }
    });
}

// ---- one measured run ----

/// Counters the client tasks share with the measuring code.
#[derive(Default)]
struct Progress {
    frames_written: AtomicU64,
    keyframe_requests: AtomicU64,
    viewers_ready: AtomicUsize,
    /// Datagrams a client could not hand to its socket.
    send_failures: AtomicU64,
}

async fn measure(bench: &SfuBench, sfu: &SfuThread) -> anyhow::Result<Figures> {
    let epoch = Instant::now();
    let progress = Arc::new(Progress::default());
    let (stop, stopped) = watch::channel(false);

    let publisher = Publisher::join(&sfu.sfu, bench, epoch, progress.clone()).await?;
    let publisher = tokio::spawn(drive(publisher.0, publisher.1, stopped.clone()));
    let mut viewers = Vec::with_capacity(bench.subscribers);
    for _ in 0..bench.subscribers {
        let (client, viewer) = Viewer::join(&sfu.sfu, epoch, progress.clone()).await?;
        viewers.push(tokio::spawn(drive(client, viewer, stopped.clone())));
    }
    wait_for_viewers(&progress, bench.subscribers).await?;
    tokio::time::sleep(WARM_UP).await;

    // SAFETY: gettid has no preconditions.
    let client_tid = unsafe { libc::gettid() };
    let before = Sample::take(sfu, client_tid, &progress)?;
    tokio::time::sleep(Duration::from_secs(bench.seconds.into())).await;
    let after = Sample::take(sfu, client_tid, &progress)?;
    tokio::time::sleep(DRAIN).await;

    let _ = stop.send(true);
    publisher.await??;
    let mut seen = Vec::with_capacity(viewers.len());
    for viewer in viewers {
        seen.push(viewer.await??.frames);
    }
    Ok(Figures::new(bench, &before, &after, &seen))
}

async fn wait_for_viewers(progress: &Progress, wanted: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + CONNECT_WITHIN;
    while progress.viewers_ready.load(Relaxed) < wanted {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {wanted} viewers received media within {} s",
            progress.viewers_ready.load(Relaxed),
            CONNECT_WITHIN.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Everything counted at one edge of the measured window.
struct Sample {
    at: Instant,
    sfu_cpu: Duration,
    client_cpu: Duration,
    process_cpu: Duration,
    received: u64,
    forwarded: u64,
    frames_written: u64,
    keyframe_requests: u64,
    send_failures: u64,
    udp: Option<UdpErrors>,
}

impl Sample {
    fn take(sfu: &SfuThread, client_tid: libc::pid_t, progress: &Progress) -> anyhow::Result<Self> {
        let stats = sfu.sfu.stats();
        Ok(Sample {
            at: Instant::now(),
            sfu_cpu: thread_cpu(sfu.tid)?,
            client_cpu: thread_cpu(client_tid)?,
            process_cpu: super::measure::own_cpu(),
            received: stats.received.load(Relaxed),
            forwarded: stats.forwarded.load(Relaxed),
            frames_written: progress.frames_written.load(Relaxed),
            keyframe_requests: progress.keyframe_requests.load(Relaxed),
            send_failures: progress.send_failures.load(Relaxed),
            udp: udp_errors(),
        })
    }
}

// ---- the peers ----

/// A str0m session on its own loopback socket (full ICE, sample mode).
struct Client {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    progress: Arc<Progress>,
}

impl Client {
    fn bind(progress: Arc<Progress>) -> anyhow::Result<Client> {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket)?;
        let local = socket.local_addr()?;
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        Ok(Client {
            rtc,
            socket,
            local,
            progress,
        })
    }

    /// An offer with one video section in `direction`.
    fn offer(&mut self, direction: Direction) -> anyhow::Result<(Mid, String, SdpPendingOffer)> {
        let mut change = self.rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, direction, None, None, None);
        let (offer, pending) = change.apply().context("str0m made no offer")?;
        Ok((mid, offer.to_sdp_string(), pending))
    }

    fn accept(&mut self, pending: SdpPendingOffer, answer: &str) -> anyhow::Result<()> {
        let answer = SdpAnswer::from_sdp_string(answer).context("the SFU's answer")?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        Ok(())
    }

    /// Sends what str0m has to send and hands events to `role`, until str0m
    /// waits; returns when it next wants time to pass.
    fn poll(&mut self, role: &mut impl Role) -> anyhow::Result<Instant> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(at) => return Ok(at),
                Output::Transmit(transmit) => {
                    // Never wait for the socket, as the SFU does not.
                    if self
                        .socket
                        .try_send_to(&transmit.contents, transmit.destination)
                        .is_err()
                    {
                        self.progress.send_failures.fetch_add(1, Relaxed);
                    }
                }
                Output::Event(event) => role.on_event(&mut self.rtc, event, Instant::now()),
            }
        }
    }

    fn receive(&mut self, source: SocketAddr, data: &[u8]) {
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, data) else {
            return;
        };
        if let Err(error) = self
            .rtc
            .handle_input(Input::Receive(Instant::now(), receive))
        {
            tracing::debug!(%error, "bench client rejected a datagram");
        }
    }
}

/// What a client does with its session besides networking.
trait Role {
    fn on_event(&mut self, rtc: &mut Rtc, event: Event, now: Instant);
    /// When the role next wants to act on its own.
    fn due(&self) -> Option<Instant> {
        None
    }
    fn act(&mut self, _rtc: &mut Rtc, _now: Instant) {}
}

/// Runs one client until `stop` changes; gives back its role.
async fn drive<R: Role>(
    mut client: Client,
    mut role: R,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<R> {
    let mut buf = vec![0u8; 2048];
    loop {
        let timeout = client.poll(&mut role)?;
        let wake = role.due().map_or(timeout, |due| due.min(timeout));
        tokio::select! {
            _ = stop.changed() => return Ok(role),
            received = client.socket.recv_from(&mut buf) => {
                // ICMP errors (a closed port) surface here; the next datagram is what counts.
                if let Ok((len, source)) = received {
                    client.receive(source, &buf[..len]);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if role.due().is_some_and(|due| due <= now) {
                    role.act(&mut client.rtc, now);
                }
                client.rtc.handle_input(Input::Timeout(now))?;
            }
        }
    }
}

/// Writes synthetic VP8 frames at a steady rate once connected.
struct Publisher {
    mid: Mid,
    pt: Option<Pt>,
    fps: u32,
    frame_bytes: usize,
    next_frame: Option<Instant>,
    index: u64,
    keyframe_due: bool,
    epoch: Instant,
    progress: Arc<Progress>,
}

impl Publisher {
    async fn join(
        sfu: &Sfu,
        bench: &SfuBench,
        epoch: Instant,
        progress: Arc<Progress>,
    ) -> anyhow::Result<(Client, Publisher)> {
        let mut client = Client::bind(progress.clone())?;
        let (mid, offer, pending) = client.offer(Direction::SendOnly)?;
        let join = JoinRequest {
            room: ROOM.into(),
            identity: PUBLISHER.into(),
            name: "bench publisher".into(),
            metadata: String::new(),
            permissions: Permissions {
                can_publish: true,
                can_subscribe: false,
                can_publish_data: false,
                publish_sources: Vec::new(),
                hidden: false,
                recorder: false,
            },
        };
        let created = sfu.publish(join, &offer).await.context("publishing")?;
        client.accept(pending, &created.answer)?;
        let publisher = Publisher {
            mid,
            pt: None,
            fps: bench.fps,
            frame_bytes: bench.frame_bytes(),
            next_frame: None,
            index: 0,
            keyframe_due: true,
            epoch,
            progress,
        };
        Ok((client, publisher))
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.fps.max(1)
    }
}

impl Role for Publisher {
    fn on_event(&mut self, rtc: &mut Rtc, event: Event, now: Instant) {
        match event {
            Event::Connected => {
                self.pt = rtc.writer(self.mid).and_then(|writer| {
                    writer
                        .payload_params()
                        .find(|p| p.spec().codec == RtcCodec::Vp8)
                        .map(|p| p.pt())
                });
                if self.pt.is_none() {
                    tracing::warn!("the SFU did not accept VP8; the bench publisher sends nothing");
                }
                self.next_frame = Some(now);
            }
            Event::KeyframeRequest(_) => {
                self.keyframe_due = true;
                self.progress.keyframe_requests.fetch_add(1, Relaxed);
            }
            _ => {}
        }
    }

    fn due(&self) -> Option<Instant> {
        self.next_frame
    }

    fn act(&mut self, rtc: &mut Rtc, now: Instant) {
        let (Some(pt), Some(due)) = (self.pt, self.next_frame) else {
            return;
        };
        // A late tick does not make a burst of frames: the schedule restarts.
        let next = due + self.interval();
        self.next_frame = Some(if next < now {
            now + self.interval()
        } else {
            next
        });
        let sent_ns = now.duration_since(self.epoch).as_nanos() as u64;
        let data = frame(self.index, sent_ns, self.keyframe_due, self.frame_bytes);
        let rtp_time = MediaTime::new(
            self.index * 90_000 / u64::from(self.fps.max(1)),
            Frequency::NINETY_KHZ,
        );
        let Some(writer) = rtc.writer(self.mid) else {
            return;
        };
        match writer.write(pt, now, rtp_time, data) {
            Ok(()) => {
                self.keyframe_due = false;
                self.index += 1;
                self.progress.frames_written.store(self.index, Relaxed);
            }
            Err(error) => tracing::debug!(%error, "bench publisher could not write a frame"),
        }
    }
}

/// A WHEP viewer that notes when each frame arrives.
struct Viewer {
    epoch: Instant,
    progress: Arc<Progress>,
    frames: Vec<Seen>,
}

/// One frame as a viewer assembled it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    index: u64,
    /// Publisher's write → frame assembled here.
    delay: Duration,
    /// str0m saw no gap in sequence numbers before it.
    contiguous: bool,
    keyframe: bool,
}

impl Viewer {
    async fn join(
        sfu: &Sfu,
        epoch: Instant,
        progress: Arc<Progress>,
    ) -> anyhow::Result<(Client, Viewer)> {
        let mut client = Client::bind(progress.clone())?;
        let (_, offer, pending) = client.offer(Direction::RecvOnly)?;
        let view = ViewRequest {
            room: ROOM.into(),
            target: PUBLISHER.into(),
        };
        let created = sfu.view(view, &offer).await.context("viewing")?;
        client.accept(pending, &created.answer)?;
        let viewer = Viewer {
            epoch,
            progress,
            frames: Vec::new(),
        };
        Ok((client, viewer))
    }

    fn on_media(&mut self, data: &MediaData, now: Instant) {
        let Some(stamp) = Stamp::read(&data.data) else {
            return;
        };
        let now_ns = now.duration_since(self.epoch).as_nanos() as u64;
        if self.frames.is_empty() {
            self.progress.viewers_ready.fetch_add(1, Relaxed);
        }
        self.frames.push(Seen {
            index: stamp.index,
            delay: Duration::from_nanos(now_ns.saturating_sub(stamp.sent_ns)),
            contiguous: data.contiguous,
            keyframe: stamp.keyframe,
        });
    }
}

impl Role for Viewer {
    fn on_event(&mut self, _rtc: &mut Rtc, event: Event, now: Instant) {
        if let Event::MediaData(data) = event {
            self.on_media(&data, now);
        }
    }
}

// ---- the synthetic frames ----

/// VP8 frame tag (3 bytes) + keyframe start code and size (7 bytes), then
/// the send time and the frame's index.
const FRAME_HEADER: usize = 10 + 8 + 8;
const STAMP_AT: usize = 10;

/// A frame that looks like VP8 as far as anyone on the path looks (the P bit
/// of the frame tag; str0m's VP8 keyframe detection reads only that) and
/// carries when it was written.
fn frame(index: u64, sent_ns: u64, keyframe: bool, size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size.max(FRAME_HEADER)];
    // Frame tag: bit 0 = 0 for a keyframe, bit 4 = show_frame.
    data[0] = if keyframe { 0x10 } else { 0x11 };
    if keyframe {
        // Start code, then 640×360 (little-endian, no scaling).
        data[3..10].copy_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]);
    }
    data[STAMP_AT..STAMP_AT + 8].copy_from_slice(&sent_ns.to_le_bytes());
    data[STAMP_AT + 8..STAMP_AT + 16].copy_from_slice(&index.to_le_bytes());
    data
}

#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    sent_ns: u64,
    index: u64,
    keyframe: bool,
}

impl Stamp {
    fn read(data: &[u8]) -> Option<Stamp> {
        let word = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
        };
        Some(Stamp {
            sent_ns: word(STAMP_AT)?,
            index: word(STAMP_AT + 8)?,
            keyframe: data.first()? & 1 == 0,
        })
    }
}

// ---- figures ----

#[derive(Debug, Clone)]
struct Figures {
    subscribers: usize,
    received_pps: f64,
    forwarded_pps: f64,
    /// Of one core.
    sfu_cpu_pct: f64,
    pps_per_core: f64,
    client_cpu_pct: f64,
    process_cpu_pct: f64,
    delay_p50_ms: f64,
    delay_p99_ms: f64,
    delay_max_ms: f64,
    frames_written: u64,
    frames_min_seen: u64,
    frames_mean_seen: f64,
    loss_pct: f64,
    discontinuities: u64,
    keyframes_seen: u64,
    keyframe_requests: u64,
    /// Since the publisher joined (its first keyframe included).
    keyframe_requests_total: u64,
    send_failures: u64,
    udp: Option<UdpErrors>,
    peak_rss_mb: f64,
}

impl Figures {
    fn new(bench: &SfuBench, before: &Sample, after: &Sample, seen: &[Vec<Seen>]) -> Figures {
        let wall = after.at.duration_since(before.at).as_secs_f64();
        let rate = |count: u64| count as f64 / wall;
        let sfu_cpu = (after.sfu_cpu.saturating_sub(before.sfu_cpu)).as_secs_f64();
        let forwarded_pps = rate(after.forwarded - before.forwarded);
        // Frames the publisher wrote inside the window.
        let window = before.frames_written..after.frames_written;
        let frames_written = window.end - window.start;
        let mut delays = Vec::new();
        let mut counts = Vec::with_capacity(seen.len());
        let (mut discontinuities, mut keyframes_seen) = (0, 0);
        for frames in seen {
            let mut got = vec![false; frames_written as usize];
            for frame in frames.iter().filter(|f| window.contains(&f.index)) {
                got[(frame.index - window.start) as usize] = true;
                delays.push(frame.delay);
                discontinuities += u64::from(!frame.contiguous);
                keyframes_seen += u64::from(frame.keyframe);
            }
            counts.push(got.iter().filter(|g| **g).count() as u64);
        }
        delays.sort_unstable();
        let total_seen: u64 = counts.iter().sum();
        let expected = frames_written * bench.subscribers as u64;
        let pct = |d: Duration| d.as_secs_f64() * 1000.0;
        Figures {
            subscribers: bench.subscribers,
            received_pps: rate(after.received - before.received),
            forwarded_pps,
            sfu_cpu_pct: 100.0 * sfu_cpu / wall,
            pps_per_core: if sfu_cpu > 0.0 {
                forwarded_pps * wall / sfu_cpu
            } else {
                f64::NAN
            },
            client_cpu_pct: 100.0
                * after
                    .client_cpu
                    .saturating_sub(before.client_cpu)
                    .as_secs_f64()
                / wall,
            process_cpu_pct: 100.0
                * after
                    .process_cpu
                    .saturating_sub(before.process_cpu)
                    .as_secs_f64()
                / wall,
            delay_p50_ms: percentile(&delays, 0.50).map_or(f64::NAN, pct),
            delay_p99_ms: percentile(&delays, 0.99).map_or(f64::NAN, pct),
            delay_max_ms: delays.last().copied().map_or(f64::NAN, pct),
            frames_written,
            frames_min_seen: counts.iter().copied().min().unwrap_or(0),
            frames_mean_seen: total_seen as f64 / counts.len().max(1) as f64,
            loss_pct: if expected > 0 {
                100.0 * (1.0 - total_seen as f64 / expected as f64)
            } else {
                f64::NAN
            },
            discontinuities,
            keyframes_seen,
            keyframe_requests: after.keyframe_requests - before.keyframe_requests,
            keyframe_requests_total: after.keyframe_requests,
            send_failures: after.send_failures - before.send_failures,
            udp: match (&before.udp, &after.udp) {
                (Some(b), Some(a)) => Some(a.since(b)),
                _ => None,
            },
            peak_rss_mb: peak_rss_bytes() as f64 / 1e6,
        }
    }

    fn summary(&self) -> String {
        format!(
            "{:.0} pkt/s in, {:.0} pkt/s forwarded, SFU thread {:.1}% of a core → {:.0} pkt/s per core; \
             delay p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} frames written, {} min / {:.1} mean seen \
             per viewer ({:.3}% lost, {} after a gap, {} keyframes); keyframe requests {} in the \
             window, {} since joining; UDP buffer drops {}; client send failures {}",
            self.received_pps,
            self.forwarded_pps,
            self.sfu_cpu_pct,
            self.pps_per_core,
            self.delay_p50_ms,
            self.delay_p99_ms,
            self.delay_max_ms,
            self.frames_written,
            self.frames_min_seen,
            self.frames_mean_seen,
            self.loss_pct,
            self.discontinuities,
            self.keyframes_seen,
            self.keyframe_requests,
            self.keyframe_requests_total,
            self.udp.as_ref().map_or("n/a".into(), |u| format!(
                "{} in, {} out",
                u.receive, u.send
            )),
            self.send_failures,
        )
    }
}

fn report(bench: &SfuBench, runs: &[Figures]) {
    let med = |field: fn(&Figures) -> f64| median(runs.iter().map(field));
    println!();
    println!("medians of {} run(s):", runs.len());
    println!(
        "| viewers | forwarded pkt/s | SFU thread CPU (of one core) | forwarded pkt/s per core \
         | delay p50 / p99 / max | frames per viewer (written → seen, min) | loss \
         | client thread CPU | process CPU | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.0} | {:.1}% | {:.0} | {:.2} / {:.2} / {:.2} ms | {:.0} → {:.0} | {:.3}% | {:.1}% | {:.1}% | {:.0} MB |",
        bench.subscribers,
        med(|f| f.forwarded_pps),
        med(|f| f.sfu_cpu_pct),
        med(|f| f.pps_per_core),
        med(|f| f.delay_p50_ms),
        med(|f| f.delay_p99_ms),
        med(|f| f.delay_max_ms),
        med(|f| f.frames_written as f64),
        med(|f| f.frames_min_seen as f64),
        med(|f| f.loss_pct),
        med(|f| f.client_cpu_pct),
        med(|f| f.process_cpu_pct),
        med(|f| f.peak_rss_mb),
    );
    println!();
    println!(
        "publisher → SFU {:.0} pkt/s; keyframe requests reaching the publisher {:.0}, \
         keyframes seen by viewers {:.0}, frames after a sequence gap {:.0} (medians per window)",
        med(|f| f.received_pps),
        med(|f| f.keyframe_requests as f64),
        med(|f| f.keyframes_seen as f64),
        med(|f| f.discontinuities as f64),
    );
    debug_assert!(runs.iter().all(|f| f.subscribers == bench.subscribers));
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
}

/// The middle value (the upper one of an even count); NaN for none.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

// ---- what the system says ----

/// CPU time of one thread of this process: nanoseconds on a CPU from
/// schedstat, else user + system clock ticks (10 ms, coarse for a quiet SFU).
fn thread_cpu(tid: libc::pid_t) -> anyhow::Result<Duration> {
    let schedstat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"));
    if let Some(ns) = schedstat
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
    {
        return Ok(Duration::from_nanos(ns));
    }
    let path = format!("/proc/self/task/{tid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may contain spaces; what follows it does not.
    let (_, rest) = stat
        .rsplit_once(')')
        .with_context(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of proc_pid_stat(5); fields[0] is field 3.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        let field = fields.get(i).with_context(|| format!("short {path}"))?;
        Ok(field.parse()?)
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks_per_second(),
    ))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn peak_rss_bytes() -> u64 {
    // SAFETY: `rusage` is plain data that getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    // Linux reports ru_maxrss in KiB.
    usage.ru_maxrss.max(0) as u64 * 1024
}

/// UDP datagrams the kernel dropped for want of socket buffer (this network
/// namespace, every socket: on a quiet machine, the bench's).
#[derive(Debug, Clone, Copy)]
struct UdpErrors {
    receive: u64,
    send: u64,
}

impl UdpErrors {
    fn since(&self, earlier: &UdpErrors) -> UdpErrors {
        UdpErrors {
            receive: self.receive.saturating_sub(earlier.receive),
            send: self.send.saturating_sub(earlier.send),
        }
    }
}

fn udp_errors() -> Option<UdpErrors> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let counters: HashMap<&str, u64> = names
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter_map(|(name, value)| Some((name, value.parse().ok()?)))
        .collect();
    Some(UdpErrors {
        receive: *counters.get("RcvbufErrors")?,
        send: *counters.get("SndbufErrors")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_stamp_and_keyframe_bit() {
        let key = frame(7, 123_456_789, true, 1000);
        assert_eq!(key.len(), 1000);
        // As the first RTP packet of the frame carries it: S=1, PID=0.
        let first_packet = |data: &[u8]| [&[0x10], &data[..100]].concat();
        assert!(str0m::format::detect_vp8_keyframe(&first_packet(&key)));
        let delta = frame(8, 5, false, 300);
        assert!(!str0m::format::detect_vp8_keyframe(&first_packet(&delta)));
        assert_eq!(
            Stamp::read(&key),
            Some(Stamp {
                sent_ns: 123_456_789,
                index: 7,
                keyframe: true
            })
        );
        let delta = frame(8, 5, false, 3);
        assert_eq!(delta.len(), FRAME_HEADER);
        assert_eq!(Stamp::read(&delta).map(|s| s.keyframe), Some(false));
        assert_eq!(Stamp::read(&delta[..FRAME_HEADER - 1]), None);
    }

    #[test]
    fn percentiles_and_medians() {
        let ms = |v: u64| Duration::from_millis(v);
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.5), Some(ms(50)));
        assert_eq!(percentile(&sorted, 0.99), Some(ms(99)));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert!(median(std::iter::empty()).is_nan());
    }

    #[test]
    fn frame_size_follows_bitrate() {
        let bench = SfuBench {
            subscribers: 1,
            seconds: 1,
            bitrate_kbps: 2400,
            fps: 30,
            runs: 1,
        };
        assert_eq!(bench.frame_bytes(), 10_000);
    }
}

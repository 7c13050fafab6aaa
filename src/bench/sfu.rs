//! `onair bench sfu`: one publisher to K WebRTC viewers through the SFU, every
//! peer a real str0m session over UDP on 127.0.0.1. Measures what forwarding
//! costs (packets per second per core of the SFU's own thread) and how long a
//! frame takes from the publisher's write to a viewer's assembled frame.
//!
//! The SFU runs alone on one OS thread (a current-thread runtime: its datagram
//! readers and its loop are all tokio tasks there), so that thread's CPU time
//! is the SFU's. All clients share the calling thread, another runtime.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

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
/// Other work on the machine above this (% of one core) makes a run suspect.
const BUSY_MACHINE_PCT: f64 = 10.0;

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
            public_ip: None,
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

/// The bench's time zero, on both clocks: publishers stamp frames on the
/// monotonic one, the kernel stamps datagrams on the real-time one.
#[derive(Debug, Clone, Copy)]
struct Clock {
    epoch: Instant,
    wall: SystemTime,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            epoch: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    fn since_epoch(&self, wall: SystemTime) -> Option<Duration> {
        wall.duration_since(self.wall).ok()
    }
}

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
    let clock = Clock::now();
    let progress = Arc::new(Progress::default());
    let (stop, stopped) = watch::channel(false);

    let mut probe = Probe::new(sfu);

    let (client, publisher) =
        Publisher::join(&sfu.sfu, bench, clock.epoch, progress.clone()).await?;
    probe.client_ports.insert(client.local.port());
    let publisher = tokio::spawn(drive(client, publisher, stopped.clone()));
    let mut viewers = Vec::with_capacity(bench.subscribers);
    for _ in 0..bench.subscribers {
        let (client, viewer) = Viewer::join(&sfu.sfu, clock, progress.clone()).await?;
        probe.client_ports.insert(client.local.port());
        viewers.push(tokio::spawn(drive(client, viewer, stopped.clone())));
    }
    wait_for_viewers(&progress, bench.subscribers).await?;
    let connect = clock.epoch.elapsed();
    tokio::time::sleep(WARM_UP).await;

    let before = probe.sample(&progress)?;
    tokio::time::sleep(Duration::from_secs(bench.seconds.into())).await;
    let after = probe.sample(&progress)?;
    tokio::time::sleep(DRAIN).await;

    let _ = stop.send(true);
    publisher.await??;
    let mut seen = Vec::with_capacity(viewers.len());
    for viewer in viewers {
        seen.push(viewer.await??.frames);
    }
    Ok(Figures::new(connect, &before, &after, &seen))
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

/// What to look at when sampling: the two threads and the sockets.
struct Probe<'a> {
    sfu: &'a SfuThread,
    /// The thread the clients run on (this one).
    client_tid: libc::pid_t,
    sfu_ports: HashSet<u16>,
    client_ports: HashSet<u16>,
}

impl<'a> Probe<'a> {
    fn new(sfu: &'a SfuThread) -> Probe<'a> {
        Probe {
            sfu,
            // SAFETY: gettid has no preconditions.
            client_tid: unsafe { libc::gettid() },
            sfu_ports: sfu.sfu.media_addresses().iter().map(|a| a.port()).collect(),
            client_ports: HashSet::new(),
        }
    }

    fn sample(&self, progress: &Progress) -> anyhow::Result<Sample> {
        let stats = self.sfu.sfu.stats();
        Ok(Sample {
            at: Instant::now(),
            sfu_cpu: thread_cpu(self.sfu.tid)?,
            client_cpu: thread_cpu(self.client_tid)?,
            process_cpu: super::measure::own_cpu(),
            machine_busy: machine_busy(),
            received: stats.received.load(Relaxed),
            forwarded: stats.forwarded.load(Relaxed),
            frames_written: progress.frames_written.load(Relaxed),
            keyframe_requests: progress.keyframe_requests.load(Relaxed),
            send_failures: progress.send_failures.load(Relaxed),
            drops: socket_drops(&self.sfu_ports, &self.client_ports),
        })
    }
}

/// Everything counted at one edge of the measured window.
struct Sample {
    at: Instant,
    sfu_cpu: Duration,
    client_cpu: Duration,
    process_cpu: Duration,
    machine_busy: Option<Duration>,
    received: u64,
    forwarded: u64,
    frames_written: u64,
    keyframe_requests: u64,
    send_failures: u64,
    drops: Option<Drops>,
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
        // The first request turns receive timestamps on for this socket.
        let _ = kernel_arrival(&socket);
        // Sfu::start installed the process-wide crypto provider str0m uses here.
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
    /// A datagram is about to be handled; the kernel queued it at `at`.
    fn arrived(&mut self, _at: Option<SystemTime>) {}
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
                    role.arrived(kernel_arrival(&client.socket));
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
            attributes: Default::default(),
            permissions: Permissions {
                can_publish: true,
                can_subscribe: false,
                can_publish_data: false,
                publish_sources: Vec::new(),
                hidden: false,
                recorder: false,
                can_update_metadata: false,
                agent: false,
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
    clock: Clock,
    progress: Arc<Progress>,
    frames: Vec<Seen>,
    last_arrival: Option<SystemTime>,
}

/// One frame as a viewer assembled it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    index: u64,
    /// Publisher's write → frame assembled here.
    delay: Duration,
    /// Publisher's write → the frame's last datagram queued on this viewer's
    /// socket: the SFU's part, without this (shared) client thread's backlog.
    to_socket: Option<Duration>,
    /// str0m saw no gap in sequence numbers before it.
    contiguous: bool,
    keyframe: bool,
}

impl Viewer {
    async fn join(
        sfu: &Sfu,
        clock: Clock,
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
            clock,
            progress,
            frames: Vec::new(),
            last_arrival: None,
        };
        Ok((client, viewer))
    }

    fn on_media(&mut self, data: &MediaData, now: Instant) {
        let Some(stamp) = Stamp::read(&data.data) else {
            return;
        };
        let now_ns = now.duration_since(self.clock.epoch).as_nanos() as u64;
        let sent = Duration::from_nanos(stamp.sent_ns);
        let to_socket = self
            .last_arrival
            .and_then(|at| self.clock.since_epoch(at))
            .map(|arrived| arrived.saturating_sub(sent));
        if self.frames.is_empty() {
            self.progress.viewers_ready.fetch_add(1, Relaxed);
        }
        self.frames.push(Seen {
            index: stamp.index,
            delay: Duration::from_nanos(now_ns.saturating_sub(stamp.sent_ns)),
            to_socket,
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

    fn arrived(&mut self, at: Option<SystemTime>) {
        self.last_arrival = at;
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

/// What the viewers saw of the frames written inside the window.
struct Tally {
    seen_per_viewer: Vec<u64>,
    to_socket: Vec<Duration>,
    to_frame: Vec<Duration>,
    /// Each viewer's median delay to its socket: the SFU serves viewers in
    /// turn, so the spread shows what fan-out order costs the last one.
    socket_p50_per_viewer: Vec<Duration>,
    discontinuities: u64,
    keyframes: u64,
}

impl Tally {
    fn of(window: Range<u64>, seen: &[Vec<Seen>]) -> Tally {
        let mut tally = Tally {
            seen_per_viewer: Vec::with_capacity(seen.len()),
            to_socket: Vec::new(),
            to_frame: Vec::new(),
            socket_p50_per_viewer: Vec::with_capacity(seen.len()),
            discontinuities: 0,
            keyframes: 0,
        };
        for frames in seen {
            let mut got = vec![false; (window.end - window.start) as usize];
            let mut to_socket = Vec::new();
            for frame in frames.iter().filter(|f| window.contains(&f.index)) {
                got[(frame.index - window.start) as usize] = true;
                tally.to_frame.push(frame.delay);
                to_socket.extend(frame.to_socket);
                tally.discontinuities += u64::from(!frame.contiguous);
                tally.keyframes += u64::from(frame.keyframe);
            }
            let count = got.iter().filter(|g| **g).count();
            tally.seen_per_viewer.push(count as u64);
            to_socket.sort_unstable();
            tally
                .socket_p50_per_viewer
                .extend(percentile(&to_socket, 0.5));
            tally.to_socket.extend(to_socket);
        }
        tally
    }
}

/// p50, p99 and max of a set of delays, in milliseconds (NaN for none).
#[derive(Debug, Clone, Copy)]
struct Delays {
    p50: f64,
    p99: f64,
    max: f64,
}

impl Delays {
    fn of(mut values: Vec<Duration>) -> Delays {
        values.sort_unstable();
        let ms = |p: f64| percentile(&values, p).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        Delays {
            p50: ms(0.50),
            p99: ms(0.99),
            max: ms(1.0),
        }
    }

    /// Each figure's median over the runs.
    fn median(runs: &[Figures], pick: fn(&Figures) -> Delays) -> Delays {
        Delays {
            p50: median(runs.iter().map(|f| pick(f).p50)),
            p99: median(runs.iter().map(|f| pick(f).p99)),
            max: median(runs.iter().map(|f| pick(f).max)),
        }
    }
}

impl std::fmt::Display for Delays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} / {:.2} / {:.2} ms", self.p50, self.p99, self.max)
    }
}

#[derive(Debug, Clone)]
struct Figures {
    /// From the publisher's offer to every viewer's first frame.
    connect: Duration,
    received_pps: f64,
    forwarded_pps: f64,
    /// Of one core.
    sfu_cpu_pct: f64,
    pps_per_core: f64,
    client_cpu_pct: f64,
    process_cpu_pct: f64,
    /// Everything else the machine did meanwhile: other work skews the figures.
    other_cpu_pct: f64,
    to_socket: Delays,
    to_frame: Delays,
    /// The best and the worst viewer's median delay to its socket, in ms.
    viewer_p50_range: (f64, f64),
    frames_written: u64,
    frames_min_seen: u64,
    frames_mean_seen: f64,
    loss_pct: f64,
    discontinuities: u64,
    keyframes_seen: u64,
    /// Viewers whose first frame was not a keyframe (a decoder would wait).
    delta_starts: usize,
    keyframe_requests: u64,
    /// Since the publisher joined (its first keyframe included).
    keyframe_requests_total: u64,
    send_failures: u64,
    drops: Option<Drops>,
    peak_rss_mb: f64,
}

impl Figures {
    fn new(connect: Duration, before: &Sample, after: &Sample, seen: &[Vec<Seen>]) -> Figures {
        let wall = after.at.duration_since(before.at).as_secs_f64();
        let rate = |count: u64| count as f64 / wall;
        let share = |cpu: Duration| 100.0 * cpu.as_secs_f64() / wall;
        let sfu_cpu = after.sfu_cpu.saturating_sub(before.sfu_cpu);
        let process_cpu = after.process_cpu.saturating_sub(before.process_cpu);
        let machine = after
            .machine_busy
            .zip(before.machine_busy)
            .map(|(a, b)| a.saturating_sub(b));
        let forwarded_pps = rate(after.forwarded - before.forwarded);
        let window = before.frames_written..after.frames_written;
        let frames_written = window.end - window.start;
        let tally = Tally::of(window, seen);
        let total_seen: u64 = tally.seen_per_viewer.iter().sum();
        let expected = frames_written * seen.len() as u64;
        Figures {
            connect,
            received_pps: rate(after.received - before.received),
            forwarded_pps,
            sfu_cpu_pct: share(sfu_cpu),
            pps_per_core: forwarded_pps * wall / sfu_cpu.as_secs_f64(),
            client_cpu_pct: share(after.client_cpu.saturating_sub(before.client_cpu)),
            process_cpu_pct: share(process_cpu),
            other_cpu_pct: machine.map_or(f64::NAN, |m| share(m.saturating_sub(process_cpu))),
            viewer_p50_range: millis_range(&tally.socket_p50_per_viewer),
            to_socket: Delays::of(tally.to_socket),
            to_frame: Delays::of(tally.to_frame),
            frames_written,
            frames_min_seen: tally.seen_per_viewer.iter().copied().min().unwrap_or(0),
            frames_mean_seen: total_seen as f64 / seen.len().max(1) as f64,
            loss_pct: 100.0 * (1.0 - total_seen as f64 / expected as f64),
            discontinuities: tally.discontinuities,
            keyframes_seen: tally.keyframes,
            delta_starts: seen
                .iter()
                .filter(|frames| frames.first().is_some_and(|f| !f.keyframe))
                .count(),
            keyframe_requests: after.keyframe_requests - before.keyframe_requests,
            keyframe_requests_total: after.keyframe_requests,
            send_failures: after.send_failures - before.send_failures,
            drops: after.drops.zip(before.drops).map(|(a, b)| a.since(&b)),
            peak_rss_mb: peak_rss_bytes() as f64 / 1e6,
        }
    }

    fn summary(&self) -> String {
        let drops = self.drops.map_or("n/a".into(), |d| {
            format!("SFU socket {}, client sockets {}", d.sfu, d.clients)
        });
        [
            format!(
                "connected in {:.1} s; {:.0} pkt/s in, {:.0} forwarded; SFU thread {:.1}% of a \
                 core → {:.0} pkt/s per core; client thread {:.1}%; rest of the machine {:.1}%",
                self.connect.as_secs_f64(),
                self.received_pps,
                self.forwarded_pps,
                self.sfu_cpu_pct,
                self.pps_per_core,
                self.client_cpu_pct,
                self.other_cpu_pct,
            ),
            format!(
                "delay p50 / p99 / max to viewer socket {}, to assembled frame {}; p50 of the \
                 best served viewer {:.2} ms, of the worst {:.2} ms",
                self.to_socket, self.to_frame, self.viewer_p50_range.0, self.viewer_p50_range.1,
            ),
            format!(
                "{} frames written, per viewer {} min / {:.1} mean seen ({:.3}% lost, {} after \
                 a sequence gap, {} keyframes); {} viewers started on a delta frame",
                self.frames_written,
                self.frames_min_seen,
                self.frames_mean_seen,
                self.loss_pct,
                self.discontinuities,
                self.keyframes_seen,
                self.delta_starts,
            ),
            format!(
                "keyframe requests {} in the window, {} since joining; receive-buffer drops: \
                 {drops}; client send failures {}",
                self.keyframe_requests, self.keyframe_requests_total, self.send_failures,
            ),
        ]
        .join("\n           ")
    }
}

fn report(bench: &SfuBench, runs: &[Figures]) {
    let med = |field: fn(&Figures) -> f64| median(runs.iter().map(field));
    println!();
    println!("medians of {} run(s):", runs.len());
    println!(
        "| viewers | forwarded pkt/s | SFU thread CPU (of one core) | forwarded pkt/s per core \
         | delay to viewer socket p50 / p99 / max | delay to assembled frame p50 / p99 / max \
         | frames lost | p50 of the best / worst served viewer | client thread CPU | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.0} | {:.1}% | {:.0} | {} | {} | {:.3}% | {:.2} / {:.2} ms | {:.1}% | {:.0} MB |",
        bench.subscribers,
        med(|f| f.forwarded_pps),
        med(|f| f.sfu_cpu_pct),
        med(|f| f.pps_per_core),
        Delays::median(runs, |f| f.to_socket),
        Delays::median(runs, |f| f.to_frame),
        med(|f| f.loss_pct),
        med(|f| f.viewer_p50_range.0),
        med(|f| f.viewer_p50_range.1),
        med(|f| f.client_cpu_pct),
        med(|f| f.peak_rss_mb),
    );
    println!();
    println!(
        "publisher → SFU {:.0} pkt/s; whole process {:.1}% of a core; per viewer {:.0} frames \
         written → {:.0} seen (fewest); keyframe requests reaching the publisher {:.0}; frames \
         after a sequence gap {:.0}",
        med(|f| f.received_pps),
        med(|f| f.process_cpu_pct),
        med(|f| f.frames_written as f64),
        med(|f| f.frames_min_seen as f64),
        med(|f| f.keyframe_requests as f64),
        med(|f| f.discontinuities as f64),
    );
    let busiest = runs.iter().map(|f| f.other_cpu_pct).fold(0.0, f64::max);
    if busiest > BUSY_MACHINE_PCT {
        println!(
            "warning: other work used up to {busiest:.0}% of a core during the windows; \
             the figures are not those of a quiet machine"
        );
    }
}

/// Nearest-rank percentile of sorted values (p = 1 is the largest).
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// The smallest and largest of `values` in milliseconds (NaN for none).
fn millis_range(values: &[Duration]) -> (f64, f64) {
    let ms = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    (ms(values.iter().min()), ms(values.iter().max()))
}

/// The middle value (the upper one of an even count); NaN for none.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

// ---- what the system says ----

/// When the kernel queued the datagram last read from `socket` (real time).
/// On loopback that is when the SFU sent it.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn kernel_arrival(socket: &UdpSocket) -> Option<SystemTime> {
    use std::os::fd::AsRawFd;
    // SIOCGSTAMPNS (asm-generic sockios.h; the libc crate does not name it).
    const SIOCGSTAMPNS: libc::c_ulong = 0x8907;
    let mut stamp = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the fd is a live socket and `stamp` is the timespec the call fills.
    let done = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGSTAMPNS, &mut stamp) };
    if done != 0 || stamp.tv_sec <= 0 {
        return None;
    }
    let since_1970 = Duration::new(stamp.tv_sec as u64, stamp.tv_nsec as u32);
    SystemTime::UNIX_EPOCH.checked_add(since_1970)
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn kernel_arrival(_socket: &UdpSocket) -> Option<SystemTime> {
    None
}

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

/// Busy time of the whole machine, all CPUs (user, nice, system, irq,
/// softirq: not idle, I/O wait or steal), from /proc/stat.
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let busy = [0, 1, 2, 5, 6]
        .iter()
        .map(|i| ticks.get(*i))
        .sum::<Option<u64>>()?;
    Some(Duration::from_secs_f64(
        busy as f64 / clock_ticks_per_second(),
    ))
}

/// Datagrams the kernel dropped because a socket's receive buffer was full.
#[derive(Debug, Clone, Copy, Default)]
struct Drops {
    sfu: u64,
    clients: u64,
}

impl Drops {
    fn since(&self, earlier: &Drops) -> Drops {
        Drops {
            sfu: self.sfu.saturating_sub(earlier.sfu),
            clients: self.clients.saturating_sub(earlier.clients),
        }
    }
}

/// Per-socket drop counters from /proc/net/udp (its last column).
fn socket_drops(sfu: &HashSet<u16>, clients: &HashSet<u16>) -> Option<Drops> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let mut drops = Drops::default();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (_, port) = fields.get(1)?.rsplit_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let dropped: u64 = fields.last()?.parse().ok()?;
        if sfu.contains(&port) {
            drops.sfu += dropped;
        } else if clients.contains(&port) {
            drops.clients += dropped;
        }
    }
    Some(drops)
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

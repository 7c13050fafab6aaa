//! A synthetic participant: GStreamer makes a moving picture and a tone,
//! encodes them (VP8, Opus), and a str0m client publishes them to the
//! server over real WebRTC through WHIP, like any other publisher.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use gstreamer as gst;
use gstreamer::prelude::*;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// How a synthetic participant looks and sounds.
#[derive(Debug, Clone)]
pub struct Persona {
    pub identity: String,
    pub name: String,
    /// videotestsrc `pattern` (a moving one: ball, pinwheel…).
    pub pattern: &'static str,
    /// Big-endian ARGB for the pattern's background and foreground.
    pub colours: (u32, u32),
    pub tone_hz: u32,
}

/// One encoded frame from the synthetic sources.
struct Encoded {
    kind: MediaKind,
    data: Vec<u8>,
    /// Presentation time since the pipeline started.
    pts: Duration,
}

/// A participant publishing until dropped or `leave` is called.
pub struct Participant {
    pub persona: Persona,
    pipeline: gst::Pipeline,
    volume: gst::Element,
    speaking: Arc<AtomicBool>,
    client: tokio::task::JoinHandle<()>,
    location: String,
    http: reqwest::Client,
    token: String,
}

impl Participant {
    /// Encodes, offers through WHIP at `whip_url` with `token`, and starts sending.
    pub async fn join(
        persona: Persona,
        whip_url: &str,
        token: &str,
    ) -> anyhow::Result<Participant> {
        let (frames_tx, frames_rx) = mpsc::channel(256);
        let (pipeline, volume) = build_sources(&persona, frames_tx)?;

        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = Rtc::builder().set_rtp_mode(false).build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        let mut change = rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let audio = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| anyhow!("no SDP changes to offer"))?;

        let http = reqwest::Client::new();
        let response = http
            .post(whip_url)
            .bearer_auth(token)
            .header("content-type", "application/sdp")
            .body(offer.to_sdp_string())
            .send()
            .await
            .with_context(|| format!("WHIP POST to {whip_url}"))?;
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await?;
        if status.as_u16() != 201 {
            return Err(anyhow!("WHIP answered {status}: {body}"));
        }
        let location = location.ok_or_else(|| anyhow!("WHIP answer without Location"))?;
        let answer = SdpAnswer::from_sdp_string(&body).context("the WHIP answer is not SDP")?;
        rtc.sdp_api().accept_answer(pending, answer)?;

        pipeline
            .set_state(gst::State::Playing)
            .context("the synthetic sources do not play")?;
        let speaking = Arc::new(AtomicBool::new(true));
        let client = tokio::spawn(run_client(
            rtc,
            socket,
            local,
            Mids { video, audio },
            frames_rx,
            speaking.clone(),
        ));
        let base = url::Url::parse(whip_url)?;
        Ok(Participant {
            persona,
            pipeline,
            volume,
            speaking,
            client,
            location: base.join(&location)?.to_string(),
            http,
            token: token.to_string(),
        })
    }

    /// Talks (the tone at full level) or stays quiet (near silence).
    pub fn set_speaking(&self, speaking: bool) {
        self.speaking.store(speaking, Ordering::Relaxed);
        self.volume
            .set_property("volume", if speaking { 0.8f64 } else { 0.0f64 });
    }

    pub fn is_speaking(&self) -> bool {
        self.speaking.load(Ordering::Relaxed)
    }

    /// Ends the WHIP session (DELETE) and stops the sources.
    pub async fn leave(self) {
        let _ = self
            .http
            .delete(&self.location)
            .bearer_auth(&self.token)
            .send()
            .await;
        self.client.abort();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// videotestsrc/audiotestsrc → VP8/Opus encoders → appsinks feeding `frames`.
fn build_sources(
    persona: &Persona,
    frames: mpsc::Sender<Encoded>,
) -> anyhow::Result<(gst::Pipeline, gst::Element)> {
    crate::composer::init()?;
    let (background, foreground) = persona.colours;
    let description = format!(
        "videotestsrc is-live=true pattern={pattern} background-color={background} foreground-color={foreground} \
           ! video/x-raw,width=640,height=360,framerate=30/1 \
           ! vp8enc deadline=1 cpu-used=8 target-bitrate=800000 keyframe-max-dist=60 end-usage=cbr \
           ! appsink name=video sync=false max-buffers=30 drop=true emit-signals=false \
         audiotestsrc is-live=true wave=sine freq={tone} \
           ! volume name=volume volume=0.8 ! audioconvert ! audioresample \
           ! audio/x-raw,rate=48000,channels=2 \
           ! opusenc bitrate=64000 frame-size=20 \
           ! appsink name=audio sync=false max-buffers=50 drop=true emit-signals=false",
        pattern = persona.pattern,
        tone = persona.tone_hz,
    );
    let pipeline = gst::parse::launch(&description)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("not a pipeline"))?;
    for (name, kind) in [("video", MediaKind::Video), ("audio", MediaKind::Audio)] {
        let frames = frames.clone();
        crate::composer::read_appsink(&pipeline, name, move |pts, data| {
            // A full queue (the client is behind) drops a frame: never block the encoder.
            let _ = frames.try_send(Encoded {
                kind,
                data: data.to_vec(),
                pts,
            });
        })?;
    }
    let volume = pipeline
        .by_name("volume")
        .ok_or_else(|| anyhow!("volume missing"))?;
    Ok((pipeline, volume))
}

struct Mids {
    video: Mid,
    audio: Mid,
}

/// The client's loop: frames in, datagrams both ways, str0m's timers.
async fn run_client(
    mut rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mids: Mids,
    mut frames: mpsc::Receiver<Encoded>,
    speaking: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let deadline = match drain(&mut rtc, &socket).await {
            Some(deadline) => deadline,
            None => return,
        };
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { return };
                // The RFC 6464 level a browser would send: loud while talking.
                let level = if speaking.load(Ordering::Relaxed) { -20 } else { -127 };
                write_frame(&mut rtc, &mids, &frame, level);
            }
            received = socket.recv_from(&mut buf) => {
                let Ok((len, source)) = received else { continue };
                let Ok(contents) = buf[..len].try_into() else { continue };
                let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: local, contents });
                if rtc.handle_input(input).is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(wait) => {
                if rtc.handle_input(Input::Timeout(Instant::now())).is_err() {
                    return;
                }
            }
        }
    }
}

fn write_frame(rtc: &mut Rtc, mids: &Mids, frame: &Encoded, audio_level: i8) {
    let (mid, codec, frequency) = match frame.kind {
        MediaKind::Video => (mids.video, Codec::Vp8, Frequency::NINETY_KHZ),
        MediaKind::Audio => (mids.audio, Codec::Opus, Frequency::FORTY_EIGHT_KHZ),
    };
    let Some(mut writer) = rtc.writer(mid) else {
        return; // not connected yet
    };
    if frame.kind == MediaKind::Audio {
        writer = writer.audio_level(audio_level, audio_level > -127);
    }
    let Some(pt) = writer
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
    else {
        return;
    };
    let ticks = frame.pts.as_nanos() * u128::from(frequency.get()) / 1_000_000_000;
    let time = MediaTime::new(ticks as u64, frequency);
    if let Err(error) = writer.write(pt, Instant::now(), time, frame.data.clone()) {
        tracing::debug!(%error, "demo participant could not write a frame");
    }
}

/// Sends what str0m has to send; returns when it next needs a timeout, or
/// None when the session is over.
async fn drain(rtc: &mut Rtc, socket: &UdpSocket) -> Option<Instant> {
    loop {
        if !rtc.is_alive() {
            return None;
        }
        match rtc.poll_output() {
            Ok(Output::Timeout(at)) => return Some(at),
            Ok(Output::Transmit(transmit)) => {
                let _ = socket
                    .send_to(&transmit.contents, transmit.destination)
                    .await;
            }
            Ok(Output::Event(Event::IceConnectionStateChange(state))) => {
                tracing::debug!(?state, "demo participant ICE");
            }
            Ok(Output::Event(_)) => {}
            Err(_) => return None,
        }
    }
}

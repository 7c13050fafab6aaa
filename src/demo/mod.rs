//! `onair demo`: the whole product in one command. Starts the server (with
//! its private Postgres), publishes four synthetic participants over real
//! WebRTC through WHIP, goes live through the REST API to an MP4 (and to a
//! local RTMP server when nginx-rtmp is installed), switches layouts, stops,
//! and prints what it made and how fast it went live.

mod participant;
mod rtmp;

pub use rtmp::LocalRtmp;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::auth::{AccessToken, VideoGrant};
use crate::config::{Config, DEV_API_KEY, DEV_API_SECRET};
use participant::{Participant, Persona};

pub struct DemoOptions {
    pub seconds: u64,
    pub room: String,
    pub layout: String,
}

/// The four synthetic people: a moving pattern, colours, a tone and a name each.
fn personas() -> Vec<Persona> {
    [
        (
            "ada",
            "Ada Lovelace",
            "ball",
            (0xff_c0_39_2b, 0xff_ff_ff_ff),
            330,
        ),
        (
            "grace",
            "Grace Hopper",
            "pinwheel",
            (0xff_27_ae_60, 0xff_f1_c4_0f),
            440,
        ),
        (
            "alan",
            "Alan Turing",
            "ball",
            (0xff_29_80_b9, 0xff_f3_9c_12),
            550,
        ),
        (
            "edsger",
            "Edsger Dijkstra",
            "spokes",
            (0xff_8e_44_ad, 0xff_ec_f0_f1),
            660,
        ),
    ]
    .into_iter()
    .map(|(identity, name, pattern, colours, tone_hz)| Persona {
        identity: identity.into(),
        name: name.into(),
        pattern,
        colours,
        tone_hz,
    })
    .collect()
}

fn token(identity: &str, name: &str, grant: VideoGrant) -> anyhow::Result<String> {
    Ok(
        AccessToken::new(DEV_API_KEY, identity, Duration::from_secs(3600))
            .with_grant(grant)
            .with_name(name)
            .sign(DEV_API_SECRET)?,
    )
}

pub async fn run(mut config: Config, options: DemoOptions) -> anyhow::Result<()> {
    // The demo's RTMP destination is its own nginx on 127.0.0.1.
    config.limits.allow_private_destinations = true;
    let base = format!("http://{}", config.server.listen);
    let recordings = config.media.recordings_dir.clone();
    let (stop_server, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::serve_until(config, async {
        let _ = stopped.await;
    }));
    wait_ready(&base, &server).await?;
    let result = live_demo(&base, &recordings, &options).await;
    let _ = stop_server.send(());
    server.await.context("the server task panicked")??;
    result
}

async fn wait_ready(
    base: &str,
    server: &tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if server.is_finished() {
            return Err(anyhow!(
                "the server stopped while starting (see the log above)"
            ));
        }
        if let Ok(response) = reqwest::get(format!("{base}/readyz")).await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!("the server did not become ready within 60 s"))
}

async fn live_demo(base: &str, recordings: &Path, options: &DemoOptions) -> anyhow::Result<()> {
    let rtmp = if LocalRtmp::available() {
        let server = LocalRtmp::start_in(&recordings.join("rtmp-server"))?;
        println!("demo: local RTMP server (nginx-rtmp) at {}", server.url(""));
        Some(server)
    } else {
        println!("demo: nginx with the RTMP module is not installed; recording to MP4 only");
        None
    };
    let whip = format!("{base}/whip/v1");
    let mut people = Vec::new();
    for persona in personas() {
        let grant = VideoGrant {
            room_join: true,
            room: options.room.clone(),
            ..VideoGrant::default()
        };
        let token = token(&persona.identity, &persona.name, grant)?;
        let person = Participant::join(persona, &whip, &token).await?;
        println!("demo: {} joined over WebRTC (WHIP)", person.persona.name);
        people.push(person);
    }
    println!(
        "demo: join the room yourself at {base}/rooms/{}",
        options.room
    );

    let result = go_live(base, recordings, options, rtmp.as_ref(), &people).await;
    for person in people {
        person.leave().await;
    }
    result
}

/// What the go-live took, for the summary.
struct Latency {
    created: Duration,
    active: Duration,
    rtmp_first_bytes: Option<Duration>,
}

async fn go_live(
    base: &str,
    recordings: &Path,
    options: &DemoOptions,
    rtmp: Option<&LocalRtmp>,
    people: &[Participant],
) -> anyhow::Result<()> {
    let api = Api::new(base)?;
    let mut body = json!({ "roomName": options.room, "layout": options.layout });
    if let Some(server) = rtmp {
        body["additionalDestinations"] = json!([{ "type": "custom", "customRtmpUrl": server.url("demo"), "name": "local-rtmp" }]);
    }
    if let Some(server) = rtmp {
        // nginx keeps the last run's file: measure this run's bytes only.
        let _ = std::fs::remove_file(server.recording("demo"));
    }
    let posted = Instant::now();
    // The RTMP server is watched from the moment of the POST, not after its answer.
    let first_bytes = async {
        match rtmp {
            Some(server) => server.first_bytes("demo", Duration::from_secs(15)).await,
            None => None,
        }
    };
    let created = async {
        let created = api
            .send(reqwest::Method::POST, "/api/video/livestream", Some(body))
            .await;
        (created, posted.elapsed())
    };
    let ((created, created_after), rtmp_after) = tokio::join!(created, first_bytes);
    let created = created?;
    let id = created["livestreamId"]
        .as_str()
        .ok_or_else(|| anyhow!("no livestream id: {created}"))?
        .to_string();
    let active_after = api
        .wait_for(&options.room, "active", Duration::from_secs(15))
        .await;
    let latency = Latency {
        created: created_after,
        active: active_after
            .map(|_| posted.elapsed())
            .map_err(|e| anyhow!("never active: {e}"))?,
        rtmp_first_bytes: rtmp_after.map(|at| at.duration_since(posted)),
    };
    println!(
        "demo: live in {:.0} ms (POST → active)",
        latency.active.as_secs_f64() * 1000.0
    );

    run_show(&api, &id, options, people, posted).await?;

    let stopped = api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/video/livestream?id={id}"),
            None,
        )
        .await?;
    let done = api
        .wait_for(&options.room, "completed", Duration::from_secs(30))
        .await?;
    print_summary(&done, &stopped, recordings, rtmp, &latency);
    Ok(())
}

/// The running show: rotates who speaks, switches layouts at thirds of the
/// run, and prints progress every second.
async fn run_show(
    api: &Api,
    id: &str,
    options: &DemoOptions,
    people: &[Participant],
    posted: Instant,
) -> anyhow::Result<()> {
    let total = Duration::from_secs(options.seconds);
    let layouts = ["gallery", "active-speaker", "crop"];
    let mut shown = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let elapsed = posted.elapsed();
        if elapsed >= total {
            return Ok(());
        }
        // One person talks at a time, for three seconds each.
        let talker = (elapsed.as_secs() / 3) as usize % people.len();
        for (n, person) in people.iter().enumerate() {
            if person.is_speaking() != (n == talker) {
                person.set_speaking(n == talker);
            }
        }
        let third = ((elapsed.as_secs_f64() / total.as_secs_f64()) * 3.0) as usize;
        if third > shown && third < layouts.len() {
            shown = third;
            api.send(
                reqwest::Method::PATCH,
                &format!("/api/video/livestream/{id}"),
                Some(json!({ "layout": layouts[shown] })),
            )
            .await?;
            println!("demo: layout → {}", layouts[shown]);
        }
        let status = api.status(&options.room).await.unwrap_or(Value::Null);
        // Average bit rate since going live (outputs report bytes every 2 s).
        let seconds = elapsed.as_secs_f64().max(1.0);
        let outputs: Vec<String> = status["outputs"]
            .as_array()
            .map(|outputs| {
                outputs
                    .iter()
                    .map(|o| {
                        let bytes = o["bytes"].as_u64().unwrap_or(0);
                        format!(
                            "{} {} kB {:.0} kbit/s",
                            o["name"].as_str().unwrap_or("?"),
                            bytes / 1000,
                            bytes as f64 * 8.0 / 1000.0 / seconds
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let frames = crate::metrics::global().program_frames.get(&["produced"]);
        println!(
            "demo: {:>3.0} s  {}  {frames} frames  speaking: {}  {}",
            elapsed.as_secs_f64(),
            status["status"].as_str().unwrap_or("?"),
            people[talker].persona.name,
            outputs.join(", ")
        );
    }
}

fn print_summary(
    done: &Value,
    stopped: &Value,
    recordings: &Path,
    rtmp: Option<&LocalRtmp>,
    latency: &Latency,
) {
    println!();
    println!(
        "demo: livestream {} is {}",
        done["livestreamId"].as_str().unwrap_or("?"),
        done["status"].as_str().unwrap_or("?")
    );
    let transitions: Vec<&str> = done["events"]
        .as_array()
        .map(|events| events.iter().filter_map(|e| e["to"].as_str()).collect())
        .unwrap_or_default();
    println!("  states:     {}", transitions.join(" → "));
    println!(
        "  go-live:    POST answered in {:.0} ms, active after {:.0} ms",
        ms(latency.created),
        ms(latency.active)
    );
    if let Some(first) = latency.rtmp_first_bytes {
        println!(
            "              first program bytes at the RTMP server after {:.0} ms",
            ms(first)
        );
    }
    let _ = stopped;
    if let Some(mp4) = done["outputs"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["kind"] == "mp4"))
    {
        let path = PathBuf::from(mp4["url"].as_str().unwrap_or_default());
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir().unwrap_or_default().join(path)
        };
        println!("  recording:  {}", path.display());
        println!("              {}", describe(&path));
    } else {
        println!(
            "  recording:  none (recordings go to {})",
            recordings.display()
        );
    }
    if let Some(server) = rtmp {
        let flv = server.recording("demo");
        println!("  RTMP copy:  {}", flv.display());
        println!("              {}", describe(&flv));
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Codecs, size and duration as ffprobe sees them.
fn describe(path: &Path) -> String {
    let output = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height:format=duration,size",
            "-of",
            "json",
        ])
        .arg(path)
        .output();
    let Ok(output) = output.map_err(|e| e.to_string()).and_then(|o| {
        if o.status.success() {
            Ok(o.stdout)
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }) else {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        return format!("{size} bytes (install ffmpeg for a probe)");
    };
    let probed: Value = serde_json::from_slice(&output).unwrap_or(Value::Null);
    let streams: Vec<String> = probed["streams"]
        .as_array()
        .map(|streams| {
            streams
                .iter()
                .map(|s| match s["codec_type"].as_str() {
                    Some("video") => format!(
                        "{} {}x{}",
                        s["codec_name"].as_str().unwrap_or("?"),
                        s["width"],
                        s["height"]
                    ),
                    _ => s["codec_name"].as_str().unwrap_or("?").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let seconds: f64 = probed["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    let bytes: f64 = probed["format"]["size"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    format!(
        "{} · {:.1} s · {:.1} MB",
        streams.join(" + "),
        seconds,
        bytes / 1e6
    )
}

/// The REST API as a user calls it, with a recorder token.
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(base: &str) -> anyhow::Result<Api> {
        let grant = VideoGrant {
            room_record: true,
            ..VideoGrant::default()
        };
        Ok(Api {
            base: base.to_string(),
            token: token("demo-producer", "onair demo", grant)?,
            http: reqwest::Client::new(),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(anyhow!("{method} {path} answered {status}: {body}"));
        }
        Ok(body)
    }

    async fn status(&self, room: &str) -> anyhow::Result<Value> {
        self.send(
            reqwest::Method::GET,
            &format!("/api/video/livestream/status?roomName={room}"),
            None,
        )
        .await
    }

    /// Polls often: the time to `active` is one of the demo's figures.
    async fn wait_for(&self, room: &str, state: &str, within: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(room).await?;
            if status["status"] == state {
                return Ok(status);
            }
            if status["status"] == "failed" {
                return Err(anyhow!("the livestream failed: {}", status["error"]));
            }
            if Instant::now() > deadline {
                return Err(anyhow!("not {state} within {within:?}: {status}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

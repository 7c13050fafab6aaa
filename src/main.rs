//! The `onair` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use onair::auth::{AccessToken, VideoGrant};
use onair::config::{CliOverrides, Config};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "onair",
    version,
    about = "Self-hosted broadcast composition service"
)]
struct Cli {
    /// A TOML file layered over the built-in defaults (also ONAIR_CONFIG).
    #[arg(long, global = true, env = "ONAIR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// Development mode: enables the devkey/secret API key pair.
        #[arg(long)]
        dev: bool,
        /// Listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Go live with a synthetic room: four WebRTC participants, the REST
    /// API, an MP4 (and a local RTMP server when nginx-rtmp is installed).
    Demo {
        /// Seconds on air.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value = "demo")]
        room: String,
        /// The first layout; the demo then switches to active-speaker and crop.
        #[arg(long, default_value = "gallery")]
        layout: String,
        /// Listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[arg(long)]
        dev: bool,
    },
    /// Benchmarks (figures, not tests).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Layout tools.
    Layout {
        #[command(subcommand)]
        command: LayoutCommand,
    },
    /// Access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Composition CPU and memory next to a bare gst-launch-1.0 pipeline.
    Compose(ComposeBenchArgs),
    /// The composer side of `compose`, run as a child process.
    #[command(hide = true)]
    ComposeWorker(ComposeBenchArgs),
    /// SFU forwarding: one publisher to K WebRTC viewers on loopback.
    Sfu(SfuBenchArgs),
}

#[derive(Args)]
struct ComposeBenchArgs {
    /// Participants, each 640x360 VP8 + Opus.
    #[arg(long, default_value_t = 4)]
    inputs: usize,
    /// Program size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    size: String,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Program seconds to produce.
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// Runs of each side (alternating); medians are compared.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Where inputs (reused between runs) and outputs go.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

impl ComposeBenchArgs {
    fn bench(&self) -> anyhow::Result<onair::bench::ComposeBench> {
        anyhow::ensure!((1..=25).contains(&self.inputs), "--inputs must be 1 to 25");
        anyhow::ensure!(
            (1..=3600).contains(&self.seconds),
            "--seconds must be 1 to 3600"
        );
        anyhow::ensure!((1..=60).contains(&self.fps), "--fps must be 1 to 60");
        anyhow::ensure!((1..=15).contains(&self.runs), "--runs must be 1 to 15");
        Ok(onair::bench::ComposeBench {
            inputs: self.inputs,
            canvas: onair::bench::parse_size(&self.size)?,
            fps: self.fps,
            seconds: self.seconds,
            runs: self.runs,
            work_dir: self
                .work_dir
                .clone()
                .unwrap_or_else(onair::bench::default_work_dir),
        })
    }
}

#[derive(Args)]
struct SfuBenchArgs {
    /// WHEP viewers of the one publisher.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Length of the measured window (after connecting and a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// The publisher's video bitrate.
    #[arg(long, default_value_t = 2500)]
    bitrate_kbps: u32,
    /// The publisher's frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Independent runs, each with a fresh SFU; medians are reported.
    #[arg(long, default_value_t = 1)]
    runs: u32,
}

impl SfuBenchArgs {
    fn bench(&self) -> anyhow::Result<onair::bench::SfuBench> {
        anyhow::ensure!(
            (1..=500).contains(&self.subscribers),
            "--subscribers must be 1 to 500"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.seconds),
            "--seconds must be 1 to 3600"
        );
        anyhow::ensure!(
            (10..=100_000).contains(&self.bitrate_kbps),
            "--bitrate-kbps must be 10 to 100000"
        );
        anyhow::ensure!((1..=120).contains(&self.fps), "--fps must be 1 to 120");
        anyhow::ensure!((1..=15).contains(&self.runs), "--runs must be 1 to 15");
        Ok(onair::bench::SfuBench {
            subscribers: self.subscribers,
            seconds: self.seconds,
            bitrate_kbps: self.bitrate_kbps,
            fps: self.fps,
            runs: self.runs,
        })
    }
}

#[derive(Subcommand)]
enum LayoutCommand {
    /// Write a preview PNG of a layout for a synthetic room.
    Render(LayoutRenderCli),
}

#[derive(Args)]
struct LayoutRenderCli {
    /// Layout name: gallery, active-speaker, crop, grid[-light|-dark],
    /// speaker[-light|-dark], single-speaker[-light|-dark].
    #[arg(long, default_value = "gallery")]
    layout: String,
    /// Number of participants, 1 to 25.
    #[arg(long, default_value_t = 4)]
    participants: usize,
    /// The first participant also shares a 1920x1080 screen.
    #[arg(long)]
    screen_share: bool,
    /// The active speaker, 1-based.
    #[arg(long)]
    speaker: Option<usize>,
    /// Canvas size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080")]
    size: String,
    /// Where to write the PNG.
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a LiveKit-compatible access token.
    Create(TokenArgs),
}

#[derive(Args)]
struct TokenArgs {
    #[arg(long)]
    room: Option<String>,
    #[arg(long)]
    identity: String,
    #[arg(long)]
    name: Option<String>,
    /// Allow publishing (sets canPublish).
    #[arg(long)]
    publish: bool,
    /// Allow subscribing (sets canSubscribe).
    #[arg(long)]
    subscribe: bool,
    /// Room administration (roomAdmin, roomList, roomCreate).
    #[arg(long)]
    admin: bool,
    /// Go-live and recording (roomRecord).
    #[arg(long)]
    record: bool,
    /// How long the token is valid, e.g. 30m, 1h, 2d.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    valid_for: Duration,
    /// API key to sign with (default: the only configured key, or devkey in dev mode).
    #[arg(long)]
    api_key: Option<String>,
    #[arg(long)]
    dev: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo talks to a person on stdout: only warnings from the log there.
    let default_log = match cli.command {
        Command::Demo { .. } => "warn",
        _ => "info,sqlx=warn,tower_http=info",
    };
    init_tracing(default_log);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("onair: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let load = |dev: bool, listen| {
        let overrides = CliOverrides {
            dev: dev.then_some(true),
            listen,
        };
        Config::load(cli.config.as_deref(), &overrides)
    };
    match cli.command {
        Command::Serve { dev, listen } => {
            let config = load(dev, listen)?;
            runtime()?.block_on(onair::server::serve(config))
        }
        Command::Demo {
            seconds,
            room,
            layout,
            listen,
        } => {
            let config = load(true, listen)?;
            let options = onair::demo::DemoOptions {
                seconds,
                room,
                layout,
            };
            runtime()?.block_on(onair::demo::run(config, options))
        }
        Command::Migrate { dev } => {
            let config = load(dev, None)?;
            runtime()?.block_on(async {
                let database = onair::server::Database::open(&config).await?;
                let result = database.store.migrate().await;
                database.close().await;
                result?;
                println!("migrations applied");
                Ok(())
            })
        }
        Command::Bench {
            command: BenchCommand::Compose(args),
        } => onair::bench::run_compose(&args.bench()?),
        Command::Bench {
            command: BenchCommand::ComposeWorker(args),
        } => onair::bench::run_compose_worker(&args.bench()?),
        Command::Bench {
            command: BenchCommand::Sfu(args),
        } => onair::bench::run_sfu(&args.bench()?),
        Command::Layout {
            command: LayoutCommand::Render(args),
        } => {
            onair::render::cli::render_layout_png(&onair::render::cli::LayoutRenderArgs {
                layout: args.layout,
                participants: args.participants,
                screen_share: args.screen_share,
                speaker: args.speaker,
                size: args.size,
                output: args.output.clone(),
            })?;
            println!("wrote {}", args.output.display());
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create(args),
        } => {
            let config = load(args.dev, None)?;
            println!("{}", create_token(&config, &args)?);
            Ok(())
        }
    }
}

fn create_token(config: &Config, args: &TokenArgs) -> anyhow::Result<String> {
    let api_key = match &args.api_key {
        Some(key) => key.clone(),
        None if config.keys.len() == 1 => config.keys.keys().next().cloned().unwrap_or_default(),
        None => anyhow::bail!(
            "several API keys are configured; choose one with --api-key ({})",
            config.keys.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    let secret = config
        .keys
        .get(&api_key)
        .ok_or_else(|| anyhow::anyhow!("API key `{api_key}` is not configured"))?;
    let room = args.room.clone().unwrap_or_default();
    let grant = VideoGrant {
        room_join: !room.is_empty(),
        room,
        can_publish: Some(args.publish),
        can_subscribe: Some(args.subscribe),
        can_publish_data: Some(args.publish),
        room_admin: args.admin,
        room_list: args.admin,
        room_create: args.admin,
        room_record: args.record,
        ..VideoGrant::default()
    };
    let mut token = AccessToken::new(&api_key, &args.identity, args.valid_for).with_grant(grant);
    if let Some(name) = &args.name {
        token = token.with_name(name);
    }
    Ok(token.sign(secret.expose())?)
}

/// `90s`, `30m`, `1h`, `2d`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30m, 1h or 2d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("unknown duration unit `{unit}` (use s, m, h or d)")),
    };
    Ok(Duration::from_secs(number * seconds))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_env("ONAIR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

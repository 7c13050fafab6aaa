//! The `onair` binary: `serve` on the embedded Postgres, `demo`, `token
//! create`, `migrate`, and configuration errors.

mod common;

use common::free_port;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_onair");

fn onair() -> Command {
    let mut command = Command::new(BIN);
    // Start from a clean slate whatever the developer's shell has set.
    for (key, _) in std::env::vars() {
        if key.starts_with("ONAIR_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
}

/// A temporary directory the `postgres` service user can enter (when we are root).
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

async fn get(url: &str) -> Option<reqwest::StatusCode> {
    reqwest::get(url).await.ok().map(|r| r.status())
}

#[tokio::test]
async fn serve_without_database_url_starts_a_private_postgres() {
    let dir = open_tempdir();
    let data = dir.path().join("pg");
    let port = free_port();
    let mut child = onair()
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
        .env("ONAIR_DATABASE__EMBEDDED_DIR", &data)
        .env("ONAIR_SFU__UDP_PORT", "0")
        .env("ONAIR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let mut healthy = false;
    while started.elapsed() < Duration::from_secs(30) {
        if get(&format!("{base}/healthz")).await == Some(reqwest::StatusCode::OK) {
            healthy = true;
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            panic!(
                "onair exited early ({status}): {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healthy, "/healthz did not answer 200 within 30 s");
    assert_eq!(
        get(&format!("{base}/readyz")).await,
        Some(reqwest::StatusCode::OK)
    );
    assert!(data.join("PG_VERSION").exists());
    assert!(data.join("postmaster.pid").exists());

    // The API is there and authenticated.
    let unauthenticated = reqwest::get(format!("{base}/api/video/livestream"))
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), reqwest::StatusCode::UNAUTHORIZED);

    // SIGTERM: graceful shutdown stops the private Postgres too.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {}: {log}", output.status);
    assert!(
        log.contains("DEVELOPMENT MODE"),
        "dev mode must be announced: {log}"
    );
    assert!(log.contains("private Postgres stopped"), "{log}");
    assert!(
        !data.join("postmaster.pid").exists(),
        "Postgres still running"
    );
}

#[test]
fn a_bad_config_value_exits_non_zero_naming_the_key() {
    let cases = [
        ("ONAIR_LIMITS__MAX_LIVESTREAMS", "lots", "max_livestreams"),
        (
            "ONAIR_SERVER__PUBLIC_URL",
            "ftp://nowhere",
            "server.public_url",
        ),
        ("ONAIR_KEYS", "broken", "ONAIR_KEYS"),
    ];
    for (var, value, named) in cases {
        let output = onair()
            .args(["serve", "--dev"])
            .env(var, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{var}={value} was accepted");
        assert!(
            stderr.to_lowercase().contains(&named.to_lowercase()),
            "{var}: {stderr}"
        );
    }
    let output = onair().arg("serve").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no API keys configured"));
}

#[test]
fn token_create_prints_a_token_the_server_accepts() {
    let output = onair()
        .args([
            "token",
            "create",
            "--room",
            "studio",
            "--identity",
            "ann",
            "--name",
            "Ann",
            "--publish",
            "--record",
            "--valid-for",
            "2h",
        ])
        .env("ONAIR_KEYS", "k1: a-long-enough-secret-for-this-test-1234")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let keys = onair::auth::KeyRing::new(
        [(
            "k1".to_string(),
            onair::config::Secret::new("a-long-enough-secret-for-this-test-1234"),
        )]
        .into(),
    );
    let claims = keys.verify_token(&token).unwrap();
    assert_eq!(
        (
            claims.iss.as_str(),
            claims.sub.as_str(),
            claims.name.as_str()
        ),
        ("k1", "ann", "Ann")
    );
    assert!(claims.video.room_join && claims.video.room_record);
    assert_eq!(claims.video.room, "studio");
    assert_eq!(claims.video.can_publish, Some(true));
    assert_eq!(claims.video.can_subscribe, Some(false));
    assert!((7190..=7200).contains(&(claims.exp - claims.nbf.unwrap())));

    let bad = onair()
        .args([
            "token",
            "create",
            "--identity",
            "x",
            "--dev",
            "--valid-for",
            "soon",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn migrate_applies_migrations_to_database_url() {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        panic!("DATABASE_URL must point at a Postgres for this test (scripts/test sets it)");
    };
    // A fresh database so the run starts from empty.
    let name = format!("onair_cli_{}", std::process::id());
    let psql = |sql: String| {
        let status = Command::new("psql")
            .args([base.as_str(), "-qc", &sql])
            .status()
            .unwrap();
        assert!(status.success(), "{sql}");
    };
    psql(format!("DROP DATABASE IF EXISTS {name}"));
    psql(format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let output = onair()
        .args(["migrate", "--dev"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    let tables = Command::new("psql")
        .args([
            &url,
            "-tAc",
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'livestream%'",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tables.stdout).trim(), "3");
    psql(format!("DROP DATABASE {name}"));
}

/// A demo runs four encoders, the SFU and a composer in real time: two at
/// once would starve each other on a small machine, so they take turns.
static ONE_DEMO_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn demo_goes_live_with_four_webrtc_participants_and_reports_the_recording() {
    let _turn = ONE_DEMO_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = open_tempdir();
    let output = onair()
        .args([
            "demo",
            "--seconds",
            "7",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .current_dir(dir.path())
        .env("ONAIR_SFU__UDP_PORT", "0")
        .env("ONAIR_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed: {stdout}\n{stderr}");
    println!("{stdout}");
    for expected in [
        "Ada Lovelace joined over WebRTC (WHIP)",
        "Edsger Dijkstra joined over WebRTC (WHIP)",
        "/rooms/demo",
        "layout → active-speaker",
        "layout → crop",
        "idle → starting → active → stopping → completed",
        "first program bytes at the RTMP server",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    // The recording is where the summary says, and probes as the program.
    let recording = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("recording:"))
        .map(|p| std::path::PathBuf::from(p.trim()))
        .expect("the summary names the recording");
    assert!(
        recording.starts_with(dir.path().canonicalize().unwrap())
            || recording.starts_with(dir.path())
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&recording)
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&probe.stdout);
    assert!(
        streams.contains("h264,1280,720") && streams.contains("aac"),
        "{streams}"
    );
    assert!(stdout.contains("h264 1280x720 + aac"), "{stdout}");
}

/// The demo's private nginx runs in its own process group and outlives a
/// demo killed with SIGKILL: end it, as the demo's own shutdown would (one
/// was left running per test run).
fn kill_orphaned_nginx(dir: &std::path::Path) {
    let dir = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // The master names its configuration, which lives under `dir`.
        if cmdline.starts_with("nginx: master") && cmdline.contains(&dir) {
            let group = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// A recording survives the process being killed mid-program (SIGKILL, as a
/// crash or power loss): the fragmented MP4 plays up to its last fragments.
#[test]
fn a_killed_server_leaves_a_playable_recording() {
    let _turn = ONE_DEMO_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    use std::io::{BufRead, BufReader};
    let dir = open_tempdir();
    let mut child = onair()
        .args([
            "demo",
            "--seconds",
            "60",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .current_dir(dir.path())
        .env("ONAIR_SFU__UDP_PORT", "0")
        .env("ONAIR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    // Ten progress lines after going live: ten seconds on air.
    let mut seconds_live = 0;
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.starts_with("demo:") && line.contains(" s  active") {
            seconds_live += 1;
            if seconds_live == 10 {
                break;
            }
        }
    }
    assert_eq!(seconds_live, 10, "the demo did not stay live");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    kill_orphaned_nginx(dir.path());

    let recordings = dir.path().join("recordings");
    let mp4 = std::fs::read_dir(&recordings)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "mp4"))
        .expect("an MP4 was being written");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&mp4)
        .output()
        .unwrap();
    let seconds: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    // 1 s fragments: at most the last second is lost.
    assert!(seconds >= 8.0, "only {seconds:.1} s survived the crash");
    // Every frame up to there decodes.
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&mp4)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decode.status.success(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );
    // The killed server's private Postgres is left running: stop it
    // (SIGQUIT = immediate shutdown) so the temporary directory can go.
    let pid_file = dir.path().join("data/postgres/postmaster.pid");
    if let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGQUIT,
        );
    }
}

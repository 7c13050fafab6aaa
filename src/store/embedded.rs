//! A private Postgres started from the machine's own binaries, so that a
//! newcomer needs no database set-up: `initdb` once into a data directory,
//! then `pg_ctl start` listening only on a Unix socket inside that directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use tokio::process::Command;

const SUPERUSER: &str = "onair";
const DATABASE: &str = "onair";
/// Only names the socket file; nothing listens on TCP.
const PORT: u16 = 5432;
/// Unix socket paths are limited to 107 bytes on Linux.
const MAX_SOCKET_PATH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no Postgres binaries found (looked for initdb/pg_ctl on PATH and in /usr/lib/postgresql/*/bin); install postgresql or set DATABASE_URL"
    )]
    NoBinaries,
    #[error(
        "running as root, but there is no `postgres` system user to run the private Postgres as; create one or set DATABASE_URL"
    )]
    NoServiceUser,
    #[error("{0}")]
    Io(String),
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
}

/// A running private Postgres; call [`EmbeddedPostgres::stop`] on shutdown.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    /// `(uid, gid)` to run Postgres as, when we are root (Postgres refuses root).
    run_as: Option<(u32, u32)>,
}

impl EmbeddedPostgres {
    /// Initializes `data_dir` if needed and starts Postgres there (or adopts one
    /// already running from an earlier, killed run).
    pub async fn start(data_dir: &Path) -> Result<EmbeddedPostgres, EmbeddedError> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedError::NoBinaries)?;
        let run_as = service_user()?;
        let data_dir = prepare_data_dir(data_dir, run_as)?;
        if data_dir.join(".s.PGSQL.5432").as_os_str().len() > MAX_SOCKET_PATH {
            return Err(EmbeddedError::Io(format!(
                "embedded database directory {} is too long for a Unix socket path; choose a shorter database.embedded_dir",
                data_dir.display()
            )));
        }
        let pg = EmbeddedPostgres {
            bin_dir,
            data_dir,
            run_as,
        };
        if !pg.data_dir.join("PG_VERSION").exists() {
            tracing::info!(dir = %pg.data_dir.display(), "initializing private Postgres");
            pg.run(
                "initdb",
                [
                    OsStr::new("-D"),
                    pg.data_dir.as_os_str(),
                    OsStr::new("-U"),
                    OsStr::new(SUPERUSER),
                    OsStr::new("-A"),
                    OsStr::new("trust"),
                    OsStr::new("-E"),
                    OsStr::new("UTF8"),
                    OsStr::new("--locale=C"),
                ],
            )
            .await?;
        }
        if pg.is_running().await {
            tracing::warn!(dir = %pg.data_dir.display(), "adopting a private Postgres left running by an earlier run");
        } else {
            let options = format!(
                "-c listen_addresses='' -c unix_socket_directories='{}' -p {PORT}",
                pg.data_dir.display()
            );
            let log = pg.data_dir.join("postgres.log");
            pg.run(
                "pg_ctl",
                [
                    OsStr::new("start"),
                    OsStr::new("-D"),
                    pg.data_dir.as_os_str(),
                    OsStr::new("-w"),
                    OsStr::new("-t"),
                    OsStr::new("60"),
                    OsStr::new("-l"),
                    log.as_os_str(),
                    OsStr::new("-o"),
                    OsStr::new(&options),
                ],
            )
            .await?;
        }
        pg.ensure_database().await?;
        tracing::info!(dir = %pg.data_dir.display(), "private Postgres is up");
        Ok(pg)
    }

    /// How to connect: the Unix socket in the data directory, database `onair`.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options_for(DATABASE)
    }

    fn options_for(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.data_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// Stops Postgres with a fast shutdown (clean checkpoint, clients disconnected).
    pub async fn stop(&self) -> Result<(), EmbeddedError> {
        self.run(
            "pg_ctl",
            [
                OsStr::new("stop"),
                OsStr::new("-D"),
                self.data_dir.as_os_str(),
                OsStr::new("-m"),
                OsStr::new("fast"),
                OsStr::new("-w"),
            ],
        )
        .await?;
        tracing::info!("private Postgres stopped");
        Ok(())
    }

    async fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.data_dir)
            .output()
            .await
            .is_ok_and(|o| o.status.success())
    }

    async fn ensure_database(&self) -> Result<(), EmbeddedError> {
        use sqlx::{ConnectOptions, Connection};
        let fail = |e: sqlx::Error| EmbeddedError::Io(format!("private Postgres: {e}"));
        let mut conn = self.options_for("postgres").connect().await.map_err(fail)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await
                .map_err(fail)?;
        if !exists {
            sqlx::query("CREATE DATABASE onair")
                .execute(&mut conn)
                .await
                .map_err(fail)?;
        }
        conn.close().await.map_err(fail)
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
            // The service user cannot read root's working directory.
            command.current_dir(&self.data_dir);
        }
        command
    }

    async fn run<I, S>(&self, program: &str, args: I) -> Result<(), EmbeddedError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let rendered = format!(
            "{program} {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let output = tokio::time::timeout(
            Duration::from_secs(120),
            self.command(program).args(&args).output(),
        )
        .await
        .map_err(|_| EmbeddedError::Io(format!("`{rendered}` timed out")))?
        .map_err(|e| EmbeddedError::Io(format!("cannot run {program}: {e}")))?;
        if output.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        }
        if let Ok(log) = std::fs::read_to_string(self.data_dir.join("postgres.log")) {
            let tail: Vec<_> = log.lines().rev().take(5).collect();
            text.push_str(&format!(
                "\n  postgres.log: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
            ));
        }
        Err(EmbeddedError::Command {
            command: rendered,
            output: text,
        })
    }
}

/// `initdb` and `pg_ctl` from PATH, else the newest `/usr/lib/postgresql/N/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| has_tools(dir))
}

/// Postgres will not run as root: when we are root, run it as `postgres`.
fn service_user() -> Result<Option<(u32, u32)>, EmbeddedError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .ok_or(EmbeddedError::NoServiceUser)?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}

/// Creates the directory (mode 0700, owned by the user Postgres runs as) and
/// returns its absolute path.
fn prepare_data_dir(dir: &Path, run_as: Option<(u32, u32)>) -> Result<PathBuf, EmbeddedError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |what: &str, e: std::io::Error| {
        EmbeddedError::Io(format!(
            "embedded database directory {}: {what}: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", e))?;
    let dir = dir.canonicalize().map_err(|e| io("cannot resolve", e))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io("cannot set permissions", e))?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| io("cannot chown", e))?;
        if let Some(blocked) = untraversable_ancestor(&dir) {
            return Err(EmbeddedError::Io(format!(
                "the `postgres` user cannot reach {} because {} is closed to other users; set database.embedded_dir (ONAIR_DATABASE__EMBEDDED_DIR) to a directory outside it, e.g. /var/lib/onair/postgres",
                dir.display(),
                blocked.display()
            )));
        }
    }
    Ok(dir)
}

/// The first ancestor that other users may not enter (no `o+x`).
fn untraversable_ancestor(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors()
        .skip(1)
        .find(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 == 0))
        .map(Path::to_path_buf)
}

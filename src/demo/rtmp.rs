//! A private nginx-rtmp server (Debian's `libnginx-mod-rtmp`) that records
//! every stream it receives to FLV: the demo's "platform", and the tests'.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

const MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

pub struct LocalRtmp {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl LocalRtmp {
    /// Whether nginx and its RTMP module are installed here.
    pub fn available() -> bool {
        Path::new(MODULE).exists() && Command::new("nginx").arg("-v").output().is_ok()
    }

    /// Starts nginx on a free loopback port, keeping its files in `dir`.
    pub fn start_in(dir: &Path) -> anyhow::Result<LocalRtmp> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        LocalRtmp::start_on(dir, port)
    }

    /// Starts nginx on `port` (e.g. again after [`LocalRtmp::stop`]).
    pub fn start_on(dir: &Path, port: u16) -> anyhow::Result<LocalRtmp> {
        if !LocalRtmp::available() {
            return Err(anyhow!(
                "install nginx and libnginx-mod-rtmp (scripts/setup does)"
            ));
        }
        std::fs::create_dir_all(dir.join("records"))?;
        std::fs::create_dir_all(dir.join("logs"))?;
        let dir = dir.canonicalize()?;
        // `user root` lets the workers write the recordings when we run as root.
        let user = if nix::unistd::getuid().is_root() {
            "user root;"
        } else {
            ""
        };
        let config = format!(
            "load_module {MODULE};\n{user}\nworker_processes 1;\ndaemon off;\npid {root}/nginx.pid;\n\
             error_log {root}/logs/error.log info;\nevents {{ worker_connections 64; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n\
               application live {{ live on; record all; record_path {root}/records; record_unique off; }} }} }}\n",
            root = dir.display()
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config)?;
        // Its own process group, so the workers die with the master.
        let child = Command::new("nginx")
            .process_group(0)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("nginx did not start")?;
        let mut server = LocalRtmp { port, dir, child };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) || server.child.try_wait()?.is_some() {
                return Err(anyhow!(
                    "nginx-rtmp did not listen (see {})",
                    server.dir.join("logs").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }

    /// nginx records `<key>.flv`.
    pub fn recording(&self, key: &str) -> PathBuf {
        self.dir.join("records").join(format!("{key}.flv"))
    }

    /// When program data for `key` first reached the server's disk: more
    /// than the FLV header and metadata, i.e. audio/video tags.
    pub async fn first_bytes(&self, key: &str, within: Duration) -> Option<Instant> {
        let path = self.recording(key);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > 1024) {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }
}

impl LocalRtmp {
    /// Kills the server (master and workers) at once, as a crash would.
    /// The server's process group (nginx's master and workers).
    pub fn process_group(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for LocalRtmp {
    fn drop(&mut self) {
        // nginx's workers outlive a killed master: kill the whole group.
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

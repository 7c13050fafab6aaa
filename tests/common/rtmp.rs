//! A real RTMP server for tests: the demo's private nginx-rtmp, recording
//! every stream it receives to FLV files in a temporary directory.
#![allow(dead_code)]

use std::path::PathBuf;

use onair::demo::LocalRtmp;

pub struct NginxRtmp {
    server: Option<LocalRtmp>,
    pub port: u16,
    /// Dropped after the server (field order): nginx stops before its files go.
    pub dir: tempfile::TempDir,
}

impl NginxRtmp {
    pub fn start() -> NginxRtmp {
        let dir = tempfile::tempdir().unwrap();
        let server = LocalRtmp::start_in(dir.path()).expect("nginx-rtmp starts");
        NginxRtmp {
            port: server.port,
            server: Some(server),
            dir,
        }
    }

    /// Kills the server (as a crash would); its recordings stay.
    pub fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is
    /// read any more, like a hung ingest.
    pub fn freeze(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let server = self.server.as_ref().expect("running");
        let group = nix::unistd::Pid::from_raw(server.process_group() as i32);
        nix::sys::signal::killpg(group, signal).expect("signal nginx");
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let server = LocalRtmp::start_on(self.dir.path(), self.port).expect("nginx-rtmp restarts");
        self.server = Some(server);
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }

    /// nginx records `<key>.flv`.
    pub fn recording(&self, key: &str) -> PathBuf {
        self.dir
            .path()
            .canonicalize()
            .unwrap()
            .join("records")
            .join(format!("{key}.flv"))
    }
}

/// A TLS front (socat) for an RTMP server: `rtmps://` on its own port with
/// a freshly made self-signed certificate.
pub struct TlsFront {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    pub fn start(to_port: u16) -> TlsFront {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("server.pem");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(made.success());
        let mut both = std::fs::read(&key).unwrap();
        both.extend(std::fs::read(&cert).unwrap());
        std::fs::write(&pem, both).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,cert={},verify=0,reuseaddr,fork",
                pem.display()
            ))
            .arg(format!("TCP:127.0.0.1:{to_port}"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("socat starts (scripts/setup installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "socat did not listen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        TlsFront {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

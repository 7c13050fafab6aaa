//! A real RTMP server for tests: the demo's private nginx-rtmp, recording
//! every stream it receives to FLV files in a temporary directory.
#![allow(dead_code)]

use std::path::PathBuf;

use onair::demo::LocalRtmp;

pub struct NginxRtmp {
    server: LocalRtmp,
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
            server,
            dir,
        }
    }

    pub fn url(&self, key: &str) -> String {
        self.server.url(key)
    }

    /// nginx records `<key>.flv`.
    pub fn recording(&self, key: &str) -> PathBuf {
        self.server.recording(key)
    }
}

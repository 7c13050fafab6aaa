//! A real S3-compatible server for tests: `s3s-fs` 0.14.1 (installed by
//! scripts/s3-server), storing objects as files in a temporary directory so
//! it can be stopped and restarted without losing them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;
use onair::config::{Secret, StorageConfig};
use onair::storage::Storage;

pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    /// Access key and secret it demands (None: it takes unsigned requests).
    pub credentials: Option<(String, String)>,
    /// Dropped after the server (field order).
    pub root: tempfile::TempDir,
}

/// The binary: `ONAIR_TEST_S3S`, else where scripts/s3-server installs it.
fn binary() -> PathBuf {
    std::env::var_os("ONAIR_TEST_S3S")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/s3s-fs")
        })
}

impl S3Server {
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        let mut server = S3Server {
            child: None,
            port: free_port(),
            credentials: None,
            root,
        };
        server.spawn();
        server
    }

    /// A server that checks request signatures against this key pair.
    pub fn start_with_keys(access_key: &str, secret: &str) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        let mut server = S3Server {
            child: None,
            port: free_port(),
            credentials: Some((access_key.to_string(), secret.to_string())),
            root,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let binary = binary();
        assert!(
            binary.exists(),
            "{} is missing: run scripts/s3-server",
            binary.display()
        );
        let mut command = Command::new(binary);
        if let Some((key, secret)) = &self.credentials {
            command.args(["--access-key", key, "--secret-key", secret]);
        }
        let child = command
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (its objects stay on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn config(&self, bucket: &str) -> StorageConfig {
        StorageConfig {
            endpoint: format!("http://127.0.0.1:{}", self.port),
            region: "us-east-1".into(),
            bucket: bucket.into(),
            // s3s-fs without keys takes unsigned requests, so ffprobe can read
            // playlists over plain HTTP as a player would from a public bucket.
            access_key_id: self
                .credentials
                .as_ref()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
            secret_access_key: Secret::new(
                self.credentials
                    .as_ref()
                    .map(|c| c.1.clone())
                    .unwrap_or_default(),
            ),
            path_style: true,
            hls_segment_secs: 2,
            hls_path: "hls/{room_name}/{livestream_id}".into(),
            upload_mp4: true,
            mp4_path: "recordings/{room_name}-{livestream_id}.mp4".into(),
        }
    }

    /// Storage on `bucket`, created if needed.
    pub async fn storage(&self, bucket: &str) -> Storage {
        let storage = Storage::from_config(&self.config(bucket)).unwrap();
        storage.store.ensure_bucket().await.expect("bucket created");
        storage
    }

    /// Plain HTTP address of an object (the test server needs no signature).
    pub fn http_url(&self, bucket: &str, key: &str) -> String {
        format!("http://127.0.0.1:{}/{bucket}/{key}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

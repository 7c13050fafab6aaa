//! A real RTMP server for tests: nginx with Debian's RTMP module, recording
//! every stream it receives to FLV files in a temporary directory.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NginxRtmp {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

const MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

impl NginxRtmp {
    pub fn start() -> NginxRtmp {
        assert!(
            std::path::Path::new(MODULE).exists(),
            "install nginx and libnginx-mod-rtmp (scripts/setup does)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("records")).unwrap();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        let config = format!(
            r#"load_module {MODULE};
user root;
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/logs/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            record all;
            record_path {root}/records;
            record_unique off;
        }}
    }}
}}
"#,
            root = root.display()
        );
        let conf = root.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx-rtmp did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        NginxRtmp { port, dir, child }
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }

    /// nginx records `<key>.flv`.
    pub fn recording(&self, key: &str) -> PathBuf {
        self.dir.path().join("records").join(format!("{key}.flv"))
    }
}

impl Drop for NginxRtmp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

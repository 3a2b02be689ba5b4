//! A real `cameodb` process on a free port with a temporary data directory, and a small HTTP
//! client for talking to it.
#![allow(dead_code)]

pub mod cluster;
pub mod partition;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct Server {
    /// The running process.
    child: Option<Child>,
    /// Data directory (owned by `_dir` unless the test passed its own).
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    pub base: String,
    pub client: Client,
    extra_args: Vec<String>,
    /// Loopback address to serve on (several nodes of one cluster use 127.0.0.1, .2, .3).
    host: String,
    /// Runs the process as this user (a partition test tells its packets apart by owner).
    uid: Option<u32>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Server {
        Server::start_on("127.0.0.1", args)
    }

    /// Starts a server whose HTTP address is on `host`.
    pub fn start_on(host: &str, args: &[&str]) -> Server {
        Server::start_as(host, args, None)
    }

    /// Starts a server on `host` running as user `uid` (when given; needs root), its data
    /// directory handed to that user.
    pub fn start_as(host: &str, args: &[&str], uid: Option<u32>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_path_buf();
        let mut server = Server {
            child: None,
            data_dir,
            _dir: Some(dir),
            base: String::new(),
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            host: host.to_string(),
            uid,
        };
        if let Some(uid) = uid {
            std::os::unix::fs::chown(&server.data_dir, Some(uid), Some(uid)).expect("chown");
        }
        server.launch();
        server
    }

    /// Starts the process (again) on its data directory and waits until it answers.
    pub fn launch(&mut self) {
        let port = free_port();
        self.base = format!("http://{}:{port}", self.host);
        let mut command = Command::new(env!("CARGO_BIN_EXE_cameodb"));
        if let Some(uid) = self.uid {
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, uid);
        }
        let child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--http-addr")
            .arg(format!("{}:{port}", self.host))
            .args(if self.extra_args.iter().any(|a| a == "--cluster-addr") {
                Vec::new()
            } else {
                // Tests run side by side: a free cluster port, no fixed default.
                vec!["--cluster-addr".to_string(), format!("{}:0", self.host)]
            })
            .args(&self.extra_args)
            // CAMEODB_TEST_SERVER_LOG_LEVEL=info shows more of them.
            .env(
                "CAMEODB_LOG",
                std::env::var("CAMEODB_TEST_SERVER_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            // CAMEODB_TEST_SERVER_LOG=<file> keeps the servers' logs for debugging a failure.
            .stderr(match std::env::var_os("CAMEODB_TEST_SERVER_LOG") {
                Some(path) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_or_else(|_| Stdio::null(), Stdio::from),
                None => Stdio::null(),
            })
            .spawn()
            .expect("spawn cameodb");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = self.client.get(&self.base).send()
                && r.status().is_success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cameodb did not become ready");
    }

    /// SIGKILL, then start again on the same data directory.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().ok().and_then(|s| s.code())
    }

    pub fn restart(&mut self) {
        assert_eq!(self.terminate(), Some(0), "graceful shutdown exits 0");
        self.launch();
    }

    /// The cluster port given with `--cluster-addr`, if any.
    pub fn cluster_port(&self) -> Option<u16> {
        let at = self.extra_args.iter().position(|a| a == "--cluster-addr")?;
        self.extra_args
            .get(at + 1)?
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Sends a request; returns the status and the body parsed as JSON (Null when empty).
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().expect("request");
        let status = response.status();
        let text = response.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("request");
        let status = response.status();
        let text = response.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// NDJSON body from JSON lines.
pub fn ndjson(lines: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

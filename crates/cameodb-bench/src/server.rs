//! A `cameodb serve` child process: started from the binary next to this one, watched through
//! `/proc`, stopped politely or with kill -9.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running node.
pub struct Node {
    /// The child; `None` once it has exited.
    child: Option<Child>,
    /// The binary, to start it again on the same data.
    binary: PathBuf,
    /// Its data directory (kept across restarts: cold start and replay read it back).
    pub data_dir: PathBuf,
    /// Where its stderr log goes, appended over restarts: replay figures are read from it.
    pub log: PathBuf,
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// Extra flags, reused on restart.
    args: Vec<String>,
}

/// The `cameodb` binary beside the running bench binary (both come from the same cargo build).
pub fn binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = me.with_file_name("cameodb");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it with the bench (`cargo build --release -p cameodb -p cameodb-bench`)",
            path.display()
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

impl Node {
    /// Starts a node on a fresh port with `args` and waits until it answers HTTP.
    pub fn start(data_dir: &Path, args: &[&str]) -> Result<(Node, Duration), String> {
        let mut node = Node {
            child: None,
            binary: binary()?,
            data_dir: data_dir.to_path_buf(),
            log: data_dir.with_extension("log"),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        let ready = node.restart()?;
        Ok((node, ready))
    }

    /// Starts the process again (it must have exited); returns the time until HTTP answered.
    pub fn restart(&mut self) -> Result<Duration, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("log {}: {e}", self.log.display()))?;
        let started = Instant::now();
        let child = Command::new(&self.binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--http-addr")
            .arg(self.addr.to_string())
            .args(if self.args.iter().any(|a| a == "--cluster-addr") {
                Vec::new()
            } else {
                // A standalone node: any free cluster port, so runs never collide on 9300.
                vec![
                    "--cluster-addr".to_string(),
                    format!("{}:0", self.addr.ip()),
                ]
            })
            .args(&self.args)
            .env("CAMEODB_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        loop {
            if let Ok(resp) = client.get(self.url("/")).send()
                && resp.status().is_success()
            {
                return Ok(started.elapsed());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "cameodb exited during start ({status}); log: {}",
                    self.log.display()
                ));
            }
            if started.elapsed() > Duration::from_secs(600) {
                return Err("cameodb did not answer within 600 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Flags for the next restart.
    pub fn set_args(&mut self, args: &[&str]) {
        self.args = args.iter().map(|s| s.to_string()).collect();
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn pid(&self) -> Result<u32, String> {
        self.child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| "node is not running".to_string())
    }

    /// Resident memory now, from `/proc/<pid>/status`.
    pub fn memory(&self) -> Result<Memory, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))
            .map_err(|e| e.to_string())?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map(|kb| kb * 1024)
                .ok_or_else(|| format!("no {name} in /proc status"))
        };
        Ok(Memory {
            rss: field("VmRSS:")?,
            peak: field("VmHWM:")?,
            anon: field("RssAnon:")?,
            file: field("RssFile:")?,
        })
    }

    /// Graceful stop (SIGTERM: drain, commit every index), waiting for the exit.
    pub fn stop(&mut self) -> Result<Duration, String> {
        self.signal("-TERM")
    }

    /// kill -9: nothing is flushed beyond what was acknowledged.
    pub fn kill9(&mut self) -> Result<Duration, String> {
        self.signal("-KILL")
    }

    fn signal(&mut self, signal: &str) -> Result<Duration, String> {
        let pid = self.pid()?;
        let started = Instant::now();
        Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .map_err(|e| e.to_string())?;
        if let Some(mut child) = self.child.take() {
            child.wait().map_err(|e| e.to_string())?;
        }
        Ok(started.elapsed())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A process's resident memory, bytes.
#[derive(Clone, Copy, Default)]
pub struct Memory {
    /// VmRSS: resident now.
    pub rss: u64,
    /// VmHWM: the most ever resident.
    pub peak: u64,
    /// RssAnon: heap and stacks — what the process itself holds.
    pub anon: u64,
    /// RssFile: mapped file pages (tantivy's mmapped segments), which the kernel can drop.
    pub file: u64,
}

/// Bytes of every file under `path`.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

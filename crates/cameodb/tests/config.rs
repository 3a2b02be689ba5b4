//! `cameodb serve` configuration precedence, through the real binary: flags win over
//! `CAMEODB_*` environment variables, which win over the `--config` file.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    format!("127.0.0.1:{port}")
}

fn answers(addr: &str) -> bool {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client
            .get(format!("http://{addr}/"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(args: &[&str], env_addr: Option<&str>, config: &std::path::Path) -> Killed {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cameodb"));
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
        .env_remove("CAMEODB_HTTP_ADDR")
        .env_remove("CAMEODB_DATA_DIR")
        // Tests run side by side: no fixed cluster port.
        .env("CAMEODB_CLUSTER_ADDR", "127.0.0.1:0");
    if let Some(addr) = env_addr {
        command.env("CAMEODB_HTTP_ADDR", addr);
    }
    Killed(command.spawn().expect("spawn"))
}

#[test]
fn flags_beat_environment_beat_file() {
    let dir = tempfile::tempdir().unwrap();
    let (file_addr, env_addr, flag_addr) = (free_addr(), free_addr(), free_addr());
    let config = dir.path().join("cameodb.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "http_addr = \"{file_addr}\"\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();

    let only_file = serve(&[], None, &config);
    assert!(answers(&file_addr), "the file's address is used");
    drop(only_file);
    assert!(
        data.join("node_key").exists(),
        "the file's data dir is used"
    );

    let with_env = serve(&[], Some(&env_addr), &config);
    assert!(answers(&env_addr), "the environment beats the file");
    drop(with_env);

    let with_flag = serve(&["--http-addr", &flag_addr], Some(&env_addr), &config);
    assert!(answers(&flag_addr), "the flag beats the environment");
    drop(with_flag);

    std::fs::write(&config, "bogus_key = 1\n").unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_cameodb"))
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2), "an invalid config file is refused");
}

/// Runs `cameodb serve` with `args` (and a throwaway data directory) expecting it to refuse to
/// start; returns its exit code and what it logged.
fn refuses(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cameodb"))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--http-addr", &free_addr()])
        .args(args)
        .env_remove("CAMEODB_CLUSTER_SECRET")
        .env_remove("CAMEODB_CLUSTER_ADDR")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_cluster_address_off_loopback_needs_a_secret() {
    for (args, env) in [
        (vec!["--cluster-addr", "0.0.0.0:0"], vec![]),
        (vec![], vec![("CAMEODB_CLUSTER_ADDR", "0.0.0.0:0")]),
    ] {
        let (code, log) = refuses(&args, &env);
        assert_eq!(code, Some(2), "{log}");
        assert!(log.contains("--cluster-secret"), "{log}");
        assert!(log.contains("CAMEODB_CLUSTER_SECRET"), "{log}");
    }
    let (code, log) = refuses(
        &["--cluster-addr", "127.0.0.1:0", "--cluster-secret", "short"],
        &[],
    );
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("at least 16 bytes"), "{log}");
    // With a secret the node starts (and is killed here).
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let node = Killed(
        Command::new(env!("CARGO_BIN_EXE_cameodb"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--http-addr", &addr, "--cluster-addr", "0.0.0.0:0"])
            .env(
                "CAMEODB_CLUSTER_SECRET",
                "a secret long enough for this node",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(answers(&addr), "a node with a secret starts off loopback");
    drop(node);
}

#[test]
fn bad_limits_are_refused_by_name() {
    for (flag, value) in [
        ("--http-header-timeout", "soon"),
        ("--http-idle-timeout", "-1"),
        ("--search-max-keep-alive", "99999999999999999999d"),
        ("--breaker-total-limit", "lots"),
        ("--http-body-min-rate", "1.5mb"),
    ] {
        let (code, log) = refuses(&[flag, value, "--cluster-addr", "127.0.0.1:0"], &[]);
        assert_eq!(code, Some(2), "{flag} {value}: {log}");
        let name = flag.trim_start_matches("--").replace('-', "_");
        assert!(
            log.contains(&name),
            "{flag}: the error should name it: {log}"
        );
    }
    let (code, log) = refuses(
        &[
            "--breaker-total-limit",
            "1gb",
            "--breaker-request-limit",
            "2gb",
            "--cluster-addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("breaker_request_limit"), "{log}");
}
